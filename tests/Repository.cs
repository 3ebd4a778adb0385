namespace CdsHooks.Tests;

/// <summary>Finds files of the repository (cards/, samples/) from a test's output directory.</summary>
public static class Repository
{
    public static string Root { get; } = FindRoot();

    public static string Cards => Path.Combine(Root, "cards");

    public static string Sample(string name) => File.ReadAllText(Path.Combine(Root, "samples", "requests", name));

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "CdsHooks.sln"))) return dir.FullName;
        }

        throw new InvalidOperationException("CdsHooks.sln not found above " + AppContext.BaseDirectory);
    }
}
