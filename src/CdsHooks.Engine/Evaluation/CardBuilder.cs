using System.Text;
using CdsHooks.Engine.Hooks;
using CdsHooks.Engine.Knowledge;

namespace CdsHooks.Engine.Evaluation;

/// <summary>Turns a finding into a CDS Hooks card a clinician can act on: which drugs, the risk, why it matters for
/// this patient, what to do, and the source.</summary>
public static class CardBuilder
{
    public static Card Build(Finding finding)
    {
        var rule = finding.Rule;
        var summary = Capitalise(rule.Summary
            .Replace("{a}", Names(finding.SideA), StringComparison.Ordinal)
            .Replace("{b}", Names(finding.SideB), StringComparison.Ordinal));
        if (summary.Length > KnowledgeLoader.MaxSummaryLength)
        {
            summary = summary[..(KnowledgeLoader.MaxSummaryLength - 1)] + "…";
        }

        var source = rule.Sources[0];
        return new Card(
            Guid.NewGuid().ToString(),
            summary,
            finding.Indicator,
            new Source(source.Label, source.Url),
            Detail(finding),
            OverrideReasons: rule.OverrideReasons.Count > 0 ? rule.OverrideReasons : null);
    }

    private static string Detail(Finding finding)
    {
        var rule = finding.Rule;
        var detail = new StringBuilder();
        detail.Append("**Drugs:** ")
            .AppendJoin("; ", finding.SideA.Concat(finding.SideB).Select(Describe))
            .Append(".\n\n");
        detail.Append("**Risk:** ").Append(rule.Risk).Append("\n\n");
        if (finding.Factors.Count > 0)
        {
            detail.Append("**This patient:** ");
            if (finding.Age is { } age) detail.Append("age ").Append(age).Append(". ");
            detail.AppendJoin(" ", finding.Factors.Select(f => f.Text.Trim())).Append("\n\n");
        }

        detail.Append("**What to do:** ").Append(rule.Management).Append("\n\n");
        detail.Append("**Sources:** ").AppendJoin("; ", SourcesShown(finding).Select(s => $"[{s.Label}]({s.Url})")).Append('.');
        return detail.ToString();
    }

    // A source that only backs a patient factor (Beers for "age 65 and over") is cited only when that factor applies.
    private static IEnumerable<RuleSource> SourcesShown(Finding finding)
    {
        var factorOnly = finding.Rule.Factors.Select(f => f.Source).OfType<RuleSource>()
            .Except(finding.Factors.Select(f => f.Source).OfType<RuleSource>());
        return finding.Rule.Sources.Except(factorOnly);
    }

    private static string Describe(MatchedDrug drug)
    {
        var text = Markdown(drug.Medication.Display);
        if (drug.Medication.Dose is { } dose) text += $", {Markdown(dose)}";
        return text + (drug.Medication.IsNew ? " (new order)" : " (current)");
    }

    private static string Names(IReadOnlyList<MatchedDrug> drugs)
    {
        var names = drugs.SelectMany(d => d.Ingredients).Select(i => i.Name).Distinct().ToList();
        return names.Count <= 2 ? string.Join(" and ", names) : $"{names[0]}, {names[1]} and {names.Count - 2} more";
    }

    private static string Capitalise(string text) => text.Length == 0 ? text : char.ToUpperInvariant(text[0]) + text[1..];

    // Medication names and dosage text come from the EHR: keep them from turning into markdown or HTML.
    private static string Markdown(string text)
    {
        var escaped = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            if ("\\`*_{}[]<>()#+!|~".Contains(c, StringComparison.Ordinal)) escaped.Append('\\');
            escaped.Append(c is '\r' or '\n' ? ' ' : c);
        }

        return escaped.ToString();
    }
}
