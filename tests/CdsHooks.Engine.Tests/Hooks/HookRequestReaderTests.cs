using System.Text.Json;
using System.Text.Json.Nodes;
using CdsHooks.Engine.Fhir;
using CdsHooks.Engine.Hooks;
using CdsHooks.Tests;

namespace CdsHooks.Engine.Tests.Hooks;

public class HookRequestReaderTests
{
    private static readonly HookService OrderSign = HookCatalog.Find("medication-safety-order-sign")!;
    private static readonly HookService OrderSelect = HookCatalog.Find("medication-safety-order-select")!;

    private static JsonObject IndexRequest() =>
        Repository.SampleNode("order-sign-mirtazapine-80-year-old-on-clonazepam.json").AsObject();

    private static HookRequest Read(JsonNode node, HookService? service = null)
    {
        using var document = JsonDocument.Parse(node.ToJsonString());
        return HookRequestReader.Read(document.RootElement, service ?? OrderSign);
    }

    private static InvalidHookRequestException Invalid(JsonNode node, HookService? service = null) =>
        Assert.Throws<InvalidHookRequestException>(() => Read(node, service));

    [Fact]
    public void IndexRequestParsesOrdersAndPrefetch()
    {
        var request = Read(IndexRequest());

        Assert.Equal("elderly-1", request.PatientId);
        var order = Assert.IsType<RequestRecord>(Assert.Single(request.NewOrders));
        Assert.Equal("mirtazapine-draft", order.Id);
        Assert.Equal(PrefetchState.Data, request.PrefetchFor(PrefetchKeys.Patient).State);
        Assert.IsType<BundleRecord>(request.PrefetchFor(PrefetchKeys.Medications).Resource);
    }

    [Fact]
    public void UnknownElementsAreToleratedLikeTheStu3DoseQuantityInTheSpecExample()
    {
        var node = IndexRequest();
        var dosage = node["context"]!["draftOrders"]!["entry"]![0]!["resource"]!["dosageInstruction"]![0]!.AsObject();
        dosage["doseQuantity"] = new JsonObject { ["value"] = 15, ["unit"] = "mg" };
        node["context"]!["draftOrders"]!["entry"]![0]!["resource"]!.AsObject()["vendorExtensionField"] = "x";

        var request = Read(node);

        Assert.Single(request.NewOrders);
    }

    [Fact]
    public void WrongTypedFhirElementIsRefusedWithItsLocationButNotItsValue()
    {
        var node = IndexRequest();
        node["prefetch"]!["patient"]!["birthDate"] = "Canary-Not-A-Date";

        var error = Invalid(node);

        var issue = Assert.Single(error.Issues);
        Assert.Equal("prefetch.patient.birthDate", issue.Location);
        Assert.DoesNotContain("Canary", issue.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownResourceTypeIsRefused()
    {
        var node = IndexRequest();
        node["context"]!["draftOrders"]!["entry"]![0]!["resource"]!["resourceType"] = "MedicationOrder";

        var error = Invalid(node);

        Assert.Contains(error.Issues, i => i.Location.StartsWith("context.draftOrders", StringComparison.Ordinal));
    }

    [Fact]
    public void HookThatTheServiceDoesNotServeIsRefused()
    {
        var node = IndexRequest();
        node["hook"] = "patient-view";

        var error = Invalid(node);

        Assert.Contains(error.Issues, i => i is { Location: "hook", Code: "unsupported-hook" });
    }

    [Theory]
    [InlineData("hookInstance")]
    [InlineData("context")]
    public void MissingTopLevelFieldIsRefused(string field)
    {
        var node = IndexRequest();
        node.Remove(field);

        var error = Invalid(node);

        Assert.Contains(error.Issues, i => i.Location == field);
    }

    [Theory]
    [InlineData("userId")]
    [InlineData("patientId")]
    [InlineData("draftOrders")]
    public void MissingRequiredContextFieldIsRefused(string field)
    {
        var node = IndexRequest();
        node["context"]!.AsObject().Remove(field);

        var error = Invalid(node);

        Assert.Contains(error.Issues, i => i.Location == $"context.{field}" && i.Code == "required");
    }

    [Fact]
    public void PatientIdMayBeAReference()
    {
        var node = IndexRequest();
        node["context"]!["patientId"] = "Patient/elderly-1";

        Assert.Equal("elderly-1", Read(node).PatientId);
    }

    [Fact]
    public void OrderSelectTreatsOnlyTheSelectionsAsNew()
    {
        var node = Repository.SampleNode("order-select-mirtazapine-and-clonazepam-both-new.json");

        var request = Read(node, OrderSelect);

        Assert.Equal("mirtazapine-draft", Assert.Single(request.NewOrders).Id);
        Assert.Equal("clonazepam-draft", Assert.Single(request.OtherDraftOrders).Id);
    }

    [Fact]
    public void SelectionMissingFromDraftOrdersIsRefused()
    {
        var node = Repository.SampleNode("order-select-mirtazapine-and-clonazepam-both-new.json");
        node["context"]!["selections"] = new JsonArray("MedicationRequest/not-there");

        var error = Invalid(node, OrderSelect);

        Assert.Contains(error.Issues, i => i is { Location: "context.selections[0]", Code: "not-found" });
    }

    [Fact]
    public void PrefetchStatesAreTold()
    {
        var node = IndexRequest();
        node["prefetch"]!["medications"] = null;
        node["prefetch"]!["conditions"] = JsonNode.Parse("""{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception"}]}""");
        node["prefetch"]!.AsObject().Remove("patient");

        var request = Read(node);

        Assert.Equal(PrefetchState.Absent, request.PrefetchFor(PrefetchKeys.Patient).State);
        Assert.Equal(PrefetchState.NoData, request.PrefetchFor(PrefetchKeys.Medications).State);
        Assert.Equal(PrefetchState.Failed, request.PrefetchFor(PrefetchKeys.Conditions).State);
    }

    [Fact]
    public void MedicationPrescribeAcceptsAnArrayOfResources()
    {
        var node = Repository.SampleNode("medication-prescribe-mirtazapine-80-year-old-on-clonazepam.json");
        var resource = node["context"]!["medications"]!["entry"]![0]!["resource"]!.DeepClone();
        node["context"]!["medications"] = new JsonArray(resource);

        var request = Read(node, HookCatalog.Find("medication-safety-medication-prescribe"));

        Assert.Equal("mirtazapine-draft", Assert.Single(request.NewOrders).Id);
    }

    // ---- One pass over the text: members in any order, duplicates anywhere.

    private static HookRequest ReadText(string json, HookService? service = null) =>
        HookRequestReader.Read(System.Text.Encoding.UTF8.GetBytes(json), service ?? OrderSign);

    /// <summary>The same JSON with every object's members in reverse order: "resourceType" last, the context after
    /// prefetch, the selections before the orders they name.</summary>
    internal static JsonNode Reversed(JsonNode node) => node switch
    {
        JsonObject o => new JsonObject(o.Reverse().Select(p => KeyValuePair.Create(p.Key, p.Value is null ? null : Reversed(p.Value)))),
        JsonArray a => new JsonArray([.. a.Select(i => i is null ? null : Reversed(i))]),
        _ => node.DeepClone(),
    };

    [Fact]
    public void TheSameTextReadAgainIsTheSameStringAndOtherTextIsItsOwn()
    {
        // In the sample, the medication's text and its coding's display are the same words. Three codings more, each read
        // as what it says: a display that differs in its last letter only, the same words escaped, and the same words
        // as a code (which the reader checks as a code, not as free text).
        var node = IndexRequest();
        var concept = node["prefetch"]!["medications"]!["entry"]![0]!["resource"]!["medicationCodeableConcept"]!;
        concept["coding"]!.AsArray().Add(new JsonObject { ["system"] = "urn:oid:1.2.3", ["code"] = "X1", ["display"] = "clonazepam 0.5 MG Oral Tableu" });
        concept["coding"]!.AsArray().Add(new JsonObject { ["system"] = "urn:oid:1.2.3", ["code"] = "X2", ["display"] = "ESCAPED" });
        concept["coding"]!.AsArray().Add(new JsonObject { ["system"] = "urn:oid:1.2.3", ["code"] = "clonazepam 0.5 MG Oral Tablet" });
        var json = node.ToJsonString().Replace("\"ESCAPED\"", "\"\\u0063lonazepam 0.5 MG Oral Tablet\"", StringComparison.Ordinal);

        var bundle = Assert.IsType<BundleRecord>(ReadText(json).PrefetchFor(PrefetchKeys.Medications).Resource);
        var read = Assert.IsType<RequestRecord>(bundle.Entries[0]).Medication.Concept!;

        Assert.Equal("clonazepam 0.5 MG Oral Tablet", read.Text);
        Assert.Same(read.Text, read.Codings[0].Display);
        Assert.Equal(["clonazepam 0.5 MG Oral Tablet", "clonazepam 0.5 MG Oral Tableu", "clonazepam 0.5 MG Oral Tablet", null],
            read.Codings.Select(c => c.Display));
        Assert.Equal("clonazepam 0.5 MG Oral Tablet", read.Codings[3].Code);
    }

    [Fact]
    public void MembersMayComeInAnyOrder()
    {
        var node = Repository.SampleNode("order-select-mirtazapine-and-clonazepam-both-new.json");
        var reversed = Reversed(node).ToJsonString();
        Assert.StartsWith("{\"prefetch\"", reversed, StringComparison.Ordinal);

        var request = ReadText(reversed, OrderSelect);

        Assert.Equal("mirtazapine-draft", Assert.Single(request.NewOrders).Id);
        Assert.Equal("clonazepam-draft", Assert.Single(request.OtherDraftOrders).Id);
        Assert.Equal("1950", ((PatientRecord)request.PrefetchFor(PrefetchKeys.Patient).Resource!).BirthDate);
    }

    [Fact]
    public void APrefetchedPatientBeforeTheContextIsStillCheckedAgainstIt()
    {
        var node = Reversed(IndexRequest());
        node["prefetch"]!["patient"]!["id"] = "someone-else";

        var error = Assert.Throws<InvalidHookRequestException>(() => ReadText(node.ToJsonString()));

        Assert.Equal("prefetch.patient.id", Assert.Single(error.Issues).Location);
    }

    [Fact]
    public void ProblemsAreListedMemberByMemberWhateverTheOrderOfTheText()
    {
        var node = Reversed(IndexRequest());
        node["prefetch"]!["patient"]!["birthDate"] = "yesterday";
        node["hook"] = "patient-view";

        var error = Assert.Throws<InvalidHookRequestException>(() => ReadText(node.ToJsonString()));

        Assert.Equal(["hook", "prefetch.patient.birthDate"], error.Issues.Select(i => i.Location));
    }

    [Theory]
    // In an element no rule reads (the patient's name), where only the JSON sees it.
    [InlineData("\"birthDate\"", "\"name\": [{\"family\": \"A\", \"family\": \"B\"}], \"birthDate\"")]
    // The same name, escaped once.
    [InlineData("\"status\": \"draft\"", "\"status\": \"draft\", \"st\\u0061tus\": \"cancelled\"")]
    // In the envelope.
    [InlineData("\"hook\": \"order-sign\"", "\"hook\": \"order-sign\", \"hook\": \"order-sign\"")]
    public void ADuplicatePropertyAnywhereIsMalformed(string find, string replacement)
    {
        var json = Repository.Sample("order-sign-mirtazapine-80-year-old-on-clonazepam.json");
        var changed = ReplaceFirst(json, find, replacement);
        Assert.NotEqual(json, changed);

        Assert.ThrowsAny<JsonException>(() => ReadText(changed));
        // A document refuses it too: the pass is held to what the service refused before it.
        Assert.ThrowsAny<JsonException>(() => JsonDocument.Parse(changed, new JsonDocumentOptions { AllowDuplicateProperties = false }).Dispose());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ContainedResourcesLeaveTheNamesAfterThemChecked(bool duplicate)
    {
        // Contained resources are opened as array items: each must be closed once, or the names after them would be
        // checked against another object's (a second hookInstance accepted, a Bundle's id refused).
        var node = IndexRequest();
        var order = node["context"]!["draftOrders"]!["entry"]![0]!["resource"]!.AsObject();
        order["contained"] = JsonNode.Parse("""[{"resourceType": "Medication", "id": "m1"}, {"resourceType": "Organization", "id": "o1"}]""");
        if (!duplicate) node["context"]!["draftOrders"]!["id"] = "b1"; // after its entries
        var json = node.ToJsonString();
        if (duplicate) json = json[..^1] + ",\"hookInstance\":\"another\"}";

        if (duplicate) Assert.ThrowsAny<JsonException>(() => ReadText(json));
        else Assert.Equal(2, Assert.IsType<RequestRecord>(Assert.Single(ReadText(json).NewOrders)).Contained.Count);
    }

    [Fact]
    public void AContainedResourceWithoutATypeIsRefusedAndTheRestRead()
    {
        var node = IndexRequest();
        var order = node["context"]!["draftOrders"]!["entry"]![0]!["resource"]!.AsObject();
        order["contained"] = JsonNode.Parse("""[{"id": "m1", "code": {"text": "x"}}, {"resourceType": "Medication", "id": "m2"}]""");
        order["Status"] = "active"; // after the contained resources: still seen beside "status"

        var error = Invalid(node);

        Assert.Equal(["context.draftOrders.entry[0].resource.contained[0]", "context.draftOrders.entry[0].resource.status"], error.Issues.Select(i => i.Location));
    }

    [Fact]
    public void ManySelectionsOfManyOrdersAreMatched()
    {
        var node = Repository.SampleNode("order-select-mirtazapine-and-clonazepam-both-new.json");
        var entries = node["context"]!["draftOrders"]!["entry"]!.AsArray();
        var template = entries[0]!.DeepClone();
        for (var i = 0; i < 2000; i++)
        {
            var copy = template.DeepClone();
            copy["resource"]!["id"] = $"copy-{i}";
            entries.Add(copy);
        }

        node["context"]!["selections"] = new JsonArray([.. Enumerable.Range(0, 2000).Select(i => JsonValue.Create($"MedicationRequest/copy-{i}")), JsonValue.Create("MedicationRequest/copy-7")]);

        var request = ReadText(node.ToJsonString(), OrderSelect);

        Assert.Equal(2000, request.NewOrders.Count);
        Assert.Equal(2, request.OtherDraftOrders.Count);
    }

    [Fact]
    public void APropertyNameThatSpellsNoUnicodeTextIsMalformed()
    {
        // A lone surrogate escaped, in an element no rule reads: a document threw InvalidOperationException (a 500).
        var json = ReplaceFirst(Repository.Sample("order-sign-mirtazapine-80-year-old-on-clonazepam.json"), "\"birthDate\"", "\"extension\": {\"\\ud800\": 1}, \"birthDate\"");

        Assert.ThrowsAny<JsonException>(() => ReadText(json));
    }

    [Theory]
    [InlineData("Patient\\udfff")] // as long as "Patient" escaped (the first resource type compared in place)
    [InlineData("Medication\\udfffRequest")] // as long as "MedicationRequest", with its first letters
    [InlineData("\\ud800")]
    public void AResourceTypeThatSpellsNoUnicodeTextIsNoResourceType(string escaped)
    {
        // Compared with a known type's name, an escaped lone surrogate is unescaped, which throws InvalidOperationException
        // (a 500): the request is refused with the problem instead, as for any other name that is no FHIR type.
        var json = ReplaceFirst(Repository.Sample("order-sign-mirtazapine-80-year-old-on-clonazepam.json"), "\"resourceType\": \"Patient\"", $"\"resourceType\": \"{escaped}\"");

        var invalid = Assert.Throws<InvalidHookRequestException>(() => ReadText(json));

        Assert.Contains(invalid.Issues, issue => issue.Location == "prefetch.patient.resourceType" && issue.Message == "Not a concrete FHIR R4 resource type.");
    }

    [Fact]
    public void AResourceTypeEscapedIsReadAsTheTypeItSpells()
    {
        var json = ReplaceFirst(Repository.Sample("order-sign-mirtazapine-80-year-old-on-clonazepam.json"), "\"resourceType\": \"Patient\"", "\"resourceType\": \"Pati\\u0065nt\"");

        Assert.IsType<PatientRecord>(ReadText(json).PrefetchFor("patient").Resource);
    }

    [Theory]
    [InlineData("\"MedicationRequest\"")]
    [InlineData("[]")]
    [InlineData("null")]
    public void ABundleEntryThatIsNotAnObjectIsAnElementOfTheWrongShape(string value)
    {
        var node = IndexRequest();
        node["prefetch"]!["medications"]!["entry"]![0]!["resource"] = JsonNode.Parse(value);

        var issue = Assert.Single(Invalid(node).Issues);

        // As Firely's whole parse says it (the reference the reader is held to), not "not a resource".
        Assert.Equal(("prefetch.medications.entry[0].resource", "invalid-fhir"), (issue.Location, issue.Code));
    }

    [Fact]
    public void AnEscapedNameThatDiffersOnlyInCaseIsReadAsFirelyReadsIt()
    {
        // "St\u0061tus" spells "Status", which Firely reads as "status": the order's status is read, not skipped.
        var json = ReplaceFirst(Repository.Sample("order-sign-mirtazapine-80-year-old-on-clonazepam.json"), "\"status\": \"draft\"", "\"St\\u0061tus\": \"draft\"");

        var order = Assert.IsType<RequestRecord>(Assert.Single(ReadText(json).NewOrders));

        Assert.Equal("draft", order.Status);
    }

    [Fact]
    public void ALocationIsItsOwnPassesAfterOtherPassesOnTheThread()
    {
        // The locations of a pass are made again by the next pass on the thread (PrefetchReader.At.Arena): neither a
        // pass that found a problem nor one that threw half-way may leave its locations to the next.
        var first = IndexRequest();
        first["prefetch"]!["patient"]!["birthDate"] = "not-a-date";
        Assert.Equal("prefetch.patient.birthDate", Assert.Single(Invalid(first).Issues).Location);

        // The medications first: the location made for the patient above is made again for them.
        var second = IndexRequest();
        var prefetch = second["prefetch"]!.AsObject();
        var reordered = new JsonObject { ["medications"] = prefetch["medications"]!.DeepClone() };
        foreach (var (key, value) in prefetch.Where(p => p.Key != "medications").ToList()) reordered[key] = value!.DeepClone();
        reordered["medications"]!["entry"]![0]!["resource"]!["status"] = 5;
        second["prefetch"] = reordered;
        Assert.Equal("prefetch.medications.entry[0].resource.status", Assert.Single(Invalid(second).Issues).Location);

        Assert.ThrowsAny<JsonException>(() => ReadText("""{"hook": "order-sign", "prefetch": {"patient": {"resourceType": "Patient", "id": """));
        Assert.Equal("prefetch.patient.birthDate", Assert.Single(Invalid(first).Issues).Location);
        Assert.Equal("prefetch.medications.entry[0].resource.status", Assert.Single(Invalid(second).Issues).Location);
    }

    [Fact]
    public void AnElementTwiceUnderNamesThatDifferInCaseIsRefused()
    {
        var json = ReplaceFirst(Repository.Sample("order-sign-mirtazapine-80-year-old-on-clonazepam.json"), "\"status\": \"draft\"", "\"status\": \"draft\", \"Status\": \"cancelled\"");

        var error = Assert.Throws<InvalidHookRequestException>(() => ReadText(json));

        Assert.Equal("context.draftOrders.entry[0].resource.status", Assert.Single(error.Issues).Location);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AnObjectOfManyPropertiesIsCheckedForDuplicatesToo(bool duplicate)
    {
        // Past the number of names compared one by one, names are kept in a set.
        var names = string.Join(", ", Enumerable.Range(0, 2000).Select(i => $"\"p{i}\": {i}"));
        var extra = $"\"vendorData\": {{{names}{(duplicate ? ", \"p1999\": 0" : "")}}}, \"birthDate\"";
        var json = ReplaceFirst(Repository.Sample("order-sign-mirtazapine-80-year-old-on-clonazepam.json"), "\"birthDate\"", extra);

        if (duplicate) Assert.ThrowsAny<JsonException>(() => ReadText(json));
        else Assert.Equal("elderly-1", ReadText(json).PatientId);
    }

    [Fact]
    public void AByteOrderMarkIsAllowedAndTrailingTextIsNot()
    {
        var json = Repository.Sample("order-sign-mirtazapine-80-year-old-on-clonazepam.json");

        Assert.Equal("elderly-1", HookRequestReader.Read([0xEF, 0xBB, 0xBF, .. System.Text.Encoding.UTF8.GetBytes(json)], OrderSign).PatientId);
        Assert.ThrowsAny<JsonException>(() => ReadText(json + " {}"));
        Assert.ThrowsAny<JsonException>(() => ReadText(json[..^10]));
    }

    private static string ReplaceFirst(string text, string find, string replacement)
    {
        var at = text.IndexOf(find, StringComparison.Ordinal);
        Assert.True(at >= 0, $"'{find}' is not in the text"); // a test that changed nothing would test nothing
        return string.Concat(text.AsSpan(0, at), replacement, text.AsSpan(at + find.Length));
    }
}
