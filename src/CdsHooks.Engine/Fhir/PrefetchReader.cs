using System.Text.Json;
using Hl7.Fhir.Model;
using Hl7.Fhir.Serialization;

namespace CdsHooks.Engine.Fhir;

/// <summary>
/// Reads the resources of a hook request (prefetch: the patient, the Bundles of medications, statements and
/// conditions; and the orders being placed), and the FHIR server's answers that complete prefetch, into the engine's own
/// model (<see cref="FhirRecord"/>) with only the elements the engine reads: ids, statuses, codes, <c>medication[x]</c>,
/// contained Medications, dosage, the dates that say when a medication ended, the birth date, a Bundle's next link. Everything
/// else is skipped unread. Firely's full deserialization of every element was two thirds of a hook call's CPU and most
/// of its allocations, and Firely's objects for the elements read were most of what was left (docs/performance.md). An
/// order keeps its JSON beside it, and <see cref="FhirRecord.Whole"/> parses it whole with Firely when a suggestion
/// returns it.
/// <para>One forward pass of a <see cref="Utf8JsonReader"/> over the UTF-8 text, with no document in between: parsing a
/// <see cref="JsonDocument"/> first and then looking each element up in it was a third of the service's CPU
/// (docs/performance.md). The pass refuses what a <see cref="JsonDocument"/> with <c>AllowDuplicateProperties =
/// false</c> refused (<see cref="JsonNames"/>), in the elements it skips too.</para>
/// <para>The elements read are held to the policy of <see cref="FhirJson"/>: a wrong JSON type, a wrong shape (one value
/// versus an array), a null, an empty string, an unparsable literal (Firely's own <c>IsValidValue</c> for id, code, uri,
/// date, dateTime, instant and positiveInt), a choice element with two types or none, the same element twice under names
/// that differ in case, or a resource type FHIR R4 does not know is refused with its location. An element that is not
/// read cannot change a card, so its problems are not refused. Problems are reported in the order they appear in the
/// text. <c>PrefetchReaderTests</c> holds this reader to Firely's: where Firely accepts, the same patient or a refusal;
/// where Firely refuses and this reader accepts, the patient without the problem.</para>
/// </summary>
public static class PrefetchReader
{
    /// <summary>Nesting deeper than this is refused before anything is read; FHIR resources in CDS Hooks calls are far
    /// shallower.</summary>
    internal static readonly JsonReaderOptions Options = new() { MaxDepth = 64 };

    /// <summary>Reads one resource from its JSON text (UTF-8, a byte order mark allowed). Malformed JSON and duplicate
    /// properties throw <see cref="JsonException"/>; problems with FHIR elements are added to <paramref name="issues"/>.</summary>
    public static FhirRecord? ReadResource(ReadOnlySpan<byte> utf8, string location, ICollection<RequestIssue> issues)
    {
        var pass = new Pass(WithoutByteOrderMark(utf8), issues);
        pass.Start();
        var resource = pass.Resource(pass.Root(location), keepSource: false);
        pass.End();
        return resource;
    }

    /// <summary>Reads the resources of a JSON array of them, or the one resource a JSON object is (the FHIR fallback's
    /// cache holds an answer, or the pages of a paged one), each as <see cref="ReadResource"/> reads one. A resource
    /// refused is left out, with its problems added.</summary>
    public static List<FhirRecord> ReadResources(ReadOnlySpan<byte> utf8, string location, ICollection<RequestIssue> issues)
    {
        var pass = new Pass(WithoutByteOrderMark(utf8), issues);
        pass.Start();
        var resources = new List<FhirRecord>();
        if (pass.Token != JsonTokenType.StartArray)
        {
            if (pass.Resource(pass.Root(location), keepSource: false) is { } resource) resources.Add(resource);
        }
        else
        {
            for (var i = 0; pass.NextItem(); i++)
            {
                if (pass.Resource(pass.Root($"{location}[{i}]"), keepSource: false) is { } item) resources.Add(item);
            }
        }

        pass.End();
        return resources;
    }

    /// <summary>JSON text may start with a UTF-8 byte order mark, which <see cref="Utf8JsonReader"/> refuses.</summary>
    internal static ReadOnlySpan<byte> WithoutByteOrderMark(ReadOnlySpan<byte> utf8) => utf8.StartsWith("\uFEFF"u8) ? utf8[3..] : utf8;

    /// <summary>The items of a repeated element as they are read, then as an array: usually none or one, so the first
    /// array is made for one item and returned as it is (a list and its array were two objects per concept and per
    /// dosage). It doubles as it grows, so a request of many thousands of items costs linear time.</summary>
    private struct Items<T>
    {
        private T[]? _items;
        private int _count;

        public void Add(T item)
        {
            if (_items is null) _items = new T[1];
            else if (_count == _items.Length) Array.Resize(ref _items, _count * 2);
            _items[_count++] = item;
        }

        public readonly T[] ToArray() => _items is null ? [] : _count == _items.Length ? _items : _items[.._count];
    }

    private enum Literal { String, Code, Uri, Id, Date, DateTime, Instant }

    private const int MaxRemembered = 4096;

    private const int MaxRememberedLength = 256;

    private static readonly RememberedValues<bool>[] Validated =
        [.. Enum.GetValues<Literal>().Select(_ => new RememberedValues<bool>(MaxRemembered, MaxRememberedLength))];

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool>.AlternateLookup<ReadOnlySpan<char>>[] ValidatedBySpan =
        [.. Validated.Select(d => d.BySpan())];

    /// <summary>Where a value is in the request ("prefetch.medications.entry[2].resource.dosageInstruction[0]"), made
    /// into text only for a problem: most requests have none, and building every location as a string was a third of
    /// the reader's allocations (docs/performance.md). The locations of a pass come from its <see cref="Arena"/> and
    /// are made again by the next pass on the thread: a location is used during its pass only, for the text of a
    /// problem found then.</summary>
    internal sealed class At
    {
        private readonly Arena _arena;
        private At? _parent;
        private string _name = "";
        private int _index;
        private string? _text;

        private At(Arena arena) => _arena = arena;

        /// <summary>A property below this one; <paramref name="name"/> may name a path ("timing.repeat").</summary>
        public At Then(string name) => _arena.Make(this, name, -1);

        public At Item(string name, int index) => _arena.Make(this, name, index);

        /// <summary>The locations of one pass. A typical call reads about a hundred and twenty elements, each with its
        /// location: made anew for every call they were a tenth of its allocations (docs/performance.md, thirteenth
        /// round). This thread's arena is taken by a pass and given back at its end; a pass inside another, or after one
        /// that threw (and never gave it back), gets a new one.</summary>
        internal sealed class Arena
        {
            // Nor is one kept that grew for a body of very many elements: its locations would stay with the thread.
            private const int KeptAtMost = 2048;

            [ThreadStatic]
            private static Arena? _cached;

            private readonly List<At> _made = [];
            private int _used;
            private bool _taken;

            public static Arena ForThread()
            {
                if (_cached is not { _taken: false, _made.Count: <= KeptAtMost } arena) _cached = arena = new Arena();
                arena._taken = true;
                arena._used = 0;
                return arena;
            }

            /// <summary>The pass has ended: its locations may be made again. One that grew past the bound is let go at
            /// once rather than kept by its thread until the next pass.</summary>
            public void GiveBack()
            {
                _taken = false;
                if (_made.Count > KeptAtMost && ReferenceEquals(_cached, this)) _cached = null;
            }

            public At Root(string location) => Make(null, location, -1);

            public At Make(At? parent, string name, int index)
            {
                At at;
                if (_used < _made.Count)
                {
                    at = _made[_used];
                }
                else
                {
                    at = new At(this);
                    _made.Add(at);
                }

                _used++;
                at._parent = parent;
                at._name = name;
                at._index = index;
                at._text = null;
                return at;
            }
        }

        public override string ToString() => _text ??=
            _parent is null ? _name
            : _index < 0 ? $"{_parent}.{_name}"
            : $"{_parent}.{_name}[{_index.ToString(System.Globalization.CultureInfo.InvariantCulture)}]";
    }

    // The names of the elements read, by type. A name's position in its list is its case in the reader's switch.
    private static readonly byte[][] BundleNames = [.. new[] { "id", "link", "entry" }.Select(System.Text.Encoding.UTF8.GetBytes)];
    private static readonly byte[][] LinkNames = [.. new[] { "relation", "url" }.Select(System.Text.Encoding.UTF8.GetBytes)];
    private static readonly byte[][] EntryNames = [.. new[] { "resource" }.Select(System.Text.Encoding.UTF8.GetBytes)];
    private static readonly byte[][] IdNames = [.. new[] { "id" }.Select(System.Text.Encoding.UTF8.GetBytes)];
    private static readonly byte[][] PatientNames = [.. new[] { "id", "birthDate" }.Select(System.Text.Encoding.UTF8.GetBytes)];
    private static readonly byte[][] RequestNames = [.. new[]
    {
        "id", "medication", "medicationCodeableConcept", "medicationReference", "status", "intent", "contained", "dosageInstruction",
        "dispenseRequest", "meta",
    }.Select(System.Text.Encoding.UTF8.GetBytes)];
    private static readonly byte[][] StatementNames = [.. new[]
    {
        "id", "medication", "medicationCodeableConcept", "medicationReference", "status", "contained", "dosage", "effective",
        "effectiveDateTime", "effectivePeriod",
    }.Select(System.Text.Encoding.UTF8.GetBytes)];
    private static readonly byte[][] ConditionNames = [.. new[] { "id", "clinicalStatus", "verificationStatus", "code" }.Select(System.Text.Encoding.UTF8.GetBytes)];
    private static readonly byte[][] MedicationNames = [.. new[] { "id", "code", "ingredient" }.Select(System.Text.Encoding.UTF8.GetBytes)];
    private static readonly byte[][] IngredientNames = [.. new[] { "item", "itemCodeableConcept", "itemReference" }.Select(System.Text.Encoding.UTF8.GetBytes)];
    private static readonly byte[][] DispenseNames = [.. new[] { "validityPeriod" }.Select(System.Text.Encoding.UTF8.GetBytes)];
    private static readonly byte[][] MetaNames = [.. new[] { "lastUpdated" }.Select(System.Text.Encoding.UTF8.GetBytes)];
    private static readonly byte[][] DosageNames = [.. new[]
    {
        "text", "timing", "asNeeded", "asNeededBoolean", "asNeededCodeableConcept", "doseAndRate", "maxDosePerPeriod",
    }.Select(System.Text.Encoding.UTF8.GetBytes)];
    private static readonly byte[][] TimingNames = [.. new[] { "repeat" }.Select(System.Text.Encoding.UTF8.GetBytes)];
    private static readonly byte[][] DoseNames = [.. new[] { "dose", "doseQuantity", "doseRange" }.Select(System.Text.Encoding.UTF8.GetBytes)];
    private static readonly byte[][] RatioNames = [.. new[] { "numerator", "denominator" }.Select(System.Text.Encoding.UTF8.GetBytes)];
    private static readonly byte[][] RepeatNames = [.. new[]
    {
        "frequency", "frequencyMax", "period", "periodUnit", "bounds", "boundsPeriod", "boundsDuration", "boundsRange", "when", "_when",
    }.Select(System.Text.Encoding.UTF8.GetBytes)];
    private static readonly byte[][] PeriodNames = [.. new[] { "end" }.Select(System.Text.Encoding.UTF8.GetBytes)];
    private static readonly byte[][] QuantityNames = [.. new[] { "value", "unit", "system", "code" }.Select(System.Text.Encoding.UTF8.GetBytes)];
    private static readonly byte[][] RangeNames = [.. new[] { "low", "high" }.Select(System.Text.Encoding.UTF8.GetBytes)];
    private static readonly byte[][] ConceptNames = [.. new[] { "text", "coding" }.Select(System.Text.Encoding.UTF8.GetBytes)];
    private static readonly byte[][] CodingNames = [.. new[] { "system", "code", "display" }.Select(System.Text.Encoding.UTF8.GetBytes)];
    private static readonly byte[][] ReferenceNames = [.. new[] { "reference", "display" }.Select(System.Text.Encoding.UTF8.GetBytes)];

    /// <summary>One forward pass over a JSON text: the reader, the names of the open objects (for duplicates) and the
    /// problems found. Every method that reads a value leaves the reader on the value's last token.</summary>
    internal ref struct Pass
    {
        private readonly ReadOnlySpan<byte> _json;
        private readonly JsonNames _names;
        private readonly At.Arena _locations;
        private readonly RecentStrings _recent;
        private readonly ICollection<RequestIssue> _issues;
        private Utf8JsonReader _reader;

        public Pass(ReadOnlySpan<byte> json, ICollection<RequestIssue> issues)
        {
            _json = json;
            _issues = issues;
            _names = JsonNames.ForThread();
            _locations = At.Arena.ForThread();
            _recent = new RecentStrings();
            _reader = new Utf8JsonReader(json, Options);
        }

        /// <summary>The location of a value at the top of what this pass reads.</summary>
        public readonly At Root(string location) => _locations.Root(location);

        public readonly JsonTokenType Token => _reader.TokenType;

        /// <summary>Moves to the text's first token (malformed or empty text throws).</summary>
        public void Start()
        {
            if (!_reader.Read()) throw new JsonException("The JSON text is empty.");
        }

        /// <summary>After the text's one value: anything more is malformed. Every object opened must have been closed:
        /// an object left open would have its names checked for duplicates against another's.</summary>
        public void End()
        {
            if (_reader.Read()) throw new JsonException("The JSON text has more than one value.");
            if (_names.Depth != 0) throw new InvalidOperationException($"The reader left {_names.Depth} JSON object(s) open.");
            _locations.GiveBack();
        }

        // ---- The JSON: objects, names, skipping.

        /// <summary>On an object's start: records it for its names.</summary>
        public readonly void Open() => _names.Open();

        /// <summary>Moves to the object's next property and then to its value, and returns the property's name as the
        /// name it spells; false at the object's end, which closes it.</summary>
        public bool Next(out ReadOnlySpan<byte> name)
        {
            _reader.Read();
            if (_reader.TokenType == JsonTokenType.EndObject)
            {
                _names.Close();
                name = default;
                return false;
            }

            name = _names.Add(ref _reader, _json);
            _reader.Read();
            return true;
        }

        /// <summary>On an array: moves to its next item; false at its end.</summary>
        public bool NextItem() => _reader.Read() && _reader.TokenType != JsonTokenType.EndArray;

        /// <summary>Moves past the value the reader is on (to its last token), holding its objects to no duplicate
        /// property.</summary>
        public void Skip()
        {
            if (_reader.TokenType is not (JsonTokenType.StartObject or JsonTokenType.StartArray)) return;
            var depth = _reader.CurrentDepth;
            if (_reader.TokenType == JsonTokenType.StartObject) _names.Open();
            do
            {
                _reader.Read();
                switch (_reader.TokenType)
                {
                    case JsonTokenType.StartObject:
                        _names.Open();
                        break;
                    case JsonTokenType.EndObject:
                        _names.Close();
                        break;
                    case JsonTokenType.PropertyName:
                        _names.Add(ref _reader, _json);
                        break;
                }
            }
            while (_reader.CurrentDepth > depth);
        }

        /// <summary>Where the value the reader is on starts in the text.</summary>
        public readonly int ValueStart => (int)_reader.TokenStartIndex;

        /// <summary>The text from <paramref name="start"/> to the end of the value the reader is on (its last token).</summary>
        public readonly ReadOnlySpan<byte> TextFrom(int start) => _json[start..(int)_reader.BytesConsumed];

        /// <summary>The string the reader is on (a JSON string), or null with <paramref name="invalidText"/> set when it is
        /// not valid Unicode (a lone surrogate escaped, or invalid UTF-8).</summary>
        public readonly string? String(out bool invalidText)
        {
            invalidText = false;
            // The same text as one of the last few strings (a medication's text and its coding's display, the subject
            // reference of each resource): that string again. Escaped text is read as usual.
            var recent = _reader.TokenType == JsonTokenType.String && !_reader.ValueIsEscaped;
            if (recent && _recent.Find(_reader.ValueSpan, _json) is { } known) return known;
            try
            {
                var text = _reader.GetString();
                if (recent && text is not null) _recent.Add(ValueStart + 1, _reader.ValueSpan.Length, text); // after the quote
                return text;
            }
            catch (InvalidOperationException)
            {
                invalidText = true;
                return null;
            }
        }

        // ---- FHIR resources.

        /// <summary>Reads the resource the reader is on (refusing what is not one), keeping its JSON beside it when
        /// <paramref name="keepSource"/> (orders: a suggestion returns the whole order) or when it is a paged Bundle
        /// (the FHIR fallback caches the pages it completes it with as JSON).</summary>
        public FhirRecord? Resource(At at, bool keepSource)
        {
            var start = ValueStart;
            if (ResourceType(at) is not { } type)
            {
                Skip();
                return null;
            }

            Open();
            FhirRecord resource =
                type == typeof(Bundle) ? Bundle(at, keepSource)
                : type == typeof(MedicationRequest) ? MedicationRequest(at)
                : type == typeof(MedicationStatement) ? MedicationStatement(at)
                : type == typeof(Condition) ? Condition(at)
                : type == typeof(Patient) ? Patient(at)
                : type == typeof(Medication) ? Medication(at)
                // A type no rule reads (an OperationOutcome, an Observation in a Bundle): its type and id only.
                : IdOnly(at, type);
            if ((keepSource && resource is not BundleRecord) || resource is BundleRecord { Next: not null })
            {
                resource.KeepSource(TextFrom(start).ToArray());
            }

            return resource;
        }

        /// <summary>The concrete FHIR R4 resource type the object the reader is on declares in <c>resourceType</c>, found
        /// by looking ahead in it (FHIR puts it first, JSON does not have to), or null with the problem added.</summary>
        private readonly Type? ResourceType(At at)
        {
            if (_reader.TokenType != JsonTokenType.StartObject)
            {
                _issues.Add(new RequestIssue(at.ToString(), "invalid-type", "Expected a FHIR resource (a JSON object)."));
                return null;
            }

            var ahead = _reader;
            string? typeName = null;
            var found = false;
            while (ahead.Read() && ahead.TokenType == JsonTokenType.PropertyName)
            {
                var isType = ahead.ValueTextEquals("resourceType"u8);
                ahead.Read();
                if (isType && ahead.TokenType == JsonTokenType.String)
                {
                    // The types the rules read, by their UTF-8 (no string made, no lookup); any other by its name. An
                    // escaped name takes the long way: comparing it unescapes it, which throws on a lone surrogate.
                    if (!ahead.ValueIsEscaped && Frequent(ref ahead) is { } frequent) return frequent;
                    found = true;
                    try
                    {
                        typeName = ahead.GetString();
                    }
                    catch (InvalidOperationException)
                    {
                        typeName = ""; // a lone surrogate or invalid UTF-8: no FHIR type has such a name
                    }

                    break;
                }

                if (isType) break;
                ahead.Skip();
            }

            if (!found)
            {
                _issues.Add(new RequestIssue(at.ToString(), "invalid-resource", "A FHIR resource needs a 'resourceType' string."));
                return null;
            }

            if (ResourceTypes.Find(typeName!) is not { } concrete)
            {
                _issues.Add(new RequestIssue($"{at}.resourceType", "invalid-resource", "Not a concrete FHIR R4 resource type."));
                return null;
            }

            return concrete;
        }

        private static Type? Frequent(ref Utf8JsonReader reader) =>
            reader.ValueTextEquals("MedicationRequest"u8) ? typeof(MedicationRequest)
            : reader.ValueTextEquals("Condition"u8) ? typeof(Condition)
            : reader.ValueTextEquals("Bundle"u8) ? typeof(Bundle)
            : reader.ValueTextEquals("MedicationStatement"u8) ? typeof(MedicationStatement)
            : reader.ValueTextEquals("Patient"u8) ? typeof(Patient)
            : reader.ValueTextEquals("Medication"u8) ? typeof(Medication)
            : null;

        // Orders come in a Bundle too: each keeps its JSON.
        private BundleRecord Bundle(At at, bool keepSource)
        {
            string? id = null, next = null;
            var nextFound = false;
            var entries = new List<FhirRecord?>();
            var seen = 0;
            while (Next(out var name))
            {
                switch (Slot(name, BundleNames, ref seen, at))
                {
                    case 0:
                        id = Text(at, "id", Literal.Id);
                        break;
                    case 1:
                        for (var i = 0; Item(at, "link", ref i, out var linkAt);)
                        {
                            string? relation = null, url = null;
                            for (var linkSeen = 0; Next(out var linkName);)
                            {
                                switch (Slot(linkName, LinkNames, ref linkSeen, linkAt))
                                {
                                    case 0: relation = Text(linkAt, "relation", Literal.String); break;
                                    case 1: url = Text(linkAt, "url", Literal.Uri); break;
                                    default: Skip(); break;
                                }
                            }

                            // The first link whose relation is "next" is the next page's, with its url or without one.
                            if (!nextFound && relation == "next")
                            {
                                nextFound = true;
                                next = url;
                            }
                        }

                        break;
                    case 2:
                        for (var i = 0; Item(at, "entry", ref i, out var entryAt);)
                        {
                            FhirRecord? resource = null;
                            for (var entrySeen = 0; Next(out var entryName);)
                            {
                                // A value that is not an object is refused as an element of the wrong shape, as by Firely.
                                if (Slot(entryName, EntryNames, ref entrySeen, entryAt) != 0) Skip();
                                else if (_reader.TokenType == JsonTokenType.StartObject) resource = Resource(entryAt.Then("resource"), keepSource);
                                else Object(entryAt, "resource");
                            }

                            entries.Add(resource);
                        }

                        break;
                    default:
                        Skip();
                        break;
                }
            }

            return new BundleRecord(id, next, entries);
        }

        private OtherRecord IdOnly(At at, Type type)
        {
            string? id = null;
            for (var seen = 0; Next(out var name);)
            {
                if (Slot(name, IdNames, ref seen, at) == 0) id = Text(at, "id", Literal.Id);
                else Skip();
            }

            // A resource class has the resource's name (ResourceTypes).
            return new OtherRecord(type.Name, id);
        }

        private PatientRecord Patient(At at)
        {
            string? id = null, birthDate = null;
            for (var seen = 0; Next(out var name);)
            {
                switch (Slot(name, PatientNames, ref seen, at))
                {
                    case 0: id = Text(at, "id", Literal.Id); break;
                    case 1: birthDate = Text(at, "birthDate", Literal.Date); break;
                    default: Skip(); break;
                }
            }

            return new PatientRecord(id, birthDate);
        }

        private RequestRecord MedicationRequest(At at)
        {
            string? id = null, status = null, intent = null, validityEnd = null;
            string? lastUpdated = null;
            Drug drug = default;
            IReadOnlyList<FhirRecord> contained = [];
            var dosages = new Items<DosageRecord>();
            var medication = 0;
            for (var seen = 0; Next(out var name);)
            {
                switch (Slot(name, RequestNames, ref seen, at))
                {
                    case 0: id = Text(at, "id", Literal.Id); break;
                    case 1: NoSuffix(at, "medication"); break;
                    case 2: if (One(ref medication, at, "medicationCodeableConcept") && Concept(at, "medicationCodeableConcept") is { } concept) drug = new Drug(concept, null); break;
                    case 3: if (One(ref medication, at, "medicationCodeableConcept") && Reference(at, "medicationReference") is { } reference) drug = new Drug(null, reference); break;
                    case 4: status = Text(at, "status", Literal.Code); break;
                    case 5: intent = Text(at, "intent", Literal.Code); break;
                    case 6: contained = Contained(at); break;
                    case 7:
                        for (var i = 0; Item(at, "dosageInstruction", ref i, out var dosageAt);) dosages.Add(Dosage(dosageAt));
                        break;
                    case 8 when Object(at, "dispenseRequest"):
                        var dispenseAt = at.Then("dispenseRequest");
                        for (var dispenseSeen = 0; Next(out var dispenseName);)
                        {
                            if (Slot(dispenseName, DispenseNames, ref dispenseSeen, dispenseAt) == 0 && Object(dispenseAt, "validityPeriod"))
                            {
                                validityEnd = Period(at.Then("dispenseRequest.validityPeriod"));
                            }
                            else
                            {
                                Skip();
                            }
                        }

                        break;
                    case 9 when Object(at, "meta"):
                        var metaAt = at.Then("meta");
                        for (var metaSeen = 0; Next(out var metaName);)
                        {
                            if (Slot(metaName, MetaNames, ref metaSeen, metaAt) != 0) Skip();
                            else lastUpdated = Text(metaAt, "lastUpdated", Literal.Instant);
                        }

                        break;
                    case 8 or 9: break;
                    default: Skip(); break;
                }
            }

            return new RequestRecord(id, status, intent, drug, contained, dosages.ToArray(), validityEnd, lastUpdated);
        }

        private StatementRecord MedicationStatement(At at)
        {
            string? id = null, status = null, effectiveEnd = null;
            Drug drug = default;
            IReadOnlyList<FhirRecord> contained = [];
            var dosages = new Items<DosageRecord>();
            var medication = 0;
            var effective = 0;
            for (var seen = 0; Next(out var name);)
            {
                switch (Slot(name, StatementNames, ref seen, at))
                {
                    case 0: id = Text(at, "id", Literal.Id); break;
                    case 1: NoSuffix(at, "medication"); break;
                    case 2: if (One(ref medication, at, "medicationCodeableConcept") && Concept(at, "medicationCodeableConcept") is { } concept) drug = new Drug(concept, null); break;
                    case 3: if (One(ref medication, at, "medicationCodeableConcept") && Reference(at, "medicationReference") is { } reference) drug = new Drug(null, reference); break;
                    case 4: status = Text(at, "status", Literal.Code); break;
                    case 5: contained = Contained(at); break;
                    case 6:
                        for (var i = 0; Item(at, "dosage", ref i, out var dosageAt);) dosages.Add(Dosage(dosageAt));
                        break;
                    case 7: NoSuffix(at, "effective"); break;
                    case 8:
                        if (One(ref effective, at, "effectiveDateTime")) effectiveEnd = Text(at, "effectiveDateTime", Literal.DateTime);
                        break;
                    case 9:
                        if (One(ref effective, at, "effectiveDateTime") && Object(at, "effectivePeriod")) effectiveEnd = Period(at.Then("effectivePeriod"));
                        break;
                    default: Skip(); break;
                }
            }

            return new StatementRecord(id, status, drug, contained, dosages.ToArray(), effectiveEnd);
        }

        private ConditionRecord Condition(At at)
        {
            string? id = null;
            Concept? clinicalStatus = null, verificationStatus = null, code = null;
            for (var seen = 0; Next(out var name);)
            {
                switch (Slot(name, ConditionNames, ref seen, at))
                {
                    case 0: id = Text(at, "id", Literal.Id); break;
                    case 1: clinicalStatus = Concept(at, "clinicalStatus"); break;
                    case 2: verificationStatus = Concept(at, "verificationStatus"); break;
                    case 3: code = Concept(at, "code"); break;
                    default: Skip(); break;
                }
            }

            return new ConditionRecord(id, clinicalStatus, verificationStatus, code);
        }

        private MedicationRecord Medication(At at)
        {
            string? id = null;
            Concept? code = null;
            var ingredients = new Items<Concept?>();
            for (var seen = 0; Next(out var name);)
            {
                switch (Slot(name, MedicationNames, ref seen, at))
                {
                    case 0: id = Text(at, "id", Literal.Id); break;
                    case 1: code = Concept(at, "code"); break;
                    case 2:
                        for (var i = 0; Item(at, "ingredient", ref i, out var ingredientAt);)
                        {
                            // An ingredient given by reference is read, and held to the policy, but names no code.
                            Concept? ingredient = null;
                            var item = 0;
                            for (var ingredientSeen = 0; Next(out var ingredientName);)
                            {
                                switch (Slot(ingredientName, IngredientNames, ref ingredientSeen, ingredientAt))
                                {
                                    case 0: NoSuffix(ingredientAt, "item"); break;
                                    case 1: if (One(ref item, ingredientAt, "itemCodeableConcept")) ingredient = Concept(ingredientAt, "itemCodeableConcept"); break;
                                    case 2: if (One(ref item, ingredientAt, "itemCodeableConcept")) Reference(ingredientAt, "itemReference"); break;
                                    default: Skip(); break;
                                }
                            }

                            ingredients.Add(ingredient);
                        }

                        break;
                    default:
                        Skip();
                        break;
                }
            }

            return new MedicationRecord(id, code, ingredients.ToArray());
        }

        // Contained Medications are read (a "#med1" reference resolves to one); other contained resources by type only.
        private List<FhirRecord> Contained(At at)
        {
            var contained = new List<FhirRecord>();
            // Item opens each object: a resource refused is read to its end unread.
            for (var i = 0; Item(at, "contained", ref i, out var resourceAt);)
            {
                if (ResourceType(resourceAt) is { } type) contained.Add(type == typeof(Medication) ? Medication(resourceAt) : IdOnly(resourceAt, type));
                else while (Next(out _)) Skip();
            }

            return contained;
        }

        private DosageRecord Dosage(At at)
        {
            string? text = null;
            RepeatRecord? repeat = null;
            var asNeeded = false;
            var doses = new Items<DoseRecord>();
            RatioRecord? max = null;
            var asNeededTypes = 0;
            for (var seen = 0; Next(out var name);)
            {
                switch (Slot(name, DosageNames, ref seen, at))
                {
                    case 0: text = Text(at, "text", Literal.String); break;
                    case 1 when Object(at, "timing"):
                        var timingAt = at.Then("timing");
                        for (var timingSeen = 0; Next(out var timingName);)
                        {
                            if (Slot(timingName, TimingNames, ref timingSeen, timingAt) == 0 && Object(timingAt, "repeat")) repeat = Repeat(at.Then("timing.repeat"));
                            else Skip();
                        }

                        break;
                    case 2: NoSuffix(at, "asNeeded"); break;
                    case 3:
                        if (One(ref asNeededTypes, at, "asNeededBoolean")) asNeeded = Boolean(at, "asNeededBoolean") is true;
                        break;
                    // Any as-needed reason makes the dosage as needed.
                    case 4: if (One(ref asNeededTypes, at, "asNeededBoolean")) asNeeded = Concept(at, "asNeededCodeableConcept") is not null; break;
                    case 5:
                        for (var i = 0; Item(at, "doseAndRate", ref i, out var doseAt);)
                        {
                            DoseRecord dose = default;
                            var doseTypes = 0;
                            for (var doseSeen = 0; Next(out var doseName);)
                            {
                                switch (Slot(doseName, DoseNames, ref doseSeen, doseAt))
                                {
                                    case 0: NoSuffix(doseAt, "dose"); break;
                                    case 1:
                                        if (One(ref doseTypes, doseAt, "doseQuantity") && Object(doseAt, "doseQuantity")) dose = new DoseRecord(Quantity(doseAt.Then("doseQuantity")), false);
                                        break;
                                    case 2:
                                        if (One(ref doseTypes, doseAt, "doseQuantity") && Object(doseAt, "doseRange")) dose = new DoseRecord(RangeHigh(doseAt.Then("doseRange")), true);
                                        break;
                                    default: Skip(); break;
                                }
                            }

                            doses.Add(dose);
                        }

                        break;
                    case 6 when Object(at, "maxDosePerPeriod"):
                        var maxAt = at.Then("maxDosePerPeriod");
                        QuantityRecord? numerator = null, denominator = null;
                        for (var ratioSeen = 0; Next(out var ratioName);)
                        {
                            switch (Slot(ratioName, RatioNames, ref ratioSeen, maxAt))
                            {
                                case 0 when Object(maxAt, "numerator"): numerator = Quantity(at.Then("maxDosePerPeriod.numerator")); break;
                                case 1 when Object(maxAt, "denominator"): denominator = Quantity(at.Then("maxDosePerPeriod.denominator")); break;
                                case 0 or 1: break;
                                default: Skip(); break;
                            }
                        }

                        max = new RatioRecord(numerator, denominator);
                        break;
                    case 1 or 6: break;
                    default: Skip(); break;
                }
            }

            return new DosageRecord(text, repeat, asNeeded, doses.ToArray(), max);
        }

        private RepeatRecord Repeat(At at)
        {
            int? frequency = null, frequencyMax = null;
            decimal? period = null;
            string? periodUnit = null, boundsEnd = null;
            var namedTimes = 0;
            var bounds = 0;
            List<int>? nulls = null;
            var placeholders = false;
            for (var seen = 0; Next(out var name);)
            {
                switch (Slot(name, RepeatNames, ref seen, at))
                {
                    case 0: frequency = PositiveInt(at, "frequency"); break;
                    case 1: frequencyMax = PositiveInt(at, "frequencyMax"); break;
                    case 2: period = Decimal(at, "period"); break;
                    case 3: periodUnit = Text(at, "periodUnit", Literal.Code); break;
                    case 4: NoSuffix(at, "bounds"); break;
                    case 5:
                        if (One(ref bounds, at, "boundsPeriod") && Object(at, "boundsPeriod")) boundsEnd = Period(at.Then("boundsPeriod"));
                        break;
                    case 6 or 7:
                        if (One(ref bounds, at, "boundsPeriod")) Skip();
                        break;
                    case 8:
                        if (_reader.TokenType != JsonTokenType.StartArray)
                        {
                            Problem($"{at}.when", Hl7.Fhir.Validation.CodedValidationException.PROPERTY_TYPE_MISMATCH_CODE);
                            Skip();
                            break;
                        }

                        for (var i = 0; _reader.Read() && _reader.TokenType != JsonTokenType.EndArray; i++)
                        {
                            // A null is FHIR's placeholder for a value that has only an extension, in "_when".
                            if (_reader.TokenType == JsonTokenType.Null) (nulls ??= []).Add(i);
                            else if (Text(at, $"when[{i}]", Literal.Code) is not null) namedTimes++;
                        }

                        break;
                    case 9:
                        placeholders = true;
                        Skip();
                        break;
                    default: Skip(); break;
                }
            }

            if (nulls is not null && !placeholders)
            {
                foreach (var i in nulls) Problem(at, $"when[{i}]", FhirJsonException.PRIMITIVE_ARRAYS_ONLY_NULL_CODE);
            }

            return new RepeatRecord(frequency, frequencyMax, period, periodUnit, boundsEnd, namedTimes);
        }

        /// <summary>A Period: its end (the only element read).</summary>
        private string? Period(At at)
        {
            string? end = null;
            for (var seen = 0; Next(out var name);)
            {
                if (Slot(name, PeriodNames, ref seen, at) == 0) end = Text(at, "end", Literal.DateTime);
                else Skip();
            }

            return end;
        }

        private QuantityRecord Quantity(At at)
        {
            decimal? value = null;
            string? unit = null, code = null;
            for (var seen = 0; Next(out var name);)
            {
                switch (Slot(name, QuantityNames, ref seen, at))
                {
                    case 0: value = Decimal(at, "value"); break;
                    case 1: unit = Text(at, "unit", Literal.String); break;
                    case 2: Text(at, "system", Literal.Uri); break; // held to the policy; no rule reads it
                    case 3: code = Text(at, "code", Literal.Code); break;
                    default: Skip(); break;
                }
            }

            return new QuantityRecord(value, unit, code);
        }

        /// <summary>A Range: its high end (the low end is read and held to the policy; the dose counts the high one).</summary>
        private QuantityRecord? RangeHigh(At at)
        {
            QuantityRecord? high = null;
            for (var seen = 0; Next(out var name);)
            {
                switch (Slot(name, RangeNames, ref seen, at))
                {
                    case 0 when Object(at, "low"): Quantity(at.Then("low")); break;
                    case 1 when Object(at, "high"): high = Quantity(at.Then("high")); break;
                    case 0 or 1: break;
                    default: Skip(); break;
                }
            }

            return high;
        }

        private Concept? Concept(At parent, string name)
        {
            if (!Object(parent, name)) return null;
            var at = parent.Then(name);
            string? text = null;
            var codings = new Items<CodingRecord>();
            for (var seen = 0; Next(out var property);)
            {
                switch (Slot(property, ConceptNames, ref seen, at))
                {
                    case 0: text = Text(at, "text", Literal.String); break;
                    case 1:
                        for (var i = 0; Item(at, "coding", ref i, out var codingAt);)
                        {
                            string? system = null, code = null, display = null;
                            for (var codingSeen = 0; Next(out var codingName);)
                            {
                                switch (Slot(codingName, CodingNames, ref codingSeen, codingAt))
                                {
                                    case 0: system = Text(codingAt, "system", Literal.Uri); break;
                                    case 1: code = Text(codingAt, "code", Literal.Code); break;
                                    case 2: display = Text(codingAt, "display", Literal.String); break;
                                    default: Skip(); break;
                                }
                            }

                            codings.Add(new CodingRecord(system, code, display));
                        }

                        break;
                    default:
                        Skip();
                        break;
                }
            }

            return new Concept(text, codings.ToArray());
        }

        private Reference? Reference(At parent, string name)
        {
            if (!Object(parent, name)) return null;
            var at = parent.Then(name);
            string? value = null, display = null;
            for (var seen = 0; Next(out var property);)
            {
                switch (Slot(property, ReferenceNames, ref seen, at))
                {
                    case 0: value = Text(at, "reference", Literal.String); break;
                    case 1: display = Text(at, "display", Literal.String); break;
                    default: Skip(); break;
                }
            }

            return new Reference(value, display);
        }

        // ---- JSON shapes: each refuses what FhirJson refuses, with the same messages.

        /// <summary>Which of the <paramref name="known"/> names this property has (its position), or -1 for one not
        /// read. FHIR names are case-sensitive, but Firely reads "Status" as "status" (backwards compatibility), and so
        /// does this reader: skipping it would lose what Firely would have read. The same element twice under names that
        /// differ in case is refused, with the element's name (a duplicate spelled the same is refused by
        /// <see cref="JsonNames"/>); the value is skipped then, and -1 returned.</summary>
        private int Slot(ReadOnlySpan<byte> name, byte[][] known, ref int seen, At at)
        {
            System.Diagnostics.Debug.Assert(known.Length <= 32, "seen holds one bit per name");
            var slot = -1;
            for (var i = 0; i < known.Length; i++)
            {
                if (known[i].Length != name.Length) continue;
                if (name.SequenceEqual(known[i]))
                {
                    slot = i;
                    break;
                }

                if (slot < 0 && System.Text.Ascii.EqualsIgnoreCase(name, known[i])) slot = i;
            }

            if (slot < 0) return -1;
            if ((seen & (1 << slot)) == 0)
            {
                seen |= 1 << slot;
                return slot;
            }

            _issues.Add(new RequestIssue($"{at}.{System.Text.Encoding.UTF8.GetString(known[slot])}", "invalid-fhir", FhirJson.Describe(FhirJsonException.DUPLICATE_PROPERTY_CODE)));
            Skip();
            return -1;
        }

        /// <summary>A choice element (<c>medication[x]</c>, <c>dose[x]</c>) holds one type, named in its suffix: two
        /// types are refused, as Firely refuses them, rather than one read and the other ignored. True for the choice's
        /// first type (<paramref name="types"/> counts them); for another, the problem is added once, at
        /// <paramref name="first"/> (the choice's first type's name), the value skipped, and false returned.</summary>
        private bool One(ref int types, At at, string first)
        {
            if (++types == 1) return true;
            if (types == 2) _issues.Add(new RequestIssue($"{at}.{first}", "invalid-fhir", FhirJson.Describe(FhirJsonException.DUPLICATE_PROPERTY_CODE)));
            Skip();
            return false;
        }

        /// <summary>"medication": {...} without its type: Firely refuses it, and skipping it would hide the drug.</summary>
        private void NoSuffix(At at, string choice)
        {
            _issues.Add(new RequestIssue($"{at}.{choice}", "invalid-fhir", FhirJson.Describe(FhirJsonException.CHOICE_ELEMENT_MUST_HAVE_SUFFIX_CODE)));
            Skip();
        }

        /// <summary>The next object item of the array element the reader is on, opened, with its location; false at the
        /// array's end. The first call (<paramref name="index"/> 0) checks that the value is an array; items that are not
        /// objects are refused and skipped.</summary>
        private bool Item(At at, string name, ref int index, out At itemAt)
        {
            itemAt = null!;
            if (index == 0)
            {
                if (_reader.TokenType != JsonTokenType.StartArray)
                {
                    Problem($"{at}.{name}", _reader.TokenType == JsonTokenType.Null
                        ? FhirJsonException.EXPECTED_PRIMITIVE_NOT_NULL_CODE
                        : Hl7.Fhir.Validation.CodedValidationException.PROPERTY_TYPE_MISMATCH_CODE);
                    Skip();
                    return false;
                }
            }

            while (_reader.Read() && _reader.TokenType != JsonTokenType.EndArray)
            {
                var i = index++;
                if (_reader.TokenType == JsonTokenType.StartObject)
                {
                    Open();
                    itemAt = at.Item(name, i);
                    return true;
                }

                Problem(at.Item(name, i).ToString(), _reader.TokenType switch
                {
                    JsonTokenType.StartArray => FhirJsonException.NESTED_ARRAY_CODE,
                    JsonTokenType.Null => FhirJsonException.PRIMITIVE_ARRAYS_ONLY_NULL_CODE,
                    _ => FhirJsonException.UNEXPECTED_PRIMITIVE_VALUE_FOR_NON_PRIMITIVE_CODE,
                });
                Skip();
            }

            return false;
        }

        /// <summary>A complex element: true, with the object opened, when the value is a JSON object; otherwise the
        /// problem is added and the value skipped.</summary>
        private bool Object(At at, string name)
        {
            if (_reader.TokenType == JsonTokenType.StartObject)
            {
                Open();
                return true;
            }

            Problem($"{at}.{name}", _reader.TokenType == JsonTokenType.StartArray
                ? Hl7.Fhir.Validation.CodedValidationException.PROPERTY_TYPE_MISMATCH_CODE
                : FhirJsonException.UNEXPECTED_PRIMITIVE_VALUE_FOR_NON_PRIMITIVE_CODE);
            Skip();
            return false;
        }

        // Locations are built only for a problem: most requests have none, and a hook call reads hundreds of values.
        private string? Text(At at, string name, Literal literal)
        {
            if (!IsPrimitive(at, name, JsonTokenType.String)) return null;
            if (literal != Literal.String && Remembered(literal) is var (known, valid))
            {
                if (valid) return known;
                Problem(at, name, Hl7.Fhir.Validation.CodedValidationException.LITERAL_INVALID_CODE);
                return null;
            }

            if (String(out _) is not { } text)
            {
                _issues.Add(new RequestIssue($"{at}.{name}", "invalid-fhir", "Value is not valid Unicode text."));
                return null;
            }

            // FHIR strings are never empty; Firely refuses "" for every primitive.
            if (text.Length > 0 && (literal == Literal.String || IsValid(literal, text))) return text;
            Problem(at, name, Hl7.Fhir.Validation.CodedValidationException.LITERAL_INVALID_CODE);
            return null;
        }

        /// <summary>A code, URI, id or date already checked: the string kept then and whether it was valid, found from the
        /// value's UTF-8 without making a new string (the same codes and systems come in every request, and were a fifth
        /// of its strings). Null for a value not remembered, escaped, or not valid UTF-8: the caller reads it as usual.</summary>
        private readonly (string Text, bool Valid)? Remembered(Literal literal)
        {
            var raw = _reader.ValueSpan;
            if (_reader.ValueIsEscaped || raw.Length is 0 or > MaxRememberedLength) return null;
            Span<char> chars = stackalloc char[raw.Length]; // UTF-8 never takes fewer bytes than UTF-16 takes chars
            if (System.Text.Unicode.Utf8.ToUtf16(raw, chars, out _, out var length, replaceInvalidSequences: false)
                != System.Buffers.OperationStatus.Done)
            {
                return null;
            }

            return ValidatedBySpan[(int)literal].TryGetValue(chars[..length], out var text, out var valid)
                ? (text, valid)
                : null;
        }

        // Firely's literal checks are regular expressions (run interpreted) and System.Uri parsing; the same few codes
        // and systems ("active", "mg", the RxNorm URI) come in every request, so answers are remembered, up to a bound
        // that random values cannot grow past.
        private static bool IsValid(Literal literal, string text)
        {
            var known = Validated[(int)literal];
            if (known.TryGetValue(text, out var valid)) return valid;
            valid = literal switch
            {
                Literal.Code => Code.IsValidValue(text),
                Literal.Uri => FhirUri.IsValidValue(text),
                Literal.Id => Id.IsValidValue(text),
                Literal.Date => Date.IsValidValue(text),
                Literal.DateTime => FhirDateTime.IsValidValue(text),
                Literal.Instant => Instant.IsValidValue(text),
                _ => true,
            };
            known.Remember(text, valid);
            return valid;
        }

        private decimal? Decimal(At at, string name)
        {
            if (!IsPrimitive(at, name, JsonTokenType.Number)) return null;
            if (_reader.TryGetDecimal(out var number)) return number;
            Problem(at, name, Hl7.Fhir.Validation.CodedValidationException.LITERAL_INVALID_CODE);
            return null;
        }

        // positiveInt, the only integer type read (frequency, frequencyMax).
        private int? PositiveInt(At at, string name)
        {
            if (!IsPrimitive(at, name, JsonTokenType.Number)) return null;
            if (_reader.TryGetInt32(out var number) && number > 0) return number;
            Problem(at, name, Hl7.Fhir.Validation.CodedValidationException.LITERAL_INVALID_CODE);
            return null;
        }

        private bool? Boolean(At at, string name)
        {
            if (_reader.TokenType is JsonTokenType.True or JsonTokenType.False) return _reader.GetBoolean();
            IsPrimitive(at, name, JsonTokenType.True);
            return null;
        }

        /// <summary>True when the value is of the expected JSON kind; otherwise the problem is added and the value
        /// skipped.</summary>
        private bool IsPrimitive(At at, string name, JsonTokenType expected)
        {
            if (_reader.TokenType == expected) return true;
            Problem(at, name, _reader.TokenType switch
            {
                JsonTokenType.Null => FhirJsonException.EXPECTED_PRIMITIVE_NOT_NULL_CODE,
                JsonTokenType.StartObject => FhirJsonException.UNEXPECTED_OBJECT_VALUE_FOR_PRIMITIVE_CODE,
                JsonTokenType.StartArray => Hl7.Fhir.Validation.CodedValidationException.PROPERTY_TYPE_MISMATCH_CODE,
                _ => Hl7.Fhir.Validation.CodedValidationException.INCORRECT_LITERAL_VALUE_TYPE_CODE,
            });
            Skip();
            return false;
        }

        private readonly void Problem(string location, string code) => _issues.Add(new RequestIssue(location, "invalid-fhir", FhirJson.Describe(code)));

        private readonly void Problem(At at, string name, string code) => Problem($"{at}.{name}", code);
    }
}
