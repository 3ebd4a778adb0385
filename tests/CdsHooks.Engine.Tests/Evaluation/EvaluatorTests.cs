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
    [InlineData("Klonopin® 0.5 mg", "clonazepam")]
    [InlineData("clonazepam0.5mg", "clonazepam")]
    [InlineData("Clonazepam;\tone tablet", "clonazepam")]
    [InlineData("\uff43\uff4c\uff4f\uff4e\uff41\uff5a\uff45\uff50\uff41\uff4d 0.5 mg", "clonazepam")] // full-width letters
    public void TextOnlyMedicationIsRecognisedByGenericOrBrandName(string text, string ingredient)
    {
        var resolved = _evaluator.Resolve(Drug("", text: text));

        Assert.Equal(ingredient, Assert.Single(resolved.Ingredients).Name);
    }

    [Fact]
    public void ADrugIsInTheGroupsThatHoldOneOfItsIngredients()
    {
        // Membership is found once per drug, by reference (ResolvedDrug.Groups); it must say what looking each
        // ingredient up in each group says, for every ingredient and product code of the knowledge and every group.
        var groups = Knowledge.DrugGroups.Values.ToList();
        var codes = groups.SelectMany(g => g.Ingredients.Keys.Concat(g.Products.Keys)).Distinct().ToList();
        var checks = 0;
        foreach (var code in codes)
        {
            var drug = _evaluator.Resolve(Drug(code));
            Assert.NotEmpty(drug.Ingredients);
            foreach (var group in groups)
            {
                Assert.Equal(drug.Ingredients.Any(i => Rule.InAny([group], i.Code)), drug.IsIn([group]));
                checks++;
            }
        }

        Assert.True(checks > 10_000, $"{checks} checks");
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
        Assert.True(problem.All.Count > 1, "the Beers older-adult finding about the same clonazepam joins the card");
    }

    [Fact]
    public void CardUuidsAreTimeOrderedSoTheAuditTrailAppendsToItsKey()
    {
        var before = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var card = CardBuilder.Build(Assert.Single(_evaluator.Evaluate(Patient(80, Drug("197527", MedicationStatus.New), Drug("311725")))));
        var after = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

        var uuid = Guid.Parse(card.Uuid);
        Assert.Equal(7, uuid.Version);
        var issuedAt = Convert.ToInt64(card.Uuid.Replace("-", "", StringComparison.Ordinal)[..12], 16); // UUIDv7: Unix ms first
        Assert.InRange(issuedAt, before, after);
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

    [Fact]
    public void ARenewalOfTheSameDrugIsNotAnInteractionWithItself()
    {
        var patient = Patient(50, Drug("197900", MedicationStatus.New), Drug("197900")); // lorazepam 0.5 mg, renewed

        Assert.DoesNotContain(_evaluator.Evaluate(patient).SelectMany(p => p.All), f => f.Rule.Kind == RuleKind.Pair);
    }

    [Fact]
    public void AOneDrugCardDoesNotSwallowAPairAboutMoreDrugs()
    {
        // Clonazepam and oxycodone ordered for an 80-year-old with cirrhosis: the boxed-warning pair keeps its own card.
        var patient = new PatientContext(80, [Drug("197527", MedicationStatus.New), Drug("1049621", MedicationStatus.New)],
            new HashSet<string> { ConditionGroup.Key(ConditionGroup.Snomed, "19943007") }, Today);

        var problems = _evaluator.Evaluate(patient);

        Assert.Contains(problems, p => p.Head.Rule.Id == "clonazepam-liver-disease");
        Assert.Contains(problems, p => p.Head.Rule.Id == "benzodiazepine-opioid");
        Assert.Equal(Indicator.Critical, problems[0].Head.Indicator);
    }

    [Fact]
    public void AnMaoiStoppedOnAnUnknownDayStillCounts()
    {
        var stopped = Drug("8123", MedicationStatus.Stopped) with { StoppedOn = null }; // phenelzine
        var patient = Patient(60, Drug("311725", MedicationStatus.New), stopped);

        Assert.Contains(_evaluator.Evaluate(patient).SelectMany(p => p.All), f => f.Rule.Id == "mirtazapine-maoi");
    }

    [Fact]
    public void AnMaoiStoppedLongAgoDoesNotCount()
    {
        var stopped = Drug("8123", MedicationStatus.Stopped) with { StoppedOn = Today.AddDays(-30) };
        var patient = Patient(60, Drug("311725", MedicationStatus.New), stopped);

        Assert.DoesNotContain(_evaluator.Evaluate(patient).SelectMany(p => p.All), f => f.Rule.Id == "mirtazapine-maoi");
    }

    [Fact]
    public void TheCardCapKeepsTheMostSevere()
    {
        var engine = new CdsEngine(KnowledgeLoader.Load(Repository.Cards, new SiteSettings { MaxCards = 1 }), TimeProvider.System);
        var patient = new PatientContext(80, [Drug("197527", MedicationStatus.New), Drug("1049621", MedicationStatus.New)],
            new HashSet<string> { ConditionGroup.Key(ConditionGroup.Snomed, "19943007") }, Today);

        var card = Assert.Single(engine.Respond(new Evaluator(engine.Knowledge).Evaluate(patient)).Cards);

        Assert.Equal(Indicator.Critical, card.Indicator);
    }

    [Fact]
    public void CardsComeMostSevereFirstInTheProblemsOrderAboveTheMinimumAndUpToTheCap()
    {
        var engine = new CdsEngine(KnowledgeLoader.Load(Repository.Cards, new SiteSettings { MaxCards = 3, MinimumIndicator = Indicator.Warning }),
            TimeProvider.System);
        var found = new Evaluator(engine.Knowledge).Evaluate(Patient(80, Drug("311725", MedicationStatus.New), Drug("197527")))[0].Head;
        var rules = engine.Knowledge.Rules.Take(6).ToList();
        Problem Problem(int rule, Indicator indicator) => new(found with { Rule = rules[rule], Indicator = indicator }, []);

        var cards = engine.Respond([
            Problem(0, Indicator.Info), Problem(1, Indicator.Warning), Problem(2, Indicator.Critical),
            Problem(3, Indicator.Warning), Problem(4, Indicator.Critical), Problem(5, Indicator.Critical),
        ]).Cards;

        Assert.Equal([rules[2].Id, rules[4].Id, rules[5].Id], cards.Select(c => c.RuleId));
        Assert.Equal([rules[1].Id, rules[3].Id], engine.Respond([Problem(0, Indicator.Info), Problem(1, Indicator.Warning), Problem(3, Indicator.Warning)])
            .Cards.Select(c => c.RuleId));
    }

    [Fact]
    public void AFindingListsItsNewOrdersFirstThenTheOthersInTheOrderGiven()
    {
        // clonazepam, alprazolam (new), diazepam, lorazepam (new): four CNS-active drugs at 80.
        var patient = Patient(80, Drug("2598"), Drug("596", MedicationStatus.New), Drug("3322"), Drug("6470", MedicationStatus.New));

        var finding = _evaluator.Evaluate(patient).SelectMany(p => p.All).Single(f => f.Rule.Id == "beers-cns-active-count");

        Assert.Equal(["596", "6470", "2598", "3322"], finding.SideA.Select(d => d.Medication.RxNormCodes[0]));
    }
}
