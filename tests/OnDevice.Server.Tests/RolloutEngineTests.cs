using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging.Abstractions;
using OnDevice.Delivery;
using OnDevice.Server.Rollouts;
using OnDevice.Server.Storage;
using OnDevice.TestSupport;
using Xunit.Abstractions;

namespace OnDevice.Server.Tests;

/// <summary>A clock the test moves by hand.</summary>
public sealed class ManualTime(DateTimeOffset start) : TimeProvider
{
    public DateTimeOffset Now { get; private set; } = start;
    public override DateTimeOffset GetUtcNow() => Now;
    public void Advance(TimeSpan t) => Now += t;
}

/// <summary>A health source whose outcomes the test scripts; accepts rules like <c>metric &gt; 1.5</c>.</summary>
public sealed class ScriptedHealth : IRolloutHealth
{
    public Func<HealthQuery, IReadOnlyList<GuardOutcome>> Outcomes { get; set; } = _ => [];
    public List<HealthQuery> Queries { get; } = [];

    public void ValidateRule(string rule)
    {
        if (!Regex.IsMatch(rule, @"^[a-z0-9_]+ [<>] [0-9.]+$")) throw new ArgumentException($"cannot parse rule '{rule}' (metric > number)");
    }

    public Task<IReadOnlyList<GuardOutcome>> EvaluateAsync(HealthQuery query, CancellationToken cancellationToken = default)
    {
        lock (Queries) Queries.Add(query);
        return Task.FromResult(Outcomes(query));
    }

    public static GuardOutcome Outcome(string cls, GuardVerdict v, double candidate = 40, long samples = 5000) =>
        new(cls, "p99_latency_ms > 50", v, candidate, 20, samples, samples, v == GuardVerdict.Insufficient ? null : 0.001, $"{cls}: p99 {candidate} ms vs 20 ms over {samples} samples: {v}");
}

/// <summary>A rollout service in this process over a store a real server published into, on a hand-moved clock.</summary>
public sealed class EngineWorld : IAsyncDisposable
{
    public required RolloutService Rollouts { get; init; }
    public required IDeliveryStore Store { get; init; }
    public required ManualTime Time { get; init; }
    public required ScriptedHealth Health { get; init; }

    /// <summary>Publishes m 1.0 and m 2.0 (each with a big and a small variant) through a real server, then opens its store here.</summary>
    public static async Task<EngineWorld> CreateAsync(DeliveryWorld world, string? db)
    {
        var big1 = world.RandomFile("big1.bin", 30_000, 1);
        var small1 = world.RandomFile("small1.bin", 10_000, 2);
        var big2 = world.RandomFile("big2.bin", 31_000, 3);
        var small2 = world.RandomFile("small2.bin", 11_000, 4);
        await using (var server = await ServerProcess.StartAsync(world.Store(), world.Keys, db, null, "--rollout-tick", "1h"))
        {
            await world.PublishAsync(server, await world.PackAsync("m", "1.0", $"big={big1}:min_ram=8G", $"small={small1}"));
            await world.PublishAsync(server, await world.PackAsync("m", "2.0", $"big={big2}:min_ram=8G", $"small={small2}"));
        }
        var options = new ServerOptions { Store = world.Store(), Keys = world.Keys, Db = db };
        var store = ServerApp.OpenStore(options);
        var repo = new DeliveryRepository(store, new BlobStore(options.Store), ServerApp.LoadOnlineKey(options.Keys, Roles.Snapshot),
            ServerApp.LoadOnlineKey(options.Keys, Roles.Timestamp), options, TimeProvider.System);
        var time = new ManualTime(new DateTimeOffset(2026, 11, 1, 12, 0, 0, TimeSpan.Zero));
        var health = new ScriptedHealth();
        return new EngineWorld { Rollouts = new RolloutService(store, repo, health, time, options, NullLogger<RolloutService>.Instance), Store = store, Time = time, Health = health };
    }

    public async ValueTask DisposeAsync() => await Store.DisposeAsync();
}

/// <summary>The rollout engine's decisions on a hand-moved clock, on SQLite (and PostgreSQL in <see cref="PostgresRolloutTests"/>).</summary>
[Trait("Category", "Delivery")]
public class RolloutEngineTests(ITestOutputHelper output)
{
    public static DeviceDescription Small => new() { RamBytes = 3L << 30 };
    public static DeviceDescription Large => new() { RamBytes = 12L << 30 };

    [Fact]
    public async Task Stages_advance_on_schedule_and_the_rollout_completes() => await RolloutEngineScenarios.StagesAdvanceOnScheduleAsync(null);

    [Fact]
    public async Task Insufficient_health_holds_the_stage_until_every_guard_passes()
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var e = await EngineWorld.CreateAsync(world, null);
        var r = await e.Rollouts.StartAsync(new StartRolloutRequest("m", "2.0", Schedule: "1%@0s, 10%@60s, 100%@120s", Guards: ["p99_latency_ms > 50"]), "test");
        Assert.Equal("1.0", r.Baseline);

        // Guards but no data at all: wait.
        e.Time.Advance(TimeSpan.FromSeconds(61));
        Assert.Equal(0, await e.Rollouts.TickAsync());
        // Insufficient samples for one class: wait, however long; one wait decision per distinct reason.
        e.Health.Outcomes = _ => [ScriptedHealth.Outcome("ram<4GB", GuardVerdict.Insufficient, samples: 12), ScriptedHealth.Outcome("ram>=8GB", GuardVerdict.Pass)];
        for (int i = 0; i < 5; i++)
        {
            e.Time.Advance(TimeSpan.FromMinutes(10));
            Assert.Equal(0, await e.Rollouts.TickAsync());
        }
        var held = (await e.Rollouts.GetAsync(r.Id))!;
        Assert.Equal(0, held.Stage);
        Assert.Equal(1.0, held.Percent);
        var waits = held.Decisions!.Where(d => d.Kind == "wait").ToList();
        Assert.Equal(2, waits.Count); // "no data", then "ram<4GB insufficient"
        Assert.Contains("Insufficient", waits[0].Details.GetProperty("reason").GetString());
        Assert.Equal(12, waits[0].Details.GetProperty("outcomes")[0].GetProperty("candidateSamples").GetInt64());
        // The health query covers the stage window and compares against the baseline.
        var q = e.Health.Queries.Last();
        Assert.Equal(("m", "2.0", "1.0"), (q.Model, q.CandidateVersion, q.BaselineVersion));
        Assert.Equal(held.StageStarted, q.Since);
        Assert.Equal(e.Time.Now, q.Now);

        // Everything passes: the stage advances at once (its time has long come).
        e.Health.Outcomes = _ => [ScriptedHealth.Outcome("ram<4GB", GuardVerdict.Pass), ScriptedHealth.Outcome("ram>=8GB", GuardVerdict.Pass)];
        Assert.Equal(1, await e.Rollouts.TickAsync());
        var advanced = (await e.Rollouts.GetAsync(r.Id))!;
        Assert.Equal(10.0, advanced.Percent);
        Assert.Equal(e.Time.Now, advanced.StageStarted);
        var adv = advanced.Decisions!.First();
        Assert.Equal("advance", adv.Kind);
        Assert.Equal(2, adv.Details.GetProperty("outcomes").GetArrayLength());
        // The next stage needs its own full duration (60 s) from when this one began.
        e.Time.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal(0, await e.Rollouts.TickAsync());
        e.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, await e.Rollouts.TickAsync());
        Assert.Equal(RolloutStatus.Completed, (await e.Rollouts.GetAsync(r.Id))!.Status);
    }

    [Fact]
    public async Task A_failed_guard_halts_only_its_device_class()
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var e = await EngineWorld.CreateAsync(world, null);
        var r = await e.Rollouts.StartAsync(new StartRolloutRequest("m", "2.0", Schedule: "50%@0s, 100%@30s", Guards: ["p99_latency_ms > 50"], OnFailure: "pause"), "test");
        e.Health.Outcomes = _ => [ScriptedHealth.Outcome("ram<4GB", GuardVerdict.Fail, candidate: 95), ScriptedHealth.Outcome("ram>=8GB", GuardVerdict.Pass)];
        Assert.Equal(1, await e.Rollouts.TickAsync()); // halts ram<4GB, not yet due
        var v = (await e.Rollouts.GetAsync(r.Id))!;
        var cls = Assert.Single(v.Classes);
        Assert.Equal(("ram<4GB", ClassState.Paused, "engine"), (cls.DeviceClass, cls.State, cls.Actor));
        Assert.Contains("p99 95 ms", cls.Reason);
        var halt = v.Decisions!.First(d => d.Kind == "halt-pause");
        Assert.Equal(95, halt.Details.GetProperty("outcomes")[0].GetProperty("candidateValue").GetDouble());
        Assert.Equal(RolloutStatus.Active, v.Status);

        // The other class still advances when due (the halted one's failure does not block it).
        e.Time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(1, await e.Rollouts.TickAsync());
        v = (await e.Rollouts.GetAsync(r.Id))!;
        Assert.Equal((RolloutStatus.Completed, 100.0), (v.Status, v.Percent));

        // Assignment: large devices all get 2.0; small ones keep 2.0 only if they already have it, else 1.0.
        var ids = Enumerable.Range(0, 200).Select(i => $"device-{i:D5}").ToList();
        foreach (var id in ids)
        {
            var large = await e.Rollouts.AssignAsync("m", null, id, Large, "1.0");
            Assert.Equal(("2.0", AssignmentAction.Candidate, "big"), (large.Version, large.Action, large.Chosen!.Variant));
            var smallNew = await e.Rollouts.AssignAsync("m", null, id, Small, "1.0");
            Assert.Equal(("1.0", AssignmentAction.Baseline, "small"), (smallNew.Version, smallNew.Action, smallNew.Chosen!.Variant));
            var smallHas = await e.Rollouts.AssignAsync("m", null, id, Small, "2.0");
            Assert.Equal(("2.0", AssignmentAction.Keep), (smallHas.Version, smallHas.Action));
        }
        // A named device class is its own class: not halted.
        Assert.Equal("2.0", (await e.Rollouts.AssignAsync("m", null, "device-named", Small with { DeviceClass = "tablet" }, null)).Version);

        // Operator rolls the halted class back: its devices are told to return to 1.0.
        await e.Rollouts.ActAsync(r.Id, "rollback", new RolloutActionRequest("ram<4GB", "p99 regression"), "ops");
        var back = await e.Rollouts.AssignAsync("m", null, ids[0], Small, "2.0");
        Assert.Equal(("1.0", AssignmentAction.Return), (back.Version, back.Action));
        var audit = await e.Store.ListAuditAsync(50, null);
        Assert.Contains(audit, a => a.Action == "rollout.halt.pause" && a.Actor == "engine" && a.Subject.EndsWith("class ram<4GB") && a.Details.Contains("\"candidateValue\":95"));
        Assert.Contains(audit, a => a.Action == "rollout.rollback" && a.Actor == "ops" && a.Details.Contains("p99 regression"));
        output.WriteLine(JsonSerializer.Serialize(v.Decisions, new JsonSerializerOptions { WriteIndented = true }));
    }

    [Fact]
    public async Task Every_class_failing_with_on_failure_rollback_rolls_the_whole_rollout_back()
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var e = await EngineWorld.CreateAsync(world, null);
        var r = await e.Rollouts.StartAsync(new StartRolloutRequest("m", "2.0", Schedule: "1%@0s, 100%@1h", Guards: ["p99_latency_ms > 50"], OnFailure: "rollback"), "test");
        e.Health.Outcomes = _ => [ScriptedHealth.Outcome("ram<4GB", GuardVerdict.Fail, 100), ScriptedHealth.Outcome("ram>=8GB", GuardVerdict.Fail, 101)];
        Assert.Equal(1, await e.Rollouts.TickAsync());
        var v = (await e.Rollouts.GetAsync(r.Id))!;
        Assert.Equal(RolloutStatus.RolledBack, v.Status);
        Assert.All(v.Classes, c => Assert.Equal(ClassState.RolledBack, c.State));
        Assert.Equal(0, await e.Rollouts.TickAsync()); // no longer active
        // Everyone, also a new device of a class that never reported, returns to or stays on 1.0.
        var a = await e.Rollouts.AssignAsync("m", null, "a-new-device", new DeviceDescription { RamBytes = 5L << 30 }, "2.0");
        Assert.Equal(("1.0", AssignmentAction.Return, "ram4-8GB"), (a.Version, a.Action, a.DeviceClass));
    }

    [Fact]
    public async Task Cohorts_are_sticky_and_widening_only_adds_devices() => await RolloutEngineScenarios.StickyWideningAsync(null, output);

    [Fact]
    public async Task Bad_requests_are_refused_with_clear_errors()
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var e = await EngineWorld.CreateAsync(world, null);
        async Task<RepositoryException> Refused(StartRolloutRequest q) => await Assert.ThrowsAsync<RepositoryException>(() => e.Rollouts.StartAsync(q, "t"));
        Assert.Equal(404, (await Refused(new("nope", "1.0", Schedule: "100%@0h"))).Status);
        var v = await Refused(new("m", "9.9", Schedule: "100%@0h"));
        Assert.Equal(404, v.Status);
        Assert.Contains("published: 1.0, 2.0", v.Message);
        Assert.Equal(400, (await Refused(new("m", "2.0", Schedule: "10%@1h"))).Status);
        Assert.Contains("guard 'p99 is bad'", (await Refused(new("m", "2.0", Guards: ["p99 is bad"]))).Message);
        Assert.Equal(400, (await Refused(new("m", "2.0", OnFailure: "explode"))).Status);
        Assert.Equal(400, (await Refused(new("m", "2.0", Baseline: "2.0"))).Status);
        Assert.Equal(404, (await Refused(new("m", "2.0", Baseline: "0.1"))).Status);
        Assert.Equal(400, (await Refused(new("m", "2.0", Channel: "bad/channel"))).Status);
        Assert.Equal(400, (await Refused(new(null, "2.0"))).Status);
        var r = await e.Rollouts.StartAsync(new("m", "2.0", Schedule: "10%@0s, 100%@1h"), "t");
        Assert.Equal(409, (await Refused(new("m", "1.0", Schedule: "10%@0s, 100%@1h"))).Status);
        // Another channel is independent.
        var beta = await e.Rollouts.StartAsync(new("m", "2.0", Channel: "beta", Schedule: "50%@0s, 100%@1h"), "t");
        Assert.Equal("beta", beta.Channel);
        Assert.Equal(404, (await Assert.ThrowsAsync<RepositoryException>(() => e.Rollouts.ActAsync(999, "pause", new(), "t"))).Status);
        Assert.Equal(404, (await Assert.ThrowsAsync<RepositoryException>(() => e.Rollouts.ActAsync(r.Id, "explode", new(), "t"))).Status);
        Assert.Equal(409, (await Assert.ThrowsAsync<RepositoryException>(() => e.Rollouts.ActAsync(r.Id, "resume", new(), "t"))).Status);
        Assert.Equal(400, (await Assert.ThrowsAsync<RepositoryException>(() => e.Rollouts.ActAsync(r.Id, "advance", new("ram<4GB"), "t"))).Status);
        Assert.Equal(400, (await Assert.ThrowsAsync<RepositoryException>(() => e.Rollouts.AssignAsync("m", null, "short", Small, null))).Status);
        Assert.Equal(404, (await Assert.ThrowsAsync<RepositoryException>(() => e.Rollouts.AssignAsync("other", null, "device-00001", Small, null))).Status);
        // No rollout on a channel: the newest signed version (unrestricted).
        var none = await e.Rollouts.AssignAsync("m", "nightly", "device-00001", Small, null);
        Assert.Equal((AssignmentAction.Latest, (string?)null), (none.Action, none.Version));
    }
}

/// <summary>Engine scenarios run on both databases.</summary>
public static class RolloutEngineScenarios
{
    public static async Task StagesAdvanceOnScheduleAsync(string? db)
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var e = await EngineWorld.CreateAsync(world, db);
        var r = await e.Rollouts.StartAsync(new StartRolloutRequest("m", "2.0", Schedule: "10%@0s, 50%@60s, 100%@120s"), "alice");
        Assert.Equal((RolloutStatus.Active, 0, 10.0, "1.0"), (r.Status, r.Stage, r.Percent, r.Baseline));
        Assert.Equal(e.Time.Now.AddSeconds(60), r.NextStageDue);
        e.Time.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal(0, await e.Rollouts.TickAsync());
        e.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, await e.Rollouts.TickAsync());
        Assert.Equal(0, await e.Rollouts.TickAsync()); // a second tick at the same instant changes nothing
        var mid = (await e.Rollouts.GetAsync(r.Id))!;
        Assert.Equal((1, 50.0, RolloutStatus.Active), (mid.Stage, mid.Percent, mid.Status));
        e.Time.Advance(TimeSpan.FromSeconds(60));
        Assert.Equal(1, await e.Rollouts.TickAsync());
        var done = (await e.Rollouts.GetAsync(r.Id))!;
        Assert.Equal((2, 100.0, RolloutStatus.Completed), (done.Stage, done.Percent, done.Status));
        Assert.Equal(["complete", "advance", "start"], done.Decisions!.Select(d => d.Kind));
        Assert.Equal(50.0, done.Decisions![1].Details.GetProperty("toPercent").GetDouble());
        var audit = await e.Store.ListAuditAsync(20, null);
        Assert.Equal(["rollout.complete", "rollout.advance", "rollout.start"], audit.Where(a => a.Action.StartsWith("rollout.")).Select(a => a.Action));
        Assert.Equal("alice", audit.First(a => a.Action == "rollout.start").Actor);
        Assert.Equal("engine", audit.First(a => a.Action == "rollout.advance").Actor);
        Assert.Equal("2.0", (await e.Rollouts.AssignAsync("m", null, "any-device-1", RolloutEngineTests.Small, null)).Version);

        // The next rollout on the channel takes the completed candidate as its baseline.
        var next = await e.Rollouts.StartAsync(new StartRolloutRequest("m", "1.0", Schedule: "10%@0s, 100%@1h"), "alice");
        Assert.Equal("2.0", next.Baseline);
    }

    public static async Task StickyWideningAsync(string? db, ITestOutputHelper output)
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var e = await EngineWorld.CreateAsync(world, db);
        var r = await e.Rollouts.StartAsync(new StartRolloutRequest("m", "2.0", Schedule: "5%@0s, 20%@10s, 50%@20s, 100%@30s"), "t");
        const int n = 1500;
        var ids = Enumerable.Range(0, n).Select(i => $"install-{i:D6}").ToList();
        HashSet<string>? previous = null;
        foreach (var (pct, late) in new[] { (5, 0), (20, 1), (50, 2) })
        {
            var inCohort = new HashSet<string>();
            for (int i = 0; i < n; i++)
            {
                var id = ids[i];
                var a = await e.Rollouts.AssignAsync("m", null, id, i % 2 == 0 ? RolloutEngineTests.Small : RolloutEngineTests.Large, null);
                Assert.Equal(a.Bucket < pct * 100, a.Version == "2.0");
                if (a.Version == "2.0") inCohort.Add(id);
                else Assert.Equal(("1.0", AssignmentAction.Baseline), (a.Version, a.Action));
            }
            // Sticky: asking again gives the same answer.
            foreach (var id in ids.Take(50))
                Assert.Equal(inCohort.Contains(id), (await e.Rollouts.AssignAsync("m", null, id, RolloutEngineTests.Small, null)).Version == "2.0");
            // Binomial bounds: within 4.5 standard deviations of n·p.
            double p = pct / 100.0, sd = Math.Sqrt(n * p * (1 - p));
            Assert.InRange(inCohort.Count, n * p - 4.5 * sd, n * p + 4.5 * sd);
            if (previous is not null) Assert.True(previous.IsSubsetOf(inCohort), "widening removed a device from the cohort");
            output.WriteLine($"{pct}%: {inCohort.Count}/{n} devices (expected {n * p:0}, sd {sd:0.0})");
            previous = inCohort;
            // Devices that register after the start are included by the same rule.
            var newcomer = $"late-device-{late}";
            var na = await e.Rollouts.AssignAsync("m", null, newcomer, RolloutEngineTests.Large, null);
            Assert.Equal(Cohort.Bucket(newcomer, "m") < pct * 100, na.Version == "2.0");
            e.Time.Advance(TimeSpan.FromSeconds(10));
            Assert.Equal(1, await e.Rollouts.TickAsync());
        }
        var counts = await e.Store.CountAssignmentsAsync(r.Id);
        Assert.Equal(n + 3, counts.Sum(c => c.Devices));
    }
}
