#:project ../src/CdsHooks.Engine/CdsHooks.Engine.csproj
#:property PublishAot=false

// Regenerates cards/valuesets/*.json from the tables in cards/source/. Run from the repository root:
//   dotnet run tools/generate-valuesets.cs
using CdsHooks.Engine.Knowledge;

var root = args.Length > 0 ? args[0] : Directory.GetCurrentDirectory();
var target = Path.Combine(root, "cards", "valuesets");
Directory.CreateDirectory(target);
var generated = ValueSetGenerator.Generate(Path.Combine(root, "cards", "source"));
foreach (var (file, json) in generated)
{
    File.WriteAllText(Path.Combine(target, file), json);
    Console.WriteLine($"wrote cards/valuesets/{file}");
}

// A group removed from the tables must not live on as a stale file.
foreach (var stale in Directory.GetFiles(target, "*.json").Where(f => !generated.ContainsKey(Path.GetFileName(f))))
{
    File.Delete(stale);
    Console.WriteLine($"removed {Path.GetRelativePath(root, stale)}");
}
