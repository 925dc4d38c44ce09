using OnDevice.Server.Storage;
using OnDevice.TestSupport;
using Xunit.Abstractions;

namespace OnDevice.Server.Tests;

/// <summary>Telemetry ingest and guards on a real PostgreSQL.</summary>
[Collection("postgres")]
[Trait("Category", "Delivery")]
public class PostgresTelemetryTests(PostgresFixture pg, ITestOutputHelper output)
{
    private bool Skip()
    {
        if (pg.Available) return false;
        output.WriteLine($"SKIPPED: {pg.SkipReason}");
        return true;
    }

    [Fact]
    public async Task Batches_are_aggregated_queried_and_hostile_ones_rejected_on_postgres()
    {
        if (Skip()) return;
        using var world = await DeliveryWorld.CreateAsync();
        var db = "postgres:" + await pg.CreateDatabaseAsync("tel_" + Guid.NewGuid().ToString("N")[..8]);
        await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys, db);
        await TelemetryScenarios.IngestQueryAndRejectAsync(server);
    }

    [Fact]
    public async Task Concurrent_posts_to_two_replicas_sum_exactly_on_postgres()
    {
        if (Skip()) return;
        using var world = await DeliveryWorld.CreateAsync();
        var db = "postgres:" + await pg.CreateDatabaseAsync("telc_" + Guid.NewGuid().ToString("N")[..8]);
        await using var a = await ServerProcess.StartAsync(world.Store(), world.Keys, db);
        await using var b = await ServerProcess.StartAsync(world.Store(), world.Keys, db);
        await TelemetryScenarios.ConcurrentPostsAsync(a, devices: 60, replica: b);
    }

    [Fact]
    public async Task Guards_decide_per_device_class_on_postgres()
    {
        if (Skip()) return;
        var cs = await pg.CreateDatabaseAsync("telh_" + Guid.NewGuid().ToString("N")[..8]);
        await using var store = new PostgresDeliveryStore(cs);
        await TelemetryScenarios.HealthPerDeviceClassAsync(store);
    }
}
