using System.Diagnostics;
using CdsHooks.Tests;

namespace CdsHooks.Engine.Tests.Benchmarks;

/// <summary>The benchmarks are not part of the test run, but they must not rot: every one of them builds (the project
/// reference below builds it with the tests) and runs one dry iteration.</summary>
public sealed class BenchmarkSmokeTests
{
    private static string Program
    {
        get
        {
#if DEBUG
            const string configuration = "Debug";
#else
            const string configuration = "Release";
#endif
            var program = Path.Combine(Repository.Root, "benchmarks", "CdsHooks.Benchmarks", "bin", configuration, "net10.0", "CdsHooks.Benchmarks.dll");
            Assert.True(File.Exists(program), $"{program} was not built");
            return program;
        }
    }

    private static Task<(int ExitCode, string Output, string Errors)> RunAsync(params string[] arguments) => RunProcessAsync("dotnet", arguments);

    private static async Task<(int ExitCode, string Output, string Errors)> RunProcessAsync(string executable, params string[] arguments)
    {
        var start = new ProcessStartInfo(executable) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Repository.Root };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var errors = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await process.WaitForExitAsync(TestContext.Current.CancellationToken);
        return (process.ExitCode, await output, await errors);
    }

    [Fact]
    public async Task EveryBenchmarkRunsOneIteration()
    {
        var program = Program;
        var artifacts = Directory.CreateTempSubdirectory("benchmarks-").FullName;
        try
        {
            var (exitCode, log, errors) = await RunAsync(program, "--smoke", artifacts);
            log += errors;
            Assert.True(exitCode == 0, log[Math.Max(0, log.Length - 4000)..]);
            // 3 sizes (typical, heavy, heavy-paged) x 5 stages of the engine, and the two knowledge bases.
            Assert.Contains("smoke: 17 benchmarks ran, 0 failed", log, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(artifacts, recursive: true);
        }
    }

    /// <summary>The load scripts need wrk, hey and minutes of a quiet machine, so they do not run here; but they must
    /// parse, and compare.sh must find what it sources and refuse a mode it does not know before it builds anything. Its
    /// usage is asked from benchmarks/ itself: the script moves to the repository's root first, where a path to itself
    /// relative to the caller's directory no longer leads to it.</summary>
    [Fact]
    public async Task TheLoadScriptsParseAndCompareRefusesAnUnknownMode()
    {
        foreach (var script in new[] { "load.sh", "compare.sh", "common.sh" })
        {
            var (exitCode, output, errors) = await RunProcessAsync("bash", "-n", Path.Combine("benchmarks", script));
            Assert.True(exitCode == 0, $"{script}: {output}{errors}");
        }

        var usage = await RunProcessAsync("bash", "-c", "cd benchmarks && bash compare.sh");
        Assert.Equal(2, usage.ExitCode);
        Assert.Contains("benchmarks/compare.sh REV_A REV_B", usage.Errors, StringComparison.Ordinal);
        Assert.Contains("mode together", usage.Errors, StringComparison.Ordinal);
        Assert.Contains("ENV_B: settings for build B only", usage.Errors, StringComparison.Ordinal);
        Assert.Contains("PATCH_B: a patch (git apply) for build B only", usage.Errors, StringComparison.Ordinal);
        Assert.Contains("# Needs: wrk and hey", usage.Errors, StringComparison.Ordinal);

        var wrongMode = await RunProcessAsync("bash", Path.Combine("benchmarks", "compare.sh"), "HEAD", ".", "1", "fastest");
        Assert.Equal(2, wrongMode.ExitCode);
        Assert.Contains("mode is saturation, site, bursts or together", wrongMode.Errors, StringComparison.Ordinal);
    }

    /// <summary>The experiments (benchmarks/experiments, each a part of the service taken out, for compare.sh's
    /// <c>PATCH_B</c>) must still apply to the code as committed (the index): a patch that no longer applies would stop
    /// the comparison. Each says what it takes out and that it is never a build to deploy. compare.sh refuses a patch it
    /// cannot use before it builds anything; the refusals are asked with a mode it does not know as well, so that a
    /// script that stopped refusing fails here on its message instead of starting a comparison.</summary>
    [Fact]
    public async Task TheExperimentPatchesApplyToThisTreeAndCompareRefusesOneItCannotUse()
    {
        if (!Path.Exists(Path.Combine(Repository.Root, ".git"))) // a directory in a clone, a file in a worktree
        {
            Assert.Skip("Not a git checkout: the experiment patches are checked with git apply --check in a clone.");
        }

        var patches = Directory.GetFiles(Path.Combine(Repository.Root, "benchmarks", "experiments"), "*.patch");
        Assert.NotEmpty(patches);
        foreach (var patch in patches)
        {
            var text = await File.ReadAllTextAsync(patch, TestContext.Current.CancellationToken);
            Assert.StartsWith("What ", text, StringComparison.Ordinal);
            var diff = text.IndexOf("diff --git", StringComparison.Ordinal);
            Assert.True(diff > 0, $"{Path.GetFileName(patch)}: no explanation before its diff");
            Assert.Contains("never a build to deploy", text[..diff], StringComparison.Ordinal);
            var (exitCode, output, errors) = await RunProcessAsync("git", "apply", "--check", "--cached", patch);
            Assert.True(exitCode == 0, $"{Path.GetFileName(patch)} no longer applies: {output}{errors}");
        }

        var compare = Path.Combine("benchmarks", "compare.sh");
        var missing = await RunProcessAsync("bash", "-c", $"PATCH_B=benchmarks/experiments/none.patch bash {compare} HEAD HEAD 1 unknown-mode");
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("PATCH_B: no such file", missing.Errors, StringComparison.Ordinal);
        var workingTree = await RunProcessAsync("bash", "-c", $"PATCH_B={Path.GetRelativePath(Repository.Root, patches[0])} bash {compare} HEAD . 1 unknown-mode");
        Assert.Equal(2, workingTree.ExitCode);
        Assert.Contains("PATCH_B needs REV_B to be a revision", workingTree.Errors, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheAllocationReportNamesEveryStageAndTheirSumIsTheTotal()
    {
        var (exitCode, log, errors) = await RunAsync(Program, "--allocations", "typical", "50");
        Assert.True(exitCode == 0, log + errors);

        var lines = log.Split('\n', StringSplitOptions.TrimEntries);
        var total = long.Parse(System.Text.RegularExpressions.Regex.Match(lines[0], @"calls: ([\d,]+) bytes per call").Groups[1].Value.Replace(",", "", StringComparison.Ordinal),
            System.Globalization.CultureInfo.InvariantCulture);
        string[] stages = ["FHIR resources and hook context", "patient context", "evaluation", "cards", "response JSON"];
        var sum = stages.Sum(stage =>
        {
            var line = Assert.Single(lines, l => l.StartsWith(stage + " ", StringComparison.Ordinal));
            return long.Parse(System.Text.RegularExpressions.Regex.Match(line[stage.Length..], @"([\d,]+) B").Groups[1].Value.Replace(",", "", StringComparison.Ordinal),
                System.Globalization.CultureInfo.InvariantCulture);
        });
        Assert.True(total > 10_000, log); // a hook call allocates tens of kilobytes; zero would mean nothing was measured
        Assert.InRange(sum, total - stages.Length, total); // each stage's figure is rounded down
        Assert.Contains("types allocated most", log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheAuditRowsReportWritesEveryRowForEachPatientCount()
    {
        var (exitCode, log, errors) = await RunAsync(Program, "--audit-rows", "1500", "1", "3");
        Assert.True(exitCode == 0, log + errors);

        foreach (var patients in new[] { 1, 3 })
        {
            var line = Assert.Single(log.Split('\n'), l => l.StartsWith($"patients {patients}: ", StringComparison.Ordinal));
            var match = System.Text.RegularExpressions.Regex.Match(line, @"1500 rows in batches of 500, ([\d.]+) µs of CPU per row .* (\d+) rows in the table");
            Assert.True(match.Success, line);
            // Microseconds: a row costs some (zero would mean nothing was timed), and not a millisecond.
            Assert.InRange(double.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), 0.1, 1000);
            Assert.Equal("1500", match.Groups[2].Value); // read back from the file: the store's own write path wrote them all
        }
    }
}
