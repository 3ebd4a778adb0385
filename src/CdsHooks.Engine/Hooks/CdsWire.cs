using System.Text.Json.Serialization;
using Hl7.Fhir.Model;

namespace CdsHooks.Engine.Hooks;

// Our own records for the CDS Hooks 2.0 wire format (https://cds-hooks.hl7.org/2.0/). Firely's
// Hl7.Fhir.Model.CdsHooks types are experimental, so they stay out of the contract. Optional members are null
// and the serializer omits nulls: the spec forbids null or empty JSON elements (requirement 3).

/// <summary>How CDS Hooks messages are written, in one place for the service, the CLI, the benchmarks and the tests.</summary>
public static class CdsJson
{
    /// <summary>Null members left out (the spec forbids them, requirement 3), and FHIR resources (a suggestion's) by
    /// Firely's converters with <see cref="Fhir.FhirJson"/>'s policy. The caller sets the rest: camelCase names (the Web
    /// defaults, or the naming policy), indentation.</summary>
    public static System.Text.Json.JsonSerializerOptions Configure(System.Text.Json.JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull;
        return Fhir.FhirJson.Configure(options);
    }
}

public sealed record DiscoveryResponse(IReadOnlyList<ServiceDescription> Services);

public sealed record ServiceDescription(
    string Hook,
    string Title,
    string Description,
    string Id,
    IReadOnlyDictionary<string, string>? Prefetch,
    string? UsageRequirements = null);

public sealed record CdsResponse(IReadOnlyList<Card> Cards)
{
    public static CdsResponse Empty { get; } = new([]);
}

public sealed record Card(
    string Uuid,
    string Summary,
    Indicator Indicator,
    Source Source,
    CardText? Detail = null,
    IReadOnlyList<Suggestion>? Suggestions = null,
    string? SelectionBehavior = null,
    IReadOnlyList<Coding>? OverrideReasons = null,
    IReadOnlyList<Link>? Links = null);

[JsonConverter(typeof(JsonStringEnumConverter<Indicator>))]
public enum Indicator
{
    [JsonStringEnumMemberName("info")] Info = 0,
    [JsonStringEnumMemberName("warning")] Warning = 1,
    [JsonStringEnumMemberName("critical")] Critical = 2,
}

public static class IndicatorNames
{
    /// <summary>The indicator as CDS Hooks spells it ("info", "warning", "critical"): in the audit trail, the metrics
    /// and the traces as on the wire. A constant, not a string made per call.</summary>
    public static string WireName(this Indicator indicator) => indicator switch
    {
        Indicator.Info => "info",
        Indicator.Warning => "warning",
        Indicator.Critical => "critical",
        _ => indicator.ToString().ToLowerInvariant(),
    };
}

public sealed record Source(string Label, string? Url = null, Coding? Topic = null);

public sealed record Coding(string System, string Code, string? Display = null);

public sealed record Link(string Label, string Url, string Type = "absolute");

public sealed record Suggestion(
    string Label,
    string? Uuid = null,
    bool? IsRecommended = null,
    IReadOnlyList<SuggestionAction>? Actions = null);

public sealed record SuggestionAction(string Type, string Description, Resource? Resource = null, string? ResourceId = null);
