using System.Collections.Frozen;

namespace CdsHooks.Engine.Knowledge;

/// <summary>Which side of a rule's drug pair an ingredient matched.</summary>
public enum PairSide
{
    A,
    B,
}

/// <summary>Everything the service knows, loaded once from <c>cards/</c>, validated, and immutable. Rules are indexed
/// by ingredient so that evaluation touches only the rules a patient's drugs can trigger.</summary>
public sealed class KnowledgeBase
{
    private readonly FrozenDictionary<string, Ingredient[]> _ingredientsByCode;
    private readonly FrozenDictionary<string, (Rule Rule, PairSide Side)[]> _rulesByIngredient;

    public KnowledgeBase(IReadOnlyDictionary<string, DrugGroup> groups, IReadOnlyList<Rule> rules)
    {
        Groups = groups;
        Rules = rules;

        var byCode = new Dictionary<string, Dictionary<string, Ingredient>>();
        foreach (var group in groups.Values)
        {
            foreach (var ingredient in group.Ingredients.Values) Add(ingredient.Code, ingredient);
            foreach (var (product, ingredients) in group.Products)
            {
                foreach (var ingredient in ingredients) Add(product, ingredient);
            }
        }

        _ingredientsByCode = byCode.ToFrozenDictionary(p => p.Key, p => p.Value.Values.ToArray());

        var byIngredient = new Dictionary<string, List<(Rule, PairSide)>>();
        foreach (var rule in rules)
        {
            foreach (var code in rule.DrugA.Ingredients.Keys) Index(code, rule, PairSide.A);
            foreach (var code in rule.DrugB.Ingredients.Keys) Index(code, rule, PairSide.B);
        }

        _rulesByIngredient = byIngredient.ToFrozenDictionary(p => p.Key, p => p.Value.ToArray());

        void Add(string code, Ingredient ingredient)
        {
            if (!byCode.TryGetValue(code, out var set)) byCode[code] = set = [];
            set.TryAdd(ingredient.Code, ingredient);
        }

        void Index(string code, Rule rule, PairSide side)
        {
            if (!byIngredient.TryGetValue(code, out var list)) byIngredient[code] = list = [];
            list.Add((rule, side));
        }
    }

    public IReadOnlyDictionary<string, DrugGroup> Groups { get; }

    public IReadOnlyList<Rule> Rules { get; }

    /// <summary>The ingredients an RxNorm ingredient or product code stands for; empty for a code no group knows.</summary>
    public IReadOnlyList<Ingredient> IngredientsOf(string rxNormCode) =>
        _ingredientsByCode.TryGetValue(rxNormCode, out var list) ? list : [];

    /// <summary>The rules that name an ingredient, with the side of the pair it is on.</summary>
    public IReadOnlyList<(Rule Rule, PairSide Side)> RulesFor(string ingredientCode) =>
        _rulesByIngredient.TryGetValue(ingredientCode, out var list) ? list : [];
}
