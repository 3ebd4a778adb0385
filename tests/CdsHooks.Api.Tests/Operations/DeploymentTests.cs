using System.Diagnostics;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using CdsHooks.Engine.Fhir;
using CdsHooks.Tests;
using Hl7.Fhir.Model;
using Hl7.Fhir.Serialization;
using Microsoft.AspNetCore.Hosting;
using YamlDotNet.RepresentationModel;
using Task = System.Threading.Tasks.Task;

namespace CdsHooks.Api.Tests.Operations;

/// <summary>What an integration team runs: the compose file (checked statically: no engine runs containers here), the
/// sample patients it loads into HAPI, the cards those patients produce through the service, and the Kubernetes
/// manifests.</summary>
public sealed class DeploymentTests
{
    private static string PathOf(params string[] parts) => Path.Combine([Repository.Root, .. parts]);

    private static YamlMappingNode Yaml(string path)
    {
        var stream = new YamlStream();
        using var reader = new StreamReader(path);
        stream.Load(reader);
        return (YamlMappingNode)stream.Documents[0].RootNode;
    }

    private static YamlMappingNode Map(YamlNode node, string key) => (YamlMappingNode)((YamlMappingNode)node).Children[new YamlScalarNode(key)];

    private static string Scalar(YamlNode node, string key) => ((YamlScalarNode)((YamlMappingNode)node).Children[new YamlScalarNode(key)]).Value!;

    [Fact]
    public void ComposeRunsTheServiceWithHapiPostgresAndTheSampleLoader()
    {
        var services = Map(Yaml(PathOf("docker-compose.yml")), "services");

        Assert.Equal(["cds-hooks", "hapi", "loader", "postgres"], services.Children.Keys.Select(k => ((YamlScalarNode)k).Value).Order());
        var cds = Map(services, "cds-hooks");
        Assert.Equal(".", Scalar(cds, "build"));
        Assert.True(File.Exists(PathOf("Dockerfile")));
        var environment = Map(cds, "environment");
        Assert.Equal("postgres", Scalar(environment, "Audit__Provider"));
        Assert.Contains("Host=postgres", Scalar(environment, "Audit__ConnectionString"), StringComparison.Ordinal);
        Assert.Equal("http://hapi:8080/fhir", Scalar(environment, "Fhir__AllowedServers__0"));
        Assert.StartsWith("hapiproject/hapi", Scalar(Map(services, "hapi"), "image"), StringComparison.Ordinal);
        Assert.StartsWith("postgres:", Scalar(Map(services, "postgres"), "image"), StringComparison.Ordinal);

        var loader = Map(services, "loader");
        var volume = ((YamlSequenceNode)loader.Children[new YamlScalarNode("volumes")]).Children.Cast<YamlScalarNode>().Single().Value!;
        Assert.Equal("./samples/patients:/patients:ro", volume);
        Assert.NotEmpty(Directory.GetFiles(PathOf("samples", "patients"), "*.json"));
    }

    [Fact]
    public void ComposeFileIsValidForDockerComposeWhereThePluginExists()
    {
        var probe = Process.Start(new ProcessStartInfo("docker", ["compose", "version"]) { RedirectStandardOutput = true, RedirectStandardError = true });
        probe?.WaitForExit(10_000);
        if (probe is null || probe.ExitCode != 0)
        {
            Assert.Skip("The docker compose plugin is not installed here; the static check above still runs.");
        }

        var config = Process.Start(new ProcessStartInfo("docker", ["compose", "-f", PathOf("docker-compose.yml"), "config", "--quiet"]) { RedirectStandardError = true })!;
        config.WaitForExit(30_000);
        Assert.Equal(0, config.ExitCode);
    }

    [Fact]
    public void SamplePatientsAreFhirTransactionBundlesThatPutEachResource()
    {
        foreach (var file in Directory.GetFiles(PathOf("samples", "patients"), "*.json"))
        {
            var bundle = JsonSerializer.Deserialize<Bundle>(File.ReadAllText(file), new JsonSerializerOptions().ForFhir(ModelInfo.ModelInspector));
            Assert.Equal(Bundle.BundleType.Transaction, bundle!.Type);
            Assert.Single(bundle.Entry, e => e.Resource is Patient);
            Assert.All(bundle.Entry, e =>
            {
                Assert.Equal(Bundle.HTTPVerb.PUT, e.Request!.Method);
                Assert.Equal($"{e.Resource!.TypeName}/{e.Resource.Id}", e.Request.Url);
            });
        }
    }

    public static TheoryData<string> Expectations() =>
        [.. JsonNode.Parse(File.ReadAllText(PathOf("samples", "patient-expectations.json")))!.AsArray().Select(e => (string)e!["bundle"]!)];

    [Theory]
    [MemberData(nameof(Expectations))]
    public async Task EachSamplePatientGetsItsCardThroughTheFhirServer(string bundleFile)
    {
        var expectation = JsonNode.Parse(File.ReadAllText(PathOf("samples", "patient-expectations.json")))!.AsArray().Single(e => (string)e!["bundle"]! == bundleFile)!;
        await using var fhir = await FhirTestServer.StartAsync();
        var bundle = JsonSerializer.Deserialize<Bundle>(File.ReadAllText(PathOf("samples", "patients", bundleFile)), FhirJson.Options)!;
        fhir.Add([.. bundle.Entry.Select(e => e.Resource!)]);
        await using var root = new CdsHooksApplication();
        await using var app = root.WithWebHostBuilder(b => b.UseSetting("Fhir:AllowedServers:0", fhir.BaseUrl));
        var patientId = (string)expectation["patientId"]!;
        var order = expectation["order"]!;
        var request = new JsonObject
        {
            ["hook"] = "order-sign",
            ["hookInstance"] = Guid.NewGuid().ToString(),
            ["fhirServer"] = fhir.BaseUrl,
            ["fhirAuthorization"] = new JsonObject { ["access_token"] = "sample-token", ["token_type"] = "Bearer" },
            ["context"] = new JsonObject
            {
                ["userId"] = "Practitioner/example",
                ["patientId"] = patientId,
                ["draftOrders"] = new JsonObject
                {
                    ["resourceType"] = "Bundle",
                    ["type"] = "collection",
                    ["entry"] = new JsonArray(new JsonObject
                    {
                        ["resource"] = new JsonObject
                        {
                            ["resourceType"] = "MedicationRequest", ["id"] = "draft-1", ["status"] = "draft", ["intent"] = "order",
                            ["subject"] = new JsonObject { ["reference"] = "Patient/" + patientId },
                            ["medicationCodeableConcept"] = new JsonObject
                            {
                                ["coding"] = new JsonArray(new JsonObject
                                {
                                    ["system"] = "http://www.nlm.nih.gov/research/umls/rxnorm", ["code"] = order["code"]!.DeepClone(), ["display"] = order["display"]!.DeepClone(),
                                }),
                            },
                            ["dosageInstruction"] = new JsonArray(new JsonObject
                            {
                                ["timing"] = new JsonObject { ["repeat"] = new JsonObject { ["frequency"] = 1, ["period"] = 1, ["periodUnit"] = "d" } },
                                ["doseAndRate"] = new JsonArray(new JsonObject { ["doseQuantity"] = new JsonObject { ["value"] = order["mg"]!.DeepClone(), ["unit"] = "mg", ["code"] = "mg" } }),
                            }),
                        },
                    }),
                },
            },
        };

        var response = await app.CreateClient().PostJson("/cds-services/medication-safety-order-sign", request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var card = (await response.Json())["cards"]!.AsArray().First()!;
        var expect = expectation["expect"]!;
        Assert.Equal((string)expect["indicator"]!, (string)card["indicator"]!);
        foreach (var text in expect["summaryContains"]!.AsArray()) Assert.Contains((string)text!, (string)card["summary"]!, StringComparison.Ordinal);
        foreach (var text in expect["detailContains"]!.AsArray()) Assert.Contains((string)text!, (string)card["detail"]!, StringComparison.Ordinal);
        Assert.Contains(fhir.Requests, r => r.TraceParent is not null); // trace context reaches the FHIR server
    }

    [Fact]
    public void KubernetesManifestsProbeTheHealthEndpointsAndRequestMemory()
    {
        var deployment = Yaml(PathOf("deploy", "kubernetes", "deployment.yaml"));
        var container = (YamlMappingNode)((YamlSequenceNode)Map(Map(Map(deployment, "spec"), "template"), "spec").Children[new YamlScalarNode("containers")]).Children[0];

        Assert.Equal("/health/ready", Scalar(Map(Map(container, "readinessProbe"), "httpGet"), "path"));
        Assert.Equal("/health/live", Scalar(Map(Map(container, "livenessProbe"), "httpGet"), "path"));
        Assert.EndsWith("Mi", Scalar(Map(Map(container, "resources"), "requests"), "memory"), StringComparison.Ordinal);
        Assert.Equal("HorizontalPodAutoscaler", Scalar(Yaml(PathOf("deploy", "kubernetes", "hpa.yaml")), "kind"));
        Assert.Equal("Service", Scalar(Yaml(PathOf("deploy", "kubernetes", "service.yaml")), "kind"));
        Assert.Equal("Production", Scalar(Map(Yaml(PathOf("deploy", "kubernetes", "configmap.yaml")), "data"), "ASPNETCORE_ENVIRONMENT"));
    }
}
