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
    internal static readonly JsonSerializerOptions Output = FhirJson.Configure(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    });

    private static readonly DateOnly Today = new(2026, 11, 26);
    private readonly HookService _service = HookCatalog.Find("medication-safety-order-sign")!;
    private KnowledgeBase _knowledge = null!;
    private CdsEngine _engine = null!;
    private Evaluator _evaluator = null!;
    private byte[] _body = [];
    private HookRequest _request = null!;
    private PatientContext _patient = null!;
    private IReadOnlyList<Problem> _problems = [];

    [Params("typical", "heavy")]
    public string Size { get; set; } = "typical";

    [GlobalSetup]
    public void Setup()
    {
        _knowledge = KnowledgeLoader.Load(Requests.Cards);
        _engine = new CdsEngine(_knowledge, TimeProvider.System);
        _evaluator = new Evaluator(_knowledge);
        _body = System.Text.Encoding.UTF8.GetBytes(Size == "heavy" ? Requests.Heavy : Requests.Typical);
        _request = Parse();
        _patient = Context();
        _problems = _evaluator.Evaluate(_patient);
        if (_problems.Count == 0) throw new InvalidOperationException("the benchmark request must produce a card");
    }

    [Benchmark]
    public HookRequest Parse()
    {
        using var document = JsonDocument.Parse(_body);
        return HookRequestReader.Read(document.RootElement, _service);
    }

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
        using var document = JsonDocument.Parse(_body);
        var request = HookRequestReader.Read(document.RootElement, _service);
        var result = await _engine.EvaluateAsync(request);
        return JsonSerializer.SerializeToUtf8Bytes(result.ToResponse(), Output);
    }
}
