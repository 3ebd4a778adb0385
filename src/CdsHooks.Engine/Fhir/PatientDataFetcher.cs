using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using CdsHooks.Engine.Hooks;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace CdsHooks.Engine.Fhir;

/// <summary>The patient data a hook call can use: prefetch, completed from the EHR's FHIR server where it was
/// missing, with the Medication resources that orders refer to, and what could not be had and why.</summary>
public sealed record PatientData(
    IReadOnlyDictionary<string, Prefetched> Data,
    IReadOnlyDictionary<string, MedicationRecord> Medications,
    IReadOnlyDictionary<string, string> Problems)
{
    public Prefetched For(string key) => Data.TryGetValue(key, out var p) ? p : Prefetched.Absent;

    /// <summary>What the request itself carries: prefetch, and the Medication resources in its Bundles.</summary>
    public static PatientData FromRequest(HookRequest request) => new(request.Prefetch, LocalMedications(request), NoProblems);

    private static readonly IReadOnlyDictionary<string, string> NoProblems = System.Collections.ObjectModel.ReadOnlyDictionary<string, string>.Empty;

    private static readonly IReadOnlyDictionary<string, MedicationRecord> NoMedications =
        System.Collections.ObjectModel.ReadOnlyDictionary<string, MedicationRecord>.Empty;

    // Loops rather than LINQ chains: every hook call runs this, over every entry of every prefetch Bundle. The map is
    // made for the first Medication found: most requests carry none.
    private static IReadOnlyDictionary<string, MedicationRecord> LocalMedications(HookRequest request)
    {
        Dictionary<string, MedicationRecord>? medications = null;
        for (var i = 0; i < request.NewOrders.Count; i++) Add(request.NewOrders[i], ref medications);
        for (var i = 0; i < request.OtherDraftOrders.Count; i++) Add(request.OtherDraftOrders[i], ref medications);
        AddBundled(request.Prefetch.Values, ref medications);
        return medications ?? NoMedications;
    }

    /// <summary>Adds the Medication resources in these Bundles (prefetch, or prefetch completed from the FHIR server),
    /// making the map for the first one when there is none. The first with an id wins, as it did when they were found
    /// in order and made distinct by id.</summary>
    internal static void AddBundled(IEnumerable<Prefetched> data, ref Dictionary<string, MedicationRecord>? into)
    {
        foreach (var prefetched in data)
        {
            if (prefetched.Resource is not BundleRecord bundle) continue;
            for (var i = 0; i < bundle.Entries.Count; i++) Add(bundle.Entries[i], ref into);
        }
    }

    private static void Add(FhirRecord? resource, ref Dictionary<string, MedicationRecord>? into)
    {
        if (resource is MedicationRecord { Id: { } id } medication) (into ??= new(StringComparer.Ordinal)).TryAdd("Medication/" + id, medication);
    }
}

/// <summary>
/// Completes prefetch from the EHR's FHIR server: every missing or failed key (and the further pages of a paged
/// prefetch Bundle) is queried in parallel with the EHR's bearer token, within a per-call timeout and an overall
/// budget, and the results are cached briefly for the next hook call about the same patient. The token goes only
/// to the request's own <c>fhirServer</c>, and only if that server is on the allow-list; it is never logged, and
/// the cache is keyed by its hash.
/// </summary>
public sealed class PatientDataFetcher(IHttpClientFactory httpClients, IDistributedCache cache, FhirServerOptions options,
    ILogger<PatientDataFetcher>? logger = null)
{
    public const string HttpClientName = "fhir";

    private readonly ILogger _logger = logger ?? NullLogger<PatientDataFetcher>.Instance;

    public Task<PatientData> CompleteAsync(HookRequest request, CancellationToken cancellationToken) =>
        CompleteAsync(request, PatientData.FromRequest(request), cancellationToken).AsTask();

    /// <summary>Completes <paramref name="local"/>, which must be <see cref="PatientData.FromRequest"/> of this request
    /// (the engine has it already); returned as it is when nothing is missing, as in most calls, and then without a
    /// task made for it.</summary>
    internal ValueTask<PatientData> CompleteAsync(HookRequest request, PatientData local, CancellationToken cancellationToken)
    {
        System.Diagnostics.Debug.Assert(ReferenceEquals(local.Data, request.Prefetch), "local must be PatientData.FromRequest(request)");
        List<string>? missing = null;
        foreach (var key in PrefetchKeys.Names)
        {
            var prefetched = request.PrefetchFor(key);
            if (prefetched.State is PrefetchState.Absent or PrefetchState.Failed || NextLink(prefetched.Resource) is not null) (missing ??= []).Add(key);
        }

        return missing is null && UnresolvedReferences(request, request.Prefetch.Values, local.Medications) is null ? new(local) : new(FetchAsync(request, local, missing ?? [], cancellationToken));
    }

    private async Task<PatientData> FetchAsync(HookRequest request, PatientData local, List<string> wanted, CancellationToken cancellationToken)
    {
        var data = new Dictionary<string, Prefetched>(request.Prefetch);
        var problems = new Dictionary<string, string>();
        Dictionary<string, MedicationRecord>? medications = new(local.Medications, StringComparer.Ordinal);
        var refusal = request.FhirServer is null || request.FhirAuthorization is null
            ? "the request has no fhirServer with fhirAuthorization, and prefetch did not provide it"
            : options.Refusal(request.FhirServer);
        if (refusal is not null)
        {
            foreach (var key in wanted) problems[key] = NextLink(request.PrefetchFor(key).Resource) is null ? refusal : "further pages: " + refusal;
            return new PatientData(data, medications, problems);
        }

        var server = new Server(request.FhirServer!.TrimEnd('/'), request.FhirAuthorization!, request.PatientId);
        using var budget = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        budget.CancelAfter(options.Budget);

        var results = await System.Threading.Tasks.Task.WhenAll(wanted.Select(key => FetchKeyAsync(server, key, request.PrefetchFor(key), budget.Token)));
        foreach (var (key, resource, problem) in results)
        {
            if (resource is not null) data[key] = new Prefetched(PrefetchState.Data, resource);
            if (problem is not null) problems[key] = problem;
        }

        PatientData.AddBundled(data.Values, ref medications!); // made above: stays the same map

        // Orders that name a Medication on the server ("Medication/123") need it read, in parallel, within what is left.
        var unresolved = UnresolvedReferences(request, data.Values, medications) ?? [];
        var read = await System.Threading.Tasks.Task.WhenAll(unresolved.Select(reference => ReadMedicationAsync(server, reference, budget.Token)));
        foreach (var (reference, medication, problem) in read)
        {
            if (medication is not null) medications[reference] = medication;
            else problems[reference] = problem!;
        }

        return new PatientData(data, medications, problems);
    }

    private sealed record Server(string Base, FhirAuthorization Authorization, string PatientId)
    {
        /// <summary>True when <paramref name="url"/>, once normalised, is on this server under its base path.
        /// Backslashes, dot segments and their encodings are refused outright: they are how a path escapes.</summary>
        public bool Contains(string url)
        {
            if (url.Contains('\\', StringComparison.Ordinal) || url.Contains("%2e", StringComparison.OrdinalIgnoreCase)
                || url.Contains("%2f", StringComparison.OrdinalIgnoreCase) || url.Contains("%5c", StringComparison.OrdinalIgnoreCase))
            {
                return false;
            }

            if (!Uri.TryCreate(url, UriKind.Absolute, out var target) || !Uri.TryCreate(Base + "/", UriKind.Absolute, out var root)) return false;
            return url.Split('?')[0].Split('/').All(segment => segment is not ("." or ".."))
                && target.Scheme == root.Scheme && target.Authority.Equals(root.Authority, StringComparison.OrdinalIgnoreCase)
                && target.AbsolutePath.StartsWith(root.AbsolutePath, StringComparison.Ordinal);
        }

        // The cache key holds a hash of the token, never the token.
        public string CacheKey(string what) => $"fhir|{Base}|{PatientId}|{Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(Authorization.AccessToken)))}|{what}";
    }

    private async Task<(string Key, FhirRecord? Resource, string? Problem)> FetchKeyAsync(Server server, string key, Prefetched prefetched, CancellationToken cancellationToken)
    {
        var cacheKey = server.CacheKey(key);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            // Inside the try: a cache that outlasts the budget is this key's timeout, not the hook call's failure.
            if (await CachedAsync<FhirRecord>(cacheKey, cancellationToken) is { } cached) return (key, cached, null);

            // A paged prefetch Bundle is completed from its next link; a missing key is queried from its template (and so
            // is a paged Bundle whose JSON was not kept, which only a whole parse with Firely leaves: the tests' reference).
            var first = prefetched.Resource is BundleRecord { Next: not null, Source: { } json } paged
                ? new Page(paged, json)
                : await GetAsync(server, server.Base + "/" + PrefetchKeys.Templates[key].Replace("{{context.patientId}}", Uri.EscapeDataString(server.PatientId), StringComparison.Ordinal), cancellationToken);
            if (first.Resource.TypeName == "OperationOutcome") return (key, null, "the FHIR server answered with an OperationOutcome");

            var pages = first.Resource is BundleRecord ? await FollowPagesAsync(server, first, cancellationToken) : [first];
            await CacheAsync(cacheKey, pages, cancellationToken);
            Telemetry.CdsMetrics.FhirFetchDuration.Record(clock.Elapsed.TotalMilliseconds, new KeyValuePair<string, object?>("key", key));
            return (key, Merge([.. pages.Select(p => p.Resource)]), null);
        }
        catch (Exception e)
        {
            var reason = Failure(e, cancellationToken);
            Telemetry.CdsMetrics.FhirFetchFailures.Add(1, new KeyValuePair<string, object?>("key", key), new KeyValuePair<string, object?>("reason", reason));
            _logger.LogWarning("FHIR query for prefetch key {PrefetchKey} on {FhirHost} failed: {Reason}", key, new Uri(server.Base).Host, reason);
            return (key, null, reason);
        }
    }

    /// <summary>One answer of the FHIR server as read, and its JSON (what the cache keeps).</summary>
    private sealed record Page(FhirRecord Resource, byte[] Json);

    private async Task<List<Page>> FollowPagesAsync(Server server, Page first, CancellationToken cancellationToken)
    {
        var pages = new List<Page> { first };
        var page = first.Resource;
        for (var count = 1; NextLink(page) is { } next && count < options.MaxPages; count++)
        {
            // A next link must stay on the same server, under its base path: the token must not follow it anywhere else.
            if (!server.Contains(next)) throw new FhirFetchException("a next link points away from the FHIR server");

            var answer = await GetAsync(server, next, cancellationToken);
            page = answer.Resource as BundleRecord ?? throw new FhirFetchException("a next page is not a Bundle");
            pages.Add(answer);
        }

        if (NextLink(page) is not null) throw new FhirFetchException($"more than {options.MaxPages} pages");
        return pages;
    }

    // The pages of a search as one Bundle of all their entries; a single resource as it is.
    private static FhirRecord Merge(List<FhirRecord> pages) =>
        pages is [var single] && single is not BundleRecord ? single
            : new BundleRecord(null, null, [.. pages.SelectMany(p => ((BundleRecord)p).Entries)]);

    private async Task<(string Reference, MedicationRecord? Medication, string? Problem)> ReadMedicationAsync(Server server, string reference, CancellationToken cancellationToken)
    {
        var cacheKey = server.CacheKey(reference);
        try
        {
            if (await CachedAsync<MedicationRecord>(cacheKey, cancellationToken) is { } cached) return (reference, cached, null);
            var answer = await GetAsync(server, server.Base + "/" + reference, cancellationToken);
            var medication = answer.Resource as MedicationRecord ?? throw new FhirFetchException("the reference is not a Medication");
            await CacheAsync(cacheKey, [answer], cancellationToken);
            return (reference, medication, null);
        }
        catch (Exception e)
        {
            var reason = Failure(e, cancellationToken);
            _logger.LogWarning("FHIR read of a referenced Medication on {FhirHost} failed: {Reason}", new Uri(server.Base).Host, reason);
            return (reference, null, reason);
        }
    }

    // The cache is memory by default and Redis when configured (shared by instances); an entry is the FHIR JSON the
    // server answered (a JSON array of the pages, for a paged search), keyed by server, patient and token hash, and is
    // read again like prefetch. A cache that fails, or holds what cannot be read, is a miss, never a failed hook call.
    private async Task<T?> CachedAsync<T>(string key, CancellationToken cancellationToken) where T : FhirRecord
    {
        // The cache's own time budget; WaitAsync too, since a Redis client that cannot connect waits out its own
        // connect timeout (5 s by default) whatever the token says.
        using var budget = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        budget.CancelAfter(options.CacheTimeout);
        try
        {
            var bytes = await cache.GetAsync(key, budget.Token).WaitAsync(budget.Token);
            if (bytes is null) return null;
            // One resource, or the pages of a paged answer: read like prefetch, and a problem makes the entry a miss.
            var issues = new List<RequestIssue>();
            var pages = PrefetchReader.ReadResources(bytes, "cache", issues);
            if (issues.Count > 0) throw new FhirFetchException("unreadable cache entry");
            return pages.Count == 0 ? null : Merge(pages) as T;
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            _logger.LogWarning("Patient data cache read failed ({ExceptionType})", e.GetType().Name);
            return null;
        }
    }

    private async System.Threading.Tasks.Task CacheAsync(string key, IReadOnlyList<Page> pages, CancellationToken cancellationToken)
    {
        using var budget = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        budget.CancelAfter(options.CacheTimeout);
        try
        {
            byte[] entry;
            if (pages.Count == 1)
            {
                entry = pages[0].Json;
            }
            else
            {
                using var buffer = new MemoryStream();
                buffer.WriteByte((byte)'[');
                for (var i = 0; i < pages.Count; i++)
                {
                    if (i > 0) buffer.WriteByte((byte)',');
                    buffer.Write(pages[i].Json);
                }

                buffer.WriteByte((byte)']');
                entry = buffer.ToArray();
            }

            await cache.SetAsync(key, entry, new DistributedCacheEntryOptions { AbsoluteExpirationRelativeToNow = options.CacheDuration }, budget.Token)
                .WaitAsync(budget.Token);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            _logger.LogWarning("Patient data cache write failed ({ExceptionType})", e.GetType().Name);
        }
    }

    // Read like prefetch (PrefetchReader): the elements the engine uses, held to the same policy (no duplicate properties,
    // no deep nesting); a problem in them makes the answer unusable, a problem elsewhere cannot change a card.
    private static FhirRecord? Read(ReadOnlySpan<byte> json, string location)
    {
        var issues = new List<RequestIssue>();
        var resource = PrefetchReader.ReadResource(json, location, issues);
        return issues.Count == 0 ? resource : null;
    }

    private async Task<Page> GetAsync(Server server, string url, CancellationToken cancellationToken)
    {
        using var message = new HttpRequestMessage(HttpMethod.Get, url);
        message.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", server.Authorization.AccessToken);
        message.Headers.Accept.ParseAdd("application/fhir+json");
        using var response = await httpClients.CreateClient(HttpClientName).SendAsync(message, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        if (response.StatusCode != HttpStatusCode.OK) throw new FhirFetchException($"HTTP {(int)response.StatusCode}");

        var json = await ReadBoundedAsync(response.Content, cancellationToken);
        return new Page(Read(json, "response") ?? throw new FhirFetchException("unreadable FHIR response"), json);
    }

    // The answer's bytes, at most Fhir:MaxAnswerBytes of them (an answer is held whole, and cached), without a UTF-8
    // byte order mark: JSON text may start with one, which a cached array of pages must not hold.
    private async Task<byte[]> ReadBoundedAsync(HttpContent content, CancellationToken cancellationToken)
    {
        if (content.Headers.ContentLength > options.MaxAnswerBytes) throw new FhirFetchException("the answer is larger than Fhir:MaxAnswerBytes");
        await using var stream = await content.ReadAsStreamAsync(cancellationToken);
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await stream.ReadAsync(chunk, cancellationToken)) > 0)
        {
            if (buffer.Length + read > options.MaxAnswerBytes) throw new FhirFetchException("the answer is larger than Fhir:MaxAnswerBytes");
            buffer.Write(chunk, 0, read);
        }

        var bytes = buffer.GetBuffer().AsSpan(0, (int)buffer.Length);
        return bytes.StartsWith("\uFEFF"u8) ? bytes[3..].ToArray() : bytes.ToArray();
    }

    // Why a fetch failed, in words fit for a log and an OperationOutcome (never the server's answer itself).
    private static string Failure(Exception e, CancellationToken budget) => e switch
    {
        FhirFetchException f => f.Message,
        OperationCanceledException when budget.IsCancellationRequested => "timed out (over the FHIR budget)",
        OperationCanceledException or TimeoutException => "timed out",
        HttpRequestException => "unreachable",
        JsonException => "unreadable FHIR response",
        _ when e.GetType().Name.Contains("Timeout", StringComparison.Ordinal) => "timed out", // the resilience handler's per-call timeout
        _ => "failed",
    };

    // "Medication/{id}" with a FHIR id (letters, digits, '-' and '.', at most 64): the only references read from the
    // server, so that a crafted reference cannot send the token elsewhere on it.
    private static bool IsLocalMedicationReference(string reference) =>
        reference.StartsWith("Medication/", StringComparison.Ordinal) && reference.Length is > 11 and <= 75
        && reference[11..].All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.') && reference[11..] is not ("." or "..");

    private static string? NextLink(FhirRecord? resource) => (resource as BundleRecord)?.Next;

    // The references of orders and prefetched MedicationRequests that name a Medication on the server not known yet,
    // each once, in the order met. Loops, not LINQ: every hook call asks, and almost always finds none.
    // Null when there is none (most calls), without a list made.
    private static List<string>? UnresolvedReferences(HookRequest request, IEnumerable<Prefetched> data, IReadOnlyDictionary<string, MedicationRecord> known)
    {
        List<string>? unresolved = null;
        for (var i = 0; i < request.NewOrders.Count; i++) Check(request.NewOrders[i], known, ref unresolved);
        for (var i = 0; i < request.OtherDraftOrders.Count; i++) Check(request.OtherDraftOrders[i], known, ref unresolved);
        foreach (var prefetched in data)
        {
            if (prefetched.Resource is not BundleRecord bundle) continue;
            for (var i = 0; i < bundle.Entries.Count; i++) Check(bundle.Entries[i], known, ref unresolved);
        }

        return unresolved;

        static void Check(FhirRecord? resource, IReadOnlyDictionary<string, MedicationRecord> known, ref List<string>? unresolved)
        {
            if (resource is RequestRecord { Medication.Reference.Value: { } reference }
                && IsLocalMedicationReference(reference) && !known.ContainsKey(reference) && unresolved?.Contains(reference) != true)
            {
                (unresolved ??= []).Add(reference);
            }
        }
    }
}

/// <summary>A FHIR server answer the service cannot use; the message says why without quoting the answer.</summary>
public sealed class FhirFetchException(string message) : Exception(message);
