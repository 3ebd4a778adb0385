using System.Globalization;
using System.Text;
using CdsHooks.Engine.Hooks;
using CdsHooks.Engine.Knowledge;

namespace CdsHooks.Engine.Evaluation;

/// <summary>Turns a problem into a CDS Hooks card a clinician can act on: which drugs, the risk, why it matters for
/// this patient, what to do, and the sources.</summary>
public static class CardBuilder
{
    public static Card Build(Problem problem) => Build(problem, problem.Findings());

    /// <summary>The card of a problem whose findings, head first, are <paramref name="all"/>
    /// (<see cref="Problem.Findings"/>, a new array on each call).</summary>
    internal static Card Build(Problem problem, Finding[] all)
    {
        var head = problem.Head;
        var source = head.Rule.Sources[0];
        // Loops over the findings rather than LINQ chains: this runs for every card (docs/performance.md).
        var drugs = Drugs(all);
        var reasons = new List<Coding>();
        var indicator = head.Indicator;
        foreach (var finding in all)
        {
            if (finding.Indicator > indicator) indicator = finding.Indicator;
            var offered = finding.Rule.OverrideReasons;
            for (var i = 0; i < offered.Count; i++)
            {
                if (IndexOf(reasons, offered[i].Code, static r => r.Code) < 0) reasons.Add(offered[i]);
            }
        }

        var suggestions = Suggestions(all, drugs);
        return new Card(
            // Time-ordered (UUIDv7): the audit trail's primary key is the card's uuid, and random (v4) keys put every
            // insert on a random page of that index, which SQLite read and wrote back at each commit and checkpoint
            // (a tenth of the service's CPU at saturation, docs/performance.md). 74 random bits still make it unguessable.
            // The wall clock, not the engine's TimeProvider: the order it serves is the order of the inserts.
            Uuids.TimeOrdered(DateTimeOffset.UtcNow).ToString(),
            Summary(head),
            indicator,
            new Source(source.Label, source.Url),
            Detail(problem, all, drugs),
            suggestions.Count > 0 ? suggestions : null,
            suggestions.Count > 0 ? "at-most-one" : null,
            reasons.Count > 0 ? reasons : null);
    }

    /// <summary>The concrete actions a clinician can take from the card: lower the dose of a new order where the rule
    /// names a dose and the order is in mg, or cancel a new order. One at most.</summary>
    private static List<Suggestion> Suggestions(Finding[] all, List<ResolvedDrug> drugs)
    {
        var suggestions = new List<Suggestion>();
        foreach (var finding in all)
        {
            var changes = finding.Rule.DoseChanges;
            for (var c = 0; c < changes.Count; c++)
            {
                var change = changes[c];
                var side = change.Side == PairSide.A ? finding.SideA : finding.SideB;
                for (var i = 0; i < side.Count; i++)
                {
                    var drug = side[i];
                    if (drug.Medication.IsNew && drug.MgPerDay > change.MgPerDay && LowerDose(drug, change.MgPerDay) is { } updated)
                    {
                        Add(new Suggestion(change.Label, Uuids.Random().ToString(), Actions:
                            [new SuggestionAction("update", $"Change the order to {change.MgPerDay.ToString("0.###", CultureInfo.InvariantCulture)} mg/day", updated)]));
                    }
                }
            }
        }

        foreach (var drug in drugs)
        {
            var medication = drug.Medication;
            if (!medication.IsNew || medication.Order?.Id is not { } id) continue;
            Add(new Suggestion($"Cancel the new order: {medication.Display}", Uuids.Random().ToString(),
                Actions: [new SuggestionAction("delete", "Remove the draft order", ResourceId: $"MedicationRequest/{id}")]));
        }

        return suggestions;

        // One suggestion per label, the first one made (a drug on both sides, or in several findings, is offered once).
        void Add(Suggestion suggestion)
        {
            if (IndexOf(suggestions, suggestion.Label, static s => s.Label) < 0) suggestions.Add(suggestion);
        }
    }

    // Where an item with this key is in the list, or -1 (override reasons, suggestion labels, factors: a few each).
    private static int IndexOf<T>(List<T> items, string key, Func<T, string> keyOf)
    {
        for (var i = 0; i < items.Count; i++)
        {
            if (keyOf(items[i]) == key) return i;
        }

        return -1;
    }

    // The findings' drugs, side A then side B of each finding in turn (a drug may come more than once). One list for
    // the card's suggestions and its detail.
    private static List<ResolvedDrug> Drugs(Finding[] all)
    {
        var count = 0;
        foreach (var finding in all) count += finding.SideA.Count + finding.SideB.Count;
        var drugs = new List<ResolvedDrug>(count);
        foreach (var finding in all)
        {
            for (var i = 0; i < finding.SideA.Count; i++) drugs.Add(finding.SideA[i]);
            for (var i = 0; i < finding.SideB.Count; i++) drugs.Add(finding.SideB[i]);
        }

        return drugs;
    }

    // The same order at the target daily dose: each administration's mg scaled down, the schedule kept. Only for an
    // order with one dosage instruction whose dose is in mg, so that the change is exact.
    private static Hl7.Fhir.Model.MedicationRequest? LowerDose(ResolvedDrug drug, decimal targetMgPerDay)
    {
        if (drug.Medication.Order is not { Dosage: [var dosage] } order || drug.MgPerDay is not { } current) return null;
        if (dosage.Doses is not [{ IsRange: false, Quantity: { Value: { } perDose } quantity }] || (quantity.Code ?? quantity.Unit) is not "mg")
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
        if (order.Whole() is not Hl7.Fhir.Model.MedicationRequest whole) return null;
        var updated = Hl7.Fhir.Model.BaseExtensions.DeepCopy(whole);
        if (updated.DosageInstruction is not [var updatedDosage] || updatedDosage.DoseAndRate is not [{ Dose: Hl7.Fhir.Model.Quantity }]) return null;
        updatedDosage.DoseAndRate[0].Dose = new Hl7.Fhir.Model.Quantity(newDose, "mg") { Unit = "mg", System = "http://unitsofmeasure.org" };
        updatedDosage.Text = $"{newDose.ToString("0.###", CultureInfo.InvariantCulture)} mg per dose ({targetMgPerDay.ToString("0.###", CultureInfo.InvariantCulture)} mg/day)";
        return updated;
    }

    public static string Summary(Finding finding)
    {
        // The ingredients' names (the knowledge's) gathered in lists the thread lends (LentLists): two lists per card
        // were made only to be read once.
        var a = LentLists<string>.Take();
        var b = LentLists<string>.Take();
        try
        {
            ResolvedDrug.IngredientsIn(finding.SideA, finding.Rule.SideA, a, static ingredient => ingredient.Name);
            ResolvedDrug.IngredientsIn(finding.SideB, finding.Rule.SideB, b, static ingredient => ingredient.Name);
            var summary = Fill(finding, a, b, 2);
            if (summary.Length > KnowledgeLoader.MaxSummaryLength) summary = Fill(finding, a, b, 1);
            return summary.Length <= KnowledgeLoader.MaxSummaryLength ? summary : summary[..(KnowledgeLoader.MaxSummaryLength - 1)] + "…";
        }
        finally
        {
            LentLists<string>.GiveBack(a);
            LentLists<string>.GiveBack(b);
        }
    }

    // The rule's summary with {a} and {b} replaced by the names on each side (at most `shown` of each) and {n} by the
    // number on side a, capitalised: measured, then written into the one string made (the names joined, the
    // placeholders replaced one after another and the capital were a string each).
    private static string Fill(Finding finding, List<string> a, List<string> b, int shown)
    {
        var template = finding.Rule.Summary;
        var measure = new Out([]);
        Write(ref measure, template, a, b, shown);
        return string.Create(measure.Length, (template, a, b, shown), static (chars, state) =>
        {
            var text = new Out(chars);
            Write(ref text, state.template, state.a, state.b, state.shown);
            if (chars.Length > 0 && !char.IsUpper(chars[0])) chars[0] = char.ToUpperInvariant(chars[0]);
        });
    }

    private static void Write(ref Out text, string template, List<string> a, List<string> b, int shown)
    {
        var rest = template.AsSpan();
        while (rest.IndexOf('{') is var at and >= 0)
        {
            text.Append(rest[..at]);
            rest = rest[at..];
            if (rest.StartsWith("{a}", StringComparison.Ordinal)) Names(ref text, a, shown);
            else if (rest.StartsWith("{b}", StringComparison.Ordinal)) Names(ref text, b, shown);
            else if (rest.StartsWith("{n}", StringComparison.Ordinal)) text.Append(a.Count);
            else
            {
                text.Append("{");
                rest = rest[1..];
                continue;
            }

            rest = rest[3..];
        }

        text.Append(rest);
    }

    // "clonazepam and lorazepam"; with more names than shown, "clonazepam, lorazepam and 1 more".
    private static void Names(ref Out text, List<string> names, int shown)
    {
        if (names.Count <= shown)
        {
            for (var i = 0; i < names.Count; i++)
            {
                if (i > 0) text.Append(" and ");
                text.Append(names[i]);
            }
        }
        else if (names.Count == shown + 1 && shown == 2)
        {
            text.Append(names[0]);
            text.Append(", ");
            text.Append(names[1]);
            text.Append(" and ");
            text.Append(names[2]);
        }
        else
        {
            for (var i = 0; i < shown; i++)
            {
                if (i > 0) text.Append(", ");
                text.Append(names[i]);
            }

            text.Append(" and ");
            text.Append(names.Count - shown);
            text.Append(" more");
        }
    }

    // Counts what is appended, and copies it where there is room to write (none while measuring).
    private ref struct Out(Span<char> destination)
    {
        private readonly Span<char> _destination = destination;

        public int Length { get; private set; }

        public void Append(scoped ReadOnlySpan<char> text)
        {
            if (!_destination.IsEmpty) text.CopyTo(_destination[Length..]);
            Length += text.Length;
        }

        public void Append(int number)
        {
            Span<char> digits = stackalloc char[11];
            number.TryFormat(digits, out var written, default, CultureInfo.InvariantCulture);
            Append(digits[..written]);
        }
    }

    private static CardText Detail(Problem problem, Finding[] all, List<ResolvedDrug> found)
    {
        var head = problem.Head;

        // Each medication once, the new orders first, otherwise in the findings' order. A card names a few drugs: a
        // scan of those listed, not a set.
        var drugs = new List<ResolvedDrug>(found.Count);
        var newOrders = 0;
        foreach (var drug in found)
        {
            if (Listed(drugs, drug.Medication)) continue;
            if (drug.Medication.IsNew) drugs.Insert(newOrders++, drug);
            else drugs.Add(drug);
        }

        var factors = new List<PatientFactor>();
        var citable = 0;
        foreach (var finding in all)
        {
            citable += finding.Rule.Sources.Count;
            for (var i = 0; i < finding.Factors.Count; i++)
            {
                if (IndexOf(factors, finding.Factors[i].Text, static f => f.Text) < 0) factors.Add(finding.Factors[i]);
            }
        }

        // The knowledge's texts and the headings are fixed parts, escaped once for the process (CardText); the drugs,
        // doses, age and joined summaries are this call's. Sized for the parts below: 8 per drug at most, 2 per
        // source, 4 per joined finding, 2 per factor, 12 others.
        var detail = CardText.Build(12 + 8 * drugs.Count + 2 * factors.Count + 4 * problem.Joined.Count + 2 * citable);
        detail.Fixed("**Drugs:** ");
        for (var i = 0; i < drugs.Count; i++)
        {
            if (i > 0) detail.Fixed("; ");
            Describe(detail, drugs[i]);
        }

        detail.Fixed(".\n\n**Risk:** ").Fixed(head.Rule.Risk);
        if (factors.Count > 0)
        {
            detail.Fixed("\n\n**This patient:** ");
            if (head.Age is { } age && factors.Exists(f => f.AgeAtLeast is not null))
            {
                detail.Fixed("age ").Append(age.ToString(CultureInfo.InvariantCulture)).Fixed(". ");
            }

            for (var i = 0; i < factors.Count; i++)
            {
                if (i > 0) detail.Fixed(" ");
                detail.Fixed(factors[i].Text);
            }
        }

        detail.Fixed("\n\n**What to do:** ").Fixed(head.Rule.Management);
        if (problem.Joined.Count > 0)
        {
            detail.Fixed("\n\n**Also:**");
            for (var i = 1; i < all.Length; i++) detail.Fixed("\n- **").Append(Summary(all[i])).Fixed(".** ").Fixed(all[i].Rule.Management);
        }

        detail.Fixed("\n\n**Sources:** ");
        var sources = new List<RuleSource>();
        foreach (var finding in all)
        {
            var ruleSources = finding.Rule.Sources;
            for (var i = 0; i < ruleSources.Count; i++)
            {
                var source = ruleSources[i];
                if (!Shown(finding, source) || sources.Contains(source)) continue;
                if (sources.Count > 0) detail.Fixed("; ");
                detail.Fixed(source.Link);
                sources.Add(source);
            }
        }

        return detail.Fixed(".").ToText();
    }

    private static bool Listed(List<ResolvedDrug> drugs, Patients.MedicationUse medication)
    {
        for (var i = 0; i < drugs.Count; i++)
        {
            if (ReferenceEquals(drugs[i].Medication, medication)) return true;
        }

        return false;
    }

    // A source that only backs a patient factor (Beers for "age 65 and over") is cited only when that factor applies.
    // Sources compare as records (id, label, url), field by field, with nothing hashed.
    private static bool Shown(Finding finding, RuleSource source) => !Backs(finding.Rule.Factors, source) || Backs(finding.Factors, source);

    private static bool Backs(IReadOnlyList<PatientFactor> factors, RuleSource source)
    {
        for (var i = 0; i < factors.Count; i++)
        {
            if (factors[i].Source == source) return true;
        }

        return false;
    }

    private static void Describe(CardText.Builder text, ResolvedDrug drug)
    {
        var medication = drug.Medication;
        text.Append(Markdown(medication.Display));
        if (medication.Dose is { } dose) text.Fixed(", ").Append(Markdown(dose));
        if (drug.MgPerDay is { } mg) text.Fixed(" (").Append(mg.ToString("0.###", CultureInfo.InvariantCulture)).Fixed(" mg/day)");
        if (medication.Status is Patients.MedicationStatus.Stopped && medication.StoppedOn is { } on) text.Append($" (stopped {on:yyyy-MM-dd})");
        else text.Fixed(medication.Status switch
        {
            Patients.MedicationStatus.New => " (new order)",
            Patients.MedicationStatus.Stopped => " (recently stopped)",
            _ => " (current)",
        });
    }

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
