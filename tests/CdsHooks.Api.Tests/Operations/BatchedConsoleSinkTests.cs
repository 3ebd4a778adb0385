using System.Text;
using CdsHooks.Api.Logging;
using Serilog;
using Serilog.Debugging;
using Serilog.Formatting.Display;

namespace CdsHooks.Api.Tests.Operations;

/// <summary>The console log's sink: events formatted by their caller, written in batches by one thread, in order, whole,
/// and never dropped while the output is only slow.</summary>
public sealed class BatchedConsoleSinkTests
{
    private static readonly MessageTemplateTextFormatter LineFormatter = new("{Message:l}{NewLine}");

    private static (Serilog.Core.Logger Logger, BatchedConsoleSink Sink) Create(Stream output, TimeSpan interval, int flushAt = 64 * 1024, int waitAt = 1024 * 1024)
    {
        var sink = new BatchedConsoleSink(LineFormatter, output, interval, flushAt, waitAt);
        return (new LoggerConfiguration().WriteTo.Sink(sink).CreateLogger(), sink);
    }

    [Fact]
    public void LinesFromManyThreadsComeOutWholeInTheirOrderAndInUtf8()
    {
        var output = new RecordingStream();
        var (logger, _) = Create(output, TimeSpan.FromMilliseconds(5), flushAt: 4096);
        const int Threads = 4, Lines = 2_000;

        Parallel.For(0, Threads, new ParallelOptions { MaxDegreeOfParallelism = Threads }, t =>
        {
            for (var i = 0; i < Lines; i++) logger.Information("line {Thread} {Number} 💊 é", t, i);
        });
        logger.Dispose();

        var lines = output.Text().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(Threads * Lines, lines.Length);
        var next = new int[Threads];
        foreach (var line in lines)
        {
            var parts = line.Split(' ');
            Assert.Equal(["line", parts[1], parts[2], "💊", "é"], parts);
            var thread = int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(next[thread]++, int.Parse(parts[2], System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    [Fact]
    public async Task ALineIsWrittenWithinTheIntervalWithoutWaitingForDisposal()
    {
        var output = new RecordingStream();
        var (logger, _) = Create(output, TimeSpan.FromMilliseconds(20));
        using (logger)
        {
            logger.Information("alone");
            await WaitUntil(() => output.Text() == "alone\n", TimeSpan.FromSeconds(2)); // a hundred intervals
        }
    }

    [Fact]
    public async Task ALongBatchIsWrittenBeforeTheInterval()
    {
        var output = new RecordingStream();
        var (logger, _) = Create(output, TimeSpan.FromMinutes(1), flushAt: 1024, waitAt: 4096);
        using (logger)
        {
            var line = new string('x', 200);
            for (var i = 0; i < 6; i++) logger.Information(line); // 1,206 bytes: past flushAt

            await WaitUntil(() => output.Text().Length == 6 * 201);
        }
    }

    [Fact]
    public void ALinesIntervalRunsFromWhenItWasLoggedNotFromTheLastWrite()
    {
        // Writes take a second. A line logged during the first write has had its 500 ms by the time that write ends,
        // so the next write starts at once; counted from the end of the write, it would wait 500 ms more.
        var output = new RecordingStream { WriteDelay = TimeSpan.FromSeconds(1) };
        var (logger, sink) = Create(output, TimeSpan.FromMilliseconds(500));
        logger.Information("first");
        Assert.True(SpinWait.SpinUntil(() => output.WritesStarted == 1, TimeSpan.FromSeconds(10)));
        Thread.Sleep(100);
        logger.Information("second");
        Assert.True(SpinWait.SpinUntil(() => output.WritesStarted == 2, TimeSpan.FromSeconds(10)));
        sink.Dispose();

        Assert.Equal("first\nsecond\n", output.Text());
        Assert.InRange(output.GapBeforeSecondWrite, TimeSpan.Zero, TimeSpan.FromMilliseconds(250));
    }

    [Fact]
    public async Task CallersStillWaitForRoomWhileTheSinkStops()
    {
        // Disposal gives up on an output that takes nothing after 5 s; callers must not then fill memory without bound.
        var output = new RecordingStream { Stalled = true };
        var (logger, sink) = Create(output, TimeSpan.FromMilliseconds(1), flushAt: 256, waitAt: 1024);
        logger.Information(new string('z', 300)); // taken by the writer, which stalls
        await Task.Delay(100, TestContext.Current.CancellationToken);
        var disposing = Task.Run(sink.Dispose, TestContext.Current.CancellationToken);

        var logging = Task.Run(() =>
        {
            for (var i = 0; i < 100; i++) logger.Information(new string('w', 99));
        }, TestContext.Current.CancellationToken);
        await Task.Delay(300, TestContext.Current.CancellationToken);
        Assert.False(logging.IsCompleted, "10 KB went into a stopping sink whose output takes nothing");

        output.Resume();
        await Task.WhenAll(disposing, logging).WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        Assert.Equal(101, output.Text().Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Fact]
    public void AnEventLoggedByTheWriterItselfIsDropped()
    {
        // Say the output logs into the same logger (a SelfLog routed back into it): each batch would make another,
        // forever, and with the buffer full the writer would wait for itself.
        Serilog.Core.Logger? logger = null;
        var output = new RecordingStream { OnWrite = () => logger!.Information("again") };
        (logger, var sink) = Create(output, TimeSpan.FromMilliseconds(1));
        logger.Information("first");
        Assert.True(SpinWait.SpinUntil(() => output.WritesStarted >= 1, TimeSpan.FromSeconds(10)));
        Thread.Sleep(100);
        sink.Dispose();

        Assert.Equal("first\n", output.Text());
        Assert.Equal(1, output.WritesStarted);
    }

    [Fact]
    public void AnIntervalPastAMinuteIsRefusedWhenConfigured()
    {
        // Monitor.Wait takes no more than 24 days: a longer interval would have ended the writer thread, and the process.
        Assert.Throws<ArgumentOutOfRangeException>(() => new BatchedConsoleSink(LineFormatter, new RecordingStream(), TimeSpan.FromDays(30)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new BatchedConsoleSink(LineFormatter, new RecordingStream(), TimeSpan.FromMinutes(-1)));
    }

    [Fact]
    public async Task CallersWaitForAStalledOutputAndNoLineIsLost()
    {
        var output = new RecordingStream { Stalled = true };
        var (logger, _) = Create(output, TimeSpan.FromMilliseconds(1), flushAt: 256, waitAt: 1024);
        var line = new string('y', 99);

        // The writer takes the first batch and stalls in its write; the next kilobyte waits; then callers must wait.
        var logging = Task.Run(() =>
        {
            for (var i = 0; i < 100; i++) logger.Information(line);
        }, TestContext.Current.CancellationToken);
        await Task.Delay(300, TestContext.Current.CancellationToken);
        Assert.False(logging.IsCompleted, "100 lines of 100 bytes went past a stalled output without waiting: were lines dropped?");

        output.Resume();
        await logging.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        logger.Dispose();
        Assert.Equal(100, output.Text().Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Fact]
    public void AnEventAfterDisposalIsWrittenAtOnce()
    {
        var output = new RecordingStream();
        var (logger, sink) = Create(output, TimeSpan.FromMinutes(1));
        logger.Information("before");
        sink.Dispose();
        Assert.Equal("before\n", output.Text());

        logger.Information("after");
        Assert.Equal("before\nafter\n", output.Text());
    }

    [Fact]
    public void AFailingOutputLosesItsBatchButNeitherTheCallerNorTheWriter()
    {
        var selfLog = new StringBuilder();
        SelfLog.Enable(m => { lock (selfLog) selfLog.AppendLine(m); });
        try
        {
            var output = new RecordingStream { Failing = true };
            var (logger, sink) = Create(output, TimeSpan.FromMilliseconds(1));
            logger.Information("lost");
            // SelfLog is the whole process's: wait for this sink's own line, not for any line.
            Assert.True(SpinWait.SpinUntil(() => { lock (selfLog) return selfLog.ToString().Contains("Console log lost", StringComparison.Ordinal); },
                TimeSpan.FromSeconds(10)), "the failed batch was not reported");
            output.Failing = false;
            logger.Information("kept");
            sink.Dispose();

            Assert.Equal("kept\n", output.Text());
            lock (selfLog) Assert.Contains("Console log lost 5 bytes: IOException", selfLog.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            SelfLog.Disable();
        }
    }

    private static async Task WaitUntil(Func<bool> condition, TimeSpan? within = null)
    {
        var deadline = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(10));
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"the line was not written within {within ?? TimeSpan.FromSeconds(10)}");
            await Task.Delay(10, TestContext.Current.CancellationToken);
        }
    }

    /// <summary>An output that records what is written to it, and can stall or fail its writes.</summary>
    private sealed class RecordingStream : Stream
    {
        private readonly MemoryStream _written = new();
        private readonly ManualResetEventSlim _running = new(true);

        public bool Stalled
        {
            init { if (value) _running.Reset(); }
        }

        public volatile bool Failing;

        public TimeSpan WriteDelay { get; init; }

        public Action? OnWrite { get; init; }

        private long _firstWriteEnded;
        private long _secondWriteStarted;
        private int _writesStarted;

        public int WritesStarted => Volatile.Read(ref _writesStarted);

        /// <summary>From the end of the first write to the start of the second.</summary>
        public TimeSpan GapBeforeSecondWrite => System.Diagnostics.Stopwatch.GetElapsedTime(_firstWriteEnded, _secondWriteStarted);

        public void Resume() => _running.Set();

        public string Text()
        {
            lock (_written) return Encoding.UTF8.GetString(_written.ToArray());
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            _running.Wait();
            var started = Interlocked.Increment(ref _writesStarted);
            if (started == 2) _secondWriteStarted = System.Diagnostics.Stopwatch.GetTimestamp();
            if (WriteDelay > TimeSpan.Zero) Thread.Sleep(WriteDelay);
            if (Failing) throw new IOException("output closed");
            lock (_written) _written.Write(buffer);
            if (started == 1) _firstWriteEnded = System.Diagnostics.Stopwatch.GetTimestamp();
            OnWrite?.Invoke();
        }

        public override void Flush()
        {
        }

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) _running.Dispose();
            base.Dispose(disposing);
        }
    }
}
