using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using OnDevice.Delivery.Telemetry;

namespace OnDevice.Server.Tests;

/// <summary>The rollout engine of a real server deciding on telemetry posted to it (TelemetryHealth end to end).</summary>
[Trait("Category", "Delivery")]
public class TelemetryRolloutTests
{
    [Fact]
    public async Task A_class_that_got_slower_is_rolled_back_and_the_rest_completes()
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys, null, null, "--rollout-tick", "0.5s", "--guard-min-reports", "10");
        await world.PublishAsync(server, await world.PackAsync("m", "1.0", $"a={world.RandomFile("a1.bin", 30_000, 1)}"));
        await world.PublishAsync(server, await world.PackAsync("m", "2.0", $"a={world.RandomFile("a2.bin", 30_000, 2)}"));
        using var op = server.Http(server.Token);
        using var start = await op.PostAsJsonAsync("/api/v1/rollouts", new
        {
            model = "m", version = "2.0", baseline = "1.0", schedule = "10%@0s, 100%@3s", on_failure = "rollback",
            guards = new[] { "p99_latency_ms > 1.2x baseline", "crash_rate > 0.001" },
        });
        Assert.True(start.StatusCode == HttpStatusCode.Created, await start.Content.ReadAsStringAsync());
        var id = (await start.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt64();

        // Nothing reported yet: the engine waits (no decision on no data) even after the stage's time is up.
        await Task.Delay(4000);
        var waiting = await op.GetFromJsonAsync<JsonElement>($"/api/v1/rollouts/{id}");
        Assert.Equal(0, waiting.GetProperty("stage").GetInt32());

        // Old phones: 2.0 twice as slow as 1.0. New phones: the same.
        await PostFleetAsync(server, "m");

        JsonElement view = default;
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            view = await op.GetFromJsonAsync<JsonElement>($"/api/v1/rollouts/{id}");
            if (view.GetProperty("status").GetString() != "active") break;
            await Task.Delay(300);
        }
        var classes = view.GetProperty("classes").EnumerateArray().ToList();
        var old = Assert.Single(classes);
        Assert.Equal("ram<4GB", old.GetProperty("deviceClass").GetString());
        Assert.Equal("rolled-back", old.GetProperty("state").GetString());
        var reason = old.GetProperty("reason").GetString()!;
        Assert.Contains("p99_latency_ms", reason);
        Assert.Contains("p = ", reason);
        Assert.Equal("completed", view.GetProperty("status").GetString());

        var audit = await op.GetFromJsonAsync<JsonElement>("/api/v1/audit?limit=100");
        var actions = audit.EnumerateArray().Select(a => a.GetProperty("action").GetString()).ToList();
        Assert.Contains("rollout.halt.rollback", actions);
        Assert.Contains("rollout.complete", actions);
        var halt = audit.EnumerateArray().First(a => a.GetProperty("action").GetString() == "rollout.halt.rollback").GetProperty("details").GetString()!;
        Assert.Contains("pValue", halt);
    }

    /// <summary>Old phones (ram&lt;4GB): 2.0 twice as slow as 1.0; new phones (ram&gt;=8GB): the same. 20 reports each.</summary>
    private static async Task PostFleetAsync(ServerProcess server, string model)
    {
        using var devices = server.Http();
        var posts = new List<Task<HttpResponseMessage>>();
        for (int i = 0; i < 20; i++)
        {
            posts.Add(TelemetryScenarios.PostAsync(devices, TelemetryScenarios.Batch(model, "1.0", "ram<4GB", 2000, 30, 100 + i, loads: 20).ToJson()));
            posts.Add(TelemetryScenarios.PostAsync(devices, TelemetryScenarios.Batch(model, "2.0", "ram<4GB", 300, 60, 200 + i, loads: 20).ToJson()));
            posts.Add(TelemetryScenarios.PostAsync(devices, TelemetryScenarios.Batch(model, "1.0", "ram>=8GB", 4000, 12, 300 + i, loads: 50).ToJson()));
            posts.Add(TelemetryScenarios.PostAsync(devices, TelemetryScenarios.Batch(model, "2.0", "ram>=8GB", 2500, 12, 400 + i, loads: 50).ToJson()));
        }
        foreach (var r in await Task.WhenAll(posts)) { Assert.Equal(HttpStatusCode.OK, r.StatusCode); r.Dispose(); }
    }

    [Fact]
    public async Task Cli_shows_the_aggregates_and_checks_guards_per_class()
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys);
        await PostFleetAsync(server, "kws");
        var show = await Ondevice.RunAsync("telemetry", "show", "kws", "--server", server.BaseUrl, "--token", server.Token, "--histogram");
        Assert.True(show.ExitCode == 0, show.Stderr);
        Assert.Contains("4 rows", show.Stdout);
        Assert.Contains("ram<4GB", show.Stdout);
        Assert.Contains("#", show.Stdout);
        var json = await Ondevice.RunAsync("telemetry", "show", "kws", "--server", server.BaseUrl, "--token", server.Token, "--by", "version", "--json");
        var rows = JsonDocument.Parse(json.Stdout).RootElement.GetProperty("rows").EnumerateArray().ToList();
        Assert.Equal(20 * 2000 + 20 * 4000, rows.Single(r => r.GetProperty("version").GetString() == "1.0").GetProperty("inferences").GetInt64());

        var check = await Ondevice.RunAsync("telemetry", "check", "kws", "2.0", "1.0", "--server", server.BaseUrl, "--token", server.Token,
            "--guard", "p99_latency_ms > 1.2x baseline", "--guard", "load_failure_rate > 0.01", "--json");
        Assert.True(check.ExitCode == 0, check.Stderr);
        var decisions = JsonDocument.Parse(check.Stdout).RootElement.EnumerateArray().ToList();
        Assert.Equal(4, decisions.Count);
        string Decision(string cls, string rule) => decisions.Single(d => d.GetProperty("deviceClass").GetString() == cls && d.GetProperty("rule").GetString()!.StartsWith(rule, StringComparison.Ordinal)).GetProperty("decision").GetString()!;
        Assert.Equal("fail", Decision("ram<4GB", "p99"));
        Assert.Equal("pass", Decision("ram>=8GB", "p99"));
        Assert.Equal("pass", Decision("ram>=8GB", "load"));
        var bad = await Ondevice.RunAsync("telemetry", "check", "kws", "2.0", "--server", server.BaseUrl, "--token", server.Token, "--guard", "p99 > 5");
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("not understood", bad.Stderr);
    }
}
