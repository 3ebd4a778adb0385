using System.Globalization;
using CdsHooks.Engine.Hooks;
using Hl7.Fhir.Model;

namespace CdsHooks.Engine.Patients;

public static class PatientContextBuilder
{
    private static readonly string[] RxNormSystems =
    [
        "http://www.nlm.nih.gov/research/umls/rxnorm",
        "urn:oid:2.16.840.1.113883.6.88",
    ];

    /// <summary>The medications being ordered in this call.</summary>
    public static IReadOnlyList<MedicationUse> NewMedications(HookRequest request) =>
        [.. request.NewOrders.OfType<MedicationRequest>().Select(m => Describe(m, isNew: true))];

    /// <summary>Builds the patient's context from prefetch. The patient and their medications are required; a key
    /// that is absent or that the client failed to fetch (an OperationOutcome) cannot be replaced yet, so the call
    /// fails with <see cref="MissingPatientDataException"/> (HTTP 412). A key that is <c>null</c> means "none".</summary>
    public static PatientContext Build(HookRequest request, IReadOnlyList<MedicationUse> newMedications, DateOnly today)
    {
        var patient = request.PrefetchFor(PrefetchKeys.Patient);
        var medications = request.PrefetchFor(PrefetchKeys.Medications);
        var missing = new[] { (PrefetchKeys.Patient, patient), (PrefetchKeys.Medications, medications) }
            .Where(p => p.Item2.State is PrefetchState.Absent or PrefetchState.Failed)
            .Select(p => p.Item1)
            .ToList();
        if (missing.Count > 0) throw new MissingPatientDataException(missing);

        var newIds = request.NewOrders.Select(o => o.Id).Where(id => id is not null).ToHashSet();
        var current = new List<MedicationUse>(newMedications);

        // Draft orders that are not selected are about to be ordered too: they count as the patient's medications.
        current.AddRange(request.OtherDraftOrders.OfType<MedicationRequest>().Select(m => Describe(m, isNew: false)));
        current.AddRange(Resources<MedicationRequest>(medications)
            .Where(m => IsCurrent(m) && !newIds.Contains(m.Id)) // a client may list the draft order itself
            .Select(m => Describe(m, isNew: false)));

        return new PatientContext(AgeOf(patient.Resource as Patient, today), current);
    }

    /// <summary>Age in whole years. A partial birth date ("1946" or "1946-03") is read as its earliest day, so an
    /// age threshold is never missed because the EHR knows only the year.</summary>
    public static int? AgeOf(Patient? patient, DateOnly today)
    {
        var text = patient?.BirthDateElement?.Value;
        if (string.IsNullOrEmpty(text)) return null;
        var parts = text.Split('-');
        if (!int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var year)) return null;
        var month = parts.Length > 1 && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var m) ? m : 1;
        var day = parts.Length > 2 && int.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var d) ? d : 1;
        var age = today.Year - year;
        if (today.Month < month || (today.Month == month && today.Day < day)) age--;
        return age < 0 ? null : age;
    }

    // Active and on-hold requests are current (on-hold ones may resume at any time); proposals and options are not orders.
    private static bool IsCurrent(MedicationRequest request)
    {
        var status = request.StatusElement?.JsonValue as string;
        var intent = request.IntentElement?.JsonValue as string;
        return status is "active" or "on-hold" && intent is not ("proposal" or "option");
    }

    private static IEnumerable<T> Resources<T>(Prefetched prefetched) where T : Resource => prefetched.Resource switch
    {
        Bundle bundle => bundle.Entry.Select(e => e.Resource).OfType<T>(),
        T single => [single],
        _ => [],
    };

    private static MedicationUse Describe(MedicationRequest request, bool isNew)
    {
        var concept = request.Medication switch
        {
            CodeableConcept c => c,
            ResourceReference r when r.Reference?.StartsWith('#') == true =>
                request.Contained.OfType<Medication>().FirstOrDefault(m => m.Id == r.Reference[1..])?.Code,
            _ => null,
        };

        var codes = concept?.Coding
            .Where(c => c.System is not null && RxNormSystems.Contains(c.System) && !string.IsNullOrWhiteSpace(c.Code))
            .Select(c => c.Code!)
            .Distinct()
            .ToList() ?? [];
        var display = concept?.Text ?? concept?.Coding.FirstOrDefault(c => c.Display is not null)?.Display ?? "Unnamed medication";
        return new MedicationUse(display, codes, DoseOf(request), isNew, request.Id);
    }

    private static string? DoseOf(MedicationRequest request)
    {
        var dosage = request.DosageInstruction.FirstOrDefault();
        if (dosage is null) return null;
        if (!string.IsNullOrWhiteSpace(dosage.Text)) return dosage.Text;
        return dosage.DoseAndRate.Select(d => d.Dose).OfType<Quantity>().FirstOrDefault() is { Value: { } value } q
            ? $"{value.ToString(CultureInfo.InvariantCulture)} {q.Unit ?? q.Code}".Trim()
            : null;
    }
}
