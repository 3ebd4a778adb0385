using System.Diagnostics;
using System.Net;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using CdsHooks.Engine.Fhir;
using CdsHooks.Tests;
using Hl7.Fhir.Model;
using Task = System.Threading.Tasks.Task;
using Microsoft.AspNetCore.Hosting;

namespace CdsHooks.Api.Tests;

/// <summary>The container image's build: published self-contained and trimmed (-p:PublishTrimmed=true, as the
/// Dockerfile does), started as its own process, and held to the untrimmed service's answers. Trimming removes what
/// the frameworks' static analysis does not see used, so what breaks shows up only when the published service runs:
/// here, the hook calls with every sample request (a whole order serialized for a suggestion among them), the FHIR
/// fallback, discovery, problems for bad input, the OpenAPI document, metrics, and the request logs.</summary>
public sealed class TrimmedServiceTests(TrimmedService trimmed, CdsHooksApplication untrimmed)
    : IClassFixture<TrimmedService>, IClassFixture<CdsHooksApplication>, IDisposable
{
    private const string FhirToken = "trimmed-service-token-5c1d";

    private readonly HttpClient _client = new() { BaseAddress = new Uri(trimmed.Service.BaseUrl) };

    public void Dispose() => _client.Dispose();

    public static TheoryData<string> Samples() =>
        [.. Directory.GetFiles(Path.Combine(Repository.Root, "samples", "requests"), "*.json").Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal)];

    [Theory]
    [MemberData(nameof(Samples))]
    public async Task EverySampleRequestGetsTheUntrimmedServicesCards(string sample)
    {
        var request = Repository.SampleNode(sample);
        var url = $"/cds-services/medication-safety-{(string)request["hook"]!}";

        var expected = await untrimmed.CreateClient().PostJson(url, request);
        var actual = await _client.PostJson(url, request);

        Assert.Equal(HttpStatusCode.OK, expected.StatusCode);
        Assert.Equal(HttpStatusCode.OK, actual.StatusCode);
        Assert.Equal(WithoutUuids(await expected.Json()), WithoutUuids(await actual.Json()));
    }

    [Fact]
    public async Task TheFhirFallbackFetchesWhatIsNotPrefetched()
    {
        var request = Repository.SampleNode("order-sign-mirtazapine-80-year-old-on-clonazepam.json");
        request.AsObject().Remove("prefetch");
        request["fhirServer"] = trimmed.Fhir.BaseUrl;
        request["fhirAuthorization"] = new JsonObject
        {
            ["access_token"] = FhirToken, ["token_type"] = "Bearer", ["expires_in"] = 300,
            ["scope"] = "patient/*.read", ["subject"] = "cds-service",
        };
        await using var reference = untrimmed.WithWebHostBuilder(b => b.UseSetting("Fhir:AllowedServers:0", trimmed.Fhir.BaseUrl));

        var expected = await reference.CreateClient().PostJson("/cds-services/medication-safety-order-sign", request);
        var before = trimmed.Fhir.RequestsFor("Patient").Count();
        var actual = await _client.PostJson("/cds-services/medication-safety-order-sign", request);

        Assert.Equal(HttpStatusCode.OK, expected.StatusCode);
        Assert.Equal(HttpStatusCode.OK, actual.StatusCode);
        Assert.True(trimmed.Fhir.RequestsFor("Patient").Count() > before, "the trimmed service did not query the FHIR server");
        var body = WithoutUuids(await actual.Json());
        Assert.Equal(WithoutUuids(await expected.Json()), body);
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
        var actual = await _client.GetAsync(new Uri("/cds-services", UriKind.Relative), Cancel);

        Assert.Equal(HttpStatusCode.OK, actual.StatusCode);
        Assert.Equal(expected.ToJsonString(), (await actual.Json()).ToJsonString());
    }

    [Theory]
    [InlineData("{\"hook\": ")]
    [InlineData("{\"hook\": \"order-sign\", \"hookInstance\": 7}")]
    public async Task BadInputGetsAProblem(string body)
    {
        var response = await _client.PostJson("/cds-services/medication-safety-order-sign", body);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.False(string.IsNullOrWhiteSpace((string?)(await response.Json())["title"]));
    }

    [Fact]
    public async Task OperationsEndpointsAnswer()
    {
        await _client.PostJson("/cds-services/medication-safety-order-sign", Repository.SampleNode("order-sign-mirtazapine-80-year-old-on-clonazepam.json"));

        var openApi = await _client.GetAsync(new Uri("/openapi/v1.json", UriKind.Relative), Cancel);
        Assert.Equal(HttpStatusCode.OK, openApi.StatusCode);
        Assert.NotNull((await openApi.Json())["paths"]!["/cds-services/{id}"]);
        Assert.Equal(HttpStatusCode.OK, (await _client.GetAsync(new Uri("/health/ready", UriKind.Relative), Cancel)).StatusCode);
        var metrics = await _client.GetStringAsync(new Uri("/metrics", UriKind.Relative), Cancel);
        Assert.Contains("http_server_request_duration", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RequestsAreLoggedThroughTheConfiguredSinksWithoutPatientData()
    {
        await _client.PostJson("/cds-services/medication-safety-order-sign", Repository.SampleNode("order-sign-mirtazapine-80-year-old-on-clonazepam.json"));

        // Serilog finds its sinks and enrichers by name in the configuration, by reflection.
        for (var attempt = 0; attempt < 50 && !trimmed.Service.Output.Any(IsRequestLog); attempt++) await Task.Delay(100, Cancel);
        Assert.Contains(trimmed.Service.Output, IsRequestLog);
        var output = string.Join("\n", trimmed.Service.Output);
        Assert.All(LogCanaries.All.Append(FhirToken), canary => Assert.DoesNotContain(canary, output, StringComparison.OrdinalIgnoreCase));

        static bool IsRequestLog(string line) =>
            line.Contains("POST /cds-services/medication-safety-order-sign responded 200", StringComparison.Ordinal);
    }

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    /// <summary>The answer as text, without the uuids each call makes anew.</summary>
    private static string WithoutUuids(JsonNode node)
    {
        switch (node)
        {
            case JsonObject o:
                o.Remove("uuid");
                foreach (var (_, child) in o.ToList()) if (child is not null) WithoutUuids(child);
                break;
            case JsonArray a:
                foreach (var child in a) if (child is not null) WithoutUuids(child);
                break;
        }

        return node.ToJsonString();
    }
}

/// <summary>Publishes the service as the container image does, once for the test class, and runs it beside a loopback
/// FHIR server that holds the index patient.</summary>
public sealed class TrimmedService : IAsyncLifetime
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"cds-hooks-trimmed-{Guid.NewGuid():N}");

    public ServiceProcess Service { get; private set; } = null!;

    public FhirTestServer Fhir { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        var app = Path.Combine(_directory, "app");
        var publish = new ProcessStartInfo("dotnet",
        [
            "publish", Path.Combine(Repository.Root, "src", "CdsHooks.Api", "CdsHooks.Api.csproj"), "-c", "Release",
            "-r", RuntimeInformation.RuntimeIdentifier, "--self-contained", "-p:PublishTrimmed=true",
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

        using (var process = Process.Start(publish)!)
        {
            var output = process.StandardOutput.ReadToEndAsync();
            var errors = process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"dotnet publish -p:PublishTrimmed=true failed:\n{await output}\n{await errors}");
            }
        }

        Fhir = await FhirTestServer.StartAsync();
        var sample = Repository.SampleNode("order-sign-mirtazapine-80-year-old-on-clonazepam.json");
        Fhir.Add(Resource<Patient>(sample["prefetch"]!["patient"]!));
        foreach (var entry in sample["prefetch"]!["medications"]!["entry"]!.AsArray()) Fhir.Add(Resource<MedicationRequest>(entry!["resource"]!));
        foreach (var entry in sample["prefetch"]!["conditions"]!["entry"]!.AsArray()) Fhir.Add(Resource<Condition>(entry!["resource"]!));

        Service = await ServiceProcess.StartAsync(
            new Dictionary<string, string>
            {
                ["Fatigue__Enabled"] = "false",
                ["Fhir__AllowedServers__0"] = Fhir.BaseUrl,
                ["Serilog__MinimumLevel__Default"] = "Information",
            },
            Path.Combine(app, OperatingSystem.IsWindows() ? "CdsHooks.Api.exe" : "CdsHooks.Api"));
    }

    public async ValueTask DisposeAsync()
    {
        if (Service is not null) await Service.DisposeAsync();
        if (Fhir is not null) await Fhir.DisposeAsync();
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    private static T Resource<T>(JsonNode node) where T : Resource => JsonSerializer.Deserialize<T>(node.ToJsonString(), FhirJson.Options)!;
}
