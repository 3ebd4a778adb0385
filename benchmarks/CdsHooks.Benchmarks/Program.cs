using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using CdsHooks.Benchmarks;

// dotnet run -c Release --project benchmarks/CdsHooks.Benchmarks -- --filter '*'   (docs/performance.md)
// --write-requests DIR [FHIRBASE] writes the typical and heavy request bodies for benchmarks/load.sh, and the heavy request
// paged (heavy-paged.json) with the pages its FHIR server at FHIRBASE serves (heavy-pages.json: URL to page).
// --smoke DIR runs every benchmark once, in process, in any build configuration: the test that keeps them working.
if (args is ["--write-requests", var directory, .. var requestArgs])
{
    Directory.CreateDirectory(directory);
    File.WriteAllText(Path.Combine(directory, "typical.json"), Requests.Typical);
    File.WriteAllText(Path.Combine(directory, "heavy.json"), Requests.Heavy);
    if (requestArgs is [var fhirBase])
    {
        var (request, pages) = Requests.Paged(fhirBase);
        File.WriteAllText(Path.Combine(directory, "heavy-paged.json"), request);
        File.WriteAllText(Path.Combine(directory, "heavy-pages.json"), System.Text.Json.JsonSerializer.Serialize(pages));
    }

    return 0;
}

// --write-tokens DIR COUNT AUDIENCE writes a JWKS (jwks.json) and COUNT CDS Hooks JWTs for that audience, each with its
// own jti, one per line (tokens.txt): the authenticated load in benchmarks/load.sh, where a replayed jti is refused.
if (args is ["--write-tokens", var tokenDirectory, var count, var audience])
{
    Directory.CreateDirectory(tokenDirectory);
    Tokens.Write(tokenDirectory, int.Parse(count, System.Globalization.CultureInfo.InvariantCulture), audience);
    return 0;
}

// --allocations typical|heavy [CALLS] reports the bytes each engine stage allocates per call and the types allocated most.
if (args is ["--allocations", var size, .. var rest])
{
    AllocationReport.Run(size, rest is [var calls] ? int.Parse(calls, System.Globalization.CultureInfo.InvariantCulture) : 20_000, Console.Out);
    return 0;
}

// --audit-rows [ROWS] [PATIENTS...] reports the CPU per card row the audit trail's store spends writing ROWS rows (default
// 200,000) for one patient and for 100,000 at random, or for the patient counts given.
if (args is ["--audit-rows", .. var auditArgs])
{
    var invariant = System.Globalization.CultureInfo.InvariantCulture;
    AuditRowsReport.Run(auditArgs is [var rows, ..] ? int.Parse(rows, invariant) : 200_000,
        auditArgs is [_, _, ..] ? auditArgs[1..].Select(p => int.Parse(p, invariant)).ToArray() : [1, 100_000], Console.Out);
    return 0;
}

if (args is ["--smoke", var artifacts])
{
    var config = ManualConfig.CreateMinimumViable()
        .AddJob(Job.Dry.WithToolchain(InProcessEmitToolchain.Instance))
        .WithOptions(ConfigOptions.DisableOptimizationsValidator)
        .WithArtifactsPath(artifacts);
    var summaries = BenchmarkRunner.Run(typeof(Program).Assembly, config);
    var failed = summaries.Sum(s => s.HasCriticalValidationErrors ? 1 : s.Reports.Count(r => !r.Success));
    var ran = summaries.Sum(s => s.Reports.Count(r => r.Success));
    Console.WriteLine($"smoke: {ran} benchmarks ran, {failed} failed");
    return failed == 0 && ran > 0 ? 0 : 1;
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
