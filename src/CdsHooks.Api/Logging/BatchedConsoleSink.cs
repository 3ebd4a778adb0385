using System.Buffers;
using System.Globalization;
using System.Text;
using Serilog;
using Serilog.Configuration;
using Serilog.Core;
using Serilog.Debugging;
using Serilog.Events;
using Serilog.Formatting;
using Serilog.Formatting.Compact;
using Serilog.Formatting.Display;

namespace CdsHooks.Api.Logging;

/// <summary>
/// Writes log events to standard output as text, formatted on the thread that logs them and written by one thread in
/// batches. This replaced Serilog's console sink behind <c>Serilog.Sinks.Async</c>, which queued the events themselves:
/// under load a few hundred events, with their property dictionaries, were alive at every collection and promoted,
/// and the console sink wrote each line with its own system call (docs/performance.md, eighth round). Here an event
/// is garbage as soon as it is formatted, the queue is bytes, and a batch is one write.
/// </summary>
/// <remarks>
/// Lines keep the order in which their events were logged. A batch is written when it is <see cref="FlushAt"/> long or
/// <see cref="Interval"/> after its first line, whichever comes first; disposal writes what is left, and events after
/// that are written at once. Past <see cref="WaitAt"/> bytes waiting, callers wait for the writer rather than lines being
/// dropped (as <c>blockWhenFull</c> did), also while the sink stops. If standard output fails (closed), the batch is
/// lost and Serilog's <see cref="SelfLog"/> says so; logging never throws into the caller.
/// </remarks>
public sealed class BatchedConsoleSink : ILogEventSink, IDisposable
{
    private readonly ITextFormatter _formatter;
    private readonly Stream _output;
    private readonly object _gate = new();
    private readonly Thread _writer;
    private ArrayBufferWriter<byte> _pending;
    private ArrayBufferWriter<byte> _writing;
    private long _firstAt; // when the first line of the pending batch came (Environment.TickCount64)
    private bool _stopping;
    private bool _closed;

    [ThreadStatic]
    private static StringWriter? t_text;

    public BatchedConsoleSink(ITextFormatter formatter, Stream output, TimeSpan interval, int flushAt = 64 * 1024, int waitAt = 1024 * 1024)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(waitAt, flushAt);
        // A minute at most: a line must not wait longer to be seen, and Monitor.Wait takes no more than 24 days.
        ArgumentOutOfRangeException.ThrowIfLessThan(interval, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(interval, TimeSpan.FromMinutes(1));
        _formatter = formatter;
        _output = output;
        Interval = interval;
        FlushAt = flushAt;
        WaitAt = waitAt;
        _pending = new ArrayBufferWriter<byte>(flushAt);
        _writing = new ArrayBufferWriter<byte>(flushAt);
        _writer = new Thread(WriteLoop) { IsBackground = true, Name = "Log writer" };
        _writer.Start();
    }

    /// <summary>How long the first line of a batch may wait for others.</summary>
    public TimeSpan Interval { get; }

    /// <summary>A batch this long is written without waiting out the interval.</summary>
    public int FlushAt { get; }

    /// <summary>Past this many bytes waiting, callers wait for the writer.</summary>
    public int WaitAt { get; }

    public void Emit(LogEvent logEvent)
    {
        var text = t_text ??= new StringWriter(CultureInfo.InvariantCulture);
        var builder = text.GetStringBuilder();
        builder.Clear();
        _formatter.Format(logEvent, text);

        // The whole event at once (a StringBuilder's chunks may split a surrogate pair between them).
        var chars = ArrayPool<char>.Shared.Rent(builder.Length);
        try
        {
            builder.CopyTo(0, chars, builder.Length);
            Append(chars.AsSpan(0, builder.Length));
        }
        finally
        {
            ArrayPool<char>.Shared.Return(chars);
        }

        if (builder.Capacity > 16 * 1024) t_text = null; // one long event does not stay with the thread
    }

    private void Append(ReadOnlySpan<char> text)
    {
        // An event logged by the writer itself (a SelfLog routed back into this logger) could only wait for itself.
        if (Thread.CurrentThread == _writer) return;

        lock (_gate)
        {
            // Callers wait for room while the sink stops too: an output that takes nothing must not grow the buffer.
            while (_pending.WrittenCount >= WaitAt && !_closed) Monitor.Wait(_gate);
            if (_closed)
            {
                var bytes = new byte[Encoding.UTF8.GetByteCount(text)];
                Write(bytes.AsSpan(0, Encoding.UTF8.GetBytes(text, bytes)));
                return;
            }

            var wasEmpty = _pending.WrittenCount == 0;
            if (wasEmpty) _firstAt = Environment.TickCount64;

            // A long event takes what it needs, not three bytes a character: the buffers are kept.
            var most = text.Length <= 4096 ? Encoding.UTF8.GetMaxByteCount(text.Length) : Encoding.UTF8.GetByteCount(text);
            _pending.Advance(Encoding.UTF8.GetBytes(text, _pending.GetSpan(most)));
            if (wasEmpty || _pending.WrittenCount >= FlushAt) Monitor.PulseAll(_gate);
        }
    }

    private void WriteLoop()
    {
        while (true)
        {
            lock (_gate)
            {
                while (_pending.WrittenCount == 0 && !_stopping) Monitor.Wait(_gate);
                var deadline = _firstAt + (long)Interval.TotalMilliseconds; // from the first line, not from the last write
                long left;
                while (!_stopping && _pending.WrittenCount < FlushAt && (left = deadline - Environment.TickCount64) > 0)
                {
                    Monitor.Wait(_gate, TimeSpan.FromMilliseconds(left));
                }

                if (_pending.WrittenCount == 0)
                {
                    _closed = true; // stopping, and everything is written: later events are written by their caller
                    Monitor.PulseAll(_gate);
                    return;
                }

                (_pending, _writing) = (_writing, _pending);
                Monitor.PulseAll(_gate); // room for callers waiting on a full buffer
            }

            Write(_writing.WrittenSpan);
            _writing.ResetWrittenCount();
            if (_writing.Capacity > 4 * FlushAt) _writing = new ArrayBufferWriter<byte>(FlushAt); // after one huge event
        }
    }

    private void Write(ReadOnlySpan<byte> bytes)
    {
        try
        {
            _output.Write(bytes);
            _output.Flush();
        }
#pragma warning disable CA1031 // a log line must never fail the call that logged it, nor end the writer
        catch (Exception e)
#pragma warning restore CA1031
        {
            SelfLog.WriteLine("Console log lost {0} bytes: {1}", bytes.Length, e.GetType().Name);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _stopping = true;
            Monitor.PulseAll(_gate);
        }

        // Bounded: an output that never takes the last batch (a pipe nobody reads) must not hold the shutdown.
        _writer.Join(TimeSpan.FromSeconds(5));
    }
}

/// <summary>Configures the sink by name from the <c>Serilog</c> configuration section (<c>"Name": "BatchedConsole"</c>).</summary>
public static class BatchedConsoleSinkConfiguration
{
    /// <summary>Text to standard output in batches. An <paramref name="outputTemplate"/>, when given, wins over the
    /// <paramref name="formatter"/>: appsettings.Development.json sets the one over appsettings.json's other, and
    /// configuration merges the two into the same arguments. An empty template is none, so that a Development run can
    /// log as a site does (<c>Serilog__WriteTo__0__Args__outputTemplate=</c>; the load script does). Neither: compact
    /// JSON, one event per line.</summary>
    public static LoggerConfiguration BatchedConsole(this LoggerSinkConfiguration sinks, string? outputTemplate = null,
        ITextFormatter? formatter = null, TimeSpan? interval = null)
    {
        ArgumentNullException.ThrowIfNull(sinks);
        formatter = !string.IsNullOrEmpty(outputTemplate)
            ? new MessageTemplateTextFormatter(outputTemplate)
            : formatter ?? new CompactJsonFormatter();
        return sinks.Sink(new BatchedConsoleSink(formatter, Console.OpenStandardOutput(), interval ?? TimeSpan.FromMilliseconds(50)));
    }
}
