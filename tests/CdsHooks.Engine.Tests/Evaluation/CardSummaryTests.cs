using CdsHooks.Engine.Evaluation;
using CdsHooks.Engine.Knowledge;
using CdsHooks.Engine.Patients;
using CdsHooks.Tests;

namespace CdsHooks.Engine.Tests.Evaluation;

/// <summary>A card's summary: the rule's template with the drugs on each side named (two at most, then "and N more"),
/// the count on side a, a capital first, and within the length a card's summary may have. And the sources its detail
/// cites, as markdown links.</summary>
public class CardSummaryTests
{
    private static readonly KnowledgeBase Knowledge = KnowledgeLoader.Load(Repository.Cards);
    private const string Sedation = ": additive CNS depression (sedation, impaired motor skills, falls)";

    // Mirtazapine ordered beside the first `count` of alprazolam, clonazepam, diazepam and lorazepam.
    private static Finding MirtazapineWithBenzodiazepines(int count)
    {
        string[] benzodiazepines = ["596", "2598", "3322", "6470"];
        var medications = new List<MedicationUse> { Drug("311725", MedicationStatus.New) };
        medications.AddRange(benzodiazepines.Take(count).Select(code => Drug(code, MedicationStatus.Current)));
        var patient = new PatientContext(50, medications, new HashSet<string>(), new DateOnly(2026, 11, 26));
        return new Evaluator(Knowledge).Evaluate(patient).SelectMany(p => p.All).Single(f => f.Rule.Id == "mirtazapine-benzodiazepine");

        static MedicationUse Drug(string code, MedicationStatus status) =>
            new($"drug {code}", [code], "", null, null, status, null, $"{status}-{code}");
    }

    [Theory]
    [InlineData(1, "Mirtazapine + alprazolam")]
    [InlineData(2, "Mirtazapine + alprazolam and clonazepam")]
    [InlineData(3, "Mirtazapine + alprazolam, clonazepam and diazepam")]
    [InlineData(4, "Mirtazapine + alprazolam, clonazepam and 2 more")]
    public void TheDrugsAreNamedTwoAtMostThenCounted(int benzodiazepines, string drugs)
    {
        Assert.Equal(drugs + Sedation, CardBuilder.Summary(MirtazapineWithBenzodiazepines(benzodiazepines)));
    }

    [Fact]
    public void TwoOrdersOfOneIngredientNameItOnce()
    {
        var medications = new List<MedicationUse>
        {
            new("mirtazapine", ["311725"], "", null, null, MedicationStatus.New, null, "new-mirtazapine"),
            new("clonazepam", ["2598"], "", null, null, MedicationStatus.Current, null, "clonazepam-1"),
            new("clonazepam", ["2598"], "", null, null, MedicationStatus.Current, null, "clonazepam-2"),
        };
        var patient = new PatientContext(50, medications, new HashSet<string>(), new DateOnly(2026, 11, 26));
        var finding = new Evaluator(Knowledge).Evaluate(patient).SelectMany(p => p.All).Single(f => f.Rule.Id == "mirtazapine-benzodiazepine");

        Assert.Equal(2, finding.SideB.Count);
        Assert.Equal("Mirtazapine + clonazepam" + Sedation, CardBuilder.Summary(finding));
    }

    [Fact]
    public void ASummaryTooLongNamesOneDrugASideThenIsCut()
    {
        var finding = MirtazapineWithBenzodiazepines(4);
        var longer = finding with { Rule = finding.Rule with { Summary = "{a} + {b}: " + new string('x', 95) } };
        var longest = finding with { Rule = finding.Rule with { Summary = "{a} + {b}: " + new string('x', 110) } };

        Assert.Equal("Mirtazapine + alprazolam and 3 more: " + new string('x', 95), CardBuilder.Summary(longer));
        var cut = CardBuilder.Summary(longest);
        Assert.Equal(KnowledgeLoader.MaxSummaryLength, cut.Length);
        Assert.Equal(("Mirtazapine + alprazolam and 3 more: " + new string('x', 110))[..(KnowledgeLoader.MaxSummaryLength - 1)] + "…", cut);
    }

    [Fact]
    public void TheCountOfSideAAndOtherBracesAreWrittenAsTheTemplateSays()
    {
        var finding = MirtazapineWithBenzodiazepines(2);

        Assert.Equal("1 drug on side a (mirtazapine: mirtazapine), {x} and {b: alprazolam and clonazepam {",
            CardBuilder.Summary(finding with { Rule = finding.Rule with { Summary = "{n} drug on side a ({a}: {a}), {x} and {b: {b} {" } }));
        Assert.Equal("Alprazolam and clonazepam after mirtazapine",
            CardBuilder.Summary(finding with { Rule = finding.Rule with { Summary = "{b} after {a}" } }));
    }

    [Fact]
    public void TheDetailCitesEachSourceItShowsAsAMarkdownLink()
    {
        var finding = MirtazapineWithBenzodiazepines(2);
        var rule = finding.Rule;
        // A source that backs a factor of the rule is cited only when that factor applies.
        var cited = rule.Sources.Where(s => !rule.Factors.Any(f => f.Source == s) || finding.Factors.Any(f => f.Source == s)).ToList();
        Assert.NotEmpty(cited);

        var detail = IssuedCard.From(new Problem(finding, [])).Card.Detail!.ToString();

        Assert.EndsWith("**Sources:** " + string.Join("; ", cited.Select(s => $"[{s.Label}]({s.Url})")) + ".", detail, StringComparison.Ordinal);
    }

    [Fact]
    public void ASourcesLinkIsItsOwnAfterACopyAndEqualityIsThatOfItsMembers()
    {
        var source = new RuleSource("label-a", "Label A", "https://a.example/label");
        Assert.Equal("[Label A](https://a.example/label)", source.Link);

        var moved = source with { Url = "https://b.example/label" };
        Assert.Equal("[Label A](https://b.example/label)", moved.Link);

        // One with its link made, one without: the same source.
        var again = new RuleSource("label-a", "Label A", "https://a.example/label");
        Assert.Equal(source, again);
        Assert.Equal(source.GetHashCode(), again.GetHashCode());
        Assert.NotEqual(source, moved);
    }
}
