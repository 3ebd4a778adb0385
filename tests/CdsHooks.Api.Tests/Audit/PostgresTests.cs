using System.Net;
using System.Text.Json.Nodes;
using CdsHooks.Api.Audit;
using CdsHooks.Tests;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace CdsHooks.Api.Tests.Audit;

/// <summary>The audit trail on PostgreSQL, as a health system would run several instances: migrations at start-up,
/// the feedback round trip, and two instances sharing one database.</summary>
public sealed class PostgresTests : IAsyncLifetime
{
    private const string OrderSign = "/cds-services/medication-safety-order-sign";

    private PostgresDatabase _database = null!;
    private readonly CdsHooksApplication _root = new();

    public async ValueTask InitializeAsync() => _database = await PostgresDatabase.CreateAsync();

    public async ValueTask DisposeAsync()
    {
        await _root.DisposeAsync();
        if (_database is not null) await _database.DisposeAsync();
    }

    private WebApplicationFactory<Program> Instance(bool fatigue = false) => _root.WithWebHostBuilder(b => b
        .UseSetting("Audit:Provider", "postgres")
        .UseSetting("Audit:ConnectionString", _database.ConnectionString)
        .UseSetting("Fatigue:Enabled", fatigue ? "true" : "false")
        .UseSetting("Fatigue:RepeatWindow", "00:00:00"));

    private static async Task<JsonArray> Cards(WebApplicationFactory<Program> app, bool encounter = true)
    {
        var request = Repository.SampleNode("order-sign-mirtazapine-80-year-old-on-clonazepam.json");
        request["hookInstance"] = Guid.NewGuid().ToString();
        if (!encounter) Assert.True(request["context"]!.AsObject().Remove("encounterId"));
        var response = await app.CreateClient().PostJson(OrderSign, request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Json())["cards"]!.AsArray();
    }

    private static JsonObject Overridden(JsonNode card) => new()
    {
        ["feedback"] = new JsonArray(new JsonObject
        {
            ["card"] = (string)card["uuid"]!,
            ["outcome"] = "overridden",
            ["overrideReason"] = new JsonObject { ["reason"] = new JsonObject { ["system"] = "urn:medication-safety-cds:override-reason", ["code"] = "benefit-outweighs-risk", ["display"] = "Benefit outweighs risk; will monitor" } },
            ["outcomeTimestamp"] = DateTimeOffset.UtcNow.ToString("O"),
        }),
    };

    [Fact]
    public async Task FeedbackRoundTripOnPostgres()
    {
        await using var app = Instance();
        var card = Assert.Single(await Cards(app))!;

        var feedback = await app.CreateClient().PostJson(OrderSign + "/feedback", Overridden(card));
        Assert.Equal("recorded", (string)(await feedback.Json())["results"]![0]!["status"]!);

        var outcomes = await (await app.CreateClient().GetAsync(new Uri("/analytics/outcomes", UriKind.Relative), TestContext.Current.CancellationToken)).Json();
        var rule = Assert.Single(outcomes["rules"]!.AsArray())!;
        Assert.Equal(1, (long)rule["shown"]!);
        Assert.Equal(1, (long)rule["overridden"]!);
        Assert.Equal("benefit-outweighs-risk", (string)rule["topOverrideReasons"]![0]!["code"]!);
    }

    [Fact]
    public async Task TheHistoryQuerySeeksThePatientInAnIndexOnPostgres()
    {
        // Every hook call with cards reads its patient's history (fatigue controls on): a scan would grow with the whole
        // audit trail. The table is small here, so sequential scans are priced out to see whether an index can serve.
        using var store = new CardStore(Microsoft.Extensions.Options.Options.Create(new AuditOptions { Provider = "postgres", ConnectionString = _database.ConnectionString }));
        await store.MigrateAsync(TestContext.Current.CancellationToken);
        await using var connection = new Npgsql.NpgsqlConnection(_database.ConnectionString);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using (var off = new Npgsql.NpgsqlCommand("SET enable_seqscan = off", connection)) await off.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        await using var explain = new Npgsql.NpgsqlCommand("EXPLAIN " + CardStore.HistoryQuery, connection);
        explain.Parameters.Add(new Npgsql.NpgsqlParameter("patientHash", System.Data.DbType.String) { Value = new string('b', 64) });
        explain.Parameters.Add(new Npgsql.NpgsqlParameter("since", System.Data.DbType.Int64) { Value = 0L });
        var plan = new List<string>();
        await using (var rows = await explain.ExecuteReaderAsync(TestContext.Current.CancellationToken))
        {
            while (await rows.ReadAsync(TestContext.Current.CancellationToken)) plan.Add(rows.GetString(0));
        }

        Assert.Contains(plan, step => step.Contains("ix_issued_card_patient", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ACardShownOutsideAnEncounterIsRecordedOnPostgres()
    {
        // The encounter is optional in CDS Hooks: its hash is then a NULL, which PostgreSQL must take as such.
        await using var app = Instance();
        Assert.Single(await Cards(app, encounter: false));

        var outcomes = await (await app.CreateClient().GetAsync(new Uri("/analytics/outcomes", UriKind.Relative), TestContext.Current.CancellationToken)).Json();
        Assert.Equal(1, (long)Assert.Single(outcomes["rules"]!.AsArray())!["shown"]!);
    }

    [Fact]
    public async Task TwoInstancesShareCardsFeedbackAndTheirConsequences()
    {
        await using var first = Instance(fatigue: true);
        await using var second = Instance(fatigue: true);
        Assert.Equal(HttpStatusCode.OK, (await second.CreateClient().GetAsync(new Uri("/health/live", UriKind.Relative), TestContext.Current.CancellationToken)).StatusCode);
        var card = Assert.Single(await Cards(first))!;

        // Another instance sees a card once its record is committed: the writer gathers records for up to 20 ms
        // (CardWriter.Gather). A clinician's feedback comes seconds later; here the first instance is made to commit.
        await first.Services.GetRequiredService<CardStore>().KnownCardsAsync([(string)card["uuid"]!], TestContext.Current.CancellationToken);

        // The other instance knows the card, takes the override, and holds the card back from then on.
        var feedback = await second.CreateClient().PostJson(OrderSign + "/feedback", Overridden(card));
        Assert.Equal("recorded", (string)(await feedback.Json())["results"]![0]!["status"]!);
        Assert.Empty(await Cards(second));
        Assert.Empty(await Cards(first));
    }
}
