using System.Data;
using System.Data.Common;
using CdsHooks.Engine.Evaluation;
using CdsHooks.Engine.Hooks;
using Dapper;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;
using Npgsql;
using SQLitePCL;

namespace CdsHooks.Api.Audit;

/// <summary>One card as kept: identifiers and codes only. Patient and encounter are keyed hashes. Suggestion ids
/// carry their kind ("update:uuid", "delete:uuid").</summary>
public sealed record CardRecord(
    string CardUuid, string ServiceId, string Hook, string HookInstance, string RuleId, int RuleVersion, Indicator Indicator,
    string Drugs, string PatientHash, string? EncounterHash, IReadOnlyList<string> SuggestionIds, DateTimeOffset IssuedAt);

/// <summary>One feedback item as kept. The clinician's free-text comment is not kept (it may name the patient):
/// only whether there was one.</summary>
public sealed record FeedbackRecord(
    string CardUuid, string Outcome, DateTimeOffset OutcomeAt, IReadOnlyList<string> AcceptedSuggestions,
    string? OverrideSystem, string? OverrideCode, string? OverrideDisplay, bool HasComment);

public sealed record RuleOutcomes(string RuleId, string Indicator, long Shown, long Accepted, long Overridden, IReadOnlyList<ReasonCount> TopOverrideReasons)
{
    public double OverrideRate => Shown == 0 ? 0 : Math.Round((double)Overridden / Shown, 3);
}

public sealed record ReasonCount(string Code, string? Display, long Count);

public enum FeedbackResult
{
    Recorded,
    AlreadyRecorded,
    UnknownCard,
}

/// <summary>
/// The audit trail and feedback on SQLite (a file, WAL; feedback at synchronous=FULL: committed is on disk) or PostgreSQL
/// (several instances behind a load balancer), through Dapper with plain SQL that both accept. The schema is created
/// and migrated at start-up, in a transaction, from the numbered scripts below.
/// </summary>
public sealed class CardStore : IDisposable
{
    // Version n of the schema is Migrations[n - 1]; both engines take the same SQL (timestamps are Unix milliseconds).
    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE issued_card (
            card_uuid VARCHAR(64) PRIMARY KEY,
            service_id VARCHAR(100) NOT NULL,
            hook VARCHAR(50) NOT NULL,
            hook_instance VARCHAR(128) NOT NULL,
            rule_id VARCHAR(100) NOT NULL,
            rule_version INTEGER NOT NULL,
            indicator VARCHAR(10) NOT NULL,
            drugs VARCHAR(400) NOT NULL,
            patient_hash CHAR(64) NOT NULL,
            encounter_hash CHAR(64),
            suggestion_ids TEXT NOT NULL,
            issued_at BIGINT NOT NULL
        );
        CREATE INDEX ix_issued_card_history ON issued_card (patient_hash, rule_id, drugs, issued_at);
        CREATE INDEX ix_issued_card_time ON issued_card (issued_at);
        CREATE TABLE card_feedback (
            card_uuid VARCHAR(64) NOT NULL,
            outcome VARCHAR(20) NOT NULL,
            outcome_at BIGINT NOT NULL,
            accepted_suggestions TEXT NOT NULL,
            override_system VARCHAR(200),
            override_code VARCHAR(100),
            override_display VARCHAR(200),
            has_comment INTEGER NOT NULL,
            received_at BIGINT NOT NULL,
            PRIMARY KEY (card_uuid, outcome, outcome_at)
        );
        """,
        """
        CREATE TABLE used_token (
            issuer VARCHAR(300) NOT NULL,
            jti VARCHAR(300) NOT NULL,
            expires_at BIGINT NOT NULL,
            PRIMARY KEY (issuer, jti)
        );
        CREATE INDEX ix_used_token_expiry ON used_token (expires_at);
        """,
        """
        ALTER TABLE card_feedback ADD COLUMN accepted_change INTEGER NOT NULL DEFAULT 0;
        """,
        // The history query seeks a patient's rows and reads each row for the columns it needs: rule and drugs in the
        // index made its keys about twice as long for nothing. As a site runs it (many patients, so each card lands at
        // a scattered place of the index) the shorter keys took 9% off the CPU per call (docs/performance.md, eleventh
        // round). The new index first: on PostgreSQL, DROP INDEX locks the table against reads until the migration
        // commits, so it comes last, after the build, for other instances still reading during a rolling update.
        """
        CREATE INDEX ix_issued_card_patient ON issued_card (patient_hash, issued_at);
        DROP INDEX ix_issued_card_history;
        """,
    ];

    private readonly bool _sqlite;
    private readonly string _connectionString;
    private readonly NpgsqlDataSource? _postgres;
    private readonly CardWriter _writer;

    public CardStore(IOptions<AuditOptions> options, ILogger<CardStore>? logger = null)
    {
        var audit = options.Value;
        _sqlite = audit.Provider.Equals("sqlite", StringComparison.OrdinalIgnoreCase);
        if (!_sqlite && !audit.Provider.Equals("postgres", StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidOperationException("Audit:Provider must be sqlite or postgres.");
        }

        if (_sqlite)
        {
            var builder = new SqliteConnectionStringBuilder(audit.ConnectionString);
            builder.DataSource = Path.GetFullPath(builder.DataSource, AppContext.BaseDirectory);
            Directory.CreateDirectory(Path.GetDirectoryName(builder.DataSource)!);
            _connectionString = builder.ToString();
        }
        else
        {
            _connectionString = audit.ConnectionString;
            _postgres = NpgsqlDataSource.Create(audit.ConnectionString);
        }

        var log = logger ?? (ILogger)Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        _writer = new CardWriter(cards => RecordCardsAsync(cards, CancellationToken.None), RecordTokensAsync,
            (e, count) => log.LogError("Card records not written ({ExceptionType}): {CardCount} cards shown but unrecorded", e.GetType().Name, count));
    }

    public string Provider => _sqlite ? "sqlite" : "postgres";

    private async Task<DbConnection> OpenAsync(CancellationToken cancellationToken, bool durable = true)
    {
        var connection = await OpenForReadAsync(cancellationToken);
        if (_postgres is not null) return connection;
        // FULL: a transaction is on disk when it commits, so a 200 for feedback survives a crash of the process.
        // NORMAL (still crash-safe in WAL mode, not power-loss-safe) where losing the last writes costs nothing.
        await connection.ExecuteAsync(durable ? "PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;" : "PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;");
        return connection;
    }

    // A connection for reading only. Neither pragma matters to a read: synchronous concerns commits, and
    // Microsoft.Data.Sqlite retries a busy database itself until the command's timeout. Setting them was a statement
    // more on every read, and the fatigue controls read a patient's history on every hook call that has cards.
    private async Task<DbConnection> OpenForReadAsync(CancellationToken cancellationToken)
    {
        if (_postgres is not null) return await _postgres.OpenConnectionAsync(cancellationToken);
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        return connection;
    }

    /// <summary>Records that a token id was used; false when it already was (a replay). Shared by every instance
    /// on the same database, so a token replayed to another instance is refused too. Written by the one writer, in
    /// batches (<see cref="CardWriter"/>): concurrent inserts of their own slept in SQLite's busy handler.</summary>
    public Task<bool> FirstUseAsync(string issuer, string jti, DateTimeOffset expiresAt, CancellationToken cancellationToken) =>
        _writer.FirstUseAsync(new TokenUse(issuer, jti, expiresAt.ToUnixTimeMilliseconds()), cancellationToken);

    // One transaction for the batch, one insert per token: a jti twice in the same batch is a replay too. Inserted in
    // (issuer, jti) order, so that two instances writing overlapping batches to PostgreSQL take the row locks in the
    // same order and cannot deadlock (a deadlock would fail a batch to the in-memory fallback, where a replay to the
    // other instance goes unseen). Not waiting for the disk: a power loss may forget the last token ids, which expire
    // within minutes anyway.
    private async Task<bool[]> RecordTokensAsync(IReadOnlyList<TokenUse> uses)
    {
        var order = Enumerable.Range(0, uses.Count)
            .OrderBy(i => uses[i].Issuer, StringComparer.Ordinal).ThenBy(i => uses[i].Jti, StringComparer.Ordinal).ToList();
        await using var connection = await OpenAsync(CancellationToken.None, durable: false);
        await using var transaction = await connection.BeginTransactionAsync();
        if (!_sqlite) await connection.ExecuteAsync("SET LOCAL synchronous_commit TO OFF", transaction: transaction);
        var first = new bool[uses.Count];
        // One command for the batch, its parameters set for each token (as for card records: no per-row binding).
        await using var insert = connection.CreateCommand();
        insert.Transaction = transaction;
        insert.CommandText = "INSERT INTO used_token (issuer, jti, expires_at) VALUES (@issuer, @jti, @expires_at) ON CONFLICT DO NOTHING";
        var issuer = Parameter(insert, "issuer", DbType.String);
        var jti = Parameter(insert, "jti", DbType.String);
        var expires = Parameter(insert, "expires_at", DbType.Int64);
        foreach (var i in order)
        {
            issuer.Value = uses[i].Issuer;
            jti.Value = uses[i].Jti;
            expires.Value = uses[i].ExpiresAt;
            first[i] = await insert.ExecuteNonQueryAsync() == 1;
        }

        await transaction.CommitAsync();
        return first;
    }

    /// <summary>Creates or upgrades the schema; several instances starting together serialise on the version table.</summary>
    public async Task MigrateAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);
        if (_sqlite) await connection.ExecuteAsync("PRAGMA journal_mode = WAL;");
        await connection.ExecuteAsync("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        if (!_sqlite) await connection.ExecuteAsync("LOCK TABLE schema_version IN EXCLUSIVE MODE", transaction: transaction);
        var version = await connection.ExecuteScalarAsync<int?>("SELECT MAX(version) FROM schema_version", transaction: transaction) ?? 0;
        for (var next = version; next < Migrations.Length; next++)
        {
            await connection.ExecuteAsync(Migrations[next], transaction: transaction);
            await connection.ExecuteAsync("INSERT INTO schema_version (version) VALUES (@v)", new { v = next + 1 }, transaction);
        }

        await transaction.CommitAsync(cancellationToken);
    }

    public async Task<bool> IsReachableAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = await OpenForReadAsync(cancellationToken);
            return await connection.ExecuteScalarAsync<int>("SELECT 1") == 1;
        }
        catch (Exception e) when (e is DbException or InvalidOperationException or TimeoutException)
        {
            return false;
        }
    }

    /// <summary>Queues the records of shown cards; they are written in the background (<see cref="CardWriter"/>) and
    /// count in <see cref="HistoryAsync"/> at once.</summary>
    public ValueTask EnqueueCardsAsync(IReadOnlyList<CardRecord> cards, CancellationToken cancellationToken) =>
        _writer.EnqueueAsync(cards, cancellationToken);

    /// <summary>Queues the records if the writer's queue has room now; false, with nothing queued, if it has none or
    /// is closed (<see cref="EnqueueCardsAsync"/> then waits, or throws).</summary>
    public bool TryEnqueueCards(IReadOnlyList<CardRecord> cards) => _writer.TryEnqueue(cards);

    public async Task RecordCardsAsync(IReadOnlyList<CardRecord> cards, CancellationToken cancellationToken)
    {
        if (cards.Count == 0) return;
        // The card is already on its way to the clinician: its record need not wait for the disk. Committed records
        // survive a crash of the process (SQLite WAL at NORMAL; PostgreSQL's WAL without waiting for the flush); a
        // power loss may lose the last fraction of a second of them, which at worst shows a card again. Feedback,
        // which a client sends us and may not resend, stays durable at commit.
        await using var connection = await OpenAsync(cancellationToken, durable: false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        if (_sqlite)
        {
            InsertCards((SqliteConnection)connection, cards);
        }
        else
        {
            await connection.ExecuteAsync("SET LOCAL synchronous_commit TO OFF", transaction: transaction);
            await InsertCardsAsync(connection, transaction, cards, cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
    }

    private const string InsertCardSql =
        """
        INSERT INTO issued_card (card_uuid, service_id, hook, hook_instance, rule_id, rule_version, indicator, drugs,
                                 patient_hash, encounter_hash, suggestion_ids, issued_at)
        VALUES (@card_uuid, @service_id, @hook, @hook_instance, @rule_id, @rule_version, @indicator, @drugs,
                @patient_hash, @encounter_hash, @suggestion_ids, @issued_at)
        """;

    // PostgreSQL: one command for the batch, its parameters set for each card. Dapper's per-row binding (a parameter
    // object and new parameters for every row) was most of the writer's own CPU at saturation (docs/performance.md).
    private static async Task InsertCardsAsync(DbConnection connection, DbTransaction transaction, IReadOnlyList<CardRecord> cards, CancellationToken cancellationToken)
    {
        await using var insert = connection.CreateCommand();
        insert.Transaction = transaction;
        insert.CommandText = InsertCardSql;
        var uuid = Parameter(insert, "card_uuid", DbType.String);
        var service = Parameter(insert, "service_id", DbType.String);
        var hook = Parameter(insert, "hook", DbType.String);
        var instance = Parameter(insert, "hook_instance", DbType.String);
        var rule = Parameter(insert, "rule_id", DbType.String);
        var version = Parameter(insert, "rule_version", DbType.Int32);
        var indicator = Parameter(insert, "indicator", DbType.String);
        var drugs = Parameter(insert, "drugs", DbType.String);
        var patient = Parameter(insert, "patient_hash", DbType.String);
        var encounter = Parameter(insert, "encounter_hash", DbType.String);
        var suggestions = Parameter(insert, "suggestion_ids", DbType.String);
        var issued = Parameter(insert, "issued_at", DbType.Int64);
        foreach (var c in cards)
        {
            uuid.Value = c.CardUuid;
            service.Value = c.ServiceId;
            hook.Value = c.Hook;
            instance.Value = c.HookInstance;
            rule.Value = c.RuleId;
            version.Value = c.RuleVersion;
            indicator.Value = c.Indicator.WireName();
            drugs.Value = c.Drugs;
            patient.Value = c.PatientHash;
            encounter.Value = (object?)c.EncounterHash ?? DBNull.Value;
            suggestions.Value = string.Join(',', c.SuggestionIds);
            issued.Value = c.IssuedAt.ToUnixTimeMilliseconds();
            await insert.ExecuteNonQueryAsync(cancellationToken);
        }
    }

    // SQLite: the same insert, bound by position through SQLitePCLRaw, the library under Microsoft.Data.Sqlite (on the
    // connection's own handle, as its documentation's interop section shows), in the transaction the connection has
    // open. A SqliteCommand found each of a row's twelve parameters by its name on every execution and copied each
    // string to UTF-8 in managed code; with two cards per hook call that binding was most of the audit trail's managed
    // CPU at saturation (docs/performance.md, twelfth round). The strings are bound as UTF-8 with their length, made
    // in one buffer for the batch (Text). Any result but SQLITE_OK or SQLITE_DONE throws the SqliteException a command
    // would, and the batch rolls back with its transaction. SQLitePCLRaw comes with Microsoft.Data.Sqlite: a major
    // version of it under a later Microsoft.Data.Sqlite may need this method changed.
    private static void InsertCards(SqliteConnection connection, IReadOnlyList<CardRecord> cards)
    {
        var db = connection.Handle!;
        Check(raw.sqlite3_prepare_v2(db, InsertCardSql, out var insert), db);
        var utf8 = System.Buffers.ArrayPool<byte>.Shared.Rent(1024);
        try
        {
            using (insert)
            {
                Span<int> at = stackalloc int[CardColumns.Length];
                for (var i = 0; i < at.Length; i++) at[i] = raw.sqlite3_bind_parameter_index(insert, CardColumns[i]);
                foreach (var c in cards)
                {
                    Check(Text(insert, at[0], c.CardUuid, ref utf8), db);
                    Check(Text(insert, at[1], c.ServiceId, ref utf8), db);
                    Check(Text(insert, at[2], c.Hook, ref utf8), db);
                    Check(Text(insert, at[3], c.HookInstance, ref utf8), db);
                    Check(Text(insert, at[4], c.RuleId, ref utf8), db);
                    Check(raw.sqlite3_bind_int(insert, at[5], c.RuleVersion), db);
                    Check(Text(insert, at[6], c.Indicator.WireName(), ref utf8), db);
                    Check(Text(insert, at[7], c.Drugs, ref utf8), db);
                    Check(Text(insert, at[8], c.PatientHash, ref utf8), db);
                    Check(Text(insert, at[9], c.EncounterHash, ref utf8), db);
                    Check(Text(insert, at[10], string.Join(',', c.SuggestionIds), ref utf8), db);
                    Check(raw.sqlite3_bind_int64(insert, at[11], c.IssuedAt.ToUnixTimeMilliseconds()), db);
                    var step = raw.sqlite3_step(insert);
                    raw.sqlite3_reset(insert);
                    if (step != raw.SQLITE_DONE) SqliteException.ThrowExceptionForRC(step, db);
                }
            }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(utf8);
        }
    }

    // The insert's parameters, in the order InsertCards binds them.
    private static readonly string[] CardColumns =
    [
        "@card_uuid", "@service_id", "@hook", "@hook_instance", "@rule_id", "@rule_version", "@indicator", "@drugs",
        "@patient_hash", "@encounter_hash", "@suggestion_ids", "@issued_at",
    ];

    // A null string as NULL, so that a NOT NULL column refuses it as a command did. Otherwise as UTF-8, the database's
    // encoding, with its length (a value is taken whole, a NUL in it included), made by .NET's vectorized transcoder into
    // the batch's buffer: bound as UTF-16, SQLite converted each value itself, a byte at a time (docs/performance.md,
    // thirteenth round). SQLite copies the value (SQLITE_TRANSIENT), so the buffer is free for the next. An empty
    // string goes as SQLitePCLRaw's "": an empty span has no address, and SQLite would take that for NULL.
    private static int Text(sqlite3_stmt statement, int index, string? value, ref byte[] utf8)
    {
        if (value is null) return raw.sqlite3_bind_null(statement, index);
        if (value.Length == 0) return raw.sqlite3_bind_text(statement, index, "");
        var most = System.Text.Encoding.UTF8.GetMaxByteCount(value.Length);
        if (utf8.Length < most)
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(utf8);
            utf8 = System.Buffers.ArrayPool<byte>.Shared.Rent(most);
        }

        var length = System.Text.Encoding.UTF8.GetBytes(value, utf8);
        return raw.sqlite3_bind_text(statement, index, utf8.AsSpan(0, length));
    }

    private static void Check(int result, sqlite3 db)
    {
        if (result != raw.SQLITE_OK) SqliteException.ThrowExceptionForRC(result, db);
    }

    /// <summary>The cards issued for this patient since <paramref name="since"/>, with their latest feedback.</summary>
    public async Task<IReadOnlyList<PastCard>> HistoryAsync(string patientHash, DateTimeOffset since, CancellationToken cancellationToken)
    {
        // Queued cards are taken before the query: a card the writer commits in between is then counted twice, which
        // changes no fatigue decision, instead of missed (taken after the query, it could have left the queue for a
        // row the query did not yet see).
        cancellationToken.ThrowIfCancellationRequested();
        var queued = _writer.Pending(patientHash, since);
        var history = _sqlite ? ReadHistory(patientHash, since.ToUnixTimeMilliseconds()) : await QueryHistoryAsync(patientHash, since, cancellationToken);
        foreach (var c in queued) history.Add(new PastCard(c.RuleId, c.Drugs, c.EncounterHash, c.Indicator, c.IssuedAt, null, null, null));
        return history;
    }

    // The hash is cast to the column's type: Npgsql sends a string as text, and PostgreSQL compared the CHAR(64) column
    // as text, which no index on it serves (every call with cards read the whole table); SQLite takes the cast as text.
    internal const string HistoryQuery = """
        SELECT c.rule_id, c.drugs, c.encounter_hash, c.indicator, c.issued_at, f.outcome, f.override_code, f.outcome_at, f.accepted_change
        FROM issued_card c LEFT JOIN card_feedback f ON f.card_uuid = c.card_uuid
        WHERE c.patient_hash = CAST(@patientHash AS CHAR(64)) AND (c.issued_at >= @since OR f.outcome_at >= @since)
        """;

    private async Task<List<PastCard>> QueryHistoryAsync(string patientHash, DateTimeOffset since, CancellationToken cancellationToken)
    {
        await using var connection = await OpenForReadAsync(cancellationToken);
        await using var query = connection.CreateCommand();
        query.CommandText = HistoryQuery;
        Parameter(query, "patientHash", DbType.String).Value = patientHash;
        Parameter(query, "since", DbType.Int64).Value = since.ToUnixTimeMilliseconds();
        await using var rows = await query.ExecuteReaderAsync(cancellationToken);
        var history = new List<PastCard>();
        while (await rows.ReadAsync(cancellationToken)) history.Add(PastCardOf(rows));
        return history;
    }

    // A row of the history query, read the same from either engine.
    private static PastCard PastCardOf(DbDataReader row) => new(
        row.GetString(0), row.GetString(1), row.IsDBNull(2) ? null : row.GetString(2), Parse(row.GetString(3)),
        DateTimeOffset.FromUnixTimeMilliseconds(row.GetInt64(4)), row.IsDBNull(5) ? null : row.GetString(5),
        row.IsDBNull(6) ? null : row.GetString(6), row.IsDBNull(7) ? null : DateTimeOffset.FromUnixTimeMilliseconds(row.GetInt64(7)),
        !row.IsDBNull(8) && row.GetInt64(8) == 1);

    // SQLite: the history query compiled once for each connection kept for it, not once per call. Parsing and planning
    // it again on every hook call with cards (the fatigue controls ask each time) was about as much of the audit
    // trail's CPU as running it (docs/performance.md). A connection is borrowed for one query at a time; one that fails
    // is closed, not returned; at most two per core are kept, open for the store's life as the connection pool's were.
    // Microsoft.Data.Sqlite runs its async methods synchronously, so these are synchronous too.
    private readonly System.Collections.Concurrent.ConcurrentQueue<HistoryReader> _historyReaders = new();

    private int _disposed;

    private List<PastCard> ReadHistory(string patientHash, long since)
    {
        if (!_historyReaders.TryDequeue(out var reader)) reader = new HistoryReader(_connectionString);
        var kept = false;
        try
        {
            var history = reader.Read(patientHash, since);
            kept = true;
            return history;
        }
        finally
        {
            if (kept && Volatile.Read(ref _disposed) == 0 && _historyReaders.Count < Environment.ProcessorCount * 2)
            {
                _historyReaders.Enqueue(reader);
                // Disposed meanwhile: nothing left open. A full fence here and in Dispose, so that one of the two sees
                // the other's write.
                Interlocked.MemoryBarrier();
                if (Volatile.Read(ref _disposed) != 0) CloseHistoryReaders();
            }
            else
            {
                reader.Dispose();
            }
        }
    }

    private void CloseHistoryReaders()
    {
        while (_historyReaders.TryDequeue(out var reader)) reader.Dispose();
    }

    private sealed class HistoryReader : IDisposable
    {
        private readonly SqliteConnection _connection;
        private readonly SqliteCommand _query;
        private readonly SqliteParameter _patient;
        private readonly SqliteParameter _since;

        public HistoryReader(string connectionString)
        {
            _connection = new SqliteConnection(connectionString);
            try
            {
                _connection.Open();
                _query = _connection.CreateCommand();
                _query.CommandText = HistoryQuery;
                _patient = _query.Parameters.Add("@patientHash", SqliteType.Text);
                _since = _query.Parameters.Add("@since", SqliteType.Integer);
            }
            catch
            {
                _connection.Dispose();
                throw;
            }
        }

        public List<PastCard> Read(string patientHash, long since)
        {
            _patient.Value = patientHash;
            _since.Value = since;
            var history = new List<PastCard>();
            using var rows = _query.ExecuteReader();
            while (rows.Read()) history.Add(PastCardOf(rows));

            return history;
        }

        public void Dispose()
        {
            _query.Dispose();
            _connection.Dispose();
        }
    }

    /// <summary>The uuids among <paramref name="cardUuids"/> that this service issued, with their suggestions
    /// ("update:uuid", "delete:uuid").</summary>
    public async Task<IReadOnlyDictionary<string, IReadOnlyList<string>>> KnownCardsAsync(IReadOnlyCollection<string> cardUuids, CancellationToken cancellationToken)
    {
        await _writer.FlushAsync(cancellationToken);
        await using var connection = await OpenForReadAsync(cancellationToken);
        // Dapper expands a list for SQLite; Npgsql takes it as one array parameter.
        var rows = await connection.QueryAsync<(string Uuid, string Suggestions)>(
            _sqlite
                ? "SELECT card_uuid, suggestion_ids FROM issued_card WHERE card_uuid IN @uuids"
                : "SELECT card_uuid, suggestion_ids FROM issued_card WHERE card_uuid = ANY(@uuids)",
            new { uuids = cardUuids.ToArray() });
        return rows.ToDictionary(r => r.Uuid, r => (IReadOnlyList<string>)r.Suggestions.Split(',', StringSplitOptions.RemoveEmptyEntries));
    }

    /// <summary>Records feedback in one transaction: when this returns, every item is on disk. The same item sent
    /// again (same card, outcome and time) is recorded once.</summary>
    public async Task<IReadOnlyList<FeedbackResult>> RecordFeedbackAsync(IReadOnlyList<FeedbackRecord> items, DateTimeOffset receivedAt, CancellationToken cancellationToken)
    {
        var known = await KnownCardsAsync([.. items.Select(i => i.CardUuid).Distinct()], cancellationToken);
        await using var connection = await OpenAsync(cancellationToken);
        bool Changed(FeedbackRecord item) => item.Outcome == "accepted"
            && item.AcceptedSuggestions.Any(id => known[item.CardUuid].Contains("update:" + id, StringComparer.Ordinal));
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var results = new List<FeedbackResult>();
        foreach (var item in items)
        {
            if (!known.ContainsKey(item.CardUuid))
            {
                results.Add(FeedbackResult.UnknownCard);
                continue;
            }

            var inserted = await connection.ExecuteAsync(
                """
                INSERT INTO card_feedback (card_uuid, outcome, outcome_at, accepted_suggestions, override_system, override_code,
                                           override_display, has_comment, received_at, accepted_change)
                VALUES (@CardUuid, @Outcome, @OutcomeAt, @Accepted, @OverrideSystem, @OverrideCode, @OverrideDisplay, @HasComment, @ReceivedAt, @AcceptedChange)
                ON CONFLICT DO NOTHING
                """,
                new
                {
                    // A time in the future is the client's clock, not the clinician's decision: it counts as now.
                    item.CardUuid, item.Outcome, OutcomeAt = Math.Min(item.OutcomeAt.ToUnixTimeMilliseconds(), receivedAt.ToUnixTimeMilliseconds()),
                    Accepted = string.Join(',', item.AcceptedSuggestions), AcceptedChange = Changed(item) ? 1 : 0,
                    item.OverrideSystem, item.OverrideCode, item.OverrideDisplay, HasComment = item.HasComment ? 1 : 0,
                    ReceivedAt = receivedAt.ToUnixTimeMilliseconds(),
                },
                transaction);
            results.Add(inserted == 1 ? FeedbackResult.Recorded : FeedbackResult.AlreadyRecorded);
        }

        await transaction.CommitAsync(cancellationToken);
        return results;
    }

    /// <summary>Per rule and indicator over a period: cards shown, accepted, overridden, and the top override reasons.
    /// Aggregates only.</summary>
    public async Task<IReadOnlyList<RuleOutcomes>> OutcomesAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken)
    {
        await _writer.FlushAsync(cancellationToken);
        await using var connection = await OpenForReadAsync(cancellationToken);
        var period = new { from = from.ToUnixTimeMilliseconds(), to = to.ToUnixTimeMilliseconds() };
        var totals = await connection.QueryAsync<(string RuleId, string Indicator, long Shown, long Accepted, long Overridden)>(
            """
            SELECT c.rule_id, c.indicator, COUNT(*) AS shown,
                   SUM(CASE WHEN EXISTS (SELECT 1 FROM card_feedback f WHERE f.card_uuid = c.card_uuid AND f.outcome = 'accepted') THEN 1 ELSE 0 END),
                   SUM(CASE WHEN EXISTS (SELECT 1 FROM card_feedback f WHERE f.card_uuid = c.card_uuid AND f.outcome = 'overridden') THEN 1 ELSE 0 END)
            FROM issued_card c
            WHERE c.issued_at >= @from AND c.issued_at < @to
            GROUP BY c.rule_id, c.indicator
            ORDER BY c.rule_id, c.indicator
            """, period);
        var reasons = (await connection.QueryAsync<(string RuleId, string Indicator, string Code, string? Display, long Count)>(
            """
            SELECT c.rule_id, c.indicator, f.override_code, MAX(f.override_display), COUNT(DISTINCT c.card_uuid)
            FROM issued_card c JOIN card_feedback f ON f.card_uuid = c.card_uuid
            WHERE c.issued_at >= @from AND c.issued_at < @to AND f.outcome = 'overridden' AND f.override_code IS NOT NULL
            GROUP BY c.rule_id, c.indicator, f.override_code
            """, period)).ToLookup(r => (r.RuleId, r.Indicator));
        return [.. totals.Select(t => new RuleOutcomes(t.RuleId, t.Indicator, t.Shown, t.Accepted, t.Overridden,
            [.. reasons[(t.RuleId, t.Indicator)].OrderByDescending(r => r.Count).ThenBy(r => r.Code, StringComparer.Ordinal).Take(3)
                .Select(r => new ReasonCount(r.Code, r.Display, r.Count))]))];
    }

    /// <summary>Deletes cards issued before <paramref name="before"/> and their feedback; returns the cards deleted.</summary>
    public async Task<int> PurgeAsync(DateTimeOffset before, CancellationToken cancellationToken)
    {
        await _writer.FlushAsync(cancellationToken);
        await using var connection = await OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var cutoff = new { before = before.ToUnixTimeMilliseconds() };
        await connection.ExecuteAsync(
            "DELETE FROM card_feedback WHERE card_uuid IN (SELECT card_uuid FROM issued_card WHERE issued_at < @before)", cutoff, transaction);
        var deleted = await connection.ExecuteAsync("DELETE FROM issued_card WHERE issued_at < @before", cutoff, transaction);
        await connection.ExecuteAsync("DELETE FROM used_token WHERE expires_at < @now", new { now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() }, transaction);
        await transaction.CommitAsync(cancellationToken);
        return deleted;
    }

    /// <summary>The SQLite synchronous mode of the connections that write feedback (2 = FULL), for the durability test.</summary>
    public async Task<int> DurableSynchronousModeAsync(CancellationToken cancellationToken)
    {
        if (!_sqlite) return 2;
        await using var connection = await OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<int>("PRAGMA synchronous");
    }

    // A parameter of a command run once per row: named as in its SQL (so SQLite finds it at the first lookup) and typed.
    private static DbParameter Parameter(DbCommand command, string name, DbType type)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = "@" + name;
        parameter.DbType = type;
        command.Parameters.Add(parameter);
        return parameter;
    }

    private static Indicator Parse(string indicator) => Enum.Parse<Indicator>(indicator, ignoreCase: true);

    public void Dispose()
    {
        _writer.Dispose(); // writes what is queued
        Interlocked.Exchange(ref _disposed, 1);
        CloseHistoryReaders();
        _postgres?.Dispose();
    }
}
