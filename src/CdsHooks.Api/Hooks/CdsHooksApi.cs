using System.Text.Json;
using CdsHooks.Api.Audit;
using CdsHooks.Api.Feedback;
using CdsHooks.Api.Security;
using CdsHooks.Engine;
using CdsHooks.Engine.Hooks;
using CdsHooks.Engine.Telemetry;
using Microsoft.AspNetCore.Http.HttpResults;
using Serilog;

namespace CdsHooks.Api.Hooks;

public static class CdsHooksApi
{
    public static void AddCdsHooks(this WebApplicationBuilder builder)
    {
        // The spec forbids null members (requirement 3): optional card members are left out instead.
        builder.Services.ConfigureHttpJsonOptions(options => CdsJson.Configure(options.SerializerOptions));
        builder.Services.AddSingleton<CdsAnswer.Json>();
    }

    public static void MapCdsHooks(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/cds-services").WithCdsSecurity(app.ServiceProvider);
        group.MapGet("/", Discover);
        group.MapPost("/{id}", CallService);
        group.MapFeedback();
    }

    public static Ok<DiscoveryResponse> Discover() => TypedResults.Ok(HookCatalog.Discovery);

    public static async Task<Results<CdsAnswer, ProblemHttpResult>> CallService(
        string id, HttpRequest request, CdsEngine engine, AuditTrail audit, IDiagnosticContext diagnostics, CancellationToken cancellationToken)
    {
        diagnostics.Set("ServiceId", id);
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
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

        HookRequest hookRequest;
        var (body, length) = await ReadBodyAsync(request, cancellationToken);
        try
        {
            hookRequest = HookRequestReader.Read(body.AsSpan(0, length), service);
        }
        finally
        {
            Release(body, length);
        }

        diagnostics.Set("Hook", service.Hook);
        diagnostics.Set("HookInstance", hookRequest.HookInstance);

        var cards = await audit.ShowAsync(hookRequest, await engine.EvaluateAsync(hookRequest, cancellationToken), cancellationToken);
        var response = new CdsResponse(cards);
        diagnostics.Set("CardCount", response.Cards.Count);
        CdsMetrics.HookDuration.Record(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds, new("hook", service.Hook), new("service", service.Id));
        return new CdsAnswer(response);
    }

    /// <summary>The body whole, in a pooled buffer: the reader makes one pass over its text, with no document in
    /// between (docs/performance.md). Its size is bounded by <c>Limits:MaxRequestBodyBytes</c> (SecurityExtensions).</summary>
    private static async Task<(byte[] Buffer, int Length)> ReadBodyAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        var pool = System.Buffers.ArrayPool<byte>.Shared;
        // One byte more than announced, so that the read that finds the end needs no larger buffer.
        var buffer = pool.Rent(request.ContentLength is > 0 and < int.MaxValue ? (int)request.ContentLength + 1 : 16 * 1024);
        var length = 0;
        try
        {
            int read;
            while ((read = await request.Body.ReadAsync(buffer.AsMemory(length), cancellationToken)) > 0)
            {
                length += read;
                if (length < buffer.Length) continue;
                var larger = pool.Rent(buffer.Length * 2);
                buffer.AsSpan(0, length).CopyTo(larger);
                Release(buffer, length);
                buffer = larger;
            }

            return (buffer, length);
        }
        catch
        {
            Release(buffer, length);
            throw;
        }
    }

    // The body holds patient data and the EHR's access token: cleared before the buffer goes back to the pool.
    private static void Release(byte[] buffer, int length)
    {
        buffer.AsSpan(0, length).Clear();
        System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
    }
}
