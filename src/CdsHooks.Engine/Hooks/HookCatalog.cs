namespace CdsHooks.Engine.Hooks;

/// <summary>Where a hook carries the orders being written, and which of them are new in this call.</summary>
public enum NewOrderSource
{
    /// <summary>order-select: <c>context.draftOrders</c>; only the resources named in <c>context.selections</c> are new.</summary>
    SelectedDraftOrders,

    /// <summary>order-sign: every resource in <c>context.draftOrders</c> is new.</summary>
    DraftOrders,

    /// <summary>medication-prescribe (CDS Hooks 1.0): every resource in <c>context.medications</c> is new.</summary>
    Medications,
}

public sealed record HookService(
    string Id,
    string Hook,
    string Title,
    string Description,
    NewOrderSource Orders,
    IReadOnlyList<string> RequiredContext)
{
    public ServiceDescription Describe() => new(Hook, Title, Description, Id, PrefetchKeys.Templates);
}

/// <summary>The prefetch keys every service asks for, with CDS Hooks 2.0 tokens only (requirements 55-59).</summary>
public static class PrefetchKeys
{
    public const string Patient = "patient";
    public const string Medications = "medications";
    public const string Conditions = "conditions";
    public const string StoppedMedications = "stoppedMedications";
    public const string MedicationStatements = "medicationStatements";

    /// <summary>Without these the service cannot check anything (HTTP 412 when they cannot be had); without the
    /// others, the rules that need them stay silent.</summary>
    public static IReadOnlyList<string> Required { get; } = [Patient, Medications];

    public static IReadOnlyDictionary<string, string> Templates { get; } = new Dictionary<string, string>
    {
        [Patient] = "Patient/{{context.patientId}}",
        [Medications] = "MedicationRequest?patient={{context.patientId}}&status=active",
        [MedicationStatements] = "MedicationStatement?patient={{context.patientId}}&status=active,intended",
        [Conditions] = "Condition?patient={{context.patientId}}&clinical-status=active",
        // For rules that look back (an MAOI stopped within 14 days still counts).
        [StoppedMedications] = "MedicationRequest?patient={{context.patientId}}&status=stopped,completed&_sort=-authoredon&_count=50",
    };

    /// <summary>The keys of <see cref="Templates"/>, in their order, as an array: a loop over the dictionary's keys
    /// through its interface makes an enumerator every time, and every hook call walks them.</summary>
    internal static string[] Names { get; } = [.. Templates.Keys];
}

public static class HookCatalog
{
    private const string CommonDescription =
        "Checks the medication being ordered against the patient's active medications, age and conditions for " +
        "dangerous combinations (CNS depressants, opioids, MAOIs, CYP3A4 interactions) and answers with cited advisory cards.";

    public static IReadOnlyList<HookService> Services { get; } =
    [
        new("medication-safety-order-select", "order-select", "Medication safety: interactions at order selection",
            CommonDescription + " Runs when a medication is selected, before the order is signed.",
            NewOrderSource.SelectedDraftOrders, ["userId", "patientId", "selections", "draftOrders"]),
        new("medication-safety-order-sign", "order-sign", "Medication safety: interactions at order signing",
            CommonDescription + " Runs when the draft orders are about to be signed.",
            NewOrderSource.DraftOrders, ["userId", "patientId", "draftOrders"]),
        new("medication-safety-medication-prescribe", "medication-prescribe",
            "Medication safety: interactions at prescribing (legacy medication-prescribe)",
            CommonDescription + " For EHRs that still call the CDS Hooks 1.0 medication-prescribe hook.",
            NewOrderSource.Medications, ["patientId", "medications"]),
    ];

    public static HookService? Find(string id) => Services.FirstOrDefault(s => s.Id == id);

    public static DiscoveryResponse Discovery { get; } = new([.. Services.Select(s => s.Describe())]);
}
