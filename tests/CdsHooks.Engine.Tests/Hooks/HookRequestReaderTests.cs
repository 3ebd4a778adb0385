using System.Text.Json;
using System.Text.Json.Nodes;
using CdsHooks.Engine.Hooks;
using CdsHooks.Tests;
using Hl7.Fhir.Model;

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
        var order = Assert.IsType<MedicationRequest>(Assert.Single(request.NewOrders));
        Assert.Equal("mirtazapine-draft", order.Id);
        Assert.Equal(PrefetchState.Data, request.PrefetchFor(PrefetchKeys.Patient).State);
        Assert.IsType<Bundle>(request.PrefetchFor(PrefetchKeys.Medications).Resource);
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
}
