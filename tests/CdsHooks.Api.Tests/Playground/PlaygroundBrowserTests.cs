using CdsHooks.Tests;
using Microsoft.Playwright;

namespace CdsHooks.Api.Tests.Playground;

/// <summary>The card playground in a real browser: Debian's Chromium driven by Playwright (its own browser download
/// does not work here). .ci/run installs Chromium; without it the test is skipped, saying how to enable it.</summary>
public sealed class PlaygroundBrowserTests
{
    private const string Chromium = "/usr/bin/chromium";

    [Fact]
    public async Task OrderingMirtazapineForTheEightyYearOldOnClonazepamShowsTheWarningCardAndItsTrace()
    {
        if (!File.Exists(Chromium)) Assert.Skip($"{Chromium} is not installed: `apt-get install chromium` (as .ci/run does) to run the browser test.");

        await using var service = await ServiceProcess.StartAsync();
        using var playwright = await Microsoft.Playwright.Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
        var page = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1400, Height = 1000 } });
        await page.GotoAsync(service.BaseUrl + "/playground/");

        await page.Locator("#patient").SelectOptionAsync(new SelectOptionValue { Label = "Eleanor Testpatient (elderly-1)" });
        await Assertions.Expect(page.Locator("#patient-summary")).ToContainTextAsync("clonazepam 0.5 MG Oral Tablet");
        await page.Locator("#drug").FillAsync("mirtazapine 15 MG Oral Tablet");
        await page.Locator("#dose").FillAsync("15");
        await page.Locator("#order").ClickAsync();

        var card = page.Locator(".card.warning");
        await Assertions.Expect(card).ToHaveCountAsync(1);
        await Assertions.Expect(card.Locator(".summary")).ToContainTextAsync("Mirtazapine + clonazepam: additive CNS depression");
        await Assertions.Expect(card.Locator(".detail")).ToContainTextAsync("age 80");
        await Assertions.Expect(card.Locator(".detail strong").First).ToHaveTextAsync("Drugs:"); // markdown rendered, not shown raw
        await Assertions.Expect(card.Locator(".source a")).ToHaveAttributeAsync("href", new System.Text.RegularExpressions.Regex("^https://dailymed\\.nlm\\.nih\\.gov/"));
        await Assertions.Expect(card.Locator(".actions button").First).ToContainTextAsync("Cancel the new order");
        await Assertions.Expect(card.Locator(".reasons button").First).ToHaveTextAsync("Benefit outweighs risk; will monitor");
        await Assertions.Expect(page.Locator(".rule.fired").First).ToContainTextAsync("mirtazapine-benzodiazepine — fired: warning");

        var artifacts = Path.Combine(Repository.Root, "artifacts");
        Directory.CreateDirectory(artifacts);
        await page.ScreenshotAsync(new() { Path = Path.Combine(artifacts, "playground.png"), FullPage = true });
        Assert.True(new FileInfo(Path.Combine(artifacts, "playground.png")).Length > 10_000);
    }
}
