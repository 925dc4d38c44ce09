using System.Net.Http.Json;
using OnDevice.Server.Tests;
using OnDevice.TestSupport;

namespace OnDevice.Fleet.Tests;

/// <summary>
/// The three rollout scenarios end to end: a real <c>ondevice serve</c> (SQLite or PostgreSQL, rollout engine ticking
/// every 0.5 s, telemetry guards), 240 simulated devices on the real client (ModelUpdater following /v1/assign,
/// TelemetryReporter) over a network that drops 2% of requests. Version 1.0.0 is rolled out to everyone first (the
/// channel's last good version); once nine in ten devices run it, 2.0.0 is published and rolled out on
/// <see cref="Schedule"/> with <see cref="Guards"/>, rolling back a class that fails a guard.
/// </summary>
public static class RolloutScenarios
{
    public const string Model = "asr";
    public const string Baseline = "1.0.0";
    public const string Candidate = "2.0.0";
    public const int Devices = 240;
    public const string Schedule = "10%@0s, 50%@8s, 100%@16s";
    public static readonly string[] Guards = ["p99_latency_ms > 1.5x baseline", "crash_rate > 0.01"];
    public static readonly string[] Classes = ["ram<4GB", "ram4-8GB", "ram>=8GB"];

    /// <param name="OnBaselineAtStart">Devices running the baseline when the candidate's rollout started (the rest had nothing installed yet).</param>
    public sealed record Outcome(FleetResult Result, RolloutSnapshot Rollout, IReadOnlyDictionary<string, int> MaxOnCandidate, int OnBaselineAtStart);

    /// <summary>Runs a scenario; <paramref name="done"/> says when the fleet reached its expected end state. <paramref name="after"/> runs while the server is still up.</summary>
    public static async Task<Outcome> RunAsync(string scenario, Func<FleetTick, bool> done, string? db = null, Func<ServerProcess, Outcome, Task>? after = null)
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys, db, null, "--rollout-tick", "0.5s");
        // Two variants per release: the large one for devices with at least 8 GiB (device-class targeting), tiny files.
        var v1 = await world.PackAsync(Model, Baseline, $"small={world.RandomFile("v1s.bin", 3000, 1)}:min_ram=1G", $"large={world.RandomFile("v1l.bin", 6000, 2)}:min_ram=8G");
        var v2 = await world.PackAsync(Model, Candidate, $"small={world.RandomFile("v2s.bin", 3000, 3)}:min_ram=1G", $"large={world.RandomFile("v2l.bin", 6000, 4)}:min_ram=8G");
        await world.PublishAsync(server, v1);
        await StartRolloutAsync(server, Baseline, "100%@0s", [], "pause");

        using var observer = new RolloutObserver(new Uri(server.BaseUrl + "/"), server.Token, Model);
        bool candidateStarted = false;
        var maxOnCandidate = Classes.ToDictionary(c => c, _ => 0);
        var baselineEverywhere = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var sim = new FleetSimulator(new FleetOptions
        {
            Server = new Uri(server.BaseUrl + "/"), Model = Model, TrustedRoot = File.ReadAllBytes(world.RootJson), Scenario = FleetScenario.Named(scenario),
            Candidate = Candidate, WorkDirectory = world.File("fleet"), Devices = Devices, FailureRate = 0.02, Tick = TimeSpan.FromSeconds(0.5),
            CheckEvery = TimeSpan.FromSeconds(2), TelemetryEvery = TimeSpan.FromSeconds(2), InferencesPerTick = 40, Concurrency = 48,
            Duration = TimeSpan.FromSeconds(180), Observer = observer.ReadAsync,
            StopWhen = t => Volatile.Read(ref candidateStarted) && t.Rollout?.Candidate == Candidate && done(t),
        });
        FleetTick? latest = null;
        var run = sim.RunAsync(t =>
        {
            Volatile.Write(ref latest, t);
            foreach (var c in Classes) maxOnCandidate[c] = Math.Max(maxOnCandidate[c], t.Count(c, Candidate));
            // Most of the fleet runs the baseline and reports it (late devices join under the candidate's rollout by the same rule).
            if (t.Count(Baseline) >= Devices * 9 / 10 && t.Seconds > 4) baselineEverywhere.TrySetResult();
        });
        await Task.WhenAny(baselineEverywhere.Task, run, Task.Delay(TimeSpan.FromSeconds(90)));
        Assert.True(baselineEverywhere.Task.IsCompleted,
            $"the fleet did not settle on {Baseline}: {(run.IsCompleted ? run.Exception?.ToString() : "timeout")}; {(Volatile.Read(ref latest) is { } lt ? Describe(lt) : "no tick")}\n{server.Log}");
        Assert.All(Classes, c => Assert.Equal(0, maxOnCandidate[c]));

        int onBaselineAtStart = Volatile.Read(ref latest)!.Count(Baseline);
        await world.PublishAsync(server, v2);
        await StartRolloutAsync(server, Candidate, Schedule, Guards, "rollback");
        Volatile.Write(ref candidateStarted, true);
        var result = await run;
        var final = result.Final;
        Assert.True(final.Rollout is { Candidate: Candidate } && done(final),
            $"scenario {scenario} did not reach its end state in {result.Seconds:0} s: {Describe(final)}\n{server.Log}");
        var outcome = new Outcome(result, final.Rollout!, maxOnCandidate, onBaselineAtStart);
        if (after is not null) await after(server, outcome);
        return outcome;
    }

    public static async Task StartRolloutAsync(ServerProcess server, string version, string schedule, string[] guards, string onFailure)
    {
        using var http = server.Http(server.Token);
        using var r = await http.PostAsJsonAsync("/api/v1/rollouts", new { model = Model, version, schedule, guards, on_failure = onFailure });
        Assert.True(r.IsSuccessStatusCode, $"starting the rollout of {version}: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
    }

    public static string Describe(FleetTick t) =>
        $"tick {t.Tick} at t={t.Seconds}s, {t.Installs} installs, {t.FailedUpdates} failed updates, {t.NetworkFailures}/{t.Requests} requests failed; versions {string.Join("; ", t.Versions.Select(kv => $"{kv.Key}: {string.Join(", ", kv.Value.Select(v => $"{v.Key}={v.Value}"))}"))}; " +
        (t.Rollout is { } r ? $"rollout {r.Id} {r.Candidate} {r.Status} stage {r.Stage + 1}/{r.StageCount} classes {string.Join(",", r.Classes.Select(c => c.Key + "=" + c.Value))} decisions: {string.Join(" | ", r.Decisions.Take(6).Select(d => $"{d.Kind} {d.DeviceClass} {d.Summary}"))}" : "no rollout");

    public static int ClassSize(string cls) => cls switch { "ram<4GB" => 96, "ram4-8GB" => 84, _ => 60 };

    // --- the three scenarios' end states and checks -------------------------------------------------------------

    public static bool HealthyDone(FleetTick t) => t.Rollout is { Status: "completed" } && t.Count(Candidate) == Devices;

    public static void CheckHealthy(Outcome o)
    {
        Assert.Equal("completed", o.Rollout.Status);
        Assert.Empty(o.Rollout.Classes);
        Assert.Equal(Devices, o.Result.Final.Count(Candidate));
        var kinds = o.Rollout.Decisions.Select(d => d.Kind).ToList();
        Assert.Contains("complete", kinds);
        Assert.Contains("advance", kinds);
        Assert.DoesNotContain(kinds, k => k.StartsWith("halt", StringComparison.Ordinal) || k == "rollback");
        // Stages were passed on guard outcomes with numbers, not on the schedule alone.
        Assert.Contains(o.Rollout.Decisions, d => d.Kind == "advance" && d.Summary.Contains("p99_latency_ms", StringComparison.Ordinal) && d.Summary.Contains("pass", StringComparison.Ordinal));
        foreach (var c in Classes) Assert.Equal(ClassSize(c), o.Rollout.Cohorts[c].InCohort);
    }

    public static bool SlowReleaseDone(FleetTick t) => t.Rollout is { Status: "rolled-back" } && t.Count(Baseline) == Devices;

    public static void CheckSlowRelease(Outcome o)
    {
        Assert.Equal("rolled-back", o.Rollout.Status);
        Assert.Equal(0, o.Rollout.Stage); // halted at the first stage
        Assert.Equal(Devices, o.Result.Final.Count(Baseline));
        // Only the first stage's cohort (10%, about 24 devices) ever ran the candidate.
        var most = o.MaxOnCandidate.Values.Sum();
        Assert.InRange(most, 1, Devices / 5);
        // Every class failed the latency guard with its numbers; nothing was advanced.
        var halts = o.Rollout.Decisions.Where(d => d.Kind == "halt-rollback").ToList();
        Assert.NotEmpty(halts);
        Assert.All(halts, h => Assert.Contains("p99_latency_ms", h.Summary));
        Assert.Contains(halts, h => h.Summary.Contains("significantly above", StringComparison.Ordinal));
        Assert.Contains(o.Rollout.Decisions, d => d.Kind == "rollback");
        Assert.DoesNotContain(o.Rollout.Decisions, d => d.Kind == "advance");
        // Devices went back to the cached last good version without downloading it again (those that joined after the
        // rollout started never had it and download it).
        var cached = most - (Devices - o.OnBaselineAtStart);
        Assert.True(o.Result.Final.Switches >= Math.Max(1, cached), $"{o.Result.Final.Switches} switches back for {most} devices that ran the candidate, {o.OnBaselineAtStart} of {Devices} had the baseline");
        // The devices really measured the regression.
        foreach (var c in Classes)
        {
            var b = o.Result.Measured.Single(m => m.DeviceClass == c && m.Version == Baseline);
            var cand = o.Result.Measured.SingleOrDefault(m => m.DeviceClass == c && m.Version == Candidate);
            if (cand is { Inferences: > 2000 }) Assert.True(cand.P99Ms > 1.6 * b.P99Ms, $"{c}: candidate p99 {cand.P99Ms} vs baseline {b.P99Ms}");
        }
    }

    public static bool SlowOnOldDone(FleetTick t) =>
        t.Rollout is { Status: "completed" } r && r.Classes.GetValueOrDefault("ram<4GB") == "rolled-back"
        && t.Count("ram<4GB", Baseline) == ClassSize("ram<4GB") && t.Count("ram4-8GB", Candidate) == ClassSize("ram4-8GB") && t.Count("ram>=8GB", Candidate) == ClassSize("ram>=8GB");

    public static void CheckSlowOnOld(Outcome o)
    {
        Assert.Equal("completed", o.Rollout.Status);
        Assert.Equal(new Dictionary<string, string> { ["ram<4GB"] = "rolled-back" }, o.Rollout.Classes);
        Assert.Equal(ClassSize("ram<4GB"), o.Result.Final.Count("ram<4GB", Baseline));
        Assert.Equal(ClassSize("ram4-8GB") + ClassSize("ram>=8GB"), o.Result.Final.Count(Candidate));
        // The old class was halted while its cohort was still the first stage's (10% of 96, never half of it).
        Assert.InRange(o.MaxOnCandidate["ram<4GB"], 1, ClassSize("ram<4GB") / 4);
        var halt = Assert.Single(o.Rollout.Decisions, d => d.Kind == "halt-rollback");
        Assert.Equal("ram<4GB", halt.DeviceClass);
        Assert.Contains("p99_latency_ms", halt.Summary);
        Assert.Contains("significantly above", halt.Summary);
        Assert.Contains(o.Rollout.Decisions, d => d.Kind == "complete");
    }
}

[Collection("postgres")]
[Trait("Category", "Fleet")]
public class PostgresRolloutScenarioTests(PostgresFixture pg)
{
    private async Task<string?> Db(string name)
    {
        if (!pg.Available) { Console.WriteLine($"skipped: {pg.SkipReason}"); return null; }
        return "postgres:" + await pg.CreateDatabaseAsync(name + "_" + Guid.NewGuid().ToString("N")[..8]);
    }

    [Fact]
    public async Task Healthy_release_reaches_everyone_on_postgres()
    {
        if (await Db("healthy") is not { } db) return;
        RolloutScenarios.CheckHealthy(await RolloutScenarios.RunAsync("healthy", RolloutScenarios.HealthyDone, db));
    }

    [Fact]
    public async Task Release_with_twice_the_p99_is_halted_at_the_first_stage_and_rolled_back_on_postgres()
    {
        if (await Db("slow") is not { } db) return;
        RolloutScenarios.CheckSlowRelease(await RolloutScenarios.RunAsync("slow-release", RolloutScenarios.SlowReleaseDone, db));
    }

    [Fact]
    public async Task Release_slow_on_old_devices_is_halted_for_that_class_only_on_postgres()
    {
        if (await Db("old") is not { } db) return;
        RolloutScenarios.CheckSlowOnOld(await RolloutScenarios.RunAsync("slow-on-old", RolloutScenarios.SlowOnOldDone, db));
    }
}

[Trait("Category", "Fleet")]
public class SqliteRolloutScenarioTests
{
    [Fact]
    public async Task Healthy_release_reaches_everyone_on_sqlite() =>
        RolloutScenarios.CheckHealthy(await RolloutScenarios.RunAsync("healthy", RolloutScenarios.HealthyDone));

    [Fact]
    public async Task Release_with_twice_the_p99_is_halted_at_the_first_stage_and_rolled_back_on_sqlite() =>
        RolloutScenarios.CheckSlowRelease(await RolloutScenarios.RunAsync("slow-release", RolloutScenarios.SlowReleaseDone));

    [Fact]
    public async Task Release_slow_on_old_devices_is_halted_for_that_class_only_on_sqlite() =>
        RolloutScenarios.CheckSlowOnOld(await RolloutScenarios.RunAsync("slow-on-old", RolloutScenarios.SlowOnOldDone));
}
