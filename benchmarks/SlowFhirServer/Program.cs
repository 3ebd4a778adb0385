using System.Text.Json.Nodes;

// The FHIR server of the fallback benchmark (benchmarks/load.sh): answers the service's patient queries from the
// prefetch of a sample request, each after a fixed delay, and counts them. Any patient id gets the same data.
//   SlowFhirServer --urls URL --delay-ms N --request FILE        GET /count: queries answered so far
var delay = TimeSpan.FromMilliseconds(int.Parse(Arg("--delay-ms"), System.Globalization.CultureInfo.InvariantCulture));
var prefetch = JsonNode.Parse(File.ReadAllText(Arg("--request")))!["prefetch"]!.AsObject();
var count = 0;

var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
var app = builder.Build();
app.MapGet("/count", () => Volatile.Read(ref count));
app.MapGet("/fhir/{type}/{id?}", async (string type, string? id, HttpRequest request) =>
{
    Interlocked.Increment(ref count);
    await Task.Delay(delay);
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
