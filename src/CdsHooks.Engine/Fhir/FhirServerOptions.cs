namespace CdsHooks.Engine.Fhir;

/// <summary>How the service may use the EHR's FHIR server when prefetch is missing (configuration section <c>Fhir</c>).</summary>
public sealed class FhirServerOptions
{
    public const string Section = "Fhir";

    /// <summary>FHIR base URLs the service may query (a request's <c>fhirServer</c> must start with one of them), so
    /// that a request cannot point the service at an internal host. Empty: no FHIR server is ever queried.</summary>
    public List<string> AllowedServers { get; set; } = [];

    /// <summary>Refuse plain-http FHIR servers (on in Production).</summary>
    public bool RequireHttps { get; set; } = true;

    /// <summary>Time allowed for one FHIR request, retries excluded.</summary>
    public TimeSpan CallTimeout { get; set; } = TimeSpan.FromMilliseconds(1500);

    /// <summary>Time allowed for all the FHIR requests of one hook call together.</summary>
    public TimeSpan Budget { get; set; } = TimeSpan.FromMilliseconds(2500);

    /// <summary>Pages followed per search (Bundle <c>next</c> links).</summary>
    public int MaxPages { get; set; } = 5;

    /// <summary>The largest answer read from the FHIR server, in bytes (each is held whole, and cached); a larger one is
    /// refused like an unreadable one. A page of a search for one patient's medications is tens of kilobytes.</summary>
    public int MaxAnswerBytes { get; set; } = 8 * 1024 * 1024;

    /// <summary>Time allowed for one read or write of the shared patient-data cache (Redis); a slower one counts as a
    /// miss, so that a cache that is down costs a hook call this, not the cache client's own timeouts.</summary>
    public TimeSpan CacheTimeout { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>How long fetched patient data is kept for the next hook call (order-select then order-sign).</summary>
    public TimeSpan CacheDuration { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Why a FHIR server may not be used, or null when it may.</summary>
    public string? Refusal(string fhirServer)
    {
        if (!Uri.TryCreate(fhirServer, UriKind.Absolute, out var uri) || uri.Scheme is not ("https" or "http"))
        {
            return "fhirServer is not an http(s) URL";
        }

        if (RequireHttps && uri.Scheme != "https") return "fhirServer is not https";
        var normalised = fhirServer.TrimEnd('/') + "/";
        return AllowedServers.Exists(a => normalised.StartsWith(a.TrimEnd('/') + "/", StringComparison.OrdinalIgnoreCase))
            ? null
            : "fhirServer is not on this service's allow-list (Fhir:AllowedServers)";
    }
}
