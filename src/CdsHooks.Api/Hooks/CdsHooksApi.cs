using System.Text.Json;
using CdsHooks.Api.Audit;
using CdsHooks.Api.Feedback;
using CdsHooks.Api.Security;
using CdsHooks.Engine;
using CdsHooks.Engine.Fhir;
using CdsHooks.Engine.Hooks;
using CdsHooks.Engine.Telemetry;
using Microsoft.AspNetCore.Http.HttpResults;
using Serilog;

namespace CdsHooks.Api.Hooks;

public static class CdsHooksApi
{
    // Deep nesting is refused before any FHIR parsing happens; FHIR resources in CDS Hooks calls are far shallower.
    private static readonly JsonDocumentOptions BodyOptions = new() { MaxDepth = 64, AllowDuplicateProperties = false };

    public static void AddCdsHooks(this WebApplicationBuilder builder) =>
        builder.Services.ConfigureHttpJsonOptions(options =>
        {
            // The spec forbids null members (requirement 3): optional card members are left out instead.
            options.SerializerOptions.DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull;
            FhirJson.Configure(options.SerializerOptions);
        });

    public static void MapCdsHooks(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/cds-services").WithCdsSecurity(app.ServiceProvider);
        group.MapGet("/", Discover);
        group.MapPost("/{id}", CallService);
        group.MapFeedback();
    }

    public static Ok<DiscoveryResponse> Discover() => TypedResults.Ok(HookCatalog.Discovery);

    public static async Task<Results<Ok<CdsResponse>, ProblemHttpResult>> CallService(
        string id, HttpRequest request, CdsEngine engine, AuditTrail audit, IDiagnosticContext diagnostics, CancellationToken cancellationToken)
    {
        diagnostics.Set("ServiceId", id);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        if (HookCatalog.Find(id) is not { } service)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Unknown CDS service",
                detail: "GET /cds-services lists the services this endpoint offers.");
        }

        if (!request.HasJsonContentType())
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status415UnsupportedMediaType, title: "Unsupported media type",
                detail: "CDS Hooks requests are JSON: send Content-Type: application/json.");
        }

        using var body = await JsonDocument.ParseAsync(request.Body, BodyOptions, cancellationToken);
        var hookRequest = HookRequestReader.Read(body.RootElement, service);
        diagnostics.Set("Hook", service.Hook);
        diagnostics.Set("HookInstance", hookRequest.HookInstance);

        var cards = await audit.ShowAsync(hookRequest, await engine.EvaluateAsync(hookRequest, cancellationToken), cancellationToken);
        var response = new CdsResponse(cards);
        diagnostics.Set("CardCount", response.Cards.Count);
        CdsMetrics.HookDuration.Record(clock.Elapsed.TotalMilliseconds, new("hook", service.Hook), new("service", service.Id));
        return TypedResults.Ok(response);
    }
}
