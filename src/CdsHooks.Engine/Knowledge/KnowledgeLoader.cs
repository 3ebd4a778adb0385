using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using CdsHooks.Engine.Hooks;
using Hl7.Fhir.Model;
using Hl7.Fhir.Serialization;
using YamlDotNet.Core;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace CdsHooks.Engine.Knowledge;

/// <summary>Reads <c>cards/valuesets/*.json</c> (FHIR R4 ValueSets) and <c>cards/rules/*.yaml</c>, and refuses
/// anything it cannot fully understand with a <see cref="KnowledgeException"/> naming the file and field.</summary>
public static partial class KnowledgeLoader
{
    public const string OverrideReasonSystem = "urn:medication-safety-cds:override-reason";
    public const int MaxSummaryLength = 139;

    // Our own files are held to the strict parser: a typo in a value set must not silently drop a drug. The file is read
    // as a ValueSet object with a model of the ValueSet classes only: Firely's model of all of FHIR costs the service
    // about 10 MB (FhirJson.Configure), and its converter reads any resource through its model of the base classes,
    // reflecting over all of Hl7.Fhir.Base at start. A file this refuses is read again with the whole model, which
    // decides, so that an element of another type (an extension's value[x]) is judged as Firely would judge it.
    private static readonly JsonSerializerOptions StrictValueSet = new() { Converters = { new ValueSetConverter() } };

    private static readonly Lazy<JsonSerializerOptions> StrictFhir = new(() => new JsonSerializerOptions().ForFhir(ModelInfo.ModelInspector));

    private static Hl7.Fhir.Introspection.ModelInspector ValueSetModel()
    {
        var model = new Hl7.Fhir.Introspection.ModelInspector(Hl7.Fhir.Specification.FhirRelease.R4);
        model.ImportType(typeof(ValueSet));
        return model;
    }

    private sealed class ValueSetConverter : JsonConverter<ValueSet>
    {
        private readonly BaseFhirJsonDeserializer deserializer = new(ValueSetModel(), new DeserializerSettings());

        public override ValueSet Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            (ValueSet)deserializer.DeserializeObject(typeof(ValueSet), ref reader);

        public override void Write(Utf8JsonWriter writer, ValueSet value, JsonSerializerOptions options) =>
            throw new NotSupportedException("Value sets are only read.");
    }

    // What reading a file that is not a valid ValueSet throws: InvalidOperationException for JSON that is not an object
    // ("[]"), InvalidCastException for another resource type, which the whole model reads and cannot return as a ValueSet.
    private static bool Unreadable(Exception e) =>
        e is JsonException or DeserializationFailedException or InvalidOperationException or InvalidCastException;

    private static readonly IDeserializer Yaml = new DeserializerBuilder()
        .WithNamingConvention(CamelCaseNamingConvention.Instance)
        .Build();

    public static KnowledgeBase Load(string directory, SiteSettings? settings = null)
    {
        if (!Directory.Exists(directory))
        {
            throw new KnowledgeException(directory, "(directory)", "the knowledge directory does not exist.");
        }

        var (drugs, conditions) = LoadValueSets(Path.Combine(directory, "valuesets"));
        var rules = new List<Rule>();
        var rulesDirectory = Path.Combine(directory, "rules");
        var files = Directory.Exists(rulesDirectory)
            ? Directory.GetFiles(rulesDirectory, "*.yaml").Order(StringComparer.Ordinal).ToArray()
            : [];
        foreach (var file in files)
        {
            var name = Path.GetRelativePath(directory, file);
            var rule = new RuleReader(name, drugs, conditions).Read(File.ReadAllText(file));
            if (rules.Exists(r => r.Id == rule.Id))
            {
                throw new KnowledgeException(name, "id", $"rule id '{rule.Id}' is used by another file.");
            }

            rules.Add(rule);
        }

        if (rules.Count == 0) throw new KnowledgeException(rulesDirectory, "(directory)", "no rules were found.");
        settings ??= new SiteSettings();
        return new KnowledgeBase(drugs, conditions, settings.ApplyTo(rules), settings);
    }

    private static (Dictionary<string, DrugGroup>, Dictionary<string, ConditionGroup>) LoadValueSets(string directory)
    {
        var drugs = new Dictionary<string, DrugGroup>(StringComparer.Ordinal);
        var conditions = new Dictionary<string, ConditionGroup>(StringComparer.Ordinal);
        if (!Directory.Exists(directory)) return (drugs, conditions);
        foreach (var file in Directory.GetFiles(directory, "*.json").Order(StringComparer.Ordinal))
        {
            var name = Path.Combine("valuesets", Path.GetFileName(file));
            var text = File.ReadAllText(file);
            ValueSet? valueSet;
            try
            {
                valueSet = JsonSerializer.Deserialize<ValueSet>(text, StrictValueSet);
            }
            catch (Exception e) when (Unreadable(e))
            {
                try
                {
                    valueSet = JsonSerializer.Deserialize<ValueSet>(text, StrictFhir.Value);
                }
                catch (Exception whole) when (Unreadable(whole))
                {
                    throw new KnowledgeException(name, "(file)", $"not a valid FHIR R4 ValueSet: {whole.Message}");
                }
            }

            if (string.IsNullOrWhiteSpace(valueSet?.Name)) throw new KnowledgeException(name, "name", "a value set needs a name.");
            if (valueSet.Name != Path.GetFileNameWithoutExtension(file))
            {
                throw new KnowledgeException(name, "name", "the value set's name must be its file name, which rules refer to.");
            }

            if (valueSet.Expansion?.Contains is not { Count: > 0 } contains)
            {
                throw new KnowledgeException(name, "expansion.contains", "the value set has no expansion.");
            }

            if (contains[0].System == DrugGroup.RxNorm) drugs[valueSet.Name] = DrugGroup.FromValueSet(valueSet, name);
            else conditions[valueSet.Name] = ConditionGroup.FromValueSet(valueSet, name);
        }

        return (drugs, conditions);
    }

    public static Indicator ParseIndicator(string value, string file, string field) => value switch
    {
        "info" => Indicator.Info,
        "warning" => Indicator.Warning,
        "critical" => Indicator.Critical,
        _ => throw new KnowledgeException(file, field, $"'{value}' is not a CDS Hooks indicator (info, warning, critical)."),
    };

    [GeneratedRegex(@"^(?<code>\d+)(?:\s+(?<mg>\d+(?:\.\d+)?)\s*mg/day)?(?:\s+(?<days>\d+)\s+days?\s+ago)?$")]
    private static partial Regex ExampleDrugPattern();

    /// <summary>Compiles one rule file.</summary>
    private sealed class RuleReader(string file, Dictionary<string, DrugGroup> drugs, Dictionary<string, ConditionGroup> conditions)
    {
        public Rule Read(string yaml)
        {
            RuleFile raw;
            try
            {
                raw = Yaml.Deserialize<RuleFile>(yaml) ?? throw Error("(file)", "the file is empty.");
            }
            catch (YamlException e)
            {
                throw Error($"line {e.Start.Line}, column {e.Start.Column}", (e.InnerException ?? e).Message);
            }

            var id = Required(raw.Id, "id");
            var sideA = DrugGroups(raw.Drugs?.A, "drugs.a", required: true);
            var sideB = DrugGroups(raw.Drugs?.B, "drugs.b", required: false);
            var kind = (sideB.Count, raw.Count) switch
            {
                (> 0, not null) => throw Error("count", "a rule is a pair (drugs.b) or a count, not both."),
                (> 0, null) => RuleKind.Pair,
                (0, not null) => RuleKind.Count,
                _ => RuleKind.OneDrug,
            };
            var countAtLeast = raw.Count is null ? (int?)null
                : raw.Count.AtLeast is >= 2 ? raw.Count.AtLeast : throw Error("count.atLeast", "a count rule needs atLeast of 2 or more.");
            if (raw.Drugs?.StoppedWithinDays is <= 0) throw Error("drugs.stoppedWithinDays", "must be a positive number of days.");

            var sources = (raw.Sources ?? []).Select((s, i) => new RuleSource(
                Required(s.Id, $"sources[{i}].id"),
                Required(s.Label, $"sources[{i}].label"),
                AbsoluteUrl(s.Url, $"sources[{i}].url"))).ToList();
            if (sources.Count == 0) throw Error("sources", "every rule names at least one source.");

            var factors = (raw.Factors ?? []).Select((f, i) => Factor(f, $"factors[{i}]", sources)).ToList();
            var requires = (raw.Requires ?? []).Select((r, i) =>
                factors.Find(f => f.Id == r) ?? throw Error($"requires[{i}]", $"no factor with id '{r}' in factors.")).ToList();

            var summary = Required(raw.Summary, "summary");
            CheckSummaryLength(summary, sideA, sideB, countAtLeast);

            var examples = (raw.Examples ?? []).Select((e, i) => Example(e, $"examples[{i}]", factors)).ToList();
            if (!examples.Exists(e => e.ExpectedIndicator is not null) || !examples.Exists(e => e.ExpectedIndicator is null))
            {
                throw Error("examples", "a rule ships with at least one example that fires and one that does not.");
            }

            return new Rule(
                id,
                raw.Version ?? throw Error("version", "a rule needs a version number."),
                Required(raw.Title, "title"),
                file,
                raw.Enabled ?? true,
                kind,
                sideA,
                sideB,
                raw.Drugs?.StoppedWithinDays,
                countAtLeast,
                requires,
                ConditionGroups(raw.Exclusions?.Conditions, "exclusions.conditions"),
                DrugGroups(raw.Exclusions?.Drugs, "exclusions.drugs", required: false),
                Required(raw.Severity, "severity") is var severity && severity is "contraindicated" or "major" or "moderate" or "minor"
                    ? severity : throw Error("severity", "one of contraindicated, major, moderate, minor."),
                ParseIndicator(Required(raw.Indicator, "indicator"), file, "indicator"),
                raw.CriticalWhenEscalators is null or >= 1 ? raw.CriticalWhenEscalators
                    : throw Error("criticalWhenEscalators", "must be 1 or more."),
                summary,
                Required(raw.Risk, "risk").Trim(),
                Required(raw.Management, "management").Trim(),
                factors,
                sources,
                [.. (raw.OverrideReasons ?? []).Select((r, i) => new Hooks.Coding(OverrideReasonSystem,
                    Required(r.Code, $"overrideReasons[{i}].code"), Required(r.Display, $"overrideReasons[{i}].display")))],
                examples,
                [.. (raw.Suggestions ?? []).Select((x, i) => DoseChange(x, $"suggestions[{i}]"))]);
        }

        private DoseChange DoseChange(SuggestionFile suggestion, string at)
        {
            var lower = suggestion.LowerDose ?? throw Error(at, "a suggestion is lowerDose: { side, mgPerDay, label }.");
            return new DoseChange(
                lower.Side switch { "a" => PairSide.A, "b" => PairSide.B, _ => throw Error($"{at}.lowerDose.side", "a or b.") },
                lower.MgPerDay is > 0 ? lower.MgPerDay.Value : throw Error($"{at}.lowerDose.mgPerDay", "a positive number of mg per day."),
                Required(lower.Label, $"{at}.lowerDose.label"));
        }

        private PatientFactor Factor(FactorFile f, string at, List<RuleSource> sources)
        {
            var when = f.When ?? throw Error($"{at}.when", "a factor says when it applies.");
            var factor = new PatientFactor(
                Required(f.Id, $"{at}.id"),
                when.AgeAtLeast is null or > 0 ? when.AgeAtLeast : throw Error($"{at}.when.ageAtLeast", "must be a positive age."),
                ConditionGroups(when.Condition, $"{at}.when.condition"),
                DrugGroups(when.Drug, $"{at}.when.drug", required: false),
                Dose(when.DailyDoseAbove, $"{at}.when.dailyDoseAbove"),
                Dose(when.DailyDoseAtMost, $"{at}.when.dailyDoseAtMost"),
                f.Escalates ?? false,
                f.Indicator is null ? null : ParseIndicator(f.Indicator, file, $"{at}.indicator"),
                f.LowerTo is null ? null : ParseIndicator(f.LowerTo, file, $"{at}.lowerTo"),
                Required(f.Text, $"{at}.text").Trim(),
                f.Source is null ? null : sources.Find(s => s.Id == f.Source)
                    ?? throw Error($"{at}.source", $"no source with id '{f.Source}' in sources."));
            if (factor is { AgeAtLeast: null, Conditions.Count: 0, Drugs.Count: 0, DailyDoseAbove: null, DailyDoseAtMost: null })
            {
                throw Error($"{at}.when", "give at least one of ageAtLeast, condition, drug, dailyDoseAbove, dailyDoseAtMost.");
            }

            return factor;
        }

        private DoseLimit? Dose(DoseFile? dose, string at) => dose is null ? null : new DoseLimit(
            dose.Side switch
            {
                "a" => PairSide.A,
                "b" => PairSide.B,
                _ => throw Error($"{at}.side", "a or b."),
            },
            dose.Mg is > 0 ? dose.Mg.Value : throw Error($"{at}.mg", "a positive number of mg per day."),
            DrugGroups(dose.Of, $"{at}.of", required: false));

        private RuleExample Example(ExampleFile e, string at, List<PatientFactor> factors)
        {
            var expect = e.Expect ?? throw Error($"{at}.expect", "an example says what it expects.");
            var fires = expect.Card ?? throw Error($"{at}.expect.card", "say whether a card is expected (true or false).");
            foreach (var f in expect.Factors ?? [])
            {
                if (!factors.Exists(x => x.Id == f)) throw Error($"{at}.expect.factors", $"no factor with id '{f}' in this rule.");
            }

            var ordered = Drugs(e.New, $"{at}.new");
            if (ordered.Count == 0) throw Error($"{at}.new", "an example orders at least one drug.");
            return new RuleExample(
                Required(e.Name, $"{at}.name"),
                e.Age,
                e.Conditions ?? [],
                ordered,
                Drugs(e.Active, $"{at}.active"),
                Drugs(e.Stopped, $"{at}.stopped"),
                fires ? ParseIndicator(Required(expect.Indicator, $"{at}.expect.indicator"), file, $"{at}.expect.indicator") : null,
                expect.Factors ?? []);
        }

        private List<ExampleDrug> Drugs(List<string>? entries, string at) => [.. (entries ?? []).Select((text, i) =>
        {
            var match = ExampleDrugPattern().Match(text.Trim());
            if (!match.Success) throw Error($"{at}[{i}]", "write an RxNorm code, optionally followed by '45 mg/day' or '10 days ago'.");
            return new ExampleDrug(
                match.Groups["code"].Value,
                match.Groups["mg"].Success ? decimal.Parse(match.Groups["mg"].Value, CultureInfo.InvariantCulture) : null,
                match.Groups["days"].Success ? int.Parse(match.Groups["days"].Value, CultureInfo.InvariantCulture) : null);
        })];

        private void CheckSummaryLength(string summary, List<DrugGroup> a, List<DrugGroup> b, int? count)
        {
            static string Longest(List<DrugGroup> groups) =>
                groups.SelectMany(g => g.Ingredients.Values).Select(i => i.Name).DefaultIfEmpty("").MaxBy(n => n.Length)!;

            // Checked with one drug per side, the usual case; with more, the card shortens the list ("x and 2 more").
            var longestA = Longest(a);
            var longestB = b.Count > 0 ? Longest(b) : "";
            var filled = summary
                .Replace("{a}", longestA, StringComparison.Ordinal)
                .Replace("{b}", longestB, StringComparison.Ordinal)
                .Replace("{n}", "99", StringComparison.Ordinal);
            if (filled.Length > MaxSummaryLength)
            {
                throw Error("summary", $"filled in with the longest drug names it is {filled.Length} characters; CDS Hooks allows fewer than 140.");
            }

            if (b.Count == 0 && summary.Contains("{b}", StringComparison.Ordinal)) throw Error("summary", "{b} is used but the rule has no drugs.b.");
            if (count is null && summary.Contains("{n}", StringComparison.Ordinal)) throw Error("summary", "{n} is for count rules.");
        }

        private List<DrugGroup> DrugGroups(List<string>? names, string field, bool required)
        {
            if (required && names is not { Count: > 0 }) throw Error(field, "name at least one drug value set.");
            return [.. (names ?? []).Select(n => drugs.TryGetValue(n, out var g) ? g
                : conditions.ContainsKey(n) ? throw Error(field, $"'{n}' is a condition value set, not a drug value set.")
                : throw Error(field, $"no value set named '{n}' in cards/valuesets/."))];
        }

        private List<ConditionGroup> ConditionGroups(List<string>? names, string field) =>
            [.. (names ?? []).Select(n => conditions.TryGetValue(n, out var g) ? g
                : drugs.ContainsKey(n) ? throw Error(field, $"'{n}' is a drug value set, not a condition value set.")
                : throw Error(field, $"no value set named '{n}' in cards/valuesets/."))];

        private string Required(string? value, string field) =>
            string.IsNullOrWhiteSpace(value) ? throw Error(field, "this field is required.") : value;

        private string AbsoluteUrl(string? value, string field) =>
            Uri.TryCreate(Required(value, field), UriKind.Absolute, out var uri) && uri.Scheme is "https" or "http"
                ? value!
                : throw Error(field, "must be an absolute http(s) URL.");

        private KnowledgeException Error(string field, string problem) => new(file, field, problem);
    }
}
