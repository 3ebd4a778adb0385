using System.Text.Json.Nodes;

namespace CdsHooks.Benchmarks;

/// <summary>The requests measured: built from the repository's sample request, with real RxNorm and SNOMED codes from
/// cards/source, to the sizes issue 9 names.</summary>
public static class Requests
{
    private const string RxNorm = "http://www.nlm.nih.gov/research/umls/rxnorm";

    public static string Cards => Path.Combine(AppContext.BaseDirectory, "cards");

    /// <summary>One new order (mirtazapine), 8 active medications (clonazepam among them), 5 conditions.</summary>
    public static string Typical { get; } = Build(newOrders: 1, active: 8, conditions: 5);

    /// <summary>3 new orders, 60 active medications, 40 conditions.</summary>
    public static string Heavy { get; } = Build(newOrders: 3, active: 60, conditions: 40);

    /// <summary>The heavy request with its active medications in pages of 20, as an EHR's paged search gives them: the
    /// first page prefetched with a <c>next</c> link, the other two served by the EHR's FHIR server
    /// (<see cref="PagedFhirServer"/>), which the service follows with the request's token.</summary>
    public static (string Request, IReadOnlyDictionary<string, string> Pages) HeavyPaged { get; } = Paged(FhirBase);

    /// <summary>The FHIR server base of the paged request (served in memory by <see cref="PagedFhirServer"/>).</summary>
    public const string FhirBase = "https://fhir.benchmark.example/r4";

    /// <summary>The heavy request paged, its FHIR server at <paramref name="fhirBase"/>; the pages by their URLs.</summary>
    public static (string Request, IReadOnlyDictionary<string, string> Pages) Paged(string fhirBase) => Page(Heavy, fhirBase, pageSize: 20);

    private static (string, IReadOnlyDictionary<string, string>) Page(string json, string fhirBase, int pageSize)
    {
        var request = JsonNode.Parse(json)!;
        request["fhirServer"] = fhirBase;
        request["fhirAuthorization"] = new JsonObject
        {
            ["access_token"] = "benchmark-token", ["token_type"] = "Bearer", ["expires_in"] = 300,
            ["scope"] = "patient/MedicationRequest.read", ["subject"] = "cds-service",
        };
        var bundle = request["prefetch"]!["medications"]!;
        var entries = bundle["entry"]!.AsArray().Select(e => e!.DeepClone()).ToList();
        var pages = new Dictionary<string, string>(StringComparer.Ordinal);
        string Url(int page) => $"{fhirBase}/MedicationRequest?patient=elderly-1&status=active&_page={page}";
        JsonObject Bundle(int page) => new()
        {
            ["resourceType"] = "Bundle", ["type"] = "searchset",
            ["link"] = (page + 1) * pageSize < entries.Count ? new JsonArray(new JsonObject { ["relation"] = "next", ["url"] = Url(page + 1) }) : new JsonArray(),
            ["entry"] = new JsonArray([.. entries.Skip(page * pageSize).Take(pageSize).Select(e => e.DeepClone())]),
        };
        request["prefetch"]!["medications"] = Bundle(0);
        for (var page = 1; page * pageSize < entries.Count; page++) pages[Url(page)] = Bundle(page).ToJsonString();
        return (request.ToJsonString(), pages);
    }

    public static string Build(int newOrders, int active, int conditions, bool prefetch = true)
    {
        var request = JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "samples", "requests", "order-sign-mirtazapine-80-year-old-on-clonazepam.json")))!;
        var products = File.ReadLines(Path.Combine(Cards, "source", "rxnorm_codes.csv")).Skip(1)
            .Select(line => line.Split(','))
            .Where(f => f[1] == "SCD" && !f[2].Contains('"', StringComparison.Ordinal))
            .DistinctBy(f => f[3])
            .Select(f => (Code: f[0], Name: f[2]))
            .ToList();
        var snomed = File.ReadLines(Path.Combine(Cards, "source", "condition_codes.csv")).Skip(1)
            .Select(line => line.Split(',')).Where(f => f[1].EndsWith("sct", StringComparison.Ordinal)).Select(f => f[2]).Distinct().ToList();

        var template = request["context"]!["draftOrders"]!["entry"]![0]!;
        var orders = request["context"]!["draftOrders"]!["entry"]!.AsArray();
        for (var i = 1; i < newOrders; i++) orders.Add(Medication(template, $"draft-{i}", products[(i * 7) % products.Count], "draft"));

        var activeTemplate = request["prefetch"]!["medications"]!["entry"]![0]!;
        var meds = request["prefetch"]!["medications"]!["entry"]!.AsArray();
        for (var i = 1; i < active; i++) meds.Add(Medication(activeTemplate, $"active-{i}", products[(i * 13) % products.Count], "active"));

        var conditionTemplate = request["prefetch"]!["conditions"]!["entry"]![0]!;
        var list = request["prefetch"]!["conditions"]!["entry"]!.AsArray();
        for (var i = 1; i < conditions; i++)
        {
            var condition = conditionTemplate.DeepClone();
            condition["resource"]!["id"] = $"condition-{i}";
            condition["resource"]!["code"]!["coding"]![0]!["code"] = snomed[(i * 11) % snomed.Count];
            list.Add(condition);
        }

        if (!prefetch) request.AsObject().Remove("prefetch");
        return request.ToJsonString();
    }

    private static JsonNode Medication(JsonNode template, string id, (string Code, string Name) product, string status)
    {
        var entry = template.DeepClone();
        var resource = entry["resource"]!;
        resource["id"] = id;
        resource["status"] = status;
        resource["medicationCodeableConcept"] = new JsonObject
        {
            ["coding"] = new JsonArray(new JsonObject { ["system"] = RxNorm, ["code"] = product.Code, ["display"] = product.Name }),
            ["text"] = product.Name,
        };
        return entry;
    }
}
