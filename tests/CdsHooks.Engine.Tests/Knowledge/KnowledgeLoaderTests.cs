using CdsHooks.Engine.Hooks;
using CdsHooks.Engine.Knowledge;
using CdsHooks.Tests;

namespace CdsHooks.Engine.Tests.Knowledge;

public sealed class KnowledgeLoaderTests : IDisposable
{
    private readonly string _copy = Repository.CopyCards();

    public void Dispose() => Directory.Delete(_copy, recursive: true);

    private string IndexRule => Path.Combine(_copy, "rules", "mirtazapine-benzodiazepine.yaml");

    private static readonly string MirtazapineValueSet = Path.Combine("valuesets", "mirtazapine.json");

    [Fact]
    public void ShippedKnowledgeLoadsWithTheIndexRuleAndItsDrugGroups()
    {
        var knowledge = KnowledgeLoader.Load(Repository.Cards);

        var rule = Assert.Single(knowledge.Rules, r => r.Id == "mirtazapine-benzodiazepine");
        Assert.Equal(Indicator.Warning, rule.Indicator);
        Assert.True(Rule.InAny(rule.SideB, "2598"));            // clonazepam
        Assert.True(Rule.InAny(rule.SideB, "6470"));            // lorazepam
        Assert.Equal("clonazepam", Assert.Single(knowledge.IngredientsOf("206157")).Name); // Klonopin 0.5 mg SBD
        Assert.Equal("mirtazapine", Assert.Single(knowledge.IngredientsOf("283406")).Name); // 15 mg ODT
        Assert.Empty(knowledge.IngredientsOf("29046"));         // lisinopril: in no group
    }

    [Fact]
    public void MultiIngredientProductResolvesToEveryIngredient()
    {
        var knowledge = KnowledgeLoader.Load(Repository.Cards);

        // amitriptyline hydrochloride 12.5 MG / chlordiazepoxide 5 MG Oral Tablet: a tricyclic and a benzodiazepine
        Assert.Equal(["amitriptyline", "chlordiazepoxide"], knowledge.IngredientsOf("856769").Select(i => i.Name).Order());
    }

    [Theory]
    [InlineData("b: [benzodiazepines]", "b: [benzos]", "drugs.b", "no value set named 'benzos'")]
    [InlineData("b: [benzodiazepines]", "b: [copd]", "drugs.b", "is a condition value set")]
    [InlineData("condition: [liver-disease]", "condition: [opioids]", "factors[3].when.condition", "is a drug value set")]
    [InlineData("- id: older-adult\n    when: { ageAtLeast: 65 }", "- id: older-adult\n    when: {}", "factors[0].when", "at least one of")]
    [InlineData("dailyDoseAbove: { side: b,", "dailyDoseAbove: { side: c,", "factors[4].when.dailyDoseAbove.side", "a or b")]
    [InlineData("new: [\"311725 15 mg/day\"]", "new: [\"311725 fifteen mg\"]", "examples[0].new[0]", "RxNorm code")]
    [InlineData("severity: major", "severity: serious", "severity", "contraindicated")]
    [InlineData("severity: major\nindicator: warning", "severity: major\nindicator: severe", "indicator", "not a CDS Hooks indicator")]
    [InlineData("    url: https://doi.org/10.1111/jgs.18372", "    url: see the paper", "sources[1].url", "absolute")]
    [InlineData("    source: beers-2023", "    source: beers-2019", "factors[0].source", "beers-2019")]
    [InlineData("version: 3\n", "", "version", "version")]
    [InlineData("summary: \"{a} + {b}: additive", "summary: \"{a} + {b}: a summary far too long for any EHR banner, padded out with words until it cannot fit in one hundred and forty characters: additive", "summary", "fewer than 140")]
    public void BrokenRuleFileIsRefusedWithFileAndField(string find, string replace, string field, string message)
    {
        var text = File.ReadAllText(IndexRule);
        Assert.Contains(find, text, StringComparison.Ordinal);
        File.WriteAllText(IndexRule, text.Replace(find, replace, StringComparison.Ordinal));

        var error = Assert.Throws<KnowledgeException>(() => KnowledgeLoader.Load(_copy));

        Assert.Equal(Path.Combine("rules", "mirtazapine-benzodiazepine.yaml"), error.File);
        Assert.Equal(field, error.Field);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void YamlSyntaxErrorIsRefusedWithItsLine()
    {
        File.AppendAllText(IndexRule, "\nexamples: [unclosed\n");

        var error = Assert.Throws<KnowledgeException>(() => KnowledgeLoader.Load(_copy));

        Assert.StartsWith("line ", error.Field, StringComparison.Ordinal);
    }

    [Fact]
    public void RuleWithoutANegativeExampleIsRefused()
    {
        var text = File.ReadAllText(IndexRule);
        File.WriteAllText(IndexRule, text.Replace("expect: { card: false }", "expect: { card: true, indicator: warning }", StringComparison.Ordinal));

        var error = Assert.Throws<KnowledgeException>(() => KnowledgeLoader.Load(_copy));

        Assert.Equal("examples", error.Field);
    }

    [Fact]
    public void ValueSetWithoutRxNormSystemIsRefused()
    {
        var file = Path.Combine(_copy, MirtazapineValueSet);
        File.WriteAllText(file, File.ReadAllText(file).Replace(DrugGroup.RxNorm, "http://example.org/local", StringComparison.Ordinal));

        var error = Assert.Throws<KnowledgeException>(() => KnowledgeLoader.Load(_copy));

        Assert.Equal(MirtazapineValueSet, error.File);
        Assert.StartsWith("expansion.contains[0]", error.Field, StringComparison.Ordinal);
    }

    [Fact]
    public void ValueSetWithAMisspeltElementIsRefused()
    {
        var file = Path.Combine(_copy, MirtazapineValueSet);
        File.WriteAllText(file, File.ReadAllText(file).Replace("\"display\"", "\"dispaly\"", StringComparison.Ordinal));

        var error = Assert.Throws<KnowledgeException>(() => KnowledgeLoader.Load(_copy));

        Assert.Equal(MirtazapineValueSet, error.File);
        Assert.Contains("dispaly", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("[]")]
    [InlineData("{\"resourceType\": \"Patient\", \"id\": \"p1\"}")]
    [InlineData("{\"resourceType\": \"Medication\"")]
    public void AValueSetFileThatIsNotAValueSetIsRefusedByName(string json)
    {
        File.WriteAllText(Path.Combine(_copy, MirtazapineValueSet), json);

        var error = Assert.Throws<KnowledgeException>(() => KnowledgeLoader.Load(_copy));

        Assert.Equal(MirtazapineValueSet, error.File);
        Assert.Contains("not a valid FHIR R4 ValueSet", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ValueSetWithElementsOfOtherFhirTypesLoads()
    {
        // An extension's value[x] and a use context's value[x] are types outside the ValueSet classes: the whole
        // FHIR model decides, as it decided before the value set model was made smaller.
        var file = Path.Combine(_copy, MirtazapineValueSet);
        File.WriteAllText(file, File.ReadAllText(file).Replace("\"status\": \"active\",",
            "\"status\": \"active\", \"extension\": [{\"url\": \"http://example.org/reviewed\", \"valueDate\": \"2026-11-01\"}], " +
            "\"useContext\": [{\"code\": {\"code\": \"focus\"}, \"valueCodeableConcept\": {\"text\": \"older adults\"}}],", StringComparison.Ordinal));

        var knowledge = KnowledgeLoader.Load(_copy);

        Assert.Equal("mirtazapine", Assert.Single(knowledge.IngredientsOf("283406")).Name);
    }

    [Fact]
    public void CommittedValueSetsAreWhatTheSourceTablesGenerate()
    {
        var generated = ValueSetGenerator.Generate(Path.Combine(Repository.Cards, "source"));
        var committed = Directory.GetFiles(Path.Combine(Repository.Cards, "valuesets"), "*.json")
            .ToDictionary(f => Path.GetFileName(f), File.ReadAllText);

        Assert.Equal(generated.Keys.Order(), committed.Keys.Order());
        foreach (var (file, json) in generated)
        {
            Assert.True(json == committed[file], $"cards/valuesets/{file} is stale: run `dotnet run tools/generate-valuesets.cs`.");
        }
    }

    [Fact]
    public void UnverifiedIngredientsAreLeftOutOfTheValueSets()
    {
        var knowledge = KnowledgeLoader.Load(Repository.Cards);
        var names = knowledge.DrugGroups.Values.SelectMany(g => g.Ingredients.Values).Select(i => i.Name).ToHashSet();

        Assert.Contains("ritonavir", names);
        Assert.DoesNotContain("cobicistat", names);
        Assert.DoesNotContain("safinamide", names);
    }
}
