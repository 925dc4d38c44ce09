using OnDevice.Server.Tests;

namespace OnDevice.Fleet.Tests;

/// <summary>The simulator against a real <c>ondevice serve</c> process.</summary>
[Trait("Category", "Fleet")]
public class FleetTests
{
    [Fact]
    public async Task Devices_install_the_release_over_a_flaky_network_and_measure_its_latency()
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys);
        await world.PublishAsync(server, await world.PackAsync("kws", "1.0", $"base={world.RandomFile("m.bin", 4096, 5)}"));
        var scenario = FleetScenario.Named("healthy");
        var sim = new FleetSimulator(new FleetOptions
        {
            Server = new Uri(server.BaseUrl), Model = "kws", TrustedRoot = File.ReadAllBytes(world.RootJson), Scenario = scenario, Candidate = "2.0",
            WorkDirectory = world.File("fleet"), Devices = 60, FailureRate = 0.1, Duration = TimeSpan.FromSeconds(25), Tick = TimeSpan.FromMilliseconds(250),
            CheckEvery = TimeSpan.FromSeconds(1), InferencesPerTick = 50,
            StopWhen = t => t.Seconds > 6 && t.Count("1.0") == 60,
        });
        var result = await sim.RunAsync();
        // Every device got the release despite one request in ten failing; the faults really happened.
        Assert.Equal(60, result.Final.Count("1.0"));
        Assert.True(result.NetworkFailures > result.Requests / 20, $"{result.NetworkFailures} of {result.Requests} requests failed");
        Assert.True(result.Final.FailedUpdates > 0);
        // Class shares 40/35/25 of 60 devices.
        Assert.Equal(new Dictionary<string, int> { ["ram<4GB"] = 24, ["ram4-8GB"] = 21, ["ram>=8GB"] = 15 }, result.Final.Versions.ToDictionary(kv => kv.Key, kv => kv.Value.Values.Sum()));
        // What the devices measured follows each class's baseline latency (bucket resolution ~10%).
        foreach (var cls in FleetScenario.DefaultClasses)
        {
            var m = result.Measured.Single(x => x.DeviceClass == cls.Name && x.Version == "1.0");
            Assert.True(m.Inferences > 5_000, $"{cls.Name}: {m.Inferences} inferences");
            Assert.InRange(m.P50Ms!.Value, cls.Baseline.Latency.P50Ms * 0.88, cls.Baseline.Latency.P50Ms * 1.12);
            Assert.InRange(m.P99Ms!.Value, cls.Baseline.Latency.P99Ms * 0.8, cls.Baseline.Latency.P99Ms * 1.2);
        }
    }
}
