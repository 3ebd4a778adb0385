using CdsHooks.Engine.Evaluation;
using CdsHooks.Engine.Patients;

namespace CdsHooks.Engine.Knowledge;

/// <summary>What a rule example answered, against what it says it should.</summary>
public sealed record ExampleResult(Rule Rule, RuleExample Example, string Expected, string Actual)
{
    public bool Passed => Expected == Actual;
}

/// <summary>Runs the examples that ship with the rules, each against the whole knowledge base, as the tests and the
/// CLI's <c>check</c> do. Rules shipped disabled run too: their examples must hold when a site enables them.</summary>
public static class ExampleRunner
{
    public static IReadOnlyList<ExampleResult> Run(KnowledgeBase knowledge, DateOnly today)
    {
        var evaluator = new Evaluator(knowledge);
        return [.. knowledge.Rules.SelectMany(rule => rule.Examples.Select(example =>
        {
            var finding = evaluator.Evaluate(PatientOf(example, today)).SelectMany(p => p.All).SingleOrDefault(f => f.Rule.Id == rule.Id);
            return new ExampleResult(rule, example, Describe(example.ExpectedIndicator, example.ExpectedFactors),
                finding is null ? "no card" : Describe(finding.Indicator, [.. finding.Factors.Select(f => f.Id)]));
        }))];
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

    private static string Describe(Hooks.Indicator? indicator, IEnumerable<string> factors) =>
        indicator is null ? "no card" : $"{indicator.Value.ToString().ToLowerInvariant()} [{string.Join(", ", factors.Order(StringComparer.Ordinal))}]";
}
