using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using OnDevice.Client;
using OnDevice.Delivery;
using OnDevice.TestSupport;
using Xunit.Abstractions;

namespace OnDevice.Server.Tests;

/// <summary>Rollouts against a real <c>ondevice serve</c> process on SQLite: CLI and API actions, the engine on a short tick, clients.</summary>
[Trait("Category", "Delivery")]
public class RolloutServerTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Operator_actions_via_cli_and_api_are_audited_and_bad_input_is_refused()
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys);
        await RolloutScenarios.OperatorFlowAsync(world, server, output);
    }

    [Fact]
    public async Task The_engine_advances_a_seconds_schedule_on_its_tick()
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys, null, null, "--rollout-tick", "0.5s");
        await RolloutScenarios.EngineTicksAsync(world, server);
    }

    [Fact]
    public async Task Clients_follow_the_cohort_and_return_to_the_cached_last_good_version_on_rollback()
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys);
        await RolloutScenarios.ClientsFollowAndReturnAsync(world, server);
    }

    [Fact]
    public async Task The_server_cannot_make_a_client_install_an_unsigned_version_and_a_lost_assign_call_uses_the_last_answer()
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys);
        var v1 = world.RandomFile("v1.bin", 40_000, 31);
        var v2 = world.RandomFile("v2.bin", 41_000, 32);
        await world.PublishAsync(server, await world.PackAsync("m", "1.0", $"a={v1}"));
        await world.PublishAsync(server, await world.PackAsync("m", "2.0", $"a={v2}"));
        var mitm = new InterceptingHandler();
        using var u = Clients.Updater(world, server.BaseUrl, "m", Clients.Device(Clients.GiB), "mitm", handler: mitm);
        await RolloutScenarios.StartAsync(server, "m", "2.0", "1%@0s, 100%@1h", "1.0");
        var outside = await u.UpdateAsync();
        Assert.True(outside.Status == UpdateStatus.Installed, $"{outside.Status} {outside.Error}");
        var expected = Cohort.Bucket(File.ReadAllText(Path.Combine(world.File("cache-mitm"), "install-id")).Trim(), "m") < 100 ? "2.0" : "1.0";
        Assert.Equal(expected, outside.Current!.Version);

        // A server (or a man in the middle) assigning a version no signed release contains: refused, nothing changes.
        HttpResponseMessage Assign(string json) => new(HttpStatusCode.OK) { Content = new StringContent(json, System.Text.Encoding.UTF8, "application/json") };
        mitm.Intercept = r => r.RequestUri!.AbsolutePath.StartsWith("/v1/assign/") ? Assign("""{"version":"6.6.6","action":"candidate"}""") : null;
        var lie = await u.UpdateAsync();
        Assert.Equal(UpdateStatus.Failed, lie.Status);
        Assert.IsType<UnsignedAssignmentException>(lie.Error);
        Assert.Equal(expected, u.GetInstalledModel()!.Version);

        // The assign endpoint failing: the last answer it gave still holds.
        mitm.Intercept = r => r.RequestUri!.AbsolutePath.StartsWith("/v1/assign/") ? new HttpResponseMessage(HttpStatusCode.ServiceUnavailable) : null;
        var down = await u.UpdateAsync();
        Assert.True(down.Status == UpdateStatus.UpToDate, $"{down.Status} {down.Error}");
        Assert.Equal(expected, u.GetInstalledModel()!.Version);
        mitm.Intercept = null;
        Clients.AssertInvariant(u, [DeliveryWorld.Sha256(v1), DeliveryWorld.Sha256(v2)]);
    }
}

/// <summary>Rollouts on a real PostgreSQL: the engine on a hand-moved clock, the operator flow and clients over HTTP.</summary>
[Collection("postgres")]
[Trait("Category", "Delivery")]
public class PostgresRolloutTests(PostgresFixture pg, ITestOutputHelper output)
{
    private async Task<string?> Db(string prefix)
    {
        if (!pg.Available) { output.WriteLine($"SKIPPED: {pg.SkipReason}"); return null; }
        return "postgres:" + await pg.CreateDatabaseAsync(prefix + "_" + Guid.NewGuid().ToString("N")[..8]);
    }

    [Fact]
    public async Task Stages_advance_on_schedule_on_postgres()
    {
        if (await Db("ro_stage") is not { } db) return;
        await RolloutEngineScenarios.StagesAdvanceOnScheduleAsync(db);
    }

    [Fact]
    public async Task Cohorts_are_sticky_and_widening_only_adds_devices_on_postgres()
    {
        if (await Db("ro_cohort") is not { } db) return;
        await RolloutEngineScenarios.StickyWideningAsync(db, output);
    }

    [Fact]
    public async Task Operator_actions_and_clients_on_postgres()
    {
        if (await Db("ro_ops") is not { } db) return;
        using var world = await DeliveryWorld.CreateAsync();
        await using (var server = await ServerProcess.StartAsync(world.Store(), world.Keys, db, null, "--rollout-tick", "0.5s"))
        {
            await RolloutScenarios.OperatorFlowAsync(world, server, output);
            await RolloutScenarios.EngineTicksAsync(world, server, "n");
        }
        using var world2 = await DeliveryWorld.CreateAsync();
        var db2 = await Db("ro_client");
        await using var server2 = await ServerProcess.StartAsync(world2.Store(), world2.Keys, db2);
        await RolloutScenarios.ClientsFollowAndReturnAsync(world2, server2);
    }

    [Fact]
    public async Task Two_replicas_advance_each_stage_once_and_see_each_others_actions()
    {
        if (await Db("ro_two") is not { } db) return;
        using var world = await DeliveryWorld.CreateAsync();
        await using var a = await ServerProcess.StartAsync(world.Store(), world.Keys, db, null, "--rollout-tick", "0.3s");
        await using var b = await ServerProcess.StartAsync(world.Store(), world.Keys, db, null, "--rollout-tick", "0.3s");
        await world.PublishAsync(a, await world.PackAsync("m", "1.0", $"a={world.RandomFile("r1.bin", 9_000, 41)}"));
        await world.PublishAsync(a, await world.PackAsync("m", "2.0", $"a={world.RandomFile("r2.bin", 9_000, 42)}"));

        // Both engines tick on one database: every stage is advanced exactly once.
        var id = await RolloutScenarios.StartAsync(a, "m", "2.0", "10%@0s, 30%@1s, 60%@2s, 100%@3s");
        using var http = b.Http(b.Token);
        var deadline = DateTime.UtcNow.AddSeconds(40);
        JsonElement v;
        do
        {
            await Task.Delay(300);
            v = await http.GetFromJsonAsync<JsonElement>($"/api/v1/rollouts/{id}");
        } while (v.GetProperty("status").GetString() != "completed" && DateTime.UtcNow < deadline);
        Assert.Equal(["complete", "advance", "advance", "start"], v.GetProperty("decisions").EnumerateArray().Select(d => d.GetProperty("kind").GetString()));

        // An operator action through A reaches devices asking B within its cache time (1 s).
        using var op = a.Http(a.Token);
        (await op.PostAsJsonAsync($"/api/v1/rollouts/{id}/rollback", new { reason = "replica test" })).EnsureSuccessStatusCode();
        using var device = b.Http();
        string? action = null;
        var until = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < until && action != "return")
        {
            action = (await RolloutScenarios.AssignAsync(device, "m", "replica-device-1", 1L << 30, "2.0")).GetProperty("action").GetString();
            if (action != "return") await Task.Delay(200);
        }
        Assert.Equal("return", action);
        output.WriteLine($"rollback through A seen by B within {10 - (until - DateTime.UtcNow).TotalSeconds:0.0} s");
    }
}

public static class RolloutScenarios
{
    private static string[] Cli(ServerProcess server, params string[] args) => ["rollout", .. args, "--server", server.BaseUrl, "--token", server.Token];

    private static async Task<JsonElement> CliJson(ServerProcess server, params string[] args)
    {
        var r = await Ondevice.RunAsync(Cli(server, [.. args, "--json"]));
        Assert.True(r.ExitCode == 0, $"ondevice rollout {string.Join(' ', args)}: {r.Stderr}{r.Stdout}");
        return JsonDocument.Parse(r.Stdout).RootElement.Clone();
    }

    public static async Task<long> StartAsync(ServerProcess server, string model, string version, string schedule, string? baseline = null)
    {
        using var op = server.Http(server.Token);
        using var r = await op.PostAsJsonAsync("/api/v1/rollouts", new { model, version, schedule, baseline });
        Assert.True(r.StatusCode == HttpStatusCode.Created, await r.Content.ReadAsStringAsync());
        return (await r.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt64();
    }

    private static async Task<string> CliFails(ServerProcess server, params string[] args)
    {
        var r = await Ondevice.RunAsync(Cli(server, args));
        Assert.True(r.ExitCode == 1, $"expected failure of ondevice rollout {string.Join(' ', args)}: {r.Stdout}");
        return r.Stderr;
    }

    public static async Task<JsonElement> AssignAsync(HttpClient http, string model, string installId, long ram, string? installed, string? deviceClass = null)
    {
        var body = new AssignmentRequest { InstallId = installId, InstalledVersion = installed, Device = new DeviceDescription { RamBytes = ram, DeviceClass = deviceClass } }.ToJson();
        using var r = await http.PostAsync($"/v1/assign/{model}", new StringContent(body.ToJsonString(), System.Text.Encoding.UTF8, "application/json"));
        Assert.True(r.IsSuccessStatusCode, $"assign: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
        return await r.Content.ReadFromJsonAsync<JsonElement>();
    }

    /// <summary>An install id whose bucket for <paramref name="model"/> is below (or not below) <paramref name="basisPoints"/>.</summary>
    public static string InstallId(string model, int basisPoints, bool inside, string prefix = "device") =>
        Enumerable.Range(0, 10_000).Select(i => $"{prefix}-{i:D5}").First(id => Cohort.Bucket(id, model) < basisPoints == inside);

    public static async Task OperatorFlowAsync(DeliveryWorld world, ServerProcess server, ITestOutputHelper output)
    {
        await world.PublishAsync(server, await world.PackAsync("m", "1.0", $"a={world.RandomFile("a1.bin", 20_000, 1)}"));
        await world.PublishAsync(server, await world.PackAsync("m", "2.0", $"a={world.RandomFile("a2.bin", 21_000, 2)}"));

        // Bad input: clear errors with the HTTP status.
        Assert.Contains("404", await CliFails(server, "start", "nope", "1.0", "--schedule", "100%@0h"));
        var noVersion = await CliFails(server, "start", "m", "9.9");
        Assert.Contains("404", noVersion);
        Assert.Contains("no published version 9.9", noVersion);
        var badSchedule = await CliFails(server, "start", "m", "2.0", "--schedule", "10%@1h, 5%@2h");
        Assert.Contains("400", badSchedule);
        Assert.Contains("schedule", badSchedule);
        var badRule = await CliFails(server, "start", "m", "2.0", "--guard", "p99_latency_ms > 50");
        Assert.Contains("400", badRule);
        Assert.Contains("guard 'p99_latency_ms > 50'", badRule);
        Assert.Contains("400", await CliFails(server, "start", "m", "2.0", "--on-failure", "explode"));
        var reader = await server.CreateTokenAsync("viewer", "reader");
        using (var asReader = server.Http(reader))
            Assert.Equal(HttpStatusCode.Forbidden, (await asReader.PostAsJsonAsync("/api/v1/rollouts", new { model = "m", version = "2.0" })).StatusCode);
        using var op = server.Http(server.Token);
        using (var bad = await op.PostAsync("/api/v1/rollouts", new StringContent("{not json", System.Text.Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
            Assert.Contains("malformed JSON", await bad.Content.ReadAsStringAsync());
        }
        using (var unknown = await op.PostAsJsonAsync("/api/v1/rollouts", new { model = "m", version = "2.0", onFailure = "rollback" }))
        {
            Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode); // a misspelt field is an error, not a silent default
            Assert.Contains("onFailure", await unknown.Content.ReadAsStringAsync());
        }
        Assert.Equal(HttpStatusCode.NotFound, (await op.GetAsync("/api/v1/rollouts/999")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await op.PostAsync("/api/v1/rollouts/999/pause", null)).StatusCode);
        using var device = server.Http();
        Assert.Equal(HttpStatusCode.BadRequest, (await device.PostAsJsonAsync("/v1/assign/m", new { channel = "stable" })).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await device.PostAsJsonAsync("/v1/assign/m", new { install_id = "installation-1", device = new { device_class = "has space" } })).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await device.PostAsJsonAsync("/v1/assign/other", new { install_id = "installation-1" })).StatusCode);
        // No rollout yet: unrestricted.
        Assert.Equal("latest", (await AssignAsync(device, "m", "installation-1", 1L << 30, null)).GetProperty("action").GetString());

        // Start (CLI), a second start conflicts.
        var started = await CliJson(server, "start", "m", "2.0", "--schedule", "10%@0s, 50%@1h, 100%@2h");
        long id = started.GetProperty("id").GetInt64();
        Assert.Equal(("active", 10.0, "1.0", "stable"), (started.GetProperty("status").GetString(), started.GetProperty("percent").GetDouble(),
            started.GetProperty("baseline").GetString(), started.GetProperty("channel").GetString()));
        Assert.Contains("409", await CliFails(server, "start", "m", "2.0"));

        var inside = InstallId("m", 1000, true);
        var outside = InstallId("m", 1000, false);
        Assert.Equal("2.0", (await AssignAsync(device, "m", inside, 1L << 30, "1.0")).GetProperty("version").GetString());
        Assert.Equal("1.0", (await AssignAsync(device, "m", outside, 1L << 30, "1.0")).GetProperty("version").GetString());

        // pause (CLI) / resume (API) / advance (CLI).
        Assert.Equal("paused", (await CliJson(server, "pause", "m", "--reason", "looking at crash reports")).GetProperty("status").GetString());
        Assert.Equal("2.0", (await AssignAsync(device, "m", inside, 1L << 30, "1.0")).GetProperty("version").GetString()); // a pause freezes, it does not shrink
        Assert.Contains("409", await CliFails(server, "pause", "m"));
        using (var resume = await op.PostAsJsonAsync($"/api/v1/rollouts/{id}/resume", new { reason = "false alarm" }))
        {
            Assert.Equal(HttpStatusCode.OK, resume.StatusCode);
            Assert.Equal("active", (await resume.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("status").GetString());
        }
        var advanced = await CliJson(server, "advance", "--id", id.ToString());
        Assert.Equal((1, 50.0), (advanced.GetProperty("stage").GetInt32(), advanced.GetProperty("percent").GetDouble()));
        var between = Enumerable.Range(0, 1000).Select(i => $"mid-device-{i:D4}").First(x => Cohort.Bucket(x, "m") is >= 1000 and < 5000);
        Assert.Equal("2.0", (await AssignAsync(device, "m", between, 1L << 30, "1.0")).GetProperty("version").GetString());

        // Roll back one device class (CLI): its devices return to 1.0, others are unaffected.
        var classBack = await CliJson(server, "rollback", "m", "--class", "ram<4GB", "--reason", "slow on small phones");
        Assert.Equal("rolled-back", classBack.GetProperty("classes").EnumerateArray().Single(c => c.GetProperty("deviceClass").GetString() == "ram<4GB").GetProperty("state").GetString());
        var small = await AssignAsync(device, "m", inside, 2L << 30, "2.0");
        Assert.Equal(("1.0", "return", "ram<4GB"), (small.GetProperty("version").GetString(), small.GetProperty("action").GetString(), small.GetProperty("deviceClass").GetString()));
        Assert.Equal("2.0", (await AssignAsync(device, "m", inside, 16L << 30, "2.0")).GetProperty("version").GetString());

        // status: JSON with classes, decisions and cohort sizes; text for people.
        var status = await CliJson(server, "status", "m");
        Assert.Equal(id, status.GetProperty("id").GetInt64());
        Assert.Equal(["operator-rollback", "operator-advance", "operator-resume", "operator-pause", "start"],
            status.GetProperty("decisions").EnumerateArray().Select(d => d.GetProperty("kind").GetString()));
        Assert.True(status.GetProperty("cohorts").EnumerateArray().Sum(c => c.GetProperty("devices").GetInt64()) >= 2);
        var text = await Ondevice.RunAsync(Cli(server, "status", "m"));
        Assert.Equal(0, text.ExitCode);
        Assert.Contains($"rollout {id}: m 2.0 on stable", text.Stdout);
        Assert.Contains("class ram<4GB: rolled-back", text.Stdout);
        output.WriteLine(text.Stdout);
        var list = await CliJson(server, "status");
        Assert.Equal(1, list.GetArrayLength());

        // abort (CLI): devices with 2.0 keep it, nobody else gets it; a finished rollout cannot resume.
        Assert.Equal("aborted", (await CliJson(server, "abort", "m")).GetProperty("status").GetString());
        var keep = await AssignAsync(device, "m", outside, 16L << 30, "2.0");
        Assert.Equal(("2.0", "keep"), (keep.GetProperty("version").GetString(), keep.GetProperty("action").GetString()));
        Assert.Equal("1.0", (await AssignAsync(device, "m", inside, 16L << 30, "1.0")).GetProperty("version").GetString());
        Assert.Contains("409", await CliFails(server, "resume", "m"));

        // Every action is in the audit log with its actor.
        using var rh = server.Http(reader);
        var audit = (await rh.GetFromJsonAsync<JsonElement>("/api/v1/audit")).EnumerateArray().Where(a => a.GetProperty("action").GetString()!.StartsWith("rollout.")).ToList();
        Assert.Equal(["rollout.abort", "rollout.rollback", "rollout.advance", "rollout.resume", "rollout.pause", "rollout.start"], audit.Select(a => a.GetProperty("action").GetString()));
        Assert.All(audit, a => Assert.Equal("admin (operator)", a.GetProperty("actor").GetString()));
        Assert.Contains("slow on small phones", audit[1].GetProperty("details").GetString());
        Assert.EndsWith("class ram<4GB", audit[1].GetProperty("subject").GetString());
    }

    public static async Task EngineTicksAsync(DeliveryWorld world, ServerProcess server, string model = "e")
    {
        await world.PublishAsync(server, await world.PackAsync(model, "1.0", $"a={world.RandomFile(model + "1.bin", 5_000, 11)}"));
        await world.PublishAsync(server, await world.PackAsync(model, "2.0", $"a={world.RandomFile(model + "2.bin", 5_000, 12)}"));
        var started = await CliJson(server, "start", model, "2.0", "--schedule", "20%@0s, 60%@1s, 100%@2s");
        long id = started.GetProperty("id").GetInt64();
        using var http = server.Http(server.Token);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        JsonElement v;
        var seen = new List<double>();
        do
        {
            await Task.Delay(200);
            v = await http.GetFromJsonAsync<JsonElement>($"/api/v1/rollouts/{id}");
            seen.Add(v.GetProperty("percent").GetDouble());
        } while (v.GetProperty("status").GetString() != "completed" && DateTime.UtcNow < deadline);
        Assert.Equal("completed", v.GetProperty("status").GetString());
        Assert.Equal(["complete", "advance", "start"], v.GetProperty("decisions").EnumerateArray().Select(d => d.GetProperty("kind").GetString()));
        Assert.Equal(seen.Order(), seen); // percentages only grow
        var everyone = await AssignAsync(http, model, InstallId(model, 2000, false), 1L << 30, "1.0");
        Assert.Equal("2.0", everyone.GetProperty("version").GetString());
    }

    public static async Task ClientsFollowAndReturnAsync(DeliveryWorld world, ServerProcess server)
    {
        var v1 = world.RandomFile("v1.bin", 60_000, 21);
        var v2 = world.RandomFile("v2.bin", 61_000, 22);
        string[] shas = [DeliveryWorld.Sha256(v1), DeliveryWorld.Sha256(v2)];
        await world.PublishAsync(server, await world.PackAsync("m", "1.0", $"a={v1}"));
        var downloads = new Dictionary<string, int>();
        ModelUpdater Client(string name, string installId, int keep = 3)
        {
            var u = new ModelUpdater(new ModelUpdaterOptions
            {
                Server = new Uri(server.BaseUrl), Model = "m", CacheDirectory = world.File("cache-" + name), TrustedRoot = File.ReadAllBytes(world.RootJson),
                Device = Clients.Device(4 * Clients.GiB), KeepVersions = keep, InstallId = installId, InitialBackoff = TimeSpan.FromMilliseconds(50),
            });
            downloads[name] = 0;
            u.DownloadStarted += (_, _) => downloads[name]++;
            return u;
        }
        using var a = Client("a", InstallId("m", 5000, true, "client-a"));
        using var b = Client("b", InstallId("m", 5000, false, "client-b"));
        using var c = Client("c", InstallId("m", 5000, true, "client-c"), keep: 1);
        foreach (var u in new[] { a, b, c })
        {
            var r = await u.UpdateAsync();
            Assert.True(r.Status == UpdateStatus.Installed, $"{r.Status} {r.Error}");
            Assert.Equal("1.0", r.Current!.Version);
        }

        // 2.0 at 50%: a and c (in the cohort) install it; b stays on 1.0 although 2.0 is the newest signed version.
        await world.PublishAsync(server, await world.PackAsync("m", "2.0", $"a={v2}"));
        await CliJson(server, "start", "m", "2.0", "--schedule", "50%@0s, 100%@1h");
        var ra = await a.UpdateAsync();
        Assert.Equal((UpdateStatus.Installed, "2.0"), (ra.Status, ra.Current!.Version));
        Assert.False((await a.CheckAsync()).UpdateAvailable);
        Assert.Equal("2.0", (await c.UpdateAsync()).Current!.Version);
        var stay = await b.UpdateAsync();
        Assert.Equal((UpdateStatus.UpToDate, "1.0"), (stay.Status, stay.Current!.Version));
        Assert.Equal(["2.0", "1.0"], a.ListInstalled().Select(m => m.Version));
        Assert.Equal(["2.0"], c.ListInstalled().Select(m => m.Version)); // KeepVersions 1 evicted 1.0

        // Advance to 100%: b follows.
        await CliJson(server, "advance", "m");
        Assert.Equal((UpdateStatus.Installed, "2.0"), ((await b.UpdateAsync()).Status, b.GetInstalledModel()!.Version));

        // Fast rollback: a and b return to their cached, verified 1.0 without downloading; c downloads it again.
        await CliJson(server, "rollback", "m", "--reason", "crash spike");
        var before = new Dictionary<string, int>(downloads);
        foreach (var u in new[] { a, b })
        {
            var check = await u.CheckAsync();
            Assert.True(check.UpdateAvailable, "a pending return to the cached 1.0 is an available update");
            Assert.Equal(("2.0", "1.0"), (check.Installed!.Version, check.Candidate!.Target.Version));
            var r = await u.UpdateAsync();
            Assert.True(r.Status == UpdateStatus.Switched, $"{r.Status} {r.Error}");
            Assert.Equal("1.0", r.Current!.Version);
            Assert.Equal(shas[0], DeliveryWorld.Sha256(u.GetInstalledModelPath()!));
            Assert.Equal(UpdateStatus.UpToDate, (await u.UpdateAsync()).Status);
            Clients.AssertInvariant(u, shas);
        }
        Assert.Equal(before["a"], downloads["a"]);
        Assert.Equal(before["b"], downloads["b"]);
        var rc = await c.UpdateAsync();
        Assert.True(rc.Status == UpdateStatus.Installed, $"{rc.Status} {rc.Error}");
        Assert.Equal(("1.0", before["c"] + 1), (rc.Current!.Version, downloads["c"]));
        Assert.Equal(["1.0"], c.ListInstalled().Select(m => m.Version)); // the last good version is kept, the bad one goes
        Clients.AssertInvariant(c, shas);
        // Across a restart of the app the rolled-back choice holds (the newer 2.0 is still cached but not used).
        using var a2 = Client("a", InstallId("m", 5000, true, "client-a"));
        Assert.Equal("1.0", a2.GetInstalledModel()!.Version);
    }
}
