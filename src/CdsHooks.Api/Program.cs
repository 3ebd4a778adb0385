using CdsHooks.Api.Analytics;
using CdsHooks.Api.Audit;
using CdsHooks.Api.Errors;
using CdsHooks.Api.Fhir;
using CdsHooks.Api.Hooks;
using CdsHooks.Api.Knowledge;
using CdsHooks.Api.Logging;
using CdsHooks.Api.Operations;
using CdsHooks.Api.Playground;
using CdsHooks.Api.Security;
using Serilog;

if (args is ["--health-check", ..]) return await HealthProbe.RunAsync();

// A plain console logger until configuration is read: it reports a service that cannot start (for example a broken
// rule file) and is replaced by the configured logger once the host is built.
Log.Logger = new LoggerConfiguration().WriteTo.Console().CreateLogger();

try
{
    // Settings and knowledge live beside the binaries, whatever directory the service is started from.
    var builder = WebApplication.CreateBuilder(new WebApplicationOptions
    {
        Args = args,
        ContentRootPath = Environment.GetEnvironmentVariable("ASPNETCORE_CONTENTROOT") ?? AppContext.BaseDirectory,
    });
    builder.AddLogging();
    builder.AddKnowledge();
    builder.AddFhirServerAccess();
    builder.AddAudit();
    builder.AddOperations();
    builder.AddErrorHandling();
    builder.AddCdsSecurity();
    builder.AddCdsHooks();

    var app = builder.Build();
    app.UseRequestLogging(); // outermost, so that it logs the status the client really got
    app.UseErrorHandling();
    app.UseCdsSecurity();
    app.MapCdsHooks();
    app.MapAnalytics();
    app.MapOperations();
    app.MapPlayground();

    await app.RunAsync();
    return 0;
}
catch (Exception e) when (e is not HostAbortedException)
{
    Log.Fatal(e, "The CDS Hooks service could not start");
    return 1;
}
finally
{
    await Log.CloseAndFlushAsync();
}

/// <summary>Visible to the tests' WebApplicationFactory.</summary>
public partial class Program;
