using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace CdsHooks.Api.Security;

/// <summary>
/// Authenticates the calling EHR with the JWT it sends on every CDS Hooks call (CDS Hooks 2.0, "Trusting CDS
/// Clients"): asymmetric algorithms only; the issuer is a configured trusted client; a <c>jku</c> header must be on
/// that client's allow-list before anything is fetched; the <c>kid</c> must be in the client's JWKS; <c>aud</c> is the
/// exact URL called; <c>exp</c>, <c>nbf</c> and <c>iat</c> hold within a small leeway and the token lives at most five
/// minutes; <c>jti</c> is required and accepted once; <c>tenant</c> matches when configured. A failure is a 401 with
/// no detail; the reason goes to the log, never the token.
/// </summary>
public sealed class CdsJwtHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> schemeOptions,
    ILoggerFactory loggerFactory,
    UrlEncoder encoder,
    IOptions<CdsAuthenticationOptions> settings,
    JwksCache jwks,
    CdsHooks.Api.Audit.CardStore usedTokens,
    TimeProvider time)
    : AuthenticationHandler<AuthenticationSchemeOptions>(schemeOptions, loggerFactory, encoder)
{
    public const string SchemeName = "CdsHooksJwt";

    private static readonly HashSet<string> Algorithms = new(StringComparer.Ordinal)
    {
        SecurityAlgorithms.RsaSha256, SecurityAlgorithms.RsaSha384, SecurityAlgorithms.RsaSha512,
        SecurityAlgorithms.EcdsaSha256, SecurityAlgorithms.EcdsaSha384, SecurityAlgorithms.EcdsaSha512,
        SecurityAlgorithms.RsaSsaPssSha256, SecurityAlgorithms.RsaSsaPssSha384, SecurityAlgorithms.RsaSsaPssSha512,
    };

    // One for the process, as JwtBearer keeps its token handlers: reading and validating are thread-safe, and a
    // handler (made for each authenticated call) need not make one each time.
    private static readonly JsonWebTokenHandler Tokens = new();
    private readonly ILogger _log = loggerFactory.CreateLogger<CdsJwtHandler>();

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        // Authentication off (Development only): nothing to check, and nothing to warn about on every call.
        if (!settings.Value.Enabled) return AuthenticateResult.NoResult();
        var header = Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return Fail("no bearer token", issuer: null);
        var raw = header["Bearer ".Length..].Trim();

        JsonWebToken token;
        try
        {
            token = Tokens.ReadJsonWebToken(raw);
        }
        catch (Exception e) when (e is ArgumentException or SecurityTokenMalformedException)
        {
            return Fail("malformed token", issuer: null);
        }

        // Checked before any key is looked at: "none" and HMAC (HS384 signed with a public key) never get further.
        if (!Algorithms.Contains(token.Alg)) return Fail("algorithm not accepted", issuer: null);

        var options = settings.Value;
        var client = options.TrustedClients.Find(c => c.Issuer == token.Issuer);
        if (client is null) return Fail("untrusted issuer", issuer: null);
        if (string.IsNullOrEmpty(token.Kid)) return Fail("no kid", client.Issuer);

        string? keySource = client.JwksUrl;
        if (token.TryGetHeaderValue("jku", out string jku))
        {
            if (!JkuAllowed(jku, client.AllowedJkuPrefixes)) return Fail("jku outside the allow-list", client.Issuer);
            keySource = jku;
        }

        IReadOnlyList<SecurityKey> keys;
        try
        {
            keys = await jwks.KeysAsync(client, keySource, token.Kid, Context.RequestAborted);
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or HttpRequestException or ArgumentException)
        {
            return Fail("JWKS could not be retrieved", client.Issuer);
        }

        if (keys.Count == 0) return Fail("unknown kid", client.Issuer);

        var result = await Tokens.ValidateTokenAsync(raw, new TokenValidationParameters
        {
            ValidIssuer = client.Issuer,
            ValidAudience = ExpectedAudience(options),
            IssuerSigningKeys = keys,
            ValidAlgorithms = Algorithms,
            ClockSkew = options.ClockSkew,
            RequireExpirationTime = true,
            RequireSignedTokens = true,
            ValidateLifetime = true,
            ValidateIssuerSigningKey = true,
            TryAllIssuerSigningKeys = false,
        });
        if (!result.IsValid) return Fail(Reason(result.Exception), client.Issuer);

        var now = time.GetUtcNow();
        if (token.IssuedAt == DateTime.MinValue || token.IssuedAt > now.UtcDateTime + options.ClockSkew) return Fail("iat missing or in the future", client.Issuer);
        if (token.ValidTo - token.IssuedAt > options.MaxTokenLifetime) return Fail("token lives longer than allowed", client.Issuer);
        if (client.Tenant is not null && (!token.TryGetPayloadValue("tenant", out string tenant) || tenant != client.Tenant))
        {
            return Fail("wrong tenant", client.Issuer);
        }

        if (string.IsNullOrEmpty(token.Id)) return Fail("no jti", client.Issuer);
        // Stored in a column of 300 characters: a longer or NUL-bearing id would fail the batch it is written with.
        if (token.Id.Length > 300 || token.Id.Contains('\0', StringComparison.Ordinal)) return Fail("jti not acceptable", client.Issuer);
        // A jti is remembered (in the shared database) until its token expires: within that time it is a replay.
        if (!await FirstUseAsync(client.Issuer, token.Id, new DateTimeOffset(token.ValidTo + options.ClockSkew, TimeSpan.Zero)))
        {
            return Fail("jti replayed", client.Issuer);
        }

        var identity = new ClaimsIdentity([new Claim("iss", client.Issuer), new Claim("sub", token.Subject ?? client.Issuer)], SchemeName);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, DateTimeOffset> LocalReplay = new(StringComparer.Ordinal);

    // The shared database keeps token ids for every instance; when it is down, this instance's memory does, so that a
    // hook call still answers (and a replay to this instance is still refused).
    private async Task<bool> FirstUseAsync(string issuer, string jti, DateTimeOffset until)
    {
        try
        {
            return await usedTokens.FirstUseAsync(issuer, jti, until, Context.RequestAborted);
        }
        // DbException: the database is down. InvalidOperationException (a closed writer at shutdown, a disposed data
        // source) and TimeoutException: it cannot be asked. Either way this instance's memory answers.
        catch (Exception e) when (e is System.Data.Common.DbException or InvalidOperationException or TimeoutException)
        {
            _log.LogError("Token replay check fell back to memory: database unavailable ({ExceptionType})", e.GetType().Name);
            var now = time.GetUtcNow();
            foreach (var expired in LocalReplay.Where(p => p.Value < now).Select(p => p.Key).ToList()) LocalReplay.TryRemove(expired, out _);
            return LocalReplay.TryAdd($"{issuer}|{jti}", until);
        }
    }

    /// <summary>A <c>jku</c> must be a plain https (or, in tests, http) URL on an allowed prefix, compared after
    /// normalisation segment by segment: no "..", no backslash, no encoded dot, no query, no credentials, same
    /// scheme, host and port.</summary>
    public static bool JkuAllowed(string jku, IEnumerable<string> prefixes)
    {
        if (jku.Contains('\\', StringComparison.Ordinal) || jku.Contains("%2e", StringComparison.OrdinalIgnoreCase) || jku.Contains("%2f", StringComparison.OrdinalIgnoreCase)) return false;
        if (!Uri.TryCreate(jku, UriKind.Absolute, out var url) || url.Scheme is not ("https" or "http") || url.Query.Length > 0 || url.Fragment.Length > 0 || url.UserInfo.Length > 0) return false;
        if (url.OriginalString.Split('/').Any(segment => segment is "." or "..")) return false;
        foreach (var prefix in prefixes)
        {
            if (!Uri.TryCreate(prefix, UriKind.Absolute, out var allowed)) continue;
            var path = allowed.AbsolutePath.EndsWith('/') ? allowed.AbsolutePath : allowed.AbsolutePath + "/";
            if (url.Scheme == allowed.Scheme && url.Host.Equals(allowed.Host, StringComparison.OrdinalIgnoreCase) && url.Port == allowed.Port
                && (url.AbsolutePath + "/").StartsWith(path, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = "Bearer";
        return Task.CompletedTask;
    }

    // aud is the exact URL of the endpoint called; behind a proxy, the configured public base URL stands for the host.
    private string ExpectedAudience(CdsAuthenticationOptions options)
    {
        var path = Request.PathBase.Add(Request.Path).ToString();
        return string.IsNullOrEmpty(options.PublicBaseUrl)
            ? $"{Request.Scheme}://{Request.Host}{path}"
            : options.PublicBaseUrl.TrimEnd('/') + path;
    }

    private static string Reason(Exception? e) => e switch
    {
        SecurityTokenExpiredException => "expired",
        SecurityTokenNotYetValidException => "not yet valid",
        SecurityTokenNoExpirationException => "no exp",
        SecurityTokenInvalidAudienceException => "wrong aud",
        SecurityTokenInvalidIssuerException => "wrong iss",
        SecurityTokenInvalidAlgorithmException => "algorithm not accepted",
        SecurityTokenSignatureKeyNotFoundException or SecurityTokenInvalidSignatureException => "bad signature",
        _ => "invalid token",
    };

    // The reason and the issuer (not secret) go to the log; the token never does, and the client learns nothing.
    private AuthenticateResult Fail(string reason, string? issuer)
    {
        _log.LogWarning("CDS client authentication failed: {Reason} (issuer {Issuer})", reason, issuer ?? "unknown");
        CdsHooks.Engine.Telemetry.CdsMetrics.AuthenticationFailures.Add(1, new KeyValuePair<string, object?>("reason", reason));
        return AuthenticateResult.Fail(reason);
    }
}
