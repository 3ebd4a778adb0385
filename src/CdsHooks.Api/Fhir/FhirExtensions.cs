using CdsHooks.Engine.Fhir;
using Microsoft.Extensions.Http.Resilience;
using Microsoft.Extensions.Options;
using Polly;

namespace CdsHooks.Api.Fhir;

public static class FhirExtensions
{
    /// <summary>The EHR FHIR server client: a named HttpClient with a per-call timeout, one quick retry of these
    /// idempotent reads, a circuit breaker per FHIR server, and an overall timeout equal to the budget.</summary>
    public static void AddFhirServerAccess(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<FhirServerOptions>()
            .BindConfiguration(FhirServerOptions.Section)
            .Validate(o => o.CallTimeout > TimeSpan.Zero && o.Budget >= o.CallTimeout, "Fhir:CallTimeout must be positive and at most Fhir:Budget.")
            .Validate(o => o.MaxPages >= 1, "Fhir:MaxPages must be 1 or more.")
            .Validate(o => o.CacheTimeout > TimeSpan.Zero && o.CacheTimeout <= TimeSpan.FromMinutes(1), "Fhir:CacheTimeout must be positive and at most a minute.")
            .Validate(o => o.AllowedServers.TrueForAll(s => Uri.TryCreate(s, UriKind.Absolute, out _)), "Fhir:AllowedServers must be absolute URLs.")
            .ValidateOnStart();
        // Fetched patient data is shared by instances through Redis when Redis:Configuration is set; memory otherwise.
        var redis = builder.Configuration["Redis:Configuration"];
        if (string.IsNullOrWhiteSpace(redis)) builder.Services.AddDistributedMemoryCache();
        else builder.Services.AddStackExchangeRedisCache(o => { o.Configuration = redis; o.InstanceName = "cdshooks:"; });

        var fhir = builder.Configuration.GetSection(FhirServerOptions.Section).Get<FhirServerOptions>() ?? new FhirServerOptions();
        builder.Services.AddHttpClient(PatientDataFetcher.HttpClientName, client => client.Timeout = Timeout.InfiniteTimeSpan)
            // HttpClient's own log lines carry the request URL, and FHIR URLs carry patient ids.
            .RemoveAllLoggers()
            .AddResilienceHandler("fhir", pipeline =>
            {
                pipeline.AddTimeout(fhir.Budget);
                pipeline.AddRetry(new HttpRetryStrategyOptions
                {
                    MaxRetryAttempts = 1,
                    Delay = TimeSpan.FromMilliseconds(50),
                    BackoffType = DelayBackoffType.Constant,
                });
                pipeline.AddTimeout(fhir.CallTimeout);
            })
            .SelectPipelineByAuthority();

        builder.Services.AddSingleton(services => new PatientDataFetcher(
            services.GetRequiredService<IHttpClientFactory>(),
            services.GetRequiredService<Microsoft.Extensions.Caching.Distributed.IDistributedCache>(),
            services.GetRequiredService<IOptions<FhirServerOptions>>().Value,
            services.GetRequiredService<ILogger<PatientDataFetcher>>()));
    }
}
