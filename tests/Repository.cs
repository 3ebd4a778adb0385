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
