using System.Text.Json;
using CdsHooks.Engine.Evaluation;
using CdsHooks.Engine.Hooks;
using CdsHooks.Engine.Knowledge;
using CdsHooks.Tests;

namespace CdsHooks.Engine.Tests.Hooks;

/// <summary>The answer written member by member must be, byte for byte, what the serializer writes for the records by
/// reflection with the service's options.</summary>
public class CdsResponseWriterTests
{
    private static readonly DateOnly Today = new(2026, 11, 26);

    private static readonly KnowledgeBase Knowledge = Tests.Knowledge.EveryRule.Knowledge;

    // The service's HTTP options (CdsHooksApi.AddCdsHooks), without and with the writer.
    private static JsonSerializerOptions Options(bool writer)
    {
        var options = CdsJson.Configure(new JsonSerializerOptions(JsonSerializerDefaults.Web));
        if (writer) options.Converters.Add(new CdsResponseWriter());
        return options;
    }

    private static readonly JsonSerializerOptions ByReflection = Options(writer: false);
    private static readonly JsonSerializerOptions ByWriter = Options(writer: true);

    [Fact]
    public void EveryExamplesAnswerIsWrittenAsTheSerializerWritesIt()
    {
        var engine = new CdsEngine(Knowledge, TimeProvider.System);
        var evaluator = new Evaluator(Knowledge);
        var answers = 0;
        foreach (var example in Knowledge.Rules.SelectMany(r => r.Examples))
        {
            var problems = evaluator.Evaluate(ExampleRunner.PatientOf(example, Today));
            if (problems.Count == 0) continue;
            var response = engine.Respond(problems).ToResponse();
            Assert.Equal(JsonSerializer.Serialize(response, ByReflection), JsonSerializer.Serialize(response, ByWriter));
            answers++;
        }

        Assert.True(answers >= 50, $"{answers} answers");
    }

    [Fact]
    public void EveryOptionalMemberIsWrittenAsTheSerializerWritesIt()
    {
        var order = new Hl7.Fhir.Model.MedicationRequest
        {
            Id = "mirtazapine-draft",
            Status = Hl7.Fhir.Model.MedicationRequest.MedicationrequestStatus.Draft,
            Intent = Hl7.Fhir.Model.MedicationRequest.MedicationRequestIntent.Order,
            Subject = new Hl7.Fhir.Model.ResourceReference("Patient/p \"1\""),
        };
        var full = new Card("uuid-1", "Summary with \"quotes\" + <b>é</b>", Indicator.Critical,
            new Source("Label", "https://example.org/a?b=c&d=e", new Coding("urn:topic", "t", "Topic \u2028")),
            CardText.Of("Detail\nwith a line break"),
            [
                new Suggestion("Lower the dose", "s-1", true, [new SuggestionAction("update", "Change the order", order)]),
                new Suggestion("Cancel", "s-2", false, [new SuggestionAction("delete", "Remove the draft order", ResourceId: "MedicationRequest/mirtazapine-draft")]),
                new Suggestion("No actions"),
            ],
            "at-most-one",
            [new Coding("urn:reasons", "r1", "Reason one"), new Coding("urn:reasons", "r2")],
            [new Link("Guideline", "https://example.org/g"), new Link("App", "https://example.org/app", "smart")]);
        var bare = new Card("uuid-2", "Bare", Indicator.Info, new Source("Only a label"));

        foreach (var response in new[] { new CdsResponse([full, bare]), new CdsResponse([]), CdsResponse.Empty })
        {
            Assert.Equal(JsonSerializer.Serialize(response, ByReflection), JsonSerializer.Serialize(response, ByWriter));
        }
    }
}
