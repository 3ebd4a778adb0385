using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using CdsHooks.Api.Audit;
using CdsHooks.Engine.Hooks;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Options;

namespace CdsHooks.Api.Tests.Audit;

public sealed class RetentionAndAccessTests
{
    [Fact]
    public async Task PurgeRemovesCardsAndFeedbackPastTheRetentionPeriodOnly()
    {
        var path = Path.Combine(Path.GetTempPath(), $"cds-hooks-purge-{Guid.NewGuid():N}.db");
        using var store = new CardStore(Options.Create(new AuditOptions { ConnectionString = $"Data Source={path}" }));
        await store.MigrateAsync(TestContext.Current.CancellationToken);
        var now = DateTimeOffset.UtcNow;
        CardRecord Card(string uuid, DateTimeOffset at) =>
            new(uuid, "svc", "order-sign", "i", "rule", 1, Indicator.Warning, "1+2", new string('a', 64), null, [], at);
        var old = Guid.NewGuid().ToString();
        var recent = Guid.NewGuid().ToString();
        await store.RecordCardsAsync([Card(old, now.AddDays(-400)), Card(recent, now.AddDays(-1))], TestContext.Current.CancellationToken);
        await store.RecordFeedbackAsync([new FeedbackRecord(old, "overridden", now.AddDays(-399), [], null, "x", null, false)], now, TestContext.Current.CancellationToken);

        var deleted = await store.PurgeAsync(now.AddDays(-365), TestContext.Current.CancellationToken);

        Assert.Equal(1, deleted);
        var known = await store.KnownCardsAsync([old, recent], TestContext.Current.CancellationToken);
        Assert.Equal([recent], known.Keys);
        Assert.Equal(FeedbackResult.UnknownCard, (await store.RecordFeedbackAsync([new FeedbackRecord(old, "accepted", now, ["s"], null, null, null, false)], now, TestContext.Current.CancellationToken)).Single());
    }

    [Fact]
    public async Task AnalyticsNeedAKeyWhenKeysAreConfigured()
    {
        const string key = "analytics-key-for-tests";
        var hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(key)));
        await using var root = new CdsHooksApplication();
        await using var app = root.WithWebHostBuilder(b => b.UseSetting("Audit:AnalyticsKeyHashes:0", hash));
        var client = app.CreateClient();

        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync(new Uri("/analytics/outcomes", UriKind.Relative), TestContext.Current.CancellationToken)).StatusCode);
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "wrong-key");
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync(new Uri("/analytics/outcomes", UriKind.Relative), TestContext.Current.CancellationToken)).StatusCode);
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(new Uri("/analytics/outcomes", UriKind.Relative), TestContext.Current.CancellationToken)).StatusCode);
    }
}
