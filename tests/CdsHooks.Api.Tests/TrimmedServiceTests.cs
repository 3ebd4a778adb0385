using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Nodes;
using CdsHooks.Api.Tests.Audit;
using CdsHooks.Api.Tests.Security;
using CdsHooks.Engine.Fhir;
using CdsHooks.Tests;
using Hl7.Fhir.Model;
using Task = System.Threading.Tasks.Task;
using Microsoft.AspNetCore.Hosting;

namespace CdsHooks.Api.Tests;

/// <summary>The container image's build: published self-contained and trimmed (-p:PublishTrimmed=true, as the
/// Dockerfile does), started as its own process configured as a site runs it (Production: JWT authentication, the
/// compact JSON log, the fatigue controls on, PostgreSQL and Redis when CDSHOOKS_TEST_POSTGRES and CDSHOOKS_TEST_REDIS
/// name servers, as in CI), and held to the untrimmed service's answers. Trimming removes what the frameworks' static
/// analysis does not see used, so what breaks shows up only when the published service runs: here, the hook calls
/// with every sample request (a whole order serialized for a suggestion among them), the FHIR fallback, discovery,
/// problems for bad input, the OpenAPI document, metrics, the request logs, and the audit trail's reads (fatigue
/// history, feedback, analytics).</summary>
public sealed class TrimmedServiceTests(TrimmedService trimmed, CdsHooksApplication untrimmed)
    : IClassFixture<TrimmedService>, IClassFixture<CdsHooksApplication>, IDisposable
{
    private const string FhirToken = "trimmed-service-token-5c1d";

    private readonly HttpClient _client = new() { BaseAddress = new Uri(trimmed.Service.BaseUrl) };

    public void Dispose() => _client.Dispose();

    /// <summary>A call to the trimmed service with a fresh token from the test EHR, as an EHR makes it.</summary>
    private Task<HttpResponseMessage> Call(HttpMethod method, string path, string? json = null)
    {
        var message = new HttpRequestMessage(method, path);
        if (json is not null) message.Content = new StringContent(json, System.Text.Encoding.UTF8, "application/json");
        message.Headers.Authorization = new AuthenticationHeaderValue("Bearer", trimmed.Ehr.Token(TrimmedService.PublicBaseUrl + path));
        return _client.SendAsync(message, Cancel);
    }

    private Task<HttpResponseMessage> Post(string path, JsonNode request) => Call(HttpMethod.Post, path, request.ToJsonString());

    public static TheoryData<string> Samples() =>
        [.. Directory.GetFiles(Path.Combine(Repository.Root, "samples", "requests"), "*.json").Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal)];

    [Theory]
    [MemberData(nameof(Samples))]
    public async Task EverySampleRequestGetsTheUntrimmedServicesCards(string sample)
    {
        var request = Repository.SampleNode(sample);
        var url = $"/cds-services/medication-safety-{(string)request["hook"]!}";

        var expected = await untrimmed.CreateClient().PostJson(url, request);
        var actual = await Post(url, request);

        Assert.Equal(HttpStatusCode.OK, expected.StatusCode);
        Assert.Equal(HttpStatusCode.OK, actual.StatusCode);
        Assert.Equal(Http.WithoutUuids(await expected.Json()), Http.WithoutUuids(await actual.Json()));
    }

    /// <summary>The index request without prefetch. Each call gets its own access token, so that no call is answered
    /// from the patient-data cache another call filled (the cache key holds the token), and the FHIR server's record
    /// shows which service fetched.</summary>
    private JsonNode FallbackRequest(string token)
    {
        var request = Repository.SampleNode("order-sign-mirtazapine-80-year-old-on-clonazepam.json");
        request.AsObject().Remove("prefetch");
        request["fhirServer"] = trimmed.Fhir.BaseUrl;
        request["fhirAuthorization"] = FhirTestServer.Authorization(token);
        return request;
    }

    [Fact]
    public async Task TheFhirFallbackFetchesWhatIsNotPrefetched()
    {
        await using var reference = untrimmed.WithWebHostBuilder(b => b.UseSetting("Fhir:AllowedServers:0", trimmed.Fhir.BaseUrl));
        var token = $"{FhirToken}-{Guid.NewGuid():N}";

        var expected = await reference.CreateClient().PostJson("/cds-services/medication-safety-order-sign", FallbackRequest($"{FhirToken}-reference"));
        var actual = await Post("/cds-services/medication-safety-order-sign", FallbackRequest(token));

        Assert.Equal(HttpStatusCode.OK, expected.StatusCode);
        Assert.Equal(HttpStatusCode.OK, actual.StatusCode);
        Assert.Contains(trimmed.Fhir.RequestsFor("Patient"), r => r.Authorization == "Bearer " + token);
        // Redis, where configured (CI), took the fetched data: a failing cache is only a warning in the log.
        Assert.DoesNotContain(trimmed.Service.Output, line => line.Contains("Patient data cache", StringComparison.Ordinal));
        var body = Http.WithoutUuids(await actual.Json());
        Assert.Equal(Http.WithoutUuids(await expected.Json()), body);
        Assert.Contains("\"warning\"", body, StringComparison.Ordinal);
    }

    [Fact]
    public void TheImageIsPublishedAsTheseTestsPublishIt()
    {
        var publish = File.ReadAllLines(Path.Combine(Repository.Root, "Dockerfile"))
            .Single(line => line.StartsWith("RUN dotnet publish", StringComparison.Ordinal));

        Assert.Contains("--self-contained", publish, StringComparison.Ordinal);
        Assert.Contains("-p:PublishTrimmed=true", publish, StringComparison.Ordinal);
        Assert.Contains("src/CdsHooks.Api/CdsHooks.Api.csproj -c Release", publish, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DiscoveryIsTheUntrimmedServicesDiscovery()
    {
        var expected = await (await untrimmed.CreateClient().GetAsync(new Uri("/cds-services", UriKind.Relative), Cancel)).Json();
        var actual = await Call(HttpMethod.Get, "/cds-services");

        Assert.Equal(HttpStatusCode.OK, actual.StatusCode);
        Assert.Equal(expected.ToJsonString(), (await actual.Json()).ToJsonString());
    }

    [Theory]
    [InlineData("{\"hook\": ")]
    [InlineData("{\"hook\": \"order-sign\", \"hookInstance\": 7}")]
    public async Task BadInputGetsAProblem(string body)
    {
        var response = await Call(HttpMethod.Post, "/cds-services/medication-safety-order-sign", body);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.False(string.IsNullOrWhiteSpace((string?)(await response.Json())["title"]));
    }

    [Fact]
    public async Task OperationsEndpointsAnswer()
    {
        await Post("/cds-services/medication-safety-order-sign", Repository.SampleNode("order-sign-mirtazapine-80-year-old-on-clonazepam.json"));

        var openApi = await _client.GetAsync(new Uri("/openapi/v1.json", UriKind.Relative), Cancel);
        Assert.Equal(HttpStatusCode.OK, openApi.StatusCode);
        Assert.NotNull((await openApi.Json())["paths"]!["/cds-services/{id}"]);
        Assert.Equal(HttpStatusCode.OK, (await _client.GetAsync(new Uri("/health/ready", UriKind.Relative), Cancel)).StatusCode);
        var metrics = await _client.GetStringAsync(new Uri("/metrics", UriKind.Relative), Cancel);
        Assert.Contains("http_server_request_duration", metrics, StringComparison.Ordinal);
        Assert.Contains("kestrel_active_connections", metrics, StringComparison.Ordinal);
        // Kestrel's memory pool (only on a real server, not the test host) counts every block: not listened to.
        Assert.DoesNotContain("aspnetcore_memory_pool_", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RequestsAreLoggedThroughTheConfiguredSinksWithoutPatientData()
    {
        Assert.Equal(HttpStatusCode.OK, (await Post("/cds-services/medication-safety-order-sign", FallbackRequest($"{FhirToken}-{Guid.NewGuid():N}"))).StatusCode);

        // Serilog finds its sinks, enrichers and formatter by name in the configuration, by reflection; in Production
        // each event is a line of compact JSON.
        await trimmed.Service.WaitForOutputAsync(IsRequestLog);
        Assert.Contains(trimmed.Service.Output, IsRequestLog);
        var output = string.Join("\n", trimmed.Service.Output);
        Assert.All(LogCanaries.All.Append(FhirToken), canary => Assert.DoesNotContain(canary, output, StringComparison.OrdinalIgnoreCase));

        static bool IsRequestLog(string line) =>
            line.StartsWith('{') && line.Contains("\"RequestPath\":\"/cds-services/medication-safety-order-sign\"", StringComparison.Ordinal)
            && line.Contains("\"StatusCode\":200", StringComparison.Ordinal);
    }

    [Fact]
    public async Task FeedbackAndAnalyticsReadWhatTheAuditTrailRecorded()
    {
        // The audit trail reads its rows into value tuples, which Dapper builds through their constructors, found by
        // reflection: the fatigue controls' history on every call with cards (on in this service, as at a site),
        // feedback's check of the cards it names, and the analytics.
        var shown = await Post("/cds-services/medication-safety-order-sign", Repository.SampleNode("order-sign-mirtazapine-80-year-old-on-clonazepam.json"));
        Assert.Equal(HttpStatusCode.OK, shown.StatusCode);
        var card = (await shown.Json())["cards"]![0]!;

        // Overridden for a reason that holds nothing back, so that the other tests still get this card.
        var recorded = await Post("/cds-services/medication-safety-order-sign/feedback", Overridden(card, "urn:trimmed-test", "will-monitor"));
        Assert.Equal(HttpStatusCode.OK, recorded.StatusCode);
        Assert.Equal("recorded", (string)(await recorded.Json())["results"]![0]!["status"]!);

        using var analytics = new HttpRequestMessage(HttpMethod.Get, "/analytics/outcomes");
        analytics.Headers.Authorization = new AuthenticationHeaderValue("Bearer", TrimmedService.AnalyticsKey);
        var outcomes = await _client.SendAsync(analytics, Cancel);
        Assert.Equal(HttpStatusCode.OK, outcomes.StatusCode);
        var reasons = (await outcomes.Json())["rules"]!.AsArray().SelectMany(r => r!["topOverrideReasons"]!.AsArray());
        Assert.Contains(reasons, r => (string)r!["code"]! == "will-monitor");

        // A hook call survives a failing audit trail (the cards go out unfiltered), so its failure shows in the log only.
        Assert.DoesNotContain(trimmed.Service.Output, line => line.Contains("Audit trail failed", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AConsideredOverrideHoldsTheCardBack()
    {
        // The fatigue controls read the patient's history (nine columns into a value tuple): a card overridden for a
        // considered reason is not shown again. A patient of its own, so that the other tests still get their cards.
        var request = JsonNode.Parse(Repository.Sample("order-sign-mirtazapine-80-year-old-on-clonazepam.json").Replace("elderly-1", "trimmed-held-back", StringComparison.Ordinal))!;
        const string url = "/cds-services/medication-safety-order-sign";
        var first = await Post(url, request);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        var card = Assert.Single((await first.Json())["cards"]!.AsArray())!;
        Assert.Equal("warning", (string)card["indicator"]!); // critical cards are never held back

        var feedback = Overridden(card, "urn:medication-safety-cds:override-reason", "benefit-outweighs-risk");
        Assert.Equal(HttpStatusCode.OK, (await Post(url + "/feedback", feedback)).StatusCode);

        var again = await Post(url, request);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Empty((await again.Json())["cards"]!.AsArray());
    }

    /// <summary>Feedback: the card overridden, now, for this reason.</summary>
    private static JsonObject Overridden(JsonNode card, string system, string code) => new()
    {
        ["feedback"] = new JsonArray(new JsonObject
        {
            ["card"] = (string)card["uuid"]!,
            ["outcome"] = "overridden",
            ["overrideReason"] = new JsonObject { ["reason"] = new JsonObject { ["system"] = system, ["code"] = code } },
            ["outcomeTimestamp"] = DateTimeOffset.UtcNow.ToString("O"),
        }),
    };

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;
}

/// <summary>Publishes the service as the container image does, once for the test class, and runs it as a site does
/// beside a loopback FHIR server that holds the index patient and an EHR that signs the tokens.</summary>
public sealed class TrimmedService : IAsyncLifetime
{
    public const string PublicBaseUrl = "https://cds.trimmed.example";

    public const string AnalyticsKey = "trimmed-service-analytics-key";

    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"cds-hooks-trimmed-{Guid.NewGuid():N}");
    private PostgresDatabase? _database;

    public ServiceProcess Service { get; private set; } = null!;

    public FhirTestServer Fhir { get; private set; } = null!;

    public JwksTestServer Ehr { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        var app = Path.Combine(_directory, "app");
        await PublishAsync(app);

        Fhir = await FhirTestServer.StartAsync();
        Fhir.AddPrefetchOf(Repository.SampleNode("order-sign-mirtazapine-80-year-old-on-clonazepam.json"));
        Ehr = await JwksTestServer.StartAsync();

        var settings = new Dictionary<string, string>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["Authentication__Enabled"] = "true",
            ["Authentication__PublicBaseUrl"] = PublicBaseUrl,
            ["Authentication__RequireHttpsJwks"] = "false",
            ["Authentication__TrustedClients__0__Issuer"] = JwksTestServer.Issuer,
            ["Authentication__TrustedClients__0__JwksUrl"] = Ehr.JwksUrl,
            ["Audit__HashKey"] = "trimmed-service-hash-key",
            // The fatigue controls on, as at a site (their history query once failed in this build only), without
            // the repeat window, so that the same sample answers with the same cards each time.
            ["Fatigue__RepeatWindow"] = "00:00:00",
            ["Audit__AnalyticsKeyHashes__0"] = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(AnalyticsKey))),
            ["Fhir__AllowedServers__0"] = Fhir.BaseUrl,
            ["Fhir__RequireHttps"] = "false", // the loopback FHIR server speaks plain HTTP
            ["Serilog__MinimumLevel__Default"] = "Information",
        };
        if (Environment.GetEnvironmentVariable("CDSHOOKS_TEST_POSTGRES") is not null)
        {
            _database = await PostgresDatabase.CreateAsync();
            settings["Audit__Provider"] = "postgres";
            settings["Audit__ConnectionString"] = _database.ConnectionString;
        }

        // Fetched patient data shared through Redis, as several instances share it (in CI).
        if (Environment.GetEnvironmentVariable("CDSHOOKS_TEST_REDIS") is { } redis) settings["Redis__Configuration"] = redis;

        Service = await ServiceProcess.StartAsync(settings, Path.Combine(app, OperatingSystem.IsWindows() ? "CdsHooks.Api.exe" : "CdsHooks.Api"));
    }

    private async Task PublishAsync(string app)
    {
        var publish = new ProcessStartInfo("dotnet",
        [
            "publish", Path.Combine(Repository.Root, "src", "CdsHooks.Api", "CdsHooks.Api.csproj"), "-c", "Release",
            "--use-current-runtime", "--self-contained", "-p:PublishTrimmed=true",
            // Its own build and intermediate folders, so that it cannot disturb the build the tests run from.
            "--artifacts-path", Path.Combine(_directory, "build"), "-o", app,
        ])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };

        // The test host's MSBuild settings are not the publish's.
        foreach (var key in publish.Environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            publish.Environment.Remove(key);
        }

        using var process = Process.Start(publish)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("dotnet publish -p:PublishTrimmed=true took more than 10 minutes");
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"dotnet publish -p:PublishTrimmed=true failed:\n{await output}\n{await errors}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Service is not null) await Service.DisposeAsync();
        if (Ehr is not null) await Ehr.DisposeAsync();
        if (Fhir is not null) await Fhir.DisposeAsync();
        if (_database is not null) await _database.DisposeAsync();
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }
}
