using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using CdsHooks.Tests;

namespace CdsHooks.Api.Tests;

/// <summary>Each class of bad input gets a 4xx with a problem body that locates the problem without repeating it.</summary>
public sealed class BadInputTests(CdsHooksApplication app) : IClassFixture<CdsHooksApplication>
{
    private const string OrderSign = "/cds-services/medication-safety-order-sign";
    private const string Canary = "Zebediah-Canary";

    private readonly HttpClient _client = app.CreateClient();

    private static JsonNode Index() => Repository.SampleNode("order-sign-mirtazapine-80-year-old-on-clonazepam.json");

    private static async Task<JsonNode> Problem(HttpResponseMessage response, HttpStatusCode status)
    {
        Assert.Equal(status, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var text = await response.Content.ReadAsStringAsync();
        Assert.DoesNotContain(Canary, text, StringComparison.Ordinal);
        var problem = JsonNode.Parse(text)!;
        Assert.Equal((int)status, (int)problem["status"]!);
        Assert.False(string.IsNullOrWhiteSpace((string?)problem["title"]));
        return problem;
    }

    private static IEnumerable<string> Locations(JsonNode problem) =>
        problem["issues"]!.AsArray().Select(i => (string)i!["location"]!);

    [Theory]
    [InlineData("{\"hook\": \"order-sign\", ")]
    [InlineData("not json at all " + Canary)]
    [InlineData("")]
    [InlineData("{\"hook\": \"order-sign\"} trailing")]
    // A property name that spells no Unicode text (a lone surrogate escaped), in an element no rule reads.
    [InlineData("{\"hook\": \"order-sign\", \"extension\": {\"\\ud800\": 1}}")]
    public async Task MalformedJsonIs400(string body)
    {
        var problem = await Problem(await _client.PostJson(OrderSign, body), HttpStatusCode.BadRequest);

        Assert.Equal("Malformed JSON", (string)problem["title"]!);
    }

    [Fact]
    public async Task DuplicateKeysAre400WithTheLineAndByte()
    {
        var problem = await Problem(await _client.PostJson(OrderSign, "{\"hook\":\"order-sign\",\n  \"hook\":\"order-sign\"}"), HttpStatusCode.BadRequest);

        Assert.Equal("Malformed JSON", (string)problem["title"]!);
        Assert.Equal(["line 2, byte 2"], Locations(problem));
    }

    [Fact]
    public async Task DuplicateKeysInAnElementNoRuleReadsAre400()
    {
        // The body is read in one pass that skips what no rule reads: duplicates there are refused all the same.
        var body = Index().ToJsonString().Replace("\"birthDate\"", "\"name\":[{\"family\":\"A\",\"family\":\"B\"}],\"birthDate\"", StringComparison.Ordinal);

        var problem = await Problem(await _client.PostJson(OrderSign, body), HttpStatusCode.BadRequest);

        Assert.Equal("Malformed JSON", (string)problem["title"]!);
    }

    [Fact]
    public async Task ABodyWithAByteOrderMarkIsRead()
    {
        using var content = new ByteArrayContent([0xEF, 0xBB, 0xBF, .. Encoding.UTF8.GetBytes(Index().ToJsonString())]);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");

        var response = await _client.PostAsync(OrderSign, content, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.NotEmpty((await response.Json())["cards"]!.AsArray());
    }

    [Fact]
    public async Task DeeplyNestedJsonIs400() =>
        await Problem(await _client.PostJson(OrderSign, new string('[', 200) + new string(']', 200)), HttpStatusCode.BadRequest);

    [Theory]
    [InlineData("[]")]
    [InlineData("42")]
    [InlineData("{}")]
    public async Task BodyThatIsNotARequestIs400(string body) =>
        await Problem(await _client.PostJson(OrderSign, body), HttpStatusCode.BadRequest);

    [Fact]
    public async Task MissingFieldsAreListedTogether()
    {
        var request = Index();
        request.AsObject().Remove("hookInstance");
        request["context"]!.AsObject().Remove("draftOrders");

        var problem = await Problem(await _client.PostJson(OrderSign, request), HttpStatusCode.BadRequest);

        Assert.Contains("hookInstance", Locations(problem));
        Assert.Contains("context.draftOrders", Locations(problem));
    }

    [Fact]
    public async Task WrongTypedFhirElementIs400WithItsPathAndWithoutItsValue()
    {
        var request = Index();
        request["prefetch"]!["patient"]!["birthDate"] = Canary;

        var problem = await Problem(await _client.PostJson(OrderSign, request), HttpStatusCode.BadRequest);

        Assert.Contains("prefetch.patient.birthDate", Locations(problem));
    }

    [Fact]
    public async Task WrongShapedFhirElementIs400()
    {
        var request = Index();
        request["prefetch"]!["medications"]!["entry"]![0]!["resource"]!["dosageInstruction"] = Canary;

        var problem = await Problem(await _client.PostJson(OrderSign, request), HttpStatusCode.BadRequest);

        Assert.Contains(Locations(problem), l => l.StartsWith("prefetch.medications.entry[0].resource.dosageInstruction", StringComparison.Ordinal));
    }

    [Fact]
    public async Task HookTheServiceDoesNotServeIs400()
    {
        var request = Index();
        request["hook"] = "patient-view";

        var problem = await Problem(await _client.PostJson(OrderSign, request), HttpStatusCode.BadRequest);

        Assert.Contains("hook", Locations(problem));
    }

    [Fact]
    public async Task UnknownServiceIs404() =>
        await Problem(await _client.PostJson("/cds-services/drug-price-lookup", Index()), HttpStatusCode.NotFound);

    [Fact]
    public async Task NonJsonContentTypeIs415()
    {
        var response = await _client.PostAsync(new Uri(OrderSign, UriKind.Relative),
            new StringContent(Index().ToJsonString(), Encoding.UTF8, "text/plain"), TestContext.Current.CancellationToken);

        await Problem(response, HttpStatusCode.UnsupportedMediaType);
    }

    [Fact]
    public async Task GetOnAServiceIs405WithAProblemBody()
    {
        var response = await _client.GetAsync(new Uri(OrderSign, UriKind.Relative), TestContext.Current.CancellationToken);

        await Problem(response, HttpStatusCode.MethodNotAllowed);
    }

    [Theory]
    [InlineData("DomainResource")]
    [InlineData("Resource")]
    public async Task AbstractResourceTypesAre400(string type)
    {
        var request = Index();
        request["context"]!["draftOrders"]!["entry"]![0]!["resource"]!["resourceType"] = type;

        await Problem(await _client.PostJson(OrderSign, request), HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task APrefetchKeyHoldingTheWrongResourceIs400()
    {
        var request = Index();
        request["prefetch"]!["medications"] = request["prefetch"]!["patient"]!.DeepClone();

        var problem = await Problem(await _client.PostJson(OrderSign, request), HttpStatusCode.BadRequest);

        Assert.Contains("prefetch.medications", Locations(problem));
    }

    [Fact]
    public async Task AnotherPatientsRecordInPrefetchIs400()
    {
        var request = Index();
        request["prefetch"]!["patient"]!["id"] = "someone-else";

        var problem = await Problem(await _client.PostJson(OrderSign, request), HttpStatusCode.BadRequest);

        Assert.Contains("prefetch.patient.id", Locations(problem));
    }

    [Fact]
    public async Task ANullPatientIsMissingData()
    {
        var request = Index();
        request["prefetch"]!["patient"] = null;

        var response = await _client.PostJson(OrderSign, request);

        Assert.Equal(HttpStatusCode.PreconditionFailed, response.StatusCode);
    }

    [Fact]
    public async Task AHookInstanceThatIsNotAnIdentifierIs400()
    {
        var request = Index();
        request["hookInstance"] = new string('x', 129);

        var problem = await Problem(await _client.PostJson(OrderSign, request), HttpStatusCode.BadRequest);

        Assert.Contains("hookInstance", Locations(problem));
    }

    [Theory]
    [InlineData("0", "d")]
    [InlineData("-1", "h")]
    [InlineData("1e-27", "wk")]
    public async Task ImpossibleDosageTimingIsReadAsAnUnknownDoseNotA500(string period, string unit)
    {
        var request = Index();
        var repeat = request["context"]!["draftOrders"]!["entry"]![0]!["resource"]!["dosageInstruction"]![0]!["timing"]!["repeat"]!.AsObject();
        repeat["period"] = JsonNode.Parse(period);
        repeat["periodUnit"] = unit;
        repeat.Remove("when");

        var response = await _client.PostJson(OrderSign, request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }
}
