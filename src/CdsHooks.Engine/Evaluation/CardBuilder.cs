using System.Globalization;
using System.Text;
using CdsHooks.Engine.Hooks;
using CdsHooks.Engine.Knowledge;

namespace CdsHooks.Engine.Evaluation;

/// <summary>Turns a problem into a CDS Hooks card a clinician can act on: which drugs, the risk, why it matters for
/// this patient, what to do, and the sources.</summary>
public static class CardBuilder
{
    public static Card Build(Problem problem)
    {
        var head = problem.Head;
        var source = head.Rule.Sources[0];
        var reasons = problem.All.SelectMany(f => f.Rule.OverrideReasons).DistinctBy(r => r.Code).ToList();
        var suggestions = Suggestions(problem);
        return new Card(
            Guid.NewGuid().ToString(),
            Summary(head),
            problem.All.Max(f => f.Indicator),
            new Source(source.Label, source.Url),
            Detail(problem),
            suggestions.Count > 0 ? suggestions : null,
            suggestions.Count > 0 ? "at-most-one" : null,
            reasons.Count > 0 ? reasons : null);
    }

    /// <summary>The concrete actions a clinician can take from the card: lower the dose of a new order where the rule
    /// names a dose and the order is in mg, or cancel a new order. One at most.</summary>
    private static List<Suggestion> Suggestions(Problem problem)
    {
        var suggestions = new List<Suggestion>();
        foreach (var finding in problem.All)
        {
            foreach (var change in finding.Rule.DoseChanges)
            {
                var side = change.Side == PairSide.A ? finding.SideA : finding.SideB;
                foreach (var drug in side.Where(d => d.Medication.IsNew && d.MgPerDay > change.MgPerDay))
                {
                    if (LowerDose(drug, change.MgPerDay) is { } updated)
                    {
                        suggestions.Add(new Suggestion(change.Label, Guid.NewGuid().ToString(), Actions:
                            [new SuggestionAction("update", $"Change the order to {change.MgPerDay.ToString("0.###", CultureInfo.InvariantCulture)} mg/day", updated)]));
                    }
                }
            }
        }

        var ordered = problem.All.SelectMany(f => f.SideA.Concat(f.SideB)).Select(d => d.Medication)
            .Where(m => m.IsNew && m.Order?.Id is not null).Distinct<Patients.MedicationUse>(ReferenceEqualityComparer.Instance);
        suggestions.AddRange(ordered.Select(m => new Suggestion(
            $"Cancel the new order: {m.Display}", Guid.NewGuid().ToString(),
            Actions: [new SuggestionAction("delete", "Remove the draft order", ResourceId: $"MedicationRequest/{m.Order!.Id}")])));
        return suggestions.DistinctBy(s => s.Label).ToList();
    }

    // The same order at the target daily dose: each administration's mg scaled down, the schedule kept. Only for an
    // order with one dosage instruction whose dose is in mg, so that the change is exact.
    private static Hl7.Fhir.Model.MedicationRequest? LowerDose(ResolvedDrug drug, decimal targetMgPerDay)
    {
        if (drug.Medication.Order is not { DosageInstruction: [var dosage] } order || drug.MgPerDay is not { } current) return null;
        if (dosage.DoseAndRate is not [{ Dose: Hl7.Fhir.Model.Quantity { Value: { } perDose } quantity }] || (quantity.Code ?? quantity.Unit) is not "mg")
        {
            return null;
        }

        if (current <= 0 || perDose <= 0) return null;
        decimal newDose;
        try
        {
            newDose = Math.Round(perDose * (targetMgPerDay / current), 3); // the ratio first: it is below 1
        }
        catch (OverflowException)
        {
            return null;
        }

        // The order as the EHR sent it, every element included: the update replaces it.
        if (Fhir.PrefetchReader.Whole(order) is not { } whole) return null;
        var updated = Hl7.Fhir.Model.BaseExtensions.DeepCopy(whole);
        if (updated.DosageInstruction is not [var updatedDosage] || updatedDosage.DoseAndRate is not [{ Dose: Hl7.Fhir.Model.Quantity }]) return null;
        updatedDosage.DoseAndRate[0].Dose = new Hl7.Fhir.Model.Quantity(newDose, "mg") { Unit = "mg", System = "http://unitsofmeasure.org" };
        updatedDosage.Text = $"{newDose.ToString("0.###", CultureInfo.InvariantCulture)} mg per dose ({targetMgPerDay.ToString("0.###", CultureInfo.InvariantCulture)} mg/day)";
        return updated;
    }

    public static string Summary(Finding finding)
    {
        var a = DistinctIngredients(finding.SideA, finding.Rule.SideA);
        var b = DistinctIngredients(finding.SideB, finding.Rule.SideB);
        var summary = Fill(finding, Names(a, 2), Names(b, 2));
        if (summary.Length > KnowledgeLoader.MaxSummaryLength) summary = Fill(finding, Names(a, 1), Names(b, 1));
        return summary.Length <= KnowledgeLoader.MaxSummaryLength ? summary : summary[..(KnowledgeLoader.MaxSummaryLength - 1)] + "…";
    }

    private static string Fill(Finding finding, string a, string b) => Capitalise(finding.Rule.Summary
        .Replace("{a}", a, StringComparison.Ordinal)
        .Replace("{b}", b, StringComparison.Ordinal)
        .Replace("{n}", DistinctIngredients(finding.SideA, finding.Rule.SideA).Count.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal));

    private static string Detail(Problem problem)
    {
        var head = problem.Head;
        var detail = new StringBuilder();
        var drugs = problem.All.SelectMany(f => f.SideA.Concat(f.SideB)).DistinctBy<ResolvedDrug, Patients.MedicationUse>(d => d.Medication, ReferenceEqualityComparer.Instance)
            .OrderByDescending(d => d.Medication.IsNew).ToList();
        detail.Append("**Drugs:** ").AppendJoin("; ", drugs.Select(Describe)).Append(".\n\n");
        detail.Append("**Risk:** ").Append(head.Rule.Risk).Append("\n\n");

        var factors = problem.All.SelectMany(f => f.Factors).DistinctBy(f => f.Text).ToList();
        if (factors.Count > 0)
        {
            detail.Append("**This patient:** ");
            if (head.Age is { } age && factors.Exists(f => f.AgeAtLeast is not null)) detail.Append("age ").Append(age).Append(". ");
            detail.AppendJoin(" ", factors.Select(f => f.Text)).Append("\n\n");
        }

        detail.Append("**What to do:** ").Append(head.Rule.Management).Append("\n\n");
        if (problem.Joined.Count > 0)
        {
            detail.Append("**Also:**\n");
            foreach (var joined in problem.Joined) detail.Append("- **").Append(Summary(joined)).Append(".** ").Append(joined.Rule.Management).Append('\n');
            detail.Append('\n');
        }

        var sources = problem.All.SelectMany(SourcesShown).Distinct();
        detail.Append("**Sources:** ").AppendJoin("; ", sources.Select(s => $"[{s.Label}]({s.Url})")).Append('.');
        return detail.ToString();
    }

    // A source that only backs a patient factor (Beers for "age 65 and over") is cited only when that factor applies.
    private static IEnumerable<RuleSource> SourcesShown(Finding finding)
    {
        // By id: comparing the source records would hash their labels and URLs.
        var factorOnly = finding.Rule.Factors.Select(f => f.Source?.Id).OfType<string>()
            .Except(finding.Factors.Select(f => f.Source?.Id).OfType<string>(), StringComparer.Ordinal);
        return finding.Rule.Sources.ExceptBy(factorOnly, s => s.Id, StringComparer.Ordinal);
    }

    private static string Describe(ResolvedDrug drug)
    {
        var medication = drug.Medication;
        var text = Markdown(medication.Display);
        if (medication.Dose is { } dose) text += $", {Markdown(dose)}";
        if (drug.MgPerDay is { } mg) text += $" ({mg.ToString("0.###", CultureInfo.InvariantCulture)} mg/day)";
        return text + medication.Status switch
        {
            Patients.MedicationStatus.New => " (new order)",
            Patients.MedicationStatus.Stopped when medication.StoppedOn is { } on => $" (stopped {on:yyyy-MM-dd})",
            Patients.MedicationStatus.Stopped => " (recently stopped)",
            _ => " (current)",
        };
    }

    private static List<string> DistinctIngredients(IReadOnlyList<ResolvedDrug> drugs, IReadOnlyList<DrugGroup> groups) =>
        [.. drugs.SelectMany(d => d.Ingredients).Where(i => Rule.InAny(groups, i.Code)).Select(i => i.Name).Distinct()];

    // "clonazepam and lorazepam"; with more names than shown, "clonazepam, lorazepam and 1 more".
    private static string Names(List<string> names, int shown) =>
        names.Count <= shown ? string.Join(" and ", names)
        : names.Count == shown + 1 && shown == 2 ? $"{names[0]}, {names[1]} and {names[2]}"
        : $"{string.Join(", ", names.Take(shown))} and {names.Count - shown} more";

    private static string Capitalise(string text) => text.Length == 0 ? text : char.ToUpperInvariant(text[0]) + text[1..];

    private static readonly System.Buffers.SearchValues<char> MarkdownSpecial = System.Buffers.SearchValues.Create("\\`*_{}[]<>()#+!|~\r\n");

    // Medication names and dosage text come from the EHR: keep them from turning into markdown or HTML.
    private static string Markdown(string text)
    {
        if (!text.AsSpan().ContainsAny(MarkdownSpecial)) return text; // most names: nothing to escape
        var escaped = new StringBuilder(text.Length + 8);
        foreach (var c in text)
        {
            if (c is not ('\r' or '\n') && MarkdownSpecial.Contains(c)) escaped.Append('\\');
            escaped.Append(c is '\r' or '\n' ? ' ' : c);
        }

        return escaped.ToString();
    }
}
