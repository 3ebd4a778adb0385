using CdsHooks.Engine.Evaluation;
using Microsoft.Extensions.Options;

namespace CdsHooks.Api.Audit;

public static class AuditExtensions
{
    public static void AddAudit(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<AuditOptions>().BindConfiguration(AuditOptions.Section)
            .Validate(o => o.Provider is "sqlite" or "postgres", "Audit:Provider must be sqlite or postgres.")
            .Validate(o => o.Retention > TimeSpan.Zero && o.PurgeInterval > TimeSpan.Zero && o.Timeout > TimeSpan.Zero && o.Timeout <= TimeSpan.FromMinutes(1),
                "Audit:Retention, Audit:PurgeInterval and Audit:Timeout must be positive, and Audit:Timeout at most a minute.")
            .ValidateOnStart();
        builder.Services.AddOptions<FatigueOptions>().BindConfiguration(FatigueOptions.Section)
            .Validate(o => o.RepeatWindow >= TimeSpan.Zero && o.AfterAccepted >= TimeSpan.Zero && o.AfterOverride >= TimeSpan.Zero,
                "Fatigue windows must not be negative.")
            .ValidateOnStart();

        var audit = builder.Configuration.GetSection(AuditOptions.Section).Get<AuditOptions>() ?? new();
        if (!builder.Environment.IsDevelopment() && string.IsNullOrWhiteSpace(audit.HashKey))
        {
            throw new InvalidOperationException("Audit:HashKey is required outside Development: it keys the hashes of patient and encounter ids.");
        }

        builder.Services.AddSingleton<CardStore>();
        builder.Services.AddSingleton<AuditTrail>();
        builder.Services.AddHostedService<AuditStartup>();
        builder.Services.AddHostedService<AuditRetention>();
    }
}

/// <summary>Creates or upgrades the database before the first request; a service that cannot keep its audit trail
/// does not start.</summary>
internal sealed class AuditStartup(CardStore store, IOptions<AuditOptions> options, IHostEnvironment environment, ILogger<AuditStartup> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await store.MigrateAsync(cancellationToken);
        logger.LogInformation("Audit trail on {Provider}", store.Provider);
        if (string.IsNullOrWhiteSpace(options.Value.HashKey) && environment.IsDevelopment())
        {
            logger.LogWarning("Audit:HashKey is not set: patient hashes use a development key. Set one before real use.");
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>Purges cards and feedback older than the retention period, at start and then every purge interval.</summary>
internal sealed class AuditRetention(CardStore store, IOptions<AuditOptions> options, TimeProvider time, ILogger<AuditRetention> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var deleted = await store.PurgeAsync(time.GetUtcNow() - options.Value.Retention, stoppingToken);
                if (deleted > 0) logger.LogInformation("Purged {CardCount} cards past the retention period", deleted);
            }
            catch (Exception e) when (e is System.Data.Common.DbException or InvalidOperationException)
            {
                logger.LogError("Audit purge failed ({ExceptionType}); retrying at the next interval", e.GetType().Name);
            }

            await Task.Delay(options.Value.PurgeInterval, time, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }
}
