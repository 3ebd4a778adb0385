using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using CdsHooks.Api.Audit;
using CdsHooks.Engine;
using CdsHooks.Engine.Evaluation;
using CdsHooks.Engine.Hooks;
using CdsHooks.Engine.Knowledge;
using CdsHooks.Tests;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace CdsHooks.Api.Tests.Audit;

/// <summary>The audit trail's own time budget: a database that hangs must not keep the cards from the clinician.</summary>
public sealed class AuditTrailTests : IDisposable
{
    // A "PostgreSQL server" that accepts connections and never answers: the client waits for its greeting.
    private readonly TcpListener _silent = new(IPAddress.Loopback, 0);

    public AuditTrailTests() => _silent.Start();

    public void Dispose() => _silent.Dispose();

    private static async Task<(HookRequest Request, HookResult Result)> IndexCaseAsync()
    {
        using var body = JsonDocument.Parse(Repository.Sample("order-sign-mirtazapine-80-year-old-on-clonazepam.json"));
        var request = HookRequestReader.Read(body.RootElement, HookCatalog.Find("medication-safety-order-sign")!);
        var result = await new CdsEngine(KnowledgeLoader.Load(Repository.Cards), TimeProvider.System).EvaluateAsync(request, TestContext.Current.CancellationToken);
        Assert.NotEmpty(result.Cards);
        return (request, result);
    }

    [Fact]
    public async Task WithoutFatigueControlsEveryCardIsShownAndRecordedAndAGivenUpCallRecordsNothing()
    {
        // The path without a time budget (the queue has room): the same cards, recorded; the caller's cancellation still
        // ends the call before anything is queued, as the queue's own write did.
        using var file = new SqliteFile("trail");
        using var store = new CardStore(file.Options);
        await store.MigrateAsync(TestContext.Current.CancellationToken);
        var trail = new AuditTrail(store, file.Options, Options.Create(new FatigueOptions { Enabled = false }), TimeProvider.System, NullLogger<AuditTrail>.Instance);
        var (request, result) = await IndexCaseAsync();

        var shown = await trail.ShowAsync(request, result, TestContext.Current.CancellationToken);
        var again = await IndexCaseAsync(); // new cards, new uuids
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => trail.ShowAsync(request, again.Result, new CancellationToken(canceled: true)));

        Assert.Equal(result.Cards.Select(c => c.Card.Uuid), shown.Select(c => c.Uuid));
        var uuids = result.Cards.Concat(again.Result.Cards).Select(c => c.Card.Uuid).ToList();
        var known = await store.KnownCardsAsync(uuids, TestContext.Current.CancellationToken);
        Assert.Equal(result.Cards.Select(c => c.Card.Uuid).Order(), known.Keys.Order());
    }

    [Fact]
    public async Task AHangingDatabaseCostsTheBudgetNotTheCards()
    {
        var audit = Options.Create(new AuditOptions
        {
            Provider = "postgres",
            // The client's own connect timeout is far longer than the budget: the budget must be what ends the wait.
            ConnectionString = $"Host=127.0.0.1;Port={((IPEndPoint)_silent.LocalEndpoint).Port};Username=x;Timeout=60",
            Timeout = TimeSpan.FromMilliseconds(500),
        });
        using var store = new CardStore(audit);
        var trail = new AuditTrail(store, audit, Options.Create(new FatigueOptions()), TimeProvider.System, NullLogger<AuditTrail>.Instance);
        var (request, result) = await IndexCaseAsync();

        var clock = Stopwatch.StartNew();
        var shown = await trail.ShowAsync(request, result, TestContext.Current.CancellationToken);

        Assert.Equal(result.Cards.Select(c => c.Card.Uuid), shown.Select(c => c.Uuid));
        Assert.InRange(clock.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(20));

        // The caller's own cancellation (the EHR gave up) is not a failure of the audit trail: it goes on as such.
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => trail.ShowAsync(request, result, new CancellationToken(canceled: true)));
    }

    [Fact]
    public async Task AnIdentifierIsHashedWithTheKeyOnEveryThreadAndEveryTime()
    {
        // One HMAC per thread, reset after each hash: each hash must be the one-shot HMAC of its own input, whichever
        // thread makes it and whatever it made before.
        var audit = Options.Create(new AuditOptions { HashKey = "a-site-key-of-some-length-0123456789" });
        using var store = new CardStore(Options.Create(new AuditOptions()));
        var trail = new AuditTrail(store, audit, Options.Create(new FatigueOptions()), TimeProvider.System, NullLogger<AuditTrail>.Instance);
        static string Expected(string text) => Convert.ToHexStringLower(System.Security.Cryptography.HMACSHA256.HashData(
            "a-site-key-of-some-length-0123456789"u8, System.Text.Encoding.UTF8.GetBytes(text)));

        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(t => Task.Run(() =>
            Enumerable.Range(0, 200).All(i => trail.Hash("patient", "https://ehr.example.org/fhir", $"p-{t}-{i}") == Expected($"patient|https://ehr.example.org/fhir|p-{t}-{i}")),
            TestContext.Current.CancellationToken)));

        Assert.All(results, Assert.True);
        Assert.NotEqual(trail.Hash("patient", null, "1"), trail.Hash("encounter", null, "1"));

        // Another audit trail with another key, on the same thread in turn: each hashes with its own key.
        var other = new AuditTrail(store, Options.Create(new AuditOptions { HashKey = "another-key" }), Options.Create(new FatigueOptions()), TimeProvider.System, NullLogger<AuditTrail>.Instance);
        Assert.NotEqual(trail.Hash("patient", null, "1"), other.Hash("patient", null, "1"));
        Assert.Equal(Expected("patient||1"), trail.Hash("patient", null, "1"));

        // The text is hashed as UTF-8 whatever its length (a long one does not fit the stack buffer) and its characters.
        var server = "https://ehr.example.org/" + new string('f', 600);
        Assert.Equal(Expected($"patient|{server}|1"), trail.Hash("patient", server, "1"));
        Assert.Equal(Expected("patient|https://ehr.example.org/fhir|ünïcødé-€-𝄞"), trail.Hash("patient", "https://ehr.example.org/fhir", "ünïcødé-€-𝄞"));
        // Either side of the length where the text leaves the stack for a rented buffer; lone surrogates as the
        // replacement character, as Encoding.UTF8 writes them.
        for (var length = 150; length <= 180; length++)
        {
            var id = new string('i', length);
            Assert.Equal(Expected($"patient|https://ehr.example.org/fhir|{id}"), trail.Hash("patient", "https://ehr.example.org/fhir", id));
        }

        Assert.Equal(Expected("patient||\ud800x\udc00"), trail.Hash("patient", null, "\ud800x\udc00"));
    }
}
