using System.Text.Json;
using BenchmarkDotNet.Attributes;
using CdsHooks.Engine;
using CdsHooks.Engine.Evaluation;
using CdsHooks.Engine.Hooks;
using CdsHooks.Engine.Knowledge;
using Hl7.Fhir.Model;

namespace CdsHooks.Benchmarks;

/// <summary>The cost of a typical request with the shipped rules versus a knowledge base of 10,000 more interaction
/// pairs over 2,000 more ingredients (some of them pairing with the request's own drugs). Rules are indexed by
/// ingredient, so the cost may at most double.</summary>
[MemoryDiagnoser]
public class KnowledgeScalingBenchmarks
{
    private readonly HookService _service = HookCatalog.Find("medication-safety-order-sign")!;
    private readonly byte[] _body = System.Text.Encoding.UTF8.GetBytes(Requests.Typical);
    private CdsEngine _shipped = null!;
    private CdsEngine _large = null!;

    [GlobalSetup]
    public void Setup()
    {
        var shipped = KnowledgeLoader.Load(Requests.Cards);
        _shipped = new CdsEngine(shipped, TimeProvider.System);
        _large = new CdsEngine(Large(shipped, pairs: 10_000, ingredients: 2_000), TimeProvider.System);
    }

    public static KnowledgeBase Large(KnowledgeBase shipped, int pairs, int ingredients)
    {
        var random = new Random(20261126);
        var groups = new Dictionary<string, DrugGroup>(shipped.DrugGroups);
        var synthetic = new List<DrugGroup>();
        for (var i = 0; i < ingredients; i++)
        {
            var code = (9_000_000 + i).ToString(System.Globalization.CultureInfo.InvariantCulture);
            var valueSet = new ValueSet
            {
                Name = "synthetic-" + code,
                Expansion = new ValueSet.ExpansionComponent
                {
                    Contains = [new ValueSet.ContainsComponent
                    {
                        System = DrugGroup.RxNorm, Code = code, Display = "synthetic " + code,
                        Contains = [new ValueSet.ContainsComponent { System = DrugGroup.RxNorm, Code = "8" + code, Display = $"synthetic {code} 10 MG Oral Tablet" }],
                    }],
                },
            };
            var group = DrugGroup.FromValueSet(valueSet, "synthetic");
            groups[group.Name] = group;
            synthetic.Add(group);
        }

        // Some pairs touch the request's own drugs, so that the index hands the evaluator more rules to look at.
        var real = new[] { shipped.DrugGroups["mirtazapine"], shipped.DrugGroups["clonazepam"] };
        var template = shipped.Rules.Single(r => r.Id == "mirtazapine-benzodiazepine");
        var rules = new List<Rule>(shipped.Rules);
        for (var i = 0; i < pairs; i++)
        {
            var a = i % 100 == 0 ? real[i % 2] : synthetic[random.Next(synthetic.Count)];
            rules.Add(template with { Id = "synthetic-" + i, SideA = [a], SideB = [synthetic[random.Next(synthetic.Count)]], Factors = [], Requires = [] });
        }

        return new KnowledgeBase(groups, shipped.ConditionGroups, rules);
    }

    [Benchmark(Baseline = true)]
    public Task<HookResult> ShippedRules() => Run(_shipped);

    [Benchmark]
    public Task<HookResult> TenThousandMorePairs() => Run(_large);

    private async Task<HookResult> Run(CdsEngine engine)
    {
        return await engine.EvaluateAsync(HookRequestReader.Read(_body, _service));
    }
}
