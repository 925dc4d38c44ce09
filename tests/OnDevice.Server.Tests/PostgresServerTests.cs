using System.Net.Http.Json;
using System.Text.Json;
using OnDevice.Client;
using OnDevice.TestSupport;
using Xunit.Abstractions;

namespace OnDevice.Server.Tests;

/// <summary>The delivery server on a real PostgreSQL, and two server processes sharing one database.</summary>
[Collection("postgres")]
[Trait("Category", "Delivery")]
public class PostgresServerTests(PostgresFixture pg, ITestOutputHelper output)
{
    private bool Skip()
    {
        if (pg.Available) return false;
        output.WriteLine($"SKIPPED: {pg.SkipReason}");
        return true;
    }

    [Fact]
    public async Task Release_from_the_cli_is_resolved_and_installed_on_postgres()
    {
        if (Skip()) return;
        using var world = await DeliveryWorld.CreateAsync();
        var db = "postgres:" + await pg.CreateDatabaseAsync("e2e_" + Guid.NewGuid().ToString("N")[..8]);
        await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys, db);
        await Scenarios.PublishResolveInstallAsync(world, server);
    }

    [Fact]
    public async Task Two_server_processes_share_one_database()
    {
        if (Skip()) return;
        using var world = await DeliveryWorld.CreateAsync();
        var db = "postgres:" + await pg.CreateDatabaseAsync("two_" + Guid.NewGuid().ToString("N")[..8]);
        var store = world.Store();
        await using var a = await ServerProcess.StartAsync(store, world.Keys, db);
        await using var b = await ServerProcess.StartAsync(store, world.Keys, db);

        // Publish through A; a client of B installs it.
        var v1 = world.RandomFile("v1.bin", 80_000, 1);
        await world.PublishAsync(a, await world.PackAsync("m", "1.0", $"a={v1}"));
        using var ub = Clients.Updater(world, b.BaseUrl, "m", Clients.Device(4 * Clients.GiB), "b");
        var deadline = DateTime.UtcNow.AddSeconds(10);
        UpdateResult r;
        do { r = await ub.UpdateAsync(); } while (r.Status != UpdateStatus.Installed && DateTime.UtcNow < deadline && await Delay());
        Assert.Equal(UpdateStatus.Installed, r.Status);
        Assert.Equal(DeliveryWorld.Sha256(v1), DeliveryWorld.Sha256(ub.GetInstalledModelPath()!));

        // Concurrent publishes through both replicas: all land, in one linear history.
        var files = Enumerable.Range(0, 6).Select(i => world.RandomFile($"c{i}.bin", 20_000 + i, 100 + i)).ToList();
        var pkgs = await Task.WhenAll(files.Select((f, i) => world.PackAsync("m", $"2.{i}", $"a={f}")));
        await Task.WhenAll(pkgs.Select((p, i) => world.PublishAsync(i % 2 == 0 ? a : b, p)));

        using var http = a.Http(a.Token);
        var releases = await http.GetFromJsonAsync<JsonElement>("/api/v1/releases?model=m");
        Assert.Equal(7, releases.GetArrayLength());
        var audit = await http.GetFromJsonAsync<JsonElement>("/api/v1/audit?limit=1000");
        var snapshots = audit.EnumerateArray().Where(x => x.GetProperty("action").GetString() == "release.publish")
            .Select(x => JsonDocument.Parse(x.GetProperty("details").GetString()!).RootElement.GetProperty("snapshot").GetInt64()).Order().ToList();
        Assert.Equal(snapshots.Distinct().Count(), snapshots.Count);

        // The client through A sees the newest release (2.5) and installs it; B's client updates too.
        using var ua = Clients.Updater(world, a.BaseUrl, "m", Clients.Device(4 * Clients.GiB), "a");
        var ra = await ua.UpdateAsync();
        Assert.Equal(UpdateStatus.Installed, ra.Status);
        Assert.Equal("2.5", ra.Candidate!.Target.Version);
        await Task.Delay(1100); // B's timestamp cache
        var rb = await ub.UpdateAsync();
        Assert.Equal(UpdateStatus.Installed, rb.Status);
        Assert.Equal(DeliveryWorld.Sha256(files[5]), DeliveryWorld.Sha256(ub.GetInstalledModelPath()!));
        Clients.AssertInvariant(ub, [DeliveryWorld.Sha256(v1), .. files.Select(DeliveryWorld.Sha256)]);
        _ = RepoPaths.IsCi;
    }

    private static async Task<bool> Delay()
    {
        await Task.Delay(200);
        return true;
    }
}
