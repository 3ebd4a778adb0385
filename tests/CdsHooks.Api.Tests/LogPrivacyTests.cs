using System.Net;
using System.Text.Json.Nodes;
using CdsHooks.Tests;

namespace CdsHooks.Api.Tests;

/// <summary>Patient content never reaches the logs, whether the request succeeds, fails validation or needs data.</summary>
public sealed class LogPrivacyTests
{
    private const string Name = "Quillon";
    private const string Family = "Canarywhistle";
    private const string BirthDate = "1944-02-29";

    [Fact]
    public async Task PatientNameAndBirthDateNeverReachTheLogs()
    {
        await using var app = new CdsHooksApplication();
        var client = app.CreateClient();
        var request = Repository.SampleNode("order-sign-mirtazapine-80-year-old-on-clonazepam.json");
        request["prefetch"]!["patient"]!["name"] = new JsonArray(new JsonObject { ["family"] = Family, ["given"] = new JsonArray(Name) });
        request["prefetch"]!["patient"]!["birthDate"] = BirthDate;

        var ok = await client.PostJson("/cds-services/medication-safety-order-sign", request);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.Contains("warning", await ok.Content.ReadAsStringAsync(TestContext.Current.CancellationToken), StringComparison.Ordinal);

        var invalid = request.DeepClone();
        invalid["prefetch"]!["patient"]!["gender"] = Family; // an element the engine does not read is skipped...
        invalid["prefetch"]!["patient"]!["birthDate"] = new JsonObject { ["text"] = Name }; // ...a wrong type where it reads is refused
        Assert.Equal(HttpStatusCode.BadRequest, (await client.PostJson("/cds-services/medication-safety-order-sign", invalid)).StatusCode);

        var missing = request.DeepClone();
        missing["prefetch"]!.AsObject().Remove("medications");
        Assert.Equal(HttpStatusCode.PreconditionFailed, (await client.PostJson("/cds-services/medication-safety-order-sign", missing)).StatusCode);

        var malformed = request.ToJsonString()[..^20];
        Assert.Equal(HttpStatusCode.BadRequest, (await client.PostJson("/cds-services/medication-safety-order-sign", malformed)).StatusCode);

        var logs = app.Logs.AllText();
        Assert.Contains("HookInstance", logs, StringComparison.Ordinal); // the request event was captured
        Assert.Contains("CardCount", logs, StringComparison.Ordinal);
        Assert.DoesNotContain(Name, logs, StringComparison.Ordinal);
        Assert.DoesNotContain(Family, logs, StringComparison.Ordinal);
        Assert.DoesNotContain(BirthDate, logs, StringComparison.Ordinal);
        Assert.DoesNotContain("clonazepam", logs, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task RequestEventCarriesHookServiceAndCardCount()
    {
        await using var app = new CdsHooksApplication();
        var request = Repository.SampleNode("order-sign-mirtazapine-80-year-old-on-clonazepam.json");

        await app.CreateClient().PostJson("/cds-services/medication-safety-order-sign", request);

        var hookEvent = Assert.Single(app.Logs.Events, e => e.Properties.ContainsKey("HookInstance"));
        Assert.Equal("\"order-sign\"", hookEvent.Properties["Hook"].ToString());
        Assert.Equal("\"medication-safety-order-sign\"", hookEvent.Properties["ServiceId"].ToString());
        Assert.Equal("1", hookEvent.Properties["CardCount"].ToString());
        Assert.Equal($"\"{(string)request["hookInstance"]!}\"", hookEvent.Properties["HookInstance"].ToString());
        Assert.True(hookEvent.Properties.ContainsKey("Elapsed"));
    }
}
