using System.Text.Json;

// The physical limit the load benchmark compares the service with: a minimal ASP.NET Core endpoint that reads the
// same request body (as JSON) and answers a fixed card. No FHIR parsing, no clinical logic, no logging, no auth.
var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
var app = builder.Build();
var card = """{"cards":[{"uuid":"00000000-0000-0000-0000-000000000000","summary":"Mirtazapine + clonazepam: additive CNS depression (sedation, impaired motor skills, falls)","indicator":"warning","source":{"label":"Mirtazapine (Remeron) prescribing information, DailyMed","url":"https://dailymed.nlm.nih.gov/dailymed/drugInfo.cfm?setid=98ad1917-a094-44f5-a28f-a64a8cfcd887"}}]}"""u8.ToArray();
app.MapPost("/cds-services/{id}", async (HttpRequest request) =>
{
    using var body = await JsonDocument.ParseAsync(request.Body);
    return Results.Bytes(card, "application/json");
});
app.Run();
