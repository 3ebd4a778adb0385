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
            await WaitUntil(() => output.Text() == "alone\n");
        }
    }

    [Fact]
    public async Task ALongBatchIsWrittenBeforeTheInterval()
    {
        var output = new RecordingStream();
        var (logger, _) = Create(output, TimeSpan.FromHours(1), flushAt: 1024, waitAt: 4096);
        using (logger)
        {
            var line = new string('x', 200);
            for (var i = 0; i < 6; i++) logger.Information(line); // 1,206 bytes: past flushAt

            await WaitUntil(() => output.Text().Length == 6 * 201);
        }
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
        var (logger, sink) = Create(output, TimeSpan.FromHours(1));
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
            SpinWait.SpinUntil(() => { lock (selfLog) return selfLog.Length > 0; }, TimeSpan.FromSeconds(10)); // the batch failed
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

    private static async Task WaitUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the line was not written in 10 s");
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

        public void Resume() => _running.Set();

        public string Text()
        {
            lock (_written) return Encoding.UTF8.GetString(_written.ToArray());
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            _running.Wait();
            if (Failing) throw new IOException("output closed");
            lock (_written) _written.Write(buffer);
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
