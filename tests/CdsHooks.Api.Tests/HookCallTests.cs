using System.Net;
using System.Text.Json.Nodes;
using CdsHooks.Tests;
using Microsoft.Extensions.DependencyInjection;

namespace CdsHooks.Api.Tests;

public sealed class HookCallTests(CdsHooksApplication app) : IClassFixture<CdsHooksApplication>
{
    private const string OrderSign = "/cds-services/medication-safety-order-sign";
    private const string OrderSelect = "/cds-services/medication-safety-order-select";
    private const string MedicationPrescribe = "/cds-services/medication-safety-medication-prescribe";

    private readonly HttpClient _client = app.CreateClient();

    private async Task<JsonArray> Cards(string url, JsonNode request)
    {
        var response = await _client.PostJson(url, request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Json();
        AssertNoNullOrEmptyMembers(body["cards"]!.AsArray());
        return body["cards"]!.AsArray();
    }

    private static JsonNode Sample(string name) => Repository.SampleNode(name);

    [Fact]
    public async Task TheAnswerIsWrittenAsTheSerializerWritesItsRecordsWithTheServicesOptions()
    {
        // The answer goes through its own writer (CdsAnswer, CdsResponseWriter); the HTTP JSON options, by reflection,
        // are the reference, and the OpenAPI document's source.
        var body = System.Text.Encoding.UTF8.GetBytes(Sample("order-sign-mirtazapine-80-year-old-on-clonazepam.json").ToJsonString());
        var engine = app.Services.GetRequiredService<CdsHooks.Engine.CdsEngine>();
        var request = CdsHooks.Engine.Hooks.HookRequestReader.Read(body, CdsHooks.Engine.Hooks.HookCatalog.Find("medication-safety-order-sign")!);
        var answer = (await engine.EvaluateAsync(request, TestContext.Current.CancellationToken)).ToResponse();
        var http = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions>>().Value.SerializerOptions;
        var written = app.Services.GetRequiredService<Hooks.CdsAnswer.Json>().Options;

        Assert.NotEmpty(answer.Cards);
        Assert.Equal(System.Text.Json.JsonSerializer.Serialize(answer, http), System.Text.Json.JsonSerializer.Serialize(answer, written));
        var response = await _client.PostJson(OrderSign, Sample("order-sign-mirtazapine-80-year-old-on-clonazepam.json"));
        Assert.Equal("application/json; charset=utf-8", response.Content.Headers.ContentType?.ToString());
    }

    [Fact]
    public async Task EightyYearOldOnClonazepamPrescribedMirtazapineGetsWarningWithBeersRationale()
    {
        var cards = await Cards(OrderSign, Sample("order-sign-mirtazapine-80-year-old-on-clonazepam.json"));

        var card = Assert.Single(cards)!;
        Assert.Equal("warning", (string)card["indicator"]!);
        var summary = (string)card["summary"]!;
        Assert.True(summary.Length < 140);
        Assert.Contains("Mirtazapine", summary, StringComparison.Ordinal);
        Assert.Contains("clonazepam", summary, StringComparison.Ordinal);
        Assert.Contains("CNS depression", summary, StringComparison.Ordinal);
        var detail = (string)card["detail"]!;
        Assert.Contains("age 80", detail, StringComparison.Ordinal);
        Assert.Contains("Beers", detail, StringComparison.Ordinal);
        Assert.Contains("0.5 mg by mouth twice daily", detail, StringComparison.Ordinal);
        Assert.Contains("falls", detail, StringComparison.Ordinal);
        Assert.Contains("dailymed.nlm.nih.gov", (string)card["source"]!["url"]!, StringComparison.Ordinal);
        Assert.Contains("Mirtazapine", (string)card["source"]!["label"]!, StringComparison.Ordinal);
        Assert.True(Guid.TryParse((string)card["uuid"]!, out _));
        Assert.All(card["overrideReasons"]!.AsArray(), r => Assert.False(string.IsNullOrWhiteSpace((string?)r!["display"])));
    }

    [Fact]
    public async Task FortyYearOldGetsTheInteractionWithoutTheOlderAdultRationale()
    {
        var cards = await Cards(OrderSign, Sample("order-sign-mirtazapine-40-year-old-on-clonazepam.json"));

        var card = Assert.Single(cards)!;
        Assert.Equal("warning", (string)card["indicator"]!);
        Assert.DoesNotContain("Beers", (string)card["detail"]!, StringComparison.Ordinal);
        Assert.DoesNotContain("age 40", (string)card["detail"]!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BothDrugsAsNewOrdersAtOrderSelectGiveOneCard()
    {
        var cards = await Cards(OrderSelect, Sample("order-select-mirtazapine-and-clonazepam-both-new.json"));

        var card = Assert.Single(cards)!;
        Assert.Contains("(new order)", (string)card["detail"]!, StringComparison.Ordinal);
        Assert.Contains("Beers", (string)card["detail"]!, StringComparison.Ordinal); // birth year 1950 only
    }

    [Fact]
    public async Task BothDrugsAsNewOrdersAtOrderSignGiveOneCardNotTwo()
    {
        var request = Sample("order-select-mirtazapine-and-clonazepam-both-new.json");
        request["hook"] = "order-sign";
        request["context"]!.AsObject().Remove("selections");

        var cards = await Cards(OrderSign, request);

        Assert.Single(cards);
    }

    [Fact]
    public async Task LegacyMedicationPrescribeHookGetsTheIndexCard()
    {
        var cards = await Cards(MedicationPrescribe, Sample("medication-prescribe-mirtazapine-80-year-old-on-clonazepam.json"));

        Assert.Equal("warning", (string)Assert.Single(cards)!["indicator"]!);
    }

    [Fact]
    public async Task UnrelatedDrugsProduceNoCardEvenWhenThePatientTakesBothIndexDrugs()
    {
        var request = Sample("order-sign-amoxicillin-unrelated.json");
        var mirtazapine = Sample("order-sign-mirtazapine-80-year-old-on-clonazepam.json")["context"]!["draftOrders"]!["entry"]![0]!.DeepClone();
        mirtazapine["resource"]!["status"] = "active";
        request["prefetch"]!["medications"]!["entry"]!.AsArray().Add(mirtazapine);

        Assert.Empty(await Cards(OrderSign, request));
    }

    [Fact]
    public async Task StoppedClonazepamDoesNotInteract()
    {
        var request = Sample("order-sign-mirtazapine-80-year-old-on-clonazepam.json");
        request["prefetch"]!["medications"]!["entry"]![0]!["resource"]!["status"] = "stopped";

        Assert.Empty(await Cards(OrderSign, request));
    }

    private static JsonNode SpecExample(string file, string hook)
    {
        // The spec's examples carry only the context; a client adds hook and hookInstance.
        var request = JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "SpecExamples", file)))!;
        request["hook"] = hook;
        request["hookInstance"] = Guid.NewGuid().ToString();
        return request;
    }

    [Theory]
    [InlineData("order-sign-R4.json", "order-sign", OrderSign)]
    [InlineData("medication-prescribe-STU3.json", "medication-prescribe", MedicationPrescribe)]
    public async Task SpecExampleRequestsAreAnsweredWithNoCards(string file, string hook, string url)
    {
        // Their orders (amoxicillin, azithromycin, a diet) concern no rule, so no patient data is needed and no card
        // is due. The order-sign example's STU3 Dosage.doseQuantity is an unknown R4 element, tolerated.
        Assert.Empty(await Cards(url, SpecExample(file, hook)));
    }

    [Fact]
    public async Task SpecOrderSelectExampleIsRefusedAtItsNonR4DoseAndRateAndAnsweredOnceCorrected()
    {
        // The spec's order-select example sends "doseAndRate" as an object; R4 has an array. The service says where
        // the problem is rather than guessing.
        var request = SpecExample("order-select-R4.json", "order-select");

        var refused = await _client.PostJson(OrderSelect, request);

        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        var locations = (await refused.Json())["issues"]!.AsArray().Select(i => (string)i!["location"]!);
        Assert.Contains("context.draftOrders.entry[1].resource.dosageInstruction[0].doseAndRate", locations);

        var dosage = request["context"]!["draftOrders"]!["entry"]![1]!["resource"]!["dosageInstruction"]![0]!;
        dosage["doseAndRate"] = new JsonArray(dosage["doseAndRate"]!.DeepClone());
        Assert.Empty(await Cards(OrderSelect, request));
    }

    [Fact]
    public async Task WithoutPrefetchOrFhirServerTheServiceAnswers412WithAnOperationOutcome()
    {
        var request = Sample("order-sign-mirtazapine-80-year-old-on-clonazepam.json");
        request.AsObject().Remove("prefetch");

        var response = await _client.PostJson(OrderSign, request);

        Assert.Equal(HttpStatusCode.PreconditionFailed, response.StatusCode);
        Assert.Equal("application/fhir+json", response.Content.Headers.ContentType?.MediaType);
        var outcome = await response.Json();
        Assert.Equal("OperationOutcome", (string)outcome["resourceType"]!);
        Assert.Equal(["prefetch.medications", "prefetch.patient"],
            outcome["issue"]!.AsArray().Select(i => (string)i!["expression"]![0]!).Order());
    }

    private static void AssertNoNullOrEmptyMembers(JsonArray cards)
    {
        foreach (var card in cards) Walk(card!, "card");

        static void Walk(JsonNode node, string path)
        {
            switch (node)
            {
                case JsonObject obj:
                    Assert.True(obj.Count > 0, $"{path} is an empty object");
                    foreach (var (key, value) in obj)
                    {
                        Assert.True(value is not null, $"{path}.{key} is null");
                        Walk(value, $"{path}.{key}");
                    }

                    break;
                case JsonArray array:
                    Assert.True(array.Count > 0, $"{path} is an empty array");
                    for (var i = 0; i < array.Count; i++)
                    {
                        Assert.True(array[i] is not null, $"{path}[{i}] is null");
                        Walk(array[i]!, $"{path}[{i}]");
                    }

                    break;
                case JsonValue value when value.TryGetValue<string>(out var text):
                    Assert.False(string.IsNullOrWhiteSpace(text), $"{path} is an empty string");
                    break;
            }
        }
    }
}
