using CdsHooks.Engine.Evaluation;
using CdsHooks.Engine.Fhir;
using CdsHooks.Engine.Hooks;
using CdsHooks.Engine.Knowledge;
using CdsHooks.Engine.Patients;

namespace CdsHooks.Engine;

/// <summary>The clinical engine behind every hook: from a validated request to the cards. No ASP.NET here, so the
/// CLI and the benchmarks run exactly what the service runs.</summary>
/// <param name="fetcher">Completes missing prefetch from the EHR's FHIR server; without it, only prefetch is used.</param>
public sealed class CdsEngine(KnowledgeBase knowledge, TimeProvider time, PatientDataFetcher? fetcher = null)
{
    private readonly Evaluator _evaluator = new(knowledge);

    public KnowledgeBase Knowledge { get; } = knowledge;

    /// <exception cref="MissingPatientDataException">A rule concerns a new order but the patient's data is missing.</exception>
    public async Task<HookResult> EvaluateAsync(HookRequest request, CancellationToken cancellationToken = default)
    {
        // When no new order contains a drug any rule names, nothing can fire: no patient data is needed. An order
        // whose drug is a reference not yet resolved is unknown, not harmless, so it needs the data too.
        var local = PatientData.FromRequest(request);
        var ordered = PatientContextBuilder.NewMedications(request, local.Medications);
        if (!_evaluator.AnyRuleConcerns(ordered) && !ordered.Any(m => m.UnresolvedReference is not null)) return HookResult.Empty;

        var (data, newMedications) = await CompleteAsync(request, local, ordered, cancellationToken);
        var today = DateOnly.FromDateTime(time.GetLocalNow().Date);
        var patient = PatientContextBuilder.Build(request, data, newMedications, today);
        var result = Respond(_evaluator.Evaluate(patient));
        return NotChecked(patient, data) is { } card ? new HookResult([.. result.Cards, new IssuedCard(card, IssuedCard.DataGapRule, 1, "")]) : result;
    }

    /// <summary>The cards and, for every rule, why it fired or not (the CLI's <c>explain</c>, the playground).</summary>
    /// <exception cref="MissingPatientDataException">A rule concerns a new order but the patient's data is missing.</exception>
    public async Task<(HookResult Result, IReadOnlyList<RuleTrace> Trace)> ExplainAsync(HookRequest request, CancellationToken cancellationToken = default)
    {
        var today = DateOnly.FromDateTime(time.GetLocalNow().Date);
        var local = PatientData.FromRequest(request);
        var ordered = PatientContextBuilder.NewMedications(request, local.Medications);
        if (!_evaluator.AnyRuleConcerns(ordered) && !ordered.Any(m => m.UnresolvedReference is not null))
        {
            // Nothing can fire: the trace says so rule by rule, without asking for patient data.
            return (HookResult.Empty, _evaluator.Explain(new PatientContext(null, ordered, new HashSet<string>(), today)));
        }

        var (data, newMedications) = await CompleteAsync(request, local, ordered, cancellationToken);
        var patient = PatientContextBuilder.Build(request, data, newMedications, today);
        return (Respond(_evaluator.Evaluate(patient)), _evaluator.Explain(patient));
    }

    // The request's data completed from the FHIR server where prefetch lacks it, and the new orders described with it.
    // Most calls have nothing to complete and get the same data back: their new orders are described already.
    // Without a task when nothing is fetched (a task for each of the two layers was made on every call).
    private ValueTask<(PatientData Data, IReadOnlyList<MedicationUse> NewMedications)> CompleteAsync(HookRequest request, PatientData local,
        IReadOnlyList<MedicationUse> ordered, CancellationToken cancellationToken)
    {
        var pending = fetcher is null ? new ValueTask<PatientData>(local) : fetcher.CompleteAsync(request, local, cancellationToken);
        return pending.IsCompletedSuccessfully ? new(With(request, local, ordered, pending.Result)) : Fetched(request, local, ordered, pending);

        // Static, so that no closure is made for the call that fetches nothing.
        static async ValueTask<(PatientData, IReadOnlyList<MedicationUse>)> Fetched(HookRequest request, PatientData local,
            IReadOnlyList<MedicationUse> ordered, ValueTask<PatientData> fetching) => With(request, local, ordered, await fetching);

        static (PatientData, IReadOnlyList<MedicationUse>) With(HookRequest request, PatientData local, IReadOnlyList<MedicationUse> ordered, PatientData data) =>
            (data, ReferenceEquals(data, local) ? ordered : PatientContextBuilder.NewMedications(request, data.Medications));
    }

    /// <summary>Cards for the problems found, filtered and capped by the site's settings.</summary>
    public HookResult Respond(IReadOnlyList<Problem> problems)
    {
        var settings = Knowledge.Settings;
        // Most severe first, in the problems' order within an indicator (a stable sort, as OrderByDescending was), then
        // cut to the cap: each card inserted behind those at least as severe, without LINQ's iterators and buffers on
        // every call.
        var cards = new List<IssuedCard>(Math.Min(problems.Count, settings.MaxCards));
        for (var i = 0; i < problems.Count; i++)
        {
            var card = IssuedCard.From(problems[i]);
            if (card.Indicator < settings.MinimumIndicator) continue;
            var at = cards.Count;
            while (at > 0 && cards[at - 1].Indicator < card.Indicator) at--;
            cards.Insert(at, card);
        }

        if (cards.Count > settings.MaxCards) cards.RemoveRange(settings.MaxCards, cards.Count - settings.MaxCards);
        return new HookResult(cards);
    }

    // Optional data that could not be had (conditions, stopped medications, a referenced Medication) is said on an
    // info card, but only when a rule that the new orders trigger would have used it: silence must mean "checked".
    private Card? NotChecked(PatientContext patient, PatientData data)
    {
        var unknown = patient.Medications.Count(m => m.IsNew && m.UnresolvedReference is not null);
        if (data.Problems.Count == 0 && unknown == 0) return null; // everything was had: nothing to say

        var rules = patient.Medications.Where(m => m.IsNew)
            .SelectMany(m => _evaluator.Resolve(m).Ingredients)
            .SelectMany(i => Knowledge.RulesFor(i.Code))
            .Distinct<Rule>(ReferenceEqualityComparer.Instance)
            .ToList();
        var gaps = new List<string>();
        foreach (var (key, reason) in data.Problems)
        {
            var relevant = key switch
            {
                PrefetchKeys.Conditions => rules.Exists(r => r.ExcludedConditions.Count > 0 || r.Factors.Any(f => f.Conditions.Count > 0)),
                PrefetchKeys.StoppedMedications => rules.Exists(r => r.StoppedWithinDays is not null),
                // Medications are required: here only their further pages are missing (the first page was used).
                PrefetchKeys.MedicationStatements or PrefetchKeys.Medications => rules.Count > 0,
                _ => key.StartsWith("Medication/", StringComparison.Ordinal),
            };
            if (relevant) gaps.Add(key.StartsWith("Medication/", StringComparison.Ordinal) ? $"a referenced medication ({reason})" : $"{key} ({reason})");
        }

        if (unknown > 0) gaps.Add($"{unknown} ordered medication(s) that could not be identified");
        if (gaps.Count == 0) return null;

        var summary = "Not fully checked: " + string.Join("; ", gaps);
        return new Card(
            Uuids.TimeOrdered(DateTimeOffset.UtcNow).ToString(), // time-ordered, as CardBuilder's cards: the audit trail's key
            summary.Length <= KnowledgeLoader.MaxSummaryLength ? summary : summary[..(KnowledgeLoader.MaxSummaryLength - 1)] + "…",
            Indicator.Info,
            new Source("Medication safety service"),
            CardText.Of("The EHR did not provide, and its FHIR server could not return, some of the patient's data: " +
                string.Join("; ", gaps) + ". Interactions that depend on it were not checked; the other cards stand."));
    }
}
