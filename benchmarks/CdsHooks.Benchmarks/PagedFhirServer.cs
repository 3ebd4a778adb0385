using System.Net;
using CdsHooks.Engine.Fhir;
using Microsoft.Extensions.Caching.Distributed;

namespace CdsHooks.Benchmarks;

/// <summary>The EHR's FHIR server for the paged request, in memory: what it costs the service to follow a paged search
/// (the requests, reading the pages, merging them), without a network or a server's own time in the figure. Nothing is
/// cached between calls (<see cref="NoCache"/>): every call is a new patient's.</summary>
internal sealed class PagedFhirServer(IReadOnlyDictionary<string, string> pages) : HttpMessageHandler, IHttpClientFactory
{
    private int _served;

    /// <summary>Pages served so far.</summary>
    public int Served => _served;

    public HttpClient CreateClient(string name) => new(this, disposeHandler: false);

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (!pages.TryGetValue(request.RequestUri!.ToString(), out var page)) return Task.FromResult(new HttpResponseMessage(HttpStatusCode.NotFound));
        Interlocked.Increment(ref _served);
        return Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK) { Content = new StringContent(page, System.Text.Encoding.UTF8, "application/fhir+json") });
    }

    public PatientDataFetcher Fetcher() => new(this, new NoCache(), new FhirServerOptions { AllowedServers = [Requests.FhirBase] });

    private sealed class NoCache : IDistributedCache
    {
        public byte[]? Get(string key) => null;

        public Task<byte[]?> GetAsync(string key, CancellationToken token = default) => Task.FromResult<byte[]?>(null);

        public void Set(string key, byte[] value, DistributedCacheEntryOptions options)
        {
        }

        public Task SetAsync(string key, byte[] value, DistributedCacheEntryOptions options, CancellationToken token = default) => Task.CompletedTask;

        public void Refresh(string key)
        {
        }

        public Task RefreshAsync(string key, CancellationToken token = default) => Task.CompletedTask;

        public void Remove(string key)
        {
        }

        public Task RemoveAsync(string key, CancellationToken token = default) => Task.CompletedTask;
    }
}
