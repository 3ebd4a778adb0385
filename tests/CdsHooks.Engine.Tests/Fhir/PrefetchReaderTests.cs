using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using CdsHooks.Engine.Fhir;
using CdsHooks.Engine.Hooks;
using CdsHooks.Engine.Patients;
using CdsHooks.Tests;
using FsCheck;
using FsCheck.Fluent;

namespace CdsHooks.Engine.Tests.Fhir;

/// <summary>The prefetch reader reads only what the engine uses; Firely's whole parse is its reference. Whatever Firely
/// accepts, the reader gives the same patient's context, or refuses with a location a value our policy refuses and
/// Firely lets through (a number where FHIR has a string). It never sees a different patient.</summary>
public class PrefetchReaderTests
{
    private static readonly DateOnly Today = new(2026, 11, 26);
    private static readonly HookService OrderSign = HookCatalog.Find("medication-safety-order-sign")!;

    /// <summary>The index sample with every element the engine reads somewhere in its prefetch: a contained
    /// Medication, a Medication entry with ingredients, a statement with a period, as-needed and maximum doses, a dose
    /// range, bounds, dispense validity, last-updated, a stopped order, a refuted condition, a paged Bundle.</summary>
    private static JsonNode Rich()
    {
        var request = Repository.SampleNode("order-sign-mirtazapine-80-year-old-on-clonazepam.json");
        var prefetch = request["prefetch"]!;
        var medications = prefetch["medications"]!;
        medications["link"] = new JsonArray(
            new JsonObject { ["relation"] = "self", ["url"] = "https://ehr.example.org/fhir/MedicationRequest?patient=elderly-1" },
            new JsonObject { ["relation"] = "next", ["url"] = "https://ehr.example.org/fhir/MedicationRequest?patient=elderly-1&page=2" });
        var entries = medications["entry"]!.AsArray();
        entries.Add(Node("""
            {"resource": {"resourceType": "MedicationRequest", "id": "combo-1", "status": "on-hold", "intent": "order",
              "meta": {"lastUpdated": "2026-11-01T10:00:00Z"},
              "contained": [{"resourceType": "Medication", "id": "med1", "code": {"text": "hydrocodone and acetaminophen"},
                "ingredient": [{"itemCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "5489"}]}},
                               {"itemReference": {"reference": "Substance/x", "display": "filler"}}]}],
              "medicationReference": {"reference": "#med1", "display": "Norco"},
              "dosageInstruction": [{"asNeededBoolean": true, "maxDosePerPeriod": {"numerator": {"value": 4, "unit": "tablet"}, "denominator": {"value": 1, "code": "d"}}},
                                    {"timing": {"repeat": {"frequency": 1, "frequencyMax": 2, "period": 12, "periodUnit": "h", "boundsPeriod": {"end": "2026-12-01"}}},
                                     "doseAndRate": [{"doseRange": {"low": {"value": 1, "unit": "tablet"}, "high": {"value": 2, "unit": "tablet"}}}]}],
              "dispenseRequest": {"validityPeriod": {"end": "2027-01-01"}}}}
            """));
        entries.Add(Node("""
            {"resource": {"resourceType": "MedicationRequest", "id": "ref-1", "status": "active", "intent": "order",
              "medicationReference": {"reference": "Medication/tramadol-product"},
              "dosageInstruction": [{"text": "50 mg every 6 hours", "timing": {"repeat": {"frequency": 1, "period": 6, "periodUnit": "h", "when": ["MORN", null], "_when": [null, {"extension": [{"url": "http://example.org/time", "valueString": "noon"}]}]}},
                                     "asNeededCodeableConcept": {"text": "pain"}, "doseAndRate": [{"doseQuantity": {"value": 50, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}}]}]}}
            """));
        entries.Add(Node("""
            {"resource": {"resourceType": "Medication", "id": "tramadol-product", "code": {"coding": [{"system": "urn:oid:2.16.840.1.113883.6.88", "code": "10689", "display": "tramadol"}]}}}
            """));
        entries.Add(Node("""{"resource": {"resourceType": "Provenance", "id": "p1"}}"""));
        entries.Add(Node("""{"fullUrl": "urn:uuid:0c3b8f4e-6d0f-4a55-9a8e-2f1d3c4b5a69"}"""));

        prefetch["medicationStatements"] = Node("""
            {"resourceType": "Bundle", "type": "searchset", "entry": [
              {"resource": {"resourceType": "MedicationStatement", "id": "st-1", "status": "completed",
                "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "6011"}], "text": "isocarboxazid"},
                "effectivePeriod": {"start": "2026-10-01", "end": "2026-11-20"}}},
              {"resource": {"resourceType": "MedicationStatement", "id": "st-2", "status": "active",
                "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "2598"}]},
                "effectiveDateTime": "2026-11-01T08:00:00+01:00", "dosage": [{"text": "as directed"}]}}]}
            """);
        prefetch["stoppedMedications"] = Node("""
            {"resourceType": "Bundle", "type": "searchset", "entry": [
              {"resource": {"resourceType": "MedicationRequest", "id": "old-1", "status": "stopped", "intent": "order",
                "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "8123"}]},
                "dosageInstruction": [{"timing": {"repeat": {"boundsPeriod": {"end": "2026-11-22T12:00:00Z"}}}}]}},
              {"resource": {"resourceType": "MedicationRequest", "id": "old-2", "status": "completed", "intent": "proposal",
                "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "8123"}]}}}]}
            """);
        prefetch["conditions"]!["entry"]!.AsArray().Add(Node("""
            {"resource": {"resourceType": "Condition", "id": "refuted-1",
              "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
              "verificationStatus": {"coding": [{"code": "refuted"}]},
              "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "G47.33"}]}}}
            """));
        return request;
    }

    private static JsonNode Node(string json) => JsonNode.Parse(json)!;

    /// <summary>The context from one reader, as text: a refusal lists its locations, a missing key its name.</summary>
    private static string ContextFrom(JsonNode request, bool whole) => ContextFrom(request.ToJsonString(), whole);

    private static string ContextFrom(string request, bool whole)
    {
        using var document = JsonDocument.Parse(request);
        try
        {
            var hook = HookRequestReader.Read(document.RootElement, OrderSign, whole);
            var data = PatientData.FromRequest(hook);
            var context = PatientContextBuilder.Build(hook, data, PatientContextBuilder.NewMedications(hook, data.Medications), Today);
            // The next links too: the service follows them for the rest of a paged prefetch.
            var links = hook.Prefetch.Select(p => (p.Key, Bundle: p.Value.Resource as BundleRecord)).Where(p => p.Bundle is not null)
                .Select(p => $"{p.Key} next {p.Bundle!.Next}").Order(StringComparer.Ordinal);
            return Describe(context) + "\n" + string.Join('\n', links);
        }
        catch (InvalidHookRequestException e)
        {
            return "refused: " + string.Join(", ", e.Issues.Select(i => i.Location));
        }
        catch (MissingPatientDataException e)
        {
            return "missing: " + string.Join(", ", e.PrefetchKeys);
        }
    }

    private static string Describe(PatientContext context) => string.Join('\n',
    [
        $"age {context.Age?.ToString(CultureInfo.InvariantCulture) ?? "unknown"}",
        $"conditions {string.Join(' ', context.ConditionCodes.Order(StringComparer.Ordinal))}",
        .. context.Medications.Select(m =>
            $"{m.Status} {m.ResourceId} [{string.Join(' ', m.RxNormCodes)}] '{m.Display}' '{m.Text}' dose '{m.Dose}' " +
            $"daily {m.DailyDose?.Amount.ToString(CultureInfo.InvariantCulture)} {m.DailyDose?.Unit} stopped {m.StoppedOn} unresolved {m.UnresolvedReference}"),
    ]);

    public static TheoryData<string> Samples() => [.. Directory.GetFiles(Path.Combine(Repository.Root, "samples", "requests"))
        .Select(Path.GetFileName).Order().OfType<string>().Where(f => f.StartsWith("order-sign", StringComparison.Ordinal))];

    [Theory]
    [MemberData(nameof(Samples))]
    public void EverySampleGivesTheSameContextAsFirelysWholeParse(string sample)
    {
        var request = Repository.SampleNode(sample);
        var expected = ContextFrom(request, whole: true);

        Assert.StartsWith("age ", expected, StringComparison.Ordinal);
        Assert.Equal(expected, ContextFrom(request, whole: false));
    }

    [Fact]
    public void EveryElementTheEngineReadsGivesTheSameContextAsFirelysWholeParse()
    {
        var expected = ContextFrom(Rich(), whole: true);

        // Not a vacuous comparison: the rich request reaches the elements it was built for.
        Assert.Contains("Current combo-1 [5489] 'hydrocodone and acetaminophen' 'hydrocodone and acetaminophen | Norco'", expected, StringComparison.Ordinal);
        Assert.Contains("daily 12 tablet", expected, StringComparison.Ordinal);
        Assert.Contains("[10689] 'tramadol'", expected, StringComparison.Ordinal);
        Assert.Contains("Stopped st-1 [6011]", expected, StringComparison.Ordinal);
        Assert.Contains("stopped 11/22/2026", expected, StringComparison.Ordinal);
        Assert.DoesNotContain("G47.33", expected, StringComparison.Ordinal);
        Assert.Equal(expected, ContextFrom(Rich(), whole: false));
    }

    private static readonly JsonNode?[] Replacements =
    [
        null, JsonValue.Create(0), JsonValue.Create(-1), JsonValue.Create(2.5), JsonValue.Create(1e308), JsonValue.Create(true),
        JsonValue.Create(""), JsonValue.Create(" x"), JsonValue.Create("x"), JsonValue.Create("d"), JsonValue.Create("active"),
        JsonValue.Create("1946-02-30"), JsonValue.Create("2026-11"), JsonValue.Create("2026-11-20T10:00:00Z"), JsonValue.Create("Medication/x"),
        JsonValue.Create("#med1"), new JsonArray(), new JsonArray(JsonValue.Create(1), null), new JsonArray(new JsonObject()), new JsonObject(),
        new JsonObject { ["resourceType"] = "Patient" }, new JsonObject { ["resourceType"] = "Nonsense" },
        new JsonObject { ["value"] = 0, ["unit"] = "mg" }, new JsonObject { ["coding"] = new JsonArray(new JsonObject { ["code"] = "x" }) },
    ];

    private static readonly Lazy<string> RichContext = new(() => ContextFrom(Rich(), whole: false));

    private static readonly List<string> PrefetchPaths = [.. Repository.PathsBelow(Rich()["prefetch"], "/prefetch"), .. Repository.PathsBelow(Rich()["context"], "/context")];

    private static JsonNode Mutate(int pathIndex, int replacementIndex, int action)
    {
        var request = Rich();
        var (parent, last) = Repository.ParentOf(request, PrefetchPaths[pathIndex]);
        var replacement = Replacements[replacementIndex]?.DeepClone();
        if (parent is JsonArray array)
        {
            var index = int.Parse(last, CultureInfo.InvariantCulture);
            if (action == 0) array.RemoveAt(index);
            else array[index] = replacement;
        }
        else if (action == 0)
        {
            parent.AsObject().Remove(last);
        }
        else if (action == 1 && parent is JsonObject o)
        {
            o[last + "Extra"] = replacement; // an element FHIR does not define, next to one it does
        }
        else if (action == 4 && parent is JsonObject named && last.Length > 0 && !last.StartsWith('_'))
        {
            var value = named[last];
            named.Remove(last);
            named[char.ToUpperInvariant(last[0]) + last[1..]] = value?.DeepClone(); // "Status": Firely reads it as "status"
        }
        else
        {
            parent[last] = replacement;
        }

        return request;
    }

    [FsCheck.Xunit.Property(MaxTest = 1500, QuietOnSuccess = true)]
    public Property WhateverFirelyAcceptsTheReaderAcceptsWithTheSameContext()
    {
        var mutations =
            from path in Gen.Choose(0, PrefetchPaths.Count - 1)
            from replacement in Gen.Choose(0, Replacements.Length - 1)
            from action in Gen.Choose(0, 4)
            select (path, replacement, action);

        return Prop.ForAll(mutations.ToArbitrary(), m =>
        {
            var request = Mutate(m.path, m.replacement, m.action);
            var whole = ContextFrom(request, whole: true);
            var fast = ContextFrom(request, whole: false);
            var label = $"{PrefetchPaths[m.path]} <- {(m.action == 0 ? "(removed)" : m.action == 4 ? "(re-cased)" : Replacements[m.replacement]?.ToJsonString() ?? "null")} ({m.action})";
            // Firely refused: the reader refuses too, or accepts because the problem is in an element it does not read,
            // and then it sees the patient of the request before the mutation.
            if (whole.StartsWith("refused", StringComparison.Ordinal))
            {
                return (fast.StartsWith("refused", StringComparison.Ordinal) || fast == RichContext.Value).Label($"{label}\nFirely: {whole}\nreader:\n{fast}");
            }

            // Firely accepted: the reader sees the same patient, or refuses a value it reads that our policy refuses
            // and Firely lets through (a number where FHIR has a string, a code with spaces). Never a different patient.
            return (whole == fast || fast.StartsWith("refused: ", StringComparison.Ordinal)).Label($"{label}\nFirely:\n{whole}\nreader:\n{fast}");
        });
    }

    [Theory]
    [InlineData("/prefetch/patient/birthDate", "5", "prefetch.patient.birthDate")]
    [InlineData("/prefetch/patient/birthDate", "\"yesterday\"", "prefetch.patient.birthDate")]
    [InlineData("/prefetch/medications/entry/0/resource/dosageInstruction/0/doseAndRate/0/doseQuantity/value", "\"15\"",
        "prefetch.medications.entry[0].resource.dosageInstruction[0].doseAndRate[0].doseQuantity.value")]
    [InlineData("/prefetch/medications/entry/0/resource/medicationCodeableConcept/coding", "{}",
        "prefetch.medications.entry[0].resource.medicationCodeableConcept.coding")]
    [InlineData("/prefetch/medications/entry/0/resource/status", "null", "prefetch.medications.entry[0].resource.status")]
    [InlineData("/prefetch/medications/entry/0/resource", "{\"resourceType\": \"Nonsense\"}", "prefetch.medications.entry[0].resource.resourceType")]
    // Two types for one choice element: refused, not one read and the other ignored (Firely refuses them too).
    [InlineData("/prefetch/medications/entry/0/resource/medicationReference", "{\"reference\": \"#warfarin\"}",
        "prefetch.medications.entry[0].resource.medicationCodeableConcept")]
    [InlineData("/prefetch/medications/entry/0/resource/dosageInstruction/0/doseAndRate/0/doseRange", "{\"high\": {\"value\": 2}}",
        "prefetch.medications.entry[0].resource.dosageInstruction[0].doseAndRate[0].doseQuantity")]
    [InlineData("/prefetch/medications/entry/0/resource/dosageInstruction/0/asNeededCodeableConcept", "{\"text\": \"pain\"}", null)]
    // A choice element without its type: skipping it would hide the drug.
    [InlineData("/prefetch/medications/entry/0/resource/medication", "{\"text\": \"warfarin\"}", "prefetch.medications.entry[0].resource.medication")]
    [InlineData("/context/draftOrders/entry/0/resource/medication", "{\"text\": \"warfarin\"}", "context.draftOrders.entry[0].resource.medication")]
    public void AWrongValueInAnElementTheEngineReadsIsRefusedWithItsLocation(string path, string json, string? location)
    {
        var request = Repository.SampleNode("order-sign-mirtazapine-80-year-old-on-clonazepam.json");
        Set(request, path, JsonNode.Parse(json));
        if (location is null)
        {
            // asNeededBoolean beside asNeededCodeableConcept
            Set(request, "/prefetch/medications/entry/0/resource/dosageInstruction/0/asNeededBoolean", JsonValue.Create(true));
            location = "prefetch.medications.entry[0].resource.dosageInstruction[0].asNeededBoolean";
        }

        Assert.Equal("refused: " + location, ContextFrom(request, whole: false));
    }

    [Fact]
    public void ALiteralAlreadyJudgedIsJudgedTheSameAgain()
    {
        // Codes, URIs, ids and dates are remembered once checked (PrefetchReader.Remembered): a second request with the
        // same invalid date is refused as the first was, and the same valid codes give the same patient.
        var request = Repository.SampleNode("order-sign-mirtazapine-80-year-old-on-clonazepam.json");
        Set(request, "/prefetch/patient/birthDate", JsonValue.Create("1944-13-45"));

        Assert.Equal("refused: prefetch.patient.birthDate", ContextFrom(request, whole: false));
        Assert.Equal("refused: prefetch.patient.birthDate", ContextFrom(request, whole: false));
        Assert.Equal(RichContext.Value, ContextFrom(Rich(), whole: false));

        // And the remembered string itself is what a second read returns: no new string for a code seen before.
        var first = ReadStatus("""{"resourceType": "MedicationRequest", "status": "entered-in-error"}""");
        var second = ReadStatus("""{"resourceType": "MedicationRequest", "status": "entered-in-error"}""");
        Assert.Equal("entered-in-error", second);
        Assert.Same(first, second);
    }

    [Fact]
    public void LiteralsPastTheRememberedBoundAreStillJudged()
    {
        // A site sees a new patient id on every call: past the 4,096 answers remembered for each kind of literal, every
        // id is checked afresh (and the bound is counted without taking the map's locks).
        for (var i = 0; i < 5_000; i++) Assert.Empty(PatientIssues($"bound-{i}"));

        Assert.Empty(PatientIssues("bound-after-5000"));
        Assert.Single(PatientIssues("not an id: spaces and a colon"));
        Assert.Single(PatientIssues("not an id: spaces and a colon")); // the same answer again, remembered or not
    }

    private static List<RequestIssue> PatientIssues(string id)
    {
        var issues = new List<RequestIssue>();
        var json = System.Text.Json.JsonSerializer.Serialize(new { resourceType = "Patient", id });
        PrefetchReader.ReadResource(System.Text.Encoding.UTF8.GetBytes(json), "x", issues);
        return issues;
    }

    private static string? ReadStatus(string json)
    {
        var issues = new List<RequestIssue>();
        var request = (RequestRecord)PrefetchReader.ReadResource(System.Text.Encoding.UTF8.GetBytes(json), "x", issues)!;
        Assert.Empty(issues);
        return request.Status;
    }

    [Fact]
    public void MembersInAnyOrderGiveTheSameContext()
    {
        // Every object reversed: "resourceType" last in each resource, "_when" before "when", the context after prefetch.
        var reversed = Hooks.HookRequestReaderTests.Reversed(Rich());

        Assert.Equal(ContextFrom(reversed, whole: true), ContextFrom(reversed, whole: false));
        Assert.Equal(RichContext.Value, ContextFrom(reversed, whole: false));
    }

    [Fact]
    public void EscapedPropertyNamesAreReadAsTheNamesTheySpell()
    {
        // JSON allows "birth\u0044ate" for "birthDate"; Firely reads it so, and the reader must not skip it.
        var json = Rich().ToJsonString();
        var escaped = json.Replace("\"birthDate\"", "\"birth\\u0044ate\"", StringComparison.Ordinal)
            .Replace("\"dosageInstruction\"", "\"dos\\u0061geInstruction\"", StringComparison.Ordinal)
            .Replace("\"medicationCodeableConcept\"", "\"medication\\u0043odeableConcept\"", StringComparison.Ordinal);
        Assert.NotEqual(json, escaped);

        var expected = ContextFrom(escaped, whole: true);

        Assert.Equal(RichContext.Value, expected);
        Assert.Equal(expected, ContextFrom(escaped, whole: false));
    }

    [Fact]
    public void AWrongValueInAnElementTheEngineDoesNotReadIsSkipped()
    {
        var request = Repository.SampleNode("order-sign-mirtazapine-80-year-old-on-clonazepam.json");
        var expected = ContextFrom(request, whole: false);
        Set(request, "/prefetch/medications/entry/0/resource/authoredOn", JsonValue.Create(5));
        Set(request, "/prefetch/patient/name", JsonValue.Create("not an array"));

        Assert.StartsWith("refused", ContextFrom(request, whole: true), StringComparison.Ordinal);
        Assert.Equal(expected, ContextFrom(request, whole: false));
    }

    [Fact]
    public void ManyItemsOfARepeatedElementCostLinearMemory()
    {
        // A repeated element (codings, dosages, doses, ingredients) is read into an array: grown one item at a time,
        // 20,000 codings would copy 200 million of them (about 4.8 GB); doubled, a few megabytes.
        const int count = 20_000;
        var codings = string.Join(',', Enumerable.Repeat("""{"code":"x"}""", count));
        var json = System.Text.Encoding.UTF8.GetBytes($$$"""{"resourceType":"Condition","id":"c1","code":{"coding":[{{{codings}}}]}}""");
        var issues = new List<RequestIssue>();

        var before = GC.GetAllocatedBytesForCurrentThread();
        var condition = (ConditionRecord)PrefetchReader.ReadResource(json, "x", issues)!;
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Empty(issues);
        Assert.Equal(count, condition.Code!.Codings.Length);
        Assert.All(condition.Code.Codings, c => Assert.Equal("x", c.Code));
        Assert.InRange(allocated, 0, 50_000_000);
    }

    private static void Set(JsonNode request, string path, JsonNode? value)
    {
        var (parent, last) = Repository.ParentOf(request, path);
        if (parent is JsonArray array) array[int.Parse(last, CultureInfo.InvariantCulture)] = value;
        else parent[last] = value;
    }
}
