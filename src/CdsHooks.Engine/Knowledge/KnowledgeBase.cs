using System.Collections.Frozen;

namespace CdsHooks.Engine.Knowledge;

/// <summary>Everything the service knows, loaded once from <c>cards/</c>, validated, and immutable. Rules are indexed
/// by ingredient so that evaluation touches only the rules a patient's new orders can trigger, however many rules
/// there are.</summary>
public sealed class KnowledgeBase
{
    private readonly FrozenDictionary<string, Ingredient[]> _ingredientsByCode;
    private readonly FrozenDictionary<string, Rule[]> _rulesByIngredient;
    private readonly FrozenDictionary<string, Ingredient[]> _ingredientsByName;
    private readonly FrozenDictionary<string, decimal> _strengthMg;
    private readonly FrozenDictionary<string, DrugGroup[]> _groupsByIngredient;

    public KnowledgeBase(IReadOnlyDictionary<string, DrugGroup> drugGroups, IReadOnlyDictionary<string, ConditionGroup> conditionGroups,
        IReadOnlyList<Rule> rules, SiteSettings? settings = null)
    {
        Settings = settings ?? new SiteSettings();
        DrugGroups = drugGroups;
        ConditionGroups = conditionGroups;
        Rules = rules;

        var byCode = new Dictionary<string, Dictionary<string, Ingredient>>();
        var byName = new Dictionary<string, Dictionary<string, Ingredient>>(StringComparer.Ordinal);
        var strengths = new Dictionary<string, decimal>();
        foreach (var group in drugGroups.Values)
        {
            foreach (var ingredient in group.Ingredients.Values)
            {
                Add(byCode, ingredient.Code, ingredient);
                Add(byName, NameKey(ingredient.Name), ingredient);
                foreach (var brand in group.Brands.GetValueOrDefault(ingredient.Code, [])) Add(byName, NameKey(brand), ingredient);
            }

            foreach (var (product, ingredients) in group.Products)
            {
                foreach (var ingredient in ingredients) Add(byCode, product, ingredient);
            }

            foreach (var (product, name) in group.ProductNames)
            {
                if (group.Products[product].Count == 1 && DrugGroup.StrengthMg(name) is { } mg) strengths[product] = mg;
            }
        }

        _ingredientsByCode = byCode.ToFrozenDictionary(p => p.Key, p => p.Value.Values.ToArray());
        _ingredientsByName = byName.ToFrozenDictionary(p => p.Key, p => p.Value.Values.ToArray(), StringComparer.Ordinal);
        _strengthMg = strengths.ToFrozenDictionary();
        MaxNameWords = byName.Keys.Select(k => k.Count(c => c == ' ') + 1).DefaultIfEmpty(1).Max();

        var byIngredient = new Dictionary<string, HashSet<Rule>>();
        foreach (var rule in rules.Where(r => r.Enabled))
        {
            // A pair fires when either side is new; a single-drug or count rule when side a is.
            var triggers = rule.Kind == RuleKind.Pair ? rule.SideA.Concat(rule.SideB) : rule.SideA;
            foreach (var code in triggers.SelectMany(g => g.Ingredients.Keys))
            {
                if (!byIngredient.TryGetValue(code, out var set)) byIngredient[code] = set = [];
                set.Add(rule);
            }
        }

        _rulesByIngredient = byIngredient.ToFrozenDictionary(p => p.Key, p => p.Value.ToArray());

        // Every group a rule can name, the knowledge's and any a rule holds beside them, by the codes of its
        // ingredients: a drug's groups are found when it is resolved (ResolvedDrug.Groups), and whether it is in a
        // rule's groups is then a comparison of references, not a lookup of each code in each group.
        var groups = new HashSet<DrugGroup>(drugGroups.Values, ReferenceEqualityComparer.Instance);
        foreach (var rule in rules)
        {
            groups.UnionWith(rule.SideA);
            groups.UnionWith(rule.SideB);
            groups.UnionWith(rule.ExcludedDrugs);
            foreach (var factor in rule.Factors)
            {
                groups.UnionWith(factor.Drugs);
                if (factor.DailyDoseAbove is { } above) groups.UnionWith(above.Of);
                if (factor.DailyDoseAtMost is { } atMost) groups.UnionWith(atMost.Of);
            }
        }

        var groupsByCode = new Dictionary<string, List<DrugGroup>>();
        foreach (var group in groups)
        {
            foreach (var code in group.Ingredients.Keys)
            {
                if (!groupsByCode.TryGetValue(code, out var list)) groupsByCode[code] = list = [];
                list.Add(group);
            }
        }

        _groupsByIngredient = groupsByCode.ToFrozenDictionary(p => p.Key, p => p.Value.ToArray());

        static void Add<TKey>(Dictionary<TKey, Dictionary<string, Ingredient>> map, TKey key, Ingredient ingredient) where TKey : notnull
        {
            if (!map.TryGetValue(key, out var set)) map[key] = set = [];
            set.TryAdd(ingredient.Code, ingredient);
        }
    }

    public SiteSettings Settings { get; }

    public IReadOnlyDictionary<string, DrugGroup> DrugGroups { get; }

    public IReadOnlyDictionary<string, ConditionGroup> ConditionGroups { get; }

    public IReadOnlyList<Rule> Rules { get; }

    /// <summary>The longest drug name in words ("valproic acid" is 2), for matching text-only medications.</summary>
    public int MaxNameWords { get; }

    /// <summary>The ingredients an RxNorm ingredient or product code stands for; empty for a code no group knows.</summary>
    public IReadOnlyList<Ingredient> IngredientsOf(string rxNormCode) =>
        _ingredientsByCode.TryGetValue(rxNormCode, out var list) ? list : [];

    /// <summary>The ingredients a lower-case generic or brand name ("clonazepam", "klonopin", "valproic acid") stands for.</summary>
    public IReadOnlyList<Ingredient> IngredientsNamed(string nameKey) =>
        _ingredientsByName.TryGetValue(nameKey, out var list) ? list : [];

    /// <summary>The enabled rules that a new order of this ingredient can trigger.</summary>
    public IReadOnlyList<Rule> RulesFor(string ingredientCode) =>
        _rulesByIngredient.TryGetValue(ingredientCode, out var list) ? list : [];

    /// <summary>The groups, of the knowledge or named by a rule, that hold this ingredient.</summary>
    public IReadOnlyList<DrugGroup> GroupsOf(string ingredientCode) =>
        _groupsByIngredient.TryGetValue(ingredientCode, out var list) ? list : [];

    /// <summary>mg per unit of a single-ingredient solid product, from its RxNorm name.</summary>
    public decimal? StrengthMg(string productCode) => _strengthMg.TryGetValue(productCode, out var mg) ? mg : null;

    /// <summary>Words of a drug name or medication text, normalised for matching: full-width forms folded to ASCII
    /// (the service runs with invariant globalization, so without Unicode normalisation tables), lower case, anything
    /// but letters and digits a separator (®, ™, ";", tabs), and a break where letters meet digits
    /// ("clonazepam0.5mg" is "clonazepam 0 5 mg").</summary>
    public static string NameKey(string name)
    {
        var key = new System.Text.StringBuilder(name.Length + 8);
        var previous = ' ';
        foreach (var raw in name)
        {
            var c = char.ToLowerInvariant(raw is >= '\uFF01' and <= '\uFF5E' ? (char)(raw - 0xFEE0) : raw);
            var current = char.IsLetterOrDigit(c) ? c : ' ';
            var boundary = current != ' ' && previous != ' ' && char.IsDigit(current) != char.IsDigit(previous);
            if ((current == ' ' || boundary) && key.Length > 0 && key[^1] != ' ') key.Append(' ');
            if (current != ' ') key.Append(current);
            previous = current;
        }

        return key.ToString().TrimEnd();
    }
}
