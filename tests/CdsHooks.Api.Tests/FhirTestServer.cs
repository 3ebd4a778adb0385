using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using CdsHooks.Engine.Fhir;
using Hl7.Fhir.Model;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CdsHooks.Api.Tests;

/// <summary>A FHIR R4 server on loopback (real Kestrel, real HTTP) that serves resources given by the test, pages
/// searches, and records every request with its Authorization header and timing. Per resource type, a test can
/// delay answers or make them fail.</summary>
public sealed class FhirTestServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    public sealed record Recorded(string Path, string Query, string? Authorization, TimeSpan Started, TimeSpan Ended, string? TraceParent = null);

    public sealed class Behaviour
    {
        public TimeSpan Delay { get; set; }
        public int Status { get; set; } = 200;
        public string? RawBody { get; set; }
        public int PageSize { get; set; } = 100;
    }

    public ConcurrentQueue<Recorded> Requests { get; } = new();

    public ConcurrentDictionary<string, Behaviour> Behaviours { get; } = new();

    public ConcurrentDictionary<string, List<Resource>> Resources { get; } = new();

    public string BaseUrl { get; private set; } = "";

    private FhirTestServer(WebApplication app) => _app = app;

    public static async Task<FhirTestServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var server = new FhirTestServer(builder.Build());
        server._app.MapGet("/fhir/{type}/{id}", (HttpContext context, string type, string id) =>
            server.Answer(context, type, all => all.Where(r => r.Id == id).Cast<Resource?>().FirstOrDefault(), page: 0));
        server._app.MapGet("/fhir/{type}", (HttpContext context, string type) =>
            server.Answer(context, type, null, int.TryParse(context.Request.Query["_page"], out var page) ? page : 1));
        await server._app.StartAsync();
        var address = server._app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server.BaseUrl = address + "/fhir";
        return server;
    }

    public Behaviour For(string type) => Behaviours.GetOrAdd(type, _ => new Behaviour());

    public void Add(params Resource[] resources)
    {
        foreach (var resource in resources) Resources.GetOrAdd(resource.TypeName, _ => []).Add(resource);
    }

    /// <summary>Serves what a hook request prefetched: its patient, and every entry of its medications and conditions.</summary>
    public void AddPrefetchOf(JsonNode request)
    {
        var prefetch = request["prefetch"]!;
        Add(Read<Patient>(prefetch["patient"]!));
        foreach (var entry in prefetch["medications"]!["entry"]!.AsArray()) Add(Read<MedicationRequest>(entry!["resource"]!));
        foreach (var entry in prefetch["conditions"]!["entry"]!.AsArray()) Add(Read<Condition>(entry!["resource"]!));
    }

    /// <summary>The <c>fhirAuthorization</c> an EHR sends with a hook call, carrying <paramref name="token"/>.</summary>
    public static JsonObject Authorization(string token) => new()
    {
        ["access_token"] = token, ["token_type"] = "Bearer", ["expires_in"] = 300,
        ["scope"] = "patient/*.read", ["subject"] = "cds-service",
    };

    private static T Read<T>(JsonNode node) where T : Resource => JsonSerializer.Deserialize<T>(node.ToJsonString(), FhirJson.Options)!;

    public IEnumerable<Recorded> RequestsFor(string type) => Requests.Where(r => r.Path.StartsWith("/fhir/" + type, StringComparison.Ordinal));

    private async System.Threading.Tasks.Task Answer(HttpContext context, string type, Func<List<Resource>, Resource?>? read, int page)
    {
        var started = _clock.Elapsed;
        var behaviour = For(type);
        try
        {
            if (behaviour.Delay > TimeSpan.Zero) await System.Threading.Tasks.Task.Delay(behaviour.Delay, context.RequestAborted);
            context.Response.StatusCode = behaviour.Status;
            context.Response.ContentType = "application/fhir+json";
            if (behaviour.RawBody is not null)
            {
                await context.Response.WriteAsync(behaviour.RawBody);
                return;
            }

            if (behaviour.Status != 200)
            {
                await Write(context, new OperationOutcome { Issue = [new() { Severity = OperationOutcome.IssueSeverity.Error, Code = OperationOutcome.IssueType.Exception }] });
                return;
            }

            var all = Resources.GetValueOrDefault(type) ?? [];
            if (read is not null)
            {
                var found = read(all);
                if (found is null) context.Response.StatusCode = 404;
                await Write(context, found ?? new OperationOutcome { Issue = [new() { Severity = OperationOutcome.IssueSeverity.Error, Code = OperationOutcome.IssueType.NotFound }] });
                return;
            }

            // Searches filter on status where the test's resources have one; everything else matches.
            var status = context.Request.Query["status"].ToString().Split(',', StringSplitOptions.RemoveEmptyEntries);
            var matching = all.Where(r => status.Length == 0 || StatusOf(r) is not { } s || status.Contains(s)).ToList();
            var bundle = new Bundle { Type = Bundle.BundleType.Searchset, Total = matching.Count };
            bundle.Entry.AddRange(matching.Skip((page - 1) * behaviour.PageSize).Take(behaviour.PageSize).Select(r => new Bundle.EntryComponent { Resource = r }));
            if (page * behaviour.PageSize < matching.Count)
            {
                var query = string.Join("&", context.Request.Query.Where(q => q.Key != "_page").Select(q => $"{q.Key}={q.Value}"));
                bundle.Link.Add(new Bundle.LinkComponent { Relation = "next", Url = $"{BaseUrl}/{type}?{query}&_page={page + 1}" });
            }

            await Write(context, bundle);
        }
        finally
        {
            Requests.Enqueue(new Recorded(context.Request.Path, context.Request.QueryString.Value ?? "",
                context.Request.Headers.Authorization.ToString() is { Length: > 0 } a ? a : null, started, _clock.Elapsed,
                context.Request.Headers["traceparent"].ToString() is { Length: > 0 } t ? t : null));
        }
    }

    private static string? StatusOf(Resource resource) => resource switch
    {
        MedicationRequest m => m.StatusElement?.JsonValue as string,
        MedicationStatement m => m.StatusElement?.JsonValue as string,
        _ => null,
    };

    private static System.Threading.Tasks.Task Write(HttpContext context, Resource resource) =>
        context.Response.WriteAsync(JsonSerializer.Serialize(resource, FhirJson.Options));

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
