using System.Text.Encodings.Web;
using System.Text.Json;
using CdsHooks.Engine.Evaluation;
using CdsHooks.Engine.Hooks;
using CdsHooks.Engine.Knowledge;
using CdsHooks.Engine.Patients;
using CdsHooks.Tests;

namespace CdsHooks.Engine.Tests.Hooks;

/// <summary>A card's detail is written from its parts, the fixed ones escaped once for the process: on the wire it
/// must be exactly the JSON string the serializer writes for the text itself.</summary>
public class CardTextTests
{
    private static readonly DateOnly Today = new(2026, 11, 26);

    private static readonly KnowledgeBase Knowledge = Tests.Knowledge.EveryRule.Knowledge;

    private static readonly Evaluator Evaluator = new(Knowledge);

    // The service's options (the web defaults and CdsJson.Configure: the relaxed encoder), and the web defaults alone
    // (the default encoder, which escapes more: "+", "<", every non-ASCII character).
    private static readonly JsonSerializerOptions Service = CdsJson.Configure(new JsonSerializerOptions(JsonSerializerDefaults.Web));
    private static readonly JsonSerializerOptions Defaults = new(JsonSerializerDefaults.Web);

    // The detail as written inside a whole card, with the quotes and escapes as they are on the wire.
    private static string WireDetail(Card card, JsonSerializerOptions options)
    {
        using var json = JsonDocument.Parse(JsonSerializer.Serialize(card, options));
        return json.RootElement.GetProperty("detail").GetRawText();
    }

    private static Card Card(params MedicationUse[] medications) =>
        CardBuilder.Build(Assert.Single(Evaluator.Evaluate(new PatientContext(80, medications, new HashSet<string>(), Today))));

    private static MedicationUse Drug(string code, MedicationStatus status, string display = "", string? dose = null) =>
        new(display.Length > 0 ? display : $"drug {code}", [code], "", dose, new DailyDose(1.5m, "mg"), status, null, $"{status}-{code}");

    [Fact]
    public void EveryExamplesCardIsWrittenAsTheSerializerWritesItsText()
    {
        var cards = 0;
        foreach (var rule in Knowledge.Rules)
        {
            foreach (var example in rule.Examples)
            {
                foreach (var problem in Evaluator.Evaluate(ExampleRunner.PatientOf(example, Today)))
                {
                    var card = CardBuilder.Build(problem);
                    var text = Assert.IsType<CardText>(card.Detail).ToString();
                    Assert.Equal(JsonSerializer.Serialize(text, Service), WireDetail(card, Service));
                    Assert.Equal(JsonSerializer.Serialize(text, Defaults), WireDetail(card, Defaults));
                    cards++;
                }
            }
        }

        Assert.True(cards >= 50, $"{cards} cards"); // 70 with the shipped rules
    }

    [Fact]
    public void EachDetailKeepsItsOwnPartsWhenOthersAreBuiltAfterIt()
    {
        // Details are built one after another in the thread's list: each must keep its own parts, written the same after
        // the others were built as before.
        var first = Card(Drug("311725", MedicationStatus.New, "first mirtazapine"), Drug("197527", MedicationStatus.Current, "first clonazepam"));
        var before = WireDetail(first, Service); // written from the parts (ToString would be the text made then)
        var second = Card(Drug("311725", MedicationStatus.New, "second mirtazapine"), Drug("197527", MedicationStatus.Current, "second clonazepam"));

        Assert.Contains("first clonazepam", before, StringComparison.Ordinal);
        Assert.Contains("second clonazepam", WireDetail(second, Service), StringComparison.Ordinal);
        Assert.Equal(before, WireDetail(first, Service));
        Assert.DoesNotContain("second", WireDetail(first, Service), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("clonazepam \"Klonopin\" 0.5 mg")]
    [InlineData("back\\slash, <b>tags</b> & 'quotes'")]
    [InlineData("line\nbreak\rand\ttab\u0001\u001f")]
    [InlineData("accents é ü ñ, CJK 氯硝西泮, a pill \U0001F48A")]
    [InlineData("separators \u2028 \u2029 and \u00a0 and \u200b")]
    [InlineData("+ 100% `code` *bold* _em_ [link](x) #1 |pipe| ~tilde~ !")]
    public void ThisCallsTextsAreEscapedAsTheSerializerEscapesThem(string display)
    {
        // The EHR's display and dose text are this call's parts, as are the daily dose and the age.
        var card = Card(Drug("311725", MedicationStatus.New, display, dose: display), Drug("197527", MedicationStatus.Current, display));
        var text = card.Detail!.ToString();
        Assert.Contains("age 80", text, StringComparison.Ordinal);

        Assert.Equal(JsonSerializer.Serialize(text, Service), WireDetail(card, Service));
        Assert.Equal(JsonSerializer.Serialize(text, Defaults), WireDetail(card, Defaults));
    }

    [Fact]
    public void ALoneSurrogateIsWrittenAsTheSerializerWritesIt()
    {
        // The reader refuses one the EHR escapes ("\ud800"), so it would have to come from elsewhere: the writer gives
        // the replacement character for it, escaped, and so does the detail.
        var card = Card(Drug("311725", MedicationStatus.New, "mirtazapine \ud800 tablet"), Drug("197527", MedicationStatus.Current));

        Assert.Equal(JsonSerializer.Serialize(card.Detail!.ToString(), Service), WireDetail(card, Service));
        Assert.Equal(JsonSerializer.Serialize(card.Detail!.ToString(), Defaults), WireDetail(card, Defaults));
        Assert.Equal(card.Detail!.ToString().Replace('\ud800', '\ufffd'), JsonSerializer.Deserialize<string>(WireDetail(card, Service)));
    }

    [Fact]
    public void TextsThatEscapeToSixBytesACharacterFitTheirBuffers()
    {
        // Every character of these becomes "\uXXXX" under the default encoder: the longest a text can grow.
        foreach (var display in new[] { new string('\u0001', 5_000), new string('\u6C2F', 5_000), string.Concat(Enumerable.Repeat("\U0001F48A", 2_500)) })
        {
            var card = Card(Drug("311725", MedicationStatus.New, display, dose: display), Drug("197527", MedicationStatus.Current, display));
            var text = card.Detail!.ToString();

            Assert.Equal(JsonSerializer.Serialize(text, Defaults), WireDetail(card, Defaults));
            Assert.Equal(JsonSerializer.Serialize(text, Service), WireDetail(card, Service));
        }
    }

    [Fact]
    public void ADetailOfOneTextIsWrittenAsThatText()
    {
        var text = CardText.Of("Not fully checked: \"conditions\" (timed out).\nThe other cards stand.");

        Assert.Equal(JsonSerializer.Serialize(text.ToString(), Service), JsonSerializer.Serialize(text, Service));
        Assert.Equal("Not fully checked: \"conditions\" (timed out).\nThe other cards stand.", JsonSerializer.Deserialize<CardText>(JsonSerializer.Serialize(text, Service))!.ToString());
    }
}
