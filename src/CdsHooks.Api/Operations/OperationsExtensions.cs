using CdsHooks.Api.Audit;
using CdsHooks.Engine.Knowledge;
using CdsHooks.Engine.Telemetry;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace CdsHooks.Api.Operations;

public static class OperationsExtensions
{
    /// <summary>Health checks, OpenTelemetry metrics (Prometheus) and traces (W3C trace context carried to the FHIR
    /// server calls), and the OpenAPI document.</summary>
    public static void AddOperations(this WebApplicationBuilder builder)
    {
        // Registered after Kestrel's own factory, so that Kestrel's sockets and pipes take this one.
        builder.Services.AddSingleton<Microsoft.AspNetCore.Connections.IMemoryPoolFactory<byte>, ReceiveBlockPoolFactory>();
        builder.Services.AddHealthChecks()
            .AddCheck<KnowledgeHealthCheck>("knowledge", tags: ["ready"])
            .AddCheck<DatabaseHealthCheck>("database", tags: ["ready"]);

        builder.Services.AddOpenTelemetry()
            .WithMetrics(metrics => metrics
                .AddMeter(CdsMetrics.MeterName)
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddView(instrument => Redundant(instrument) ? MetricStreamConfiguration.Drop : null)
                .AddPrometheusExporter())
            // Every call carries W3C trace context on to the FHIR server; spans are recorded only when the caller's
            // own trace context says it samples them. No trace exporter is configured, and recording a span for every
            // hook call cost about 50 µs of CPU per call (docs/performance.md).
            .WithTracing(tracing => tracing
                .SetSampler(new ParentBasedSampler(new AlwaysOffSampler()))
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation());

        builder.Services.AddOpenApi(options => options.AddSchemaTransformer((schema, context, _) =>
        {
            // A card's detail is written as one JSON string by its own converter, which the schema generator cannot
            // see into (it would describe it as anything).
            if (context.JsonTypeInfo.Type == typeof(Engine.Hooks.CardText)) schema.Type = Microsoft.OpenApi.JsonSchemaType.String;
            return Task.CompletedTask;
        }));
    }

    /// <summary>Instruments that ASP.NET Core's instrumentation turns on but an operator of this service does not need,
    /// recorded on every request or more often: Kestrel's own memory pool counts each 4 KB block rented and returned
    /// (several per call; the service gives Kestrel a pool of its own, <see cref="ReceiveBlockPoolFactory"/>, which
    /// counts nothing, and the drop stays for a host that keeps Kestrel's), routing counts each match, and the rate
    /// limiter's lease duration and active leases repeat <c>http.server.request.duration</c> and
    /// <c>http.server.active_requests</c> for a limiter that every CDS call passes.
    /// Together 1.5% of the service's CPU at saturation (docs/performance.md, thirteenth round). Dropped instruments
    /// are not listened to at all. Kept: the rate limiter's <c>aspnetcore.rate_limiting.requests</c>, which counts
    /// refusals.</summary>
    internal static bool Redundant(System.Diagnostics.Metrics.Instrument instrument) =>
        instrument.Meter.Name is "Microsoft.AspNetCore.MemoryPool" or "Microsoft.AspNetCore.Routing"
        || instrument.Name is "aspnetcore.rate_limiting.request_lease.duration" or "aspnetcore.rate_limiting.active_request_leases";

    public static void MapOperations(this WebApplication app)
    {
        // Liveness: the process answers. Readiness: the knowledge is loaded and the database answers.
        app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false });
        app.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = check => check.Tags.Contains("ready") });
        app.MapPrometheusScrapingEndpoint("/metrics");
        app.MapOpenApi();
    }
}

internal sealed class KnowledgeHealthCheck(KnowledgeBase knowledge) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(knowledge.Rules.Any(r => r.Enabled)
            ? HealthCheckResult.Healthy($"{knowledge.Rules.Count(r => r.Enabled)} rules enabled")
            : HealthCheckResult.Unhealthy("no rule is enabled"));
}

internal sealed class DatabaseHealthCheck(CardStore store) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        await store.IsReachableAsync(cancellationToken)
            ? HealthCheckResult.Healthy(store.Provider)
            : HealthCheckResult.Unhealthy($"{store.Provider} unreachable");
}

/// <summary><c>CdsHooks.Api --health-check</c> (or <c>dotnet CdsHooks.Api.dll --health-check</c>): asks the running
/// service's liveness endpoint, for the container's HEALTHCHECK (the runtime image has no curl).</summary>
public static class HealthProbe
{
    public static async Task<int> RunAsync()
    {
        var port = (Environment.GetEnvironmentVariable("ASPNETCORE_HTTP_PORTS") ?? "8080").Split(';', ',')[0];
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
        try
        {
            return (await client.GetAsync(new Uri($"http://127.0.0.1:{port}/health/live"))).IsSuccessStatusCode ? 0 : 1;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return 1;
        }
    }
}
