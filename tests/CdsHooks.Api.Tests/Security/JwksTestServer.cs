using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace CdsHooks.Api.Tests.Security;

/// <summary>An EHR's signing keys (ES384 and RS384, generated per run), a JWKS endpoint on loopback that counts its
/// fetches, and a token factory that can also forge the tokens an attacker would try.</summary>
public sealed class JwksTestServer : IAsyncDisposable
{
    public const string Issuer = "https://ehr.example.org";

    private readonly WebApplication _app;
    private readonly List<SecurityKey> _published = [];

    /// <summary>Every token issued in this test run, so that a test can look for them in the logs.</summary>
    public static ConcurrentBag<string> Issued { get; } = [];

    public ConcurrentQueue<string> Fetches { get; } = new();

    public ECDsaSecurityKey Es384 { get; } = new(ECDsa.Create(ECCurve.NamedCurves.nistP384)) { KeyId = "es384-" + Guid.NewGuid().ToString("N")[..8] };

    public RsaSecurityKey Rs384 { get; } = new(RSA.Create(2048)) { KeyId = "rs384-" + Guid.NewGuid().ToString("N")[..8] };

    public string BaseUrl { get; private set; } = "";

    public string JwksUrl => BaseUrl + "/keys/jwks.json";

    private JwksTestServer(WebApplication app) => _app = app;

    public static async Task<JwksTestServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var server = new JwksTestServer(builder.Build());
        server.Publish(server.Es384);
        server.Publish(server.Rs384);
        server._app.MapGet("/{**path}", (string path) =>
        {
            server.Fetches.Enqueue("/" + path);
            return Results.Text(server.JwksJson(), "application/json");
        });
        await server._app.StartAsync();
        server.BaseUrl = server._app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return server;
    }

    public void Publish(SecurityKey key)
    {
        lock (_published) _published.Add(key);
    }

    private string JwksJson()
    {
        lock (_published)
        {
            var keys = _published.Select(k =>
            {
                var jwk = JsonWebKeyConverter.ConvertFromSecurityKey(k);
                return k is ECDsaSecurityKey
                    ? (object)new { kty = jwk.Kty, crv = jwk.Crv, x = jwk.X, y = jwk.Y, kid = jwk.Kid, alg = "ES384", use = "sig" }
                    : new { kty = jwk.Kty, n = jwk.N, e = jwk.E, kid = jwk.Kid, alg = "RS384", use = "sig" };
            }).ToList();
            return JsonSerializer.Serialize(new { keys });
        }
    }

    /// <summary>A token as the CDS Hooks spec describes it; each argument changes one thing.</summary>
    public string Token(string audience, SecurityKey? key = null, string? algorithm = null, string issuer = Issuer,
        string? jti = "new", TimeSpan? lifetime = null, DateTime? notBefore = null, DateTime? issuedAt = null,
        string? tenant = null, string? jku = null)
    {
        key ??= Es384;
        var now = DateTime.UtcNow;
        var claims = new Dictionary<string, object> { ["sub"] = "ehr-client" };
        if (jti is not null) claims["jti"] = jti == "new" ? Guid.NewGuid().ToString() : jti;
        if (tenant is not null) claims["tenant"] = tenant;
        var descriptor = new SecurityTokenDescriptor
        {
            Issuer = issuer,
            Audience = audience,
            IssuedAt = issuedAt ?? now,
            NotBefore = notBefore ?? issuedAt ?? now,
            Expires = (issuedAt ?? now) + (lifetime ?? TimeSpan.FromMinutes(5)),
            Claims = claims,
            SigningCredentials = new SigningCredentials(key, algorithm ?? (key is RsaSecurityKey ? SecurityAlgorithms.RsaSha384 : SecurityAlgorithms.EcdsaSha384)),
            AdditionalHeaderClaims = jku is null ? null : new Dictionary<string, object> { ["jku"] = jku },
        };
        var token = new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(descriptor);
        Issued.Add(token);
        return token;
    }

    /// <summary>An unsigned token ("alg": "none") with otherwise valid claims.</summary>
    public string UnsignedToken(string audience)
    {
        static string Part(object o) => Base64UrlEncoder.Encode(JsonSerializer.Serialize(o));
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var token = Part(new { alg = "none", typ = "JWT", kid = Es384.KeyId }) + "." +
            Part(new { iss = Issuer, aud = audience, iat = now, exp = now + 300, jti = Guid.NewGuid().ToString() }) + ".";
        Issued.Add(token);
        return token;
    }

    /// <summary>The classic key-confusion forgery: HS384 with the RSA public key as the HMAC secret.</summary>
    public string HmacWithPublicKey(string audience)
    {
        var publicKey = Encoding.UTF8.GetBytes(Rs384.Rsa.ExportSubjectPublicKeyInfoPem());
        var hmac = new SymmetricSecurityKey(publicKey) { KeyId = Rs384.KeyId };
        return Token(audience, hmac, SecurityAlgorithms.HmacSha384);
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
