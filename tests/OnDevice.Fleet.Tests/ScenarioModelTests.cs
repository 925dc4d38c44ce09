using OnDevice.Delivery.Telemetry;

namespace OnDevice.Fleet.Tests;

/// <summary>The simulator's building blocks: latency distributions, scenarios, class specs.</summary>
public class ScenarioModelTests
{
    [Theory]
    [InlineData(0.5, 0.0)]
    [InlineData(0.99, 2.3263478740408408)]
    [InlineData(0.975, 1.959963984540054)]
    [InlineData(0.001, -3.090232306167813)]
    [InlineData(0.8413447460685429, 1.0)]
    public void Probit_matches_the_normal_quantiles(double p, double z) => Assert.Equal(z, LatencyProfile.Probit(p), 1e-8);

    [Fact]
    public void Lognormal_samples_have_the_configured_median_and_p99()
    {
        var profile = new LatencyProfile(10, 30);
        Assert.Equal(10, profile.Quantile(0.5), 1e-6);
        Assert.Equal(30, profile.Quantile(0.99), 1e-6);
        var rng = new Random(7);
        var xs = Enumerable.Range(0, 200_000).Select(_ => profile.Sample(rng)).Order().ToArray();
        Assert.InRange(xs[100_000], 9.85, 10.15);
        Assert.InRange(xs[198_000], 29.0, 31.0);
        // The same through the telemetry buckets the devices report (bucket resolution is ~10%).
        var counts = new long[LatencyBuckets.Count];
        foreach (var x in xs) counts[LatencyBuckets.Of(x)]++;
        Assert.InRange(LatencyBuckets.Quantile(counts, 0.99), 27, 33);
    }

    [Fact]
    public void Scenarios_make_the_candidate_slow_where_they_say()
    {
        var healthy = FleetScenario.Named("healthy");
        var slow = FleetScenario.Named("slow-release");
        var old = FleetScenario.Named("slow-on-old");
        foreach (var c in FleetScenario.DefaultClasses)
        {
            Assert.Equal(c.Baseline, healthy.Behavior(c, "2.0", "2.0"));
            Assert.Equal(2 * c.Baseline.Latency.P99Ms, slow.Behavior(c, "2.0", "2.0").Latency.P99Ms, 9);
            Assert.Equal(c.Baseline, slow.Behavior(c, "1.0", "2.0"));
        }
        var classes = FleetScenario.DefaultClasses;
        Assert.Equal(["ram<4GB", "ram4-8GB", "ram>=8GB"], classes.Select(c => c.Name));
        Assert.Equal(2.5 * classes[0].Baseline.Latency.P99Ms, old.Behavior(classes[0], "2.0", "2.0").Latency.P99Ms, 9);
        Assert.Equal(classes[1].Baseline, old.Behavior(classes[1], "2.0", "2.0"));
        Assert.Equal(classes[2].Baseline, old.Behavior(classes[2], "2.0", "2.0"));
        Assert.Throws<ArgumentException>(() => FleetScenario.Named("nope"));
    }

    [Fact]
    public void Class_specs_parse_and_bad_ones_say_why()
    {
        var c = FleetScenario.ParseClass("2G:0.5:30/80:1e-4");
        Assert.Equal(2L << 30, c.RamBytes);
        Assert.Equal("ram<4GB", c.Name);
        Assert.Equal(30, c.Baseline.Latency.P50Ms);
        Assert.Equal(80, c.Baseline.Latency.P99Ms);
        Assert.Equal(1e-4, c.Baseline.CrashRate);
        Assert.Contains("at least p50", Assert.Throws<FormatException>(() => FleetScenario.ParseClass("2G:0.5:30/20")).Message);
        Assert.Contains("RAM:SHARE", Assert.Throws<FormatException>(() => FleetScenario.ParseClass("2G")).Message);
        Assert.Contains("SHARE", Assert.Throws<FormatException>(() => FleetScenario.ParseClass("2G:-1:3/4")).Message);
        Assert.Contains("size", Assert.Throws<FormatException>(() => FleetScenario.ParseClass("lots:1:3/4")).Message);
    }
}
