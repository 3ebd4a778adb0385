using System.Buffers.Binary;
using System.Security.Cryptography;

namespace CdsHooks.Engine.Evaluation;

/// <summary>Card and suggestion uuids, from cryptographically secure random bytes drawn 4 KB at a time per thread.
/// <see cref="Guid.NewGuid"/> and <see cref="Guid.CreateVersion7()"/> ask the kernel's generator for every uuid, a system
/// call each: about 1% of the service's CPU at four uuids per hook call (docs/performance.md). The bytes are as
/// unguessable either way, and a card's uuid must stay so: feedback names a card by it.</summary>
public static class Uuids
{
    private const int PoolSize = 4096;

    [ThreadStatic]
    private static byte[]? _pool;

    [ThreadStatic]
    private static int _next;

    /// <summary>A random uuid (version 4, RFC 9562): 122 random bits.</summary>
    public static Guid Random()
    {
        Span<byte> bytes = stackalloc byte[16];
        Take(bytes);
        bytes[6] = (byte)(0x40 | (bytes[6] & 0x0F));
        bytes[8] = (byte)(0x80 | (bytes[8] & 0x3F));
        return new Guid(bytes, bigEndian: true);
    }

    /// <summary>A time-ordered uuid (version 7, RFC 9562): the Unix time in milliseconds, then 74 random bits. Uuids made
    /// one after the other sort in the order they were made, to the millisecond.</summary>
    public static Guid TimeOrdered(DateTimeOffset now)
    {
        Span<byte> bytes = stackalloc byte[16];
        BinaryPrimitives.WriteInt64BigEndian(bytes, now.ToUnixTimeMilliseconds() << 16); // 48 bits of time first
        Take(bytes[6..]);
        bytes[6] = (byte)(0x70 | (bytes[6] & 0x0F));
        bytes[8] = (byte)(0x80 | (bytes[8] & 0x3F));
        return new Guid(bytes, bigEndian: true);
    }

    private static void Take(Span<byte> destination)
    {
        if (_pool is null || _next + destination.Length > PoolSize)
        {
            _pool ??= new byte[PoolSize];
            RandomNumberGenerator.Fill(_pool);
            _next = 0;
        }

        _pool.AsSpan(_next, destination.Length).CopyTo(destination);
        _pool.AsSpan(_next, destination.Length).Clear(); // a uuid's bytes are not kept once handed out
        _next += destination.Length;
    }
}
