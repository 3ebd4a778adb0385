using System.Net;
using System.Text;
using CdsHooks.Api.Security;
using CdsHooks.Tests;
using Microsoft.AspNetCore.Hosting;

namespace CdsHooks.Api.Tests.Security;

public sealed class PerimeterTests(CdsHooksApplication app) : IClassFixture<CdsHooksApplication>
{
    private const string OrderSign = "/cds-services/medication-safety-order-sign";

    [Fact]
    public async Task BrowserClientsGetTheirPreflightAnswered()
    {
        using var preflight = new HttpRequestMessage(HttpMethod.Options, OrderSign);
        preflight.Headers.Add("Origin", "https://sandbox.cds-hooks.org");
        preflight.Headers.Add("Access-Control-Request-Method", "POST");
        preflight.Headers.Add("Access-Control-Request-Headers", "authorization,content-type");

        var response = await app.CreateClient().SendAsync(preflight, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal("https://sandbox.cds-hooks.org", response.Headers.GetValues("Access-Control-Allow-Origin").Single());
        var allowed = string.Join(",", response.Headers.GetValues("Access-Control-Allow-Headers")).ToLowerInvariant();
        Assert.Contains("authorization", allowed, StringComparison.Ordinal);
        Assert.Contains("content-type", allowed, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnOriginNotConfiguredGetsNoCorsHeaders()
    {
        using var preflight = new HttpRequestMessage(HttpMethod.Options, OrderSign);
        preflight.Headers.Add("Origin", "https://evil.example.org");
        preflight.Headers.Add("Access-Control-Request-Method", "POST");

        var response = await app.CreateClient().SendAsync(preflight, TestContext.Current.CancellationToken);

        Assert.False(response.Headers.Contains("Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task AnOversizedBodyIs413()
    {
        var huge = "{\"hook\":\"order-sign\",\"pad\":\"" + new string('x', 2 * 1024 * 1024) + "\"}";

        var response = await app.CreateClient().PostJson(OrderSign, huge);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task AClientOverItsRateGets429WithRetryAfter()
    {
        await using var limited = app.WithWebHostBuilder(b => b.UseSetting("Limits:PermitsPerSecond", "1").UseSetting("Limits:Burst", "2"));
        var client = limited.CreateClient();
        var statuses = new List<HttpResponseMessage>();
        for (var i = 0; i < 4; i++) statuses.Add(await client.GetAsync(new Uri("/cds-services", UriKind.Relative), TestContext.Current.CancellationToken));

        Assert.Equal(HttpStatusCode.OK, statuses[0].StatusCode);
        var rejected = statuses.First(r => r.StatusCode == HttpStatusCode.TooManyRequests);
        Assert.True(int.Parse(rejected.Headers.GetValues("Retry-After").Single(), System.Globalization.CultureInfo.InvariantCulture) >= 1);
        Assert.Equal("application/problem+json", rejected.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task AnEmptiedBucketIsRefilledWithinItsPeriod()
    {
        await using var limited = app.WithWebHostBuilder(b => b.UseSetting("Limits:PermitsPerSecond", "1").UseSetting("Limits:Burst", "1"));
        var client = limited.CreateClient();
        async Task<HttpStatusCode> Call() => (await client.GetAsync(new Uri("/cds-services", UriKind.Relative), TestContext.Current.CancellationToken)).StatusCode;

        Assert.Equal(HttpStatusCode.OK, await Call());
        Assert.Equal(HttpStatusCode.TooManyRequests, await Call());
        // Replenished once a second by the limiter's own timer (the buckets have none): within two, a call passes.
        var refilled = false;
        for (var waited = 0; waited < 2500 && !refilled; waited += 250)
        {
            await Task.Delay(250, TestContext.Current.CancellationToken);
            refilled = await Call() == HttpStatusCode.OK;
        }

        Assert.True(refilled);
    }

    [Fact]
    public void EachIssuerAndEachAddressHasItsOwnBucketAndAnUnauthenticatedCallGetsNoPrincipal()
    {
        static Microsoft.AspNetCore.Http.DefaultHttpContext Call(string? issuer, string address)
        {
            var http = new Microsoft.AspNetCore.Http.DefaultHttpContext();
            http.Connection.RemoteIpAddress = IPAddress.Parse(address);
            if (issuer is not null) http.User = new(new System.Security.Claims.ClaimsIdentity([new("iss", issuer)], "test"));
            return http;
        }

        var anonymous = Call(null, "10.0.0.1");
        Assert.Equal(IPAddress.Parse("10.0.0.1"), SecurityExtensions.Caller.Of(anonymous));
        // Reading the caller made no empty principal for the call.
        Assert.Null(anonymous.Features.Get<Microsoft.AspNetCore.Http.Features.Authentication.IHttpAuthenticationFeature>()?.User);

        Assert.Equal(SecurityExtensions.Caller.Of(Call(null, "10.0.0.1")), SecurityExtensions.Caller.Of(Call(null, "10.0.0.1")));
        Assert.NotEqual(SecurityExtensions.Caller.Of(Call(null, "10.0.0.1")), SecurityExtensions.Caller.Of(Call(null, "10.0.0.2")));
        // An authenticated EHR's bucket is its issuer's, from whatever address; an issuer never shares an address's.
        Assert.Equal(SecurityExtensions.Caller.Of(Call("https://a.example", "10.0.0.1")), SecurityExtensions.Caller.Of(Call("https://a.example", "10.0.0.2")));
        Assert.NotEqual(SecurityExtensions.Caller.Of(Call("https://a.example", "10.0.0.1")), SecurityExtensions.Caller.Of(Call("https://b.example", "10.0.0.1")));
        Assert.NotEqual(SecurityExtensions.Caller.Of(Call("10.0.0.1", "10.0.0.1")), SecurityExtensions.Caller.Of(Call(null, "10.0.0.1")));
        Assert.Equal("https://a.example", SecurityExtensions.Caller.Of(Call("https://a.example", "10.0.0.1")));
    }

    [Fact]
    public async Task ProductionRefusesToStartWithoutATrustedClient() =>
        Assert.Contains("Authentication is required outside Development", await FailedStart(new() { ["Audit__HashKey"] = "k" }), StringComparison.Ordinal);

    [Fact]
    public async Task ProductionRefusesToStartWithoutAnAuditHashKey() =>
        Assert.Contains("Audit:HashKey is required", await FailedStart(new()
        {
            ["Authentication__TrustedClients__0__Issuer"] = "https://ehr.example.org",
            ["Authentication__TrustedClients__0__JwksUrl"] = "https://ehr.example.org/jwks.json",
        }), StringComparison.Ordinal);

    [Fact]
    public async Task ProductionRefusesToStartWithoutItsPublicBaseUrl() =>
        Assert.Contains("Authentication:PublicBaseUrl is required", await FailedStart(new()
        {
            ["Audit__HashKey"] = "k",
            ["Authentication__TrustedClients__0__Issuer"] = "https://ehr.example.org",
            ["Authentication__TrustedClients__0__JwksUrl"] = "https://ehr.example.org/jwks.json",
        }), StringComparison.Ordinal);

    /// <summary>Starts the real service process in Production; it must exit with 1. Returns what it printed.</summary>
    private static async Task<string> FailedStart(Dictionary<string, string> settings)
    {
        var start = new System.Diagnostics.ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "CdsHooks.Api.dll")])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            Environment = { ["ASPNETCORE_ENVIRONMENT"] = "Production", ["ASPNETCORE_URLS"] = "http://127.0.0.1:0" },
        };
        foreach (var (key, value) in settings) start.Environment[key] = value;
        using var process = System.Diagnostics.Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var errors = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(60)).Token);

        Assert.Equal(1, process.ExitCode);
        return await output + await errors;
    }

    [Fact]
    public async Task DevelopmentWithAuthenticationOffSaysSoLoudly()
    {
        await app.CreateClient().GetAsync(new Uri("/cds-services", UriKind.Relative), TestContext.Current.CancellationToken);

        Assert.Contains(app.Logs.Events, e => e.Level == Serilog.Events.LogEventLevel.Warning && e.RenderMessage().Contains("AUTHENTICATION IS OFF", StringComparison.Ordinal));
    }
}
