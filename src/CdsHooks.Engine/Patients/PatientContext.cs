namespace CdsHooks.Engine.Patients;

public enum MedicationStatus
{
    /// <summary>Ordered in this hook call: rules fire only when a new order is involved.</summary>
    New,

    /// <summary>Taken now (an active or on-hold order, or another draft in the same session).</summary>
    Current,

    /// <summary>Stopped or completed; counts only for rules that look back a number of days.</summary>
    Stopped,
}

/// <summary>The amount per day in the dose's own unit ("1.5 mg", "3 tablet"); the engine converts it to mg.</summary>
public sealed record DailyDose(decimal Amount, string Unit);

/// <summary>A medication the patient takes, took, or is being prescribed, as the EHR described it.</summary>
/// <param name="Display">What the EHR calls it (CodeableConcept text or coding display): shown on cards, never logged.</param>
/// <param name="RxNormCodes">Every RxNorm code found for it (ingredient or product).</param>
/// <param name="Text">All the names the EHR gave it, for matching a medication that arrives without a known code.</param>
/// <param name="Dose">The dosage as written, if any.</param>
/// <param name="StoppedOn">For stopped medications, the last day it was taken when the EHR says so.</param>
/// <param name="Order">The MedicationRequest as read, for suggestions that cancel or change a new order.</param>
/// <param name="UnresolvedReference">A <c>medicationReference</c> that could not be resolved to a Medication: the
/// drug is unknown, which is not the same as known to be harmless.</param>
public sealed record MedicationUse(
    string Display,
    IReadOnlyList<string> RxNormCodes,
    string Text,
    string? Dose,
    DailyDose? DailyDose,
    MedicationStatus Status,
    DateOnly? StoppedOn,
    string? ResourceId,
    string? UnresolvedReference = null,
    Fhir.RequestRecord? Order = null)
{
    public bool IsNew => Status == MedicationStatus.New;
}

/// <summary>What the rules may weigh about the patient.</summary>
/// <param name="Age">Age in whole years; null when the birth date is unknown.</param>
/// <param name="ConditionCodes">Normalised "system|code" keys of the patient's active conditions.</param>
public sealed record PatientContext(int? Age, IReadOnlyList<MedicationUse> Medications, IReadOnlySet<string> ConditionCodes, DateOnly Today);

/// <summary>The request lacks patient data the service needs and cannot fetch (CDS Hooks 2.0: HTTP 412): prefetch
/// key to the reason it could not be had.</summary>
public sealed class MissingPatientDataException(IReadOnlyDictionary<string, string> reasons)
    : Exception("Required patient data is missing: " + string.Join(", ", reasons.Keys))
{
    public IReadOnlyDictionary<string, string> Reasons { get; } = reasons;

    public IReadOnlyList<string> PrefetchKeys => [.. Reasons.Keys];
}
