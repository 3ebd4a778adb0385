using System.Net;
using System.Net.Http.Headers;
using System.Reflection;
using System.Text;
using System.Text.Json.Nodes;
using CdsHooks.Api.Operations;
using CdsHooks.Tests;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CdsHooks.Api.Tests.Operations;

/// <summary>Kestrel's memory pool of 16 KB blocks (<see cref="ReceiveBlockPoolFactory"/>): what it lends, and the
/// service on Kestrel answering requests that span many blocks as the in-memory test server answers them.</summary>
public sealed class ReceiveBlockPoolTests(CdsHooksApplication app) : IClassFixture<CdsHooksApplication>
{
    private const string Service = "/cds-services/medication-safety-order-sign";

    /// <summary>Kestrel's socket transport takes its pool's factory from the services (.NET 10), through an internal
    /// option: read here by reflection, so that a framework that wires it otherwise fails this test rather than
    /// quietly going back to 4 KB blocks.</summary>
    [Fact]
    public void KestrelsSocketTransportTakesTheServicesPool()
    {
        var sockets = app.Services.GetRequiredService<IOptions<SocketTransportOptions>>().Value;
        var wired = typeof(SocketTransportOptions)
            .GetProperty("MemoryPoolFactory", BindingFlags.Instance | BindingFlags.NonPublic)?.GetValue(sockets);

        Assert.IsType<ReceiveBlockPoolFactory>(wired);
        using var pool = ((IMemoryPoolFactory<byte>)wired).Create();
        Assert.Equal(16 * 1024, pool.MaxBufferSize);
    }

    [Fact]
    public void ThePoolsOfOneFactoryShareTheirBlocks()
    {
        var factory = new ReceiveBlockPoolFactory();
        using var one = factory.Create();
        using var other = factory.Create();
        var block = one.Rent();
        var array = ArrayOf(block);
        block.Dispose();

        using var again = other.Rent();

        Assert.Same(array, ArrayOf(again));
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(1)]
    [InlineData(2048)]
    [InlineData(16 * 1024)]
    public void EveryBlockIsWholeWhateverTheSizeAskedFor(int size)
    {
        using var pool = new ReceiveBlockPoolFactory().Create();
        using var block = pool.Rent(size);

        Assert.Equal(ReceiveBlockPoolFactory.BlockSize, block.Memory.Length);
    }

    [Fact]
    public void MoreThanABlockIsRefused()
    {
        using var pool = new ReceiveBlockPoolFactory().Create();

        Assert.Throws<ArgumentOutOfRangeException>(() => pool.Rent(ReceiveBlockPoolFactory.BlockSize + 1));
    }

    [Fact]
    public void AReturnedBlockIsLentAgainAndNeverToTwoHoldersAtOnce()
    {
        using var pool = new ReceiveBlockPoolFactory().Create();
        var first = pool.Rent();
        var array = ArrayOf(first);
        first.Dispose();
        first.Dispose(); // a second return must not put the array in the pool twice

        using var second = pool.Rent();
        using var third = pool.Rent();

        Assert.Same(array, ArrayOf(second));
        Assert.NotSame(ArrayOf(second), ArrayOf(third));
        Assert.Throws<ObjectDisposedException>(() => first.Memory);
    }

    /// <summary>A request of about 90 KB (six blocks) and one sent without its length (chunked, so the body is read
    /// until it ends), each answered by the service on Kestrel as the test server answers the same request.</summary>
    [Fact]
    public async Task ARequestOfManyBlocksIsAnsweredAsTheTestServerAnswersIt()
    {
        var request = Repository.SampleNode("order-sign-mirtazapine-80-year-old-on-clonazepam.json");
        var entries = request["prefetch"]!["medications"]!["entry"]!.AsArray();
        var template = entries[0]!.ToJsonString();
        for (var i = 0; i < 120; i++)
        {
            var copy = JsonNode.Parse(template)!;
            copy["resource"]!["id"] = $"copy-{i}";
            copy["fullUrl"] = $"MedicationRequest/copy-{i}";
            entries.Add(copy);
        }

        var json = request.ToJsonString();
        Assert.True(Encoding.UTF8.GetByteCount(json) > 4 * ReceiveBlockPoolFactory.BlockSize);
        // Without the fatigue controls, which would hold the second call's cards back as a repeat.
        await using var service = await ServiceProcess.StartAsync(
            new Dictionary<string, string> { ["Fatigue__Enabled"] = "false" });
        using var client = new HttpClient { BaseAddress = new Uri(service.BaseUrl) };

        var expected = await app.CreateClient().PostJson(Service, json);
        var withLength = await client.PostJson(Service, json);
        var chunked = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(json)));
        chunked.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        var withoutLength = await client.SendAsync(
            new HttpRequestMessage(HttpMethod.Post, Service) { Content = chunked, Headers = { TransferEncodingChunked = true } },
            TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, expected.StatusCode);
        Assert.Equal(HttpStatusCode.OK, withLength.StatusCode);
        Assert.Equal(HttpStatusCode.OK, withoutLength.StatusCode);
        var cards = Http.WithoutUuids(await expected.Json());
        Assert.Contains("clonazepam", cards, StringComparison.Ordinal);
        Assert.Equal(cards, Http.WithoutUuids(await withLength.Json()));
        Assert.Equal(cards, Http.WithoutUuids(await withoutLength.Json()));
    }

    private static byte[] ArrayOf(System.Buffers.IMemoryOwner<byte> block) =>
        System.Runtime.InteropServices.MemoryMarshal.TryGetArray<byte>(block.Memory, out var segment)
            ? segment.Array!
            : throw new InvalidOperationException("not an array");
}
