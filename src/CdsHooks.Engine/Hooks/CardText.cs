using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace CdsHooks.Engine.Hooks;

/// <summary>
/// A card's markdown detail, kept as the parts it was built from: the knowledge's fixed texts (a rule's risk and
/// management, a factor's text, the headings) and the few texts of this call (the drugs as the EHR named them, doses,
/// the age). On the wire it is one JSON string; each fixed part is escaped once for the life of the process and
/// copied as it is, so only this call's texts go through the escaper. A detail is a few thousand characters, most of
/// them fixed: made into a string and escaped character by character on every call, it was 6% of the service's CPU
/// at saturation (docs/performance.md, thirteenth round). <see cref="ToString"/> gives the text itself.
/// </summary>
[JsonConverter(typeof(CardTextConverter))]
public sealed class CardText
{
    private readonly Part[] _parts;
    private string? _text;

    private CardText(Part[] parts) => _parts = parts;

    /// <summary>A detail that is one text.</summary>
    public static CardText Of(string text) => new([new Part(text, Fixed: false)]);

    /// <summary>A detail of about <paramref name="parts"/> parts (more make the list grow). It is built in a list the
    /// thread lends (LentLists), and keeps an array of its parts at their number: built in a list of its own sized for
    /// the most a detail could have, a card kept about twice the parts it had (docs/performance.md, fifteenth round).</summary>
    internal static Builder Build(int parts) => new(LentLists<Part>.Take(Math.Max(parts, 64)));

    /// <summary>The markdown text, as the clinician reads it.</summary>
    public override string ToString()
    {
        if (_text is not null) return _text;
        var length = 0;
        foreach (var part in _parts) length += part.Text.Length;
        return _text = string.Create(length, _parts, static (chars, parts) =>
        {
            foreach (var part in parts)
            {
                part.Text.CopyTo(chars);
                chars = chars[part.Text.Length..];
            }
        });
    }

    internal readonly record struct Part(string Text, bool Fixed);

    /// <summary>Adds parts; <see cref="Fixed"/> for a text that comes again in other cards (the knowledge's, or a
    /// literal), whose escaped form is kept; <see cref="Append"/> for this call's own. Each part is escaped on its own,
    /// so a part is a whole text: it never ends between the two halves of a surrogate pair. Not for use after
    /// <see cref="ToText"/>.</summary>
    /// <remarks>Never pass this call's text to <see cref="Fixed"/>: its escaped form would be kept for the life of the
    /// process (up to the cache's bound), and a full cache escapes each fixed part anew on every call.</remarks>
    internal readonly struct Builder(List<Part> parts)
    {
        public Builder Fixed(string text)
        {
            if (text.Length > 0) parts.Add(new Part(text, Fixed: true));
            return this;
        }

        public Builder Append(string text)
        {
            if (text.Length > 0) parts.Add(new Part(text, Fixed: false));
            return this;
        }

        public CardText ToText()
        {
            var text = new CardText([.. parts]);
            LentLists<Part>.GiveBack(parts, maxKeptCapacity: 1024); // emptied: the texts are not kept with the thread
            return text;
        }
    }

    private sealed class CardTextConverter : JsonConverter<CardText>
    {
        public override CardText Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            Of(reader.GetString() ?? throw new JsonException("A card's detail is a string."));

        public override void Write(Utf8JsonWriter writer, CardText value, JsonSerializerOptions options) => value.WriteTo(writer);
    }

    /// <summary>Writes the detail as one JSON string value: what <see cref="Utf8JsonWriter.WriteStringValue(string)"/>
    /// writes for <see cref="ToString"/>, byte for byte, with the writer's encoder.</summary>
    public void WriteTo(Utf8JsonWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        var encoder = writer.Options.Encoder ?? JavaScriptEncoder.Default;
        // Escaped, a UTF-16 unit takes at most 6 bytes ("\uXXXX"), and as UTF-8 at most 3.
        int bound = 2, longest = 0;
        foreach (var part in _parts)
        {
            bound += part.Text.Length * 6;
            if (!part.Fixed) longest = Math.Max(longest, part.Text.Length);
        }

        var pool = ArrayPool<byte>.Shared;
        var buffer = pool.Rent(bound);
        var utf8 = pool.Rent(longest * 3);
        try
        {
            var json = buffer.AsSpan();
            json[0] = (byte)'"';
            var written = 1;
            foreach (var part in _parts)
            {
                if (part.Fixed)
                {
                    var escaped = Escaped.For(part.Text, encoder);
                    escaped.CopyTo(json[written..]);
                    written += escaped.Length;
                }
                else
                {
                    written += Escape(part.Text, encoder, utf8, json[written..]);
                }
            }

            json[written++] = (byte)'"';
            writer.WriteRawValue(json[..written], skipInputValidation: true);
        }
        finally
        {
            pool.Return(utf8);
            pool.Return(buffer);
        }
    }

    // A text as the inside of a JSON string: UTF-8, escaped by the encoder. utf8 holds at least 3 bytes per character
    // of the text, destination 6. A text that is not valid UTF-16 (a lone surrogate) goes through a writer of its own,
    // which escapes the replacement character it writes for it as the document's writer does.
    private static int Escape(string text, JavaScriptEncoder encoder, byte[] utf8, Span<byte> destination)
    {
        if (System.Text.Unicode.Utf8.FromUtf16(text, utf8, out _, out var length, replaceInvalidSequences: false) != OperationStatus.Done)
        {
            var alone = new ArrayBufferWriter<byte>(text.Length * 6 + 2);
            using (var writer = new Utf8JsonWriter(alone, new JsonWriterOptions { Encoder = encoder }))
            {
                writer.WriteStringValue(text);
            }

            var quoted = alone.WrittenSpan;
            quoted[1..^1].CopyTo(destination);
            return quoted.Length - 2;
        }

        var status = encoder.EncodeUtf8(utf8.AsSpan(0, length), destination, out _, out var written);
        if (status != OperationStatus.Done) throw new InvalidOperationException($"Escaping a card's text ended with {status}.");
        return written;
    }

    /// <summary>The escaped form of each fixed text, found by the string itself (the knowledge's strings and the
    /// literals are the same objects on every call: compared by reference, not hashed character by character), up to a
    /// bound that the knowledge does not reach. For one encoder, the first one asked for (the service has one); another
    /// gets its escaping made each time.</summary>
    private static class Escaped
    {
        private const int Bound = 8192;

        private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Entry> Known = new(ReferenceEqualityComparer.Instance);
        private static int _count; // ConcurrentDictionary.Count takes every lock of the map

        public static byte[] For(string text, JavaScriptEncoder encoder)
        {
            if (Known.TryGetValue(text, out var entry) && ReferenceEquals(entry.Encoder, encoder)) return entry.Json;
            var escaped = new byte[text.Length * 6];
            var json = escaped.AsSpan(0, Escape(text, encoder, new byte[text.Length * 3], escaped)).ToArray();
            if (entry is null && Volatile.Read(ref _count) < Bound && Known.TryAdd(text, new Entry(encoder, json))) Interlocked.Increment(ref _count);
            return json;
        }

        private sealed record Entry(JavaScriptEncoder Encoder, byte[] Json);
    }
}
