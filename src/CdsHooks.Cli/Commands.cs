using System.ComponentModel;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using CdsHooks.Engine;
using CdsHooks.Engine.Evaluation;
using CdsHooks.Engine.Fhir;
using CdsHooks.Engine.Hooks;
using CdsHooks.Engine.Knowledge;
using CdsHooks.Engine.Patients;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Spectre.Console;
using Spectre.Console.Cli;

namespace CdsHooks.Cli;

/// <summary>Exit codes: 0 done; 1 a rule's example or a check failed; 2 the request is invalid; 3 the knowledge
/// cannot be loaded; 4 the request lacks patient data the engine needs (the service's 412).</summary>
public static class ExitCode
{
    public const int Ok = 0;
    public const int CheckFailed = 1;
    public const int InvalidRequest = 2;
    public const int KnowledgeError = 3;
    public const int MissingPatientData = 4;
}

public class KnowledgeSettings : CommandSettings
{
    [CommandOption("--cards <DIR>")]
    [Description("The knowledge directory. Default: ./cards if it exists, else the one shipped beside the tool.")]
    public string? Cards { get; init; }

    public string CardsDirectory => Cards ?? (Directory.Exists("cards") ? "cards" : Path.Combine(AppContext.BaseDirectory, "cards"));
}

public sealed class RequestSettings : KnowledgeSettings
{
    [CommandArgument(0, "<REQUEST>")]
    [Description("A CDS Hooks request as JSON (hook, hookInstance, context, prefetch).")]
    public string Request { get; init; } = "";

    [CommandOption("--json")]
    [Description("Print JSON instead of text.")]
    public bool Json { get; init; }

    [CommandOption("--fhir <URL>")]
    [Description("Fetch what prefetch lacks from this FHIR server (overrides the request's fhirServer).")]
    public string? Fhir { get; init; }

    [CommandOption("--token <TOKEN>")]
    [Description("Bearer token for --fhir.")]
    public string? Token { get; init; }

    [CommandOption("--today <DATE>")]
    [Description("The date ages are computed on (yyyy-MM-dd). Default: today.")]
    public string? Today { get; init; }
}

internal static class Engine
{
    public static readonly JsonSerializerOptions Output = CdsJson.Configure(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
    });

    /// <summary>Loads the knowledge and reads the request; null (and a message) when either fails.</summary>
    public static (CdsEngine Engine, HookRequest Request)? Prepare(RequestSettings settings, out int exitCode)
    {
        exitCode = ExitCode.Ok;
        KnowledgeBase knowledge;
        try
        {
            knowledge = KnowledgeLoader.Load(settings.CardsDirectory);
        }
        catch (KnowledgeException e)
        {
            AnsiConsole.MarkupLineInterpolated($"[red]Knowledge error:[/] {e.Message}");
            exitCode = ExitCode.KnowledgeError;
            return null;
        }

        try
        {
            var node = JsonNode.Parse(File.ReadAllText(settings.Request)) ?? throw new JsonException("empty");
            if (settings.Fhir is not null && node is JsonObject root)
            {
                root["fhirServer"] = settings.Fhir;
                root["fhirAuthorization"] = new JsonObject { ["access_token"] = settings.Token ?? "none", ["token_type"] = "Bearer" };
            }

            using var document = JsonDocument.Parse(node.ToJsonString());
            var hook = document.RootElement.TryGetProperty("hook", out var h) && h.ValueKind == JsonValueKind.String ? h.GetString() : null;
            var service = HookCatalog.Services.FirstOrDefault(s => s.Hook == hook)
                ?? throw new InvalidHookRequestException([new RequestIssue("hook", "unsupported-hook", $"No service for the hook '{hook}'.")]);
            var request = HookRequestReader.Read(document.RootElement, service);
            var today = settings.Today is null ? null : (DateOnly?)DateOnly.ParseExact(settings.Today, "yyyy-MM-dd", CultureInfo.InvariantCulture);
            var time = today is { } day ? new FixedTime(day) : TimeProvider.System;
            return (new CdsEngine(knowledge, time, settings.Fhir is null ? null : Fetcher(settings.Fhir)), request);
        }
        catch (Exception e) when (e is JsonException or IOException or FormatException)
        {
            AnsiConsole.MarkupLineInterpolated($"[red]Cannot read the request:[/] {e.Message}");
            exitCode = ExitCode.InvalidRequest;
            return null;
        }
        catch (InvalidHookRequestException e)
        {
            AnsiConsole.MarkupLine("[red]Invalid CDS Hooks request:[/]");
            foreach (var issue in e.Issues) AnsiConsole.MarkupLineInterpolated($"  {issue.Location}: {issue.Message}");
            exitCode = ExitCode.InvalidRequest;
            return null;
        }
    }

    public static int Missing(MissingPatientDataException e)
    {
        AnsiConsole.MarkupLine("[red]Patient data missing[/] (the service would answer 412):");
        foreach (var (key, reason) in e.Reasons) AnsiConsole.MarkupLineInterpolated($"  prefetch.{key}: {reason}");
        return ExitCode.MissingPatientData;
    }

    private static PatientDataFetcher Fetcher(string fhirServer)
    {
        var services = new ServiceCollection();
        services.AddHttpClient(PatientDataFetcher.HttpClientName);
        var provider = services.BuildServiceProvider();
        return new PatientDataFetcher(provider.GetRequiredService<IHttpClientFactory>(),
            new MemoryDistributedCache(Options.Create(new MemoryDistributedCacheOptions())),
            new FhirServerOptions { AllowedServers = [fhirServer], RequireHttps = false });
    }

    public static void Print(IReadOnlyList<Card> cards)
    {
        if (cards.Count == 0)
        {
            AnsiConsole.MarkupLine("[green]No card:[/] nothing to say about these orders.");
            return;
        }

        foreach (var card in cards)
        {
            var colour = card.Indicator switch { Indicator.Critical => "red", Indicator.Warning => "yellow", _ => "blue" };
            var body = new Rows(
                new Markup($"[bold]{Markup.Escape(card.Summary)}[/]"),
                new Text(""),
                new Text(card.Detail?.ToString() ?? ""),
                new Text(""),
                new Markup($"Source: {Markup.Escape(card.Source.Label)} [link]{Markup.Escape(card.Source.Url ?? "")}[/]"));
            AnsiConsole.Write(new Panel(body) { Header = new PanelHeader($"[{colour}] {card.Indicator.ToString().ToUpperInvariant()} [/]"), Border = BoxBorder.Rounded, Expand = true });
            foreach (var suggestion in card.Suggestions ?? []) AnsiConsole.MarkupLineInterpolated($"  suggestion: {suggestion.Label}");
            foreach (var reason in card.OverrideReasons ?? []) AnsiConsole.MarkupLineInterpolated($"  override reason: {reason.Display}");
        }
    }

    private sealed class FixedTime(DateOnly day) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => new(day.ToDateTime(new TimeOnly(12, 0)), TimeSpan.Zero);

        public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;
    }
}

public sealed class EvaluateCommand : AsyncCommand<RequestSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, RequestSettings settings, CancellationToken cancellationToken)
    {
        if (Engine.Prepare(settings, out var exit) is not { } prepared) return exit;
        try
        {
            var cards = (await prepared.Engine.EvaluateAsync(prepared.Request, cancellationToken)).ToResponse();
            if (settings.Json) Console.WriteLine(JsonSerializer.Serialize(cards, Engine.Output));
            else Engine.Print(cards.Cards);
            return ExitCode.Ok;
        }
        catch (MissingPatientDataException e)
        {
            return Engine.Missing(e);
        }
    }
}

public sealed class ExplainCommand : AsyncCommand<RequestSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, RequestSettings settings, CancellationToken cancellationToken)
    {
        if (Engine.Prepare(settings, out var exit) is not { } prepared) return exit;
        try
        {
            var (result, trace) = await prepared.Engine.ExplainAsync(prepared.Request, cancellationToken);
            if (settings.Json)
            {
                Console.WriteLine(JsonSerializer.Serialize(new { cards = result.ToResponse().Cards, rules = trace }, Engine.Output));
                return ExitCode.Ok;
            }

            foreach (var rule in trace)
            {
                var verdict = rule.Indicator is { } i ? $"fired: {i.WireName()}" : rule.Enabled ? "not fired" : "disabled";
                Console.WriteLine($"{rule.RuleId}  {verdict}");
                foreach (var step in rule.Steps) Console.WriteLine($"    {step}");
            }

            return ExitCode.Ok;
        }
        catch (MissingPatientDataException e)
        {
            return Engine.Missing(e);
        }
    }
}

public sealed class CheckCommand : Command<KnowledgeSettings>
{
    public override int Execute(CommandContext context, KnowledgeSettings settings, CancellationToken cancellationToken)
    {
        KnowledgeBase knowledge;
        try
        {
            var shipped = KnowledgeLoader.Load(settings.CardsDirectory);
            // Rules shipped disabled are checked too: a site may enable them.
            knowledge = KnowledgeLoader.Load(settings.CardsDirectory, new SiteSettings { EnabledRules = [.. shipped.Rules.Where(r => !r.Enabled).Select(r => r.Id)] });
        }
        catch (KnowledgeException e)
        {
            // Plain lines, unwrapped: for a pre-commit hook or a CI log to show (and grep) as they are.
            Console.WriteLine(e.Message);
            return ExitCode.KnowledgeError;
        }

        var results = ExampleRunner.Run(knowledge, DateOnly.FromDateTime(DateTime.Today));
        foreach (var failure in results.Where(r => !r.Passed))
        {
            Console.WriteLine($"{failure.Rule.File}: example \"{failure.Example.Name}\": expected {failure.Expected}, got {failure.Actual}");
        }

        var failed = results.Count(r => !r.Passed);
        Console.WriteLine($"{knowledge.Rules.Count} rules, {knowledge.DrugGroups.Count + knowledge.ConditionGroups.Count} value sets, {results.Count} examples: {results.Count - failed} passed, {failed} failed");
        return failed == 0 ? ExitCode.Ok : ExitCode.CheckFailed;
    }
}

public sealed class ValueSetsSettings : CommandSettings
{
    [CommandOption("--rxnconso <FILE>")]
    [Description("RXNCONSO.RRF of an RxNorm release.")]
    public string RxnConso { get; init; } = "";

    [CommandOption("--rxnrel <FILE>")]
    [Description("RXNREL.RRF of the same release.")]
    public string RxnRel { get; init; } = "";

    [CommandOption("--source <DIR>")]
    [Description("The source tables (default cards/source); rxnorm_codes.csv there is rewritten.")]
    public string Source { get; init; } = Path.Combine("cards", "source");

    [CommandOption("--out <DIR>")]
    [Description("Where the value sets are written (default cards/valuesets).")]
    public string Out { get; init; } = Path.Combine("cards", "valuesets");

    public override ValidationResult Validate() =>
        File.Exists(RxnConso) && File.Exists(RxnRel) && Directory.Exists(Source)
            ? ValidationResult.Success()
            : ValidationResult.Error("--rxnconso and --rxnrel must name existing files, and --source an existing directory.");
}

public sealed class ValueSetsCommand : Command<ValueSetsSettings>
{
    public override int Execute(CommandContext context, ValueSetsSettings settings, CancellationToken cancellationToken)
    {
        var ingredients = File.ReadLines(Path.Combine(settings.Source, "ingredient_classes.csv")).Skip(1)
            .Concat(File.Exists(Path.Combine(settings.Source, "supplementary_ingredients.csv")) ? File.ReadLines(Path.Combine(settings.Source, "supplementary_ingredients.csv")).Skip(1) : [])
            .Select(line => line.Split(',')[0]).Where(code => code.Length > 0).ToHashSet(StringComparer.Ordinal);
        IReadOnlyList<RxNormProduct> products = [];
        var total = new FileInfo(settings.RxnConso).Length + new FileInfo(settings.RxnRel).Length;
        AnsiConsole.Progress().Start(progress =>
        {
            var task = progress.AddTask("Reading RxNorm", maxValue: Math.Max(1, total / 200)); // about 200 bytes a line
            using var conso = new StreamReader(settings.RxnConso);
            using var rel = new StreamReader(settings.RxnRel);
            products = RxNormImporter.Import(conso, rel, ingredients, new Progress<long>(lines => task.Value = Math.Min(task.MaxValue, lines)));
            task.Value = task.MaxValue;
        });

        var codes = Path.Combine(settings.Source, "rxnorm_codes.csv");
        var kept = File.ReadLines(codes).Skip(1).Where(line => line.Split(',')[1] is "IN" or "PIN?").ToList(); // the ingredient rows stay
        File.WriteAllLines(codes, [
            "rxcui,tty,name,ingredient_rxcui,ingredient_name,source",
            .. kept,
            .. products.Select(p => $"{p.Rxcui},{p.Tty},{Csv(p.Name)},{p.IngredientRxcui},{Csv(p.IngredientName)},RxNorm release (RXNCONSO.RRF/RXNREL.RRF)"),
        ]);
        Directory.CreateDirectory(settings.Out);
        var written = ValueSetGenerator.Generate(settings.Source);
        foreach (var (file, json) in written) File.WriteAllText(Path.Combine(settings.Out, file), json);
        AnsiConsole.MarkupLineInterpolated($"{products.Count} product codes for {products.Select(p => p.IngredientRxcui).Distinct().Count()} ingredients; {written.Count} value sets written to {settings.Out}");
        return ExitCode.Ok;
    }

    private static string Csv(string value) => value.Contains(',', StringComparison.Ordinal) || value.Contains('"', StringComparison.Ordinal)
        ? "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\""
        : value;
}
