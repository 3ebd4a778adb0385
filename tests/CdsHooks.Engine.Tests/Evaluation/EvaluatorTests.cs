using CdsHooks.Engine.Evaluation;
using CdsHooks.Engine.Hooks;
using CdsHooks.Engine.Knowledge;
using CdsHooks.Engine.Patients;
using CdsHooks.Tests;

namespace CdsHooks.Engine.Tests.Evaluation;

public class EvaluatorTests
{
    private static readonly DateOnly Today = new(2026, 11, 26);
    private static readonly KnowledgeBase Knowledge = KnowledgeLoader.Load(Repository.Cards);
    private readonly Evaluator _evaluator = new(Knowledge);

    private static MedicationUse Drug(string code, MedicationStatus status = MedicationStatus.Current, DailyDose? dose = null, string text = "") =>
        new($"drug {code}", code.Length > 0 ? [code] : [], text, null, dose, status, null, $"{status}-{code}-{text}");

    private static PatientContext Patient(int age, params MedicationUse[] medications) =>
        new(age, medications, new HashSet<string>(), Today);

    [Theory]
    [InlineData("Klonopin 0.5 mg tablet", "clonazepam")]
    [InlineData("clonazepam 0.5mg tab", "clonazepam")]
    [InlineData("CLONAZEPAM ODT", "clonazepam")]
    [InlineData("Valproic Acid 250 MG Oral Capsule", "valproic acid")]
    [InlineData("Remeron SolTab 15 mg", "mirtazapine")]
    public void TextOnlyMedicationIsRecognisedByGenericOrBrandName(string text, string ingredient)
    {
        var resolved = _evaluator.Resolve(Drug("", text: text));

        Assert.Equal(ingredient, Assert.Single(resolved.Ingredients).Name);
    }

    [Theory]
    [InlineData("Amoxicillin 500 mg capsule")]
    [InlineData("clonazepamine")]
    [InlineData("")]
    public void UnrelatedTextIsNotADrugWeKnow(string text) =>
        Assert.Empty(_evaluator.Resolve(Drug("", text: text)).Ingredients);

    [Fact]
    public void TabletsPerDayBecomeMgThroughTheProductStrength()
    {
        var resolved = _evaluator.Resolve(Drug("197527", dose: new DailyDose(3, "tablet"))); // clonazepam 0.5 MG Oral Tablet

        Assert.Equal(1.5m, resolved.MgPerDay);
    }

    [Fact]
    public void OrderingClonazepamForAnOlderAdultOnMirtazapineGivesOneCardForTheClonazepamProblems()
    {
        var patient = Patient(80, Drug("197527", MedicationStatus.New), Drug("311725"));

        var problems = _evaluator.Evaluate(patient);

        var problem = Assert.Single(problems);
        Assert.Contains(problem.All, f => f.Rule.Id == "mirtazapine-benzodiazepine");
        Assert.True(problem.All.Count() > 1, "the Beers older-adult finding about the same clonazepam joins the card");
    }

    [Fact]
    public void TwoLongStandingInteractingDrugsStaySilentWhenSomethingElseIsOrdered()
    {
        var patient = Patient(80, Drug("29046", MedicationStatus.New), Drug("197527"), Drug("311725"));

        Assert.Empty(_evaluator.Evaluate(patient));
    }

    [Fact]
    public void SiteSettingsDisableARuleAndChangeAnIndicator()
    {
        var patient = Patient(40, Drug("311725", MedicationStatus.New), Drug("197527"));
        var disabled = KnowledgeLoader.Load(Repository.Cards, new SiteSettings { DisabledRules = ["mirtazapine-benzodiazepine"] });
        var raised = KnowledgeLoader.Load(Repository.Cards, new SiteSettings { Indicators = { ["mirtazapine-benzodiazepine"] = Indicator.Critical } });

        Assert.DoesNotContain(new Evaluator(disabled).Evaluate(patient).SelectMany(p => p.All), f => f.Rule.Id == "mirtazapine-benzodiazepine");
        Assert.Equal(Indicator.Critical, new Evaluator(raised).Evaluate(patient).SelectMany(p => p.All).Single(f => f.Rule.Id == "mirtazapine-benzodiazepine").Indicator);
    }

    [Fact]
    public void SiteAgeThresholdReplacesTheOlderAdultAge()
    {
        var patient = Patient(62, Drug("311725", MedicationStatus.New), Drug("197527"));
        var sixty = KnowledgeLoader.Load(Repository.Cards, new SiteSettings { OlderAdultAge = 60 });

        var finding = new Evaluator(sixty).Evaluate(patient).SelectMany(p => p.All).Single(f => f.Rule.Id == "mirtazapine-benzodiazepine");

        Assert.Contains(finding.Factors, f => f.Id == "older-adult");
    }

    [Fact]
    public void SiteSettingsNamingAnUnknownRuleAreRefused()
    {
        var error = Assert.Throws<KnowledgeException>(() =>
            KnowledgeLoader.Load(Repository.Cards, new SiteSettings { DisabledRules = ["no-such-rule"] }));

        Assert.Equal("Knowledge:DisabledRules", error.Field);
    }

    [Fact]
    public void MinimumIndicatorAndCardCapApplyToTheResponse()
    {
        var settings = new SiteSettings { MinimumIndicator = Indicator.Critical };
        var engine = new CdsEngine(KnowledgeLoader.Load(Repository.Cards, settings), TimeProvider.System);
        var patient = Patient(40, Drug("311725", MedicationStatus.New), Drug("197527"));

        Assert.Empty(engine.Respond(new Evaluator(engine.Knowledge).Evaluate(patient)).Cards);
    }
}
