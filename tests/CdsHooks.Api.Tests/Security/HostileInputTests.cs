using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using CdsHooks.Tests;
using FsCheck;
using FsCheck.Fluent;

namespace CdsHooks.Api.Tests.Security;

/// <summary>Hostile requests: a corpus kept as files (malformed and truncated JSON, wrong types at every level, huge
/// and deep documents, invalid FHIR, unicode oddities, unknown hooks, duplicate keys), and random mutations of a valid
/// request. Every one is answered, none with a 5xx.</summary>
public sealed class HostileInputTests(CdsHooksApplication app) : IClassFixture<CdsHooksApplication>
{
    private const string OrderSign = "/cds-services/medication-safety-order-sign";

    private static string Corpus => Path.Combine(AppContext.BaseDirectory, "Hostile");

    public static TheoryData<string> Files() => [.. Directory.GetFiles(Corpus).Select(Path.GetFileName).Order().OfType<string>()];

    [Fact]
    public void TheCorpusHoldsAtLeastAHundredRequests() => Assert.True(Files().Count >= 100, $"{Files().Count} files");

    [Theory]
    [MemberData(nameof(Files))]
    public async Task HostileRequestGetsA4xxWithAProblemBody(string file)
    {
        using var content = new ByteArrayContent(await File.ReadAllBytesAsync(Path.Combine(Corpus, file), TestContext.Current.CancellationToken));
        content.Headers.ContentType = MediaTypeHeaderValue.Parse("application/json");

        var response = await app.CreateClient().PostAsync(new Uri(OrderSign, UriKind.Relative), content, TestContext.Current.CancellationToken);

        Assert.InRange((int)response.StatusCode, 400, 499);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonNode.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!;
        Assert.Equal((int)response.StatusCode, (int)problem["status"]!);
    }

    private static string Tolerated => Path.Combine(AppContext.BaseDirectory, "Tolerated");

    public static TheoryData<string> ToleratedFiles() => [.. Directory.GetFiles(Tolerated).Select(Path.GetFileName).Order().OfType<string>()];

    /// <summary>Invalid FHIR in an element of the prefetch that no rule reads (the patient's name, gender, a
    /// primitive's extension) cannot change a card: the request is answered, with the cards of the clean request.
    /// Refusing it would leave the clinician with no check at all.</summary>
    [Theory]
    [MemberData(nameof(ToleratedFiles))]
    public async Task InvalidFhirWhereNoRuleReadsGetsTheCardsOfTheCleanRequest(string file)
    {
        var client = app.CreateClient();
        using var content = new ByteArrayContent(await File.ReadAllBytesAsync(Path.Combine(Tolerated, file), TestContext.Current.CancellationToken));
        content.Headers.ContentType = MediaTypeHeaderValue.Parse("application/json");
        var clean = Repository.SampleNode("order-sign-mirtazapine-80-year-old-on-clonazepam.json");
        clean["hookInstance"] = Guid.NewGuid().ToString(); // each call its own instance, as an EHR sends them

        var response = await client.PostAsync(new Uri(OrderSign, UriKind.Relative), content, TestContext.Current.CancellationToken);
        var expected = await client.PostJson(OrderSign, clean);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var cards = Summaries(await expected.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        Assert.Contains("warning", cards, StringComparison.Ordinal);
        Assert.Equal(cards, Summaries(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)));
    }

    private static string Summaries(string response) =>
        string.Join('\n', JsonNode.Parse(response)!["cards"]!.AsArray().Select(c => $"{c!["indicator"]} {c["summary"]}"));

    private static readonly JsonNode?[] Replacements =
    [
        null, JsonValue.Create(0), JsonValue.Create(-1), JsonValue.Create(1e308), JsonValue.Create(decimal.MaxValue), JsonValue.Create(true),
        JsonValue.Create(""), JsonValue.Create("x"), JsonValue.Create("\u0000\ud7ff\uffff"), JsonValue.Create("Patient/1"),
        JsonValue.Create("1946-02-30"), JsonValue.Create("9999-99-99"), JsonValue.Create(new string('z', 5000)),
        new JsonArray(), new JsonArray(JsonValue.Create(1), null), new JsonObject(), new JsonObject { ["resourceType"] = "Patient" },
        new JsonObject { ["resourceType"] = "Bundle", ["entry"] = new JsonArray(new JsonObject()) },
        new JsonObject { ["value"] = 0, ["unit"] = "mg" },
    ];

    /// <summary>Every path in the index request, and a replacement for the value there: a random mutation.</summary>
    private static readonly List<string> Paths = Repository.PathsBelow(Repository.SampleNode("order-sign-mirtazapine-80-year-old-on-clonazepam.json")).ToList();

    private static JsonNode Mutate(int pathIndex, int replacementIndex, bool remove)
    {
        var request = Repository.SampleNode("order-sign-mirtazapine-80-year-old-on-clonazepam.json");
        var (parent, last) = Repository.ParentOf(request, Paths[pathIndex]);
        var replacement = Replacements[replacementIndex]?.DeepClone();
        if (parent is JsonArray array)
        {
            var index = int.Parse(last, System.Globalization.CultureInfo.InvariantCulture);
            if (remove) array.RemoveAt(index);
            else array[index] = replacement;
        }
        else if (remove)
        {
            parent.AsObject().Remove(last);
        }
        else
        {
            parent[last] = replacement;
        }

        return request;
    }

    [FsCheck.Xunit.Property(MaxTest = 400, QuietOnSuccess = true)]
    public Property RandomMutationsOfAValidRequestNeverGetA5xx()
    {
        var client = app.CreateClient();
        var mutations =
            from path in Gen.Choose(0, Paths.Count - 1)
            from replacement in Gen.Choose(0, Replacements.Length - 1)
            from remove in Gen.Elements(false, false, true)
            select (path, replacement, remove);

        return Prop.ForAll(mutations.ToArbitrary(), m =>
        {
            var response = client.PostJson(OrderSign, Mutate(m.path, m.replacement, m.remove)).GetAwaiter().GetResult();
            var status = (int)response.StatusCode;
            return (status < 500 && (status == 200 || status == 412 || response.Content.Headers.ContentType?.MediaType == "application/problem+json"))
                .Label($"{Paths[m.path]} <- {(m.remove ? "(removed)" : Replacements[m.replacement]?.ToJsonString() ?? "null")}: {status}");
        });
    }
}
