using CdsHooks.Engine.Hooks;

namespace CdsHooks.Engine.Knowledge;

public enum RuleKind
{
    /// <summary>A drug from side a with a drug from side b.</summary>
    Pair,

    /// <summary>One drug from side a, usually with <see cref="Rule.Requires"/> naming patient factors.</summary>
    OneDrug,

    /// <summary>N or more distinct ingredients from side a.</summary>
    Count,
}

/// <summary>An interaction rule, compiled from one file in <c>cards/rules/</c> and immutable after loading.</summary>
public sealed record Rule(
    string Id,
    int Version,
    string Title,
    string File,
    bool Enabled,
    RuleKind Kind,
    IReadOnlyList<DrugGroup> SideA,
    IReadOnlyList<DrugGroup> SideB,
    int? StoppedWithinDays,
    int? CountAtLeast,
    IReadOnlyList<PatientFactor> Requires,
    IReadOnlyList<ConditionGroup> ExcludedConditions,
    IReadOnlyList<DrugGroup> ExcludedDrugs,
    string Severity,
    Indicator Indicator,
    int? CriticalWhenEscalators,
    string Summary,
    string Risk,
    string Management,
    IReadOnlyList<PatientFactor> Factors,
    IReadOnlyList<RuleSource> Sources,
    IReadOnlyList<Coding> OverrideReasons,
    IReadOnlyList<RuleExample> Examples,
    IReadOnlyList<DoseChange> DoseChanges)
{
    public static bool InAny(IReadOnlyList<DrugGroup> groups, string ingredientCode)
    {
        // An index loop: foreach over an IReadOnlyList boxes its enumerator, and this runs per drug and rule.
        for (var i = 0; i < groups.Count; i++)
        {
            if (groups[i].Ingredients.ContainsKey(ingredientCode)) return true;
        }

        return false;
    }
}

public enum PairSide
{
    A,
    B,
}

/// <summary>A suggestion to replace the new order on one side with the same order at this daily dose (the label's
/// maximum or starting dose): offered when the order's dose is in mg and above it.</summary>
public sealed record DoseChange(PairSide Side, decimal MgPerDay, string Label);

/// <summary>A daily-dose condition on the drugs matched on one side of the rule; with <see cref="Of"/>, only on
/// those of them in these groups (a clonazepam threshold does not apply to alprazolam).</summary>
public sealed record DoseLimit(PairSide Side, decimal Mg, IReadOnlyList<DrugGroup> Of);

/// <summary>Something about the patient that changes the card. Every condition given must hold.</summary>
public sealed record PatientFactor(
    string Id,
    int? AgeAtLeast,
    IReadOnlyList<ConditionGroup> Conditions,
    IReadOnlyList<DrugGroup> Drugs,
    DoseLimit? DailyDoseAbove,
    DoseLimit? DailyDoseAtMost,
    bool Escalates,
    Indicator? Indicator,
    Indicator? LowerTo,
    string Text,
    RuleSource? Source);

public sealed record RuleSource(string Id, string Label, string Url)
{
    private string? _link;

    // A copy (`with`) makes its own link from its own label and URL.
    private RuleSource(RuleSource original) => (Id, Label, Url) = (original.Id, original.Label, original.Url);

    /// <summary>The markdown link a card's detail shows, "[label](url)": one text of the knowledge, made once, where
    /// a card's detail held five parts for each source (docs/performance.md, sixteenth round).</summary>
    public string Link => _link ??= $"[{Label}]({Url})";

    // The link is made from the other members, so equality is theirs.
    public bool Equals(RuleSource? other) =>
        other is not null && Id == other.Id && Label == other.Label && Url == other.Url;

    public override int GetHashCode() => HashCode.Combine(Id, Label, Url);

    // Printed as its members, without making the link.
    private bool PrintMembers(System.Text.StringBuilder builder)
    {
        builder.Append("Id = ").Append(Id).Append(", Label = ").Append(Label).Append(", Url = ").Append(Url);
        return true;
    }
}

/// <summary>A medication in a rule example: an RxNorm code with an optional daily dose or days since it stopped.</summary>
public sealed record ExampleDrug(string Code, decimal? MgPerDay, int? StoppedDaysAgo);

/// <summary>An example that ships with a rule and that the test suite runs: a patient, the drugs, and what the
/// rule must answer (no card when <see cref="ExpectedIndicator"/> is null).</summary>
public sealed record RuleExample(
    string Name,
    int? Age,
    IReadOnlyList<string> Conditions,
    IReadOnlyList<ExampleDrug> New,
    IReadOnlyList<ExampleDrug> Active,
    IReadOnlyList<ExampleDrug> Stopped,
    Indicator? ExpectedIndicator,
    IReadOnlyList<string> ExpectedFactors);
