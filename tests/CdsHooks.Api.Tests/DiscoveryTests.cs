using System.Net;
using System.Text.RegularExpressions;

namespace CdsHooks.Api.Tests;

public sealed partial class DiscoveryTests(CdsHooksApplication app) : IClassFixture<CdsHooksApplication>
{
    // CDS Hooks 2.0 prefetch tokens: a root-level context field or one of the user identifiers (requirements 55-59).
    [GeneratedRegex(@"\{\{(?<token>[^}]*)\}\}")]
    private static partial Regex Token();

    private static readonly string[] UserTokens = ["userPractitionerId", "userPractitionerRoleId", "userPatientId", "userRelatedPersonId"];

    [Fact]
    public async Task DiscoveryListsOneServicePerHookWeServe()
    {
        var response = await app.CreateClient().GetAsync(new Uri("/cds-services", UriKind.Relative), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var services = (await response.Json())["services"]!.AsArray();
        Assert.Equal(["medication-prescribe", "order-select", "order-sign"], services.Select(s => (string)s!["hook"]!).Order());
        Assert.All(services, s =>
        {
            Assert.False(string.IsNullOrWhiteSpace((string?)s!["id"]));
            Assert.False(string.IsNullOrWhiteSpace((string?)s["title"]));
            Assert.False(string.IsNullOrWhiteSpace((string?)s["description"]));
            Assert.NotEmpty(s["prefetch"]!.AsObject());
        });
    }

    [Fact]
    public async Task PrefetchTemplatesUseOnlyCdsHooks2Tokens()
    {
        var services = (await (await app.CreateClient().GetAsync(new Uri("/cds-services", UriKind.Relative), TestContext.Current.CancellationToken)).Json())["services"]!.AsArray();

        var tokens = services.SelectMany(s => s!["prefetch"]!.AsObject())
            .SelectMany(p => Token().Matches((string)p.Value!).Select(m => m.Groups["token"].Value))
            .ToList();

        Assert.NotEmpty(tokens);
        Assert.All(tokens, t => Assert.True(
            UserTokens.Contains(t) || Regex.IsMatch(t, "^context\\.[A-Za-z]+$"), $"'{t}' is not a CDS Hooks 2.0 prefetch token"));
    }
}
