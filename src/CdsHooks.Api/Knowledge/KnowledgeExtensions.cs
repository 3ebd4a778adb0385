using System.ComponentModel.DataAnnotations;
using CdsHooks.Engine;
using CdsHooks.Engine.Knowledge;
using Microsoft.Extensions.Options;

namespace CdsHooks.Api.Knowledge;

public sealed class KnowledgeOptions
{
    public const string Section = "Knowledge";

    /// <summary>The knowledge directory (rules and value sets). Relative paths are resolved against the application
    /// directory, where the build copies the repository's <c>cards/</c>.</summary>
    [Required]
    public string Path { get; set; } = "cards";

    public string FullPath => System.IO.Path.GetFullPath(Path, AppContext.BaseDirectory);
}

public static class KnowledgeExtensions
{
    public static void AddKnowledge(this WebApplicationBuilder builder)
    {
        // Bound as the options below will be, so that the early read finds the same files (and the same default).
        var early = new KnowledgeOptions();
        builder.Configuration.GetSection(KnowledgeOptions.Section).Bind(early);
        WarmUp(early);

        builder.Services.AddOptions<KnowledgeOptions>()
            .BindConfiguration(KnowledgeOptions.Section)
            .ValidateDataAnnotations()
            .ValidateOnStart();

        // Site settings live in the same section: DisabledRules, EnabledRules, Indicators, OlderAdultAge,
        // MinimumIndicator, MaxCards. The loader validates them against the rules.
        builder.Services.AddOptions<SiteSettings>().BindConfiguration(KnowledgeOptions.Section);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(services => KnowledgeLoader.Load(
            services.GetRequiredService<IOptions<KnowledgeOptions>>().Value.FullPath,
            services.GetRequiredService<IOptions<SiteSettings>>().Value));
        builder.Services.AddSingleton(services => new CdsEngine(
            services.GetRequiredService<KnowledgeBase>(),
            services.GetRequiredService<TimeProvider>(),
            services.GetRequiredService<CdsHooks.Engine.Fhir.PatientDataFetcher>()));
        builder.Services.AddHostedService<KnowledgeStartup>();
    }

    /// <summary>Reads the knowledge once on the thread pool while the host is still being built, and lets the result go:
    /// most of a first read is the JIT compiling the YAML, value-set and knowledge code (0.83 s of a 2.2 s start in the
    /// container image, whose trimmed frameworks carry no precompiled code), and it then happens on the other core:
    /// the first answered call came 150-250 ms sooner in alternating starts (docs/performance.md, sixteenth round). The
    /// knowledge the service uses is loaded and validated at start as before (<see cref="KnowledgeStartup"/>), from the
    /// settings as the host finally has them; a failure here is left to that load to report. With one processor (or a
    /// container's quota of one) there is no other core, and the read would only be done twice: it is not made.</summary>
    private static void WarmUp(KnowledgeOptions options)
    {
        if (Environment.ProcessorCount < 2) return;
        _ = Task.Run(() =>
        {
            try
            {
                KnowledgeLoader.Load(options.FullPath); // an invalid path is reported by the options' validation
            }
#pragma warning disable CA1031 // the start-up load reports any failure; this read only compiles the code
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        });
    }
}

/// <summary>Loads and validates the knowledge when the host starts, before any request: a clinical service with a
/// broken rule file or site setting must not start. The exception names the file and the field.</summary>
internal sealed class KnowledgeStartup(KnowledgeBase knowledge, ILogger<KnowledgeStartup> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        logger.LogInformation("Loaded {RuleCount} rules ({EnabledCount} enabled), {DrugGroupCount} drug groups and {ConditionGroupCount} condition groups",
            knowledge.Rules.Count, knowledge.Rules.Count(r => r.Enabled), knowledge.DrugGroups.Count, knowledge.ConditionGroups.Count);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
