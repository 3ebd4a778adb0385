using System.Diagnostics.Tracing;
using System.Globalization;
using System.Text.Json;
using CdsHooks.Engine;
using CdsHooks.Engine.Evaluation;
using CdsHooks.Engine.Fhir;
using CdsHooks.Engine.Hooks;
using CdsHooks.Engine.Knowledge;
using CdsHooks.Engine.Patients;

namespace CdsHooks.Benchmarks;

/// <summary>
/// Where a hook call's allocations go (<c>--allocations typical|heavy [calls]</c>): bytes per call for each stage of the
/// engine, measured exactly on the calling thread, and the types allocated most, sampled from the runtime's GC
/// allocation events (one event per ~100 KB allocated, naming the type that crossed the mark). BenchmarkDotNet's memory
/// diagnoser gives the totals; this says which stage and which types make them (docs/performance.md).
/// </summary>
public static class AllocationReport
{
    public static void Run(string size, int calls, TextWriter output)
    {
        var knowledge = KnowledgeLoader.Load(Requests.Cards);
        var engine = new CdsEngine(knowledge, TimeProvider.System);
        var evaluator = new Evaluator(knowledge);
        var service = HookCatalog.Find("medication-safety-order-sign")!;
        var body = System.Text.Encoding.UTF8.GetBytes(size == "heavy" ? Requests.Heavy : Requests.Typical);

        var stages = new (string Name, long Bytes)[]
        {
            ("FHIR resources and hook context", 0), ("patient context", 0), ("evaluation", 0),
            ("cards", 0), ("response JSON", 0),
        };

        void Call(bool measure)
        {
            var mark = GC.GetAllocatedBytesForCurrentThread();
            void Stage(int index)
            {
                var now = GC.GetAllocatedBytesForCurrentThread();
                if (measure) stages[index].Bytes += now - mark;
                mark = now;
            }

            var request = HookRequestReader.Read(body, service);
            Stage(0);
            var data = PatientData.FromRequest(request);
            var patient = PatientContextBuilder.Build(request, data, PatientContextBuilder.NewMedications(request, data.Medications), EngineBenchmarks.Today);
            Stage(1);
            var problems = evaluator.Evaluate(patient);
            Stage(2);
            var result = engine.Respond(problems);
            Stage(3);
            JsonSerializer.SerializeToUtf8Bytes(result.ToResponse(), EngineBenchmarks.Output);
            Stage(4);
        }

        for (var i = 0; i < Math.Min(calls, 1000); i++) Call(measure: false); // warm: tiered compilation, caches
        using (var sampler = new AllocationSampler())
        {
            for (var i = 0; i < calls; i++) Call(measure: true);
            var total = stages.Sum(s => s.Bytes);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{size} request, {calls} calls: {total / calls:N0} bytes per call"));
            foreach (var (name, bytes) in stages)
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {name,-34} {bytes / calls,10:N0} B  {100.0 * bytes / Math.Max(total, 1),5:0.0}%"));
            }

            output.WriteLine("types allocated most (share of sampled allocation events):");
            foreach (var (type, share) in sampler.Top(25))
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {100 * share,5:0.0}%  {type}"));
            }
        }
    }

    /// <summary>Counts the runtime's GCAllocationTick events by type name, in this process.</summary>
    private sealed class AllocationSampler : EventListener
    {
        private const EventKeywords GcKeyword = (EventKeywords)0x1;
        private readonly Dictionary<string, int> _counts = new(StringComparer.Ordinal);
        private int _total;

        protected override void OnEventSourceCreated(EventSource eventSource)
        {
            if (eventSource.Name == "Microsoft-Windows-DotNETRuntime") EnableEvents(eventSource, EventLevel.Verbose, GcKeyword);
        }

        protected override void OnEventWritten(EventWrittenEventArgs eventData)
        {
            if (!(eventData.EventName?.StartsWith("GCAllocationTick", StringComparison.Ordinal) ?? false) || eventData.PayloadNames is null) return;
            var index = eventData.PayloadNames.IndexOf("TypeName");
            if (index < 0 || eventData.Payload?[index] is not string type) return;
            lock (_counts)
            {
                _counts[type] = _counts.GetValueOrDefault(type) + 1;
                _total++;
            }
        }

        public IReadOnlyList<(string Type, double Share)> Top(int count)
        {
            lock (_counts)
            {
                return [.. _counts.OrderByDescending(c => c.Value).Take(count).Select(c => (c.Key, (double)c.Value / Math.Max(_total, 1)))];
            }
        }
    }
}
