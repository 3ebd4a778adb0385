using System.Net;
using System.Text.Json.Nodes;
using CdsHooks.Tests;

namespace CdsHooks.Api.Tests;

/// <summary>The knowledge base through the service: tiering by patient, class members, product, brand and text-only
/// medications, silence for drugs that do not interact.</summary>
public sealed class KnowledgeCardTests(CdsHooksApplication app) : IClassFixture<CdsHooksApplication>
{
    private const string OrderSign = "/cds-services/medication-safety-order-sign";
    private const string RxNorm = "http://www.nlm.nih.gov/research/umls/rxnorm";

    private readonly HttpClient _client = app.CreateClient();

    private static JsonNode Sample(string name) => Repository.SampleNode(name);

    private async Task<JsonArray> Cards(JsonNode request)
    {
        var response = await _client.PostJson(OrderSign, request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Json())["cards"]!.AsArray();
    }

    // The 40-year-old's clonazepam as another medication, coded or text-only.
    private static JsonNode WithActive(JsonNode request, JsonObject medication)
    {
        var active = request["prefetch"]!["medications"]!["entry"]![0]!["resource"]!;
        active["medicationCodeableConcept"] = medication;
        return request;
    }

    private static JsonObject Coded(string code, string display) => new()
    {
        ["coding"] = new JsonArray(new JsonObject { ["system"] = RxNorm, ["code"] = code, ["display"] = display }),
        ["text"] = display,
    };

    [Fact]
    public async Task IndexPairIsTieredByThePatient()
    {
        var young = Assert.Single(await Cards(Sample("order-sign-mirtazapine-40-year-old-on-clonazepam.json")))!;
        var frail = await Cards(Sample("order-sign-mirtazapine-80-year-old-copd-high-doses.json"));

        Assert.Equal("warning", (string)young["indicator"]!);
        var card = Assert.Single(frail)!;
        Assert.Equal("critical", (string)card["indicator"]!);
        var detail = (string)card["detail"]!;
        Assert.Contains("age 80", detail, StringComparison.Ordinal);
        Assert.Contains("COPD", detail, StringComparison.Ordinal);
        Assert.Contains("2 mg/day", detail, StringComparison.Ordinal); // clonazepam 1 mg twice daily
        Assert.Contains("Beers", detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("197321", "alprazolam 1 MG Oral Tablet", "alprazolam")]
    [InlineData("197590", "diazepam 2 MG Oral Tablet", "diazepam")]
    [InlineData("104699", "diazepam 2 MG Oral Tablet [Valium]", "diazepam")]
    [InlineData("6470", "lorazepam", "lorazepam")]
    [InlineData("349198", "clonazepam 0.5 MG Disintegrating Oral Tablet", "clonazepam")]
    [InlineData("206157", "clonazepam 0.5 MG Oral Tablet [Klonopin]", "clonazepam")]
    public async Task OtherBenzodiazepinesBrandsAndProductCodesGiveTheCard(string code, string display, string ingredient)
    {
        var request = WithActive(Sample("order-sign-mirtazapine-40-year-old-on-clonazepam.json"), Coded(code, display));

        var card = Assert.Single(await Cards(request))!;

        Assert.Contains(ingredient, (string)card["summary"]!, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Klonopin 0.5 mg tablet", "clonazepam")]
    [InlineData("Xanax 0.25 mg", "alprazolam")]
    [InlineData("LORAZEPAM 1MG TAB", "lorazepam")]
    public async Task TextOnlyMedicationsAreRecognised(string text, string ingredient)
    {
        var request = WithActive(Sample("order-sign-mirtazapine-40-year-old-on-clonazepam.json"), new JsonObject { ["text"] = text });

        var card = Assert.Single(await Cards(request))!;

        Assert.Contains(ingredient, (string)card["summary"]!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task LocalCodeFirstAndRxNormSecondIsRecognised()
    {
        var concept = Coded("197527", "clonazepam 0.5 MG Oral Tablet");
        concept["coding"]!.AsArray().Insert(0, new JsonObject { ["system"] = "urn:oid:1.2.840.114350.1.13.1", ["code"] = "KLON05" });
        var request = WithActive(Sample("order-sign-mirtazapine-40-year-old-on-clonazepam.json"), concept);

        Assert.Single(await Cards(request));
    }

    [Theory]
    [InlineData("314076", "lisinopril 10 MG Oral Tablet")]
    [InlineData("308191", "amoxicillin 500 MG Oral Capsule")]
    [InlineData("", "Metformin 500 mg tablet")]
    public async Task NonInteractingDrugsGiveNoCard(string code, string display)
    {
        var medication = code.Length > 0 ? Coded(code, display) : new JsonObject { ["text"] = display };
        var request = WithActive(Sample("order-sign-mirtazapine-40-year-old-on-clonazepam.json"), medication);

        Assert.Empty(await Cards(request));
    }

    [Fact]
    public async Task BrokenRuleFileStopsTheServiceWithFileAndField()
    {
        var copy = Repository.CopyCards();

        var rule = Path.Combine(copy, "rules", "mirtazapine-benzodiazepine.yaml");
        File.WriteAllText(rule, File.ReadAllText(rule).Replace("b: [benzodiazepines]", "b: [benzos]", StringComparison.Ordinal));

        // The real service process, as an operator would start it: it must refuse to start and say why.
        var start = new System.Diagnostics.ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "CdsHooks.Api.dll")])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            Environment = { ["Knowledge__Path"] = copy, ["ASPNETCORE_URLS"] = "http://127.0.0.1:0", ["ASPNETCORE_ENVIRONMENT"] = "Development" },
        };
        using var process = System.Diagnostics.Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var errors = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(60)).Token);

        Assert.Equal(1, process.ExitCode);
        Assert.Contains("rules/mirtazapine-benzodiazepine.yaml: drugs.b: no value set named 'benzos'", await output + await errors,
            StringComparison.Ordinal);
        Directory.Delete(copy, recursive: true);
    }
}
