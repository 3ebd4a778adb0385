using CdsHooks.Engine.Evaluation;

namespace CdsHooks.Engine.Tests.Evaluation;

/// <summary>Card and suggestion uuids: RFC 9562 versions and variant, never the same twice, the time first in v7.</summary>
public class UuidsTests
{
    private static string Hex(Guid uuid) => uuid.ToString("N");

    [Fact]
    public void RandomUuidsAreVersionFourAndDistinct()
    {
        // More than one pool of random bytes (4 KB, 256 uuids) on each of two threads, each with its own pool.
        var drawn = new[] { new List<Guid>(), new List<Guid>() };
        var threads = drawn.Select(list => new Thread(() => list.AddRange(Enumerable.Range(0, 5000).Select(_ => Uuids.Random())))).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        var uuids = drawn.SelectMany(list => list).ToList();

        Assert.Equal(10_000, uuids.Count);
        Assert.All(uuids, u => Assert.Equal(4, u.Version));
        Assert.All(uuids, u => Assert.Contains(Hex(u)[16], "89ab")); // the RFC variant: 10xx
        Assert.Equal(uuids.Count, uuids.Distinct().Count());
        Assert.True(uuids.Select(u => Hex(u)[20..]).Distinct().Count() > 9_990, "random bits repeat"); // 48 random bits
    }

    [Fact]
    public void TimeOrderedUuidsStartWithTheirMillisecondAndSortByIt()
    {
        var start = new DateTimeOffset(2026, 11, 27, 3, 0, 0, TimeSpan.Zero);
        var uuids = Enumerable.Range(0, 3000).Select(i => (At: start.AddMilliseconds(i), Uuid: Uuids.TimeOrdered(start.AddMilliseconds(i)))).ToList();

        Assert.All(uuids, u => Assert.Equal(7, u.Uuid.Version));
        Assert.All(uuids, u => Assert.Contains(Hex(u.Uuid)[16], "89ab"));
        Assert.All(uuids, u => Assert.Equal(u.At.ToUnixTimeMilliseconds(), Convert.ToInt64(Hex(u.Uuid)[..12], 16)));
        Assert.Equal(uuids.Select(u => Hex(u.Uuid)), uuids.Select(u => Hex(u.Uuid)).Order(StringComparer.Ordinal));
        // The same millisecond still gives different uuids: 74 random bits.
        var same = Enumerable.Range(0, 3000).Select(_ => Uuids.TimeOrdered(start)).ToList();
        Assert.Equal(same.Count, same.Distinct().Count());
    }
}
