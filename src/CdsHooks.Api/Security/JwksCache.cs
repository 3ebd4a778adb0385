using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Protocols;
using Microsoft.IdentityModel.Tokens;

namespace CdsHooks.Api.Security;

/// <summary>The signing keys of trusted clients: inline JWKS parsed once; JWKS URLs fetched (IdentityModel's
/// HttpDocumentRetriever and JsonWebKeySet), kept for an hour, and fetched again when a token names a <c>kid</c> the
/// cached set lacks (a client that rotated its keys), at most once per refresh interval and one fetch at a time per
/// URL, so that tokens with made-up kids cannot make the service hammer a client's JWKS endpoint.</summary>
public sealed class JwksCache(IHttpClientFactory httpClients, IOptions<CdsAuthenticationOptions> options, TimeProvider time)
{
    public const string HttpClientName = "jwks";

    private static readonly TimeSpan MaxAge = TimeSpan.FromHours(1);

    /// <summary>Distinct JWKS URLs kept per issuer; a token naming yet another one is refused.</summary>
    public const int MaxUrlsPerIssuer = 4;

    private readonly ConcurrentDictionary<string, Entry> _byUrl = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DateTimeOffset> _lastFetchByIssuer = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, byte>> _urlsByIssuer = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, IList<SecurityKey>> _inline = new(StringComparer.Ordinal);

    private sealed class Entry
    {
        public SemaphoreSlim Gate { get; } = new(1, 1);
        public IList<SecurityKey> Keys { get; set; } = [];
        public DateTimeOffset FetchedAt { get; set; } = DateTimeOffset.MinValue;
    }

    /// <summary>The client's keys whose <c>kid</c> is <paramref name="kid"/>; empty when none is known even after a refresh.</summary>
    public async Task<IReadOnlyList<SecurityKey>> KeysAsync(TrustedClient client, string? jwksUrl, string kid, CancellationToken cancellationToken)
    {
        if (jwksUrl is null)
        {
            var inline = client.Jwks is null ? [] : _inline.GetOrAdd(client.Issuer, _ => new JsonWebKeySet(client.Jwks).GetSigningKeys());
            return [.. inline.Where(k => k.KeyId == kid)];
        }

        // Tokens are read before they are verified, so their jku and kid are the caller's choice: the number of URLs
        // and the rate of fetches are bounded per issuer, whatever the tokens say.
        var urls = _urlsByIssuer.GetOrAdd(client.Issuer, _ => new ConcurrentDictionary<string, byte>(StringComparer.Ordinal));
        if (!urls.ContainsKey(jwksUrl) && (urls.Count >= MaxUrlsPerIssuer || !urls.TryAdd(jwksUrl, 0))) return [];
        var entry = _byUrl.GetOrAdd(client.Issuer + "|" + jwksUrl, _ => new Entry());
        var found = Matching(entry, kid);
        if (found.Count > 0 && time.GetUtcNow() - entry.FetchedAt < MaxAge) return found;

        await entry.Gate.WaitAsync(cancellationToken);
        try
        {
            // Another request may have refreshed while this one waited; otherwise fetch, unless it was done too recently.
            found = Matching(entry, kid);
            var now = time.GetUtcNow();
            var age = now - entry.FetchedAt;
            var issuerAge = now - _lastFetchByIssuer.GetValueOrDefault(client.Issuer, DateTimeOffset.MinValue);
            var firstFetch = entry.FetchedAt == DateTimeOffset.MinValue && urls.Count == 1;
            if (((found.Count == 0 && age >= options.Value.JwksRefreshInterval) || age >= MaxAge)
                && (firstFetch || issuerAge >= options.Value.JwksRefreshInterval))
            {
                _lastFetchByIssuer[client.Issuer] = now;
                var retriever = new HttpDocumentRetriever(httpClients.CreateClient(HttpClientName)) { RequireHttps = options.Value.RequireHttpsJwks };
                entry.Keys = new JsonWebKeySet(await retriever.GetDocumentAsync(jwksUrl, cancellationToken)).GetSigningKeys();
                entry.FetchedAt = time.GetUtcNow();
                found = Matching(entry, kid);
            }

            return found;
        }
        finally
        {
            entry.Gate.Release();
        }
    }

    private static List<SecurityKey> Matching(Entry entry, string kid) => [.. entry.Keys.Where(k => k.KeyId == kid)];
}
