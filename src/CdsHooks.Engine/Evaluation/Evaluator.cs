using CdsHooks.Engine.Hooks;
using CdsHooks.Engine.Knowledge;
using CdsHooks.Engine.Patients;

namespace CdsHooks.Engine.Evaluation;

/// <summary>A medication with the ingredients the knowledge recognises in it, the groups that hold them, and, when the
/// dosage says, its daily dose in mg.</summary>
public sealed record ResolvedDrug(MedicationUse Medication, IReadOnlyList<Ingredient> Ingredients, decimal? MgPerDay, IReadOnlyList<DrugGroup> Groups)
{
    /// <summary>Whether one of its ingredients is in one of these groups, which must be the groups of the knowledge that
    /// resolved the drug (another load's are other objects, and never match). Called for every drug and every candidate
    /// rule: references compared (a drug is in a few groups, a rule names a few), no code looked up, and an index loop,
    /// because foreach over an IReadOnlyList boxes its enumerator.</summary>
    public bool IsIn(IReadOnlyList<DrugGroup> groups)
    {
        for (var i = 0; i < groups.Count; i++)
        {
            for (var j = 0; j < Groups.Count; j++)
            {
                if (ReferenceEquals(groups[i], Groups[j])) return true;
            }
        }

        return false;
    }

    /// <summary>Adds to <paramref name="into"/> each ingredient of these drugs that is in one of these groups, once, in
    /// the order met, as the text <paramref name="as"/> gives (its code, to count a rule's ingredients; its name, for a
    /// card's summary). A static lambda for <paramref name="as"/> is made once for the process.</summary>
    internal static void IngredientsIn(IReadOnlyList<ResolvedDrug> drugs, IReadOnlyList<DrugGroup> groups, List<string> into,
        Func<Ingredient, string> @as)
    {
        for (var i = 0; i < drugs.Count; i++)
        {
            var ingredients = drugs[i].Ingredients;
            for (var j = 0; j < ingredients.Count; j++)
            {
                if (!Rule.InAny(groups, ingredients[j].Code)) continue;
                var text = @as(ingredients[j]);
                if (!into.Contains(text)) into.Add(text);
            }
        }
    }
}

/// <summary>A rule that applies to this patient: the drugs on each side, the patient factors found, the indicator.</summary>
public sealed record Finding(
    Rule Rule,
    IReadOnlyList<ResolvedDrug> SideA,
    IReadOnlyList<ResolvedDrug> SideB,
    IReadOnlyList<PatientFactor> Factors,
    int? Age,
    Indicator Indicator);

/// <summary>Why a rule fired or not, step by step; <see cref="Indicator"/> is null when it did not fire.</summary>
public sealed record RuleTrace(string RuleId, string Title, bool Enabled, Indicator? Indicator, IReadOnlyList<string> Steps);

/// <summary>One clinical problem, one card: the most severe finding, and the findings about the same drugs (or a
/// subset of them) that join it instead of piling up cards of their own.</summary>
public sealed record Problem(Finding Head, IReadOnlyList<Finding> Joined)
{
    /// <summary>The head, then the joined findings (a new list each time).</summary>
    public IReadOnlyList<Finding> All => Findings();

    /// <summary>The head, then the joined findings, as a new array: a loop over an array makes no enumerator, where
    /// foreach over an <see cref="IReadOnlyList{T}"/> makes one each time.</summary>
    internal Finding[] Findings()
    {
        var all = new Finding[1 + Joined.Count];
        all[0] = Head;
        for (var i = 0; i < Joined.Count; i++) all[i + 1] = Joined[i];
        return all;
    }
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
        // Loops rather than LINQ here and in Find: they run for every hook call, per drug and per candidate rule, and
        // their iterators, closures and boxed enumerators were a quarter of a call's allocations (docs/performance.md).
        var drugs = new List<ResolvedDrug>(patient.Medications.Count);
        for (var i = 0; i < patient.Medications.Count; i++) drugs.Add(Resolve(patient.Medications[i]));

        // The rules a new order's ingredients can trigger, each once, in the order first met.
        // A few are compared one by one; past that (a knowledge of thousands of pairs), through a set.
        var candidates = new List<Rule>();
        HashSet<Rule>? seen = null;
        foreach (var drug in drugs)
        {
            if (!drug.Medication.IsNew) continue;
            for (var i = 0; i < drug.Ingredients.Count; i++)
            {
                var rules = knowledge.RulesFor(drug.Ingredients[i].Code);
                for (var j = 0; j < rules.Count; j++)
                {
                    if (seen is null ? ContainsSame(candidates, rules[j]) : !seen.Add(rules[j])) continue;
                    candidates.Add(rules[j]);
                    if (seen is null && candidates.Count == 16) seen = new HashSet<Rule>(candidates, ReferenceEqualityComparer.Instance);
                }
            }
        }

        // The groups any of the patient's drugs is in, as bits on the stack (GroupFilter): a candidate rule with a side
        // none of them is in cannot fire, and is passed over before its drugs are matched one by one (most candidates).
        // A set of the groups made four arrays of each kind on every call.
        var groups = 0;
        foreach (var drug in drugs) groups += drug.Groups.Count;
        Span<ulong> present = stackalloc ulong[GroupFilter.Words(groups)];
        present.Clear();
        foreach (var drug in drugs) GroupFilter.Add(present, drug.Groups);

        var findings = new List<Finding>(); // few fire, of a large knowledge's many candidates
        foreach (var rule in candidates)
        {
            if (!Touches(rule.SideA, present) || (rule.Kind == RuleKind.Pair && !Touches(rule.SideB, present))) continue;
            if (Find(rule, patient, drugs) is { } finding) findings.Add(finding);
        }

        // Most severe first; rule ids are unique, so the order is total and the sort need not be stable.
        findings.Sort(static (x, y) =>
        {
            var order = ((int)y.Indicator).CompareTo((int)x.Indicator);
            if (order == 0) order = SeverityRank(x.Rule.Severity).CompareTo(SeverityRank(y.Rule.Severity));
            if (order == 0) order = (y.SideA.Count + y.SideB.Count).CompareTo(x.SideA.Count + x.SideB.Count);
            return order != 0 ? order : string.CompareOrdinal(x.Rule.Id, y.Rule.Id);
        });

        var problems = new List<(Finding Head, List<Finding> Joined)>();
        foreach (var finding in findings)
        {
            // Only into a card about the same drugs or more: a one-drug card must not swallow a pair (a boxed warning
            // would end up as a footnote under "clonazepam with liver disease").
            var same = -1;
            for (var i = 0; i < problems.Count && same < 0; i++)
            {
                if (AllAmong(finding, problems[i].Head)) same = i;
            }

            if (same >= 0) problems[same].Joined.Add(finding);
            else problems.Add((finding, []));
        }

        var result = new Problem[problems.Count];
        for (var i = 0; i < result.Length; i++) result[i] = new Problem(problems[i].Head, problems[i].Joined);
        return result;
    }

    private static bool Touches(IReadOnlyList<DrugGroup> groups, ReadOnlySpan<ulong> present)
    {
        for (var i = 0; i < groups.Count; i++)
        {
            if (GroupFilter.MayHold(present, groups[i])) return true;
        }

        return false;
    }

    /// <summary>Which groups a patient's drugs are in, as one bit set per group in a power of two of bits, about eight
    /// for each group: a bit not set says a group is not there; a bit set may be another group's, and the rule's drugs
    /// are then matched one by one (Find), which decides. So the filter passes over rules, never changes an answer.</summary>
    private static class GroupFilter
    {
        // 64 words (4,096 bits, 512 bytes of stack) at most: past that, more of the bits set are shared.
        public static int Words(int groups) => Math.Clamp((int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(groups, 1) * 8) / 64, 1, 64);

        public static void Add(Span<ulong> bits, IReadOnlyList<DrugGroup> groups)
        {
            for (var i = 0; i < groups.Count; i++)
            {
                var bit = Bit(groups[i], bits.Length);
                bits[bit >> 6] |= 1UL << (bit & 63);
            }
        }

        public static bool MayHold(ReadOnlySpan<ulong> bits, DrugGroup group)
        {
            var bit = Bit(group, bits.Length);
            return (bits[bit >> 6] & (1UL << (bit & 63))) != 0;
        }

        // Multiplying by an odd number is one-to-one on the low bits: groups made one after another by one load never
        // share one (two loads at once interleave their tags, which only lets more rules through to Find).
        private static int Bit(DrugGroup group, int words) => (int)((uint)group.Tag * 2654435761u & (uint)(words * 64 - 1));
    }

    private static bool ContainsSame<T>(List<T> list, T item) where T : class
    {
        foreach (var x in list)
        {
            if (ReferenceEquals(x, item)) return true;
        }

        return false;
    }

    // Every medication of the finding is one of the other finding's (the same instances).
    private static bool AllAmong(Finding finding, Finding other)
    {
        return Among(finding.SideA) && Among(finding.SideB);

        bool Among(IReadOnlyList<ResolvedDrug> drugs)
        {
            for (var i = 0; i < drugs.Count; i++)
            {
                if (!Has(other.SideA, drugs[i].Medication) && !Has(other.SideB, drugs[i].Medication)) return false;
            }

            return true;
        }

        static bool Has(IReadOnlyList<ResolvedDrug> drugs, MedicationUse medication)
        {
            for (var i = 0; i < drugs.Count; i++)
            {
                if (ReferenceEquals(drugs[i].Medication, medication)) return true;
            }

            return false;
        }
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
        // Most candidate rules do not fire: nothing is allocated for a pair rule until a pair is found.
        List<ResolvedDrug> sideA, sideB;
        switch (rule.Kind)
        {
            case RuleKind.Pair:
                // Each side's drugs by their place in the list, on the stack: only the drugs paired are kept.
                Span<int> a = drugs.Count <= MaxDrugsOnStack ? stackalloc int[drugs.Count] : new int[drugs.Count];
                Span<int> b = drugs.Count <= MaxDrugsOnStack ? stackalloc int[drugs.Count] : new int[drugs.Count];
                a = a[..Counting(drugs, rule, patient, rule.SideA, a)];
                b = a.Length == 0 && trace is null ? [] : b[..Counting(drugs, rule, patient, rule.SideB, b)];
                // A drug does not interact with itself: a renewal of lorazepam beside the old lorazepam order is not
                // "lorazepam + lorazepam".
                List<ResolvedDrug>? pairedA = null, pairedB = null;
                for (var i = 0; i < a.Length; i++)
                {
                    for (var j = 0; j < b.Length; j++)
                    {
                        var (x, y) = (drugs[a[i]], drugs[b[j]]);
                        if (ReferenceEquals(x, y) || !(x.Medication.IsNew || y.Medication.IsNew) || !Different(x, y, rule)) continue;
                        if (!ContainsSame(pairedA ??= [], x)) pairedA.Add(x);
                        if (!ContainsSame(pairedB ??= [], y)) pairedB.Add(y);
                    }
                }

                if (trace is not null)
                {
                    trace.Add($"side a ({Groups(rule.SideA)}): {Drugs(At(drugs, a))}");
                    trace.Add($"side b ({Groups(rule.SideB)}): {Drugs(At(drugs, b))}");
                }

                if (pairedA is null || pairedB is null)
                {
                    trace?.Add("not fired: no pair of different drugs with a new order on one side");
                    return null;
                }

                sideA = NewFirst(pairedA);
                sideB = NewFirst(pairedB);
                break;

            case RuleKind.Count:
                Span<int> counted = drugs.Count <= MaxDrugsOnStack ? stackalloc int[drugs.Count] : new int[drugs.Count];
                sideA = NewFirst(At(drugs, counted[..Counting(drugs, rule, patient, rule.SideA, counted)]));
                var distinct = DistinctIngredients(sideA, rule.SideA);
                trace?.Add($"{Groups(rule.SideA)}: {Drugs(sideA)}: {distinct} distinct ingredients, {rule.CountAtLeast} needed");
                if (distinct < rule.CountAtLeast || !sideA.Exists(d => d.Medication.IsNew))
                {
                    trace?.Add(distinct < rule.CountAtLeast ? "not fired: too few" : "not fired: none of them is a new order");
                    return null;
                }

                sideB = [];
                break;

            default:
                sideA = [];
                foreach (var d in drugs)
                {
                    if (d.Medication.IsNew && d.IsIn(rule.SideA)) sideA.Add(d);
                }

                trace?.Add($"new orders in {Groups(rule.SideA)}: {Drugs(sideA)}");
                if (sideA.Count == 0)
                {
                    trace?.Add("not fired: no new order of these drugs");
                    return null;
                }

                sideB = [];
                break;
        }

        for (var i = 0; i < rule.ExcludedConditions.Count; i++)
        {
            if (!HasCondition(patient, rule.ExcludedConditions[i])) continue;
            trace?.Add($"not fired: excluded by the condition {rule.ExcludedConditions[i].Name}");
            return null;
        }

        // Excluding drugs means drugs the patient already takes (not stopped): a new order never silences its own rule.
        foreach (var taken in drugs)
        {
            if (taken.Medication.IsNew || taken.Medication.Status == MedicationStatus.Stopped || !taken.IsIn(rule.ExcludedDrugs)) continue;
            trace?.Add($"not fired: excluded because the patient already takes {taken.Medication.Display}");
            return null;
        }

        var applying = new List<PatientFactor>(rule.Factors.Count); // at most all of them: one array, never grown
        for (var i = 0; i < rule.Factors.Count; i++)
        {
            var factor = rule.Factors[i];
            var applies = Applies(factor, patient, sideA, sideB, drugs);
            if (applies) applying.Add(factor);
            trace?.Add($"factor {factor.Id}: {(applies ? "applies" : "does not apply")}{(factor.AgeAtLeast is { } age ? $" (age {patient.Age?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "unknown"}, threshold {age})" : "")}");
        }

        // Required factors are the rule's own factor instances.
        for (var i = 0; i < rule.Requires.Count; i++)
        {
            if (ContainsSame(applying, rule.Requires[i])) continue;
            trace?.Add($"not fired: requires the factor {rule.Requires[i].Id}");
            return null;
        }

        var indicator = IndicatorOf(rule, applying);
        trace?.Add($"fired: {indicator.WireName()} (rule {rule.Indicator.WireName()}, " +
            $"{applying.Count(f => f.Escalates)} escalating factor(s){(rule.CriticalWhenEscalators is { } n ? $", critical from {n}" : "")})");
        return new Finding(rule, sideA, sideB, applying, patient.Age, indicator);
    }

    // The drugs matched by these groups that count for the rule: a stopped drug counts only for look-back rules,
    // within the window, or on an unknown day (it may have been yesterday).
    // Written into `found` as places in `drugs`, in their order; the number found is returned. A list for each side of
    // each candidate rule was most of the evaluation's allocations, and a pair rule keeps only the drugs it pairs.
    private static int Counting(List<ResolvedDrug> drugs, Rule rule, PatientContext patient, IReadOnlyList<DrugGroup> groups, Span<int> found)
    {
        var count = 0;
        for (var i = 0; i < drugs.Count; i++)
        {
            var d = drugs[i];
            var counts = d.Medication.Status != MedicationStatus.Stopped
                || (rule.StoppedWithinDays is { } days
                    && (d.Medication.StoppedOn is not { } stopped || patient.Today.DayNumber - stopped.DayNumber <= days));
            if (counts && d.IsIn(groups)) found[count++] = i;
        }

        return count;
    }

    // How many different ingredients of these groups the drugs hold, gathered in a list the thread lends (LentLists);
    // not LINQ, whose closure over the rule was made on every call for a count rule that a new order triggers.
    private static int DistinctIngredients(List<ResolvedDrug> drugs, IReadOnlyList<DrugGroup> groups)
    {
        var codes = LentLists<string>.Take();
        try
        {
            ResolvedDrug.IngredientsIn(drugs, groups, codes, static ingredient => ingredient.Code);
            return codes.Count;
        }
        finally
        {
            LentLists<string>.GiveBack(codes);
        }
    }

    // The places' drugs, as a list of their own.
    private static List<ResolvedDrug> At(List<ResolvedDrug> drugs, ReadOnlySpan<int> places)
    {
        var list = new List<ResolvedDrug>(places.Length);
        foreach (var i in places) list.Add(drugs[i]);
        return list;
    }

    // Two sides of this many drugs' places fit on the stack (2 KB); a longer list takes arrays.
    private const int MaxDrugsOnStack = 256;

    // New orders first, the others in the order given (as a stable sort would), in the list itself: each new order
    // moves up behind the new orders before it.
    private static List<ResolvedDrug> NewFirst(List<ResolvedDrug> drugs)
    {
        var newOrders = 0;
        for (var i = 0; i < drugs.Count; i++)
        {
            var drug = drugs[i];
            if (!drug.Medication.IsNew) continue;
            for (var j = i; j > newOrders; j--) drugs[j] = drugs[j - 1];
            drugs[newOrders++] = drug;
        }

        return drugs;
    }

    private static string Groups(IReadOnlyList<DrugGroup> groups) => string.Join(", ", groups.Select(g => g.Name));

    private static string Drugs(IEnumerable<ResolvedDrug> drugs)
    {
        var described = drugs.Select(d => $"{d.Medication.Display} ({d.Medication.Status.ToString().ToLowerInvariant()}" +
            (d.MgPerDay is { } mg ? $", {mg.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)} mg/day)" : ")")).ToList();
        return described.Count == 0 ? "none" : string.Join("; ", described);
    }

    // The ingredients that put x on side a and y on side b are not all one and the same.
    private static bool Different(ResolvedDrug x, ResolvedDrug y, Rule rule)
    {
        string? first = null;
        return Differs(x.Ingredients, rule.SideA) || Differs(y.Ingredients, rule.SideB);

        bool Differs(IReadOnlyList<Ingredient> ingredients, IReadOnlyList<DrugGroup> groups)
        {
            for (var i = 0; i < ingredients.Count; i++)
            {
                if (!Rule.InAny(groups, ingredients[i].Code)) continue;
                first ??= ingredients[i].Code;
                if (!string.Equals(first, ingredients[i].Code, StringComparison.Ordinal)) return true;
            }

            return false;
        }
    }

    private static Indicator IndicatorOf(Rule rule, List<PatientFactor> applying)
    {
        var indicator = rule.Indicator;
        var escalators = 0;
        foreach (var factor in applying)
        {
            if (factor.Indicator is { } raised && raised > indicator) indicator = raised;
            if (factor.Escalates) escalators++;
        }

        if (rule.CriticalWhenEscalators is { } needed && escalators >= needed) return Indicator.Critical;
        if (escalators == 0)
        {
            foreach (var factor in applying)
            {
                if (factor.LowerTo is { } cap && cap < indicator) indicator = cap;
            }
        }

        return indicator;
    }

    // Loops, not LINQ: a lambda here captured the parameters, and its closure was made on every call, for every
    // factor of every rule that fired, whether a lambda ran or not.
    private static bool Applies(PatientFactor factor, PatientContext patient, List<ResolvedDrug> sideA, List<ResolvedDrug> sideB,
        List<ResolvedDrug> drugs)
    {
        if (factor.AgeAtLeast is { } age && !(patient.Age >= age)) return false;
        if (factor.Conditions.Count > 0 && !AnyCondition(patient, factor.Conditions)) return false;
        // Another drug the patient takes (not stopped): one the rule's sides did not match.
        if (factor.Drugs.Count > 0 && !AnotherDrugIn(factor.Drugs, sideA, sideB, drugs)) return false;
        if (factor.DailyDoseAbove is { } above)
        {
            var found = false;
            var side = above.Side == PairSide.A ? sideA : sideB;
            for (var i = 0; i < side.Count && !found; i++) found = Limited(side[i], above) && side[i].MgPerDay > above.Mg;
            if (!found) return false;
        }

        if (factor.DailyDoseAtMost is { } atMost)
        {
            var dosed = 0;
            var side = atMost.Side == PairSide.A ? sideA : sideB;
            for (var i = 0; i < side.Count; i++)
            {
                if (!Limited(side[i], atMost)) continue;
                if (side[i].MgPerDay is not { } mg || mg > atMost.Mg) return false;
                dosed++;
            }

            if (dosed == 0) return false;
        }

        return true;

        static bool Limited(ResolvedDrug drug, DoseLimit limit) => limit.Of.Count == 0 || drug.IsIn(limit.Of);
    }

    private static bool AnyCondition(PatientContext patient, IReadOnlyList<ConditionGroup> groups)
    {
        for (var i = 0; i < groups.Count; i++)
        {
            if (HasCondition(patient, groups[i])) return true;
        }

        return false;
    }

    private static bool AnotherDrugIn(IReadOnlyList<DrugGroup> groups, List<ResolvedDrug> sideA, List<ResolvedDrug> sideB, List<ResolvedDrug> drugs)
    {
        foreach (var d in drugs)
        {
            if (d.Medication.Status != MedicationStatus.Stopped && !ContainsSame(sideA, d) && !ContainsSame(sideB, d) && d.IsIn(groups)) return true;
        }

        return false;
    }

    private static bool HasCondition(PatientContext patient, ConditionGroup group) => group.Codes.Overlaps(patient.ConditionCodes);

    /// <summary>Recognises a medication by its RxNorm codes, or, when none is known, by the generic and brand names
    /// in its text ("Klonopin 0.5 mg tablet").</summary>
    public ResolvedDrug Resolve(MedicationUse medication)
    {
        var ingredients = IngredientsOf(medication.RxNormCodes);
        if (ingredients.Count == 0) ingredients = FromText(medication.Text);
        return new ResolvedDrug(medication, ingredients, ingredients.Count == 1 ? MgPerDay(medication) : null, GroupsOf(ingredients));
    }

    // The groups of the ingredients, each once. For one ingredient (the usual case) that is the knowledge's own list.
    private IReadOnlyList<DrugGroup> GroupsOf(IReadOnlyList<Ingredient> ingredients)
    {
        if (ingredients.Count == 0) return [];
        if (ingredients.Count == 1) return knowledge.GroupsOf(ingredients[0].Code);
        var found = new List<DrugGroup>();
        for (var i = 0; i < ingredients.Count; i++)
        {
            var groups = knowledge.GroupsOf(ingredients[i].Code);
            for (var j = 0; j < groups.Count; j++)
            {
                if (!ContainsSame(found, groups[j])) found.Add(groups[j]);
            }
        }

        return found;
    }

    // The ingredients of the codes, each once. For one code (the usual case) that is the knowledge's own list, which
    // holds each ingredient once already.
    private IReadOnlyList<Ingredient> IngredientsOf(IReadOnlyList<string> codes)
    {
        if (codes.Count == 1) return knowledge.IngredientsOf(codes[0]);
        var found = new List<Ingredient>();
        for (var i = 0; i < codes.Count; i++)
        {
            var ingredients = knowledge.IngredientsOf(codes[i]);
            for (var j = 0; j < ingredients.Count; j++)
            {
                var seen = false;
                for (var k = 0; k < found.Count && !seen; k++) seen = string.Equals(found[k].Code, ingredients[j].Code, StringComparison.Ordinal);
                if (!seen) found.Add(ingredients[j]);
            }
        }

        return found;
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
                // The first code with a known strength (a loop: LINQ over a method group made a delegate per call).
                decimal? strength = null;
                for (var i = 0; i < medication.RxNormCodes.Count && strength is null; i++) strength = knowledge.StrengthMg(medication.RxNormCodes[i]);
                return strength > 0 ? dose.Amount * strength : null;
            default: return null;
        }
    }
}
