using System.Text.Json;
using CdsHooks.Engine.Fhir;
using CdsHooks.Engine.Hooks;
using CdsHooks.Engine.Patients;
using Hl7.Fhir.Model;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;

namespace CdsHooks.Api.Errors;

public static class ErrorHandling
{
    public static void AddErrorHandling(this WebApplicationBuilder builder)
    {
        builder.Services.AddProblemDetails();
        builder.Services.AddExceptionHandler<CdsExceptionHandler>();
    }

    public static void UseErrorHandling(this WebApplication app)
    {
        app.UseExceptionHandler();
        app.UseStatusCodePages();
    }
}

/// <summary>The one place where exceptions become HTTP answers. Bad input is a 4xx with a problem body that says
/// where the problem is but never repeats the request's content (it may be patient data); missing patient data is the
/// spec's 412 with an OperationOutcome; anything else is a 500 whose details stay in the log.</summary>
public sealed class CdsExceptionHandler(IProblemDetailsService problems, ILogger<CdsExceptionHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        switch (exception)
        {
            case InvalidHookRequestException invalid:
                return await Problem(httpContext, StatusCodes.Status400BadRequest, "Invalid CDS Hooks request",
                    "The request does not meet the CDS Hooks 2.0 contract for this service; see issues.", invalid.Issues);

            case JsonException json:
                return await Problem(httpContext, StatusCodes.Status400BadRequest, "Malformed JSON",
                    "The request body is not well-formed JSON.",
                    [new RequestIssue(json.LineNumber is { } line ? $"line {line + 1}, byte {json.BytePositionInLine}" : "$", "invalid-json",
                        "The JSON could not be parsed at this position.")]);

            case BadHttpRequestException bad:
                return await Problem(httpContext, bad.StatusCode, "Bad request", "The request could not be read.", null);

            // A FHIR element the parser tolerated but that cannot be read as its R4 type: still the client's input.
            case Hl7.Fhir.Validation.CodedValidationException:
                return await Problem(httpContext, StatusCodes.Status400BadRequest, "Invalid FHIR resource",
                    "A FHIR element in the request does not have its R4 type or shape.", null);

            case MissingPatientDataException missing:
                CdsHooks.Engine.Telemetry.CdsMetrics.PreconditionFailed.Add(1);
                await PreconditionFailed(httpContext, missing, cancellationToken);
                return true;

            // The audit database is down (hook calls still answer; only feedback and analytics need it).
            case System.Data.Common.DbException:
                logger.LogError("Audit database unavailable ({ExceptionType})", exception.GetType().Name);
                httpContext.Response.Headers.RetryAfter = "5";
                return await Problem(httpContext, StatusCodes.Status503ServiceUnavailable, "Database unavailable",
                    "The service could not reach its database; retry shortly.", null);

            case OperationCanceledException when httpContext.RequestAborted.IsCancellationRequested:
                return true; // the client went away; nobody is left to answer

            default:
                // The message of an unexpected exception may quote request content: log the type and stack only.
                logger.LogError("Unhandled {ExceptionType} {StackTrace}", exception.GetType().FullName, exception.StackTrace);
                return await Problem(httpContext, StatusCodes.Status500InternalServerError, "Internal error",
                    "The service failed to process the request.", null);
        }
    }

    private async ValueTask<bool> Problem(HttpContext context, int status, string title, string detail, IReadOnlyList<RequestIssue>? issues)
    {
        context.Response.StatusCode = status;
        var problem = new ProblemDetails { Status = status, Title = title, Detail = detail };
        if (issues is not null) problem.Extensions["issues"] = issues;
        return await problems.TryWriteAsync(new ProblemDetailsContext { HttpContext = context, ProblemDetails = problem });
    }

    // CDS Hooks 2.0 (requirement 54): a service that cannot get the data it needs answers 412.
    private static async System.Threading.Tasks.Task PreconditionFailed(HttpContext context, MissingPatientDataException missing, CancellationToken cancellationToken)
    {
        var outcome = new OperationOutcome
        {
            Issue = [.. missing.Reasons.Select(pair => new OperationOutcome.IssueComponent
            {
                Severity = OperationOutcome.IssueSeverity.Error,
                Code = OperationOutcome.IssueType.Incomplete,
                Diagnostics = $"Prefetch '{pair.Key}' ({PrefetchKeys.Templates[pair.Key]}) is missing or failed, and the " +
                    $"EHR's FHIR server could not provide it: {pair.Value}.",
                Expression = [$"prefetch.{pair.Key}"],
            })],
        };
        context.Response.StatusCode = StatusCodes.Status412PreconditionFailed;
        context.Response.ContentType = "application/fhir+json";
        await JsonSerializer.SerializeAsync(context.Response.Body, outcome, FhirJson.Options, cancellationToken);
    }
}
