namespace CdsHooks.Engine;

/// <summary>Lists of strings that the thread lends for gathering what ends as one string or one array (a medication's
/// names and codes, a card's ingredient names and codes): taken, filled, read, and given back empty, so that nothing of
/// a call stays with the thread. A call made lists of its own for this for every medication and every card
/// (docs/performance.md, sixteenth round).</summary>
internal static class LentStrings
{
    // At most this many lists wait on a thread; the most taken at once is two.
    private const int Kept = 4;

    // A list grown past this (a medication with many names) is let go rather than kept.
    private const int MaxKeptCapacity = 64;

    [ThreadStatic]
    private static List<string>?[]? _waiting;

    /// <summary>An empty list, the thread's own until it is given back.</summary>
    public static List<string> Take()
    {
        if (_waiting is { } waiting)
        {
            for (var i = 0; i < waiting.Length; i++)
            {
                if (waiting[i] is { } list)
                {
                    waiting[i] = null;
                    return list;
                }
            }
        }

        return new List<string>(8);
    }

    /// <summary>Empties the list and keeps it for the next <see cref="Take"/> on this thread. Not for use afterwards.</summary>
    public static void GiveBack(List<string> list)
    {
        list.Clear();
        if (list.Capacity > MaxKeptCapacity) return;
        var waiting = _waiting ??= new List<string>?[Kept];
        for (var i = 0; i < waiting.Length; i++)
        {
            if (waiting[i] is null)
            {
                waiting[i] = list;
                return;
            }
        }
    }
}
