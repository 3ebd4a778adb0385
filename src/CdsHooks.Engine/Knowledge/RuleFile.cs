namespace CdsHooks.Engine.Knowledge;

// The shape of a rule file as a pharmacist writes it (YAML, camelCase). Everything is nullable here so that the
// loader, not the YAML library, reports what is missing, with the file and the field. cards/README.md documents it.

internal sealed class RuleFile
{
    public string? Id { get; set; }
    public int? Version { get; set; }
    public string? Title { get; set; }
    public bool? Enabled { get; set; }
    public DrugsFile? Drugs { get; set; }
    public CountFile? Count { get; set; }
    public List<string>? Requires { get; set; }
    public ExclusionsFile? Exclusions { get; set; }
    public string? Severity { get; set; }
    public string? Indicator { get; set; }
    public int? CriticalWhenEscalators { get; set; }
    public string? Summary { get; set; }
    public string? Risk { get; set; }
    public string? Management { get; set; }
    public List<FactorFile>? Factors { get; set; }
    public List<SourceFile>? Sources { get; set; }
    public List<OverrideReasonFile>? OverrideReasons { get; set; }
    public List<ExampleFile>? Examples { get; set; }
    public List<SuggestionFile>? Suggestions { get; set; }
}

internal sealed class SuggestionFile
{
    public DoseChangeFile? LowerDose { get; set; }
}

internal sealed class DoseChangeFile
{
    public string? Side { get; set; }
    public decimal? MgPerDay { get; set; }
    public string? Label { get; set; }
}

internal sealed class DrugsFile
{
    public List<string>? A { get; set; }
    public List<string>? B { get; set; }
    public int? StoppedWithinDays { get; set; }
}

internal sealed class CountFile
{
    public int? AtLeast { get; set; }
}

internal sealed class ExclusionsFile
{
    public List<string>? Conditions { get; set; }
    public List<string>? Drugs { get; set; }
}

internal sealed class FactorFile
{
    public string? Id { get; set; }
    public WhenFile? When { get; set; }
    public bool? Escalates { get; set; }
    public string? Indicator { get; set; }
    public string? LowerTo { get; set; }
    public string? Text { get; set; }
    public string? Source { get; set; }
}

internal sealed class WhenFile
{
    public int? AgeAtLeast { get; set; }
    public List<string>? Condition { get; set; }
    public List<string>? Drug { get; set; }
    public DoseFile? DailyDoseAbove { get; set; }
    public DoseFile? DailyDoseAtMost { get; set; }
}

internal sealed class DoseFile
{
    public string? Side { get; set; }
    public decimal? Mg { get; set; }
    public List<string>? Of { get; set; }
}

internal sealed class SourceFile
{
    public string? Id { get; set; }
    public string? Label { get; set; }
    public string? Url { get; set; }
}

internal sealed class OverrideReasonFile
{
    public string? Code { get; set; }
    public string? Display { get; set; }
}

internal sealed class ExampleFile
{
    public string? Name { get; set; }
    public int? Age { get; set; }
    public List<string>? Conditions { get; set; }
    public List<string>? New { get; set; }
    public List<string>? Active { get; set; }
    public List<string>? Stopped { get; set; }
    public ExpectFile? Expect { get; set; }
}

internal sealed class ExpectFile
{
    public bool? Card { get; set; }
    public string? Indicator { get; set; }
    public List<string>? Factors { get; set; }
}
