namespace CdsHooks.Engine.Knowledge;

// The shape of a rule file as a pharmacist writes it (YAML, camelCase). Everything is nullable here so that the
// loader, not the YAML library, reports what is missing, with the file and the field. cards/README.md documents it.

internal sealed class RuleFile
{
    public string? Id { get; set; }
    public int? Version { get; set; }
    public string? Title { get; set; }
    public bool? Enabled { get; set; }
    public DrugPairFile? Drugs { get; set; }
    public string? Severity { get; set; }
    public string? Indicator { get; set; }
    public string? Summary { get; set; }
    public string? Risk { get; set; }
    public string? Management { get; set; }
    public List<FactorFile>? Factors { get; set; }
    public List<SourceFile>? Sources { get; set; }
    public List<OverrideReasonFile>? OverrideReasons { get; set; }
    public List<ExampleFile>? Examples { get; set; }
}

internal sealed class DrugPairFile
{
    public string? A { get; set; }
    public string? B { get; set; }
}

internal sealed class FactorFile
{
    public string? Id { get; set; }
    public int? AgeAtLeast { get; set; }
    public string? Indicator { get; set; }
    public string? Text { get; set; }
    public string? Source { get; set; }
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
    public List<string>? New { get; set; }
    public List<string>? Active { get; set; }
    public ExpectFile? Expect { get; set; }
}

internal sealed class ExpectFile
{
    public bool? Card { get; set; }
    public string? Indicator { get; set; }
    public List<string>? Factors { get; set; }
}
