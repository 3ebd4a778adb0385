using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using CdsHooks.Api.Audit;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace CdsHooks.Api.Analytics;

public sealed record OutcomesReport(DateTimeOffset From, DateTimeOffset To, IReadOnlyList<RuleOutcomes> Rules);

/// <summary>
/// Which cards clinicians act on and which they override, per rule and indicator over a period: aggregates only, for
/// the people who tune the rules. <c>GET /analytics/outcomes?from=2026-01-01&amp;to=2026-12-31</c> (JSON) and
/// <c>GET /analytics</c> (a page that shows it). Reading them takes an analytics key (<c>Authorization: Bearer</c>),
/// whose SHA-256 hash is configured in <c>Audit:AnalyticsKeyHashes</c>; without keys they are open in Development
/// only.
/// </summary>
public static class AnalyticsApi
{
    public static void MapAnalytics(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/analytics");
        group.MapGet("/outcomes", Outcomes);
        group.MapGet("/", () => Results.File(Path.Combine(AppContext.BaseDirectory, "wwwroot", "analytics.html"), "text/html; charset=utf-8"));
    }

    public static async Task<Results<Ok<OutcomesReport>, ProblemHttpResult, UnauthorizedHttpResult>> Outcomes(
        HttpRequest request, string? from, string? to, CardStore store, IOptions<AuditOptions> options, IHostEnvironment environment,
        TimeProvider time, CancellationToken cancellationToken)
    {
        if (!Authorised(request, options.Value, environment)) return TypedResults.Unauthorized();

        var end = to is null ? time.GetUtcNow() : ParseDay(to)?.AddDays(1);
        var start = from is null ? end?.AddDays(-30) : ParseDay(from);
        if (start is null || end is null || start >= end)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Invalid period",
                detail: "from and to are dates (yyyy-MM-dd), from before to; the default is the last 30 days.");
        }

        return TypedResults.Ok(new OutcomesReport(start.Value, end.Value, await store.OutcomesAsync(start.Value, end.Value, cancellationToken)));
    }

    // Days from 2000 to 2100: anything else is not a period of this service's life (and would overflow the arithmetic).
    private static DateTimeOffset? ParseDay(string day) =>
        DateOnly.TryParseExact(day, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date) && date.Year is >= 2000 and <= 2100
            ? new DateTimeOffset(date.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero)
            : null;

    private static bool Authorised(HttpRequest request, AuditOptions options, IHostEnvironment environment)
    {
        if (options.AnalyticsKeyHashes.Count == 0) return environment.IsDevelopment();
        var header = request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return false;
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(header["Bearer ".Length..].Trim()));
        return options.AnalyticsKeyHashes.Exists(h =>
            h.Length == 64 && CryptographicOperations.FixedTimeEquals(Convert.FromHexString(h), hash));
    }
}
