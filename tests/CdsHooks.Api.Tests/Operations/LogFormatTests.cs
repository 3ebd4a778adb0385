using System.Net;
using System.Text.Json;
using CdsHooks.Tests;

namespace CdsHooks.Api.Tests.Operations;

/// <summary>The console log as an operator meets it, from the service's own process: compact JSON (one event per line,
/// for a log collector) outside Development, the human-readable line in Development. Both come from configuration
/// (appsettings.json, appsettings.Development.json), where an argument added for one environment merges into the
/// other's sink rather than replacing it.</summary>
public sealed class LogFormatTests
{
    private const string Service = "/cds-services/medication-safety-order-sign";

    [Fact]
    public async Task ProductionWritesEachEventAsOneLineOfCompactJson()
    {
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["Authentication__Enabled"] = "true",
            ["Authentication__PublicBaseUrl"] = "https://cds.example.org",
            ["Authentication__TrustedClients__0__Issuer"] = "https://ehr.example.org",
            ["Authentication__TrustedClients__0__JwksUrl"] = "https://ehr.example.org/jwks.json",
            ["Audit__HashKey"] = "log-format-test-key",
            ["Serilog__MinimumLevel__Default"] = "Information",
        });

        var line = await RequestLine(service, IsJsonRequestEvent);

        using var json = JsonDocument.Parse(line);
        Assert.Equal("HTTP {RequestMethod} {RequestPath} responded {StatusCode} in {Elapsed:0.0} ms", json.RootElement.GetProperty("@mt").GetString());
        Assert.Equal("/cds-services/medication-safety-order-sign", json.RootElement.GetProperty("RequestPath").GetString());
        Assert.Equal(401, json.RootElement.GetProperty("StatusCode").GetInt32()); // no token
        Assert.DoesNotContain(service.Output, l => l.StartsWith('[')); // no event in the human-readable form
    }

    [Fact]
    public async Task DevelopmentWritesTheHumanReadableLine()
    {
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string> { ["Serilog__MinimumLevel__Default"] = "Information" });

        var line = await RequestLine(service, l => l.Contains("HTTP POST /cds-services/medication-safety-order-sign responded 200", StringComparison.Ordinal));

        Assert.Matches(@"^\[\d\d:\d\d:\d\d INF\] HTTP POST ", line);
    }

    [Fact]
    public async Task DevelopmentWithAnEmptyTemplateWritesCompactJsonAsASiteDoes()
    {
        // The load script runs Development (authentication off) and must log as Production does.
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string>
        {
            ["Serilog__MinimumLevel__Default"] = "Information",
            ["Serilog__WriteTo__0__Args__outputTemplate"] = "",
        });

        var line = await RequestLine(service, IsJsonRequestEvent);

        using var json = JsonDocument.Parse(line);
        Assert.Equal(200, json.RootElement.GetProperty("StatusCode").GetInt32());
        Assert.DoesNotContain(service.Output, l => l.StartsWith('['));
    }

    [Fact]
    public async Task TheLastLinesAreWrittenWhenTheServiceStops()
    {
        // Lines wait up to the sink's interval (here a minute, so none is written by it); stopping the service as a
        // container runtime does must write them, not drop them with the process.
        Assert.SkipWhen(OperatingSystem.IsWindows(), "SIGTERM is how Linux container runtimes stop the service");
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string>
        {
            ["Serilog__MinimumLevel__Default"] = "Information",
            ["Serilog__WriteTo__0__Args__interval"] = "00:01:00",
        });
        using var client = new HttpClient();
        var response = await client.PostJson(service.BaseUrl + Service, Repository.Sample("order-sign-mirtazapine-80-year-old-on-clonazepam.json"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        static bool IsRequestLine(string l) => l.Contains("HTTP POST /cds-services/medication-safety-order-sign responded 200", StringComparison.Ordinal);
        Assert.DoesNotContain(service.Output, IsRequestLine); // still waiting in the sink

        Assert.Equal(0, await service.StopAsync());
        Assert.Contains(service.Output, IsRequestLine);
        Assert.Contains(service.Output, l => l.Contains("Application is shutting down", StringComparison.Ordinal));
    }

    /// <summary>The request event of a POST, as a line of compact JSON.</summary>
    private static bool IsJsonRequestEvent(string line) => line.Contains("\"@mt\":\"HTTP {RequestMethod}", StringComparison.Ordinal)
        && line.Contains("\"RequestMethod\":\"POST\"", StringComparison.Ordinal);

    /// <summary>Sends the index sample and returns the one output line that is its request event.</summary>
    private static async Task<string> RequestLine(ServiceProcess service, Func<string, bool> isRequestEvent)
    {
        using var client = new HttpClient();
        var response = await client.PostJson(service.BaseUrl + Service, Repository.Sample("order-sign-mirtazapine-80-year-old-on-clonazepam.json"));
        Assert.NotEqual(HttpStatusCode.InternalServerError, response.StatusCode);
        await service.WaitForOutputAsync(isRequestEvent);
        return Assert.Single(service.Output, l => isRequestEvent(l));
    }
}
