using CdsHooks.Engine.Evaluation;
using CdsHooks.Engine.Knowledge;
using CdsHooks.Engine.Patients;
using CdsHooks.Tests;

namespace CdsHooks.Engine.Tests.Knowledge;

/// <summary>Runs every example that ships with every rule in cards/rules/, against the whole knowledge base.</summary>
public class RuleExampleTests
{
    private static readonly KnowledgeBase Knowledge = KnowledgeLoader.Load(Repository.Cards);

    public static TheoryData<string, string> Examples()
    {
        var data = new TheoryData<string, string>();
        foreach (var rule in Knowledge.Rules)
        {
            foreach (var example in rule.Examples) data.Add(rule.Id, example.Name);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Examples))]
    public void RuleAnswersItsExampleAsDocumented(string ruleId, string exampleName)
    {
        var rule = Knowledge.Rules.Single(r => r.Id == ruleId);
        var example = rule.Examples.Single(e => e.Name == exampleName);
        var patient = new PatientContext(example.Age, [
            .. example.New.Select(code => new MedicationUse($"drug {code}", [code], null, IsNew: true, $"new-{code}")),
            .. example.Active.Select(code => new MedicationUse($"drug {code}", [code], null, IsNew: false, $"active-{code}")),
        ]);

        var finding = new Evaluator(Knowledge).Evaluate(patient).SingleOrDefault(f => f.Rule.Id == ruleId);

        if (example.ExpectedIndicator is null)
        {
            Assert.Null(finding);
            return;
        }

        Assert.NotNull(finding);
        Assert.Equal(example.ExpectedIndicator, finding.Indicator);
        Assert.Equal(example.ExpectedFactors.Order(), finding.Factors.Select(f => f.Id).Order());
    }

    [Fact]
    public void EveryRuleShipsExamplesThatFireAndExamplesThatDoNot()
    {
        Assert.NotEmpty(Knowledge.Rules);
        Assert.All(Knowledge.Rules, rule =>
        {
            Assert.Contains(rule.Examples, e => e.ExpectedIndicator is not null);
            Assert.Contains(rule.Examples, e => e.ExpectedIndicator is null);
        });
    }
}
