using System.Net;
using CdsHooks.Api.Audit;
using CdsHooks.Tests;
using Microsoft.Extensions.Options;

namespace CdsHooks.Api.Tests.Operations;

public sealed class OperationsTests(CdsHooksApplication app) : IClassFixture<CdsHooksApplication>
{
    private readonly HttpClient _client = app.CreateClient();

    private Task<HttpResponseMessage> Get(string path) => _client.GetAsync(new Uri(path, UriKind.Relative), TestContext.Current.CancellationToken);

    [Fact]
    public async Task LivenessAndReadinessAnswerWithoutAToken()
    {
        Assert.Equal(HttpStatusCode.OK, (await Get("/health/live")).StatusCode);
        var ready = await Get("/health/ready");
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Equal("Healthy", await ready.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task AnUnreachableDatabaseMakesTheServiceNotReady()
    {
        using var store = new CardStore(Options.Create(new AuditOptions { Provider = "postgres", ConnectionString = "Host=127.0.0.1;Port=1;Username=x;Timeout=1" }));

        Assert.False(await store.IsReachableAsync(TestContext.Current.CancellationToken));
    }

    // The Prometheus text after a hook call that shows a card.
    private async Task<string> MetricsAfterAHookCall()
    {
        var response = await _client.PostJson("/cds-services/medication-safety-order-sign", Repository.SampleNode("order-sign-mirtazapine-80-year-old-on-clonazepam.json"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await (await Get("/metrics")).Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task ACardShowsUpInTheMetrics()
    {
        var metrics = await MetricsAfterAHookCall();

        Assert.Contains("cdshooks_cards_total{", metrics, StringComparison.Ordinal);
        Assert.Contains("rule=\"mirtazapine-benzodiazepine\"", metrics, StringComparison.Ordinal);
        Assert.Contains("cdshooks_hook_duration_milliseconds_bucket{", metrics, StringComparison.Ordinal);
        Assert.DoesNotContain("elderly-1", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MetricsRecordedOnEveryCallThatNobodyNeedsAreNotListenedTo()
    {
        var metrics = await MetricsAfterAHookCall();

        Assert.Contains("http_server_request_duration_seconds_bucket{", metrics, StringComparison.Ordinal);
        Assert.Contains("aspnetcore_rate_limiting_requests_total{", metrics, StringComparison.Ordinal);
        Assert.DoesNotContain("aspnetcore_memory_pool_", metrics, StringComparison.Ordinal);
        Assert.DoesNotContain("aspnetcore_routing_match_attempts", metrics, StringComparison.Ordinal);
        Assert.DoesNotContain("aspnetcore_rate_limiting_request_lease_duration", metrics, StringComparison.Ordinal);
        Assert.DoesNotContain("aspnetcore_rate_limiting_active_request_leases", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheOpenApiDocumentDescribesTheHttpSurface()
    {
        var document = await (await Get("/openapi/v1.json")).Content.ReadAsStringAsync(TestContext.Current.CancellationToken);

        Assert.Contains("\"/cds-services/{id}\"", document, StringComparison.Ordinal);
        Assert.Contains("\"/cds-services/{id}/feedback\"", document, StringComparison.Ordinal);
        Assert.Contains("\"/analytics/outcomes\"", document, StringComparison.Ordinal);
    }

    private static readonly string[] CardMembers = ["uuid", "summary", "indicator", "source", "detail", "suggestions", "overrideReasons"];

    [Fact]
    public async Task TheOpenApiDocumentDescribesTheAnswersMembers()
    {
        // The answer is written by its own writer (CdsAnswer) and a card's detail by its converter, which a schema
        // generator cannot see into: the document is made from the records, and the detail described as a string.
        var document = System.Text.Json.Nodes.JsonNode.Parse(await (await Get("/openapi/v1.json")).Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!;
        var schemas = document["components"]!["schemas"]!;
        var answer = document["paths"]!["/cds-services/{id}"]!["post"]!["responses"]!["200"]!["content"]!["application/json"]!["schema"]!;

        Assert.Equal("#/components/schemas/CdsResponse", (string?)answer["$ref"]);
        Assert.NotNull(schemas["CdsResponse"]!["properties"]!["cards"]);
        var card = schemas["Card"]!["properties"]!;
        Assert.All(CardMembers, name => Assert.NotNull(card[name]));
        Assert.Contains("string", card["detail"]!.ToJsonString(), StringComparison.Ordinal);
    }
}
