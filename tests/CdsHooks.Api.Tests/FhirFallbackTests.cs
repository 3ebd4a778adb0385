using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using CdsHooks.Engine.Fhir;
using CdsHooks.Tests;
using Hl7.Fhir.Model;
using Task = System.Threading.Tasks.Task;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace CdsHooks.Api.Tests;

/// <summary>Prefetch completed from the EHR's FHIR server: a real FHIR server on loopback, real HTTP both ways.</summary>
public sealed class FhirFallbackTests : IAsyncLifetime
{
    private const string OrderSign = "/cds-services/medication-safety-order-sign";
    private const string Token = "canary-access-token-7f3e9b";

    private FhirTestServer _fhir = null!;
    private CdsHooksApplication _app = null!;
    private WebApplicationFactory<Program> _service = null!;

    public async ValueTask InitializeAsync()
    {
        _fhir = await FhirTestServer.StartAsync();
        var sample = Repository.SampleNode("order-sign-mirtazapine-80-year-old-on-clonazepam.json");
        _fhir.AddPrefetchOf(sample);
        _app = new CdsHooksApplication();
        _service = Configure(_app, _fhir.BaseUrl);
    }

    public async ValueTask DisposeAsync()
    {
        await _service.DisposeAsync();
        await _app.DisposeAsync();
        await _fhir.DisposeAsync();
    }

    private static WebApplicationFactory<Program> Configure(WebApplicationFactory<Program> app, string allowed) =>
        app.WithWebHostBuilder(b => b
            .UseSetting("Fhir:AllowedServers:0", allowed)
            .UseSetting("Fhir:AllowedServers:1", allowed)
            .UseSetting("Fhir:AllowedServers:2", allowed)
            .UseSetting("Fhir:AllowedServers:3", allowed)
            .UseSetting("Fhir:CallTimeout", "00:00:00.400")
            .UseSetting("Fhir:Budget", "00:00:01"));

    private JsonNode Request(string token = Token, Action<JsonObject>? prefetch = null)
    {
        var request = Repository.SampleNode("order-sign-mirtazapine-80-year-old-on-clonazepam.json");
        request["fhirServer"] = _fhir.BaseUrl;
        request["fhirAuthorization"] = FhirTestServer.Authorization(token);
        if (prefetch is null) request.AsObject().Remove("prefetch");
        else prefetch(request["prefetch"]!.AsObject());
        return request;
    }

    private async Task<(HttpStatusCode Status, JsonNode Body)> Post(JsonNode request, WebApplicationFactory<Program>? service = null)
    {
        var response = await (service ?? _service).CreateClient().PostJson(OrderSign, request);
        return (response.StatusCode, await response.Json());
    }

    [Fact]
    public async Task WithoutPrefetchEverythingIsFetchedWithTheEhrsBearerToken()
    {
        var (status, body) = await Post(Request());

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("warning", (string)Assert.Single(body["cards"]!.AsArray())!["indicator"]!);
        Assert.Single(_fhir.RequestsFor("Patient"));
        Assert.Equal(2, _fhir.RequestsFor("MedicationRequest").Count()); // active, and stopped for look-back rules
        Assert.Single(_fhir.RequestsFor("Condition"));
        Assert.Single(_fhir.RequestsFor("MedicationStatement"));
        Assert.All(_fhir.Requests, r => Assert.Equal("Bearer " + Token, r.Authorization));
        Assert.Contains(_fhir.RequestsFor("MedicationRequest"), r => r.Query.Contains("patient=elderly-1", StringComparison.Ordinal) && r.Query.Contains("status=active", StringComparison.Ordinal));
    }

    [Fact]
    public async Task CompletePrefetchMakesNoFhirQuery()
    {
        var (status, _) = await Post(Request(prefetch: _ => { }));

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Empty(_fhir.Requests);
    }

    [Fact]
    public async Task PartialPrefetchFetchesOnlyWhatIsMissing()
    {
        var (status, body) = await Post(Request(prefetch: p => p.Remove("medications")));

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Single(body["cards"]!.AsArray());
        var only = Assert.Single(_fhir.Requests);
        Assert.Contains("status=active", only.Query, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NullPrefetchMeansNoneAndIsNotFetched()
    {
        var (status, body) = await Post(Request(prefetch: p => p["medications"] = null));

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Empty(body["cards"]!.AsArray()); // the EHR says: no active medications
        Assert.Empty(_fhir.Requests);
    }

    [Fact]
    public async Task OperationOutcomeInPrefetchMeansTheClientFailedSoTheServiceFetches()
    {
        var (status, body) = await Post(Request(prefetch: p =>
            p["medications"] = JsonNode.Parse("""{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"timeout"}]}""")));

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Single(body["cards"]!.AsArray());
        Assert.Single(_fhir.RequestsFor("MedicationRequest"));
    }

    [Fact]
    public async Task PagedSearchesAreFollowedToTheLastPage()
    {
        _fhir.Add(new MedicationRequest
        {
            Id = "lisinopril-1", Status = MedicationRequest.MedicationrequestStatus.Active, Intent = MedicationRequest.MedicationRequestIntent.Order,
            Medication = new CodeableConcept("http://www.nlm.nih.gov/research/umls/rxnorm", "314076", "lisinopril 10 MG Oral Tablet"),
            Subject = new ResourceReference("Patient/elderly-1"),
        });
        _fhir.Resources["MedicationRequest"].Reverse(); // clonazepam on the second page
        _fhir.For("MedicationRequest").PageSize = 1;

        var (status, body) = await Post(Request(prefetch: p => p.Remove("medications")));

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Single(body["cards"]!.AsArray());
        Assert.Equal(2, _fhir.RequestsFor("MedicationRequest").Count());
        Assert.All(_fhir.Requests, r => Assert.Equal("Bearer " + Token, r.Authorization));

        // Both pages are cached as the server sent them, and read again as one search.
        var (again, againBody) = await Post(Request(prefetch: p => p.Remove("medications")));
        Assert.Equal(HttpStatusCode.OK, again);
        Assert.Equal(2, _fhir.RequestsFor("MedicationRequest").Count());
        Assert.Equal(Summaries(body), Summaries(againBody));
    }

    private static string Summaries(JsonNode body) => string.Join('|', body["cards"]!.AsArray().Select(c => (string)c!["summary"]!));

    [Fact]
    public async Task QueriesRunInParallel()
    {
        foreach (var type in new[] { "Patient", "MedicationRequest", "Condition", "MedicationStatement" })
        {
            _fhir.For(type).Delay = TimeSpan.FromMilliseconds(150);
        }

        var (status, _) = await Post(Request());

        Assert.Equal(HttpStatusCode.OK, status);
        // Every query started before any had ended: the wait is the slowest query's, not the sum.
        Assert.Equal(5, _fhir.Requests.Count);
        Assert.True(_fhir.Requests.Max(r => r.Started) < _fhir.Requests.Min(r => r.Ended), "the FHIR queries ran one after another");
    }

    [Fact]
    public async Task NoServerOnTheAllowListMeansNoQueryAnd412()
    {
        await using var strict = Configure(_app, "https://ehr.other.example/fhir");

        var (status, outcome) = await Post(Request(), strict);

        Assert.Equal(HttpStatusCode.PreconditionFailed, status);
        Assert.Empty(_fhir.Requests);
        Assert.Contains("allow-list", (string)outcome["issue"]![0]!["diagnostics"]!, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(500, null, "HTTP 500")]
    [InlineData(401, null, "HTTP 401")]
    [InlineData(200, "{\"resourceType\": \"Bundle\", \"entry\": [", "unreadable")]
    [InlineData(200, "<html>not FHIR</html>", "unreadable")]
    public async Task RequiredDataTheServerCannotGiveIs412WithTheReason(int code, string? body, string reason)
    {
        _fhir.For("MedicationRequest").Status = code;
        _fhir.For("MedicationRequest").RawBody = body;

        var (status, outcome) = await Post(Request(prefetch: p => p.Remove("medications")));

        Assert.Equal(HttpStatusCode.PreconditionFailed, status);
        var issue = Assert.Single(outcome["issue"]!.AsArray())!;
        Assert.Equal("prefetch.medications", (string)issue["expression"]![0]!);
        Assert.Contains(reason, (string)issue["diagnostics"]!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnAnswerLargerThanTheLimitIs412WithTheReason()
    {
        await using var small = _service.WithWebHostBuilder(b => b.UseSetting("Fhir:MaxAnswerBytes", "300"));

        var (status, outcome) = await Post(Request(prefetch: p => p.Remove("medications")), small);

        Assert.Equal(HttpStatusCode.PreconditionFailed, status);
        var issue = Assert.Single(outcome["issue"]!.AsArray())!;
        Assert.Equal("prefetch.medications", (string)issue["expression"]![0]!);
        Assert.Contains("larger than Fhir:MaxAnswerBytes", (string)issue["diagnostics"]!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnAnswerWithAByteOrderMarkIsRead()
    {
        // JSON text may begin with a UTF-8 byte order mark; some servers send one.
        var sample = Repository.SampleNode("order-sign-mirtazapine-80-year-old-on-clonazepam.json");
        _fhir.For("MedicationRequest").RawBody = "\uFEFF" + sample["prefetch"]!["medications"]!.ToJsonString();

        var (status, body) = await Post(Request(prefetch: p => p.Remove("medications")));

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains(body["cards"]!.AsArray(), c => ((string)c!["summary"]!).Contains("clonazepam", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task AHangingServerIsCutOffWithinTheBudget()
    {
        _fhir.For("Patient").Delay = TimeSpan.FromSeconds(20);
        var clock = System.Diagnostics.Stopwatch.StartNew();

        var (status, outcome) = await Post(Request());

        Assert.Equal(HttpStatusCode.PreconditionFailed, status);
        Assert.Contains("timed out", (string)outcome["issue"]![0]!["diagnostics"]!, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"answered after {clock.Elapsed}; the budget is 1 s");
    }

    [Fact]
    public async Task OptionalDataThatFailsIsSaidOnAnInfoCardBesideTheOtherCards()
    {
        _fhir.For("Condition").Status = 500;

        var (status, body) = await Post(Request(prefetch: p => p.Remove("conditions")));

        Assert.Equal(HttpStatusCode.OK, status);
        var cards = body["cards"]!.AsArray();
        Assert.Contains(cards, c => (string)c!["indicator"]! == "warning");
        var gap = Assert.Single(cards, c => ((string)c!["summary"]!).StartsWith("Not fully checked", StringComparison.Ordinal))!;
        Assert.Equal("info", (string)gap["indicator"]!);
        Assert.Contains("conditions (HTTP 500)", (string)gap["summary"]!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OrderSelectThenOrderSignForTheSamePatientFetchesOnce()
    {
        await Post(Request());
        var first = _fhir.Requests.Count;

        var (status, _) = await Post(Request());
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(first, _fhir.Requests.Count);

        await Post(Request(token: "another-token")); // another user's token does not read the first one's cache
        Assert.True(_fhir.Requests.Count > first);
    }

    [Fact]
    public async Task AMedicationReferenceIsReadFromTheServer()
    {
        _fhir.Add(new Medication { Id = "klonopin-05", Code = new CodeableConcept("http://www.nlm.nih.gov/research/umls/rxnorm", "206157", "Klonopin 0.5 MG Oral Tablet") });
        var request = Request(prefetch: p =>
        {
            var active = p["medications"]!["entry"]![0]!["resource"]!.AsObject();
            active.Remove("medicationCodeableConcept");
            active["medicationReference"] = new JsonObject { ["reference"] = "Medication/klonopin-05" };
        });

        var (status, body) = await Post(request);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("clonazepam", (string)Assert.Single(body["cards"]!.AsArray())!["summary"]!, StringComparison.Ordinal);
        Assert.Single(_fhir.RequestsFor("Medication/"));
    }

    [Theory]
    [InlineData("Medication/..\\..\\tenant-b\\admin")]
    [InlineData("Medication/../../tenant-b/admin")]
    [InlineData("Medication/%2e%2e/admin")]
    public async Task AMedicationReferenceCannotLeadTheTokenOutOfTheFhirBase(string reference)
    {
        var request = Request(prefetch: p =>
        {
            var active = p["medications"]!["entry"]![0]!["resource"]!.AsObject();
            active.Remove("medicationCodeableConcept");
            active["medicationReference"] = new JsonObject { ["reference"] = reference };
        });

        await Post(request);

        Assert.DoesNotContain(_fhir.Requests, r => !r.Path.StartsWith("/fhir/", StringComparison.Ordinal) || r.Path.Contains("admin", StringComparison.Ordinal));
    }

    [Fact]
    public async Task APagedPrefetchIsFollowedOnTheFhirServer()
    {
        // The EHR prefetched the first page only (no clonazepam on it); the rest is behind its next link.
        var request = Request(prefetch: p =>
        {
            var medications = p["medications"]!.AsObject();
            medications["entry"] = new JsonArray();
            medications["link"] = new JsonArray(new JsonObject { ["relation"] = "next", ["url"] = _fhir.BaseUrl + "/MedicationRequest?patient=elderly-1&status=active" });
        });

        var (status, body) = await Post(request);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains(body["cards"]!.AsArray(), c => ((string)c!["summary"]!).Contains("clonazepam", StringComparison.OrdinalIgnoreCase));
        Assert.Single(_fhir.RequestsFor("MedicationRequest"));
        Assert.All(_fhir.Requests, r => Assert.Equal("Bearer " + Token, r.Authorization));

        // The same call again: the prefetched first page and the fetched one come from the cache.
        var (again, againBody) = await Post(request);
        Assert.Equal(HttpStatusCode.OK, again);
        Assert.Single(_fhir.RequestsFor("MedicationRequest"));
        Assert.Equal(Summaries(body), Summaries(againBody));
    }

    [Fact]
    public async Task ANextLinkOutsideTheFhirBaseIsNotFollowed()
    {
        var request = Request(prefetch: p =>
            p["medications"]!.AsObject()["link"] = new JsonArray(new JsonObject { ["relation"] = "next", ["url"] = _fhir.BaseUrl + "/../tenant-b/export" }));

        var (status, body) = await Post(request);

        // The first page is used; the card that says what could not be checked names the refused link.
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains(body["cards"]!.AsArray(), c => ((string)c!["summary"]!).Contains("away from the FHIR server", StringComparison.Ordinal));
        Assert.Empty(_fhir.Requests);
    }

    [Fact]
    public async Task TheAccessTokenNeverReachesTheLogs()
    {
        _fhir.For("Condition").Status = 500;
        await Post(Request());
        _fhir.For("Patient").Delay = TimeSpan.FromSeconds(5);
        await Post(Request(token: Token + "-2"));

        var logs = _app.Logs.AllText();
        Assert.Contains("FHIR query", logs, StringComparison.Ordinal); // the failures were logged...
        Assert.DoesNotContain(Token, logs, StringComparison.Ordinal); // ...without the token
        Assert.DoesNotContain("elderly-1", logs, StringComparison.Ordinal); // or the patient's id
    }

    [Fact]
    public async Task ASilentRedisCostsTheCacheBudgetNotTheAnswer()
    {
        // A "Redis" that accepts connections and never answers; the client would wait out its 10-second connect timeout.
        using var silent = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        silent.Start();
        var redis = $"127.0.0.1:{((System.Net.IPEndPoint)silent.LocalEndpoint).Port},connectTimeout=10000,abortConnect=false";
        await using var app = _service.WithWebHostBuilder(b => b.UseSetting("Redis:Configuration", redis));

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var (status, body) = await Post(Request(Token + "-silent-redis"), app);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.NotEmpty(body["cards"]!.AsArray());
        Assert.InRange(clock.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task InstancesSharingRedisFetchThePatientOnce()
    {
        var redis = Environment.GetEnvironmentVariable("CDSHOOKS_TEST_REDIS") ?? "127.0.0.1:6379";
        try
        {
            using var probe = new System.Net.Sockets.TcpClient();
            await probe.ConnectAsync(redis.Split(':')[0], int.Parse(redis.Split(':')[1], System.Globalization.CultureInfo.InvariantCulture), TestContext.Current.CancellationToken);
        }
        catch (System.Net.Sockets.SocketException)
        {
            Assert.Skip($"No Redis server at {redis}. Set CDSHOOKS_TEST_REDIS=host:port, or run .ci/run, which installs and starts one.");
        }

        var instance = Guid.NewGuid().ToString("N"); // a key prefix of its own, so that runs do not share entries
        WebApplicationFactory<Program> WithRedis() => _service.WithWebHostBuilder(b => b.UseSetting("Redis:Configuration", redis + ",defaultDatabase=0,name=" + instance));
        await using var first = WithRedis();
        await using var second = WithRedis();
        var token = "redis-shared-token-" + instance;

        Assert.Equal(HttpStatusCode.OK, (await Post(Request(token), first)).Status);
        var fetched = _fhir.Requests.Count;
        Assert.Equal(HttpStatusCode.OK, (await Post(Request(token), second)).Status);

        Assert.True(fetched > 0);
        Assert.Equal(fetched, _fhir.Requests.Count); // the second instance read the first one's fetch from Redis
    }
}
