using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using CdsHooks.Tests;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.IdentityModel.Tokens;

namespace CdsHooks.Api.Tests.Security;

/// <summary>CDS Hooks 2.0 client authentication with real tokens: keys generated in the test, their JWKS served over
/// loopback HTTP, the service configured to trust that EHR.</summary>
public sealed class AuthenticationTests : IAsyncLifetime
{
    private const string PublicBase = "https://cds.example.org";
    private const string Service = "/cds-services/medication-safety-order-sign";
    private const string TenantIssuer = "https://tenant.example.org";

    private JwksTestServer _ehr = null!;
    private CdsHooksApplication _root = null!;
    private WebApplicationFactory<Program> _app = null!;

    private static string Audience(string path = Service) => PublicBase + path;

    public async ValueTask InitializeAsync()
    {
        _ehr = await JwksTestServer.StartAsync();
        _root = new CdsHooksApplication();
        _app = Secured(_root, _ehr);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.DisposeAsync();
        await _root.DisposeAsync();
        await _ehr.DisposeAsync();
    }

    public static WebApplicationFactory<Program> Secured(WebApplicationFactory<Program> app, JwksTestServer ehr) =>
        app.WithWebHostBuilder(b => b
            .UseSetting("Authentication:Enabled", "true")
            .UseSetting("Authentication:PublicBaseUrl", PublicBase)
            .UseSetting("Authentication:RequireHttpsJwks", "false")
            .UseSetting("Authentication:JwksRefreshInterval", "00:00:01")
            .UseSetting("Authentication:TrustedClients:0:Issuer", JwksTestServer.Issuer)
            .UseSetting("Authentication:TrustedClients:0:JwksUrl", ehr.JwksUrl)
            .UseSetting("Authentication:TrustedClients:0:AllowedJkuPrefixes:0", ehr.BaseUrl + "/keys/")
            .UseSetting("Authentication:TrustedClients:1:Issuer", TenantIssuer)
            .UseSetting("Authentication:TrustedClients:1:JwksUrl", ehr.JwksUrl)
            .UseSetting("Authentication:TrustedClients:1:Tenant", "hospital-a"));

    private async Task<HttpStatusCode> Call(string? token, string path = Service)
    {
        var client = _app.CreateClient();
        using var message = path == Service
            ? new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(Repository.Sample("order-sign-mirtazapine-80-year-old-on-clonazepam.json"), MediaTypeHeaderValue.Parse("application/json")) }
            : new HttpRequestMessage(HttpMethod.Get, path);
        if (token is not null) message.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var response = await client.SendAsync(message, TestContext.Current.CancellationToken);
        if (response.StatusCode == HttpStatusCode.Unauthorized)
        {
            var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
            Assert.DoesNotContain("detail", body, StringComparison.Ordinal); // no reason for the caller
        }

        return response.StatusCode;
    }

    [Fact]
    public async Task Es384TokenIsAccepted() => Assert.Equal(HttpStatusCode.OK, await Call(_ehr.Token(Audience())));

    [Fact]
    public async Task Rs384TokenIsAccepted() => Assert.Equal(HttpStatusCode.OK, await Call(_ehr.Token(Audience(), _ehr.Rs384)));

    [Fact]
    public async Task DiscoveryNeedsAToken()
    {
        Assert.Equal(HttpStatusCode.Unauthorized, await Call(null, "/cds-services"));
        Assert.Equal(HttpStatusCode.OK, await Call(_ehr.Token(Audience("/cds-services")), "/cds-services"));
    }

    [Fact]
    public async Task JkuOnTheAllowListIsUsed() =>
        Assert.Equal(HttpStatusCode.OK, await Call(_ehr.Token(Audience(), jku: _ehr.BaseUrl + "/keys/other-jwks.json")));

    [Fact]
    public async Task NoTokenIsRefused() => Assert.Equal(HttpStatusCode.Unauthorized, await Call(null));

    [Fact]
    public async Task AlgNoneIsRefused() => Assert.Equal(HttpStatusCode.Unauthorized, await Call(_ehr.UnsignedToken(Audience())));

    [Fact]
    public async Task Hs384SignedWithThePublicKeyIsRefused() =>
        Assert.Equal(HttpStatusCode.Unauthorized, await Call(_ehr.HmacWithPublicKey(Audience())));

    [Fact]
    public async Task WrongSignatureIsRefused()
    {
        var impostor = new ECDsaSecurityKey(ECDsa.Create(ECCurve.NamedCurves.nistP384)) { KeyId = _ehr.Es384.KeyId };

        Assert.Equal(HttpStatusCode.Unauthorized, await Call(_ehr.Token(Audience(), impostor)));
    }

    [Fact]
    public async Task UnknownKidIsRefusedAfterOneRateLimitedRefresh()
    {
        var stranger = new ECDsaSecurityKey(ECDsa.Create(ECCurve.NamedCurves.nistP384)) { KeyId = "never-published" };
        Assert.Equal(HttpStatusCode.OK, await Call(_ehr.Token(Audience()))); // the JWKS is cached
        var before = _ehr.Fetches.Count;

        Assert.Equal(HttpStatusCode.Unauthorized, await Call(_ehr.Token(Audience(), stranger)));
        Assert.Equal(HttpStatusCode.Unauthorized, await Call(_ehr.Token(Audience(), stranger)));

        Assert.True(_ehr.Fetches.Count - before <= 1, $"the JWKS was fetched {_ehr.Fetches.Count - before} times for unknown kids");
    }

    [Fact]
    public async Task ARotatedKeyIsFoundByRefreshingTheJwks()
    {
        Assert.Equal(HttpStatusCode.OK, await Call(_ehr.Token(Audience()))); // caches the old set
        var rotated = new ECDsaSecurityKey(ECDsa.Create(ECCurve.NamedCurves.nistP384)) { KeyId = "rotated-" + Guid.NewGuid().ToString("N")[..6] };
        _ehr.Publish(rotated);
        await Task.Delay(TimeSpan.FromSeconds(1.2), TestContext.Current.CancellationToken); // past the refresh interval (1 s here)

        Assert.Equal(HttpStatusCode.OK, await Call(_ehr.Token(Audience(), rotated)));
    }

    [Fact]
    public async Task UntrustedIssuerIsRefused() =>
        Assert.Equal(HttpStatusCode.Unauthorized, await Call(_ehr.Token(Audience(), issuer: "https://evil.example.org")));

    [Fact]
    public async Task JkuOutsideTheAllowListIsRefusedBeforeAnythingIsFetched()
    {
        Assert.Equal(HttpStatusCode.Unauthorized, await Call(_ehr.Token(Audience(), jku: _ehr.BaseUrl + "/evil/jwks.json")));

        Assert.DoesNotContain(_ehr.Fetches, f => f.StartsWith("/evil", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("/keys/../evil/jwks.json")]
    [InlineData("/keys/%2e%2e/evil/jwks.json")]
    [InlineData("/keys/..\\evil\\jwks.json")]
    [InlineData("/keys/jwks.json?x=/evil")]
    [InlineData("/keysevil/jwks.json")]
    public async Task AJkuThatOnlyLooksAllowedIsRefusedWithoutAFetch(string path)
    {
        Assert.Equal(HttpStatusCode.Unauthorized, await Call(_ehr.Token(Audience(), jku: _ehr.BaseUrl + path)));

        Assert.DoesNotContain(_ehr.Fetches, f => f.Contains("evil", StringComparison.Ordinal) || f.Contains('?', StringComparison.Ordinal));
    }

    [Fact]
    public async Task TokensNamingManyJwksUrlsCannotMakeTheServiceFetchWithoutLimit()
    {
        var stranger = new ECDsaSecurityKey(ECDsa.Create(ECCurve.NamedCurves.nistP384)) { KeyId = "unknown" };
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, await Call(_ehr.Token(Audience(), stranger, jku: $"{_ehr.BaseUrl}/keys/set-{i}.json")));
        }

        Assert.True(_ehr.Fetches.Count <= 2, $"{_ehr.Fetches.Count} JWKS fetches for 20 forged tokens");
    }

    [Fact]
    public async Task WithTheDatabaseDownAnAuthenticatedCallStillGetsItsCard()
    {
        var database = await CdsHooks.Api.Tests.Audit.PostgresDatabase.CreateAsync();
        await using var app = _app.WithWebHostBuilder(b => b
            .UseSetting("Audit:Provider", "postgres")
            .UseSetting("Audit:ConnectionString", database.ConnectionString + ";Timeout=2"));
        app.CreateClient(); // starts the host: migrations run against the live database
        await database.DisposeAsync(); // then the database goes away

        using var message = new HttpRequestMessage(HttpMethod.Post, Service)
        {
            Content = new StringContent(Repository.Sample("order-sign-mirtazapine-80-year-old-on-clonazepam.json"), MediaTypeHeaderValue.Parse("application/json")),
        };
        message.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _ehr.Token(Audience()));
        var response = await app.CreateClient().SendAsync(message, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Single((await response.Json())["cards"]!.AsArray());
    }

    [Theory]
    [InlineData("https://cds.example.org/cds-services/medication-safety-order-select")] // another service
    [InlineData("https://cds.example.org/cds-services")]
    [InlineData("https://other.example.org/cds-services/medication-safety-order-sign")]
    public async Task WrongAudienceIsRefused(string audience) =>
        Assert.Equal(HttpStatusCode.Unauthorized, await Call(_ehr.Token(audience)));

    [Fact]
    public async Task ExpiredTokenIsRefused() =>
        Assert.Equal(HttpStatusCode.Unauthorized, await Call(_ehr.Token(Audience(), issuedAt: DateTime.UtcNow.AddMinutes(-10))));

    [Fact]
    public async Task NotYetValidTokenIsRefused() =>
        Assert.Equal(HttpStatusCode.Unauthorized, await Call(_ehr.Token(Audience(), notBefore: DateTime.UtcNow.AddMinutes(3))));

    [Fact]
    public async Task TokenLivingLongerThanFiveMinutesIsRefused() =>
        Assert.Equal(HttpStatusCode.Unauthorized, await Call(_ehr.Token(Audience(), lifetime: TimeSpan.FromHours(1))));

    [Fact]
    public async Task MissingJtiIsRefused() => Assert.Equal(HttpStatusCode.Unauthorized, await Call(_ehr.Token(Audience(), jti: null)));

    [Theory]
    [InlineData(301)]
    [InlineData(-1)] // a NUL inside
    public async Task AJtiTheReplayTableCannotHoldIsRefused(int length) =>
        Assert.Equal(HttpStatusCode.Unauthorized, await Call(_ehr.Token(Audience(), jti: length < 0 ? "abc\0def" : new string('j', length))));

    [Fact]
    public async Task AJtiOfThreeHundredCharactersIsAccepted() =>
        Assert.Equal(HttpStatusCode.OK, await Call(_ehr.Token(Audience(), jti: new string('k', 300))));

    [Fact]
    public async Task ReplayedJtiIsRefused()
    {
        var token = _ehr.Token(Audience());

        Assert.Equal(HttpStatusCode.OK, await Call(token));
        Assert.Equal(HttpStatusCode.Unauthorized, await Call(token));
    }

    [Fact]
    public async Task ATokenReplayedToAnotherInstanceIsRefused()
    {
        // A second instance on the same database, as behind a load balancer.
        await using var other = Secured(_root, _ehr);
        var token = _ehr.Token(Audience());

        Assert.Equal(HttpStatusCode.OK, await Call(token));
        using var replay = new HttpRequestMessage(HttpMethod.Post, Service)
        {
            Content = new StringContent(Repository.Sample("order-sign-mirtazapine-80-year-old-on-clonazepam.json"), MediaTypeHeaderValue.Parse("application/json")),
        };
        replay.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        Assert.Equal(HttpStatusCode.Unauthorized, (await other.CreateClient().SendAsync(replay, TestContext.Current.CancellationToken)).StatusCode);
    }

    [Fact]
    public async Task TenantIsCheckedWhenConfigured()
    {
        Assert.Equal(HttpStatusCode.OK, await Call(_ehr.Token(Audience(), issuer: TenantIssuer, tenant: "hospital-a")));
        Assert.Equal(HttpStatusCode.Unauthorized, await Call(_ehr.Token(Audience(), issuer: TenantIssuer, tenant: "hospital-b")));
        Assert.Equal(HttpStatusCode.Unauthorized, await Call(_ehr.Token(Audience(), issuer: TenantIssuer)));
    }

    [Theory]
    [InlineData("/health/live")]
    [InlineData("/metrics")]
    public async Task EndpointsOutsideTheCdsServicesNeverRunTheTokenCheck(string path)
    {
        // With one scheme registered, ASP.NET Core would make it the default and check a token on every request: a
        // probe could make the service look up keys, and every call would pay for the handler.
        var client = _app.CreateClient();
        using var message = new HttpRequestMessage(HttpMethod.Get, path);
        message.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "not-a-token");

        var response = await client.SendAsync(message, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.DoesNotContain("CDS client authentication failed", _root.Logs.AllText(), StringComparison.Ordinal);
        // The CDS endpoints still check it.
        Assert.Equal(HttpStatusCode.Unauthorized, await Call("not-a-token"));
        Assert.Contains("CDS client authentication failed", _root.Logs.AllText(), StringComparison.Ordinal);
        Assert.Contains("malformed token", _root.Logs.AllText(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AFailureIsLoggedWithItsReasonButNeverTheToken()
    {
        var token = _ehr.Token(Audience(), issuedAt: DateTime.UtcNow.AddMinutes(-10));

        await Call(token);

        var logs = _root.Logs.AllText();
        Assert.Contains("expired", logs, StringComparison.Ordinal);
        Assert.DoesNotContain(token, logs, StringComparison.Ordinal);
        Assert.DoesNotContain(token.Split('.')[2], logs, StringComparison.Ordinal);
    }
}
