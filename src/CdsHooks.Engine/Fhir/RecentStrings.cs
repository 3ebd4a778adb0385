using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace CdsHooks.Engine.Fhir;

/// <summary>The last few strings one pass of the reader made, by where their UTF-8 is in the body, so that the same
/// text read again soon after is the same string rather than a new one: EHRs send a medication's text and its coding's
/// display as the same words, and the same subject reference in every resource. Only for one pass (the positions are
/// the pass's body), and let go when it ends: a thread keeps no text of a request after it.</summary>
internal sealed class RecentStrings
{
    private const int Size = 8;

    [ThreadStatic]
    private static RecentStrings? _cached;

    private readonly (int Start, int Length, string? Text)[] _recent = new (int, int, string?)[Size];
    private int _next;
    private bool _taken;

    /// <summary>This thread's instance, or a new one when that is in use (a pass inside another, or one that threw).</summary>
    public static RecentStrings ForThread()
    {
        if (_cached is not { _taken: false } recent) _cached = recent = new RecentStrings();
        recent._taken = true;
        return recent;
    }

    /// <summary>The string made from the same UTF-8 among the last few, or null. <paramref name="raw"/> lies in
    /// <paramref name="json"/>, unescaped.</summary>
    public string? Find(ReadOnlySpan<byte> raw, ReadOnlySpan<byte> json)
    {
        foreach (var (start, length, text) in _recent)
        {
            if (length == raw.Length && text is not null && json.Slice(start, length).SequenceEqual(raw)) return text;
        }

        return null;
    }

    /// <summary>Remembers the string made from <paramref name="raw"/>, which lies in <paramref name="json"/>.</summary>
    public void Add(ReadOnlySpan<byte> raw, ReadOnlySpan<byte> json, string text)
    {
        var start = (int)Unsafe.ByteOffset(ref MemoryMarshal.GetReference(json), ref MemoryMarshal.GetReference(raw));
        _recent[_next] = (start, raw.Length, text);
        _next = (_next + 1) % Size;
    }

    /// <summary>The pass has ended: its strings are let go.</summary>
    public void GiveBack()
    {
        Array.Clear(_recent);
        _next = 0;
        _taken = false;
    }
}
