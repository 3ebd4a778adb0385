using CdsHooks.Engine.Knowledge;
using CdsHooks.Tests;

namespace CdsHooks.Engine.Tests.Knowledge;

/// <summary>The shipped knowledge with every rule enabled, those shipped disabled too, as a site could run it: the
/// tests that go through every rule's examples use it.</summary>
internal static class EveryRule
{
    public static KnowledgeBase Knowledge { get; } = Load();

    private static KnowledgeBase Load()
    {
        var shipped = KnowledgeLoader.Load(Repository.Cards);
        return KnowledgeLoader.Load(Repository.Cards, new SiteSettings
        {
            EnabledRules = [.. shipped.Rules.Where(r => !r.Enabled).Select(r => r.Id)],
        });
    }
}
