namespace CdsHooks.Api.Security;

/// <summary>Which EHRs may call the service and how their JWTs are checked (configuration section
/// <c>Authentication</c>). CDS Hooks 2.0: every call carries a JWT signed by the CDS client.</summary>
public sealed class CdsAuthenticationOptions
{
    public const string Section = "Authentication";

    /// <summary>Off only for local development (the README's run command); Production refuses to start with it off.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The service's public base URL (https://cds.example.org) when it runs behind a proxy; a token's
    /// <c>aud</c> must equal this plus the path called. Empty: the URL of the request as received.</summary>
    public string? PublicBaseUrl { get; set; }

    /// <summary>Leeway for <c>exp</c>, <c>nbf</c> and <c>iat</c>.</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>CDS Hooks: <c>exp</c> is no more than 5 minutes after issue.</summary>
    public TimeSpan MaxTokenLifetime { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>JWKS URLs must be https (off only for tests on loopback).</summary>
    public bool RequireHttpsJwks { get; set; } = true;

    /// <summary>How often a JWKS may be fetched again when a token names an unknown <c>kid</c>.</summary>
    public TimeSpan JwksRefreshInterval { get; set; } = TimeSpan.FromSeconds(30);

    public List<TrustedClient> TrustedClients { get; set; } = [];
}

/// <summary>An EHR (CDS client) this service trusts.</summary>
public sealed class TrustedClient
{
    /// <summary>The <c>iss</c> claim of its tokens.</summary>
    public string Issuer { get; set; } = "";

    /// <summary>Where its public keys are published; used when a token has no <c>jku</c> header.</summary>
    public string? JwksUrl { get; set; }

    /// <summary>Its public keys as a JWKS JSON document, for clients that register keys out of band.</summary>
    public string? Jwks { get; set; }

    /// <summary>URL prefixes a token's <c>jku</c> header may point to. A <c>jku</c> elsewhere is refused before
    /// anything is fetched; with none listed, tokens carrying <c>jku</c> are refused.</summary>
    public List<string> AllowedJkuPrefixes { get; set; } = [];

    /// <summary>When set, the token's <c>tenant</c> claim must equal it.</summary>
    public string? Tenant { get; set; }
}

/// <summary>Limits on what a caller may send (configuration section <c>Limits</c>).</summary>
public sealed class LimitOptions
{
    public const string Section = "Limits";

    /// <summary>Largest request body; larger ones are answered 413.</summary>
    public long MaxRequestBodyBytes { get; set; } = 1024 * 1024;

    /// <summary>Time allowed for one request end to end.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Requests per second per client (by token issuer, else by remote address), with this burst.</summary>
    public int PermitsPerSecond { get; set; } = 2000;

    public int Burst { get; set; } = 4000;

    /// <summary>Browser origins allowed to call the service (the CDS Hooks sandbox: https://sandbox.cds-hooks.org).</summary>
    public List<string> CorsOrigins { get; set; } = [];
}
