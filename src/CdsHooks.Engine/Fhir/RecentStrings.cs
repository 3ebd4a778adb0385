namespace CdsHooks.Engine.Fhir;

/// <summary>The last few strings one pass of the reader made, by where their UTF-8 is in the body, so that the same
/// text read again soon after is the same string rather than a new one: EHRs send a medication's text and its coding's
/// display as the same words, and the same subject reference in every resource. One for each pass, made with it and
/// gone with it: the positions are that pass's body's, and no thread keeps a request's text after it, even when the
/// pass ends in an exception.</summary>
internal sealed class RecentStrings
{
    private const int Size = 8;

    private readonly (int Start, int Length, string? Text)[] _recent = new (int, int, string?)[Size];
    private int _next;

    /// <summary>The string made from the same UTF-8 among the last few, or null. <paramref name="raw"/> lies in
    /// <paramref name="json"/>, the body these strings were read from, unescaped.</summary>
    public string? Find(ReadOnlySpan<byte> raw, ReadOnlySpan<byte> json)
    {
        foreach (var (start, length, text) in _recent)
        {
            if (length == raw.Length && text is not null && json.Slice(start, length).SequenceEqual(raw)) return text;
        }

        return null;
    }

    /// <summary>Remembers the string made from the <paramref name="length"/> bytes at <paramref name="start"/> in the body.</summary>
    public void Add(int start, int length, string text)
    {
        _recent[_next] = (start, length, text);
        _next = (_next + 1) % Size;
    }
}
