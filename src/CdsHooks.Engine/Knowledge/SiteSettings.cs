using CdsHooks.Engine.Hooks;

namespace CdsHooks.Engine.Knowledge;

/// <summary>What a site may change without editing rule files. Bound from configuration (<c>Knowledge</c> section)
/// and validated at start-up: naming a rule that does not exist stops the service.</summary>
public sealed class SiteSettings
{
    /// <summary>Rule ids not to evaluate.</summary>
    public List<string> DisabledRules { get; set; } = [];

    /// <summary>Rule ids shipped with <c>enabled: false</c> that this site turns on.</summary>
    public List<string> EnabledRules { get; set; } = [];

    /// <summary>Rule id to the indicator its cards start from.</summary>
    public Dictionary<string, Indicator> Indicators { get; set; } = [];

    /// <summary>Replaces the age of every age factor (65 in the shipped rules), for sites with another definition
    /// of "older adult".</summary>
    public int? OlderAdultAge { get; set; }

    /// <summary>Cards below this indicator are not shown.</summary>
    public Indicator MinimumIndicator { get; set; } = Indicator.Info;

    /// <summary>At most this many cards per response, most severe first.</summary>
    public int MaxCards { get; set; } = 5;

    public IReadOnlyList<Rule> ApplyTo(IReadOnlyList<Rule> rules)
    {
        var ids = rules.Select(r => r.Id).ToHashSet(StringComparer.Ordinal);
        foreach (var (list, name) in new[] { (DisabledRules, nameof(DisabledRules)), (EnabledRules, nameof(EnabledRules)), (Indicators.Keys.ToList(), nameof(Indicators)) })
        {
            foreach (var id in list.Where(id => !ids.Contains(id)))
            {
                throw new KnowledgeException("site settings", $"Knowledge:{name}", $"no rule with id '{id}'.");
            }
        }

        if (OlderAdultAge is <= 0) throw new KnowledgeException("site settings", "Knowledge:OlderAdultAge", "must be a positive age.");
        if (MaxCards <= 0) throw new KnowledgeException("site settings", "Knowledge:MaxCards", "must be 1 or more.");

        return [.. rules.Select(rule =>
        {
            var enabled = !DisabledRules.Contains(rule.Id) && (rule.Enabled || EnabledRules.Contains(rule.Id));
            var factors = OlderAdultAge is { } age
                ? [.. rule.Factors.Select(f => f.AgeAtLeast is null ? f : f with { AgeAtLeast = age })]
                : rule.Factors;
            return rule with
            {
                Enabled = enabled,
                Indicator = Indicators.TryGetValue(rule.Id, out var indicator) ? indicator : rule.Indicator,
                Factors = factors,
                Requires = [.. rule.Requires.Select(r => factors.First(f => f.Id == r.Id))],
            };
        })];
    }
}
