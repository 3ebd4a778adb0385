using System.Text.Json;
using BenchmarkDotNet.Attributes;
using CdsHooks.Engine;
using CdsHooks.Engine.Evaluation;
using CdsHooks.Engine.Fhir;
using CdsHooks.Engine.Hooks;
using CdsHooks.Engine.Knowledge;
using CdsHooks.Engine.Patients;

namespace CdsHooks.Benchmarks;

/// <summary>The engine's stages for a typical and a heavy request: parse, patient context, evaluation, cards and
/// their JSON, and all of them together.</summary>
[MemoryDiagnoser]
public class EngineBenchmarks
{
    /// <summary>The response's JSON options as the service configures them.</summary>
    internal static readonly JsonSerializerOptions Output = CdsJson.Configure(new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.CamelCase });

    /// <summary>The day the requests are evaluated on, so that ages and look-back windows do not move between runs.</summary>
    internal static readonly DateOnly Today = new(2026, 11, 26);
    private readonly HookService _service = HookCatalog.Find("medication-safety-order-sign")!;
    private KnowledgeBase _knowledge = null!;
    private CdsEngine _engine = null!;
    private Evaluator _evaluator = null!;
    private byte[] _body = [];
    private HookRequest _request = null!;
    private PatientContext _patient = null!;
    private IReadOnlyList<Problem> _problems = [];

    /// <summary>typical, heavy, and heavy with its active medications in three pages of which the service fetches two
    /// (<see cref="Requests.HeavyPaged"/>); the stages before end to end see the prefetched first page only.</summary>
    [Params("typical", "heavy", "heavy-paged")]
    public string Size { get; set; } = "typical";

    [GlobalSetup]
    public void Setup()
    {
        _knowledge = KnowledgeLoader.Load(Requests.Cards);
        var fhir = new PagedFhirServer(Requests.HeavyPaged.Pages);
        _engine = new CdsEngine(_knowledge, TimeProvider.System, Size == "heavy-paged" ? fhir.Fetcher() : null);
        _evaluator = new Evaluator(_knowledge);
        _body = System.Text.Encoding.UTF8.GetBytes(Size switch
        {
            "heavy" => Requests.Heavy,
            "heavy-paged" => Requests.HeavyPaged.Request,
            _ => Requests.Typical,
        });
        _request = Parse();
        _patient = Context();
        _problems = _evaluator.Evaluate(_patient);
        if (_problems.Count == 0) throw new InvalidOperationException("the benchmark request must produce a card");
        if (Size == "heavy-paged")
        {
            // Followed to its last page, the paged request is the heavy one: the same cards, or the figure means nothing.
            string Summaries(HookResult result) => string.Join('|', result.Cards.Select(c => c.Card.Summary));
            var heavy = System.Text.Encoding.UTF8.GetBytes(Requests.Heavy);
            var expected = Summaries(new CdsEngine(_knowledge, TimeProvider.System).EvaluateAsync(HookRequestReader.Read(heavy, _service)).GetAwaiter().GetResult());
            var actual = Summaries(_engine.EvaluateAsync(_request).GetAwaiter().GetResult());
            if (actual != expected) throw new InvalidOperationException($"the paged request gave other cards than the heavy one: {actual} / {expected}");
            if (fhir.Served != Requests.HeavyPaged.Pages.Count) throw new InvalidOperationException($"{fhir.Served} pages fetched, not {Requests.HeavyPaged.Pages.Count}");
            // And the pages were merged: the three of them hold the heavy request's 60 active medications.
            var data = fhir.Fetcher().CompleteAsync(_request, CancellationToken.None).GetAwaiter().GetResult();
            var merged = (data.For(PrefetchKeys.Medications).Resource as CdsHooks.Engine.Fhir.BundleRecord)?.Entries.Count;
            if (merged != 60) throw new InvalidOperationException($"the merged medications Bundle holds {merged} entries, not 60");
        }
    }

    [Benchmark]
    public HookRequest Parse() => HookRequestReader.Read(_body, _service);

    [Benchmark]
    public PatientContext Context()
    {
        var data = PatientData.FromRequest(_request);
        return PatientContextBuilder.Build(_request, data, PatientContextBuilder.NewMedications(_request, data.Medications), Today);
    }

    [Benchmark]
    public IReadOnlyList<Problem> Evaluate() => _evaluator.Evaluate(_patient);

    [Benchmark]
    public byte[] CardsAsJson() => JsonSerializer.SerializeToUtf8Bytes(_engine.Respond(_problems).ToResponse(), Output);

    [Benchmark(Baseline = true)]
    public async Task<byte[]> EndToEnd()
    {
        var request = HookRequestReader.Read(_body, _service);
        var result = await _engine.EvaluateAsync(request);
        return JsonSerializer.SerializeToUtf8Bytes(result.ToResponse(), Output);
    }
}
