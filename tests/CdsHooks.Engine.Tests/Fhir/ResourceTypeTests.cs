using System.Text.Json;
using CdsHooks.Engine.Fhir;
using Hl7.Fhir.Model;

namespace CdsHooks.Engine.Tests.Fhir;

/// <summary>A resource's type is found by its name without Firely's model of all of FHIR (FhirJson.Configure says
/// why); Firely's <c>ModelInfo</c> is the reference: the same concrete resource types, and nothing else.</summary>
public class ResourceTypeTests
{
    public static TheoryData<string> FhirTypeNames()
    {
        var names = new TheoryData<string>();
        foreach (var name in ModelInfo.FhirTypeToCsType.Keys) names.Add(name);
        return names;
    }

    [Theory]
    [MemberData(nameof(FhirTypeNames))]
    public void EveryFhirTypeNameIsReadAsFirelyTypesIt(string name)
    {
        var expected = ModelInfo.GetTypeForFhirType(name) is { IsAbstract: false } type && type.IsAssignableTo(typeof(Resource)) ? type : null;

        var (resource, issues) = Read(name);

        // Read as the type of that name, and named as FHIR names it.
        Assert.Equal(expected is null ? null : name, resource?.TypeName);
        Assert.Equal(expected is null, issues.Exists(i => i.Location == "prefetch.x.resourceType"));
    }

    [Theory]
    [InlineData("medicationrequest")]
    [InlineData("MEDICATIONREQUEST")]
    [InlineData("Hl7.Fhir.Model.Patient")]
    [InlineData("Bundle+EntryComponent")]
    [InlineData("Patient, Hl7.Fhir.R4")]
    [InlineData("Patient ")]
    [InlineData("FhirString")]
    [InlineData("Resource")]
    [InlineData("DomainResource")]
    [InlineData("ModelInfo")]
    [InlineData("")]
    public void NamesThatAreNotAResourceTypeAreRefused(string name)
    {
        var (resource, issues) = Read(name);

        Assert.Null(resource);
        Assert.Contains(issues, i => i.Location == "prefetch.x.resourceType" && i.Code == "invalid-resource");
    }

    private static (FhirRecord? Resource, List<RequestIssue> Issues) Read(string name)
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string> { ["resourceType"] = name });
        var issues = new List<RequestIssue>();
        return (PrefetchReader.ReadResource(json, "prefetch.x", issues), issues);
    }
}
