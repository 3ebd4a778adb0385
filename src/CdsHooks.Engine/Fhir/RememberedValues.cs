using System.Collections.Concurrent;

namespace CdsHooks.Engine.Fhir;

/// <summary>Answers remembered by their text (a resource type's class, whether a literal is valid), shared by every
/// thread, up to a bound that values sent at random cannot grow past, and only for texts no longer than
/// <paramref name="maxLength"/>, so that long ones are not pinned for the life of the process.</summary>
internal sealed class RememberedValues<TValue>(int bound, int maxLength)
{
    private readonly ConcurrentDictionary<string, TValue> _values = new(StringComparer.Ordinal);

    // Counted here, not with ConcurrentDictionary.Count, which takes every lock of the map: once the map is full, every
    // new text asks (a new patient's id on every call), and threads queued on those locks.
    private int _count;

    public bool TryGetValue(string text, out TValue value) => _values.TryGetValue(text, out value!);

    /// <summary>Looks a text up by its characters, without making a string of them.</summary>
    public ConcurrentDictionary<string, TValue>.AlternateLookup<ReadOnlySpan<char>> BySpan() => _values.GetAlternateLookup<ReadOnlySpan<char>>();

    public void Remember(string text, TValue value)
    {
        if (text.Length <= maxLength && Volatile.Read(ref _count) < bound && _values.TryAdd(text, value))
        {
            Interlocked.Increment(ref _count); // threads adding at once may pass the bound by a few
        }
    }
}
