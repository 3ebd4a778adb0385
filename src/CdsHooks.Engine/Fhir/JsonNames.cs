using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace CdsHooks.Engine.Fhir;

/// <summary>The property names of the objects open in one pass of a <see cref="Utf8JsonReader"/>, to refuse a
/// duplicate property anywhere in a body, as a <see cref="JsonDocument"/> parsed with
/// <c>AllowDuplicateProperties = false</c> does: a client could otherwise send two values for one element and have
/// another reader see the other one. Names are compared as the names they spell (escapes undone), case-sensitively.
/// An object's names are compared one by one while it has few of them (almost every FHIR object), and through a set
/// once it has many, so that an object of many thousands of names costs linear time, not quadratic.</summary>
internal sealed class JsonNames
{
    private const int LinearLimit = 24;

    [ThreadStatic]
    private static JsonNames? _cached;

    private (int Start, int Length, bool Unescaped)[] _names = new (int, int, bool)[64];
    private int _count;
    private (int First, HashSet<string>? Set)[] _objects = new (int, HashSet<string>?)[16];
    private int _depth;
    private byte[] _unescaped = new byte[256];
    private int _unescapedLength;

    /// <summary>This thread's instance (a pass runs start to end on one thread, without awaiting), or a new one when
    /// that is in use: by a pass that has not ended (one inside another), or left by one that threw.</summary>
    public static JsonNames ForThread()
    {
        // Nor is one kept that grew for a body of very many names: its arrays would stay with the thread.
        if (_cached is not { _depth: 0, _names.Length: <= 4096, _unescaped.Length: <= 65536 } names) _cached = names = new JsonNames();
        names._count = 0;
        names._unescapedLength = 0;
        return names;
    }

    /// <summary>An object starts.</summary>
    public void Open()
    {
        if (_depth == _objects.Length) Array.Resize(ref _objects, _depth * 2);
        _objects[_depth++] = (_count, null);
    }

    /// <summary>How many objects are open.</summary>
    public int Depth => _depth;

    /// <summary>The innermost open object ends.</summary>
    public void Close()
    {
        var (first, _) = _objects[--_depth];
        _objects[_depth] = default; // its set of names, if it had one, is not kept
        _count = first;
        if (_depth == 0) _unescapedLength = 0;
    }

    /// <summary>Records the property name the reader is on, in the innermost open object, and returns it as the name it
    /// spells (valid until the next call). Throws the <see cref="JsonException"/> a document would for a duplicate.</summary>
    public ReadOnlySpan<byte> Add(scoped ref Utf8JsonReader reader, ReadOnlySpan<byte> json)
    {
        ReadOnlySpan<byte> name;
        (int Start, int Length, bool Unescaped) entry;
        if (!reader.ValueIsEscaped)
        {
            var start = (int)Unsafe.ByteOffset(ref MemoryMarshal.GetReference(json), ref MemoryMarshal.GetReference(reader.ValueSpan));
            entry = (start, reader.ValueSpan.Length, false);
            name = json.Slice(start, reader.ValueSpan.Length);
        }
        else
        {
            // Unescaped, a name is never longer than it is escaped.
            if (_unescaped.Length - _unescapedLength < reader.ValueSpan.Length) Array.Resize(ref _unescaped, Math.Max(_unescaped.Length * 2, _unescapedLength + reader.ValueSpan.Length));
            int length;
            try
            {
                length = reader.CopyString(_unescaped.AsSpan(_unescapedLength));
            }
            catch (InvalidOperationException)
            {
                // A lone surrogate escaped ("\ud800"): the name spells no Unicode text, so the JSON is malformed.
                throw new JsonException("A property name is not valid Unicode text.");
            }
            entry = (_unescapedLength, length, true);
            name = _unescaped.AsSpan(_unescapedLength, length);
            _unescapedLength += length;
        }

        ref var current = ref _objects[_depth - 1];
        var count = _count - current.First;
        if (current.Set is not null)
        {
            if (!current.Set.Add(System.Text.Encoding.Latin1.GetString(name))) throw Duplicate(json, reader.TokenStartIndex);
        }
        else
        {
            for (var i = current.First; i < _count; i++)
            {
                if (Name(_names[i], json).SequenceEqual(name)) throw Duplicate(json, reader.TokenStartIndex);
            }

            if (count >= LinearLimit)
            {
                // Latin-1 maps each byte to one char: two names are equal as strings exactly when their bytes are.
                current.Set = new HashSet<string>(StringComparer.Ordinal) { System.Text.Encoding.Latin1.GetString(name) };
                for (var i = current.First; i < _count; i++) current.Set.Add(System.Text.Encoding.Latin1.GetString(Name(_names[i], json)));
            }
        }

        if (_count == _names.Length) Array.Resize(ref _names, _count * 2);
        _names[_count++] = entry;
        return name;
    }

    private ReadOnlySpan<byte> Name((int Start, int Length, bool Unescaped) entry, ReadOnlySpan<byte> json) =>
        entry.Unescaped ? _unescaped.AsSpan(entry.Start, entry.Length) : json.Slice(entry.Start, entry.Length);

    // Where the second name is, as the reader's own exceptions say it (zero-based line, byte in the line), so that the
    // client is told the line and byte as for any other malformed JSON.
    private static JsonException Duplicate(ReadOnlySpan<byte> json, long at)
    {
        var before = json[..(int)at];
        var lineStart = before.LastIndexOf((byte)'\n') + 1;
        return new JsonException("The same property appears twice in one JSON object.", null, before.Count((byte)'\n'), before.Length - lineStart);
    }
}
