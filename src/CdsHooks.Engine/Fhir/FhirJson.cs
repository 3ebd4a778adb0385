using System.Text.Json;
using System.Text.Json.Serialization;
using Hl7.Fhir.Model;
using Hl7.Fhir.Serialization;
using Hl7.Fhir.Utility;
using Hl7.Fhir.Validation;

namespace CdsHooks.Engine.Fhir;

/// <summary>
/// The one place that decides how tolerant FHIR parsing is (<see cref="PrefetchReader"/> applies the same policy to the
/// elements it reads from prefetched resources, and skips the rest). EHRs send resources that are not perfectly valid, so:
/// <list type="bullet">
/// <item>Tolerated: unknown elements (for example the STU3 <c>Dosage.doseQuantity</c> in the spec's own order-sign
/// example), codes outside the required value set, missing mandatory elements and cardinality errors, empty objects
/// and arrays, malformed narrative. None of these changes what a rule reads.</item>
/// <item>Refused (400): a value of the wrong JSON type or an unparsable literal (<c>"birthDate": 5</c>,
/// <c>"birthDate": "yesterday"</c>), an object where a primitive belongs or the reverse, duplicate properties,
/// a single value where FHIR has an array or the reverse (Firely keeps such a value aside and throws when the element
/// is read: the spec's own order-select example sends <c>"doseAndRate": {...}</c>, which is not R4), a null in an array
/// of elements (<c>"entry": [null]</c>), a resource with
/// no <c>resourceType</c> or a type FHIR R4 does not know. Guessing at these could hide a drug or misread an age.</item>
/// </list>
/// </summary>
public static class FhirJson
{
    private static readonly string[] ToleratedIssues =
    [
        CodedValidationException.INCORRECT_CARDINALITY_MIN_CODE,
        CodedValidationException.INCORRECT_CARDINALITY_MAX_CODE,
        CodedValidationException.MANDATORY_ELEMENT_MUST_BE_PRESENT_CODE,
        CodedValidationException.INVALID_CODED_VALUE_CODE,
        CodedValidationException.ELEMENT_CANNOT_BE_EMPTY_CODE,
        CodedValidationException.NARRATIVE_XML_IS_MALFORMED_CODE,
        CodedValidationException.NARRATIVE_XML_IS_INVALID_CODE,
        CodedValidationException.INVALID_STRING_LENGTH_CODE,
        FhirJsonException.OBJECTS_CANNOT_BE_EMPTY_CODE,
        FhirJsonException.ARRAYS_CANNOT_BE_EMPTY_CODE,
    ];

    // Declared before Options: static initialisers run in order, and Options needs this.
    private static readonly Predicate<CodedException> Tolerated = CodedExceptionFilters.Enforce(
        CodedExceptionFilters.Ignore(CodedExceptionFilters.FilterBackwardsCompatibilityIssues, ToleratedIssues),
        // Backwards compatibility would let an unknown resource type through as a dynamic resource: a drug in it
        // would be invisible to the rules.
        [CodedValidationException.UNKNOWN_RESOURCE_TYPE_CODE]);

    /// <summary>Options for reading and writing FHIR resources inside CDS Hooks messages. A singleton: building
    /// the converters is expensive.</summary>
    public static JsonSerializerOptions Options { get; } = Configure(new JsonSerializerOptions());

    /// <summary>Adds the FHIR converters and the tolerance policy above to a set of options (used for the HTTP
    /// options too, so that cards carrying FHIR resources serialize correctly).</summary>
    public static JsonSerializerOptions Configure(JsonSerializerOptions options)
    {
        // What ForFhir does, with Firely's converters made on first use (DeferredConverters below).
        options.Converters.Add(new DeferredConverters(() => new FhirJsonConverterFactory(ModelInfo.ModelInspector,
            new FhirJsonConverterOptions { ExceptionFilter = Tolerated, Validator = new LiteralValidator() })));
        options.Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping;
        return options;
    }

    /// <summary>Firely's converters need its model of all of FHIR R4 (<c>ModelInfo.ModelInspector</c>): reflection over
    /// 700 classes, about 10 MB resident, and with the JIT the compilation of a static constructor that left 50-60 MB of
    /// native heap (docs/performance.md). A hook call needs none of it (the <see cref="PrefetchReader"/> builds the
    /// resources itself, and cards rarely carry one), so the model is built when a resource is first written or read
    /// whole, not when the options are made.</summary>
    private sealed class DeferredConverters(Func<JsonConverterFactory> create) : JsonConverterFactory
    {
        private readonly Lazy<JsonConverterFactory> _factory = new(create);

        public override bool CanConvert(Type typeToConvert) => typeof(Base).IsAssignableFrom(typeToConvert);

        public override JsonConverter CreateConverter(Type typeToConvert, JsonSerializerOptions options) =>
            (JsonConverter)Activator.CreateInstance(typeof(Deferred<>).MakeGenericType(typeToConvert), this, options)!;

        private sealed class Deferred<T>(DeferredConverters owner, JsonSerializerOptions options) : JsonConverter<T>
            where T : Base
        {
            private JsonConverter<T>? _inner;

            private JsonConverter<T> Inner => _inner ??= (JsonConverter<T>)owner._factory.Value.CreateConverter(typeof(T), options)!;

            public override T? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
                Inner.Read(ref reader, typeToConvert, options);

            public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options) => Inner.Write(writer, value, options);
        }
    }

    /// <summary>Firely's attribute validation, run only where this policy refuses something: on primitive values (an
    /// unparsable date, uri or code literal), on resources (an unknown nested type, nested contained resources), and on
    /// a property whose shape is wrong (one value where an array belongs, or the reverse). Cardinality, required
    /// elements and value-set bindings are tolerated anyway; skipping them saves a little of the parse
    /// (docs/performance.md).</summary>
    private sealed class LiteralValidator : IPocoValidator
    {
        private static readonly FhirAttributeValidator Attributes = new();

        public IReadOnlyCollection<CodedValidationException> ValidateProperty(string name, object? propertyValue,
            Hl7.Fhir.Introspection.PropertyMapping? propertyMapping, PocoValidationContext context) =>
            propertyMapping is not null && propertyValue is not null && propertyMapping.IsCollection != propertyValue is System.Collections.IList
                ? Attributes.ValidateProperty(name, propertyValue, propertyMapping, context)
                : [];

        public IReadOnlyCollection<CodedValidationException> ValidateObject(Base instance, Hl7.Fhir.Introspection.ClassMapping classMapping,
            PocoValidationContext context) =>
            instance is PrimitiveType or Resource ? Attributes.ValidateObject(instance, classMapping, context) : [];
    }

    /// <summary>Parses one resource. Problems are added to <paramref name="issues"/> with their location, never
    /// with the offending value: the value may be patient data.</summary>
    public static Resource? ReadResource(JsonElement element, string location, ICollection<RequestIssue> issues)
    {
        if (ResourceTypeOf(element, location, issues) is null) return null;
        if (!NullsOnlyAsPlaceholders(element, location, issues)) return null;

        try
        {
            // The element's own UTF-8 bytes, not a copy written out again: a FHIR parse straight from the request body.
            return JsonSerializer.Deserialize<Resource>(System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(element), Options);
        }
        catch (Exception e) when (e is NotSupportedException or JsonException or InvalidOperationException)
        {
            // An abstract type nested deeper ("resourceType": "DomainResource" in a Bundle entry), or JSON the FHIR
            // converter cannot map at all.
            issues.Add(new RequestIssue(location, "invalid-fhir", "A nested resource is not a concrete FHIR R4 resource, or its JSON cannot be mapped."));
            return null;
        }
        catch (CodedValidationException e)
        {
            // Thrown by Firely's own validation while it deserializes (a single contained resource where FHIR has an
            // array is read as an array by the resource's invariants).
            issues.Add(new RequestIssue(location + PathOf(e), "invalid-fhir", Describe(e.ErrorCode)));
            return null;
        }
        catch (DeserializationFailedException e)
        {
            foreach (var problem in e.Exceptions)
            {
                issues.Add(new RequestIssue(location + PathOf(problem), "invalid-fhir", Describe(problem.ErrorCode)));
            }

            return null;
        }
    }

    /// <summary>The concrete FHIR R4 resource type a JSON object declares in <c>resourceType</c>, or null with the
    /// problem added to <paramref name="issues"/>. (Firely's whole parse only: the one-pass reader looks ahead for it,
    /// <see cref="PrefetchReader"/>.)</summary>
    private static Type? ResourceTypeOf(JsonElement element, string location, ICollection<RequestIssue> issues)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            issues.Add(new RequestIssue(location, "invalid-type", "Expected a FHIR resource (a JSON object)."));
            return null;
        }

        if (!element.TryGetProperty("resourceType", out var type) || type.ValueKind != JsonValueKind.String)
        {
            issues.Add(new RequestIssue(location, "invalid-resource", "A FHIR resource needs a 'resourceType' string."));
            return null;
        }

        string typeName;
        try
        {
            typeName = type.GetString()!;
        }
        catch (InvalidOperationException)
        {
            typeName = ""; // a lone surrogate or invalid UTF-8: no FHIR type has such a name
        }

        if (ResourceTypes.Find(typeName) is not { } concrete)
        {
            issues.Add(new RequestIssue($"{location}.resourceType", "invalid-resource", "Not a concrete FHIR R4 resource type."));
            return null;
        }

        return concrete;
    }

    /// <summary>FHIR JSON allows a null in an array only as the placeholder for a primitive value that has just an
    /// extension, aligned with the <c>_name</c> array beside it (<c>"when": [null, "HS"], "_when": [{...}, null]</c>).
    /// Firely keeps any other null as a null item of the list (<c>"dosageInstruction": [{...}, null]</c>), which no
    /// reader of the model expects: refused here, with its location.</summary>
    internal static bool NullsOnlyAsPlaceholders(JsonElement element, string location, ICollection<RequestIssue> issues)
    {
        var before = issues.Count;
        Scan(element, location);
        return issues.Count == before;

        void Scan(JsonElement value, string at)
        {
            if (value.ValueKind == JsonValueKind.Array)
            {
                var i = 0;
                foreach (var item in value.EnumerateArray()) Scan(item, $"{at}[{i++}]");
                return;
            }

            if (value.ValueKind != JsonValueKind.Object) return;
            foreach (var property in value.EnumerateObject())
            {
                if (property.Value.ValueKind == JsonValueKind.Array && !property.Name.StartsWith('_') && !value.TryGetProperty("_" + property.Name, out _))
                {
                    var i = 0;
                    foreach (var item in property.Value.EnumerateArray())
                    {
                        if (item.ValueKind == JsonValueKind.Null)
                        {
                            issues.Add(new RequestIssue($"{at}.{property.Name}[{i}]", "invalid-fhir", Describe(FhirJsonException.PRIMITIVE_ARRAYS_ONLY_NULL_CODE)));
                        }

                        i++;
                    }
                }

                if (property.Value.ValueKind is JsonValueKind.Array or JsonValueKind.Object) Scan(property.Value, $"{at}.{property.Name}");
            }
        }
    }

    private static string PathOf(Exception problem)
    {
        var path = problem switch
        {
            FhirJsonException j => j.InstancePath,
            CodedValidationException v => v.InstancePath,
            _ => null,
        };

        // Firely paths start with the resource type ("Patient.birthDate"); the request location already names it.
        if (string.IsNullOrEmpty(path)) return "";
        var dot = path.IndexOf('.', StringComparison.Ordinal);
        return dot < 0 ? "" : path[dot..];
    }

    // Firely's own messages quote the offending value, which may be a name or a birth date: describe the code instead.
    internal static string Describe(string code) => code switch
    {
        CodedValidationException.INCORRECT_LITERAL_VALUE_TYPE_CODE => "Value has the wrong JSON type for this FHIR element.",
        CodedValidationException.LITERAL_INVALID_CODE => "Value is not a valid literal for this FHIR element's type.",
        CodedValidationException.PROPERTY_TYPE_MISMATCH_CODE => "Element has the wrong shape (single value versus array).",
        FhirJsonException.UNEXPECTED_PRIMITIVE_VALUE_FOR_NON_PRIMITIVE_CODE => "A primitive value was given where FHIR expects an object.",
        FhirJsonException.UNEXPECTED_OBJECT_VALUE_FOR_PRIMITIVE_CODE => "An object was given where FHIR expects a primitive value.",
        FhirJsonException.DUPLICATE_PROPERTY_CODE => "The same property appears twice.",
        FhirJsonException.PRIMITIVE_VALUE_SUPPLIED_TWICE_CODE => "The same primitive value is supplied twice.",
        FhirJsonException.NESTED_ARRAY_CODE => "Arrays cannot be nested in FHIR JSON.",
        FhirJsonException.PRIMITIVE_ARRAYS_ONLY_NULL_CODE => "Only an array of primitive values may hold a null.",
        FhirJsonException.EXPECTED_PRIMITIVE_NOT_NULL_CODE => "A FHIR primitive cannot be null.",
        FhirJsonException.CHOICE_ELEMENT_MUST_HAVE_SUFFIX_CODE => "A choice element needs its type suffix.",
        CodedValidationException.UNKNOWN_RESOURCE_TYPE_CODE => "Not a FHIR R4 resource type.",
        CodedValidationException.CONTAINED_RESOURCES_CANNOT_BE_NESTED_CODE => "Contained resources cannot be nested.",
        _ => $"Invalid FHIR JSON ({code}).",
    };
}

/// <summary>FHIR R4 resource types by name, found in Firely's assemblies without its model of all of FHIR
/// (<c>ModelInfo.GetTypeForFhirType</c> builds it on first use: see <c>FhirJson.Configure</c>). A resource's class has the
/// resource's name, which its <c>[FhirType]</c> attribute confirms (in Firely's base, conformance or R4 assembly).
/// <c>ResourceTypeTests</c> holds this to <c>ModelInfo</c> for every FHIR type name.</summary>
internal static class ResourceTypes
{
    private const int MaxRemembered = 1024;

    private static readonly System.Reflection.Assembly[] Assemblies = [typeof(Resource).Assembly, typeof(ValueSet).Assembly, typeof(Patient).Assembly];

    // Resource types are fewer than the bound, and no longer than 64 letters.
    private static readonly RememberedValues<Type?> Known = new(MaxRemembered, maxLength: 64);

    /// <summary>The concrete resource class of that name, or null.</summary>
    public static Type? Find(string name)
    {
        if (Known.TryGetValue(name, out var known)) return known;
        var type = Lookup(name);
        Known.Remember(name, type);
        return type;
    }

    private static Type? Lookup(string name)
    {
        // Resource names are letters only; anything else (a dot, a '+', a comma) is not looked up as a class name.
        if (name.Length is 0 or > 64 || !char.IsAsciiLetterUpper(name[0]) || !name.All(char.IsAsciiLetter)) return null;
        foreach (var assembly in Assemblies)
        {
            if (assembly.GetType("Hl7.Fhir.Model." + name, throwOnError: false) is not { IsAbstract: false } type) continue;
            if (!type.IsAssignableTo(typeof(Resource))) return null;
            return System.Reflection.CustomAttributeExtensions.GetCustomAttribute<Hl7.Fhir.Introspection.FhirTypeAttribute>(type) is { } fhirType
                && fhirType.Name == name ? type : null;
        }

        return null;
    }
}

/// <summary>One problem with a request: where it is (a JSON path) and what kind of problem, never the value.</summary>
public sealed record RequestIssue(string Location, string Code, string Message);
