using System.Diagnostics.Metrics;

namespace CdsHooks.Engine.Telemetry;

/// <summary>The service's own measurements (OpenTelemetry meter <c>CdsHooks</c>): what an operator watches. Tags are
/// hooks, services, rules, indicators, prefetch keys and reasons: never patient data.</summary>
public static class CdsMetrics
{
    public const string MeterName = "CdsHooks";

    private static readonly Meter Meter = new(MeterName);

    public static Histogram<double> HookDuration { get; } =
        Meter.CreateHistogram<double>("cdshooks.hook.duration", "ms", "Time to answer a hook call, by hook and service.");

    public static Counter<long> Cards { get; } =
        Meter.CreateCounter<long>("cdshooks.cards", "{card}", "Cards shown, by rule and indicator.");

    public static Counter<long> CardsHeldBack { get; } =
        Meter.CreateCounter<long>("cdshooks.cards.held_back", "{card}", "Cards held back by the alert-fatigue controls, by rule.");

    public static Histogram<double> FhirFetchDuration { get; } =
        Meter.CreateHistogram<double>("cdshooks.fhir.fetch.duration", "ms", "Time of one FHIR server query, by prefetch key.");

    public static Counter<long> FhirFetchFailures { get; } =
        Meter.CreateCounter<long>("cdshooks.fhir.fetch.failures", "{query}", "FHIR server queries that failed, by prefetch key and reason.");

    public static Counter<long> PreconditionFailed { get; } =
        Meter.CreateCounter<long>("cdshooks.precondition_failed", "{call}", "Hook calls answered 412: patient data missing.");

    public static Counter<long> AuthenticationFailures { get; } =
        Meter.CreateCounter<long>("cdshooks.auth.failures", "{call}", "Calls refused for their token, by reason.");
}
