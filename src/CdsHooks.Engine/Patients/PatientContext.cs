namespace CdsHooks.Engine.Patients;

/// <summary>A medication the patient takes or is being prescribed, as the EHR described it.</summary>
/// <param name="Display">What the EHR calls it (CodeableConcept text or coding display): shown on cards, never logged.</param>
/// <param name="RxNormCodes">Every RxNorm code found for it (ingredient or product).</param>
/// <param name="Dose">The dosage as written, if any.</param>
/// <param name="IsNew">True when the order is new in this hook call; rules fire only when a new order is involved.</param>
public sealed record MedicationUse(string Display, IReadOnlyList<string> RxNormCodes, string? Dose, bool IsNew, string? ResourceId);

/// <summary>What the rules may weigh about the patient.</summary>
/// <param name="Age">Age in whole years; null when the birth date is unknown.</param>
public sealed record PatientContext(int? Age, IReadOnlyList<MedicationUse> Medications);

/// <summary>The request lacks patient data the service needs and cannot fetch (CDS Hooks 2.0: HTTP 412).</summary>
public sealed class MissingPatientDataException(IReadOnlyList<string> prefetchKeys)
    : Exception("Required patient data is missing: " + string.Join(", ", prefetchKeys))
{
    public IReadOnlyList<string> PrefetchKeys { get; } = prefetchKeys;
}
