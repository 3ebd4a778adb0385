using CdsHooks.Engine.Hooks;

namespace CdsHooks.Engine.Evaluation;

/// <summary>Alert-fatigue controls, each configurable per site (configuration section <c>Fatigue</c>).</summary>
public sealed class FatigueOptions
{
    public const string Section = "Fatigue";

    public bool Enabled { get; set; } = true;

    /// <summary>The same card (patient, encounter, rule, drugs) within this window is not shown again unless its
    /// indicator rose: order-select then order-sign for the same order.</summary>
    public TimeSpan RepeatWindow { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>After a suggested change was accepted (the dose lowered), the same rule for the same patient and drugs
    /// stays silent this long unless its indicator rose. (After a cancelled order nothing needs holding back: a new
    /// order of the same drug is a new decision.)</summary>
    public TimeSpan AfterAccepted { get; set; } = TimeSpan.FromHours(24);

    /// <summary>After an override with one of <see cref="SuppressingOverrideReasons"/>, the same rule for the same
    /// patient and drugs stays silent this long, except critical cards.</summary>
    public TimeSpan AfterOverride { get; set; } = TimeSpan.FromDays(7);

    public List<string> SuppressingOverrideReasons { get; set; } =
        ["benefit-outweighs-risk", "tolerated-combination", "alternatives-inadequate", "previously-tolerated"];

    /// <summary>How far back the controls need to look.</summary>
    public TimeSpan Horizon => new[] { RepeatWindow, AfterAccepted, AfterOverride }.Max();
}

/// <summary>A card issued earlier about the same patient, rule and drugs, with what the clinician did with it.</summary>
public sealed record PastCard(
    string RuleId,
    string DrugsKey,
    string? EncounterHash,
    Indicator Indicator,
    DateTimeOffset IssuedAt,
    string? Outcome,
    string? OverrideReason,
    DateTimeOffset? OutcomeAt,
    bool AcceptedChange = false);

public static class FatiguePolicy
{
    /// <summary>Why this card should not be shown again, or null to show it. <paramref name="history"/> holds the
    /// earlier cards of the same patient.</summary>
    public static string? Suppression(IssuedCard card, string? encounterHash, IEnumerable<PastCard> history, FatigueOptions options, DateTimeOffset now)
    {
        if (!options.Enabled || card.RuleId == IssuedCard.DataGapRule) return null;
        var same = history.Where(p => p.RuleId == card.RuleId && p.DrugsKey == card.DrugsKey).ToList();

        if (same.Exists(p => p.EncounterHash == encounterHash && p.IssuedAt >= now - options.RepeatWindow && p.Indicator >= card.Indicator))
        {
            return "shown for this encounter within the repeat window";
        }

        // A change that was accepted (the dose lowered) leaves the same order in place: do not ask again. A cancelled order
        // is gone; if it is ordered again, that is a new decision and the card is due.
        if (same.Exists(p => p.Outcome == "accepted" && p.AcceptedChange && p.OutcomeAt >= now - options.AfterAccepted && p.Indicator >= card.Indicator))
        {
            return "a suggested change was accepted";
        }

        if (card.Indicator != Indicator.Critical && same.Exists(p => p.Outcome == "overridden" && p.OutcomeAt >= now - options.AfterOverride
                && p.OverrideReason is { } reason && options.SuppressingOverrideReasons.Contains(reason) && p.Indicator >= card.Indicator))
        {
            return "overridden with a reason that holds for a while";
        }

        return null;
    }
}
