using System.Globalization;
using System.Text.Json;
using CdsHooks.Api.Audit;
using CdsHooks.Engine.Fhir;
using CdsHooks.Engine.Hooks;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CdsHooks.Api.Feedback;

public sealed record FeedbackItemResult(string Card, string Status);

public sealed record FeedbackResponse(IReadOnlyList<FeedbackItemResult> Results);

/// <summary>
/// CDS Hooks 2.0 feedback: <c>POST {baseUrl}/cds-services/{id}/feedback</c> with <c>{"feedback": [...]}</c>.
/// The whole body is validated first; any malformed item makes it a 400 and nothing is stored. Otherwise each item is
/// answered in <c>results</c>: <c>recorded</c>, <c>already-recorded</c> (the same card, outcome and time again: sending
/// feedback twice is harmless) or <c>unknown-card</c> (not a card this service issued, or one already purged: ignored).
/// A 200 means every recorded item is on disk.
/// </summary>
public static class FeedbackApi
{
    private static readonly JsonDocumentOptions BodyOptions = new() { MaxDepth = 32, AllowDuplicateProperties = false };

    /// <summary>Items per request: a clinician acts on a handful of cards at a time.</summary>
    public const int MaxItems = 100;

    public static void MapFeedback(this RouteGroupBuilder cdsServices) => cdsServices.MapPost("/{id}/feedback", Receive);

    public static async Task<Results<Ok<FeedbackResponse>, ProblemHttpResult>> Receive(
        string id, HttpRequest request, CardStore store, TimeProvider time, CancellationToken cancellationToken)
    {
        if (HookCatalog.Find(id) is null)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Unknown CDS service");
        }

        using var body = await JsonDocument.ParseAsync(request.Body, BodyOptions, cancellationToken);
        var items = Read(body.RootElement);
        var known = await store.KnownCardsAsync([.. items.Select(i => i.CardUuid).Distinct()], cancellationToken);

        // An accepted suggestion must be one the card offered.
        var issues = new List<RequestIssue>();
        for (var i = 0; i < items.Count; i++)
        {
            if (known.TryGetValue(items[i].CardUuid, out var offered) && items[i].AcceptedSuggestions.Except(offered.Select(o => o[(o.IndexOf(':', StringComparison.Ordinal) + 1)..])).Any())
            {
                issues.Add(new RequestIssue($"feedback[{i}].acceptedSuggestions", "not-found", "A suggestion id that this card did not offer."));
            }
        }

        if (issues.Count > 0) throw new InvalidHookRequestException(issues);

        var results = await store.RecordFeedbackAsync(items, time.GetUtcNow(), cancellationToken);
        return TypedResults.Ok(new FeedbackResponse([.. items.Zip(results, (item, result) => new FeedbackItemResult(item.CardUuid, result switch
        {
            FeedbackResult.Recorded => "recorded",
            FeedbackResult.AlreadyRecorded => "already-recorded",
            _ => "unknown-card",
        }))]));
    }

    private static List<FeedbackRecord> Read(JsonElement root)
    {
        var issues = new List<RequestIssue>();
        var items = new List<FeedbackRecord>();
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("feedback", out var list) || list.ValueKind != JsonValueKind.Array || list.GetArrayLength() == 0)
        {
            throw new InvalidHookRequestException([new RequestIssue("feedback", "required", "The body is {\"feedback\": [ ... ]} with at least one item.")]);
        }

        if (list.GetArrayLength() > MaxItems)
        {
            throw new InvalidHookRequestException([new RequestIssue("feedback", "too-many", $"At most {MaxItems} feedback items per request.")]);
        }

        var index = 0;
        foreach (var item in list.EnumerateArray())
        {
            var at = $"feedback[{index++}]";
            if (item.ValueKind != JsonValueKind.Object)
            {
                issues.Add(new RequestIssue(at, "invalid-type", "A feedback item is an object."));
                continue;
            }

            var card = Text(item, "card", at, issues);
            if (card is not null && !Guid.TryParse(card, out _)) issues.Add(new RequestIssue($"{at}.card", "invalid-value", "card is the uuid of a card."));
            var outcome = Text(item, "outcome", at, issues);
            if (outcome is not null and not ("accepted" or "overridden"))
            {
                issues.Add(new RequestIssue($"{at}.outcome", "invalid-value", "outcome is accepted or overridden."));
            }

            var timestamp = Text(item, "outcomeTimestamp", at, issues);
            DateTimeOffset when = default;
            // An instant: with its offset (Z or ±hh:mm), never read in the server's local time.
            if (timestamp is not null && (!(timestamp.EndsWith('Z') || timestamp.Length > 6 && timestamp[^6] is '+' or '-' && timestamp[^3] == ':')
                || !DateTimeOffset.TryParse(timestamp, CultureInfo.InvariantCulture, DateTimeStyles.None, out when)))
            {
                issues.Add(new RequestIssue($"{at}.outcomeTimestamp", "invalid-value", "outcomeTimestamp is an ISO 8601 instant with its offset."));
            }

            var accepted = AcceptedSuggestions(item, at, issues);
            if (outcome == "accepted" && accepted.Count == 0)
            {
                issues.Add(new RequestIssue($"{at}.acceptedSuggestions", "required", "An accepted card names the suggestions accepted."));
            }

            var (system, code, display, comment) = OverrideReason(item, at, issues);
            if (card is not null && outcome is not null && timestamp is not null)
            {
                items.Add(new FeedbackRecord(card, outcome, when, accepted, system, code, display, comment));
            }
        }

        return issues.Count > 0 ? throw new InvalidHookRequestException(issues) : items;
    }

    private static List<string> AcceptedSuggestions(JsonElement item, string at, List<RequestIssue> issues)
    {
        var ids = new List<string>();
        if (!item.TryGetProperty("acceptedSuggestions", out var list) || list.ValueKind == JsonValueKind.Null) return ids;
        if (list.ValueKind != JsonValueKind.Array)
        {
            issues.Add(new RequestIssue($"{at}.acceptedSuggestions", "invalid-type", "acceptedSuggestions is an array of {\"id\": uuid}."));
            return ids;
        }

        var i = 0;
        foreach (var suggestion in list.EnumerateArray())
        {
            var where = $"{at}.acceptedSuggestions[{i++}]";
            if (suggestion.ValueKind != JsonValueKind.Object)
            {
                issues.Add(new RequestIssue(where, "invalid-type", "An accepted suggestion is {\"id\": uuid}."));
                continue;
            }

            if (Text(suggestion, "id", where, issues, 64) is { } id) ids.Add(id);
        }

        return ids;
    }

    private static (string? System, string? Code, string? Display, bool Comment) OverrideReason(JsonElement item, string at, List<RequestIssue> issues)
    {
        if (!item.TryGetProperty("overrideReason", out var reason) || reason.ValueKind == JsonValueKind.Null) return (null, null, null, false);
        if (reason.ValueKind != JsonValueKind.Object)
        {
            issues.Add(new RequestIssue($"{at}.overrideReason", "invalid-type", "overrideReason is {\"reason\": Coding, \"userComment\": string}."));
            return (null, null, null, false);
        }

        var comment = reason.TryGetProperty("userComment", out var c) && c.ValueKind == JsonValueKind.String && c.GetString()?.Length > 0;
        if (!reason.TryGetProperty("reason", out var coding) || coding.ValueKind == JsonValueKind.Null) return (null, null, null, comment);
        if (coding.ValueKind != JsonValueKind.Object)
        {
            issues.Add(new RequestIssue($"{at}.overrideReason.reason", "invalid-type", "reason is a Coding."));
            return (null, null, null, comment);
        }

        var where = $"{at}.overrideReason.reason";
        return (Optional(coding, "system", where, issues, 200), Text(coding, "code", where, issues, 100), Optional(coding, "display", where, issues, 200), comment);
    }

    // The lengths are those of the database columns, so that what validates is what can be stored.
    private static string? Text(JsonElement obj, string name, string at, List<RequestIssue> issues, int maxLength = 64)
    {
        var value = Optional(obj, name, at, issues, maxLength);
        if (value is null && !issues.Exists(i => i.Location == $"{at}.{name}"))
        {
            issues.Add(new RequestIssue($"{at}.{name}", "required", $"{name} is required."));
        }

        return value;
    }

    private static string? Optional(JsonElement obj, string name, string at, List<RequestIssue> issues, int maxLength)
    {
        if (!obj.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind != JsonValueKind.String)
        {
            issues.Add(new RequestIssue($"{at}.{name}", "invalid-type", $"{name} must be a string."));
            return null;
        }

        try
        {
            var text = value.GetString();
            if (text is { Length: > 0 } && text.Length <= maxLength) return text;
            issues.Add(new RequestIssue($"{at}.{name}", "invalid-value", $"{name} must be 1 to {maxLength} characters."));
            return null;
        }
        catch (InvalidOperationException)
        {
            issues.Add(new RequestIssue($"{at}.{name}", "invalid-value", $"{name} is not valid Unicode text."));
            return null;
        }
    }
}
