using System.ComponentModel.DataAnnotations;
using CdsHooks.Engine;
using CdsHooks.Engine.Knowledge;

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
        builder.Services.AddOptions<KnowledgeOptions>()
            .BindConfiguration(KnowledgeOptions.Section)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(services =>
            KnowledgeLoader.Load(services.GetRequiredService<Microsoft.Extensions.Options.IOptions<KnowledgeOptions>>().Value.FullPath));
        builder.Services.AddSingleton<CdsEngine>();
    }

    /// <summary>Loads and validates the knowledge before the first request: a clinical service with a broken rule
    /// file must not start. The exception names the file and the field.</summary>
    public static void LoadKnowledge(this WebApplication app)
    {
        var knowledge = app.Services.GetRequiredService<KnowledgeBase>();
        app.Logger.LogInformation("Loaded {RuleCount} rules and {GroupCount} drug groups", knowledge.Rules.Count, knowledge.Groups.Count);
    }
}
