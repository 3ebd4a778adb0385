using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace CdsHooks.Benchmarks;

/// <summary>Tokens for the authenticated HTTP load: one RS384 key (as Epic signs), published as an inline JWKS the service trusts
/// (<c>Authentication:TrustedClients:0:Jwks</c>), and tokens as a CDS client signs them (iss, sub, aud, exp within
/// five minutes, a fresh jti each).</summary>
public static class Tokens
{
    public const string Issuer = "https://ehr.load-test.example";

    public static void Write(string directory, int count, string audience)
    {
        var key = new RsaSecurityKey(RSA.Create(2048)) { KeyId = "load-test" };
        var jwk = JsonWebKeyConverter.ConvertFromSecurityKey(key);
        File.WriteAllText(Path.Combine(directory, "jwks.json"), JsonSerializer.Serialize(new
        {
            keys = new[] { new { kty = jwk.Kty, n = jwk.N, e = jwk.E, kid = jwk.Kid, alg = "RS384", use = "sig" } },
        }));

        var handler = new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false };
        var credentials = new SigningCredentials(key, SecurityAlgorithms.RsaSha384);
        var now = DateTime.UtcNow;
        var tokens = new string[count];
        Parallel.For(0, count, i =>
        {
            tokens[i] = handler.CreateToken(new SecurityTokenDescriptor
            {
                Issuer = Issuer,
                Audience = audience,
                IssuedAt = now,
                NotBefore = now,
                Expires = now.AddMinutes(5),
                Claims = new Dictionary<string, object> { ["sub"] = "load-test", ["jti"] = Guid.NewGuid().ToString() },
                SigningCredentials = credentials,
            });
        });
        File.WriteAllLines(Path.Combine(directory, "tokens.txt"), tokens);
    }
}
