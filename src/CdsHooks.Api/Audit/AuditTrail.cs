using System.Security.Cryptography;
using System.Text;
using CdsHooks.Engine.Evaluation;
using CdsHooks.Engine.Hooks;
using CdsHooks.Engine.Telemetry;
using Microsoft.Extensions.Options;

namespace CdsHooks.Api.Audit;

/// <summary>
/// Between the engine and the EHR: drops the cards the alert-fatigue controls hold back, records every card shown
/// (identifiers, codes and keyed hashes only) and answers with the rest. When the database cannot be reached, or the
/// audit trail fails in any other way, the cards are shown unfiltered and unrecorded: a clinician must not lose a
/// warning because the audit trail is down.
/// </summary>
public sealed class AuditTrail(CardStore store, IOptions<AuditOptions> audit, IOptions<FatigueOptions> fatigue, TimeProvider time, ILogger<AuditTrail> logger)
{
    private readonly byte[] _key = Encoding.UTF8.GetBytes(audit.Value.HashKey ?? DevelopmentKey);

    // This thread's HMAC and the key it was made with (a test process may hold audit trails with different keys). It
    // goes with its thread: nothing to dispose at shutdown while a call may still be hashing, and its handle is
    // released when the thread ends.
    [ThreadStatic]
    private static (byte[] Key, IncrementalHash Hmac)? _threadHmac;

    public const string DevelopmentKey = "development-only-audit-key";

    public async Task<IReadOnlyList<Card>> ShowAsync(HookRequest request, HookResult result, CancellationToken cancellationToken)
    {
        if (result.Cards.Count == 0) return [];
        var now = time.GetUtcNow();
        try
        {
            var patient = Hash("patient", request.FhirServer, request.PatientId);
            var encounter = request.EncounterId is { } id ? Hash("encounter", request.FhirServer, id) : null;

            // Without the fatigue controls nothing is read, and a queue with room takes the records at once: the budget
            // below (a linked token source and its timer, set and cancelled on every call) is for waiting, and there is
            // none (docs/performance.md, fourteenth round).
            CardRecord[]? records = null;
            if (!fatigue.Value.Enabled)
            {
                // As the queue's own write does first: a caller that gave up (the EHR, the service stopping) records nothing.
                cancellationToken.ThrowIfCancellationRequested();
                records = Records(request, result.Cards, patient, encounter, now);
                if (store.TryEnqueueCards(records)) return Shown(result.Cards);
            }

            // The audit trail's own time budget (Audit:Timeout), within the call's: a database that hangs (a PostgreSQL
            // server that accepts and never answers, a writer queue that stays full) must not keep the cards from the
            // clinician until the request times out with none.
            using var budget = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            budget.CancelAfter(audit.Value.Timeout);

            // WaitAsync as well as the token: Npgsql does not give up on a server that accepted and went silent until
            // its own connect timeout (15 s by default); the abandoned read fails later on its own.
            IReadOnlyList<PastCard> history = fatigue.Value.Enabled
                ? await store.HistoryAsync(patient, now - fatigue.Value.Horizon, budget.Token).WaitAsync(budget.Token)
                : [];
            var shown = new List<IssuedCard>();
            var heldBack = new List<IssuedCard>();
            foreach (var card in result.Cards)
            {
                (FatiguePolicy.Suppression(card, encounter, history, fatigue.Value, now) is null ? shown : heldBack).Add(card);
            }

            await store.EnqueueCardsAsync(records ?? Records(request, shown, patient, encounter, now), budget.Token);
            foreach (var card in heldBack) CdsMetrics.CardsHeldBack.Add(1, new KeyValuePair<string, object?>("rule", card.RuleId));
            return Shown(shown);
        }
#pragma warning disable CA1031 // any failure of the audit trail, not only the database's: the warning still reaches the clinician
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
#pragma warning restore CA1031
        {
            // Not only an unreachable database: a row this version cannot read, a failure in the data access code
            // itself (the trimmed image once failed so on every call with cards, docs/performance.md), or the budget
            // spent. Only the caller's own cancellation (the EHR gave up, the service stops) goes on as such.
            logger.LogError("Audit trail failed ({ExceptionType}): cards returned without fatigue controls and not recorded", e.GetType().Name);
            return Shown(result.Cards);
        }
    }

    private static CardRecord[] Records(HookRequest request, IReadOnlyList<IssuedCard> cards, string patient, string? encounter, DateTimeOffset now)
    {
        var records = new CardRecord[cards.Count];
        for (var i = 0; i < records.Length; i++)
        {
            var c = cards[i];
            records[i] = new CardRecord(c.Card.Uuid, request.Service.Id, request.Service.Hook, request.HookInstance, c.RuleId,
                c.RuleVersion, c.Indicator, c.DrugsKey, patient, encounter, c.SuggestionIds, now);
        }

        return records;
    }

    /// <summary>The cards the clinician sees, each counted in the metrics.</summary>
    private static Card[] Shown(IReadOnlyList<IssuedCard> shown)
    {
        var cards = new Card[shown.Count];
        for (var i = 0; i < shown.Count; i++)
        {
            CdsMetrics.Cards.Add(1, new KeyValuePair<string, object?>("rule", shown[i].RuleId), new KeyValuePair<string, object?>("indicator", shown[i].Card.Indicator.WireName()));
            cards[i] = shown[i].Card;
        }

        return cards;
    }

    /// <summary>A keyed hash (HMAC-SHA256) of an identifier: the same patient maps to the same value, which cannot be
    /// turned back into the id without the key. One HMAC per thread, reset after each hash: the one-shot
    /// <c>HMACSHA256.HashData</c> sets up OpenSSL's MAC from its parameters every time, 1.1 against 0.5 µs
    /// (docs/performance.md).</summary>
    public string Hash(string kind, string? fhirServer, string id)
    {
        if (_threadHmac is not { } mine || !ReferenceEquals(mine.Key, _key))
        {
            _threadHmac?.Hmac.Dispose();
            _threadHmac = mine = (_key, IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, _key));
        }

        // The hashed text as UTF-8, written where it is hashed: on the stack for the ids EHRs send, rented for a longer one.
        var most = Encoding.UTF8.GetMaxByteCount(kind.Length + (fhirServer?.Length ?? 0) + id.Length + 2);
        var rented = most > 512 ? System.Buffers.ArrayPool<byte>.Shared.Rent(most) : null;
        Span<byte> text = rented ?? stackalloc byte[512];
        try
        {
            if (!System.Text.Unicode.Utf8.TryWrite(text, $"{kind}|{fhirServer}|{id}", out var length))
            {
                throw new InvalidOperationException("The hashed text did not fit its buffer.");
            }

            mine.Hmac.AppendData(text[..length]);
        }
        finally
        {
            if (rented is not null) System.Buffers.ArrayPool<byte>.Shared.Return(rented, clearArray: true); // it holds the ids
        }

        Span<byte> hash = stackalloc byte[32];
        mine.Hmac.GetHashAndReset(hash);
        return Convert.ToHexStringLower(hash);
    }
}
