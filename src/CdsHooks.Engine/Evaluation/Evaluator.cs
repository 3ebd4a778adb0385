using CdsHooks.Engine.Hooks;
using CdsHooks.Engine.Knowledge;
using CdsHooks.Engine.Patients;

namespace CdsHooks.Engine.Evaluation;

/// <summary>A medication with the ingredients the knowledge recognises in it and, when the dosage says, its daily
/// dose in mg.</summary>
public sealed record ResolvedDrug(MedicationUse Medication, IReadOnlyList<Ingredient> Ingredients, decimal? MgPerDay)
{
    // A loop, not Any with a lambda: called for every drug and every candidate rule, it should not allocate.
    public bool IsIn(IReadOnlyList<DrugGroup> groups)
    {
        foreach (var ingredient in Ingredients)
        {
            if (Rule.InAny(groups, ingredient.Code)) return true;
        }

        return false;
    }
}

/// <summary>A rule that applies to this patient: the drugs on each side, the patient factors found, the indicator.</summary>
public sealed record Finding(
    Rule Rule,
    IReadOnlyList<ResolvedDrug> SideA,
    IReadOnlyList<ResolvedDrug> SideB,
    IReadOnlyList<PatientFactor> Factors,
    int? Age,
    Indicator Indicator)
{
    public IEnumerable<MedicationUse> Medications => SideA.Concat(SideB).Select(d => d.Medication);
}

/// <summary>Why a rule fired or not, step by step; <see cref="Indicator"/> is null when it did not fire.</summary>
public sealed record RuleTrace(string RuleId, string Title, bool Enabled, Indicator? Indicator, IReadOnlyList<string> Steps);

/// <summary>One clinical problem, one card: the most severe finding, and the findings about the same drugs (or a
/// subset of them) that join it instead of piling up cards of their own.</summary>
public sealed record Problem(Finding Head, IReadOnlyList<Finding> Joined)
{
    public IEnumerable<Finding> All => Joined.Prepend(Head);
}

public sealed class Evaluator(KnowledgeBase knowledge)
{
    /// <summary>True when some new order contains an ingredient that a rule names. When none does, no rule can
    /// fire, and the service can answer without any patient data.</summary>
    public bool AnyRuleConcerns(IEnumerable<MedicationUse> newMedications) =>
        newMedications.Any(m => Resolve(m).Ingredients.Any(i => knowledge.RulesFor(i.Code).Count > 0));

    /// <summary>The problems to show, most severe first. A rule fires only when one of its drugs is a new order:
    /// two long-standing drugs do not alert again whenever something unrelated is ordered.</summary>
    public IReadOnlyList<Problem> Evaluate(PatientContext patient)
    {
        var drugs = patient.Medications.Select(m => Resolve(m)).ToList();
        var candidates = drugs.Where(d => d.Medication.IsNew)
            .SelectMany(d => d.Ingredients)
            .SelectMany(i => knowledge.RulesFor(i.Code))
            .Distinct<Rule>(ReferenceEqualityComparer.Instance);

        var findings = candidates
            .Select(rule => Find(rule, patient, drugs))
            .OfType<Finding>()
            .OrderByDescending(f => f.Indicator)
            .ThenBy(f => SeverityRank(f.Rule.Severity))
            .ThenByDescending(f => f.Medications.Count())
            .ThenBy(f => f.Rule.Id, StringComparer.Ordinal);

        var problems = new List<(Finding Head, List<Finding> Joined)>();
        foreach (var finding in findings)
        {
            var medications = finding.Medications.ToHashSet<MedicationUse>(ReferenceEqualityComparer.Instance);
            // Only into a card about the same drugs or more: a one-drug card must not swallow a pair (a boxed warning
            // would end up as a footnote under "clonazepam with liver disease").
            var same = problems.FindIndex(p => medications.IsSubsetOf(p.Head.Medications));
            if (same >= 0) problems[same].Joined.Add(finding);
            else problems.Add((finding, []));
        }

        return [.. problems.Select(p => new Problem(p.Head, p.Joined))];
    }

    private static int SeverityRank(string severity) => severity switch
    {
        "contraindicated" => 0,
        "major" => 1,
        "moderate" => 2,
        _ => 3,
    };

    /// <summary>For every rule, whether it fired for this patient and why or why not: the drugs matched on each side,
    /// the patient factors found, what decided the indicator. For the CLI's <c>explain</c> and the playground.</summary>
    public IReadOnlyList<RuleTrace> Explain(PatientContext patient)
    {
        var drugs = patient.Medications.Select(Resolve).ToList();
        var traces = new List<RuleTrace>();
        foreach (var rule in knowledge.Rules)
        {
            var steps = new List<string>();
            if (!rule.Enabled)
            {
                traces.Add(new RuleTrace(rule.Id, rule.Title, false, null, ["disabled (shipped disabled, or by site settings)"]));
                continue;
            }

            var finding = Find(rule, patient, drugs, steps);
            traces.Add(new RuleTrace(rule.Id, rule.Title, true, finding?.Indicator, steps));
        }

        return [.. traces.OrderByDescending(t => t.Indicator.HasValue).ThenBy(t => t.RuleId, StringComparer.Ordinal)];
    }

    private static Finding? Find(Rule rule, PatientContext patient, List<ResolvedDrug> drugs, List<string>? trace = null)
    {
        // A stopped drug counts only for look-back rules: within the window, or on an unknown day (it may have been
        // yesterday).
        bool Counts(ResolvedDrug d) => d.Medication.Status != MedicationStatus.Stopped
            || (rule.StoppedWithinDays is { } days
                && (d.Medication.StoppedOn is not { } stopped || patient.Today.DayNumber - stopped.DayNumber <= days));

        List<ResolvedDrug> sideA, sideB = [];
        switch (rule.Kind)
        {
            case RuleKind.Pair:
                var a = drugs.Where(d => Counts(d) && d.IsIn(rule.SideA)).ToList();
                var b = a.Count == 0 && trace is null ? [] : drugs.Where(d => Counts(d) && d.IsIn(rule.SideB)).ToList();
                // A drug does not interact with itself: a renewal of lorazepam beside the old lorazepam order is not
                // "lorazepam + lorazepam".
                var pairs = (from x in a from y in b
                             where !ReferenceEquals(x, y) && (x.Medication.IsNew || y.Medication.IsNew) && Different(x, y, rule)
                             select (x, y)).ToList();
                trace?.Add($"side a ({Groups(rule.SideA)}): {Drugs(a)}");
                trace?.Add($"side b ({Groups(rule.SideB)}): {Drugs(b)}");
                if (pairs.Count == 0)
                {
                    trace?.Add("not fired: no pair of different drugs with a new order on one side");
                    return null;
                }

                sideA = [.. pairs.Select(p => p.x).Distinct<ResolvedDrug>(ReferenceEqualityComparer.Instance).OrderByDescending(d => d.Medication.IsNew)];
                sideB = [.. pairs.Select(p => p.y).Distinct<ResolvedDrug>(ReferenceEqualityComparer.Instance).OrderByDescending(d => d.Medication.IsNew)];
                break;

            case RuleKind.Count:
                sideA = [.. drugs.Where(d => Counts(d) && d.IsIn(rule.SideA)).OrderByDescending(d => d.Medication.IsNew)];
                var distinct = sideA.SelectMany(d => d.Ingredients).Where(i => Rule.InAny(rule.SideA, i.Code)).Select(i => i.Code).Distinct().Count();
                trace?.Add($"{Groups(rule.SideA)}: {Drugs(sideA)}: {distinct} distinct ingredients, {rule.CountAtLeast} needed");
                if (distinct < rule.CountAtLeast || !sideA.Exists(d => d.Medication.IsNew))
                {
                    trace?.Add(distinct < rule.CountAtLeast ? "not fired: too few" : "not fired: none of them is a new order");
                    return null;
                }

                break;

            default:
                sideA = [.. drugs.Where(d => d.Medication.IsNew && d.IsIn(rule.SideA))];
                trace?.Add($"new orders in {Groups(rule.SideA)}: {Drugs(sideA)}");
                if (sideA.Count == 0)
                {
                    trace?.Add("not fired: no new order of these drugs");
                    return null;
                }

                break;
        }

        var current = drugs.Where(d => d.Medication.Status != MedicationStatus.Stopped).ToList();
        // Excluding drugs means drugs the patient already takes: a new order never silences its own rule.
        if (rule.ExcludedConditions.FirstOrDefault(g => HasCondition(patient, g)) is { } condition)
        {
            trace?.Add($"not fired: excluded by the condition {condition.Name}");
            return null;
        }

        if (current.FirstOrDefault(d => !d.Medication.IsNew && d.IsIn(rule.ExcludedDrugs)) is { } taken)
        {
            trace?.Add($"not fired: excluded because the patient already takes {taken.Medication.Display}");
            return null;
        }

        var involved = sideA.Concat(sideB).ToHashSet<ResolvedDrug>(ReferenceEqualityComparer.Instance);
        var applying = new List<PatientFactor>();
        foreach (var factor in rule.Factors)
        {
            var applies = Applies(factor, patient, sideA, sideB, current, involved);
            if (applies) applying.Add(factor);
            trace?.Add($"factor {factor.Id}: {(applies ? "applies" : "does not apply")}{(factor.AgeAtLeast is { } age ? $" (age {patient.Age?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "unknown"}, threshold {age})" : "")}");
        }

        if (rule.Requires.FirstOrDefault(r => !applying.Contains(r)) is { } missing)
        {
            trace?.Add($"not fired: requires the factor {missing.Id}");
            return null;
        }

        var indicator = IndicatorOf(rule, applying);
        trace?.Add($"fired: {indicator.ToString().ToLowerInvariant()} (rule {rule.Indicator.ToString().ToLowerInvariant()}, " +
            $"{applying.Count(f => f.Escalates)} escalating factor(s){(rule.CriticalWhenEscalators is { } n ? $", critical from {n}" : "")})");
        return new Finding(rule, sideA, sideB, applying, patient.Age, indicator);
    }

    private static string Groups(IReadOnlyList<DrugGroup> groups) => string.Join(", ", groups.Select(g => g.Name));

    private static string Drugs(IEnumerable<ResolvedDrug> drugs)
    {
        var described = drugs.Select(d => $"{d.Medication.Display} ({d.Medication.Status.ToString().ToLowerInvariant()}" +
            (d.MgPerDay is { } mg ? $", {mg.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)} mg/day)" : ")")).ToList();
        return described.Count == 0 ? "none" : string.Join("; ", described);
    }

    private static bool Different(ResolvedDrug x, ResolvedDrug y, Rule rule)
    {
        var onA = x.Ingredients.Where(i => Rule.InAny(rule.SideA, i.Code)).Select(i => i.Code);
        var onB = y.Ingredients.Where(i => Rule.InAny(rule.SideB, i.Code)).Select(i => i.Code);
        return onA.Concat(onB).Distinct().Count() > 1;
    }

    private static Indicator IndicatorOf(Rule rule, List<PatientFactor> applying)
    {
        var indicator = applying.Select(f => f.Indicator).OfType<Indicator>().Append(rule.Indicator).Max();
        var escalators = applying.Count(f => f.Escalates);
        if (rule.CriticalWhenEscalators is { } needed && escalators >= needed) return Indicator.Critical;
        if (escalators == 0)
        {
            foreach (var cap in applying.Select(f => f.LowerTo).OfType<Indicator>())
            {
                if (cap < indicator) indicator = cap;
            }
        }

        return indicator;
    }

    private static bool Applies(PatientFactor factor, PatientContext patient, List<ResolvedDrug> sideA, List<ResolvedDrug> sideB,
        List<ResolvedDrug> current, HashSet<ResolvedDrug> involved)
    {
        if (factor.AgeAtLeast is { } age && !(patient.Age >= age)) return false;
        if (factor.Conditions.Count > 0 && !factor.Conditions.Any(g => HasCondition(patient, g))) return false;
        if (factor.Drugs.Count > 0 && !current.Exists(d => !involved.Contains(d) && d.IsIn(factor.Drugs))) return false;
        if (factor.DailyDoseAbove is { } above && !Dosed(above).Exists(d => d.MgPerDay > above.Mg)) return false;
        if (factor.DailyDoseAtMost is { } atMost)
        {
            var doses = Dosed(atMost).Select(d => d.MgPerDay).ToList();
            if (doses.Count == 0 || doses.Exists(mg => mg is null || mg > atMost.Mg)) return false;
        }

        return true;

        List<ResolvedDrug> Dosed(DoseLimit limit) =>
            [.. (limit.Side == PairSide.A ? sideA : sideB).Where(d => limit.Of.Count == 0 || d.IsIn(limit.Of))];
    }

    private static bool HasCondition(PatientContext patient, ConditionGroup group) => group.Codes.Overlaps(patient.ConditionCodes);

    /// <summary>Recognises a medication by its RxNorm codes, or, when none is known, by the generic and brand names
    /// in its text ("Klonopin 0.5 mg tablet").</summary>
    public ResolvedDrug Resolve(MedicationUse medication)
    {
        var ingredients = medication.RxNormCodes.SelectMany(knowledge.IngredientsOf).DistinctBy(i => i.Code).ToList();
        if (ingredients.Count == 0) ingredients = FromText(medication.Text);
        return new ResolvedDrug(medication, ingredients, ingredients.Count == 1 ? MgPerDay(medication) : null);
    }

    private List<Ingredient> FromText(string text)
    {
        var words = KnowledgeBase.NameKey(text).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var found = new List<Ingredient>();
        for (var start = 0; start < words.Length; start++)
        {
            for (var length = Math.Min(knowledge.MaxNameWords, words.Length - start); length >= 1; length--)
            {
                var named = knowledge.IngredientsNamed(string.Join(' ', words, start, length));
                if (named.Count == 0) continue;
                found.AddRange(named);
                start += length - 1;
                break;
            }
        }

        return [.. found.DistinctBy(i => i.Code)];
    }

    private decimal? MgPerDay(MedicationUse medication)
    {
        try
        {
            return ToMg(medication);
        }
        catch (OverflowException)
        {
            return null;
        }
    }

    private decimal? ToMg(MedicationUse medication)
    {
        if (medication.DailyDose is not { } dose) return null;
        switch (dose.Unit.ToLowerInvariant())
        {
            case "mg": return dose.Amount;
            case "g": return dose.Amount * 1000;
            case "ug" or "mcg" or "µg": return dose.Amount / 1000;
            case "tab" or "tablet" or "tablets" or "{tbl}" or "{tablet}" or "cap" or "capsule" or "capsules" or "{cap}" or "{capsule}":
                var strength = medication.RxNormCodes.Select(knowledge.StrengthMg).OfType<decimal>().FirstOrDefault();
                return strength > 0 ? dose.Amount * strength : null;
            default: return null;
        }
    }
}
