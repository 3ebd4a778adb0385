using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using CdsHooks.Tests;
using Dapper;
using Microsoft.Data.Sqlite;

namespace CdsHooks.Api.Tests.Audit;

/// <summary>A 200 for feedback means it is on disk: the service process is killed (SIGKILL) in the middle of a stream
/// of feedback posts, started again on the same SQLite file, and every feedback it had acknowledged is there.</summary>
public sealed class DurabilityTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("cds-hooks-durable-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string Database => Path.Combine(_directory, "audit.db");

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private async Task<(Process Process, HttpClient Client)> StartServiceAsync()
    {
        var port = FreePort();
        var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "CdsHooks.Api.dll")])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            Environment =
            {
                ["ASPNETCORE_ENVIRONMENT"] = "Development",
                ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{port}",
                ["Audit__ConnectionString"] = $"Data Source={Database}",
                ["Fatigue__Enabled"] = "false",
                ["Serilog__MinimumLevel__Default"] = "Warning",
            },
        };
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        for (var attempt = 0; attempt < 100; attempt++)
        {
            try
            {
                if ((await client.GetAsync(new Uri("/cds-services", UriKind.Relative), TestContext.Current.CancellationToken)).IsSuccessStatusCode) return (process, client);
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }

            await Task.Delay(100, TestContext.Current.CancellationToken);
        }

        process.Kill(entireProcessTree: true);
        throw new InvalidOperationException("the service did not start");
    }

    [Fact]
    public async Task EveryFeedbackAnswered200SurvivesAKilledProcess()
    {
        var (service, client) = await StartServiceAsync();
        var cards = new List<string>();
        for (var i = 0; i < 10; i++)
        {
            var request = Repository.SampleNode("order-sign-mirtazapine-80-year-old-on-clonazepam.json");
            request["hookInstance"] = Guid.NewGuid().ToString();
            cards.Add((string)(await (await client.PostJson("/cds-services/medication-safety-order-sign", request)).Json())["cards"]![0]!["uuid"]!);
        }

        // Feedback streams in from two senders; the process is killed while they are sending.
        var acknowledged = new System.Collections.Concurrent.ConcurrentBag<(string Card, long At)>();
        var start = DateTimeOffset.UtcNow;
        async Task Send(int sender)
        {
            for (var n = 0; ; n++)
            {
                var at = start.AddMilliseconds(-(sender * 1_000_000) - n); // in the past: a future time would be stored as the time received
                var card = cards[n % cards.Count];
                var body = new JsonObject
                {
                    ["feedback"] = new JsonArray(new JsonObject
                    {
                        ["card"] = card, ["outcome"] = "overridden", ["outcomeTimestamp"] = at.ToString("O"),
                        ["overrideReason"] = new JsonObject { ["reason"] = new JsonObject { ["system"] = "urn:x", ["code"] = "benefit-outweighs-risk" } },
                    }),
                };
                try
                {
                    var response = await client.PostJson("/cds-services/medication-safety-order-sign/feedback", body);
                    if (response.StatusCode == HttpStatusCode.OK) acknowledged.Add((card, at.ToUnixTimeMilliseconds()));
                }
                catch (HttpRequestException)
                {
                    return; // the process is gone
                }
            }
        }

        var senders = Task.WhenAll(Send(1), Send(2));
        while (acknowledged.Count < 150) await Task.Delay(10, TestContext.Current.CancellationToken);
        service.Kill(entireProcessTree: true); // SIGKILL: no shutdown, no flush
        await senders;
        await service.WaitForExitAsync(TestContext.Current.CancellationToken);

        // The service starts again on the same file (WAL recovery), and every acknowledged item is in it.
        var (restarted, _) = await StartServiceAsync();
        restarted.Kill(entireProcessTree: true);
        await restarted.WaitForExitAsync(TestContext.Current.CancellationToken);
        await using var db = new SqliteConnection($"Data Source={Database};Mode=ReadOnly");
        var stored = (await db.QueryAsync<(string Card, long At)>("SELECT card_uuid, outcome_at FROM card_feedback")).ToHashSet();

        Assert.True(acknowledged.Count >= 150);
        Assert.DoesNotContain(acknowledged, a => !stored.Contains(a));
    }
}
