using System.Text.Json;
using CdsHooks.Engine;
using CdsHooks.Engine.Hooks;
using CdsHooks.Engine.Knowledge;

namespace CdsHooks.Api.Playground;

public sealed class PlaygroundOptions
{
    public const string Section = "Playground";

    /// <summary>On in Development. Outside it, enable only behind the site's own access control: the playground
    /// takes no token and records nothing.</summary>
    public bool Enabled { get; set; }

    /// <summary>The sample patients offered (FHIR transaction Bundles); relative to the application directory.</summary>
    public string SamplesPath { get; set; } = "samples/patients";
}

public sealed record PlaygroundDrug(string Code, string Name);

/// <summary>
/// The card playground for rule authors: <c>/playground</c> shows the cards a request gets, rendered as an EHR shows
/// them, beside the trace of every rule. It runs the same engine as the hooks, but records nothing and applies no
/// alert-fatigue control, so that the same order can be tried again and again.
/// </summary>
public static class PlaygroundApi
{
    private static readonly JsonDocumentOptions BodyOptions = new() { MaxDepth = 64, AllowDuplicateProperties = false };

    public static void MapPlayground(this WebApplication app)
    {
        var options = app.Configuration.GetSection(PlaygroundOptions.Section).Get<PlaygroundOptions>() ?? new();
        if (!options.Enabled) return;

        var group = app.MapGroup("/playground").ExcludeFromDescription();
        group.MapGet("/", () => Results.File(Path.Combine(AppContext.BaseDirectory, "wwwroot", "playground.html"), "text/html; charset=utf-8"));
        group.MapGet("/patients", () => Patients(options));
        group.MapGet("/drugs", (KnowledgeBase knowledge) => Drugs(knowledge));
        group.MapPost("/evaluate", Evaluate);
    }

    // Each sample patient's Bundle, as the page turns it into prefetch.
    private static IResult Patients(PlaygroundOptions options)
    {
        var directory = Path.GetFullPath(options.SamplesPath, AppContext.BaseDirectory);
        var bundles = Directory.Exists(directory)
            ? Directory.GetFiles(directory, "*.json").Order(StringComparer.Ordinal).Select(f => JsonDocument.Parse(File.ReadAllText(f)).RootElement).ToList()
            : [];
        return Results.Json(bundles);
    }

    // Every drug product the knowledge knows by name, to order from.
    private static IEnumerable<PlaygroundDrug> Drugs(KnowledgeBase knowledge) =>
        knowledge.DrugGroups.Values
            .SelectMany(g => g.ProductNames.Select(p => new PlaygroundDrug(p.Key, p.Value)).Concat(g.Ingredients.Values.Select(i => new PlaygroundDrug(i.Code, i.Name))))
            .DistinctBy(d => d.Code)
            .OrderBy(d => d.Name, StringComparer.OrdinalIgnoreCase);

    private static async Task<IResult> Evaluate(HttpRequest request, CdsEngine engine, CancellationToken cancellationToken)
    {
        using var body = await JsonDocument.ParseAsync(request.Body, BodyOptions, cancellationToken);
        var hook = body.RootElement.ValueKind == JsonValueKind.Object && body.RootElement.TryGetProperty("hook", out var h) && h.ValueKind == JsonValueKind.String
            ? h.GetString()
            : null;
        var service = HookCatalog.Services.FirstOrDefault(s => s.Hook == hook)
            ?? throw new InvalidHookRequestException([new Engine.Fhir.RequestIssue("hook", "unsupported-hook", "order-select, order-sign or medication-prescribe.")]);
        var (result, trace) = await engine.ExplainAsync(HookRequestReader.Read(body.RootElement, service), cancellationToken);
        return Results.Json(new { cards = result.ToResponse().Cards, rules = trace });
    }
}
