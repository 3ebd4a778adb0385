using System.Diagnostics;
using CdsHooks.Tests;

namespace CdsHooks.Engine.Tests.Benchmarks;

/// <summary>The benchmarks are not part of the test run, but they must not rot: every one of them builds (the project
/// reference below builds it with the tests) and runs one dry iteration.</summary>
public sealed class BenchmarkSmokeTests
{
    [Fact]
    public async Task EveryBenchmarkRunsOneIteration()
    {
#if DEBUG
        const string configuration = "Debug";
#else
        const string configuration = "Release";
#endif
        var program = Path.Combine(Repository.Root, "benchmarks", "CdsHooks.Benchmarks", "bin", configuration, "net10.0", "CdsHooks.Benchmarks.dll");
        Assert.True(File.Exists(program), $"{program} was not built");
        var artifacts = Directory.CreateTempSubdirectory("benchmarks-").FullName;
        try
        {
            var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var argument in new[] { program, "--smoke", artifacts }) start.ArgumentList.Add(argument);
            using var process = Process.Start(start)!;
            var output = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
            var errors = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
            await process.WaitForExitAsync(TestContext.Current.CancellationToken);
            var log = await output + await errors;
            Assert.True(process.ExitCode == 0, log[Math.Max(0, log.Length - 4000)..]);
            // 2 sizes x 5 stages of the engine, and the two knowledge bases.
            Assert.Contains("smoke: 12 benchmarks ran, 0 failed", log, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(artifacts, recursive: true);
        }
    }
}
