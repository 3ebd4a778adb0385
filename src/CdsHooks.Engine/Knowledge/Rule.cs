using CdsHooks.Engine.Hooks;

namespace CdsHooks.Engine.Knowledge;

/// <summary>An interaction rule, compiled from one file in <c>cards/rules/</c> and immutable after loading.</summary>
public sealed record Rule(
    string Id,
    int Version,
    string Title,
    string File,
    string Severity,
    Indicator Indicator,
    DrugGroup DrugA,
    DrugGroup DrugB,
    string Summary,
    string Risk,
    string Management,
    IReadOnlyList<PatientFactor> Factors,
    IReadOnlyList<RuleSource> Sources,
    IReadOnlyList<Coding> OverrideReasons,
    IReadOnlyList<RuleExample> Examples);

/// <summary>Something about the patient that makes the interaction matter more, and says so on the card.</summary>
public sealed record PatientFactor(string Id, int? AgeAtLeast, Indicator? Indicator, string Text, RuleSource? Source);

public sealed record RuleSource(string Id, string Label, string Url);

/// <summary>An example that ships with a rule and that the test suite runs: a patient, the drugs, and what the
/// rule must answer (no card when <see cref="ExpectedIndicator"/> is null).</summary>
public sealed record RuleExample(
    string Name,
    int? Age,
    IReadOnlyList<string> New,
    IReadOnlyList<string> Active,
    Indicator? ExpectedIndicator,
    IReadOnlyList<string> ExpectedFactors);
