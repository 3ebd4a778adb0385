using CdsHooks.Engine.Evaluation;
using CdsHooks.Engine.Hooks;
using CdsHooks.Engine.Knowledge;
using CdsHooks.Engine.Patients;

namespace CdsHooks.Engine;

/// <summary>The clinical engine behind every hook: from a validated request to the cards. No ASP.NET here, so the
/// CLI and the benchmarks run exactly what the service runs.</summary>
public sealed class CdsEngine(KnowledgeBase knowledge, TimeProvider time)
{
    private readonly Evaluator _evaluator = new(knowledge);

    public KnowledgeBase Knowledge { get; } = knowledge;

    /// <exception cref="MissingPatientDataException">A rule concerns a new order but the patient's data is missing.</exception>
    public CdsResponse Evaluate(HookRequest request)
    {
        var newMedications = PatientContextBuilder.NewMedications(request);
        if (!_evaluator.AnyRuleConcerns(newMedications)) return CdsResponse.Empty;

        var today = DateOnly.FromDateTime(time.GetLocalNow().Date);
        var patient = PatientContextBuilder.Build(request, newMedications, today);
        return Respond(_evaluator.Evaluate(patient));
    }

    /// <summary>Cards for the problems found, filtered and capped by the site's settings.</summary>
    public CdsResponse Respond(IReadOnlyList<Problem> problems)
    {
        var settings = Knowledge.Settings;
        return new CdsResponse([.. problems
            .Select(CardBuilder.Build)
            .Where(c => c.Indicator >= settings.MinimumIndicator)
            .OrderByDescending(c => c.Indicator)
            .Take(settings.MaxCards)]);
    }
}
