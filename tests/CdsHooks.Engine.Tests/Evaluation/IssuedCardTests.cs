using CdsHooks.Engine.Evaluation;
using CdsHooks.Engine.Hooks;
using CdsHooks.Engine.Knowledge;
using CdsHooks.Tests;

namespace CdsHooks.Engine.Tests.Evaluation;

/// <summary>What the audit trail records of a card: each suggestion's id, and whether accepting it changes the order or
/// removes it (the feedback endpoint checks accepted suggestions against these).</summary>
public class IssuedCardTests
{
    private static readonly KnowledgeBase Knowledge = Tests.Knowledge.EveryRule.Knowledge;

    // The definition, written the plain way: every suggestion with a uuid, "update:" when one of its actions updates.
    private static string[] Expected(Card card) =>
        [.. (card.Suggestions ?? []).Where(s => s.Uuid is not null)
            .Select(s => ((s.Actions ?? []).Any(a => a.Type == "update") ? "update:" : "delete:") + s.Uuid)];

    [Fact]
    public async Task EverySampleRequestsCardNamesItsSuggestionsAndWhatEachDoes()
    {
        // The sample requests have draft orders with ids, so their cards offer to cancel or lower them (the rules'
        // examples have no orders to act on).
        var engine = new CdsEngine(Knowledge, TimeProvider.System);
        var suggestions = 0;
        foreach (var path in Directory.GetFiles(Path.Combine(Repository.Root, "samples", "requests"), "*.json"))
        {
            using var body = System.Text.Json.JsonDocument.Parse(File.ReadAllText(path));
            var service = HookCatalog.Services.First(s => s.Hook == body.RootElement.GetProperty("hook").GetString());
            var result = await engine.EvaluateAsync(HookRequestReader.Read(body.RootElement, service), TestContext.Current.CancellationToken);
            foreach (var card in result.Cards)
            {
                Assert.Equal(Expected(card.Card), card.SuggestionIds);
                suggestions += card.SuggestionIds.Count;
            }
        }

        Assert.True(suggestions >= 5, $"{suggestions} suggestions");
    }

    [Fact]
    public void ASuggestionWithoutAUuidIsLeftOutAndAnyUpdatingActionMakesItAnUpdate()
    {
        var card = new Card("uuid", "summary", Indicator.Warning, new Source("label"), Suggestions:
        [
            new Suggestion("no uuid", Actions: [new SuggestionAction("update", "change")]),
            new Suggestion("remove", Uuid: "a", Actions: [new SuggestionAction("delete", "remove")]),
            new Suggestion("remove, then add the other", Uuid: "b", Actions: [new SuggestionAction("delete", "remove"), new SuggestionAction("update", "change")]),
            new Suggestion("no actions", Uuid: "c"),
        ]);

        var issued = new IssuedCard(card, "rule", 1, "1+2");

        Assert.Equal(["delete:a", "update:b", "delete:c"], issued.SuggestionIds);
        Assert.Equal(Expected(card), issued.SuggestionIds);
        Assert.Empty(new IssuedCard(card with { Suggestions = null }, "rule", 1, "1+2").SuggestionIds);
    }
}
