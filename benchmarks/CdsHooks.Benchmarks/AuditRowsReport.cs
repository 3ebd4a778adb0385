extern alias api;

using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using api::CdsHooks.Api.Audit;
using CdsHooks.Engine.Hooks;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;

namespace CdsHooks.Benchmarks;

/// <summary>
/// What the audit trail's card rows cost to write: the service's own store (<see cref="CardStore"/>, its schema and its
/// SQLite write path, called directly, not through its writer's queue) writing records in batches of 500, as the
/// writer gathers them, into a new file, for one patient (as the load script's saturation run, where the history index
/// grows at one place) and for 100,000 patients at random (as a site runs, where each row lands at a scattered place of
/// that index; a lower bound for a site, whose table holds up to a year of rows). Prints the process's CPU per row:
/// side by side, the rows were about a tenth of a hook call's CPU at saturation (docs/performance.md, eighteenth round).
/// </summary>
internal static class AuditRowsReport
{
    private const int Batch = 500;

    public static void Run(int rows, IReadOnlyList<int> patientCounts, TextWriter output)
    {
        foreach (var patients in patientCounts)
        {
            var directory = Directory.CreateTempSubdirectory("cds-hooks-audit-rows-");
            try
            {
                var records = Records(rows, patients);
                using (var warmUp = Open(Path.Combine(directory.FullName, "warm-up.db")))
                {
                    Write(warmUp, records[..Math.Min(rows, 4 * Batch)]); // compiled first
                }

                using var store = Open(Path.Combine(directory.FullName, "audit.db"));
                var (cpu, elapsed) = Write(store, records);
                // Read back through the store's own analytics: every row written is a card shown.
                var written = store.OutcomesAsync(DateTimeOffset.UnixEpoch, DateTimeOffset.MaxValue, CancellationToken.None)
                    .GetAwaiter().GetResult().Sum(outcome => outcome.Shown);
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"patients {patients}: {rows} rows in batches of {Batch}, {cpu.TotalMicroseconds / rows:F2} µs of CPU per row " +
                    $"({elapsed.TotalMicroseconds / rows:F2} µs elapsed), {written} rows in the table"));
            }
            finally
            {
                SqliteConnection.ClearAllPools(); // the store's pooled connections hold its files open
                directory.Delete(recursive: true);
            }
        }
    }

    // A store on a new file, its schema made as the service makes it at start.
    private static CardStore Open(string file)
    {
        var store = new CardStore(Options.Create(new AuditOptions { ConnectionString = $"Data Source={file}" }));
        store.MigrateAsync(CancellationToken.None).GetAwaiter().GetResult();
        return store;
    }

    private static (TimeSpan Cpu, TimeSpan Elapsed) Write(CardStore store, CardRecord[] records)
    {
        var cpu = Environment.CpuUsage.TotalTime; // getrusage: microseconds, where /proc's ticks are 10 ms
        var clock = Stopwatch.StartNew();
        for (var start = 0; start < records.Length; start += Batch)
        {
            var batch = new ArraySegment<CardRecord>(records, start, Math.Min(Batch, records.Length - start));
            store.RecordCardsAsync(batch, CancellationToken.None).GetAwaiter().GetResult();
        }

        return (Environment.CpuUsage.TotalTime - cpu, clock.Elapsed);
    }

    // The typical call's two cards, as the service records them: time-ordered card ids, hashes as the audit trail makes
    // them (64 hex characters), the drugs' key and a cancel suggestion's id. Made before the clock starts.
    private static CardRecord[] Records(int rows, int patients)
    {
        var random = new Random(42);
        var hashes = new string[patients];
        for (var i = 0; i < patients; i++) hashes[i] = Convert.ToHexStringLower(SHA256.HashData(BitConverter.GetBytes(i)));
        var encounter = Convert.ToHexStringLower(SHA256.HashData("encounter"u8));
        var hookInstance = Guid.NewGuid().ToString();
        var start = DateTimeOffset.UtcNow;
        var records = new CardRecord[rows];
        for (var i = 0; i < rows; i++)
        {
            var at = start.AddMilliseconds(i);
            var critical = i % 2 == 0;
            records[i] = new CardRecord(Guid.CreateVersion7(at).ToString(), "medication-safety-order-sign", "order-sign", hookInstance,
                critical ? "mirtazapine-benzodiazepine" : "mirtazapine-opioid", critical ? 3 : 1,
                critical ? Indicator.Critical : Indicator.Warning,
                critical ? "15996+2598+4501+6960" : "1191+15996+2101+23088+2670+7676+787390",
                hashes[patients == 1 ? 0 : random.Next(patients)], encounter, ["delete:" + Guid.NewGuid()], at);
        }

        return records;
    }
}
