using System.Globalization;
using CdsHooks.Engine.Fhir;
using CdsHooks.Engine.Hooks;
using CdsHooks.Engine.Knowledge;
using Hl7.Fhir.Model;

namespace CdsHooks.Engine.Patients;

public static class PatientContextBuilder
{
    private static readonly string[] RxNormSystems = [DrugGroup.RxNorm, "urn:oid:2.16.840.1.113883.6.88"];

    /// <summary>The medications being ordered in this call; <paramref name="medications"/> resolves
    /// <c>medicationReference</c>s ("Medication/123") to Medication resources known so far.</summary>
    public static IReadOnlyList<MedicationUse> NewMedications(HookRequest request, IReadOnlyDictionary<string, Medication> medications) =>
        [.. request.NewOrders.OfType<MedicationRequest>().Select(m => Describe(m, MedicationStatus.New, medications))];

    /// <summary>Builds the patient's context. The patient and their medications are required: a key the client did
    /// not provide and the FHIR server could not either fails the call with <see cref="MissingPatientDataException"/>
    /// (HTTP 412). A key that is <c>null</c> means "none". The other keys are optional: without them, the rules
    /// that need them stay silent.</summary>
    public static PatientContext Build(HookRequest request, PatientData data, IReadOnlyList<MedicationUse> newMedications, DateOnly today)
    {
        // "No patient" is not an answer: a null patient is as missing as an absent one. Null medications mean none.
        var missing = PrefetchKeys.Required
            .Where(key => data.For(key).State is PrefetchState.Absent or PrefetchState.Failed
                || (key == PrefetchKeys.Patient && data.For(key).State == PrefetchState.NoData))
            .ToDictionary(key => key, key => data.Problems.GetValueOrDefault(key, "missing from prefetch"));
        if (missing.Count > 0) throw new MissingPatientDataException(missing);

        var newIds = request.NewOrders.Select(o => o.Id).Where(id => id is not null).ToHashSet();
        var all = new List<MedicationUse>(newMedications);

        // Draft orders that are not selected are about to be ordered too: they count as the patient's medications.
        all.AddRange(request.OtherDraftOrders.OfType<MedicationRequest>().Select(m => Describe(m, MedicationStatus.Current, data.Medications)));
        var seen = new HashSet<string?>(newIds);
        foreach (var key in new[] { PrefetchKeys.Medications, PrefetchKeys.StoppedMedications })
        {
            foreach (var m in Resources<MedicationRequest>(data.For(key)))
            {
                // A client may list the draft order itself, or the same order under both keys.
                if (m.Id is not null && !seen.Add(m.Id)) continue;
                if (StatusOf(m) is { } status) all.Add(Describe(m, status, data.Medications));
            }
        }

        all.AddRange(Resources<MedicationStatement>(data.For(PrefetchKeys.MedicationStatements))
            .Select(m => (Statement: m, Status: StatusOf(m)))
            .Where(m => m.Status is not null)
            .Select(m => Describe(m.Statement, m.Status!.Value, data.Medications)));

        var conditions = Resources<Condition>(data.For(PrefetchKeys.Conditions))
            .Where(IsActive)
            .SelectMany(c => c.Code?.Coding ?? [])
            .Where(c => c.System is not null && c.Code is not null)
            .Select(c => ConditionGroup.Key(c.System!, c.Code!))
            .ToHashSet(StringComparer.Ordinal);

        return new PatientContext(AgeOf(data.For(PrefetchKeys.Patient).Resource as Patient, today), all, conditions, today);
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

    // Active and on-hold requests are current (on-hold ones may resume at any time); stopped and completed ones
    // matter only to rules that look back; cancelled, entered-in-error, draft and unknown ones were never taken.
    // Proposals and options are not orders.
    private static MedicationStatus? StatusOf(MedicationRequest request)
    {
        var intent = request.IntentElement?.JsonValue as string;
        if (intent is "proposal" or "option") return null;
        return (request.StatusElement?.JsonValue as string) switch
        {
            "active" or "on-hold" => MedicationStatus.Current,
            "stopped" or "completed" => MedicationStatus.Stopped,
            _ => null,
        };
    }

    // MedicationStatement: active and intended are current; completed and stopped count for look-back windows.
    private static MedicationStatus? StatusOf(MedicationStatement statement) => (statement.StatusElement?.JsonValue as string) switch
    {
        "active" or "intended" => MedicationStatus.Current,
        "completed" or "stopped" => MedicationStatus.Stopped,
        _ => null,
    };

    private static bool IsActive(Condition condition)
    {
        var clinical = condition.ClinicalStatus?.Coding.FirstOrDefault()?.Code;
        var verification = condition.VerificationStatus?.Coding.FirstOrDefault()?.Code;
        return clinical is null or "active" or "recurrence" or "relapse"
            && verification is not ("refuted" or "entered-in-error");
    }

    private static IEnumerable<T> Resources<T>(Prefetched prefetched) where T : Resource => prefetched.Resource switch
    {
        Bundle bundle => bundle.Entry.Select(e => e.Resource).OfType<T>(),
        T single => [single],
        _ => [],
    };

    private static MedicationUse Describe(MedicationRequest request, MedicationStatus status, IReadOnlyDictionary<string, Medication> medications) =>
        Describe(request.Medication, request.Contained, request.DosageInstruction, status,
            status == MedicationStatus.Stopped ? StoppedOn(request) : null, request.Id, medications) with { Order = request };

    private static MedicationUse Describe(MedicationStatement statement, MedicationStatus status, IReadOnlyDictionary<string, Medication> medications) =>
        Describe(statement.Medication, statement.Contained, statement.Dosage, status,
            status == MedicationStatus.Stopped ? ParseDate((statement.Effective as Period)?.End ?? (statement.Effective as FhirDateTime)?.Value) : null,
            statement.Id, medications);

    // medication[x] as EHRs send it: a CodeableConcept (RxNorm anywhere among the codings, or text only), or a
    // reference to a contained Medication ("#med1") or to one in a Bundle or on the server ("Medication/123"),
    // whose ingredient list counts too (combination products).
    private static MedicationUse Describe(DataType? medication, List<Resource> contained, List<Dosage> dosage, MedicationStatus status,
        DateOnly? stoppedOn, string? id, IReadOnlyDictionary<string, Medication> medications)
    {
        var reference = (medication as ResourceReference)?.Reference;
        var resolved = reference switch
        {
            null => null,
            _ when reference.StartsWith('#') => contained.OfType<Medication>().FirstOrDefault(m => m.Id == reference[1..]),
            _ => medications.GetValueOrDefault(reference),
        };
        var concepts = new List<CodeableConcept>();
        if (medication is CodeableConcept concept) concepts.Add(concept);
        if (resolved?.Code is { } code) concepts.Add(code);
        concepts.AddRange(resolved?.Ingredient.Select(i => i.Item).OfType<CodeableConcept>() ?? []);

        var codes = concepts.SelectMany(c => c.Coding)
            .Where(c => c.System is not null && RxNormSystems.Contains(c.System) && !string.IsNullOrWhiteSpace(c.Code))
            .Select(c => c.Code!)
            .Distinct()
            .ToList();
        var names = concepts.SelectMany(c => c.Coding.Select(x => x.Display).Prepend(c.Text)).OfType<string>()
            .Append((medication as ResourceReference)?.Display).OfType<string>().ToList();
        var display = names.FirstOrDefault() ?? "Unnamed medication";
        return new MedicationUse(display, codes, string.Join(" | ", names), DoseText(dosage), Dosing.DailyDose(dosage),
            status, stoppedOn, id, reference is not null && resolved is null && codes.Count == 0 ? reference : null);
    }

    private static string? DoseText(List<Dosage> instructions)
    {
        var dosage = instructions.FirstOrDefault();
        if (dosage is null) return null;
        if (!string.IsNullOrWhiteSpace(dosage.Text)) return dosage.Text;
        return dosage.DoseAndRate.Select(d => d.Dose).OfType<Quantity>().FirstOrDefault() is { Value: { } value } q
            ? $"{value.ToString(CultureInfo.InvariantCulture)} {q.Unit ?? q.Code}".Trim()
            : null;
    }

    // The last day taken: the latest end of the dosing bounds or dispense validity, else the day the record last
    // changed (when it was marked stopped). Unknown stays null, and look-back rules count it: an MAOI stopped on an
    // unknown day may have been stopped yesterday.
    private static DateOnly? StoppedOn(MedicationRequest request) =>
        request.DosageInstruction
            .Select(d => ParseDate((d.Timing?.Repeat?.Bounds as Period)?.End))
            .Append(ParseDate(request.DispenseRequest?.ValidityPeriod?.End))
            .Max()
        ?? (request.Meta?.LastUpdated is { } updated ? DateOnly.FromDateTime(updated.UtcDateTime) : null);

    private static DateOnly? ParseDate(string? value) =>
        value is { Length: >= 10 } && DateOnly.TryParseExact(value[..10], "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date)
            ? date
            : null;
}
