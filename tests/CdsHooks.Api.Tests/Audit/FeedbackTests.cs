using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using CdsHooks.Tests;
using Microsoft.Extensions.DependencyInjection;

namespace CdsHooks.Api.Tests.Audit;

/// <summary>CDS Hooks feedback, the audit trail behind it and the analytics built on it, on the default SQLite file.</summary>
public sealed class FeedbackTests(CdsHooksApplication app) : IClassFixture<CdsHooksApplication>
{
    private const string OrderSign = "/cds-services/medication-safety-order-sign";
    private const string Feedback = "/cds-services/medication-safety-order-sign/feedback";

    private readonly HttpClient _client = app.CreateClient();

    private async Task<JsonNode> IssueCard(string sample = "order-sign-mirtazapine-80-year-old-on-clonazepam.json")
    {
        var response = await _client.PostJson(OrderSign, Repository.SampleNode(sample));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Json())["cards"]![0]!;
    }

    private static JsonObject Overridden(JsonNode card, string code = "benefit-outweighs-risk", string? timestamp = null) => new()
    {
        ["card"] = (string)card["uuid"]!,
        ["outcome"] = "overridden",
        ["overrideReason"] = new JsonObject
        {
            ["reason"] = new JsonObject { ["system"] = "urn:medication-safety-cds:override-reason", ["code"] = code, ["display"] = "Benefit outweighs risk; will monitor" },
            ["userComment"] = "Discussed with the patient",
        },
        ["outcomeTimestamp"] = timestamp ?? DateTimeOffset.UtcNow.ToString("O"),
    };

    private static JsonObject Accepted(JsonNode card) => new()
    {
        ["card"] = (string)card["uuid"]!,
        ["outcome"] = "accepted",
        ["acceptedSuggestions"] = new JsonArray(new JsonObject { ["id"] = (string)card["suggestions"]![0]!["uuid"]! }),
        ["outcomeTimestamp"] = DateTimeOffset.UtcNow.ToString("O"),
    };

    private async Task<HttpResponseMessage> Send(params JsonObject[] items) =>
        await _client.PostJson(Feedback, new JsonObject { ["feedback"] = new JsonArray([.. items]) });

    private async Task<JsonArray> Outcomes()
    {
        var response = await _client.GetAsync(new Uri("/analytics/outcomes", UriKind.Relative), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Json())["rules"]!.AsArray();
    }

    [Fact]
    public async Task CardsOfferToCancelTheNewOrder()
    {
        var card = await IssueCard();

        Assert.Equal("at-most-one", (string)card["selectionBehavior"]!);
        var cancel = card["suggestions"]!.AsArray().Single(s => ((string)s!["label"]!).StartsWith("Cancel", StringComparison.Ordinal))!;
        var action = cancel["actions"]![0]!;
        Assert.Equal("delete", (string)action["type"]!);
        Assert.Equal("MedicationRequest/mirtazapine-draft", (string)action["resourceId"]!);
    }

    [Fact]
    public async Task ADoseRuleOffersTheSameOrderAtALowerDose()
    {
        var card = await IssueCard("order-sign-mirtazapine-80-year-old-copd-high-doses.json"); // mirtazapine 45 mg started at 80

        var lower = card["suggestions"]!.AsArray().Single(s => ((string)s!["label"]!).Contains("15 mg/day", StringComparison.Ordinal))!;
        var update = lower["actions"]![0]!;
        Assert.Equal("update", (string)update["type"]!);
        Assert.Equal("MedicationRequest", (string)update["resource"]!["resourceType"]!);
        Assert.Equal("mirtazapine-draft", (string)update["resource"]!["id"]!);
        Assert.Equal(15m, (decimal)update["resource"]!["dosageInstruction"]![0]!["doseAndRate"]![0]!["doseQuantity"]!["value"]!);
        // The whole order as the EHR sent it, not only what the rules read: the update replaces the order.
        Assert.Equal("Patient/elderly-1", (string)update["resource"]!["subject"]!["reference"]!);
        Assert.Equal("2026-01-10", (string)update["resource"]!["authoredOn"]!);
    }

    [Fact]
    public async Task FeedbackRoundTripReachesTheAnalytics()
    {
        var overridden = await IssueCard();
        var accepted = await IssueCard();
        await IssueCard(); // shown, no feedback

        var response = await Send(Overridden(overridden), Accepted(accepted));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.All((await response.Json())["results"]!.AsArray(), r => Assert.Equal("recorded", (string)r!["status"]!));
        var rule = (await Outcomes()).Single(r => (string)r!["ruleId"]! == "mirtazapine-benzodiazepine" && (string)r!["indicator"]! == "warning")!;
        Assert.True((long)rule["shown"]! >= 3);
        Assert.True((long)rule["accepted"]! >= 1);
        Assert.True((long)rule["overridden"]! >= 1);
        Assert.Contains(rule["topOverrideReasons"]!.AsArray(), r => (string)r!["code"]! == "benefit-outweighs-risk");
    }

    [Fact]
    public async Task SendingTheSameFeedbackTwiceRecordsItOnce()
    {
        var item = Overridden(await IssueCard(), timestamp: "2026-11-26T10:00:00Z");

        await Send(item);
        var again = await Send((JsonObject)item.DeepClone());

        Assert.Equal("already-recorded", (string)(await again.Json())["results"]![0]!["status"]!);
    }

    [Fact]
    public async Task FeedbackForACardThisServiceDidNotIssueIsAnsweredAndIgnored()
    {
        var response = await Send(new JsonObject
        {
            ["card"] = Guid.NewGuid().ToString(), ["outcome"] = "overridden", ["outcomeTimestamp"] = DateTimeOffset.UtcNow.ToString("O"),
        });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("unknown-card", (string)(await response.Json())["results"]![0]!["status"]!);
    }

    [Theory]
    [InlineData("""{"feedback": []}""", "feedback")]
    [InlineData("""{"feedback": [{"card": "not-a-uuid", "outcome": "overridden", "outcomeTimestamp": "2026-11-26T10:00:00Z"}]}""", "feedback[0].card")]
    [InlineData("""{"feedback": [{"card": "8d3d3a1e-4b8f-4f5e-9a51-0d7c3c2b1a00", "outcome": "ignored", "outcomeTimestamp": "2026-11-26T10:00:00Z"}]}""", "feedback[0].outcome")]
    [InlineData("""{"feedback": [{"card": "8d3d3a1e-4b8f-4f5e-9a51-0d7c3c2b1a00", "outcome": "accepted", "outcomeTimestamp": "2026-11-26T10:00:00Z"}]}""", "feedback[0].acceptedSuggestions")]
    [InlineData("""{"feedback": [{"card": "8d3d3a1e-4b8f-4f5e-9a51-0d7c3c2b1a00", "outcome": "overridden", "outcomeTimestamp": "yesterday"}]}""", "feedback[0].outcomeTimestamp")]
    [InlineData("""{"feedback": [{"card": "8d3d3a1e-4b8f-4f5e-9a51-0d7c3c2b1a00", "outcome": "overridden"}]}""", "feedback[0].outcomeTimestamp")]
    [InlineData("""{"feedback": [{"card": "8d3d3a1e-4b8f-4f5e-9a51-0d7c3c2b1a00", "outcome": "overridden", "outcomeTimestamp": "2026-11-26T10:00:00"}]}""", "feedback[0].outcomeTimestamp")]
    [InlineData("""{"feedback": [{"card": "8d3d3a1e-4b8f-4f5e-9a51-0d7c3c2b1a00", "outcome": "overridden", "outcomeTimestamp": "2026-11-26T10:00:00Z", "overrideReason": {"reason": "busy"}}]}""", "feedback[0].overrideReason.reason")]
    public async Task MalformedFeedbackIs400AndNothingIsStored(string body, string location)
    {
        var response = await _client.PostJson(Feedback, body);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await response.Json();
        Assert.Contains(problem["issues"]!.AsArray(), i => (string)i!["location"]! == location);
    }

    [Fact]
    public async Task TooManyItemsOrTooLongACodeIs400()
    {
        var many = new JsonArray([.. Enumerable.Range(0, 101).Select(_ => (JsonNode)new JsonObject())]);
        Assert.Equal(HttpStatusCode.BadRequest, (await _client.PostJson(Feedback, new JsonObject { ["feedback"] = many })).StatusCode);

        var item = Overridden(await IssueCard());
        item["overrideReason"]!["reason"]!["code"] = new string('c', 150);
        var response = await Send(item);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains((await response.Json())["issues"]!.AsArray(), i => (string)i!["location"]! == "feedback[0].overrideReason.reason.code");
    }

    [Fact]
    public async Task ABatchWithOneMalformedItemStoresNoneOfIt()
    {
        var good = Overridden(await IssueCard());
        var bad = new JsonObject { ["card"] = "not-a-uuid", ["outcome"] = "overridden", ["outcomeTimestamp"] = DateTimeOffset.UtcNow.ToString("O") };

        Assert.Equal(HttpStatusCode.BadRequest, (await Send(good, bad)).StatusCode);

        var alone = await Send((JsonObject)good.DeepClone());
        Assert.Equal("recorded", (string)(await alone.Json())["results"]![0]!["status"]!); // not "already-recorded"
    }

    [Fact]
    public async Task FeedbackWritesAreDurableSqliteTransactions()
    {
        var store = app.Services.GetRequiredService<CdsHooks.Api.Audit.CardStore>();

        Assert.Equal(2, await store.DurableSynchronousModeAsync(TestContext.Current.CancellationToken)); // 2 = FULL
    }

    [Theory]
    [InlineData("?to=9999-12-31")]
    [InlineData("?from=0001-01-01")]
    [InlineData("?from=yesterday")]
    public async Task OutcomesRefuseDatesOutsideTheServicesLife(string query) =>
        Assert.Equal(HttpStatusCode.BadRequest, (await _client.GetAsync(new Uri("/analytics/outcomes" + query, UriKind.Relative), TestContext.Current.CancellationToken)).StatusCode);

    [Fact]
    public async Task AcceptingASuggestionTheCardDidNotOfferIs400()
    {
        var item = Accepted(await IssueCard());
        item["acceptedSuggestions"]![0]!["id"] = Guid.NewGuid().ToString();

        var response = await Send(item);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task TheDatabaseHoldsKeyedHashesNeverThePatientOrEncounterInClear()
    {
        var card = await IssueCard();
        await Send(Overridden(card));

        var bytes = File.ReadAllBytes(app.DatabasePath).Concat(File.Exists(app.DatabasePath + "-wal") ? File.ReadAllBytes(app.DatabasePath + "-wal") : []).ToArray();
        var text = Encoding.UTF8.GetString(bytes);
        Assert.Contains((string)card["uuid"]!, text, StringComparison.Ordinal); // the file is readable as text: the check is real
        foreach (var clear in new[] { "elderly-1", "enc-1", "Testpatient", "Eleanor", "1946-03-14", "Discussed with the patient" })
        {
            Assert.DoesNotContain(clear, text, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task OutcomesRejectABadPeriod()
    {
        var response = await _client.GetAsync(new Uri("/analytics/outcomes?from=2026-12-01&to=2026-01-01", UriKind.Relative), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task TheAnalyticsPageIsServed()
    {
        var page = await _client.GetStringAsync(new Uri("/analytics", UriKind.Relative), TestContext.Current.CancellationToken);

        Assert.Contains("Card outcomes", page, StringComparison.Ordinal);
    }
}
