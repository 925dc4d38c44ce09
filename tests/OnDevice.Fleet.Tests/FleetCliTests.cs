using System.Text.Json;
using OnDevice.Server.Tests;

namespace OnDevice.Fleet.Tests;

/// <summary><c>ondevice fleet simulate</c> as a process against a real server.</summary>
[Trait("Category", "Fleet")]
public class FleetCliTests
{
    [Fact]
    public async Task Simulate_follows_a_rollout_to_the_end_and_reports_every_tick_as_json()
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys, null, null, "--rollout-tick", "0.5s");
        await world.PublishAsync(server, await world.PackAsync("kws", "1.0", $"base={world.RandomFile("a.bin", 2000, 1)}"));
        await world.PublishAsync(server, await world.PackAsync("kws", "1.1", $"base={world.RandomFile("b.bin", 2000, 2)}"));
        await Ondevice.OkAsync("rollout", "start", "kws", "1.1", "--server", server.BaseUrl, "--token", server.Token, "--schedule", "20%@0s, 100%@20s", "--baseline", "1.0");

        var r = await Ondevice.RunAsync("fleet", "simulate", "--server", server.BaseUrl, "--root", world.RootJson, "--model", "kws", "--candidate", "1.1",
            "--token", server.Token, "--devices", "40", "--tick", "0.25s", "--check-every", "1s", "--duration", "90s", "--until-final", "--failure-rate", "0.05", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr + r.Stdout);
        using var doc = JsonDocument.Parse(r.Stdout);
        var root = doc.RootElement;
        Assert.Equal("healthy", root.GetProperty("scenario").GetString());
        Assert.Equal(40, root.GetProperty("devices").GetInt32());
        var ticks = root.GetProperty("ticks").EnumerateArray().ToList();
        Assert.True(ticks.Count > 10, $"{ticks.Count} ticks in {root.GetProperty("seconds").GetDouble()} s: {string.Join(" | ", ticks.Select(t => t.GetProperty("seconds").ToString() + " " + t.GetProperty("versions").ToString() + " " + (t.TryGetProperty("rollout", out var ro) ? ro.GetProperty("status").ToString() + ro.GetProperty("percent") : "")))}");
        var last = ticks[^1];
        var rollout = last.GetProperty("rollout");
        Assert.Equal("completed", rollout.GetProperty("status").GetString());
        Assert.Equal("1.1", rollout.GetProperty("candidate").GetString());
        Assert.Equal(1, rollout.GetProperty("stage").GetInt32());
        // Every device ends on the candidate; early on only part of the fleet had it (the 20% stage).
        Assert.Equal(40, last.GetProperty("versions").EnumerateObject().Sum(c => c.Value.TryGetProperty("1.1", out var n) ? n.GetInt32() : 0));
        Assert.Contains(ticks, t => t.GetProperty("rollout").GetProperty("percent").GetDouble() == 20
            && t.GetProperty("versions").EnumerateObject().Sum(c => c.Value.TryGetProperty("1.0", out var n) ? n.GetInt32() : 0) > 0);
        Assert.Contains(rollout.GetProperty("decisions").EnumerateArray(), d => d.GetProperty("kind").GetString() == "complete");
        Assert.True(root.GetProperty("networkFailures").GetInt64() > 0);
        var measured = root.GetProperty("measured").EnumerateArray().ToList();
        Assert.Contains(measured, m => m.GetProperty("version").GetString() == "1.1" && m.GetProperty("inferences").GetInt64() > 0);
    }

    [Fact]
    public async Task Simulate_prints_one_line_per_change_and_refuses_bad_options()
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys);
        await world.PublishAsync(server, await world.PackAsync("kws", "1.0", $"base={world.RandomFile("a.bin", 2000, 1)}"));
        var r = await Ondevice.RunAsync("fleet", "simulate", "--server", server.BaseUrl, "--root", world.RootJson, "--model", "kws", "--candidate", "2.0",
            "--devices", "12", "--duration", "4s", "--scenario", "slow-release", "--class", "2G:1:30/60", "--class", "16G:1:5/9");
        Assert.True(r.ExitCode == 0, r.Stderr + r.Stdout);
        var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("fleet: 12 devices (ram<4GB, ram>=8GB), scenario slow-release", lines[0]);
        Assert.Contains(lines, l => l.Contains("ram<4GB: 0/6 on 2.0", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("ram<4GB") && l.Contains("1.0") && l.Contains("p99"));
        Assert.DoesNotContain('\u001b', r.Stdout); // no terminal control codes when piped
        Assert.True(lines.Length < 20, $"{lines.Length} lines: one per change, not one per tick");

        var bad = await Ondevice.RunAsync("fleet", "simulate", "--server", server.BaseUrl, "--root", world.RootJson, "--model", "kws", "--candidate", "2.0", "--scenario", "nope");
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("unknown scenario 'nope'", bad.Stderr);
        var noToken = await Ondevice.RunAsync("fleet", "simulate", "--server", server.BaseUrl, "--root", world.RootJson, "--model", "kws", "--candidate", "2.0", "--until-final");
        Assert.Contains("--token", noToken.Stderr);
        var badToken = await Ondevice.RunAsync("fleet", "simulate", "--server", server.BaseUrl, "--root", world.RootJson, "--model", "kws", "--candidate", "2.0", "--token", "odt_wrong-wrong-wrong-wrong");
        Assert.Equal(1, badToken.ExitCode);
        Assert.Contains("cannot read the rollouts of kws", badToken.Stderr);
        Assert.Contains("401", badToken.Stderr);
        var badClass = await Ondevice.RunAsync("fleet", "simulate", "--server", server.BaseUrl, "--root", world.RootJson, "--model", "kws", "--candidate", "2.0", "--class", "2G:1:60/30");
        Assert.Contains("at least p50", badClass.Stderr);
    }
}
