using Hl7.Fhir.Model;

namespace CdsHooks.Engine.Knowledge;

/// <summary>An RxNorm ingredient. Products (SCD, SBD, GPCK, BPCK) resolve to one or more of these.</summary>
public sealed record Ingredient(string Code, string Name);

/// <summary>A drug group read from a FHIR ValueSet in <c>cards/valuesets/</c>. Its expansion lists each ingredient
/// with the products that contain it nested below, so a product code resolves to its ingredients.</summary>
public sealed class DrugGroup
{
    public const string RxNorm = "http://www.nlm.nih.gov/research/umls/rxnorm";

    public DrugGroup(string name, string title, string url, IReadOnlyDictionary<string, Ingredient> ingredients,
        IReadOnlyDictionary<string, IReadOnlyList<Ingredient>> products)
    {
        Name = name;
        Title = title;
        Url = url;
        Ingredients = ingredients;
        Products = products;
    }

    public string Name { get; }
    public string Title { get; }
    public string Url { get; }

    /// <summary>Ingredient code to ingredient.</summary>
    public IReadOnlyDictionary<string, Ingredient> Ingredients { get; }

    /// <summary>Product code to the ingredients (of this group) it contains.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<Ingredient>> Products { get; }

    public static DrugGroup FromValueSet(ValueSet valueSet, string file)
    {
        if (string.IsNullOrWhiteSpace(valueSet.Name)) throw new KnowledgeException(file, "name", "a drug value set needs a name.");
        if (string.IsNullOrWhiteSpace(valueSet.Url)) throw new KnowledgeException(file, "url", "a drug value set needs a canonical url.");
        if (valueSet.Expansion?.Contains is not { Count: > 0 } top)
        {
            throw new KnowledgeException(file, "expansion.contains", "the value set has no expansion.");
        }

        var ingredients = new Dictionary<string, Ingredient>();
        var products = new Dictionary<string, List<Ingredient>>();
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

            for (var j = 0; j < entry.Contains.Count; j++)
            {
                var product = entry.Contains[j];
                if (product.System != RxNorm || string.IsNullOrWhiteSpace(product.Code))
                {
                    throw new KnowledgeException(file, $"{at}.contains[{j}]", $"each product needs system {RxNorm} and a code.");
                }

                if (!products.TryGetValue(product.Code, out var list)) products[product.Code] = list = [];
                list.Add(ingredient);
            }
        }

        return new DrugGroup(valueSet.Name, valueSet.Title ?? valueSet.Name, valueSet.Url, ingredients,
            products.ToDictionary(p => p.Key, p => (IReadOnlyList<Ingredient>)p.Value));
    }

    /// <summary>The ingredients of this group that an RxNorm code (ingredient or product) stands for.</summary>
    public IReadOnlyList<Ingredient> Resolve(string code) =>
        Ingredients.TryGetValue(code, out var ingredient) ? [ingredient]
        : Products.TryGetValue(code, out var list) ? list
        : [];
}

/// <summary>A knowledge file that cannot be loaded; names the file and the field so that its author can fix it.</summary>
public sealed class KnowledgeException(string file, string field, string problem)
    : Exception($"{file}: {field}: {problem}")
{
    public string File { get; } = file;
    public string Field { get; } = field;
}
