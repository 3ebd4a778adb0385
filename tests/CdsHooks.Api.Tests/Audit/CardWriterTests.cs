using CdsHooks.Api.Audit;
using CdsHooks.Engine.Hooks;
using Microsoft.Extensions.Options;

namespace CdsHooks.Api.Tests.Audit;

/// <summary>Card records are written behind the answer; these prove nothing is lost or invisible on the way.</summary>
public sealed class CardWriterTests : IDisposable
{
    private readonly SqliteFile _file = new("writer");
    private readonly string _patient = new('b', 64);

    private CardStore Store() => new(_file.Options);

    private async Task<CardStore> MigratedStoreAsync()
    {
        var store = Store();
        await store.MigrateAsync(TestContext.Current.CancellationToken);
        return store;
    }

    private CardRecord Card(int i, DateTimeOffset at) =>
        new(Guid.NewGuid().ToString(), "svc", "order-sign", $"hook-{i}", $"rule-{i % 7}", 1, Indicator.Warning, $"{i}+{i + 1}", _patient, null, [$"update:{i}"], at);

    [Fact]
    public async Task AQueuedCardCountsForFatigueAtOnceAndIsKnownToFeedback()
    {
        using var store = await MigratedStoreAsync();
        var now = DateTimeOffset.UtcNow;
        var card = Card(1, now);

        await store.EnqueueCardsAsync([card], TestContext.Current.CancellationToken);
        var history = await store.HistoryAsync(_patient, now.AddMinutes(-1), TestContext.Current.CancellationToken);
        var known = await store.KnownCardsAsync([card.CardUuid], TestContext.Current.CancellationToken);

        Assert.Contains(history, p => p.RuleId == card.RuleId && p.DrugsKey == card.Drugs);
        Assert.Equal(["update:1"], known[card.CardUuid]);
    }

    [Fact]
    public async Task ConcurrentTokenUsesAreBatchedAndAReplayInTheSameBatchIsStillOne()
    {
        using var store = await MigratedStoreAsync();
        var until = DateTimeOffset.UtcNow.AddMinutes(5);

        // 400 different token ids at once, each of them sent twice, while cards are written beside them.
        var cards = Task.WhenAll(Enumerable.Range(0, 50).Select(i => store.EnqueueCardsAsync([Card(i, until)], TestContext.Current.CancellationToken).AsTask()));
        var uses = await Task.WhenAll(Enumerable.Range(0, 800).Select(i =>
            Task.Run(() => store.FirstUseAsync("https://ehr.example", $"jti-{i % 400}", until, TestContext.Current.CancellationToken), TestContext.Current.CancellationToken)));
        await cards;

        Assert.Equal(400, uses.Count(first => first));
        Assert.False(await store.FirstUseAsync("https://ehr.example", "jti-7", until, TestContext.Current.CancellationToken));
        Assert.True(await store.FirstUseAsync("https://other.example", "jti-7", until, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task ConcurrentCallersLoseNoRecordAndDisposalWritesTheQueue()
    {
        var now = DateTimeOffset.UtcNow;
        var cards = Enumerable.Range(0, 2000).Select(i => Card(i, now)).ToList();
        using (var store = Store())
        {
            await store.MigrateAsync(TestContext.Current.CancellationToken);
            await Parallel.ForEachAsync(cards.Chunk(4), TestContext.Current.CancellationToken,
                async (chunk, token) => await store.EnqueueCardsAsync(chunk, token));
        } // disposed with records possibly still queued

        using var reopened = Store();
        var known = await reopened.KnownCardsAsync([.. cards.Select(c => c.CardUuid)], TestContext.Current.CancellationToken);
        Assert.Equal(cards.Count, known.Count);
    }

    [Fact]
    public async Task HistoryReadsAtOnceEachSeeTheirOwnPatient()
    {
        // SQLite's history reads share a few kept connections, each with its query prepared once: a connection lent to
        // two readers at once, or parameters left from another call, would show one patient another's cards.
        using var store = await MigratedStoreAsync();
        var now = DateTimeOffset.UtcNow;
        var patients = Enumerable.Range(0, 12).Select(p => new string((char)('a' + p), 64)).ToList();
        await store.RecordCardsAsync([.. patients.SelectMany((patient, p) => Enumerable.Range(0, p + 1).Select(i =>
            Card(i, now) with { PatientHash = patient, Drugs = $"{p}:{i}" }))], TestContext.Current.CancellationToken);

        var reads = await Task.WhenAll(Enumerable.Range(0, 400).Select(n => Task.Run(async () =>
        {
            var p = n % patients.Count;
            return (p, History: await store.HistoryAsync(patients[p], now.AddMinutes(-1), TestContext.Current.CancellationToken));
        }, TestContext.Current.CancellationToken)));

        foreach (var (p, history) in reads)
        {
            Assert.Equal(Enumerable.Range(0, p + 1).Select(i => $"{p}:{i}").Order(StringComparer.Ordinal), history.Select(h => h.DrugsKey).Order(StringComparer.Ordinal));
        }
    }

    [Fact]
    public async Task CardRecordsOfCallsThatComeTogetherAreCommittedTogetherAfterThem()
    {
        // A long gathering window, so that nothing here depends on the machine's speed: without the window, the first
        // record is written as soon as the writer wakes, well within the pause below.
        var batches = new List<int>();
        using var writer = new CardWriter(cards => { lock (batches) batches.Add(cards.Count); return Task.CompletedTask; },
            _ => throw new InvalidOperationException("no tokens here"), (_, _) => { }, gather: TimeSpan.FromMinutes(1));
        var now = DateTimeOffset.UtcNow;

        await writer.EnqueueAsync([Card(1, now)], TestContext.Current.CancellationToken);
        await Task.Delay(200, TestContext.Current.CancellationToken);
        await writer.EnqueueAsync([Card(2, now), Card(3, now)], TestContext.Current.CancellationToken);
        lock (batches) Assert.Empty(batches);
        Assert.Equal(3, writer.Pending(_patient, now.AddMinutes(-1)).Count); // the fatigue controls see them meanwhile

        await writer.FlushAsync(TestContext.Current.CancellationToken); // a flush does not wait out the window
        lock (batches) Assert.Equal([3], batches);
        Assert.Empty(writer.Pending(_patient, now.AddMinutes(-1)));
    }

    [Fact]
    public async Task ATokenUseIsWrittenAtOnceWithoutEndingTheCardsGathering()
    {
        // On an authenticated service every call brings a token use: were each to end the gathering, card batches would
        // be as small as without it.
        var batches = new List<int>();
        using var writer = new CardWriter(cards => { lock (batches) batches.Add(cards.Count); return Task.CompletedTask; },
            uses => Task.FromResult(uses.Select(_ => true).ToArray()), (_, _) => { }, gather: TimeSpan.FromMinutes(1));
        var now = DateTimeOffset.UtcNow;

        await writer.EnqueueAsync([Card(1, now)], TestContext.Current.CancellationToken);
        for (var i = 0; i < 3; i++)
        {
            var use = writer.FirstUseAsync(new TokenUse("https://ehr.example", $"jti-{i}", 0), TestContext.Current.CancellationToken);
            Assert.True(await use.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));
            await writer.EnqueueAsync([Card(2 + i, now)], TestContext.Current.CancellationToken);
        }

        await Task.Delay(200, TestContext.Current.CancellationToken);
        lock (batches) Assert.Empty(batches);

        await writer.FlushAsync(TestContext.Current.CancellationToken);
        lock (batches) Assert.Equal([4], batches);
    }

    [Fact]
    public async Task EachPatientSeesOnlyItsOwnQueuedRecordsAndNoneAreLeftOnceCommitted()
    {
        var committed = 0;
        using var writer = new CardWriter(cards => { Interlocked.Add(ref committed, cards.Count); return Task.CompletedTask; },
            _ => throw new InvalidOperationException("no tokens here"), (_, _) => { }, gather: TimeSpan.FromMinutes(1));
        var now = DateTimeOffset.UtcNow;
        var patients = Enumerable.Range(0, 20).Select(p => new string((char)('A' + p), 64)).ToList();

        // 20 patients, patient p with p + 1 calls of two cards (420 cards: less than a batch), from many callers at once.
        var calls = patients.SelectMany((patient, p) => Enumerable.Range(0, p + 1).Select(i =>
            new[] { Card(2 * i, now) with { PatientHash = patient }, Card(2 * i + 1, now.AddMinutes(-10)) with { PatientHash = patient } })).ToList();
        await Parallel.ForEachAsync(calls, TestContext.Current.CancellationToken, async (call, token) => await writer.EnqueueAsync(call, token));

        for (var p = 0; p < patients.Count; p++)
        {
            var queued = writer.Pending(patients[p], now.AddMinutes(-1)); // the older card of each call is out of the window
            Assert.Equal(p + 1, queued.Count);
            Assert.All(queued, c => Assert.Equal(patients[p], c.PatientHash));
        }

        await writer.FlushAsync(TestContext.Current.CancellationToken);
        Assert.Equal(calls.Sum(c => c.Length), committed);
        Assert.All(patients, patient => Assert.Empty(writer.Pending(patient, now.AddHours(-1))));
        Assert.Equal(0, writer.PendingPatients);
    }

    [Fact]
    public async Task ACallThatNeedNotWaitQueuesItsRecordsAtOnceAndAClosedQueueTakesNone()
    {
        // The hook call without fatigue controls queues its records without a time budget when the queue has room; when
        // it has none (here: closed), nothing of the call is left pending and the caller takes the waiting path.
        var committed = 0;
        var writer = new CardWriter(cards => { Interlocked.Add(ref committed, cards.Count); return Task.CompletedTask; },
            _ => throw new InvalidOperationException("no tokens here"), (_, _) => { }, gather: TimeSpan.FromMinutes(1));
        var now = DateTimeOffset.UtcNow;

        Assert.True(writer.TryEnqueue([Card(1, now), Card(2, now)]));
        Assert.Equal(2, writer.Pending(_patient, now.AddMinutes(-1)).Count);
        await writer.FlushAsync(TestContext.Current.CancellationToken);
        Assert.Equal(2, committed);
        Assert.Empty(writer.Pending(_patient, now.AddMinutes(-1)));

        writer.Dispose();
        Assert.False(writer.TryEnqueue([Card(3, now)]));
        Assert.Empty(writer.Pending(_patient, now.AddMinutes(-1)));
        Assert.Equal(0, writer.PendingPatients);
        await Assert.ThrowsAsync<System.Threading.Channels.ChannelClosedException>(() =>
            writer.EnqueueAsync([Card(3, now)], TestContext.Current.CancellationToken).AsTask());
    }

    [Fact]
    public async Task ATokenUseOrABatchsWorthOfCardsDoesNotWaitForTheGatheringWindow()
    {
        var written = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var writer = new CardWriter(cards => { written.TrySetResult(cards.Count); return Task.CompletedTask; },
            uses => Task.FromResult(uses.Select(_ => true).ToArray()), (_, _) => { }, gather: TimeSpan.FromMinutes(1));
        var now = DateTimeOffset.UtcNow;

        var first = writer.FirstUseAsync(new TokenUse("https://ehr.example", "jti-1", 0), TestContext.Current.CancellationToken);
        Assert.True(await first.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));

        for (var i = 0; i < 125; i++)
        {
            await writer.EnqueueAsync([Card(4 * i, now), Card(4 * i + 1, now), Card(4 * i + 2, now), Card(4 * i + 3, now)], TestContext.Current.CancellationToken);
        }

        Assert.Equal(500, await written.Task.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task TheHistoryQuerySeeksThePatientInAnIndex()
    {
        // Every hook call with cards reads its patient's history (fatigue controls on): a scan of the table would grow
        // with the whole audit trail.
        using (var store = Store()) await store.MigrateAsync(TestContext.Current.CancellationToken);
        await using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={_file.Path}");
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var explain = connection.CreateCommand();
        explain.CommandText = "EXPLAIN QUERY PLAN " + CardStore.HistoryQuery;
        explain.Parameters.AddWithValue("@patientHash", _patient);
        explain.Parameters.AddWithValue("@since", 0L);
        var plan = new List<string>();
        await using (var rows = await explain.ExecuteReaderAsync(TestContext.Current.CancellationToken))
        {
            while (await rows.ReadAsync(TestContext.Current.CancellationToken)) plan.Add(rows.GetString(3));
        }

        Assert.Contains(plan, step => step.Contains("issued_card", StringComparison.Ordinal)
            && step.Contains("INDEX ix_issued_card_patient (patient_hash=?)", StringComparison.Ordinal));
        Assert.DoesNotContain(plan, step => step.StartsWith("SCAN", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ARecordKeepsEveryColumnAsGiven()
    {
        // SQLite's insert binds its values by position (CardStore.InsertCards): a value bound to the wrong column, or
        // an empty list stored as NULL, would show here. Texts go in as UTF-8 with their length: a character outside
        // ASCII, and a value longer than the batch's first buffer with a NUL inside, come back as they were.
        using var store = await MigratedStoreAsync();
        var at = DateTimeOffset.FromUnixTimeMilliseconds(1_790_000_000_123);
        var encounter = new string('e', 64);
        var longId = "delete:" + new string('y', 600) + "\0" + new string('z', 600);
        CardRecord[] cards =
        [
            new("uuid-1", "svc-a", "order-select", "hook-1-é-氯", "rule-a", 3, Indicator.Critical, "1+2", _patient, encounter, ["update:x", longId], at),
            new("uuid-2", "svc-b", "order-sign", "hook-2", "rule-b", 1, Indicator.Info, "3+4", _patient, null, [], at.AddMilliseconds(1)),
        ];

        await store.RecordCardsAsync(cards, TestContext.Current.CancellationToken);

        await using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={_file.Path}");
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var query = connection.CreateCommand();
        query.CommandText = """
            SELECT card_uuid, service_id, hook, hook_instance, rule_id, rule_version, indicator, drugs, patient_hash,
                   encounter_hash, suggestion_ids, issued_at
            FROM issued_card ORDER BY card_uuid
            """;
        var rows = new List<object[]>();
        await using (var reader = await query.ExecuteReaderAsync(TestContext.Current.CancellationToken))
        {
            while (await reader.ReadAsync(TestContext.Current.CancellationToken))
            {
                var row = new object[reader.FieldCount];
                reader.GetValues(row);
                rows.Add(row);
            }
        }

        Assert.Equal(
            [
                ["uuid-1", "svc-a", "order-select", "hook-1-é-氯", "rule-a", 3L, "critical", "1+2", _patient, encounter, "update:x," + longId, 1_790_000_000_123L],
                ["uuid-2", "svc-b", "order-sign", "hook-2", "rule-b", 1L, "info", "3+4", _patient, DBNull.Value, "", 1_790_000_000_124L],
            ],
            rows);
    }

    [Fact]
    public async Task ARecordTheDatabaseRefusesFailsItsWholeBatch()
    {
        // The second card's uuid is already taken: the insert fails, and none of the batch stays, as with a command.
        using var store = await MigratedStoreAsync();
        var now = DateTimeOffset.UtcNow;
        var taken = Card(1, now);
        await store.RecordCardsAsync([taken], TestContext.Current.CancellationToken);
        var first = Card(2, now);

        var refused = await Assert.ThrowsAsync<Microsoft.Data.Sqlite.SqliteException>(() =>
            store.RecordCardsAsync([first, taken with { HookInstance = "again" }], TestContext.Current.CancellationToken));

        Assert.Equal(19, refused.SqliteErrorCode); // SQLITE_CONSTRAINT
        var known = await store.KnownCardsAsync([taken.CardUuid, first.CardUuid], TestContext.Current.CancellationToken);
        Assert.Equal([taken.CardUuid], known.Keys);

        // The connection the refused batch used goes back to the pool with no transaction left open: the next batch lands.
        var next = Card(3, now);
        await store.RecordCardsAsync([next], TestContext.Current.CancellationToken);
        Assert.Equal([next.CardUuid], (await store.KnownCardsAsync([next.CardUuid], TestContext.Current.CancellationToken)).Keys);
    }

    [Fact]
    public async Task ARecordWithoutAValueItsColumnRequiresIsRefused()
    {
        // Bound as NULL, not as an empty string: the column's NOT NULL refuses the batch, as a command's binding did.
        using var store = await MigratedStoreAsync();
        var card = Card(1, DateTimeOffset.UtcNow) with { PatientHash = null! };

        var refused = await Assert.ThrowsAsync<Microsoft.Data.Sqlite.SqliteException>(() =>
            store.RecordCardsAsync([card], TestContext.Current.CancellationToken));

        Assert.Equal(19, refused.SqliteErrorCode); // SQLITE_CONSTRAINT (NOT NULL)
        Assert.Empty(await store.KnownCardsAsync([card.CardUuid], TestContext.Current.CancellationToken));
    }

    public void Dispose() => _file.Dispose();
}
