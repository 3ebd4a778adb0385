using System.Globalization;
using CdsHooks.Engine.Fhir;
using CdsHooks.Engine.Hooks;
using CdsHooks.Engine.Knowledge;

namespace CdsHooks.Engine.Patients;

public static class PatientContextBuilder
{
    private const string RxNormOid = "urn:oid:2.16.840.1.113883.6.88";

    private static readonly string[] MedicationKeys = [PrefetchKeys.Medications, PrefetchKeys.StoppedMedications];

    // Loops rather than LINQ chains on the paths every medication of every call takes: their iterators, closures and
    // intermediate lists were a fifth of a typical call's allocations (docs/performance.md).

    /// <summary>The medications being ordered in this call; <paramref name="medications"/> resolves
    /// <c>medicationReference</c>s ("Medication/123") to Medication resources known so far.</summary>
    public static IReadOnlyList<MedicationUse> NewMedications(HookRequest request, IReadOnlyDictionary<string, MedicationRecord> medications)
    {
        var orders = request.NewOrders;
        var described = new List<MedicationUse>(orders.Count);
        for (var i = 0; i < orders.Count; i++)
        {
            if (orders[i] is RequestRecord order) described.Add(Describe(order, MedicationStatus.New, medications));
        }

        return described;
    }

    /// <summary>Builds the patient's context. The patient and their medications are required: a key the client did
    /// not provide and the FHIR server could not either fails the call with <see cref="MissingPatientDataException"/>
    /// (HTTP 412). A key that is <c>null</c> means "none". The other keys are optional: without them, the rules
    /// that need them stay silent.</summary>
    public static PatientContext Build(HookRequest request, PatientData data, IReadOnlyList<MedicationUse> newMedications, DateOnly today)
    {
        // "No patient" is not an answer: a null patient is as missing as an absent one. Null medications mean none.
        Dictionary<string, string>? missing = null;
        foreach (var key in PrefetchKeys.Required)
        {
            var state = data.For(key).State;
            if (state is PrefetchState.Absent or PrefetchState.Failed || (key == PrefetchKeys.Patient && state == PrefetchState.NoData))
            {
                (missing ??= [])[key] = data.Problems.GetValueOrDefault(key, "missing from prefetch");
            }
        }

        if (missing is not null) throw new MissingPatientDataException(missing);

        var all = new List<MedicationUse>(newMedications);
        // Sized for every id it may hold (grown from empty, it made four arrays of each kind for a few medications).
        var ids = request.NewOrders.Count;
        foreach (var key in MedicationKeys) ids += MostResources(data.For(key));
        var seen = new HashSet<string?>(ids, StringComparer.Ordinal);
        for (var i = 0; i < request.NewOrders.Count; i++)
        {
            if (request.NewOrders[i].Id is { } id) seen.Add(id);
        }

        // Draft orders that are not selected are about to be ordered too: they count as the patient's medications.
        for (var i = 0; i < request.OtherDraftOrders.Count; i++)
        {
            if (request.OtherDraftOrders[i] is RequestRecord draft) all.Add(Describe(draft, MedicationStatus.Current, data.Medications));
        }

        foreach (var key in MedicationKeys)
        {
            foreach (var m in Resources<RequestRecord>(data.For(key)))
            {
                // A client may list the draft order itself, or the same order under both keys.
                if (m.Id is not null && !seen.Add(m.Id)) continue;
                if (StatusOf(m) is { } status) all.Add(Describe(m, status, data.Medications));
            }
        }

        foreach (var statement in Resources<StatementRecord>(data.For(PrefetchKeys.MedicationStatements)))
        {
            if (StatusOf(statement) is { } status) all.Add(Describe(statement, status, data.Medications));
        }

        // Sized for a coding a condition (a condition coded twice makes it grow once): grown from empty, the set made
        // four arrays of each kind for a few conditions.
        var conditions = new HashSet<string>(MostResources(data.For(PrefetchKeys.Conditions)), StringComparer.Ordinal);
        foreach (var condition in Resources<ConditionRecord>(data.For(PrefetchKeys.Conditions)))
        {
            if (!IsActive(condition) || condition.Code is not { } code) continue;
            foreach (var coding in code.Codings)
            {
                if (coding is { System: { } system, Code: { } value }) conditions.Add(ConditionKey(system, value));
            }
        }

        return new PatientContext(AgeOf(data.For(PrefetchKeys.Patient).Resource as PatientRecord, today), all, conditions, today);
    }

    /// <summary>Age in whole years. A partial birth date ("1946" or "1946-03") is read as its earliest day, so an
    /// age threshold is never missed because the EHR knows only the year.</summary>
    public static int? AgeOf(PatientRecord? patient, DateOnly today)
    {
        var text = patient?.BirthDate;
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
    private static MedicationStatus? StatusOf(RequestRecord request)
    {
        if (request.Intent is "proposal" or "option") return null;
        return request.Status switch
        {
            "active" or "on-hold" => MedicationStatus.Current,
            "stopped" or "completed" => MedicationStatus.Stopped,
            _ => null,
        };
    }

    // MedicationStatement: active and intended are current; completed and stopped count for look-back windows.
    private static MedicationStatus? StatusOf(StatementRecord statement) => statement.Status switch
    {
        "active" or "intended" => MedicationStatus.Current,
        "completed" or "stopped" => MedicationStatus.Stopped,
        _ => null,
    };

    private static bool IsActive(ConditionRecord condition)
    {
        var clinical = condition.ClinicalStatus?.Codings is [var clinicalCoding, ..] ? clinicalCoding.Code : null;
        var verification = condition.VerificationStatus?.Codings is [var verificationCoding, ..] ? verificationCoding.Code : null;
        return clinical is null or "active" or "recurrence" or "relapse"
            && verification is not ("refuted" or "entered-in-error");
    }

    private static Resources<T> Resources<T>(Prefetched prefetched) where T : FhirRecord => new(prefetched.Resource);

    // How many resources a prefetched value holds at most: a Bundle's entries, else one.
    private static int MostResources(Prefetched prefetched) => prefetched.Resource is BundleRecord bundle ? bundle.Entries.Count : 1;

    private static MedicationUse Describe(RequestRecord request, MedicationStatus status, IReadOnlyDictionary<string, MedicationRecord> medications) =>
        Describe(request, status, status == MedicationStatus.Stopped ? StoppedOn(request) : null, medications);

    private static MedicationUse Describe(StatementRecord statement, MedicationStatus status, IReadOnlyDictionary<string, MedicationRecord> medications) =>
        Describe(statement, status, status == MedicationStatus.Stopped ? ParseDate(statement.EffectiveEnd) : null, medications);

    // medication[x] as EHRs send it: a CodeableConcept (RxNorm anywhere among the codings, or text only), or a
    // reference to a contained Medication ("#med1") or to one in a Bundle or on the server ("Medication/123"),
    // whose ingredient list counts too (combination products). An order is kept with its use (a suggestion may change it).
    private static MedicationUse Describe(DrugRecord drug, MedicationStatus status, DateOnly? stoppedOn, IReadOnlyDictionary<string, MedicationRecord> medications)
    {
        var medication = drug.Medication;
        var reference = medication.Reference?.Value;
        var resolved = reference is null ? null
            : reference.StartsWith('#') ? Contained(drug.Contained, reference.AsSpan(1))
            : medications.GetValueOrDefault(reference);

        // The RxNorm codes, each once, and every name in order: of the medication's concept, then of the Medication it
        // references (its code, then its ingredients'), each concept's text before its codings' displays. Gathered in
        // lists the thread lends (LentLists): the codes are kept as an array of their number (usually one) and the
        // names as one text, so two lists for every medication of every call were made for nothing.
        var codes = LentLists<string>.Take();
        var names = LentLists<string>.Take();
        Read(medication.Concept);
        if (resolved is not null)
        {
            Read(resolved.Code);
            for (var i = 0; i < resolved.Ingredients.Length; i++) Read(resolved.Ingredients[i]);
        }

        if (medication.Reference?.Display is { } referenceName && !names.Contains(referenceName)) names.Add(referenceName);
        var display = names.Count > 0 ? names[0] : "Unnamed medication";
        var text = string.Join(" | ", names); // one name is itself
        string[] rxNormCodes = [.. codes];
        LentLists<string>.GiveBack(codes);
        LentLists<string>.GiveBack(names);
        return new MedicationUse(display, rxNormCodes, text, DoseText(drug.Dosage), Dosing.DailyDose(drug.Dosage),
            status, stoppedOn, drug.Id, reference is not null && resolved is null && rxNormCodes.Length == 0 ? reference : null, drug as RequestRecord);

        // A name already had is not added again: EHRs send a concept's text and its coding's display as the same words,
        // and the joined text is for recognising ingredients by name, to which a repeat adds nothing (one name is no
        // string to make).
        void Read(Concept? concept)
        {
            if (concept is null) return;
            if (concept.Text is { } text && !names.Contains(text)) names.Add(text);
            foreach (var coding in concept.Codings)
            {
                if (coding.Display is { } name && !names.Contains(name)) names.Add(name);
                if (coding.System is DrugGroup.RxNorm or RxNormOid && !string.IsNullOrWhiteSpace(coding.Code) && !codes.Contains(coding.Code))
                {
                    codes.Add(coding.Code);
                }
            }
        }
    }

    // A condition's key ("system|code", normalised) remembered by the system and code as sent, found without making a
    // string: the same codes come for patient after patient, and each key was two to four strings (the concatenation,
    // and for ICD-10-CM the code without its dot, trimmed and in capitals). Bounded as the reader's remembered literals,
    // and only for the systems a condition group holds (SNOMED CT, ICD-10-CM): codes of others can never match, and
    // a client sending them must not fill the map.
    private static readonly RememberedValues<string> ConditionKeys = new(bound: 4096, maxLength: 256);

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> ConditionKeysBySpan =
        ConditionKeys.BySpan();

    private static string ConditionKey(string system, string code)
    {
        // The system's length first, so that no two pairs of system and code are written the same.
        var length = 1 + system.Length + code.Length;
        if (length > 256 || system is not (ConditionGroup.Snomed or ConditionGroup.Icd10Cm)) return ConditionGroup.Key(system, code);
        Span<char> sent = stackalloc char[length];
        sent[0] = (char)system.Length;
        system.CopyTo(sent[1..]);
        code.CopyTo(sent[(1 + system.Length)..]);
        if (ConditionKeysBySpan.TryGetValue(sent, out var key)) return key;
        key = ConditionGroup.Key(system, code);
        ConditionKeys.Remember(new string(sent), key);
        return key;
    }

    private static MedicationRecord? Contained(IReadOnlyList<FhirRecord> contained, ReadOnlySpan<char> id)
    {
        for (var i = 0; i < contained.Count; i++)
        {
            if (contained[i] is MedicationRecord { Id: { } medicationId } medication && id.SequenceEqual(medicationId)) return medication;
        }

        return null;
    }

    private static string? DoseText(DosageRecord[] instructions)
    {
        if (instructions is not [var dosage, ..]) return null;
        if (!string.IsNullOrWhiteSpace(dosage.Text)) return dosage.Text;
        foreach (var dose in dosage.Doses)
        {
            if (dose is { IsRange: false, Quantity: { } q })
            {
                return q.Value is { } value ? $"{value.ToString(CultureInfo.InvariantCulture)} {q.Unit ?? q.Code}".Trim() : null;
            }
        }

        return null;
    }

    // The last day taken: the latest end of the dosing bounds or dispense validity, else the day the record last
    // changed (when it was marked stopped). Unknown stays null, and look-back rules count it: an MAOI stopped on an
    // unknown day may have been stopped yesterday.
    private static DateOnly? StoppedOn(RequestRecord request) =>
        request.Dosage
            .Select(d => ParseDate(d.Repeat?.BoundsEnd))
            .Append(ParseDate(request.ValidityEnd))
            .Max()
        ?? (request.LastUpdated is { } updated ? DateOnly.FromDateTime(updated.UtcDateTime) : null);

    private static DateOnly? ParseDate(string? value) =>
        value is { Length: >= 10 } && DateOnly.TryParseExact(value[..10], "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date)
            ? date
            : null;
}

/// <summary>The resources of type <typeparamref name="T"/> in a prefetched value: a Bundle's entries, or the resource
/// itself. A struct with a struct enumerator, for foreach: an iterator method made an object for every key of every
/// call.</summary>
internal readonly struct Resources<T>(FhirRecord? resource) where T : FhirRecord
{
    public Enumerator GetEnumerator() => new(resource);

    public struct Enumerator(FhirRecord? resource)
    {
        private int _index = -1;

        public T Current { get; private set; } = null!;

        public bool MoveNext()
        {
            if (resource is BundleRecord bundle)
            {
                var entries = bundle.Entries;
                while (++_index < entries.Count)
                {
                    if (entries[_index] is T found)
                    {
                        Current = found;
                        return true;
                    }
                }

                return false;
            }

            if (_index++ < 0 && resource is T single)
            {
                Current = single;
                return true;
            }

            return false;
        }
    }
}
