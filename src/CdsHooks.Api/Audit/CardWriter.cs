using System.Collections.Concurrent;
using System.Threading.Channels;

namespace CdsHooks.Api.Audit;

/// <summary>A token id to record against replay, and the caller waiting to learn whether it is its first use.</summary>
internal sealed record TokenUse(string Issuer, string Jti, long ExpiresAt)
{
    public TaskCompletionSource<bool> FirstUse { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}

/// <summary>
/// Writes the records of shown cards behind the answer, in batches, from one writer: a hook call never waits on the
/// database's write lock (SQLite has one writer; under load, callers queued on it and slept in its busy handler).
/// The token ids of authenticated calls go through the same writer, batched, their callers awaiting the answer
/// without holding a thread (one SQLite insert per call, beside the card writer, slept in the busy handler too).
/// Until its batch commits, a record is in <see cref="Pending"/>, so the fatigue controls of this instance see it at
/// once; <see cref="FlushAsync"/> waits until everything queued before it is written, for the readers that must see
/// every card (feedback, analytics, purge). Disposal writes what is queued.
/// </summary>
/// <remarks>
/// Card records wait up to <see cref="Gather"/> after the first of them for others to join their batch (or until a
/// batch's worth is queued), as the console log's lines do: calls that come together, as an EHR's do when a clinician
/// signs several orders or many clinicians work at once, are answered on the two cores first and their records
/// committed in one transaction after them, instead of a small transaction per call competing with the calls still
/// being answered (docs/performance.md, eleventh round). A token use or a flush does not wait: their callers are
/// waiting for the database. A token use is written at once without ending the cards' gathering; a flush ends it.
/// </remarks>
internal sealed class CardWriter : IDisposable
{
    private const int BatchSize = 500;

    /// <summary>How long the first card record of a batch may wait for others.</summary>
    public static readonly TimeSpan Gather = TimeSpan.FromMilliseconds(20);

    // Bounded: if the database falls far behind, callers wait for room rather than the queue growing without limit.
    private readonly Channel<object> _queue = Channel.CreateBounded<object>(new BoundedChannelOptions(20_000)
    {
        SingleReader = true,
        FullMode = BoundedChannelFullMode.Wait,
    });

    // The records not yet committed, by patient: the fatigue controls ask for one patient's on every call that has
    // cards, and a scan of all of them cost more the longer records wait for their batch (docs/performance.md).
    private readonly ConcurrentDictionary<string, Queued> _pending = new(StringComparer.Ordinal);
    private readonly Func<IReadOnlyList<CardRecord>, Task> _write;
    private readonly Func<IReadOnlyList<TokenUse>, Task<bool[]>> _writeTokens;
    private readonly Action<Exception, int> _failed;
    private readonly Task _loop;
    private readonly TimeSpan _gather;

    // Completed to wake the loop before its deadline: a token use queued (written at once), a flush, a batch's worth of
    // cards, disposal. Replaced by the loop before it reads what is queued, so a signal after that wakes it again (for
    // nothing, at worst: it goes back to waiting).
    private TaskCompletionSource _hurry = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _queuedCards; // queued or gathered, not yet written
    private volatile bool _stopping;

    public CardWriter(Func<IReadOnlyList<CardRecord>, Task> write, Func<IReadOnlyList<TokenUse>, Task<bool[]>> writeTokens,
        Action<Exception, int> failed, TimeSpan? gather = null)
    {
        _gather = gather ?? Gather;
        _write = write;
        _writeTokens = writeTokens;
        _failed = failed;
        _loop = Task.Run(WriteLoopAsync);
    }

    // After a failed token batch, token uses fail at once for a few seconds (the caller falls back to memory) rather
    // than each batch in turn waiting out the database's timeouts while callers queue behind it.
    private static readonly TimeSpan TokenFailureHold = TimeSpan.FromSeconds(5);
    private Exception? _tokenFailure;
    private long _tokenFailureUntil;

    /// <summary>Records a token id; true on its first use, false for a replay. Throws what the database threw. Once
    /// queued, the id is recorded even if the caller gives up: the same token sent again is a replay.</summary>
    public async Task<bool> FirstUseAsync(TokenUse use, CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _tokenFailure) is { } failure && Environment.TickCount64 < Volatile.Read(ref _tokenFailureUntil))
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        }

        await _queue.Writer.WriteAsync(use, cancellationToken);
        Hurry();
        return await use.FirstUse.Task.WaitAsync(cancellationToken);
    }

    public async ValueTask EnqueueAsync(IReadOnlyList<CardRecord> cards, CancellationToken cancellationToken)
    {
        if (cards.Count == 0) return;
        foreach (var card in cards) AddPending(card);
        try
        {
            await _queue.Writer.WriteAsync(cards, cancellationToken);
        }
        catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
        {
            RemovePending(cards);
            throw; // ChannelClosedException is an InvalidOperationException: the caller's "audit unavailable" path
        }

        if (Interlocked.Add(ref _queuedCards, cards.Count) >= BatchSize) Hurry();
    }

    /// <summary>Queues the records if the queue has room now; false, with nothing queued, if it is full or closed.</summary>
    public bool TryEnqueue(IReadOnlyList<CardRecord> cards)
    {
        if (cards.Count == 0) return true;
        foreach (var card in cards) AddPending(card);
        if (!_queue.Writer.TryWrite(cards))
        {
            RemovePending(cards);
            return false;
        }

        if (Interlocked.Add(ref _queuedCards, cards.Count) >= BatchSize) Hurry();
        return true;
    }

    private void Hurry() => Volatile.Read(ref _hurry).TrySetResult();

    /// <summary>Queued records of this patient, issued since then, that are not yet committed. A record removed
    /// meanwhile was committed first (so the query that follows sees it), or its batch failed or its enqueue was
    /// cancelled (so it is not in the history at all, as if never shown).</summary>
    public IReadOnlyList<CardRecord> Pending(string patientHash, DateTimeOffset since)
    {
        if (!_pending.TryGetValue(patientHash, out var queued)) return [];
        lock (queued)
        {
            return queued.Cards.FindAll(card => card.IssuedAt >= since);
        }
    }

    /// <summary>How many patients have records not yet committed.</summary>
    internal int PendingPatients => _pending.Count;

    private void AddPending(CardRecord card)
    {
        while (true)
        {
            var queued = _pending.GetOrAdd(card.PatientHash, static _ => new Queued());
            lock (queued)
            {
                if (queued.Gone) continue; // emptied and taken out meanwhile: a new one
                queued.Cards.Add(card);
                return;
            }
        }
    }

    // Each patient's list once, whatever the number of its records in the batch.
    private void RemovePending(IReadOnlyList<CardRecord> cards)
    {
        var done = new HashSet<CardRecord>(cards, ReferenceEqualityComparer.Instance);
        var patients = new HashSet<string>(StringComparer.Ordinal);
        foreach (var card in cards)
        {
            if (!patients.Add(card.PatientHash) || !_pending.TryGetValue(card.PatientHash, out var queued)) continue;
            lock (queued)
            {
                queued.Cards.RemoveAll(done.Contains);
                if (queued.Cards.Count == 0)
                {
                    queued.Gone = true;
                    _pending.TryRemove(new KeyValuePair<string, Queued>(card.PatientHash, queued));
                }
            }
        }
    }

    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        var written = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_queue.Writer.TryWrite(written))
        {
            try
            {
                await _queue.Writer.WriteAsync(written, cancellationToken);
            }
            catch (ChannelClosedException)
            {
                return; // shutting down: disposal writes what is queued
            }
        }

        Hurry();

        await written.Task.WaitAsync(cancellationToken);
    }

    private async Task WriteLoopAsync()
    {
        try
        {
            await WriteBatchesAsync();
        }
        finally
        {
            // Should the loop ever stop, nobody waits for it: queued token uses fail (the caller falls back to
            // memory), flushes return.
            _queue.Writer.TryComplete();
            while (_queue.Reader.TryRead(out var item))
            {
                if (item is TokenUse use) use.FirstUse.TrySetException(new InvalidOperationException("The audit writer has stopped."));
                else if (item is TaskCompletionSource flush) flush.TrySetResult();
            }
        }
    }

    private async Task WriteBatchesAsync()
    {
        var batch = new List<CardRecord>();
        var tokens = new List<TokenUse>();
        var flushes = new List<TaskCompletionSource>();
        var full = false; // the last drain stopped at a batch's size, with more queued behind it
        while (await _queue.Reader.WaitToReadAsync())
        {
            // Card records gather until this deadline, a batch's worth, a flush or disposal. Token uses are written as
            // they come, without ending the gathering: on an authenticated service every call brings one.
            var due = Environment.TickCount64 + (long)_gather.TotalMilliseconds;
            while (true)
            {
                var hurry = Volatile.Read(ref _hurry).Task;
                var left = due - Environment.TickCount64;
                if (!full && left > 0 && !hurry.IsCompleted && !_stopping && Volatile.Read(ref _queuedCards) < BatchSize)
                {
                    await Task.WhenAny(hurry, Task.Delay(TimeSpan.FromMilliseconds(left)));
                }

                Volatile.Write(ref _hurry, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
                while (batch.Count + tokens.Count < BatchSize && _queue.Reader.TryRead(out var item))
                {
                    if (item is TaskCompletionSource flush) flushes.Add(flush);
                    else if (item is TokenUse use) tokens.Add(use);
                    else batch.AddRange((IReadOnlyList<CardRecord>)item);
                }

                full = batch.Count + tokens.Count >= BatchSize;
                if (tokens.Count > 0) await WriteTokensAsync(tokens); // their callers are waiting for the answer

                // A wake-up for nothing (a signal meant for a batch already drained) goes back to waiting.
                if (full || flushes.Count > 0 || _stopping || batch.Count == 0 || Environment.TickCount64 >= due) break;
            }

            if (batch.Count > 0)
            {
                try
                {
                    await _write(batch);
                }
#pragma warning disable CA1031 // the loop must outlive any failure of one batch; the failure is logged
                catch (Exception e)
#pragma warning restore CA1031
                {
                    _failed(e, batch.Count);
                }

                RemovePending(batch);
                Interlocked.Add(ref _queuedCards, -batch.Count);
                batch.Clear();
            }

            foreach (var flush in flushes) flush.TrySetResult();
            flushes.Clear();
        }
    }

    private async Task WriteTokensAsync(List<TokenUse> tokens)
    {
        try
        {
            var first = await _writeTokens(tokens);
            for (var i = 0; i < tokens.Count; i++) tokens[i].FirstUse.TrySetResult(first[i]);
        }
#pragma warning disable CA1031 // each caller gets the failure and decides (the JWT handler falls back to memory)
        catch (Exception e)
#pragma warning restore CA1031
        {
            Volatile.Write(ref _tokenFailureUntil, Environment.TickCount64 + (long)TokenFailureHold.TotalMilliseconds);
            Volatile.Write(ref _tokenFailure, e);
            foreach (var use in tokens) use.FirstUse.TrySetException(e);
        }

        tokens.Clear();
    }

    public void Dispose()
    {
        _stopping = true;
        _queue.Writer.TryComplete();
        Hurry();
        _loop.Wait(TimeSpan.FromSeconds(10));
    }

    /// <summary>One patient's records not yet committed. Taken out of the map once empty, under its lock; a caller
    /// that finds it taken out looks again.</summary>
    private sealed class Queued
    {
        public readonly List<CardRecord> Cards = new(2);
        public bool Gone;
    }
}
