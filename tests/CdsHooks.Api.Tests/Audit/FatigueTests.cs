using System.Net;
using System.Text.Json.Nodes;
using CdsHooks.Tests;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace CdsHooks.Api.Tests.Audit;

/// <summary>The alert-fatigue controls, each on its own: a card is not repeated, not shown again after its suggestion
/// was taken, and held back for a while after a considered override, unless it became more serious.</summary>
public sealed class FatigueTests : IAsyncLifetime
{
    private const string OrderSelect = "/cds-services/medication-safety-order-select";
    private const string OrderSign = "/cds-services/medication-safety-order-sign";

    private readonly CdsHooksApplication _root = new();
    private WebApplicationFactory<Program> _app = null!;

    public ValueTask InitializeAsync()
    {
        _app = With(("Fatigue:Enabled", "true"));
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.DisposeAsync();
        await _root.DisposeAsync();
    }

    private WebApplicationFactory<Program> With(params (string Key, string Value)[] settings) =>
        _root.WithWebHostBuilder(b =>
        {
            foreach (var (key, value) in settings) b.UseSetting(key, value);
        });

    private static JsonNode Sign(string sample = "order-sign-mirtazapine-80-year-old-on-clonazepam.json", string? encounter = null)
    {
        var request = Repository.SampleNode(sample);
        request["hookInstance"] = Guid.NewGuid().ToString();
        if (encounter is not null) request["context"]!["encounterId"] = encounter;
        return request;
    }

    // The same order at order-select: the mirtazapine draft selected, on the same patient and encounter.
    private static JsonNode Select()
    {
        var request = Sign();
        request["hook"] = "order-select";
        request["context"]!["selections"] = new JsonArray("MedicationRequest/mirtazapine-draft");
        return request;
    }

    private static async Task<JsonArray> Cards(WebApplicationFactory<Program> app, string url, JsonNode request)
    {
        var response = await app.CreateClient().PostJson(url, request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Json())["cards"]!.AsArray();
    }

    private static async Task Feedback(WebApplicationFactory<Program> app, JsonNode card, JsonObject outcome)
    {
        outcome["card"] = (string)card["uuid"]!;
        outcome["outcomeTimestamp"] ??= DateTimeOffset.UtcNow.ToString("O");
        var response = await app.CreateClient().PostJson(OrderSign + "/feedback", new JsonObject { ["feedback"] = new JsonArray(outcome) });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    private static JsonObject Override(string code) => new()
    {
        ["outcome"] = "overridden",
        ["overrideReason"] = new JsonObject { ["reason"] = new JsonObject { ["system"] = "urn:medication-safety-cds:override-reason", ["code"] = code } },
    };

    [Fact]
    public async Task AHistoryThatCannotBeReadLeavesTheCardsUnfiltered()
    {
        Assert.Single(await Cards(_app, OrderSign, Sign()));

        // The analytics wait for the card's record to be written; the record is then made unreadable to this version
        // (an indicator it does not know, as a later version might write).
        await _app.CreateClient().GetAsync(new Uri("/analytics/outcomes", UriKind.Relative), TestContext.Current.CancellationToken);
        await using (var database = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={_root.DatabasePath}"))
        {
            await database.OpenAsync(TestContext.Current.CancellationToken);
            await using var update = database.CreateCommand();
            update.CommandText = "UPDATE issued_card SET indicator = 'catastrophic'";
            Assert.Equal(1, await update.ExecuteNonQueryAsync(TestContext.Current.CancellationToken));
        }

        // The same card again, which the repeat window would hold back: the controls cannot read the history, and
        // the clinician still gets the warning.
        Assert.Single(await Cards(_app, OrderSign, Sign()));
        Assert.Contains(_root.Logs.Events, e => e.MessageTemplate.Text.StartsWith("Audit trail failed", StringComparison.Ordinal));
    }

    [Fact]
    public async Task OrderSignAfterOrderSelectDoesNotRepeatTheCard()
    {
        Assert.Single(await Cards(_app, OrderSelect, Select()));

        Assert.Empty(await Cards(_app, OrderSign, Sign()));
    }

    [Fact]
    public async Task ACardWhoseIndicatorRoseIsShownAgain()
    {
        Assert.Equal("warning", (string)Assert.Single(await Cards(_app, OrderSign, Sign()))!["indicator"]!);

        // Same patient, encounter and drugs, now with high doses: critical.
        var worse = Sign("order-sign-mirtazapine-80-year-old-copd-high-doses.json");
        Assert.Equal("critical", (string)Assert.Single(await Cards(_app, OrderSign, worse))!["indicator"]!);
    }

    [Fact]
    public async Task AnotherEncounterIsNotARepeat()
    {
        Assert.Single(await Cards(_app, OrderSign, Sign(encounter: "enc-1")));

        Assert.Single(await Cards(_app, OrderSign, Sign(encounter: "enc-2")));
    }

    [Fact]
    public async Task AnAcceptedDoseChangeIsNotAskedAgain()
    {
        await using var app = With(("Fatigue:Enabled", "true"), ("Fatigue:RepeatWindow", "00:00:00"));
        const string sample = "order-sign-mirtazapine-80-year-old-copd-high-doses.json"; // mirtazapine 45 mg started at 80
        var card = Assert.Single(await Cards(app, OrderSign, Sign(sample)))!;
        var lower = card["suggestions"]!.AsArray().Single(s => (string)s!["actions"]![0]!["type"]! == "update")!;
        await Feedback(app, card, new JsonObject
        {
            ["outcome"] = "accepted",
            ["acceptedSuggestions"] = new JsonArray(new JsonObject { ["id"] = (string)lower["uuid"]! }),
        });

        Assert.Empty(await Cards(app, OrderSign, Sign(sample)));
    }

    [Fact]
    public async Task OrderingAgainAfterACancelledOrderIsANewDecisionAndGetsTheCard()
    {
        await using var app = With(("Fatigue:Enabled", "true"), ("Fatigue:RepeatWindow", "00:00:00"));
        var card = Assert.Single(await Cards(app, OrderSign, Sign()))!;
        var cancel = card["suggestions"]!.AsArray().Single(s => (string)s!["actions"]![0]!["type"]! == "delete")!;
        await Feedback(app, card, new JsonObject
        {
            ["outcome"] = "accepted",
            ["acceptedSuggestions"] = new JsonArray(new JsonObject { ["id"] = (string)cancel["uuid"]! }),
        });

        Assert.Single(await Cards(app, OrderSign, Sign()));
    }

    [Fact]
    public async Task AnOverrideDatedInTheFutureCountsAsNowAndExpires()
    {
        await using var app = With(("Fatigue:Enabled", "true"), ("Fatigue:RepeatWindow", "00:00:00"), ("Fatigue:AfterOverride", "00:00:01"));
        var card = Assert.Single(await Cards(app, OrderSign, Sign()))!;
        var dated = Override("benefit-outweighs-risk");
        dated["outcomeTimestamp"] = "2099-01-01T00:00:00Z"; // a client clock far ahead must not silence the card for years
        await Feedback(app, card, dated);
        Assert.Empty(await Cards(app, OrderSign, Sign()));

        await Task.Delay(TimeSpan.FromSeconds(1.3), TestContext.Current.CancellationToken); // past AfterOverride

        Assert.Single(await Cards(app, OrderSign, Sign()));
    }

    [Fact]
    public async Task AConsideredOverrideHoldsTheCardBackButAnotherReasonDoesNot()
    {
        await using var app = With(("Fatigue:Enabled", "true"), ("Fatigue:RepeatWindow", "00:00:00"));
        var first = Assert.Single(await Cards(app, OrderSign, Sign()))!;
        await Feedback(app, first, Override("not-taking"));
        var second = Assert.Single(await Cards(app, OrderSign, Sign()))!; // "no longer takes it" is not a reason to stay quiet
        await Feedback(app, second, Override("benefit-outweighs-risk"));

        Assert.Empty(await Cards(app, OrderSign, Sign()));
    }

    [Fact]
    public async Task ACriticalCardIsNotHeldBackByAnOverride()
    {
        await using var app = With(("Fatigue:Enabled", "true"), ("Fatigue:RepeatWindow", "00:00:00"));
        var critical = Sign("order-sign-mirtazapine-80-year-old-copd-high-doses.json");
        var card = Assert.Single(await Cards(app, OrderSign, critical))!;
        await Feedback(app, card, Override("benefit-outweighs-risk"));

        Assert.Single(await Cards(app, OrderSign, Sign("order-sign-mirtazapine-80-year-old-copd-high-doses.json")));
    }

    [Fact]
    public async Task WithTheControlsOffEveryCallGetsItsCard()
    {
        await using var app = With(("Fatigue:Enabled", "false"));

        Assert.Single(await Cards(app, OrderSelect, Select()));
        Assert.Single(await Cards(app, OrderSign, Sign()));
    }
}
