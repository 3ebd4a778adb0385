using CdsHooks.Engine.Hooks;

namespace CdsHooks.Engine.Evaluation;

/// <summary>A card with what the audit trail and the alert-fatigue controls need to know about it: which rule (and
/// version) made it, and which drugs it is about. <see cref="DrugsKey"/> is the sorted RxNorm ingredient codes
/// ("2598+15996"): the same problem about the same drugs has the same key from one hook call to the next.</summary>
public sealed record IssuedCard(Card Card, string RuleId, int RuleVersion, string DrugsKey)
{
    /// <summary>The rule id of the info card that says what could not be checked.</summary>
    public const string DataGapRule = "data-gap";

    public Indicator Indicator => Card.Indicator;

    /// <summary>"update:uuid" or "delete:uuid" for each suggestion: what accepting it does to the order.</summary>
    /// <remarks>One array, made on each read: the audit trail reads it once for each card shown and keeps it until the
    /// card's record is written. Made by LINQ into a list, it was a fifth of what a queued record keeps alive for the
    /// collections (docs/performance.md, fourteenth round).</remarks>
    public IReadOnlyList<string> SuggestionIds
    {
        get
        {
            if (Card.Suggestions is not { Count: > 0 } suggestions) return [];
            var count = 0;
            for (var i = 0; i < suggestions.Count; i++)
            {
                if (suggestions[i].Uuid is not null) count++;
            }

            var ids = new string[count];
            count = 0;
            for (var i = 0; i < suggestions.Count; i++)
            {
                if (suggestions[i] is { Uuid: { } uuid } suggestion) ids[count++] = (Updates(suggestion) ? "update:" : "delete:") + uuid;
            }

            return ids;
        }
    }

    private static bool Updates(Suggestion suggestion)
    {
        if (suggestion.Actions is not { } actions) return false;
        for (var i = 0; i < actions.Count; i++)
        {
            if (actions[i].Type == "update") return true;
        }

        return false;
    }

    public static IssuedCard From(Problem problem)
    {
        // The ingredient codes, each once, sorted and joined, gathered in a list the thread lends (LentLists).
        var codes = LentLists<string>.Take();
        string drugs;
        var all = problem.Findings();
        try
        {
            foreach (var finding in all)
            {
                Add(finding.SideA);
                Add(finding.SideB);
            }

            codes.Sort(StringComparer.Ordinal);
            drugs = string.Join('+', codes);
        }
        finally
        {
            LentLists<string>.GiveBack(codes);
        }

        return new IssuedCard(CardBuilder.Build(problem, all), problem.Head.Rule.Id, problem.Head.Rule.Version, drugs);

        void Add(IReadOnlyList<ResolvedDrug> drugs)
        {
            for (var i = 0; i < drugs.Count; i++)
            {
                for (var j = 0; j < drugs[i].Ingredients.Count; j++)
                {
                    if (!codes.Contains(drugs[i].Ingredients[j].Code)) codes.Add(drugs[i].Ingredients[j].Code);
                }
            }
        }
    }
}

/// <summary>What a hook call produced, before any alert-fatigue control.</summary>
public sealed record HookResult(IReadOnlyList<IssuedCard> Cards)
{
    public static HookResult Empty { get; } = new([]);

    public CdsResponse ToResponse()
    {
        var cards = new Card[Cards.Count];
        for (var i = 0; i < cards.Length; i++) cards[i] = Cards[i].Card;
        return new CdsResponse(cards);
    }
}
