using System.Globalization;
using System.Text.Json;
using CsvHelper;
using CsvHelper.Configuration;
using Hl7.Fhir.Model;
using Hl7.Fhir.Serialization;

namespace CdsHooks.Engine.Knowledge;

/// <summary>
/// Builds the value sets in <c>cards/valuesets/</c> from the researched tables in <c>cards/source/</c>:
/// <list type="bullet">
/// <item><c>ingredient_classes.csv</c> and <c>supplementary_ingredients.csv</c>: ingredient to rule class, with its
/// verification (unverified rows are left out);</item>
/// <item><c>rxnorm_codes.csv</c>: product codes (SCD, SBD, GPCK, BPCK), nested below their ingredients;</item>
/// <item><c>brand_names.csv</c>: brand names, as designations of their ingredient, for text-only medications;</item>
/// <item><c>groups.csv</c>: which classes and ingredients make each drug group;</item>
/// <item><c>condition_codes.csv</c>: SNOMED CT and ICD-10-CM codes of each condition group.</item>
/// </list>
/// Run <c>dotnet run tools/generate-valuesets.cs</c> after editing a table; a test fails while the committed value
/// sets differ from what the tables produce.
/// </summary>
public static class ValueSetGenerator
{
    public const string CanonicalBase = "urn:medication-safety-cds:valueset:";
    public const string BrandDesignation = "brand";

    // The day the source tables were researched: a fixed timestamp keeps the output reproducible.
    private static readonly DateTimeOffset TablesDated = new(2026, 11, 26, 0, 0, 0, TimeSpan.Zero);

    private static readonly CsvConfiguration Csv = new(CultureInfo.InvariantCulture);

    private static readonly JsonSerializerOptions Pretty = new JsonSerializerOptions { WriteIndented = true }
        .ForFhir(ModelInfo.ModelInspector);

    private sealed record ClassRow(string ingredient_rxcui, string ingredient_name, string rule_class, string verification);

    private sealed record CodeRow(string rxcui, string tty, string name, string ingredient_rxcui);

    private sealed record GroupRow(string name, string title, string rule_classes, string include_ingredients, string exclude_ingredients);

    private sealed record ConditionRow(string group, string system, string code, string display, string verification);

    private sealed record BrandRow(string brand, string ingredient_rxcui, string verification);

    /// <summary>File name to pretty-printed ValueSet JSON.</summary>
    public static IReadOnlyDictionary<string, string> Generate(string sourceDirectory)
    {
        var classes = Read<ClassRow>(sourceDirectory, "ingredient_classes.csv")
            .Concat(Read<ClassRow>(sourceDirectory, "supplementary_ingredients.csv"))
            .Where(r => r.ingredient_rxcui.Length > 0 && Verified(r.verification))
            .ToList();
        var productRows = Read<CodeRow>(sourceDirectory, "rxnorm_codes.csv").Where(r => r.rxcui != r.ingredient_rxcui).ToList();
        var products = productRows.ToLookup(r => r.ingredient_rxcui);
        var combinations = productRows.GroupBy(r => r.rxcui).Where(g => g.Count() > 1).Select(g => g.Key).ToHashSet();
        // Brand names: the table's, and those RxNorm puts in brackets in branded product names
        // ("clonazepam 0.5 MG Oral Tablet [Klonopin]"), for single-ingredient products.
        var brands = Read<BrandRow>(sourceDirectory, "brand_names.csv")
            .Where(b => Verified(b.verification))
            .Select(b => (b.ingredient_rxcui, b.brand))
            .Concat(productRows
                .Where(p => p.tty is "SBD" or "BPCK" && !combinations.Contains(p.rxcui))
                .Select(p => (p.ingredient_rxcui, brand: BracketedBrand(p.name)))
                .Where(b => b.brand is not null)
                .Select(b => (b.ingredient_rxcui, b.brand!)))
            .ToLookup(b => b.ingredient_rxcui, b => b.Item2);

        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var group in Read<GroupRow>(sourceDirectory, "groups.csv"))
        {
            var members = Members(group, classes);
            var valueSet = NewValueSet(group.name, group.title,
                "RxNorm ingredients (" + Describe(group) + ") with their SCD, SBD, GPCK and BPCK products nested below each " +
                "ingredient and brand names as designations. Generated from cards/source/.");
            valueSet.Expansion!.Contains = [.. members.Select(m => new ValueSet.ContainsComponent
            {
                System = DrugGroup.RxNorm,
                Code = m.ingredient_rxcui,
                Display = m.ingredient_name,
                Designation = [.. brands[m.ingredient_rxcui].Distinct(StringComparer.OrdinalIgnoreCase).Order(StringComparer.Ordinal)
                    .Select(b => new ValueSet.DesignationComponent { Use = new Coding(null, BrandDesignation), Value = b })],
                Contains = [.. products[m.ingredient_rxcui]
                    .OrderBy(p => p.name, StringComparer.Ordinal)
                    .Select(p => new ValueSet.ContainsComponent { System = DrugGroup.RxNorm, Code = p.rxcui, Display = p.name })],
            })];
            valueSet.Expansion.Total = valueSet.Expansion.Contains.Sum(c => 1 + c.Contains.Count);
            result[group.name + ".json"] = JsonSerializer.Serialize(valueSet, Pretty) + "\n";
        }

        foreach (var condition in Read<ConditionRow>(sourceDirectory, "condition_codes.csv")
                     .Where(c => Verified(c.verification))
                     .GroupBy(c => c.group))
        {
            var valueSet = NewValueSet(condition.Key, condition.Key,
                "SNOMED CT and ICD-10-CM codes of the condition group '" + condition.Key + "'. Generated from cards/source/condition_codes.csv.");
            valueSet.Expansion!.Contains = [.. condition
                .DistinctBy(c => (c.system, c.code))
                .OrderBy(c => c.system, StringComparer.Ordinal).ThenBy(c => c.code, StringComparer.Ordinal)
                .Select(c => new ValueSet.ContainsComponent { System = c.system, Code = c.code, Display = c.display })];
            valueSet.Expansion.Total = valueSet.Expansion.Contains.Count;
            result[condition.Key + ".json"] = JsonSerializer.Serialize(valueSet, Pretty) + "\n";
        }

        return result;
    }

    private static string? BracketedBrand(string name)
    {
        var open = name.LastIndexOf('[');
        return open >= 0 && name.EndsWith(']') ? name[(open + 1)..^1].Trim() : null;
    }

    private static bool Verified(string verification) => verification.StartsWith("verified", StringComparison.OrdinalIgnoreCase);

    private static List<ClassRow> Members(GroupRow group, List<ClassRow> classes)
    {
        var wanted = Split(group.rule_classes);
        var include = Split(group.include_ingredients);
        var exclude = Split(group.exclude_ingredients);
        var members = classes
            .Where(c => (wanted.Contains(c.rule_class) || include.Contains(c.ingredient_name)) && !exclude.Contains(c.ingredient_name))
            .DistinctBy(c => c.ingredient_rxcui)
            .OrderBy(c => c.ingredient_name, StringComparer.Ordinal)
            .ToList();
        if (members.Count == 0) throw new InvalidOperationException($"groups.csv: group '{group.name}' matches no verified ingredient.");
        return members;
    }

    private static string Describe(GroupRow group) => string.Join("; ", new[]
    {
        group.rule_classes.Length > 0 ? "classes: " + string.Join(", ", Split(group.rule_classes).Order(StringComparer.Ordinal)) : null,
        group.include_ingredients.Length > 0 ? "also: " + string.Join(", ", Split(group.include_ingredients).Order(StringComparer.Ordinal)) : null,
        group.exclude_ingredients.Length > 0 ? "except: " + string.Join(", ", Split(group.exclude_ingredients).Order(StringComparer.Ordinal)) : null,
    }.OfType<string>());

    private static HashSet<string> Split(string list) =>
        list.Split('|', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet(StringComparer.Ordinal);

    private static ValueSet NewValueSet(string name, string title, string description) => new()
    {
        Id = name,
        Url = CanonicalBase + name,
        Name = name,
        Title = title,
        Status = PublicationStatus.Active,
        Description = description,
        Expansion = new ValueSet.ExpansionComponent { TimestampElement = new FhirDateTime(TablesDated) },
    };

    // A table that does not exist yet contributes nothing.
    private static List<T> Read<T>(string directory, string file)
    {
        var path = Path.Combine(directory, file);
        if (!File.Exists(path)) return [];
        using var reader = new StreamReader(path);
        using var csv = new CsvReader(reader, Csv);
        return [.. csv.GetRecords<T>()];
    }
}
