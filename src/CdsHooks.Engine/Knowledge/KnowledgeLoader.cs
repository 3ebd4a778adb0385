using System.Text.Json;
using CdsHooks.Engine.Hooks;
using Hl7.Fhir.Model;
using Hl7.Fhir.Serialization;
using YamlDotNet.Core;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace CdsHooks.Engine.Knowledge;

/// <summary>Reads <c>cards/valuesets/*.json</c> (FHIR R4 ValueSets) and <c>cards/rules/*.yaml</c>, and refuses
/// anything it cannot fully understand with a <see cref="KnowledgeException"/> naming the file and field.</summary>
public static class KnowledgeLoader
{
    public const string OverrideReasonSystem = "urn:medication-safety-cds:override-reason";
    public const int MaxSummaryLength = 139;

    // Our own files are held to the strict parser: a typo in a value set must not silently drop a drug.
    private static readonly JsonSerializerOptions StrictFhir = new JsonSerializerOptions().ForFhir(ModelInfo.ModelInspector);

    private static readonly IDeserializer Yaml = new DeserializerBuilder()
        .WithNamingConvention(CamelCaseNamingConvention.Instance)
        .Build();

    public static KnowledgeBase Load(string directory)
    {
        if (!Directory.Exists(directory))
        {
            throw new KnowledgeException(directory, "(directory)", "the knowledge directory does not exist.");
        }

        var groups = LoadGroups(Path.Combine(directory, "valuesets"));
        var rules = new List<Rule>();
        var rulesDirectory = Path.Combine(directory, "rules");
        var files = Directory.Exists(rulesDirectory)
            ? Directory.GetFiles(rulesDirectory, "*.yaml").Order(StringComparer.Ordinal).ToArray()
            : [];
        foreach (var file in files)
        {
            if (LoadRule(file, Relative(directory, file), groups) is { } rule)
            {
                if (rules.Exists(r => r.Id == rule.Id))
                {
                    throw new KnowledgeException(Relative(directory, file), "id", $"rule id '{rule.Id}' is used by another file.");
                }

                rules.Add(rule);
            }
        }

        if (rules.Count == 0) throw new KnowledgeException(rulesDirectory, "(directory)", "no rules were found.");
        return new KnowledgeBase(groups, rules);
    }

    private static Dictionary<string, DrugGroup> LoadGroups(string directory)
    {
        var groups = new Dictionary<string, DrugGroup>(StringComparer.Ordinal);
        if (!Directory.Exists(directory)) return groups;
        foreach (var file in Directory.GetFiles(directory, "*.json").Order(StringComparer.Ordinal))
        {
            var name = Path.Combine("valuesets", Path.GetFileName(file));
            ValueSet? valueSet;
            try
            {
                valueSet = JsonSerializer.Deserialize<ValueSet>(File.ReadAllText(file), StrictFhir);
            }
            catch (Exception e) when (e is JsonException or DeserializationFailedException)
            {
                throw new KnowledgeException(name, "(file)", $"not a valid FHIR R4 ValueSet: {e.Message}");
            }

            var group = DrugGroup.FromValueSet(valueSet!, name);
            if (!groups.TryAdd(group.Name, group))
            {
                throw new KnowledgeException(name, "name", $"value set name '{group.Name}' is used by another file.");
            }
        }

        return groups;
    }

    private static Rule? LoadRule(string path, string file, Dictionary<string, DrugGroup> groups)
    {
        RuleFile raw;
        try
        {
            raw = Yaml.Deserialize<RuleFile>(File.ReadAllText(path)) ?? throw new KnowledgeException(file, "(file)", "the file is empty.");
        }
        catch (YamlException e)
        {
            throw new KnowledgeException(file, $"line {e.Start.Line}, column {e.Start.Column}", (e.InnerException ?? e).Message);
        }

        if (raw.Enabled == false) return null;

        var id = Required(raw.Id, file, "id");
        var a = Group(raw.Drugs?.A, "drugs.a");
        var b = Group(raw.Drugs?.B, "drugs.b");
        var sources = (raw.Sources ?? []).Select((s, i) => new RuleSource(
            Required(s.Id, file, $"sources[{i}].id"),
            Required(s.Label, file, $"sources[{i}].label"),
            AbsoluteUrl(s.Url, file, $"sources[{i}].url"))).ToList();
        if (sources.Count == 0) throw new KnowledgeException(file, "sources", "every rule names at least one source.");

        var factors = (raw.Factors ?? []).Select((f, i) => new PatientFactor(
            Required(f.Id, file, $"factors[{i}].id"),
            f.AgeAtLeast ?? throw new KnowledgeException(file, $"factors[{i}].ageAtLeast", "a factor needs a condition (ageAtLeast)."),
            f.Indicator is null ? null : ParseIndicator(f.Indicator, file, $"factors[{i}].indicator"),
            Required(f.Text, file, $"factors[{i}].text"),
            f.Source is null ? null : sources.Find(s => s.Id == f.Source)
                ?? throw new KnowledgeException(file, $"factors[{i}].source", $"no source with id '{f.Source}' in sources."))).ToList();

        var summary = Required(raw.Summary, file, "summary");
        var longest = summary
            .Replace("{a}", a.Ingredients.Values.MaxBy(x => x.Name.Length)!.Name, StringComparison.Ordinal)
            .Replace("{b}", b.Ingredients.Values.MaxBy(x => x.Name.Length)!.Name, StringComparison.Ordinal);
        if (longest.Length > MaxSummaryLength)
        {
            throw new KnowledgeException(file, "summary", $"filled in with the longest drug names it is {longest.Length} characters; CDS Hooks allows fewer than 140.");
        }

        var rule = new Rule(
            id,
            raw.Version ?? throw new KnowledgeException(file, "version", "a rule needs a version number."),
            Required(raw.Title, file, "title"),
            file,
            Required(raw.Severity, file, "severity"),
            ParseIndicator(Required(raw.Indicator, file, "indicator"), file, "indicator"),
            a,
            b,
            summary,
            Required(raw.Risk, file, "risk").Trim(),
            Required(raw.Management, file, "management").Trim(),
            factors,
            sources,
            [.. (raw.OverrideReasons ?? []).Select((r, i) => new Hooks.Coding(OverrideReasonSystem,
                Required(r.Code, file, $"overrideReasons[{i}].code"), Required(r.Display, file, $"overrideReasons[{i}].display")))],
            [.. (raw.Examples ?? []).Select((e, i) => Example(e, i))]);

        if (!rule.Examples.Any(e => e.ExpectedIndicator is not null) || !rule.Examples.Any(e => e.ExpectedIndicator is null))
        {
            throw new KnowledgeException(file, "examples", "a rule ships with at least one example that fires and one that does not.");
        }

        return rule;

        DrugGroup Group(string? name, string field) =>
            groups.TryGetValue(Required(name, file, field), out var g) ? g
            : throw new KnowledgeException(file, field, $"no value set named '{name}' in cards/valuesets/.");

        RuleExample Example(ExampleFile e, int i)
        {
            var at = $"examples[{i}]";
            var expect = e.Expect ?? throw new KnowledgeException(file, $"{at}.expect", "an example says what it expects.");
            var fires = expect.Card ?? throw new KnowledgeException(file, $"{at}.expect.card", "say whether a card is expected (true or false).");
            var known = factors.Select(f => f.Id).ToHashSet();
            foreach (var f in expect.Factors ?? [])
            {
                if (!known.Contains(f)) throw new KnowledgeException(file, $"{at}.expect.factors", $"no factor with id '{f}' in this rule.");
            }

            return new RuleExample(
                Required(e.Name, file, $"{at}.name"),
                e.Age,
                e.New is { Count: > 0 } ? e.New : throw new KnowledgeException(file, $"{at}.new", "an example orders at least one drug."),
                e.Active ?? [],
                fires ? ParseIndicator(Required(expect.Indicator, file, $"{at}.expect.indicator"), file, $"{at}.expect.indicator") : null,
                expect.Factors ?? []);
        }
    }

    private static Indicator ParseIndicator(string value, string file, string field) => value switch
    {
        "info" => Indicator.Info,
        "warning" => Indicator.Warning,
        "critical" => Indicator.Critical,
        _ => throw new KnowledgeException(file, field, $"'{value}' is not a CDS Hooks indicator (info, warning, critical)."),
    };

    private static string Required(string? value, string file, string field) =>
        string.IsNullOrWhiteSpace(value) ? throw new KnowledgeException(file, field, "this field is required.") : value;

    private static string AbsoluteUrl(string? value, string file, string field) =>
        Uri.TryCreate(Required(value, file, field), UriKind.Absolute, out var uri) && uri.Scheme is "https" or "http"
            ? value!
            : throw new KnowledgeException(file, field, "must be an absolute http(s) URL.");

    private static string Relative(string root, string path) => Path.GetRelativePath(root, path);
}
