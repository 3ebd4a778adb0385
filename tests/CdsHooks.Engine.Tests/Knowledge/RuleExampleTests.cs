using CdsHooks.Engine.Knowledge;
using CdsHooks.Tests;

namespace CdsHooks.Engine.Tests.Knowledge;

/// <summary>Runs every example that ships with every rule in cards/rules/, against the whole knowledge base, with
/// the rules a site would run (those shipped disabled are enabled here so that their examples run too).</summary>
public class RuleExampleTests
{
    private static readonly DateOnly Today = new(2026, 11, 26);

    private static readonly KnowledgeBase Knowledge = EveryRule.Knowledge;

    private static readonly IReadOnlyList<ExampleResult> Results = ExampleRunner.Run(Knowledge, Today);

    public static TheoryData<string, string> Examples()
    {
        var data = new TheoryData<string, string>();
        foreach (var result in Results) data.Add(result.Rule.Id, result.Example.Name);
        return data;
    }

    [Theory]
    [MemberData(nameof(Examples))]
    public void RuleAnswersItsExampleAsDocumented(string ruleId, string exampleName)
    {
        var result = Results.Single(r => r.Rule.Id == ruleId && r.Example.Name == exampleName);

        Assert.Equal(result.Expected, result.Actual);
    }

    [Fact]
    public void EveryShippedRuleFileIsLoadedAndRunsItsExamples() =>
        // The theory above runs per example; this guards against a rule directory that silently loads nothing.
        Assert.Equal(Directory.GetFiles(Path.Combine(Repository.Cards, "rules"), "*.yaml").Length, Results.Select(r => r.Rule.Id).Distinct().Count());

    [Fact]
    public void ARuleFiresOnAGroupItHoldsBesideTheKnowledgesGroups()
    {
        // Drugs are matched to a rule's groups by reference (ResolvedDrug.Groups): a group the rule holds that is not
        // among the knowledge's named groups must be indexed all the same, or the rule would stay silent.
        var rule = Knowledge.Rules.Single(r => r.Id == "mirtazapine-benzodiazepine");
        var groups = Knowledge.DrugGroups.Where(g => !rule.SideB.Contains(g.Value)).ToDictionary();
        Assert.True(groups.Count < Knowledge.DrugGroups.Count);
        var knowledge = new KnowledgeBase(groups, Knowledge.ConditionGroups, [rule]);

        var results = ExampleRunner.Run(knowledge, Today).ToList();

        Assert.NotEmpty(results);
        Assert.All(results, r => Assert.True(r.Passed, $"{r.Example.Name}: expected {r.Expected}, got {r.Actual}"));
    }

    [Fact]
    public void AWrongExpectationIsReportedAsAFailure()
    {
        var rule = Knowledge.Rules.Single(r => r.Id == "mirtazapine-benzodiazepine");
        var changed = rule with { Examples = [rule.Examples[0] with { ExpectedIndicator = CdsHooks.Engine.Hooks.Indicator.Info }] };
        var knowledge = new KnowledgeBase(Knowledge.DrugGroups, Knowledge.ConditionGroups, [.. Knowledge.Rules.Select(r => r.Id == rule.Id ? changed : r)]);

        var result = ExampleRunner.Run(knowledge, Today).Single(r => r.Rule.Id == rule.Id);

        Assert.False(result.Passed);
        Assert.StartsWith("info", result.Expected, StringComparison.Ordinal);
        Assert.StartsWith("warning", result.Actual, StringComparison.Ordinal);
    }
}
