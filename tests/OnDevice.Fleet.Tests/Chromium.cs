using Microsoft.Playwright;
using OnDevice.TestSupport;

namespace OnDevice.Fleet.Tests;

/// <summary>
/// Headless Debian <c>chromium</c> driven by Microsoft.Playwright (its .NET driver ships in the NuGet package; no
/// browser download: <c>ExecutablePath</c> is the system binary that scripts/setup.sh installs). Missing chromium: the
/// tests fail when CI=true, otherwise they skip with a message.
/// </summary>
public sealed class ChromiumFixture : IAsyncLifetime
{
    private IPlaywright? _playwright;

    /// <summary>The system chromium, or null.</summary>
    public static string? Executable { get; } = new[] { "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome" }.FirstOrDefault(File.Exists);

    public IBrowser? Browser { get; private set; }

    /// <summary>Screenshots go to the test output folder.</summary>
    public static string ScreenshotDir { get; } = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "screenshots")).FullName;

    public async Task InitializeAsync()
    {
        if (Executable is null) return;
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Executable,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        });
    }

    /// <summary>The browser, or null after a skip message (a failure under CI).</summary>
    public IBrowser? Require()
    {
        if (Browser is not null) return Browser;
        Assert.False(RepoPaths.IsCi, "chromium is required for the dashboard tests (scripts/setup.sh installs the Debian package)");
        Console.WriteLine("skipped: chromium not found (scripts/setup.sh installs it)");
        return null;
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null) await Browser.DisposeAsync();
        _playwright?.Dispose();
    }

    /// <summary>Saves a full-page screenshot as screenshots/NAME.png in the test output folder; returns its path.</summary>
    public static async Task<string> ScreenshotAsync(IPage page, string name)
    {
        var path = Path.Combine(ScreenshotDir, name + ".png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        Assert.True(new FileInfo(path).Length > 1000, $"screenshot {path} is empty");
        return path;
    }
}

[CollectionDefinition("chromium")]
public sealed class ChromiumCollection : ICollectionFixture<ChromiumFixture>;
