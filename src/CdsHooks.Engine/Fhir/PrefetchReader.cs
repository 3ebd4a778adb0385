using System.Text.Json;
using Hl7.Fhir.Model;
using Hl7.Fhir.Serialization;

namespace CdsHooks.Engine.Fhir;

/// <summary>
/// Reads the resources of a hook request (prefetch: the patient, the Bundles of medications, statements and
/// conditions; and the orders being placed), and the FHIR server's answers that complete prefetch, into Firely's model
/// with only the elements the engine reads: ids, statuses, codes, <c>medication[x]</c>, contained Medications, dosage,
/// the dates that say when a medication ended, the birth date, Bundle links. Everything else is skipped unread. Firely's full deserialization of every element
/// was two thirds of a hook call's CPU and most of its allocations (docs/performance.md). An order keeps its JSON
/// beside it, and <see cref="Whole{T}"/> parses it whole with Firely when a suggestion returns it.
/// <para>The elements read are held to the policy of <see cref="FhirJson"/>: a wrong JSON type, a wrong shape (one value
/// versus an array), a null, an empty string, an unparsable literal (Firely's own <c>IsValidValue</c> for id, code, uri,
/// date, dateTime, instant and positiveInt), a choice element with two types or none, or a resource type FHIR R4 does
/// not know is refused with its location. An element that is not read cannot change a card, so its problems are not
/// refused. <c>PrefetchReaderTests</c> holds this reader to Firely's: where Firely accepts, the same patient or a
/// refusal; where Firely refuses and this reader accepts, the patient without the problem.</para>
/// </summary>
public static class PrefetchReader
{
    public static Resource? ReadResource(JsonElement element, string location, ICollection<RequestIssue> issues)
    {
        var type = FhirJson.ResourceTypeOf(element, location, issues);
        return type is null ? null : new Reader(issues, keepSource: false).Resource(element, At.Root(location), type);
    }

    /// <summary>Reads orders being placed (a resource, or a Bundle of them) like prefetch, and keeps each resource's
    /// JSON beside it: a suggestion that changes an order returns the whole order (<see cref="Whole{T}"/>), every
    /// element the EHR sent included.</summary>
    public static Resource? ReadOrders(JsonElement element, string location, ICollection<RequestIssue> issues)
    {
        var type = FhirJson.ResourceTypeOf(element, location, issues);
        return type is null ? null : new Reader(issues, keepSource: true).Resource(element, At.Root(location), type);
    }

    /// <summary>The whole resource for one this reader read: parsed by Firely from the JSON kept beside it (once, however
    /// many suggestions ask), or null when Firely refuses that JSON. A resource read some other way is returned as it
    /// is. Callers copy before they change it.</summary>
    public static T? Whole<T>(T resource) where T : Resource =>
        resource.Annotations(typeof(SourceJson)).FirstOrDefault() is SourceJson source ? source.Whole.Value as T : resource;

    /// <summary>The JSON a resource was read from, when this reader kept it (orders, and paged Bundles).</summary>
    internal static byte[]? SourceOf(Resource resource) =>
        resource.Annotations(typeof(SourceJson)).FirstOrDefault() is SourceJson source ? source.Utf8 : null;

    private sealed class SourceJson(byte[] utf8)
    {
        public byte[] Utf8 => utf8;

        public Lazy<Resource?> Whole { get; } = new(() =>
        {
            using var document = JsonDocument.Parse(utf8);
            return FhirJson.ReadResource(document.RootElement, "order", []);
        });
    }

    private enum Literal { String, Code, Uri, Id, Date, DateTime, Instant }

    private const int MaxRemembered = 4096;

    private const int MaxRememberedLength = 256;

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool>[] Validated =
        [.. Enum.GetValues<Literal>().Select(_ => new System.Collections.Concurrent.ConcurrentDictionary<string, bool>(StringComparer.Ordinal))];

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool>.AlternateLookup<ReadOnlySpan<char>>[] ValidatedBySpan =
        [.. Validated.Select(d => d.GetAlternateLookup<ReadOnlySpan<char>>())];

    /// <summary>Where a value is in the request ("prefetch.medications.entry[2].resource.dosageInstruction[0]"), made
    /// into text only for a problem: most requests have none, and building every location as a string was a third of
    /// the reader's allocations (docs/performance.md).</summary>
    private sealed class At
    {
        private readonly At? _parent;
        private readonly string _name;
        private readonly int _index;
        private string? _text;

        private At(At? parent, string name, int index)
        {
            _parent = parent;
            _name = name;
            _index = index;
        }

        public static At Root(string location) => new(null, location, -1);

        /// <summary>A property below this one; <paramref name="name"/> may name a path ("timing.repeat").</summary>
        public At Then(string name) => new(this, name, -1);

        public At Item(string name, int index) => new(this, name, index);

        public override string ToString() => _text ??=
            _parent is null ? _name
            : _index < 0 ? $"{_parent}.{_name}"
            : $"{_parent}.{_name}[{_index.ToString(System.Globalization.CultureInfo.InvariantCulture)}]";
    }

    /// <summary>The object items of an array, each with its location (<c>foreach (var (item, at) in ...)</c>); the
    /// default value has none.</summary>
    private readonly struct Items(JsonElement array, string name, At? at)
    {
        public Enumerator GetEnumerator() => new(at is null ? default : array.EnumerateArray(), name, at);

        public struct Enumerator(JsonElement.ArrayEnumerator items, string name, At? at)
        {
            private JsonElement.ArrayEnumerator _items = items;
            private int _index = -1;

            public (JsonElement Item, At At) Current { get; private set; }

            public bool MoveNext()
            {
                if (at is null) return false;
                while (_items.MoveNext())
                {
                    _index++;
                    if (_items.Current.ValueKind != JsonValueKind.Object) continue; // refused by Reader.Items
                    Current = (_items.Current, at.Item(name, _index));
                    return true;
                }

                return false;
            }
        }
    }

    private readonly struct Reader(ICollection<RequestIssue> issues, bool keepSource)
    {
        public Resource Resource(JsonElement e, At at, Type type)
        {
            Resource resource =
                type == typeof(Bundle) ? Bundle(e, at)
                : type == typeof(MedicationRequest) ? MedicationRequest(e, at)
                : type == typeof(MedicationStatement) ? MedicationStatement(e, at)
                : type == typeof(Condition) ? Condition(e, at)
                : type == typeof(Patient) ? Patient(e, at)
                : type == typeof(Medication) ? Medication(e, at)
                // A type no rule reads (an OperationOutcome, an Observation in a Bundle): its type and id only.
                : (Resource)Activator.CreateInstance(type)!;
            resource.Id = Primitive(e, "id", at, Literal.Id);
            // A paged Bundle keeps its JSON too: the FHIR fallback caches the pages it completes it with as JSON.
            if ((keepSource && resource is not Hl7.Fhir.Model.Bundle) || (resource is Bundle paged && paged.Link.Exists(l => l.Relation == "next")))
            {
                resource.AddAnnotation(new SourceJson(System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(e).ToArray()));
            }

            return resource;
        }

        private Bundle Bundle(JsonElement e, At at)
        {
            var bundle = new Bundle();
            foreach (var (link, linkAt) in Items(e, "link", at))
            {
                bundle.Link.Add(new Bundle.LinkComponent
                {
                    Relation = Primitive(link, "relation", linkAt, Literal.String),
                    Url = Primitive(link, "url", linkAt, Literal.Uri),
                });
            }

            foreach (var (entry, entryAt) in Items(e, "entry", at))
            {
                var component = new Bundle.EntryComponent();
                if (Object(entry, "resource", entryAt, out var resource))
                {
                    var resourceAt = entryAt.Then("resource");
                    if (FhirJson.ResourceTypeOf(resource, resourceAt, issues) is { } resourceType) component.Resource = Resource(resource, resourceAt, resourceType);
                }

                bundle.Entry.Add(component);
            }

            return bundle;
        }

        private Patient Patient(JsonElement e, At at)
        {
            var patient = new Patient();
            if (Primitive(e, "birthDate", at, Literal.Date) is { } birthDate) patient.BirthDateElement = new Date(birthDate);
            return patient;
        }

        private MedicationRequest MedicationRequest(JsonElement e, At at)
        {
            var request = new MedicationRequest();
            if (MedicationChoice(e, at) is { } medication) request.Medication = medication;
            if (Primitive(e, "status", at, Literal.Code) is { } status) request.StatusElement = new() { JsonValue = status };
            if (Primitive(e, "intent", at, Literal.Code) is { } intent) request.IntentElement = new() { JsonValue = intent };
            Contained(e, at, request.Contained);
            foreach (var (dosage, dosageAt) in Items(e, "dosageInstruction", at)) request.DosageInstruction.Add(Dosage(dosage, dosageAt));
            if (Object(e, "dispenseRequest", at, out var dispense) && Object(dispense, "validityPeriod", at.Then("dispenseRequest"), out var validity))
            {
                request.DispenseRequest = new MedicationRequest.DispenseRequestComponent { ValidityPeriod = Period(validity, at.Then("dispenseRequest.validityPeriod")) };
            }

            if (Object(e, "meta", at, out var meta) && Primitive(meta, "lastUpdated", at.Then("meta"), Literal.Instant) is { } updated)
            {
                request.Meta = new Meta { LastUpdatedElement = new Instant { JsonValue = updated } };
            }

            return request;
        }

        private MedicationStatement MedicationStatement(JsonElement e, At at)
        {
            var statement = new MedicationStatement();
            if (MedicationChoice(e, at) is { } medication) statement.Medication = medication;
            if (Primitive(e, "status", at, Literal.Code) is { } status) statement.StatusElement = new() { JsonValue = status };
            Contained(e, at, statement.Contained);
            foreach (var (dosage, dosageAt) in Items(e, "dosage", at)) statement.Dosage.Add(Dosage(dosage, dosageAt));
            if (!OneOf(e, at, "effective", "effectiveDateTime", "effectivePeriod")) return statement;
            if (Primitive(e, "effectiveDateTime", at, Literal.DateTime) is { } effective) statement.Effective = new FhirDateTime(effective);
            else if (Object(e, "effectivePeriod", at, out var period)) statement.Effective = Period(period, at.Then("effectivePeriod"));
            return statement;
        }

        private Condition Condition(JsonElement e, At at) => new()
        {
            ClinicalStatus = Concept(e, "clinicalStatus", at),
            VerificationStatus = Concept(e, "verificationStatus", at),
            Code = Concept(e, "code", at),
        };

        private Medication Medication(JsonElement e, At at)
        {
            var medication = new Medication { Code = Concept(e, "code", at) };
            foreach (var (ingredient, ingredientAt) in Items(e, "ingredient", at))
            {
                var component = new Medication.IngredientComponent();
                if (OneOf(ingredient, ingredientAt, "item", "itemCodeableConcept", "itemReference")
                    && ((DataType?)Concept(ingredient, "itemCodeableConcept", ingredientAt) ?? Reference(ingredient, "itemReference", ingredientAt)) is { } item)
                {
                    component.Item = item;
                }

                medication.Ingredient.Add(component);
            }

            return medication;
        }

        // medication[x]: a CodeableConcept or a Reference.
        private DataType? MedicationChoice(JsonElement e, At at) => OneOf(e, at, "medication", "medicationCodeableConcept", "medicationReference")
            ? (DataType?)Concept(e, "medicationCodeableConcept", at) ?? Reference(e, "medicationReference", at)
            : null;

        // Contained Medications are read (a "#med1" reference resolves to one); other contained resources by type only.
        private void Contained(JsonElement e, At at, List<Resource> contained)
        {
            foreach (var (resource, resourceAt) in Items(e, "contained", at))
            {
                if (FhirJson.ResourceTypeOf(resource, resourceAt, issues) is not { } type) continue;
                var item = type == typeof(Medication) ? Medication(resource, resourceAt) : (Resource)Activator.CreateInstance(type)!;
                item.Id = Primitive(resource, "id", resourceAt, Literal.Id);
                contained.Add(item);
            }
        }

        private Dosage Dosage(JsonElement e, At at)
        {
            var dosage = new Dosage { Text = Primitive(e, "text", at, Literal.String) };
            if (Object(e, "timing", at, out var timing) && Object(timing, "repeat", at.Then("timing"), out var repeat))
            {
                dosage.Timing = new Timing { Repeat = Repeat(repeat, at.Then("timing.repeat")) };
            }

            if (OneOf(e, at, "asNeeded", "asNeededBoolean", "asNeededCodeableConcept"))
            {
                dosage.AsNeeded = Boolean(e, "asNeededBoolean", at) is { } asNeeded ? new FhirBoolean(asNeeded) : Concept(e, "asNeededCodeableConcept", at);
            }

            foreach (var (doseAndRate, doseAt) in Items(e, "doseAndRate", at))
            {
                var component = new Dosage.DoseAndRateComponent();
                if (OneOf(doseAndRate, doseAt, "dose", "doseQuantity", "doseRange"))
                {
                    if (Object(doseAndRate, "doseQuantity", doseAt, out var quantity)) component.Dose = Quantity(quantity, doseAt.Then("doseQuantity"));
                    else if (Object(doseAndRate, "doseRange", doseAt, out var range)) component.Dose = Range(range, doseAt.Then("doseRange"));
                }

                dosage.DoseAndRate.Add(component);
            }

            if (Object(e, "maxDosePerPeriod", at, out var max))
            {
                dosage.MaxDosePerPeriod = new Ratio
                {
                    Numerator = Object(max, "numerator", at.Then("maxDosePerPeriod"), out var n) ? Quantity(n, at.Then("maxDosePerPeriod.numerator")) : null,
                    Denominator = Object(max, "denominator", at.Then("maxDosePerPeriod"), out var d) ? Quantity(d, at.Then("maxDosePerPeriod.denominator")) : null,
                };
            }

            return dosage;
        }

        private Timing.RepeatComponent Repeat(JsonElement e, At at)
        {
            var repeat = new Timing.RepeatComponent
            {
                Frequency = PositiveInt(e, "frequency", at),
                FrequencyMax = PositiveInt(e, "frequencyMax", at),
                Period = Decimal(e, "period", at),
            };
            if (OneOf(e, at, "bounds", "boundsPeriod", "boundsDuration", "boundsRange") && Object(e, "boundsPeriod", at, out var bounds))
            {
                repeat.Bounds = Period(bounds, at.Then("boundsPeriod"));
            }

            if (Primitive(e, "periodUnit", at, Literal.Code) is { } unit) repeat.PeriodUnitElement = new() { JsonValue = unit };
            if (Property(e, "when", out var when))
            {
                if (when.ValueKind != JsonValueKind.Array)
                {
                    Problem($"{at}.when", Hl7.Fhir.Validation.CodedValidationException.PROPERTY_TYPE_MISMATCH_CODE);
                    return repeat;
                }

                // A null is FHIR's placeholder for a value that has only an extension, in "_when".
                var placeholders = Property(e, "_when", out _);
                var i = 0;
                foreach (var item in when.EnumerateArray())
                {
                    if (item.ValueKind == JsonValueKind.Null && !placeholders) Problem(at, $"when[{i}]", FhirJsonException.PRIMITIVE_ARRAYS_ONLY_NULL_CODE);
                    else if (item.ValueKind != JsonValueKind.Null && Text(item, at, $"when[{i}]", Literal.Code) is { } code) repeat.WhenElement.Add(new() { JsonValue = code });
                    i++;
                }
            }

            return repeat;
        }

        private Period Period(JsonElement e, At at) => new() { End = Primitive(e, "end", at, Literal.DateTime) };

        private Quantity Quantity(JsonElement e, At at) => new()
        {
            Value = Decimal(e, "value", at),
            Unit = Primitive(e, "unit", at, Literal.String),
            System = Primitive(e, "system", at, Literal.Uri),
            Code = Primitive(e, "code", at, Literal.Code),
        };

        private Hl7.Fhir.Model.Range Range(JsonElement e, At at) => new()
        {
            Low = Object(e, "low", at, out var low) ? Quantity(low, at.Then("low")) : null,
            High = Object(e, "high", at, out var high) ? Quantity(high, at.Then("high")) : null,
        };

        private CodeableConcept? Concept(JsonElement parent, string name, At at)
        {
            if (!Object(parent, name, at, out var e)) return null;
            var conceptAt = at.Then(name);
            var concept = new CodeableConcept { Text = Primitive(e, "text", conceptAt, Literal.String) };
            foreach (var (coding, codingAt) in Items(e, "coding", conceptAt))
            {
                concept.Coding.Add(new Coding
                {
                    System = Primitive(coding, "system", codingAt, Literal.Uri),
                    Code = Primitive(coding, "code", codingAt, Literal.Code),
                    Display = Primitive(coding, "display", codingAt, Literal.String),
                });
            }

            return concept;
        }

        private ResourceReference? Reference(JsonElement parent, string name, At at)
        {
            if (!Object(parent, name, at, out var e)) return null;
            return new ResourceReference
            {
                Reference = Primitive(e, "reference", at.Then(name), Literal.String),
                Display = Primitive(e, "display", at.Then(name), Literal.String),
            };
        }

        // ---- JSON shapes: each refuses what FhirJson refuses, with the same messages.

        /// <summary>A property by name. FHIR names are case-sensitive, but Firely reads "Status" as "status" (backwards
        /// compatibility), and so does this reader: skipping it would lose what Firely would have read. One pass over
        /// the object's raw UTF-8 names: the exact name wins at once, else the first that differs only in case. (The
        /// JSON's own lookup by name and then a second pass for the case were a third of this reader's time, half of
        /// lookups being for elements that are absent: docs/performance.md.) A request body is parsed with duplicate
        /// properties refused, so there is one exact match at most.</summary>
        private static bool Property(JsonElement parent, string name, out JsonElement value)
        {
            var found = false;
            value = default;
            foreach (var property in parent.EnumerateObject())
            {
                var raw = System.Runtime.InteropServices.JsonMarshal.GetRawUtf8PropertyName(property);
                if (raw.Length == name.Length)
                {
                    if (System.Text.Ascii.Equals(raw, name))
                    {
                        value = property.Value;
                        return true;
                    }

                    if (!found && System.Text.Ascii.EqualsIgnoreCase(raw, name))
                    {
                        value = property.Value;
                        found = true;
                    }
                }
                else if (raw.Length > name.Length && raw.Contains((byte)'\\') && property.NameEquals(name))
                {
                    // An escaped name ("st\u0061tus") is longer than the name it spells.
                    value = property.Value;
                    return true;
                }
            }

            return found;
        }

        /// <summary>A choice element (<c>medication[x]</c>, <c>dose[x]</c>) holds one type, named in its suffix: two
        /// types, or none, are refused, as Firely refuses them, rather than one read and the other ignored.</summary>
        private bool OneOf(JsonElement parent, At at, string choice, params ReadOnlySpan<string> names)
        {
            // "medication": {...} without its type: Firely refuses it, and skipping it would hide the drug.
            if (Property(parent, choice, out _))
            {
                issues.Add(new RequestIssue($"{at}.{choice}", "invalid-fhir", FhirJson.Describe(FhirJsonException.CHOICE_ELEMENT_MUST_HAVE_SUFFIX_CODE)));
                return false;
            }

            var present = 0;
            foreach (var name in names) if (Property(parent, name, out _)) present++;
            if (present <= 1) return true;
            issues.Add(new RequestIssue($"{at}.{names[0]}", "invalid-fhir", FhirJson.Describe(FhirJsonException.DUPLICATE_PROPERTY_CODE)));
            return false;
        }

        /// <summary>The items of an array element with their locations; an absent element has none. Items that are not
        /// objects are refused here, before any item is read (as when the items were collected into a list first);
        /// the objects are then handed out one by one, with no list and a location made only for each of them.</summary>
        private Items Items(JsonElement parent, string name, At at)
        {
            if (!Property(parent, name, out var array)) return default;
            if (array.ValueKind != JsonValueKind.Array)
            {
                Problem($"{at}.{name}", array.ValueKind == JsonValueKind.Null
                    ? FhirJsonException.EXPECTED_PRIMITIVE_NOT_NULL_CODE
                    : Hl7.Fhir.Validation.CodedValidationException.PROPERTY_TYPE_MISMATCH_CODE);
                return default;
            }

            var i = 0;
            foreach (var item in array.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.Object)
                {
                    Problem(at.Item(name, i).ToString(), item.ValueKind switch
                    {
                        JsonValueKind.Array => FhirJsonException.NESTED_ARRAY_CODE,
                        JsonValueKind.Null => FhirJsonException.PRIMITIVE_ARRAYS_ONLY_NULL_CODE,
                        _ => FhirJsonException.UNEXPECTED_PRIMITIVE_VALUE_FOR_NON_PRIMITIVE_CODE,
                    });
                }

                i++;
            }

            return new Items(array, name, at);
        }

        /// <summary>A complex element: true when present and a JSON object.</summary>
        private bool Object(JsonElement parent, string name, At at, out JsonElement value)
        {
            if (!Property(parent, name, out value)) return false;
            if (value.ValueKind == JsonValueKind.Object) return true;
            Problem($"{at}.{name}", value.ValueKind == JsonValueKind.Array
                ? Hl7.Fhir.Validation.CodedValidationException.PROPERTY_TYPE_MISMATCH_CODE
                : FhirJsonException.UNEXPECTED_PRIMITIVE_VALUE_FOR_NON_PRIMITIVE_CODE);
            return false;
        }

        private string? Primitive(JsonElement parent, string name, At at, Literal literal) =>
            Property(parent, name, out var value) ? Text(value, at, name, literal) : null;

        // Locations are built only for a problem: most requests have none, and a hook call reads hundreds of values.
        private string? Text(JsonElement value, At at, string name, Literal literal)
        {
            if (!IsPrimitive(value, at, name, JsonValueKind.String)) return null;
            if (literal != Literal.String && Remembered(value, literal) is var (known, valid))
            {
                if (valid) return known;
                Problem(at, name, Hl7.Fhir.Validation.CodedValidationException.LITERAL_INVALID_CODE);
                return null;
            }

            string text;
            try
            {
                text = value.GetString()!;
            }
            catch (InvalidOperationException)
            {
                issues.Add(new RequestIssue($"{at}.{name}", "invalid-fhir", "Value is not valid Unicode text."));
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
        private static (string Text, bool Valid)? Remembered(JsonElement value, Literal literal)
        {
            var raw = System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(value); // with its quotes
            if (raw.Length is < 3 or > MaxRememberedLength + 2 || raw.Contains((byte)'\\')) return null;
            Span<char> chars = stackalloc char[raw.Length - 2]; // UTF-8 never takes fewer bytes than UTF-16 takes chars
            if (System.Text.Unicode.Utf8.ToUtf16(raw[1..^1], chars, out _, out var length, replaceInvalidSequences: false)
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
            if (known.Count < MaxRemembered && text.Length <= MaxRememberedLength) known.TryAdd(text, valid);
            return valid;
        }

        private decimal? Decimal(JsonElement parent, string name, At at)
        {
            if (!Property(parent, name, out var value) || !IsPrimitive(value, at, name, JsonValueKind.Number)) return null;
            if (value.TryGetDecimal(out var number)) return number;
            Problem(at, name, Hl7.Fhir.Validation.CodedValidationException.LITERAL_INVALID_CODE);
            return null;
        }

        // positiveInt, the only integer type read (frequency, frequencyMax).
        private int? PositiveInt(JsonElement parent, string name, At at)
        {
            if (!Property(parent, name, out var value) || !IsPrimitive(value, at, name, JsonValueKind.Number)) return null;
            if (value.TryGetInt32(out var number) && number > 0) return number;
            Problem(at, name, Hl7.Fhir.Validation.CodedValidationException.LITERAL_INVALID_CODE);
            return null;
        }

        private bool? Boolean(JsonElement parent, string name, At at)
        {
            if (!Property(parent, name, out var value)) return null;
            if (value.ValueKind is JsonValueKind.True or JsonValueKind.False) return value.GetBoolean();
            IsPrimitive(value, at, name, JsonValueKind.True);
            return null;
        }

        /// <summary>True when the value is of the expected JSON kind; otherwise the problem is added.</summary>
        private bool IsPrimitive(JsonElement value, At at, string name, JsonValueKind expected)
        {
            if (value.ValueKind == expected) return true;
            Problem(at, name, value.ValueKind switch
            {
                JsonValueKind.Null => FhirJsonException.EXPECTED_PRIMITIVE_NOT_NULL_CODE,
                JsonValueKind.Object => FhirJsonException.UNEXPECTED_OBJECT_VALUE_FOR_PRIMITIVE_CODE,
                JsonValueKind.Array => Hl7.Fhir.Validation.CodedValidationException.PROPERTY_TYPE_MISMATCH_CODE,
                _ => Hl7.Fhir.Validation.CodedValidationException.INCORRECT_LITERAL_VALUE_TYPE_CODE,
            });
            return false;
        }

        private void Problem(string location, string code) => issues.Add(new RequestIssue(location, "invalid-fhir", FhirJson.Describe(code)));

        private void Problem(At at, string name, string code) => Problem($"{at}.{name}", code);
    }
}
