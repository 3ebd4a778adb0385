using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace CdsHooks.Api.Tests;

/// <summary>The service as its own process on a loopback port, as a browser or a load generator meets it.</summary>
public sealed class ServiceProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();

    private readonly string _database;

    private ServiceProcess(Process process, string baseUrl, string database)
    {
        _process = process;
        BaseUrl = baseUrl;
        _database = database;
    }

    public string BaseUrl { get; }

    /// <summary>What the service wrote to standard output and error so far, one line per entry.</summary>
    public IReadOnlyCollection<string> Output => _output;

    /// <summary>Waits up to five seconds for a line of output that <paramref name="matches"/> (the log is written by a
    /// background thread), and returns whether one came.</summary>
    public async Task<bool> WaitForOutputAsync(Func<string, bool> matches)
    {
        for (var attempt = 0; attempt < 50; attempt++)
        {
            if (_output.Any(matches)) return true;
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }

        return _output.Any(matches);
    }

    /// <param name="settings">Configuration, as environment variables.</param>
    /// <param name="executable">A published service's own executable; by default the build's CdsHooks.Api.dll,
    /// run by dotnet.</param>
    public static async Task<ServiceProcess> StartAsync(IReadOnlyDictionary<string, string>? settings = null, string? executable = null)
    {
        int port;
        using (var listener = new TcpListener(IPAddress.Loopback, 0))
        {
            listener.Start();
            port = ((IPEndPoint)listener.LocalEndpoint).Port;
        }

        var database = Path.Combine(Path.GetTempPath(), $"cds-hooks-process-{Guid.NewGuid():N}.db");
        var start = executable is null
            ? new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "CdsHooks.Api.dll")])
            : new ProcessStartInfo(executable);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.WorkingDirectory = Path.GetDirectoryName(executable) ?? AppContext.BaseDirectory;
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Development";
        start.Environment["ASPNETCORE_URLS"] = $"http://127.0.0.1:{port}";
        start.Environment["Audit__ConnectionString"] = $"Data Source={database}";
        start.Environment["Serilog__MinimumLevel__Default"] = "Warning";
        foreach (var (key, value) in settings ?? new Dictionary<string, string>()) start.Environment[key] = value;
        var process = Process.Start(start)!;
        var service = new ServiceProcess(process, $"http://127.0.0.1:{port}", database);
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) service._output.Enqueue(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) service._output.Enqueue(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var client = new HttpClient();
        for (var attempt = 0; attempt < 150; attempt++)
        {
            try
            {
                if ((await client.GetAsync(new Uri(service.BaseUrl + "/health/live"))).IsSuccessStatusCode) return service;
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }

            await Task.Delay(100);
        }

        await service.DisposeAsync();
        throw new InvalidOperationException("the service did not start:\n" + string.Join("\n", service.Output.TakeLast(20)));
    }

    /// <summary>Stops the service as a container runtime does (SIGTERM) and waits for it to exit; its exit code.</summary>
    public async Task<int> StopAsync()
    {
        if (Kill(_process.Id, Sigterm) != 0) throw new InvalidOperationException("SIGTERM could not be sent");
        await _process.WaitForExitAsync(TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        _process.WaitForExit(); // and the output read to its end
        return _process.ExitCode;
    }

    private const int Sigterm = 15;

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
        _process.Dispose();
        foreach (var file in new[] { _database, _database + "-wal", _database + "-shm" }) File.Delete(file);
    }
}
