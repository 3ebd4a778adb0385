using CdsHooks.Engine.Fhir;

namespace CdsHooks.Engine.Hooks;

/// <summary>A validated CDS Hooks call with every FHIR resource read (<see cref="FhirRecord"/>).</summary>
public sealed record HookRequest(
    HookService Service,
    string HookInstance,
    string PatientId,
    string? EncounterId,
    string? FhirServer,
    FhirAuthorization? FhirAuthorization,
    IReadOnlyList<FhirRecord> NewOrders,
    IReadOnlyList<FhirRecord> OtherDraftOrders,
    IReadOnlyDictionary<string, Prefetched> Prefetch)
{
    public Prefetched PrefetchFor(string key) => Prefetch.TryGetValue(key, out var p) ? p : Prefetched.Absent;
}

/// <summary>The EHR's access token for its FHIR server. Used only against that server, never logged: the type
/// prints as redacted so that no log line or exception message can carry the token.</summary>
public sealed class FhirAuthorization(string accessToken, string tokenType)
{
    public string AccessToken { get; } = accessToken;
    public string TokenType { get; } = tokenType;

    public override string ToString() => "FhirAuthorization(redacted)";
}

public enum PrefetchState
{
    /// <summary>The key is not in the request: the client did not (or could not) prefetch it.</summary>
    Absent,

    /// <summary>The key is <c>null</c>: the client ran the query and there is nothing.</summary>
    NoData,

    /// <summary>A resource (a Bundle for searches).</summary>
    Data,

    /// <summary>An OperationOutcome: the client tried and failed (spec requirement 52).</summary>
    Failed,
}

public sealed record Prefetched(PrefetchState State, FhirRecord? Resource)
{
    public static Prefetched Absent { get; } = new(PrefetchState.Absent, null);
}

public sealed class InvalidHookRequestException(IReadOnlyList<Fhir.RequestIssue> issues)
    : Exception("The CDS Hooks request is invalid.")
{
    public IReadOnlyList<Fhir.RequestIssue> Issues { get; } = issues;
}
