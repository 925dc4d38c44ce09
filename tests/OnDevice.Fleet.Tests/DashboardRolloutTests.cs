using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using OnDevice.Server.Tests;

namespace OnDevice.Fleet.Tests;

/// <summary>The rollout pages in headless Chromium after a simulated rollout that is slow on old devices.</summary>
[Collection("chromium")]
[Trait("Category", "Dashboard")]
public class DashboardRolloutTests(ChromiumFixture chromium)
{
    [Fact]
    public async Task Rollout_page_shows_the_halted_class_the_guard_decision_with_its_numbers_and_the_latency_histograms()
    {
        if (chromium.Require() is not { } browser) return;
        await RolloutScenarios.RunAsync("slow-on-old", RolloutScenarios.SlowOnOldDone, after: async (server, outcome) =>
        {
            RolloutScenarios.CheckSlowOnOld(outcome);
            var id = outcome.Rollout.Id;
            using var api = server.Http(server.Token);
            var view = await api.GetFromJsonAsync<JsonElement>($"/api/v1/rollouts/{id}?decisions=200");
            var halt = view.GetProperty("decisions").EnumerateArray().Single(d => d.GetProperty("kind").GetString() == "halt-rollback");
            var failed = halt.GetProperty("details").GetProperty("outcomes").EnumerateArray().Where(o => o.GetProperty("rule").GetString()!.StartsWith("p99", StringComparison.Ordinal)).ToList();
            Assert.NotEmpty(failed);

            await using var context = await browser.NewContextAsync(new() { ViewportSize = new() { Width = 1400, Height = 1000 } });
            var page = await context.NewPageAsync();
            await page.GotoAsync($"{server.BaseUrl}/dashboard/rollouts?token={Uri.EscapeDataString(server.Token)}");
            var list = await DashboardTests.Rows(page, "#rollouts");
            Assert.Equal(2, list.Count);
            Assert.Equal(["#" + id, "asr", "stable", "2.0.0", "1.0.0", "completed", "3/3 (100%)", "ram<4GB (rolled-back)"], list[0].Take(8));
            Assert.Equal(["1.0.0", "–", "completed"], list[1].Skip(3).Take(3));
            await ChromiumFixture.ScreenshotAsync(page, "dashboard-rollouts");

            await page.ClickAsync($"#rollouts >> text=#{id}");
            Assert.EndsWith($"/dashboard/rollouts/{id}", page.Url);

            // Device classes: the old class rolled back with the guard's reason; cohort sizes are the whole fleet at 100%.
            var classes = (await DashboardTests.Rows(page, "#classes")).ToDictionary(r => r[0]);
            Assert.Equal(3, classes.Count);
            Assert.Equal("rolled-back", classes["ram<4GB"][1]);
            Assert.Contains("p99_latency_ms", classes["ram<4GB"][7]);
            Assert.Equal("active", classes["ram4-8GB"][1]);
            Assert.Equal("active", classes["ram>=8GB"][1]);
            foreach (var c in RolloutScenarios.Classes) Assert.Equal(RolloutScenarios.ClassSize(c).ToString(CultureInfo.InvariantCulture), classes[c][2]);
            Assert.Equal("96", classes["ram<4GB"][5]); // all told to run the baseline
            Assert.Equal("84", classes["ram4-8GB"][4]);
            Assert.Equal("60", classes["ram>=8GB"][4]);

            // The guard decision with its numbers, as the engine recorded them.
            var decisions = await DashboardTests.Rows(page, "#decisions");
            var haltRow = Assert.Single(decisions, d => d[3] == "halt-rollback");
            Assert.Equal("ram<4GB", haltRow[4]);
            Assert.Equal("10%", haltRow[5]);
            foreach (var o in failed) Assert.Contains(o.GetProperty("reason").GetString()!, haltRow[6]);
            Assert.Contains("significantly above", haltRow[6]);
            Assert.Contains(decisions, d => d[3] == "complete" && d[6].Contains("50% → 100%", StringComparison.Ordinal));
            Assert.Contains(decisions, d => d[3] == "advance" && d[6].Contains("10% → 50%", StringComparison.Ordinal));

            // Latency histograms per version: both versions drawn for the old class, the candidate's p99 clearly higher.
            foreach (var c in RolloutScenarios.Classes)
                Assert.Equal(2, await page.Locator($"svg[data-class=\"{c}\"] polyline").CountAsync());
            Assert.Equal(1, await page.Locator("svg[data-class=\"ram<4GB\"] polyline[data-version=\"2.0.0\"]").CountAsync());
            var latency = await DashboardTests.Rows(page, "#latency");
            double P99(string cls, string v) => double.Parse(latency.Single(r => r[0] == cls && r[1] == v)[5], CultureInfo.InvariantCulture);
            Assert.True(P99("ram<4GB", "2.0.0") > 1.6 * P99("ram<4GB", "1.0.0"), $"old class p99 {P99("ram<4GB", "2.0.0")} vs {P99("ram<4GB", "1.0.0")}");
            Assert.InRange(P99("ram>=8GB", "2.0.0") / P99("ram>=8GB", "1.0.0"), 0.75, 1.33);
            // The server's aggregates match what the devices measured (same buckets; a few batches may still be in flight).
            var measured = outcome.Result.Measured.Single(m => m.DeviceClass == "ram<4GB" && m.Version == "2.0.0");
            var inferences = long.Parse(latency.Single(r => r[0] == "ram<4GB" && r[1] == "2.0.0")[3], CultureInfo.InvariantCulture);
            Assert.InRange(inferences, measured.Inferences * 0.9, measured.Inferences);
            await ChromiumFixture.ScreenshotAsync(page, "dashboard-rollout-slow-on-old");

            // The audit log has the engine's halt with the same numbers.
            await page.GotoAsync(server.BaseUrl + "/dashboard/audit");
            var audit = await DashboardTests.Rows(page, "#audit");
            var auditHalt = Assert.Single(audit, a => a[3] == "rollout.halt.rollback");
            Assert.Equal("engine", auditHalt[2]);
            Assert.Contains("ram<4GB", auditHalt[4]);
            await ChromiumFixture.ScreenshotAsync(page, "dashboard-audit-after-rollout");
        });
    }
}
