using System.Text.Json;
using System.Text.Json.Serialization;
using Hl7.Fhir.Model;

namespace CdsHooks.Engine.Hooks;

/// <summary>
/// Writes a hook's answer member by member, with the names CDS Hooks gives them encoded once, as the serializer writes
/// the records by reflection with the service's options (camelCase names, null members left out: the spec forbids
/// them), byte for byte; a FHIR resource inside a suggestion goes to the serializer and its FHIR converters. The
/// serializer's generated fast path would do the same, but it is off for options with converters or an encoder, which
/// the service's have; by reflection, walking the records' metadata was a third of writing the answer
/// (docs/performance.md, thirteenth round). Only for writing: the service never reads an answer.
/// </summary>
public sealed class CdsResponseWriter : JsonConverter<CdsResponse>
{
    private static readonly JsonEncodedText Cards = JsonEncodedText.Encode("cards");
    private static readonly JsonEncodedText Uuid = JsonEncodedText.Encode("uuid");
    private static readonly JsonEncodedText Summary = JsonEncodedText.Encode("summary");
    private static readonly JsonEncodedText IndicatorName = JsonEncodedText.Encode("indicator");
    private static readonly JsonEncodedText SourceName = JsonEncodedText.Encode("source");
    private static readonly JsonEncodedText Detail = JsonEncodedText.Encode("detail");
    private static readonly JsonEncodedText Suggestions = JsonEncodedText.Encode("suggestions");
    private static readonly JsonEncodedText SelectionBehavior = JsonEncodedText.Encode("selectionBehavior");
    private static readonly JsonEncodedText OverrideReasons = JsonEncodedText.Encode("overrideReasons");
    private static readonly JsonEncodedText Links = JsonEncodedText.Encode("links");
    private static readonly JsonEncodedText Label = JsonEncodedText.Encode("label");
    private static readonly JsonEncodedText Url = JsonEncodedText.Encode("url");
    private static readonly JsonEncodedText Topic = JsonEncodedText.Encode("topic");
    private static readonly JsonEncodedText SystemName = JsonEncodedText.Encode("system");
    private static readonly JsonEncodedText Code = JsonEncodedText.Encode("code");
    private static readonly JsonEncodedText Display = JsonEncodedText.Encode("display");
    private static readonly JsonEncodedText IsRecommended = JsonEncodedText.Encode("isRecommended");
    private static readonly JsonEncodedText Actions = JsonEncodedText.Encode("actions");
    private static readonly JsonEncodedText TypeName = JsonEncodedText.Encode("type");
    private static readonly JsonEncodedText Description = JsonEncodedText.Encode("description");
    private static readonly JsonEncodedText ResourceName = JsonEncodedText.Encode("resource");
    private static readonly JsonEncodedText ResourceId = JsonEncodedText.Encode("resourceId");

    public override CdsResponse Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        throw new NotSupportedException("A CDS Hooks answer is written by this service, not read.");

    public override void Write(Utf8JsonWriter writer, CdsResponse value, JsonSerializerOptions options)
    {
        writer.WriteStartObject();
        Array(writer, Cards, value.Cards, options, WriteCard);
        writer.WriteEndObject();
    }

    private static void WriteCard(Utf8JsonWriter writer, Card card, JsonSerializerOptions options)
    {
        writer.WriteStartObject();
        Optional(writer, Uuid, card.Uuid);
        Optional(writer, Summary, card.Summary);
        writer.WriteString(IndicatorName, card.Indicator.WireName());
        writer.WritePropertyName(SourceName);
        writer.WriteStartObject();
        Optional(writer, Label, card.Source.Label);
        Optional(writer, Url, card.Source.Url);
        if (card.Source.Topic is { } topic)
        {
            writer.WritePropertyName(Topic);
            WriteCoding(writer, topic, options);
        }

        writer.WriteEndObject();
        if (card.Detail is { } detail)
        {
            writer.WritePropertyName(Detail);
            detail.WriteTo(writer); // what CardText's converter writes
        }

        Array(writer, Suggestions, card.Suggestions, options, WriteSuggestion);
        Optional(writer, SelectionBehavior, card.SelectionBehavior);
        Array(writer, OverrideReasons, card.OverrideReasons, options, WriteCoding);
        Array(writer, Links, card.Links, options, WriteLink);
        writer.WriteEndObject();
    }

    private static void WriteSuggestion(Utf8JsonWriter writer, Suggestion suggestion, JsonSerializerOptions options)
    {
        writer.WriteStartObject();
        Optional(writer, Label, suggestion.Label);
        Optional(writer, Uuid, suggestion.Uuid);
        if (suggestion.IsRecommended is { } recommended) writer.WriteBoolean(IsRecommended, recommended);
        Array(writer, Actions, suggestion.Actions, options, WriteAction);
        writer.WriteEndObject();
    }

    private static void WriteAction(Utf8JsonWriter writer, SuggestionAction action, JsonSerializerOptions options)
    {
        writer.WriteStartObject();
        Optional(writer, TypeName, action.Type);
        Optional(writer, Description, action.Description);
        if (action.Resource is { } resource)
        {
            writer.WritePropertyName(ResourceName);
            JsonSerializer.Serialize<Resource>(writer, resource, options); // Firely's converters, as the property's type
        }

        Optional(writer, ResourceId, action.ResourceId);
        writer.WriteEndObject();
    }

    private static void WriteCoding(Utf8JsonWriter writer, Coding coding, JsonSerializerOptions options)
    {
        writer.WriteStartObject();
        Optional(writer, SystemName, coding.System);
        Optional(writer, Code, coding.Code);
        Optional(writer, Display, coding.Display);
        writer.WriteEndObject();
    }

    private static void WriteLink(Utf8JsonWriter writer, Link link, JsonSerializerOptions options)
    {
        writer.WriteStartObject();
        Optional(writer, Label, link.Label);
        Optional(writer, Url, link.Url);
        Optional(writer, TypeName, link.Type);
        writer.WriteEndObject();
    }

    // A list member, left out when null; each item by its writer. An index loop: foreach over an IReadOnlyList boxes its
    // enumerator.
    private static void Array<T>(Utf8JsonWriter writer, JsonEncodedText name, IReadOnlyList<T>? items, JsonSerializerOptions options,
        Action<Utf8JsonWriter, T, JsonSerializerOptions> write)
    {
        if (items is null) return;
        writer.WriteStartArray(name);
        for (var i = 0; i < items.Count; i++) write(writer, items[i], options);
        writer.WriteEndArray();
    }

    // A null member is left out, as the serializer's WhenWritingNull leaves it (the spec forbids null members), also
    // where the record does not expect one.
    private static void Optional(Utf8JsonWriter writer, JsonEncodedText name, string? value)
    {
        if (value is not null) writer.WriteString(name, value);
    }
}
