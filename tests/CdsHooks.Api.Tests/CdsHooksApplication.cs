using System.Collections.Concurrent;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Serilog.Core;
using Serilog.Events;

namespace CdsHooks.Api.Tests;

/// <summary>The service as it runs, over real HTTP through the test server, with every log event kept for inspection.</summary>
public sealed class CdsHooksApplication : WebApplicationFactory<Program>
{
    public LogCapture Logs { get; } = new();

    /// <summary>Each test host keeps its own audit database, so that tests cannot see each other's cards.</summary>
    public string DatabasePath { get; } = Path.Combine(Path.GetTempPath(), $"cds-hooks-test-{Guid.NewGuid():N}.db");

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Development");
        builder.UseSetting("Audit:ConnectionString", $"Data Source={DatabasePath}");

        // The alert-fatigue controls would hide a card the second time a test sends the same request; their own
        // tests turn them on.
        builder.UseSetting("Fatigue:Enabled", "false");

        // Every level is captured, so that the log checks cover debug output too.
        builder.UseSetting("Serilog:MinimumLevel:Default", "Verbose");
        builder.UseSetting("Serilog:MinimumLevel:Override:Microsoft.AspNetCore", "Verbose");
        builder.UseSetting("Serilog:MinimumLevel:Override:Microsoft.Hosting.Lifetime", "Verbose");
        builder.ConfigureServices(services =>
        {
            services.AddSingleton<ILogEventSink>(Logs);
            services.AddSingleton<ILogEventSink>(LogCanaries.Everything);
        });
    }

    /// <summary>Stops the host, then deletes its audit database and SQLite's files beside it: each test run left
    /// about seventy of them in the temporary directory (a few empty ones remain, opened again after this by hosts
    /// that a test derived from this one and that stopped later).</summary>
    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools(); // pooled connections would keep the files open
        foreach (var file in new[] { DatabasePath, DatabasePath + "-wal", DatabasePath + "-shm" })
        {
            try
            {
                File.Delete(file);
            }
            catch (IOException)
            {
                // Still open elsewhere (Windows refuses to delete it): left in the temporary directory.
            }
        }

        GC.SuppressFinalize(this);
    }
}

public sealed class LogCapture : ILogEventSink
{
    private readonly ConcurrentQueue<LogEvent> _events = new();

    public IReadOnlyCollection<LogEvent> Events => _events;

    public void Emit(LogEvent logEvent) => _events.Enqueue(logEvent);

    /// <summary>Every event as a reader of the log would see it: message, properties and exception.</summary>
    public string AllText() => string.Join("\n", _events.Select(e =>
        e.RenderMessage() + " " + string.Join(" ", e.Properties.Select(p => $"{p.Key}={p.Value}")) + " " + e.Exception));
}
