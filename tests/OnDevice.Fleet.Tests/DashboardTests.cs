using System.Net;
using Microsoft.Playwright;
using OnDevice.Server.Tests;

namespace OnDevice.Fleet.Tests;

/// <summary>The dashboard pages in headless Chromium against a real <c>ondevice serve</c> process.</summary>
[Collection("chromium")]
[Trait("Category", "Dashboard")]
public class DashboardTests(ChromiumFixture chromium)
{
    [Fact]
    public async Task Models_releases_variants_and_audit_show_what_was_published_escaped_and_behind_a_token()
    {
        if (chromium.Require() is not { } browser) return;
        using var world = await DeliveryWorld.CreateAsync();
        await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys);
        // A publisher whose name is markup: it must show as text everywhere (published by, audit actor).
        var hostileName = "<script>document.title='pwned'</script><b>eve</b>";
        var publisher = await server.CreateTokenAsync(hostileName, "publisher");
        var small = world.RandomFile("small.bin", 3_000, 1);
        var big = world.RandomFile("big.bin", 12_345, 2);
        var kwsFile = world.RandomFile("kws.bin", 777, 3);
        await world.PublishAsync(server, await world.PackAsync("vad", "1.0.0", $"base={small}:precision=fp32"), publisher);
        await world.PublishAsync(server, await world.PackAsync("vad", "2.0.0", $"large={big}:precision=int8:min_ram=8G", $"small={small}:precision=int4:min_ram=1G"), publisher);
        await world.PublishAsync(server, await world.PackAsync("kws", "0.9", $"only={kwsFile}:precision=fp16"), publisher);

        // Without a token every page sends the browser to the login form; nothing is served anonymously.
        using (var anon = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = new Uri(server.BaseUrl) })
        {
            var r = await anon.GetAsync("/dashboard/releases");
            Assert.Equal(HttpStatusCode.Redirect, r.StatusCode);
            Assert.StartsWith("/dashboard/login", r.Headers.Location!.OriginalString);
            Assert.Equal(HttpStatusCode.Redirect, (await anon.GetAsync("/dashboard/audit")).StatusCode);
        }

        await using var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 900 } });
        var page = await context.NewPageAsync();
        var external = new List<string>();
        page.Request += (_, req) => { if (!req.Url.StartsWith(server.BaseUrl, StringComparison.Ordinal)) external.Add(req.Url); };

        await page.GotoAsync(server.BaseUrl + "/dashboard/releases");
        Assert.Contains("/dashboard/login", page.Url);
        await page.FillAsync("#token", "odt_not-a-real-token-at-all");
        await page.ClickAsync("#sign-in");
        Assert.Contains("unknown token", await page.InnerTextAsync("main"));
        await page.FillAsync("#token", server.Token);
        await page.ClickAsync("#sign-in");
        Assert.EndsWith("/dashboard/releases", page.Url);
        var cookie = (await context.CookiesAsync()).Single(c => c.Name == "ondevice_dashboard");
        Assert.True(cookie.HttpOnly);
        Assert.Equal(SameSiteAttribute.Strict, cookie.SameSite);

        // Releases: one row per published release with its variant count; the hostile name is text, not markup.
        var releases = await Rows(page, "#releases");
        Assert.Equal(3, releases.Count);
        Assert.Contains(releases, r => r[0] == "kws" && r[1] == "0.9" && r[2] == "1" && r[3] == "1");
        Assert.Contains(releases, r => r[0] == "vad" && r[1] == "2.0.0" && r[3] == "2");
        Assert.Contains(releases, r => r[0] == "vad" && r[1] == "1.0.0" && r[3] == "1");
        Assert.All(releases, r => Assert.Equal(hostileName + " (publisher)", r[4]));
        Assert.Equal(0, await page.Locator("main script, main b").CountAsync());
        Assert.NotEqual("pwned", await page.TitleAsync());

        // Variants: sizes, precisions, RAM floors and hash prefixes of what was packed.
        var variants = await Rows(page, "#variants");
        Assert.Equal(4, variants.Count);
        var large = variants.Single(v => v[1] == "2.0.0" && v[2] == "large");
        Assert.Equal(["vad", "2.0.0", "large", "int8", "12345", "8 GiB"], large.Take(6));
        Assert.StartsWith(DeliveryWorld.Sha256(big)[..16], large[7]);
        var int4 = variants.Single(v => v[1] == "2.0.0" && v[2] == "small");
        Assert.Equal(["int4", "3000", "1 GiB"], int4.Skip(3).Take(3));
        Assert.StartsWith(DeliveryWorld.Sha256(small)[..16], int4[7]);
        Assert.Equal("any", variants.Single(v => v[0] == "kws")[5]);
        await ChromiumFixture.ScreenshotAsync(page, "dashboard-releases");

        // Models: latest version and release count per model; a model page lists only its releases.
        await page.ClickAsync("header >> text=Models");
        var models = await Rows(page, "#models");
        Assert.Equal(2, models.Count);
        Assert.Equal(["kws", "0.9", "1", "1"], models[0].Take(4));
        Assert.Equal(["vad", "2.0.0", "2", "2"], models[1].Take(4));
        await ChromiumFixture.ScreenshotAsync(page, "dashboard-models");
        await page.ClickAsync("#models >> text=vad");
        Assert.EndsWith("/dashboard/models/vad", page.Url);
        Assert.Equal(["2.0.0", "1.0.0"], (await Rows(page, "#releases")).Select(r => r[1]));
        Assert.Equal(3, (await Rows(page, "#variants")).Count);
        var missing = await page.GotoAsync(server.BaseUrl + "/dashboard/models/nope");
        Assert.Equal(404, missing!.Status);

        // Audit log: every publish with its actor, newest first, plus the token creation.
        await page.GotoAsync(server.BaseUrl + "/dashboard/audit");
        var audit = await Rows(page, "#audit");
        var publishes = audit.Where(a => a[3] == "release.publish").ToList();
        Assert.Equal(3, publishes.Count);
        Assert.Contains("kws", publishes[0][4]);
        Assert.Contains("0.9", publishes[0][4]);
        Assert.Contains("vad", publishes[1][4]);
        Assert.Contains("2.0.0", publishes[1][4]);
        Assert.Contains("1.0.0", publishes[2][4]);
        Assert.All(publishes, p => Assert.Equal(hostileName + " (publisher)", p[2]));
        Assert.Contains(audit, a => a[3] == "token.create" && a[4] == hostileName);
        var ids = audit.Select(a => long.Parse(a[0])).ToList();
        Assert.Equal(ids.OrderByDescending(i => i), ids);
        Assert.Equal(0, await page.Locator("main script, main b").CountAsync());
        await ChromiumFixture.ScreenshotAsync(page, "dashboard-audit");

        // Signing out forgets the token.
        await page.ClickAsync("header button");
        await page.GotoAsync(server.BaseUrl + "/dashboard/audit");
        Assert.Contains("/dashboard/login", page.Url);
        Assert.Empty(external);
    }

    [Fact]
    public async Task Token_in_the_address_becomes_a_cookie_and_leaves_the_address()
    {
        if (chromium.Require() is not { } browser) return;
        using var world = await DeliveryWorld.CreateAsync();
        await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys);
        var reader = await server.CreateTokenAsync("dash-reader", "reader");
        await using var context = await browser.NewContextAsync();
        var page = await context.NewPageAsync();
        await page.GotoAsync($"{server.BaseUrl}/dashboard/audit?token={Uri.EscapeDataString(reader)}");
        Assert.Equal(server.BaseUrl + "/dashboard/audit", page.Url);
        Assert.Contains("dash-reader (reader)", await page.InnerTextAsync("header"));
        Assert.Contains(await Rows(page, "#audit"), a => a[3] == "token.create" && a[4] == "dash-reader");
        // A wrong token in the address is refused (401), not silently ignored.
        await using var other = await browser.NewContextAsync();
        var bad = await (await other.NewPageAsync()).GotoAsync($"{server.BaseUrl}/dashboard?token=wrong-token-wrong-token");
        Assert.Equal(401, bad!.Status);
        // The pages forbid scripts and outside requests.
        using var http = new HttpClient();
        using var req = new HttpRequestMessage(HttpMethod.Get, server.BaseUrl + "/dashboard/audit");
        req.Headers.Add("Cookie", $"ondevice_dashboard={reader}");
        using var resp = await http.SendAsync(req);
        Assert.Equal(HttpStatusCode.OK, resp.StatusCode);
        Assert.Contains("default-src 'none'", resp.Headers.GetValues("Content-Security-Policy").Single());
    }

    /// <summary>The text of every body row's cells.</summary>
    public static async Task<List<string[]>> Rows(IPage page, string table)
    {
        var rows = new List<string[]>();
        foreach (var tr in await page.Locator($"{table} tbody tr").AllAsync())
            rows.Add((await tr.Locator("td").AllInnerTextsAsync()).Select(t => t.Trim()).ToArray());
        return rows;
    }
}
