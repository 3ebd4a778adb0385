using System.Text.Json.Nodes;

namespace CdsHooks.Tests;

/// <summary>Finds files of the repository (cards/, samples/) from a test's output directory.</summary>
public static class Repository
{
    public static string Root { get; } = FindRoot();

    public static string Cards => Path.Combine(Root, "cards");

    public static string Sample(string name) => File.ReadAllText(Path.Combine(Root, "samples", "requests", name));

    /// <summary>A sample request as a mutable JSON tree, for tests that vary it.</summary>
    public static JsonNode SampleNode(string name) => JsonNode.Parse(Sample(name))!;

    /// <summary>The JSON Pointer-like paths ("/prefetch/patient/birthDate") of every value below a node, for tests
    /// that mutate a request at a random place.</summary>
    public static IEnumerable<string> PathsBelow(JsonNode? node, string path = "")
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (key, child) in o)
                {
                    yield return path + "/" + key;
                    foreach (var p in PathsBelow(child, path + "/" + key)) yield return p;
                }

                break;
            case JsonArray a:
                for (var i = 0; i < a.Count; i++)
                {
                    yield return path + "/" + i;
                    foreach (var p in PathsBelow(a[i], path + "/" + i)) yield return p;
                }

                break;
        }
    }

    /// <summary>The node holding the value at a path of <see cref="PathsBelow"/>, and that value's key or index.</summary>
    public static (JsonNode Parent, string Last) ParentOf(JsonNode root, string path)
    {
        var steps = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        var parent = steps[..^1].Aggregate(root, (node, step) =>
            node is JsonArray a ? a[int.Parse(step, System.Globalization.CultureInfo.InvariantCulture)]! : node[step]!);
        return (parent, steps[^1]);
    }

    /// <summary>A private copy of cards/ for a test that breaks a file; the caller deletes it.</summary>
    public static string CopyCards()
    {
        var copy = Directory.CreateTempSubdirectory("cards-").FullName;
        foreach (var file in Directory.GetFiles(Cards, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(copy, Path.GetRelativePath(Cards, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }

        return copy;
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "CdsHooks.sln"))) return dir.FullName;
        }

        throw new InvalidOperationException("CdsHooks.sln not found above " + AppContext.BaseDirectory);
    }
}
