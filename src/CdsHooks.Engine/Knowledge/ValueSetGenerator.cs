using System.Globalization;
using System.Text.Json;
using CsvHelper;
using CsvHelper.Configuration;
using Hl7.Fhir.Model;
using Hl7.Fhir.Serialization;

namespace CdsHooks.Engine.Knowledge;

/// <summary>
/// Builds the drug value sets in <c>cards/valuesets/</c> from the researched tables in <c>cards/source/</c>:
/// <c>ingredient_classes.csv</c> (ingredient to rule class, with its verification), <c>rxnorm_codes.csv</c>
/// (ingredient and product codes: SCD, SBD, GPCK, BPCK) and <c>groups.csv</c> (which classes make a group).
/// Unverified ingredients are left out. Run <c>dotnet run tools/generate-valuesets.cs</c> after editing a table;
/// a test fails while the committed value sets differ from what the tables produce.
/// </summary>
public static class ValueSetGenerator
{
    public const string CanonicalBase = "urn:medication-safety-cds:valueset:";

    // The day the source tables were researched: a fixed timestamp keeps the output reproducible.
    private static readonly DateTimeOffset TablesDated = new(2026, 11, 26, 0, 0, 0, TimeSpan.Zero);

    private static readonly CsvConfiguration Csv = new(CultureInfo.InvariantCulture);

    private static readonly JsonSerializerOptions Pretty = new JsonSerializerOptions { WriteIndented = true }
        .ForFhir(ModelInfo.ModelInspector);

    private sealed record ClassRow(string ingredient_rxcui, string ingredient_name, string rule_class, string verification);

    private sealed record CodeRow(string rxcui, string tty, string name, string ingredient_rxcui);

    private sealed record GroupRow(string name, string title, string rule_classes);

    /// <summary>File name to pretty-printed ValueSet JSON.</summary>
    public static IReadOnlyDictionary<string, string> Generate(string sourceDirectory)
    {
        var classes = Read<ClassRow>(Path.Combine(sourceDirectory, "ingredient_classes.csv"))
            .Where(r => r.ingredient_rxcui.Length > 0 && r.verification.StartsWith("verified", StringComparison.Ordinal))
            .ToList();
        var products = Read<CodeRow>(Path.Combine(sourceDirectory, "rxnorm_codes.csv"))
            .Where(r => r.rxcui != r.ingredient_rxcui)
            .ToLookup(r => r.ingredient_rxcui);

        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var group in Read<GroupRow>(Path.Combine(sourceDirectory, "groups.csv")))
        {
            var wanted = group.rule_classes.Split('|').ToHashSet(StringComparer.Ordinal);
            var members = classes.Where(c => wanted.Contains(c.rule_class))
                .DistinctBy(c => c.ingredient_rxcui)
                .OrderBy(c => c.ingredient_name, StringComparer.Ordinal)
                .ToList();
            if (members.Count == 0) throw new InvalidOperationException($"groups.csv: group '{group.name}' matches no verified ingredient.");

            var valueSet = new ValueSet
            {
                Id = group.name,
                Url = CanonicalBase + group.name,
                Name = group.name,
                Title = group.title,
                Status = PublicationStatus.Active,
                Description = $"RxNorm ingredients of rule class(es) {string.Join(", ", wanted.Order(StringComparer.Ordinal))} " +
                    "with their SCD, SBD, GPCK and BPCK products nested below each ingredient. Generated from cards/source/.",
                Expansion = new ValueSet.ExpansionComponent
                {
                    TimestampElement = new FhirDateTime(TablesDated),
                    Contains = [.. members.Select(m => new ValueSet.ContainsComponent
                    {
                        System = DrugGroup.RxNorm,
                        Code = m.ingredient_rxcui,
                        Display = m.ingredient_name,
                        Contains = [.. products[m.ingredient_rxcui]
                            .OrderBy(p => p.name, StringComparer.Ordinal)
                            .Select(p => new ValueSet.ContainsComponent { System = DrugGroup.RxNorm, Code = p.rxcui, Display = p.name })],
                    })],
                },
            };
            valueSet.Expansion.Total = valueSet.Expansion.Contains.Sum(c => 1 + c.Contains.Count);
            result[group.name + ".json"] = JsonSerializer.Serialize(valueSet, Pretty) + "\n";
        }

        return result;
    }

    private static List<T> Read<T>(string path)
    {
        using var reader = new StreamReader(path);
        using var csv = new CsvReader(reader, Csv);
        return [.. csv.GetRecords<T>()];
    }
}
