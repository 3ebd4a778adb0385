using System.Text.Json.Nodes;

// The FHIR server of the fallback benchmark (benchmarks/load.sh): answers the service's patient queries from the
// prefetch of a sample request, each after a fixed delay, and counts them. Any patient id gets the same data. With
// --pages FILE (a JSON object of page URL to page), a search with _page=N answers that page of a paged search.
//   SlowFhirServer --urls URL --delay-ms N --request FILE [--pages FILE]        GET /count: queries answered so far
var delay = TimeSpan.FromMilliseconds(int.Parse(Arg("--delay-ms"), System.Globalization.CultureInfo.InvariantCulture));
var prefetch = JsonNode.Parse(File.ReadAllText(Arg("--request")))!["prefetch"]!.AsObject();
var pages = args.Contains("--pages")
    ? System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(Arg("--pages")))!
        .ToDictionary(p => new Uri(p.Key).Query.Split("_page=")[1], p => p.Value)
    : [];
var count = 0;

var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
var app = builder.Build();
app.MapGet("/count", () => Volatile.Read(ref count));
app.MapGet("/fhir/{type}/{id?}", async (string type, string? id, HttpRequest request) =>
{
    Interlocked.Increment(ref count);
    await Task.Delay(delay);
    if (request.Query["_page"].ToString() is { Length: > 0 } number)
    {
        return pages.TryGetValue(number, out var page) ? Results.Text(page, "application/fhir+json") : Results.NotFound();
    }

    var status = request.Query["status"].ToString();
    var key = type switch
    {
        "Patient" => "patient",
        "MedicationRequest" when status.Contains("stopped", StringComparison.Ordinal) => "stoppedMedications",
        "MedicationRequest" => "medications",
        "MedicationStatement" => "medicationStatements",
        "Condition" => "conditions",
        _ => null,
    };
    if (key is null || prefetch[key] is not { } resource) return Results.NotFound();
    var answer = resource.DeepClone();
    if (id is not null) answer["id"] = id;
    return Results.Text(answer.ToJsonString(), "application/fhir+json");
});
app.Run();

string Arg(string name) => args[Array.IndexOf(args, name) + 1];
