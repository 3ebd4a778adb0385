using CdsHooks.Engine.Evaluation;
using CdsHooks.Engine.Knowledge;
using CdsHooks.Engine.Patients;
using CdsHooks.Tests;

namespace CdsHooks.Engine.Tests.Knowledge;

/// <summary>Runs every example that ships with every rule in cards/rules/, against the whole knowledge base, with
/// the rules a site would run (those shipped disabled are enabled here so that their examples run too).</summary>
public class RuleExampleTests
{
    private static readonly DateOnly Today = new(2026, 11, 26);

    private static readonly KnowledgeBase Shipped = KnowledgeLoader.Load(Repository.Cards);

    private static readonly KnowledgeBase Knowledge = KnowledgeLoader.Load(Repository.Cards, new SiteSettings
    {
        EnabledRules = [.. Shipped.Rules.Where(r => !r.Enabled).Select(r => r.Id)],
    });

    public static TheoryData<string, string> Examples()
    {
        var data = new TheoryData<string, string>();
        foreach (var rule in Knowledge.Rules)
        {
            foreach (var example in rule.Examples) data.Add(rule.Id, example.Name);
        }

        return data;
    }

    /// <summary>The patient an example describes, as the engine would see it from an EHR.</summary>
    public static PatientContext PatientOf(RuleExample example, DateOnly today) => new(
        example.Age,
        [
            .. example.New.Select(d => Medication(d, MedicationStatus.New, today)),
            .. example.Active.Select(d => Medication(d, MedicationStatus.Current, today)),
            .. example.Stopped.Select(d => Medication(d, MedicationStatus.Stopped, today)),
        ],
        example.Conditions.Select(code => char.IsLetter(code[0])
            ? ConditionGroup.Key(ConditionGroup.Icd10Cm, code)
            : ConditionGroup.Key(ConditionGroup.Snomed, code)).ToHashSet(),
        today);

    private static MedicationUse Medication(ExampleDrug drug, MedicationStatus status, DateOnly today) => new(
        $"drug {drug.Code}", [drug.Code], "", null,
        drug.MgPerDay is { } mg ? new DailyDose(mg, "mg") : null,
        status,
        drug.StoppedDaysAgo is { } days ? today.AddDays(-days) : null,
        $"{status}-{drug.Code}");

    [Theory]
    [MemberData(nameof(Examples))]
    public void RuleAnswersItsExampleAsDocumented(string ruleId, string exampleName)
    {
        var rule = Knowledge.Rules.Single(r => r.Id == ruleId);
        var example = rule.Examples.Single(e => e.Name == exampleName);

        var findings = new Evaluator(Knowledge).Evaluate(PatientOf(example, Today)).SelectMany(p => p.All);
        var finding = findings.SingleOrDefault(f => f.Rule.Id == ruleId);

        if (example.ExpectedIndicator is null)
        {
            Assert.Null(finding);
            return;
        }

        Assert.NotNull(finding);
        Assert.Equal(example.ExpectedIndicator, finding.Indicator);
        Assert.Equal(example.ExpectedFactors.Order(), finding.Factors.Select(f => f.Id).Order());
    }

    [Fact]
    public void EveryShippedRuleFileIsLoadedAndRunsItsExamples() =>
        // The theory above runs per example; this guards against a rule directory that silently loads nothing.
        Assert.Equal(Directory.GetFiles(Path.Combine(Repository.Cards, "rules"), "*.yaml").Length, Knowledge.Rules.Count);
}
