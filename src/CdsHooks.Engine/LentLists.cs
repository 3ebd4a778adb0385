namespace CdsHooks.Engine;

/// <summary>Lists that the thread lends for work whose result ends as one string, one array or one card text (a
/// medication's names and codes, a card's ingredient names and codes, a card detail's parts): taken, filled, read, and
/// given back empty, so that nothing of a call stays with the thread. A call made lists of its own for this for every
/// medication and every card (docs/performance.md, fifteenth and sixteenth rounds).</summary>
internal static class LentLists<T>
{
    // At most this many lists wait on a thread; the most taken at once is two.
    private const int Kept = 4;

    [ThreadStatic]
    private static List<T>?[]? _waiting;

    /// <summary>An empty list with room for at least <paramref name="capacity"/> items, the thread's own until it is
    /// given back.</summary>
    public static List<T> Take(int capacity = 8)
    {
        if (_waiting is { } waiting)
        {
            for (var i = 0; i < waiting.Length; i++)
            {
                if (waiting[i] is { } list)
                {
                    waiting[i] = null;
                    list.EnsureCapacity(capacity);
                    return list;
                }
            }
        }

        return new List<T>(capacity);
    }

    /// <summary>Empties the list and keeps it for the next <see cref="Take"/> on this thread, unless it grew past
    /// <paramref name="maxKeptCapacity"/> (it is then let go). Not for use afterwards.</summary>
    public static void GiveBack(List<T> list, int maxKeptCapacity = 64)
    {
        list.Clear();
        if (list.Capacity > maxKeptCapacity) return;
        var waiting = _waiting ??= new List<T>?[Kept];
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
