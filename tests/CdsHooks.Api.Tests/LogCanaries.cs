using CdsHooks.Api.Tests.Security;
using Xunit.Sdk;
using Xunit.v3;

// The canary check must see the logs of every other test: collections run one after another, the check's last.
[assembly: Parallelization(Mode = ParallelMode.None)]
[assembly: TestCollectionOrderer(typeof(CdsHooks.Api.Tests.CanaryCheckLast))]

namespace CdsHooks.Api.Tests;

/// <summary>Every log event of the whole integration suite, from every test host, is kept here.</summary>
public static class LogCanaries
{
    public static LogCapture Everything { get; } = new();

    /// <summary>Patient content and secrets the tests send: sample patients' names and birth dates, the canary
    /// names of the privacy tests, FHIR access tokens. The JWTs issued by the token factory are added.</summary>
    public static IEnumerable<string> All =>
    [
        "Testpatient", "Eleanor", "Marcus", "1946-03-14", "1986-07-02", // samples/requests
        "Quillon", "Canarywhistle", "1944-02-29",                     // LogPrivacyTests
        "Zebediah-Canary",                                             // BadInputTests
        "canary-access-token-7f3e9b", "another-token",                 // FhirFallbackTests
        .. JwksTestServer.Issued,
        .. JwksTestServer.Issued.Select(t => t.Split('.').Last()).Where(signature => signature.Length > 20),
    ];
}

[CollectionDefinition(Name)]
public sealed class CanaryCheck
{
    public const string Name = "log canaries (runs last)";
}

public sealed class CanaryCheckLast : ITestCollectionOrderer
{
    public IReadOnlyCollection<TTestCollection> OrderTestCollections<TTestCollection>(IReadOnlyCollection<TTestCollection> testCollections)
        where TTestCollection : ITestCollection =>
        [.. testCollections.OrderBy(c => c.TestCollectionDisplayName == CanaryCheck.Name)];
}

/// <summary>After every other test of the integration suite: no patient name, birth date, identifier, JWT or FHIR
/// access token that any test sent is in any log event, at any level.</summary>
[Collection(CanaryCheck.Name)]
public sealed class LogCanaryTests
{
    [Fact]
    public void NoCanaryOfTheWholeSuiteReachedTheLogs()
    {
        var logs = LogCanaries.Everything.AllText();
        Assert.True(LogCanaries.Everything.Events.Count > 100, $"only {LogCanaries.Everything.Events.Count} events: did the other tests run first?");
        Assert.NotEmpty(JwksTestServer.Issued);

        var found = LogCanaries.All.Where(c => logs.Contains(c, StringComparison.Ordinal)).Select(c => c.Length > 24 ? c[..12] + "…" : c).ToList();

        Assert.True(found.Count == 0, "patient data or secrets reached the logs: " + string.Join(", ", found));
    }
}
