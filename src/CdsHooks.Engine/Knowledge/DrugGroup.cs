using System.Globalization;
using System.Text.RegularExpressions;
using Hl7.Fhir.Model;

namespace CdsHooks.Engine.Knowledge;

/// <summary>An RxNorm ingredient. Products (SCD, SBD, GPCK, BPCK) resolve to one or more of these.</summary>
public sealed record Ingredient(string Code, string Name);

/// <summary>A drug group read from a FHIR ValueSet in <c>cards/valuesets/</c>. Its expansion lists each ingredient
/// (with its brand names as designations) and the products that contain it nested below.</summary>
public sealed partial class DrugGroup
{
    public const string RxNorm = "http://www.nlm.nih.gov/research/umls/rxnorm";

    private DrugGroup(string name, string title, IReadOnlyDictionary<string, Ingredient> ingredients,
        IReadOnlyDictionary<string, IReadOnlyList<Ingredient>> products, IReadOnlyDictionary<string, string> productNames,
        IReadOnlyDictionary<string, IReadOnlyList<string>> brands)
    {
        Name = name;
        Title = title;
        Ingredients = ingredients;
        Products = products;
        ProductNames = productNames;
        Brands = brands;
    }

    public string Name { get; }
    public string Title { get; }

    private static int _made;

    /// <summary>A number of its own among the groups made in this process, for the evaluator's filter of the groups a
    /// patient's drugs are in (a bit per group, without a set made for every call).</summary>
    internal int Tag { get; } = Interlocked.Increment(ref _made);

    /// <summary>Ingredient code to ingredient.</summary>
    public IReadOnlyDictionary<string, Ingredient> Ingredients { get; }

    /// <summary>Product code to the ingredients (of this group) it contains.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<Ingredient>> Products { get; }

    /// <summary>Product code to its RxNorm name ("clonazepam 0.5 MG Oral Tablet").</summary>
    public IReadOnlyDictionary<string, string> ProductNames { get; }

    /// <summary>Ingredient code to its brand names.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Brands { get; }

    public static DrugGroup FromValueSet(ValueSet valueSet, string file)
    {
        var ingredients = new Dictionary<string, Ingredient>();
        var products = new Dictionary<string, List<Ingredient>>();
        var productNames = new Dictionary<string, string>();
        var brands = new Dictionary<string, IReadOnlyList<string>>();
        var top = valueSet.Expansion!.Contains;
        for (var i = 0; i < top.Count; i++)
        {
            var entry = top[i];
            var at = $"expansion.contains[{i}]";
            if (entry.System != RxNorm || string.IsNullOrWhiteSpace(entry.Code) || string.IsNullOrWhiteSpace(entry.Display))
            {
                throw new KnowledgeException(file, at, $"each ingredient needs system {RxNorm}, a code and a display.");
            }

            var ingredient = new Ingredient(entry.Code, entry.Display);
            if (!ingredients.TryAdd(entry.Code, ingredient))
            {
                throw new KnowledgeException(file, at, $"ingredient {entry.Code} is listed twice.");
            }

            var brandNames = entry.Designation.Select(d => d.Value).OfType<string>().Where(v => v.Trim().Length > 0).ToList();
            if (brandNames.Count > 0) brands[entry.Code] = brandNames;

            for (var j = 0; j < entry.Contains.Count; j++)
            {
                var product = entry.Contains[j];
                if (product.System != RxNorm || string.IsNullOrWhiteSpace(product.Code))
                {
                    throw new KnowledgeException(file, $"{at}.contains[{j}]", $"each product needs system {RxNorm} and a code.");
                }

                if (!products.TryGetValue(product.Code, out var list)) products[product.Code] = list = [];
                list.Add(ingredient);
                if (product.Display is { } display) productNames[product.Code] = display;
            }
        }

        return new DrugGroup(valueSet.Name!, valueSet.Title ?? valueSet.Name!, ingredients,
            products.ToDictionary(p => p.Key, p => (IReadOnlyList<Ingredient>)p.Value), productNames, brands);
    }

    /// <summary>The strength in mg of one unit (tablet, capsule) of a single-ingredient solid product, read from its
    /// RxNorm name ("clonazepam 0.5 MG Oral Tablet" is 0.5). Null for solutions ("MG/ML") and combinations.</summary>
    public static decimal? StrengthMg(string productName)
    {
        if (productName.Contains('/', StringComparison.Ordinal)) return null;
        var matches = Strength().Matches(productName);
        return matches.Count == 1 && decimal.TryParse(matches[0].Groups[1].Value, NumberStyles.Number, CultureInfo.InvariantCulture, out var mg)
            ? mg
            : null;
    }

    [GeneratedRegex(@"(\d+(?:\.\d+)?) MG\b")]
    private static partial Regex Strength();
}

/// <summary>A condition group (COPD, history of falls, ...) read from a value set of SNOMED CT and ICD-10-CM codes.</summary>
public sealed class ConditionGroup(string name, string title, IReadOnlySet<string> codes)
{
    public const string Snomed = "http://snomed.info/sct";
    public const string Icd10Cm = "http://hl7.org/fhir/sid/icd-10-cm";

    public string Name { get; } = name;
    public string Title { get; } = title;

    /// <summary>Normalised "system|code" keys (ICD-10-CM without its dot, upper case).</summary>
    public IReadOnlySet<string> Codes { get; } = codes;

    public static string Key(string system, string code) => system switch
    {
        Icd10Cm => Icd10Cm + "|" + code.Replace(".", "", StringComparison.Ordinal).Trim().ToUpperInvariant(),
        _ => system + "|" + code.Trim(),
    };

    public static ConditionGroup FromValueSet(ValueSet valueSet, string file)
    {
        var codes = new HashSet<string>(StringComparer.Ordinal);
        var top = valueSet.Expansion!.Contains;
        for (var i = 0; i < top.Count; i++)
        {
            if (top[i].System is not (Snomed or Icd10Cm) || string.IsNullOrWhiteSpace(top[i].Code))
            {
                throw new KnowledgeException(file, $"expansion.contains[{i}]", $"condition codes are {Snomed} or {Icd10Cm}, with a code.");
            }

            codes.Add(Key(top[i].System!, top[i].Code!));
        }

        return new ConditionGroup(valueSet.Name!, valueSet.Title ?? valueSet.Name!, codes);
    }
}

/// <summary>A knowledge file that cannot be loaded; names the file and the field so that its author can fix it.</summary>
public sealed class KnowledgeException(string file, string field, string problem)
    : Exception($"{file}: {field}: {problem}")
{
    public string File { get; } = file;
    public string Field { get; } = field;
}
