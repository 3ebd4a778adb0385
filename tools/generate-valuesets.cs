#:project ../src/CdsHooks.Engine/CdsHooks.Engine.csproj
#:property PublishAot=false

// Regenerates cards/valuesets/*.json from the tables in cards/source/. Run from the repository root:
//   dotnet run tools/generate-valuesets.cs
using CdsHooks.Engine.Knowledge;

var root = args.Length > 0 ? args[0] : Directory.GetCurrentDirectory();
var target = Path.Combine(root, "cards", "valuesets");
Directory.CreateDirectory(target);
foreach (var (file, json) in ValueSetGenerator.Generate(Path.Combine(root, "cards", "source")))
{
    File.WriteAllText(Path.Combine(target, file), json);
    Console.WriteLine($"wrote cards/valuesets/{file}");
}
