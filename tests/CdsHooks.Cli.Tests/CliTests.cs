using System.Diagnostics;
using System.Text.Json.Nodes;
using CdsHooks.Tests;

namespace CdsHooks.Cli.Tests;

/// <summary>The CLI as a pharmacist runs it: a real process, its output and its exit code.</summary>
public sealed class CliTests
{
    private static string Sample(string name) => Path.Combine(Repository.Root, "samples", "requests", name);

    private static async Task<(int Exit, string Output)> Run(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "cdshooks.dll"), .. args])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Repository.Root,
            Environment = { ["COLUMNS"] = "200", ["NO_COLOR"] = "1" },
        };
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var errors = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await process.WaitForExitAsync(TestContext.Current.CancellationToken);
        return (process.ExitCode, await output + await errors);
    }

    [Fact]
    public async Task EvaluatePrintsTheCards()
    {
        var (exit, output) = await Run("evaluate", Sample("order-sign-mirtazapine-80-year-old-copd-high-doses.json"));

        Assert.Equal(0, exit);
        Assert.Contains("CRITICAL", output, StringComparison.Ordinal);
        Assert.Contains("Mirtazapine + clonazepam", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task EvaluateAsJsonIsTheServicesAnswer()
    {
        var (exit, output) = await Run("evaluate", Sample("order-sign-mirtazapine-40-year-old-on-clonazepam.json"), "--json");

        Assert.Equal(0, exit);
        var card = Assert.Single(JsonNode.Parse(output)!["cards"]!.AsArray())!;
        Assert.Equal("warning", (string)card["indicator"]!);
    }

    [Fact]
    public async Task EvaluateOfUnrelatedDrugsSaysThereIsNoCard()
    {
        var (exit, output) = await Run("evaluate", Sample("order-sign-amoxicillin-unrelated.json"));

        Assert.Equal(0, exit);
        Assert.Contains("No card", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ExplainSaysForEveryRuleWhetherItFiredAndWhy()
    {
        var (exit, output) = await Run("explain", Sample("order-sign-mirtazapine-80-year-old-on-clonazepam.json"));

        Assert.Equal(0, exit);
        Assert.Contains("mirtazapine-benzodiazepine  fired: warning", output, StringComparison.Ordinal);
        Assert.Contains("factor older-adult: applies (age 80, threshold 65)", output, StringComparison.Ordinal);
        Assert.Contains("factor respiratory-disease: applies", output, StringComparison.Ordinal);
        Assert.Contains("benzodiazepine-opioid  not fired", output, StringComparison.Ordinal);
        Assert.Contains("mirtazapine-nsaid  disabled", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnInvalidRequestExitsWith2()
    {
        var file = Path.GetTempFileName();
        await File.WriteAllTextAsync(file, """{"hook": "order-sign", "context": {}}""", TestContext.Current.CancellationToken);

        var (exit, output) = await Run("evaluate", file);

        Assert.Equal(2, exit);
        Assert.Contains("hookInstance", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MissingPatientDataExitsWith4()
    {
        var request = JsonNode.Parse(await File.ReadAllTextAsync(Sample("order-sign-mirtazapine-80-year-old-on-clonazepam.json"), TestContext.Current.CancellationToken))!;
        request.AsObject().Remove("prefetch");
        request.AsObject().Remove("fhirServer");
        var file = Path.GetTempFileName();
        await File.WriteAllTextAsync(file, request.ToJsonString(), TestContext.Current.CancellationToken);

        var (exit, output) = await Run("evaluate", file);

        Assert.Equal(4, exit);
        Assert.Contains("prefetch.patient", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckPassesOnTheShippedKnowledge()
    {
        var (exit, output) = await Run("check");

        Assert.Equal(0, exit);
        Assert.Contains(" 0 failed", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckNamesTheFileAndFieldOfABrokenRule()
    {
        var cards = Repository.CopyCards();
        var rule = Path.Combine(cards, "rules", "mirtazapine-benzodiazepine.yaml");
        await File.WriteAllTextAsync(rule, (await File.ReadAllTextAsync(rule, TestContext.Current.CancellationToken)).Replace("b: [benzodiazepines]", "b: [benzos]", StringComparison.Ordinal), TestContext.Current.CancellationToken);

        var (exit, output) = await Run("check", "--cards", cards);

        Assert.Equal(3, exit);
        Assert.Contains("rules/mirtazapine-benzodiazepine.yaml", output, StringComparison.Ordinal);
        Assert.Contains("drugs.b", output, StringComparison.Ordinal);
        Directory.Delete(cards, recursive: true);
    }

    [Fact]
    public async Task CheckFailsWhenAnExampleNoLongerHolds()
    {
        var cards = Repository.CopyCards();
        var rule = Path.Combine(cards, "rules", "mirtazapine-benzodiazepine.yaml");
        var text = await File.ReadAllTextAsync(rule, TestContext.Current.CancellationToken);
        await File.WriteAllTextAsync(rule, text.Replace("expect: { card: true, indicator: warning, factors: [older-adult] }", "expect: { card: true, indicator: info, factors: [older-adult] }", StringComparison.Ordinal), TestContext.Current.CancellationToken);

        var (exit, output) = await Run("check", "--cards", cards);

        Assert.Equal(1, exit);
        Assert.Contains("expected info [older-adult], got warning [older-adult]", output, StringComparison.Ordinal);
        Directory.Delete(cards, recursive: true);
    }

    [Theory]
    [InlineData("evaluate")]
    [InlineData("explain")]
    [InlineData("check")]
    [InlineData("valuesets")]
    public async Task EveryCommandHasHelp(string command)
    {
        var (exit, output) = await Run(command, "--help");

        Assert.Equal(0, exit);
        Assert.Contains("USAGE", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ValueSetsAreRebuiltFromAnRxNormRelease()
    {
        // A release in miniature, in RxNorm's own format: clonazepam (IN 2598), its SCDC, a new SCD, and its brand SBD.
        var release = Directory.CreateTempSubdirectory("rxnorm-").FullName;
        await File.WriteAllLinesAsync(Path.Combine(release, "RXNCONSO.RRF"),
        [
            "2598|ENG||||||1|||2598|RXNORM|IN|2598|clonazepam||N|4096|",
            "315171|ENG||||||2|||315171|RXNORM|SCDC|315171|clonazepam 0.5 MG||N|4096|",
            "999001|ENG||||||3|||999001|RXNORM|SCD|999001|clonazepam 0.5 MG Extended Release Oral Tablet||N|4096|",
            "999002|ENG||||||4|||999002|RXNORM|SBD|999002|clonazepam 0.5 MG Extended Release Oral Tablet [Newbrand]||N|4096|",
            "15996|ENG||||||5|||15996|RXNORM|IN|15996|mirtazapine||N|4096|",
        ], TestContext.Current.CancellationToken);
        await File.WriteAllLinesAsync(Path.Combine(release, "RXNREL.RRF"),
        [
            // RXCUI2 has RELA to RXCUI1
            "2598||CUI|RO|315171||CUI|has_ingredient|R1||RXNORM||||N||",
            "315171||CUI|RO|999001||CUI|consists_of|R2||RXNORM||||N||",
            "999001||CUI|RO|999002||CUI|tradename_of|R3||RXNORM||||N||",
        ], TestContext.Current.CancellationToken);
        var source = Path.Combine(Repository.CopyCards(), "source");
        var output = Directory.CreateTempSubdirectory("valuesets-").FullName;

        var (exit, printed) = await Run("valuesets", "--rxnconso", Path.Combine(release, "RXNCONSO.RRF"), "--rxnrel", Path.Combine(release, "RXNREL.RRF"),
            "--source", source, "--out", output);

        Assert.Equal(0, exit);
        Assert.Contains("2 product codes", printed, StringComparison.Ordinal);
        var clonazepam = await File.ReadAllTextAsync(Path.Combine(output, "clonazepam.json"), TestContext.Current.CancellationToken);
        Assert.Contains("\"999001\"", clonazepam, StringComparison.Ordinal);
        Assert.Contains("\"999002\"", clonazepam, StringComparison.Ordinal);
        Assert.Contains("Newbrand", clonazepam, StringComparison.Ordinal); // the brand, from the SBD's name
    }
}
