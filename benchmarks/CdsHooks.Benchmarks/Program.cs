using BenchmarkDotNet.Running;
using CdsHooks.Benchmarks;

// dotnet run -c Release --project benchmarks/CdsHooks.Benchmarks -- --filter '*'   (docs/performance.md)
// --write-requests DIR writes the typical and heavy request bodies for benchmarks/load.sh.
if (args is ["--write-requests", var directory])
{
    Directory.CreateDirectory(directory);
    File.WriteAllText(Path.Combine(directory, "typical.json"), Requests.Typical);
    File.WriteAllText(Path.Combine(directory, "heavy.json"), Requests.Heavy);
    return;
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
