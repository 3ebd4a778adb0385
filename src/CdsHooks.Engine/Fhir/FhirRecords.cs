using Hl7.Fhir.Model;

namespace CdsHooks.Engine.Fhir;

/// <summary>
/// The engine's own model of the FHIR resources it reads: for each resource type, the elements a rule can weigh (codes,
/// statuses, doses, dates) and nothing else, in a few objects per resource. <see cref="PrefetchReader"/> fills it from a
/// request's JSON; <see cref="From(Resource)"/> from Firely's model (a whole parse, the reference the tests hold the
/// reader to). Firely's model of the same elements was an object per primitive value and a list per repeated element:
/// building it was most of reading a request, and most of a call's allocations (docs/performance.md). Where a whole
/// resource is needed (a suggestion returns the order it changes), <see cref="FhirRecord.Whole"/> parses it whole with
/// Firely from the JSON kept beside it.
/// </summary>
public abstract class FhirRecord(string typeName, string? id)
{
    private object? _whole;

    /// <summary>The FHIR resource type ("MedicationRequest").</summary>
    public string TypeName { get; } = typeName;

    public string? Id { get; } = id;

    /// <summary>The JSON this record was read from, when the reader kept it (orders, and paged Bundles).</summary>
    public byte[]? Source => (_whole as SourceJson)?.Utf8;

    /// <summary>The whole resource: parsed by Firely from the JSON kept beside this record (once, however many
    /// suggestions ask), or the Firely resource it was made from; null when there is neither (the reader keeps the JSON
    /// of orders only: prefetched resources have no whole resource), or when Firely refuses that JSON. Callers copy
    /// before they change it.</summary>
    public Resource? Whole() => _whole switch
    {
        SourceJson source => source.Whole.Value,
        Resource resource => resource,
        _ => null,
    };

    internal void KeepSource(byte[] utf8) => _whole = new SourceJson(utf8);

    internal void KeepWhole(Resource resource) => _whole = resource;

    private sealed class SourceJson(byte[] utf8)
    {
        public byte[] Utf8 => utf8;

        public Lazy<Resource?> Whole { get; } = new(() =>
        {
            using var document = System.Text.Json.JsonDocument.Parse(utf8);
            return FhirJson.ReadResource(document.RootElement, "order", []);
        });
    }

    /// <summary>The record of a Firely resource: the elements the engine reads, as <see cref="PrefetchReader"/> reads
    /// them from JSON, with the resource kept whole beside it.</summary>
    public static FhirRecord From(Resource resource)
    {
        FhirRecord record = resource switch
        {
            Bundle bundle => new BundleRecord(bundle.Id,
                bundle.Link.FirstOrDefault(l => l?.Relation == "next")?.Url,
                [.. bundle.Entry.Select(e => e?.Resource is { } r ? From(r) : null)]),
            MedicationRequest request => new RequestRecord(request.Id, request.StatusElement?.JsonValue as string,
                request.IntentElement?.JsonValue as string, DrugOf(request.Medication), ContainedOf(request.Contained),
                DosagesOf(request.DosageInstruction), request.DispenseRequest?.ValidityPeriod?.End, null, request.Meta?.LastUpdated),
            MedicationStatement statement => new StatementRecord(statement.Id, statement.StatusElement?.JsonValue as string,
                DrugOf(statement.Medication), ContainedOf(statement.Contained), DosagesOf(statement.Dosage),
                (statement.Effective as Period)?.End ?? (statement.Effective as FhirDateTime)?.Value),
            Condition condition => new ConditionRecord(condition.Id, ConceptOf(condition.ClinicalStatus),
                ConceptOf(condition.VerificationStatus), ConceptOf(condition.Code)),
            Patient patient => new PatientRecord(patient.Id, patient.BirthDateElement?.Value),
            Medication medication => MedicationOf(medication),
            _ => new OtherRecord(resource.TypeName, resource.Id),
        };
        record.KeepWhole(resource);
        return record;
    }

    private static MedicationRecord MedicationOf(Medication medication) =>
        new(medication.Id, ConceptOf(medication.Code), [.. medication.Ingredient.Select(i => ConceptOf(i?.Item as CodeableConcept))]);

    private static Drug DrugOf(DataType? medication) => medication switch
    {
        CodeableConcept concept => new Drug(ConceptOf(concept), null),
        ResourceReference reference => new Drug(null, new Reference(reference.Reference, reference.Display)),
        _ => default,
    };

    private static List<FhirRecord> ContainedOf(List<Resource> contained) => [.. contained.Where(r => r is not null).Select(From)];

    private static Concept? ConceptOf(CodeableConcept? concept) =>
        concept is null ? null : new Concept(concept.Text, [.. concept.Coding.Select(c => new CodingRecord(c?.System, c?.Code, c?.Display))]);

    /// <summary>Firely's dosage instructions as the engine reads them (the dosing tests write theirs with Firely).</summary>
    public static DosageRecord[] DosagesOf(IEnumerable<Dosage?> dosages) => [.. dosages.Select(DosageOf)];

    private static DosageRecord DosageOf(Dosage? dosage)
    {
        if (dosage is null) return new DosageRecord(null, null, false, [], null);
        var repeat = dosage.Timing?.Repeat;
        return new DosageRecord(
            dosage.Text,
            repeat is null ? null : new RepeatRecord(repeat.Frequency, repeat.FrequencyMax, repeat.Period,
                repeat.PeriodUnitElement?.JsonValue as string, (repeat.Bounds as Period)?.End, repeat.WhenElement.Count(w => w?.JsonValue is not null)),
            dosage.AsNeeded is FhirBoolean { Value: true } or CodeableConcept,
            [.. dosage.DoseAndRate.Select(d => d?.Dose switch
            {
                Quantity q => new DoseRecord(QuantityOf(q), false),
                Hl7.Fhir.Model.Range r => new DoseRecord(QuantityOf(r.High), true),
                _ => default,
            })],
            dosage.MaxDosePerPeriod is { } max ? new RatioRecord(QuantityOf(max.Numerator), QuantityOf(max.Denominator)) : null);
    }

    private static QuantityRecord? QuantityOf(Quantity? q) => q is null ? null : new QuantityRecord(q.Value, q.Unit, q.Code);
}

/// <summary>A coding as sent: its system, code and display, each possibly absent.</summary>
public readonly record struct CodingRecord(string? System, string? Code, string? Display);

/// <summary>A CodeableConcept: its text and its codings, in order. (Records holding arrays compare them by reference:
/// these are read, not compared.)</summary>
public sealed record Concept(string? Text, CodingRecord[] Codings);

/// <summary>A reference as sent ("Medication/123", "#med1") and its display.</summary>
public sealed record Reference(string? Value, string? Display);

/// <summary><c>medication[x]</c>: a concept or a reference (or neither, when absent).</summary>
public readonly record struct Drug(Concept? Concept, Reference? Reference);

/// <summary>A quantity's value and its unit as written (<c>unit</c>) and as coded (<c>code</c>).</summary>
public sealed record QuantityRecord(decimal? Value, string? Unit, string? Code);

/// <summary>One <c>doseAndRate</c>: its <c>doseQuantity</c>, or the high end of its <c>doseRange</c>
/// (<see cref="IsRange"/>); neither when it has no dose.</summary>
public readonly record struct DoseRecord(QuantityRecord? Quantity, bool IsRange);

/// <summary><c>maxDosePerPeriod</c>.</summary>
public sealed record RatioRecord(QuantityRecord? Numerator, QuantityRecord? Denominator);

/// <summary><c>timing.repeat</c>: the schedule, the end of its bounds, and how many named times of day it gives.</summary>
public sealed record RepeatRecord(int? Frequency, int? FrequencyMax, decimal? Period, string? PeriodUnit, string? BoundsEnd, int NamedTimes);

/// <summary>One dosage instruction.</summary>
public sealed record DosageRecord(string? Text, RepeatRecord? Repeat, bool AsNeeded, DoseRecord[] Doses, RatioRecord? MaxDosePerPeriod);

/// <summary>A MedicationRequest or a MedicationStatement: the drug, where it is described, and how it is taken.</summary>
public abstract class DrugRecord(string typeName, string? id, string? status, Drug medication, IReadOnlyList<FhirRecord> contained, DosageRecord[] dosage)
    : FhirRecord(typeName, id)
{
    public string? Status { get; } = status;

    public Drug Medication { get; } = medication;

    /// <summary>Contained resources: Medications (a "#med1" reference resolves to one) and others by type only.</summary>
    public IReadOnlyList<FhirRecord> Contained { get; } = contained;

    public DosageRecord[] Dosage { get; } = dosage;
}

/// <param name="lastUpdatedText"><c>meta.lastUpdated</c> as read (a valid instant), made a date only when asked.</param>
/// <param name="lastUpdated"><c>meta.lastUpdated</c> as Firely read it, for a record made from Firely's model.</param>
public sealed class RequestRecord(string? id, string? status, string? intent, Drug medication, IReadOnlyList<FhirRecord> contained,
    DosageRecord[] dosage, string? validityEnd, string? lastUpdatedText, DateTimeOffset? lastUpdated = null)
    : DrugRecord("MedicationRequest", id, status, medication, contained, dosage)
{
    public string? Intent { get; } = intent;

    /// <summary><c>dispenseRequest.validityPeriod.end</c>.</summary>
    public string? ValidityEnd { get; } = validityEnd;

    /// <summary><c>meta.lastUpdated</c>, read as Firely reads an instant: only the rules that look back ask, and only
    /// for a stopped order.</summary>
    public DateTimeOffset? LastUpdated => lastUpdatedText is null ? lastUpdated : new Instant { JsonValue = lastUpdatedText }.Value;
}

public sealed class StatementRecord(string? id, string? status, Drug medication, IReadOnlyList<FhirRecord> contained, DosageRecord[] dosage, string? effectiveEnd)
    : DrugRecord("MedicationStatement", id, status, medication, contained, dosage)
{
    /// <summary>The end of <c>effectivePeriod</c>, or <c>effectiveDateTime</c>.</summary>
    public string? EffectiveEnd { get; } = effectiveEnd;
}

public sealed class ConditionRecord(string? id, Concept? clinicalStatus, Concept? verificationStatus, Concept? code) : FhirRecord("Condition", id)
{
    public Concept? ClinicalStatus { get; } = clinicalStatus;

    public Concept? VerificationStatus { get; } = verificationStatus;

    public Concept? Code { get; } = code;
}

public sealed class PatientRecord(string? id, string? birthDate) : FhirRecord("Patient", id)
{
    public string? BirthDate { get; } = birthDate;
}

/// <summary>A Medication resource: its code, and its ingredients' concepts (null for an ingredient given by reference).</summary>
public sealed class MedicationRecord(string? id, Concept? code, Concept?[] ingredients) : FhirRecord("Medication", id)
{
    public Concept? Code { get; } = code;

    public Concept?[] Ingredients { get; } = ingredients;
}

/// <summary>A Bundle: its entries' resources (null for an entry without one) and its <c>next</c> link.</summary>
public sealed class BundleRecord(string? id, string? next, IReadOnlyList<FhirRecord?> entries) : FhirRecord("Bundle", id)
{
    public string? Next { get; } = next;

    public IReadOnlyList<FhirRecord?> Entries { get; } = entries;
}

/// <summary>A resource no rule reads (an OperationOutcome, an Observation in a Bundle): its type and id only.</summary>
public sealed class OtherRecord(string typeName, string? id) : FhirRecord(typeName, id);
