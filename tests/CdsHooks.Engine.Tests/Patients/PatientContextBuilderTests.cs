using System.Text.Json;
using System.Text.Json.Nodes;
using CdsHooks.Engine.Fhir;
using CdsHooks.Engine.Hooks;
using CdsHooks.Engine.Knowledge;
using CdsHooks.Engine.Patients;
using CdsHooks.Tests;

namespace CdsHooks.Engine.Tests.Patients;

public class PatientContextBuilderTests
{
    private static readonly DateOnly Today = new(2026, 11, 26);

    [Theory]
    [InlineData("1946-03-14", 80)]
    [InlineData("1946-11-26", 80)] // birthday today
    [InlineData("1946-11-27", 79)]
    [InlineData("1961", 65)]       // year only: read as 1 January, so a threshold is not missed
    [InlineData("1961-12", 64)]
    public void AgeComesFromFullAndPartialBirthDates(string birthDate, int age) =>
        Assert.Equal(age, PatientContextBuilder.AgeOf(new PatientRecord("p1", birthDate), Today));

    [Fact]
    public void UnknownBirthDateMeansUnknownAge() =>
        Assert.Null(PatientContextBuilder.AgeOf(new PatientRecord("p1", null), Today));

    private static HookRequest Request(Action<JsonNode> change)
    {
        var node = Repository.SampleNode("order-sign-mirtazapine-80-year-old-on-clonazepam.json");
        change(node);
        using var document = JsonDocument.Parse(node.ToJsonString());
        return HookRequestReader.Read(document.RootElement, HookCatalog.Find("medication-safety-order-sign")!);
    }

    private static PatientContext Build(HookRequest request)
    {
        var data = PatientData.FromRequest(request);
        return PatientContextBuilder.Build(request, data, PatientContextBuilder.NewMedications(request, data.Medications), Today);
    }

    [Fact]
    public void ActiveMedicationsAndTheNewOrderMakeTheMedicationList()
    {
        var context = Build(Request(_ => { }));

        Assert.Equal(80, context.Age);
        Assert.Collection(context.Medications,
            m => Assert.Equal((true, "311725"), (m.IsNew, m.RxNormCodes.Single())),
            m => Assert.Equal((false, "197527", "0.5 mg by mouth twice daily"), (m.IsNew, m.RxNormCodes.Single(), m.Dose)));
    }

    [Theory]
    [InlineData("stopped")]
    [InlineData("completed")]
    [InlineData("cancelled")]
    [InlineData("entered-in-error")]
    public void MedicationsThatAreNotCurrentDoNotCount(string status)
    {
        var context = Build(Request(n => n["prefetch"]!["medications"]!["entry"]![0]!["resource"]!["status"] = status));

        Assert.DoesNotContain(context.Medications, m => m.Status == MedicationStatus.Current);
    }

    [Fact]
    public void AClientThatListsTheDraftOrderAmongActiveMedicationsDoesNotDoubleIt()
    {
        var context = Build(Request(n =>
        {
            var draft = n["context"]!["draftOrders"]!["entry"]![0]!.DeepClone();
            draft["resource"]!["status"] = "active";
            n["prefetch"]!["medications"]!["entry"]!.AsArray().Add(draft);
        }));

        Assert.Single(context.Medications, m => m.RxNormCodes.Contains("311725"));
    }

    [Fact]
    public void ConditionCodesAreTheirNormalisedKeysOnEveryCallWhetherTheirSystemsKeysAreRememberedOrNot()
    {
        const string icd10Cm = "http://hl7.org/fhir/sid/icd-10-cm";
        const string snomed = "http://snomed.info/sct";
        const string icd10 = "http://hl7.org/fhir/sid/icd-10"; // not remembered: no condition group holds its codes
        // Two codes of each remembered system, one written as another's key would be without the system's length
        // ("icd-10" + "-cmf32.a" reads as "icd-10-cm" + "f32.a"), and one ICD-10-CM code written two ways.
        (string System, string Code)[] codings =
            [(icd10Cm, "f32.a"), (icd10Cm, "I10"), (icd10, "-cmf32.a"), (snomed, "13645005"), (snomed, "44054006"), (icd10Cm, "F32.A")];
        var request = Request(n =>
        {
            var coding = n["prefetch"]!["conditions"]!["entry"]![0]!["resource"]!["code"]!["coding"]!.AsArray();
            coding.Clear();
            foreach (var (system, code) in codings) coding.Add(new JsonObject { ["system"] = system, ["code"] = code });
        });

        // The second and third calls find the keys the first one remembered.
        for (var call = 0; call < 3; call++)
        {
            Assert.Equal(
                codings.Select(c => ConditionGroup.Key(c.System, c.Code)).Distinct().Order(StringComparer.Ordinal),
                Build(request).ConditionCodes.Order(StringComparer.Ordinal));
        }

        Assert.Equal(
            [icd10Cm + "|F32A", icd10Cm + "|I10", icd10 + "|-cmf32.a", snomed + "|13645005", snomed + "|44054006"],
            Build(request).ConditionCodes.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void AMedicationIsNamedByItsFirstNameAndRecognisedByEachOfItsNamesOnce()
    {
        var context = Build(Request(n =>
        {
            var active = n["prefetch"]!["medications"]!["entry"]![0]!["resource"]!["medicationCodeableConcept"]!;
            active["coding"]!.AsArray().Add(JsonNode.Parse("""{"system":"urn:oid:1.2.840.114350.1.13.1","code":"KLON05","display":"Klonopin 0.5 mg tab"}"""));
        }));

        // The order's text and its coding's display are the same words: one name.
        Assert.Equal(("mirtazapine 15 MG Oral Tablet", "mirtazapine 15 MG Oral Tablet"), (context.Medications[0].Display, context.Medications[0].Text));
        // The same again, then another name: each once, in order.
        Assert.Equal(("clonazepam 0.5 MG Oral Tablet", "clonazepam 0.5 MG Oral Tablet | Klonopin 0.5 mg tab"),
            (context.Medications[1].Display, context.Medications[1].Text));
    }

    [Fact]
    public void RxNormCodeIsFoundAfterALocalCodeAndInAContainedMedication()
    {
        var context = Build(Request(n =>
        {
            var active = n["prefetch"]!["medications"]!["entry"]![0]!["resource"]!.AsObject();
            active.Remove("medicationCodeableConcept");
            active["contained"] = JsonNode.Parse("""
                [{"resourceType":"Medication","id":"med1","code":{"coding":[
                  {"system":"urn:oid:1.2.840.114350.1.13.1","code":"KLON05"},
                  {"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"206157"}]}}]
                """);
            active["medicationReference"] = new JsonObject { ["reference"] = "#med1" };
        }));

        Assert.Contains(context.Medications, m => !m.IsNew && m.RxNormCodes.SequenceEqual(["206157"]));
    }

    [Theory]
    [InlineData("patient")]
    [InlineData("medications")]
    public void AbsentOrFailedRequiredPrefetchIsMissingData(string key)
    {
        var absent = Request(n => n["prefetch"]!.AsObject().Remove(key));
        var failed = Request(n => n["prefetch"]![key] = JsonNode.Parse("""{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception"}]}"""));

        Assert.Equal([key], Assert.Throws<MissingPatientDataException>(() => Build(absent)).PrefetchKeys);
        Assert.Equal([key], Assert.Throws<MissingPatientDataException>(() => Build(failed)).PrefetchKeys);
    }

    [Fact]
    public void NullPrefetchMeansNoMedications()
    {
        var context = Build(Request(n => n["prefetch"]!["medications"] = null));

        Assert.All(context.Medications, m => Assert.True(m.IsNew));
    }

    [Fact]
    public void MedicationReferenceResolvesToAMedicationInTheDraftBundleWithItsIngredients()
    {
        var context = Build(Request(n =>
        {
            var draft = n["context"]!["draftOrders"]!.AsObject();
            var order = draft["entry"]![0]!["resource"]!.AsObject();
            order.Remove("medicationCodeableConcept");
            order["medicationReference"] = new JsonObject { ["reference"] = "Medication/combo" };
            // A combination product known only by its ingredients.
            draft["entry"]!.AsArray().Add(JsonNode.Parse("""
                {"resource":{"resourceType":"Medication","id":"combo","code":{"text":"House combination capsule"},
                 "ingredient":[{"itemCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"15996"}]}},
                               {"itemCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"704"}]}}]}}
                """));
        }));

        var ordered = Assert.Single(context.Medications, m => m.IsNew);
        Assert.Equal(["15996", "704"], ordered.RxNormCodes.Order());
        Assert.Null(ordered.UnresolvedReference);
    }

    [Fact]
    public void AReferenceToAMedicationNobodyProvidedIsUnknownNotHarmless()
    {
        var context = Build(Request(n =>
        {
            var order = n["context"]!["draftOrders"]!["entry"]![0]!["resource"]!.AsObject();
            order.Remove("medicationCodeableConcept");
            order["medicationReference"] = new JsonObject { ["reference"] = "Medication/elsewhere" };
        }));

        Assert.Equal("Medication/elsewhere", Assert.Single(context.Medications, m => m.IsNew).UnresolvedReference);
    }

    [Theory]
    [InlineData("active", MedicationStatus.Current)]
    [InlineData("intended", MedicationStatus.Current)]
    [InlineData("completed", MedicationStatus.Stopped)]
    public void MedicationStatementsCountAsCurrentOrStopped(string status, MedicationStatus expected)
    {
        var context = Build(Request(n => n["prefetch"]!["medicationStatements"] = JsonNode.Parse("""
            {"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"MedicationStatement","id":"ms1",
             "status":"STATUS","subject":{"reference":"Patient/elderly-1"},"effectivePeriod":{"start":"2026-01-01","end":"2026-11-20"},
             "medicationCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"8123"}]}}}]}
            """.Replace("STATUS", status, StringComparison.Ordinal))));

        var statement = Assert.Single(context.Medications, m => m.ResourceId == "ms1");
        Assert.Equal(expected, statement.Status);
        if (expected == MedicationStatus.Stopped) Assert.Equal(new DateOnly(2026, 11, 20), statement.StoppedOn);
    }

    [Fact]
    public void MedicationReferenceResolvesToAMedicationInThePrefetchBundle()
    {
        var context = Build(Request(n =>
        {
            var bundle = n["prefetch"]!["medications"]!;
            var active = bundle["entry"]![0]!["resource"]!.AsObject();
            active.Remove("medicationCodeableConcept");
            active["medicationReference"] = new JsonObject { ["reference"] = "Medication/klon", ["display"] = "Klonopin" };
            bundle["entry"]!.AsArray().Add(JsonNode.Parse("""
                {"resource":{"resourceType":"Medication","id":"klon","code":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"206157"}]}}}
                """));
        }));

        Assert.Contains(context.Medications, m => m.Status == MedicationStatus.Current && m.RxNormCodes.SequenceEqual(["206157"]));
    }

    [Theory]
    [InlineData("on-hold", "order", true)]
    [InlineData("active", "plan", true)]
    [InlineData("active", "proposal", false)]
    [InlineData("draft", "order", false)]
    [InlineData("unknown", "order", false)]
    public void CurrentMeansActiveOrOnHoldOrdersAndPlans(string status, string intent, bool current)
    {
        var context = Build(Request(n =>
        {
            n["prefetch"]!["medications"]!["entry"]![0]!["resource"]!["status"] = status;
            n["prefetch"]!["medications"]!["entry"]![0]!["resource"]!["intent"] = intent;
        }));

        Assert.Equal(current, context.Medications.Any(m => m.Status == MedicationStatus.Current));
    }
}
