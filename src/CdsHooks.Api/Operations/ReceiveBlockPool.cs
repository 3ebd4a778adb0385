using System.Buffers;
using Microsoft.AspNetCore.Connections;

namespace CdsHooks.Api.Operations;

/// <summary>
/// Kestrel's memory pool with blocks large enough for a whole hook call. Kestrel's own pool hands out 4 KB blocks,
/// and its socket transport reads into one block at a time: a typical hook call (about 9 KB with its prefetch) took
/// three reads, each after a zero-byte read that waits for data, and each handed on to the request's reader. With
/// 16 KB blocks it takes one read and one wait (docs/performance.md, seventeenth round). Kestrel takes the pool's
/// factory from the services (<see cref="IMemoryPoolFactory{T}"/>, .NET 10) for its sockets and its connections'
/// pipes.
/// </summary>
internal sealed class ReceiveBlockPoolFactory : IMemoryPoolFactory<byte>
{
    /// <summary>A block's size: the typical request whole, with its headers; a larger one is read a block at a
    /// time.</summary>
    public const int BlockSize = 16 * 1024;

    /// <summary>Blocks kept for reuse, at most (4 MB), by all the pools this factory makes together: Kestrel makes one
    /// for each I/O queue of each listener (up to 16 queues on a large machine). More in use at once are made and left
    /// to the GC, so a burst of connections does not hold its memory for the life of the process.</summary>
    public const int Kept = 256;

    // Shared by the pools, thread-safe, and the service's own: see ReceiveBlockPool.
    private readonly ArrayPool<byte> _arrays = ArrayPool<byte>.Create(BlockSize, Kept);

    public MemoryPool<byte> Create(MemoryPoolOptions? options = null) => new ReceiveBlockPool(_arrays, BlockSize);
}

/// <summary>Blocks of one size from an array pool of the service's own (<see cref="ArrayPool{T}.Create(int, int)"/>),
/// not the process's shared one: the blocks hold requests (patient data, the EHR's access token), which Kestrel does
/// not clear, and no other code may be lent them. The arrays are not pinned: on Linux the socket transport reads and
/// writes a buffer only for the length of the system call (on Windows it pins one while an operation is
/// pending).</summary>
internal sealed class ReceiveBlockPool(ArrayPool<byte> arrays, int blockSize) : MemoryPool<byte>
{
    public override int MaxBufferSize => blockSize;

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minBufferSize, blockSize);
        return new Block(arrays, arrays.Rent(blockSize));
    }

    protected override void Dispose(bool disposing)
    {
        // Blocks still out go back to the array pool when their holders return them.
    }

    private sealed class Block(ArrayPool<byte> arrays, byte[] array) : IMemoryOwner<byte>
    {
        private byte[]? _array = array;

        public Memory<byte> Memory => _array ?? throw new ObjectDisposedException(nameof(Block));

        // Once: a second Dispose must not return an array that another block now holds.
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _array, null) is { } returned) arrays.Return(returned);
        }
    }
}
