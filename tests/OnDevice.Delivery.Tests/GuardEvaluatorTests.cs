using OnDevice.Delivery.Guards;
using OnDevice.Delivery.Telemetry;

namespace OnDevice.Delivery.Tests;

/// <summary>Guard decisions on synthetic fleets: no data, few reports, clear regressions, equal versions, per-class effects.</summary>
public class GuardEvaluatorTests
{
    /// <summary>Counts of <paramref name="n"/> inferences with log-normal latencies (median <paramref name="medianMs"/>), spread over reports.</summary>
    internal static TelemetryCounts LogNormal(int n, double medianMs, int seed, int reports = 20, double sigma = 0.35)
    {
        var rng = new Random(seed);
        var c = new TelemetryCounts { Reports = reports, Inferences = n, Loads = reports };
        for (int i = 0; i < n; i++)
        {
            double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
            double z = Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
            c.Latency[LatencyBuckets.Of(medianMs * Math.Exp(sigma * z))]++;
            c.Thermal[0]++;
        }
        return c;
    }

    private static GuardResult Eval(string rule, TelemetryCounts? cand, TelemetryCounts? base_) => GuardEvaluator.Evaluate(GuardRule.Parse(rule), cand, base_, null, "2.0", "1.0");

    [Theory]
    [InlineData("p99_latency_ms > 50")]
    [InlineData("p99_latency_ms > 1.2x baseline")]
    [InlineData("crash_rate > 0.0001")]
    [InlineData("thermal_serious_rate > 0.01")]
    public void No_data_is_insufficient(string rule)
    {
        var r = Eval(rule, null, LogNormal(5000, 20, 1));
        Assert.Equal(GuardDecision.Insufficient, r.Decision);
        Assert.Equal(0, r.CandidateSamples);
        Assert.Null(r.PValue);
        Assert.Contains("too few data", r.Reason);
        Assert.Equal(GuardDecision.Insufficient, Eval(rule, null, null).Decision);
    }

    [Fact]
    public void A_handful_of_bad_reports_is_insufficient()
    {
        // Three reports, all inferences at 500 ms: far above the bound but too few reports and samples.
        var bad = new TelemetryCounts { Reports = 3, Inferences = 150 };
        bad.Latency[LatencyBuckets.Of(500)] = 150;
        Assert.Equal(GuardDecision.Insufficient, Eval("p99_latency_ms > 50", bad, LogNormal(20000, 20, 2)).Decision);
        // Enough reports, still too few inferences for a p99 (needs 1000).
        bad.Reports = 50;
        var r = Eval("p99_latency_ms > 50", bad, LogNormal(20000, 20, 2));
        Assert.Equal(GuardDecision.Insufficient, r.Decision);
        Assert.Contains("1000 inferences", r.Reason);
        // A few crashes in few operations: no decision either way.
        var crashes = new TelemetryCounts { Reports = 4, Loads = 40, LoadCrashes = 3 };
        Assert.Equal(GuardDecision.Insufficient, Eval("crash_rate > 0.0001", crashes, GuardStatisticsTests.Loads(1, 100000)).Decision);
        // And a handful of good reports cannot pass a stage.
        Assert.Equal(GuardDecision.Insufficient, Eval("p99_latency_ms > 50", LogNormal(300, 20, 3, reports: 3), LogNormal(20000, 20, 4)).Decision);
    }

    [Theory]
    [InlineData("p99_latency_ms > 1.2x baseline")]
    [InlineData("p99_latency_ms > 50")]
    [InlineData("p50_latency_ms > 1.5x baseline")]
    public void Twice_the_latency_with_enough_samples_fails(string rule)
    {
        var r = Eval(rule, LogNormal(4000, 40, 5), LogNormal(40000, 20, 6));
        Assert.Equal(GuardDecision.Fail, r.Decision);
        Assert.True(r.PValue < 1e-6, r.Reason);
        Assert.InRange(r.CandidateValue / r.BaselineValue!.Value, 1.8, 2.2);
        Assert.Contains("fail", r.Reason);
        Assert.Contains("p = ", r.Reason);
    }

    [Theory]
    [InlineData("p99_latency_ms > 1.2x baseline")]
    [InlineData("p99_latency_ms > 50")]
    [InlineData("p50_latency_ms > 1.2x baseline")]
    [InlineData("thermal_serious_rate > 0.01")]
    [InlineData("crash_rate > 2x baseline")]
    public void The_same_distribution_with_enough_samples_passes(string rule)
    {
        var r = Eval(rule, LogNormal(30000, 20, 7), LogNormal(200000, 20, 8));
        Assert.Equal(GuardDecision.Pass, r.Decision);
        Assert.True(r.PValue is null || r.PValue < 0.01, r.Reason);
    }

    [Fact]
    public void Rates_compare_against_the_bound_and_the_baseline()
    {
        // Candidate at 6e-4 crashes per operation, baseline at 1.5e-4, bound 1e-4: fails.
        Assert.Equal(GuardDecision.Fail, Eval("crash_rate > 0.0001", GuardStatisticsTests.Loads(30, 50000), GuardStatisticsTests.Loads(30, 200000)).Decision);
        // Candidate as bad as the baseline, both above the bound: not a failure of the candidate.
        Assert.NotEqual(GuardDecision.Fail, Eval("crash_rate > 0.0001", GuardStatisticsTests.Loads(30, 200000), GuardStatisticsTests.Loads(30, 200000)).Decision);
        // Zero crashes in 60k operations: significantly below 1e-4 (0.9999^60000 = 0.0025).
        var pass = Eval("crash_rate > 0.0001", GuardStatisticsTests.Loads(0, 60000), null);
        Assert.Equal(GuardDecision.Pass, pass.Decision);
        Assert.Equal(Math.Pow(1 - 1e-4, 60000), pass.PValue!.Value, 1e-6);
        // Zero crashes in only 20k: not yet (0.135).
        Assert.Equal(GuardDecision.Insufficient, Eval("crash_rate > 0.0001", GuardStatisticsTests.Loads(0, 20000), null).Decision);
        // Load failures count errors, crashes and OOM kills during load.
        var loads = new TelemetryCounts { Reports = 10, Loads = 10000, LoadFailures = 40, LoadOomKills = 20 };
        var r = Eval("load_failure_rate > 0.001", loads, null);
        Assert.Equal(GuardDecision.Fail, r.Decision);
        Assert.Equal(0.006, r.CandidateValue, 12);
    }

    [Fact]
    public void One_class_bad_and_another_fine_fails_only_the_bad_one()
    {
        var classes = new Dictionary<string, (TelemetryCounts Cand, TelemetryCounts Base)>
        {
            ["ram<4GB"] = (LogNormal(5000, 44, 9), LogNormal(50000, 22, 10)),
            ["ram>=8GB"] = (LogNormal(30000, 10, 11), LogNormal(200000, 10, 12)),
        };
        var rule = GuardRule.Parse("p99_latency_ms > 1.2x baseline");
        var verdicts = classes.ToDictionary(kv => kv.Key, kv => GuardEvaluator.Evaluate(rule, kv.Value.Cand, kv.Value.Base).Decision);
        Assert.Equal(GuardDecision.Fail, verdicts["ram<4GB"]);
        Assert.Equal(GuardDecision.Pass, verdicts["ram>=8GB"]);
    }

    [Theory]
    [InlineData("p99_latency_ms > 50", GuardMetric.LatencyQuantile, 0.99, 50, false)]
    [InlineData("  p99.9_latency_ms>120.5 ", GuardMetric.LatencyQuantile, 0.999, 120.5, false)]
    [InlineData("p50_latency_ms > 1.2x baseline", GuardMetric.LatencyQuantile, 0.5, 1.2, true)]
    [InlineData("p99_latency_ms > 1.2 x baseline", GuardMetric.LatencyQuantile, 0.99, 1.2, true)]
    [InlineData("crash_rate > 0.0001", GuardMetric.CrashRate, 0, 0.0001, false)]
    [InlineData("crash_rate > 1e-4", GuardMetric.CrashRate, 0, 0.0001, false)]
    [InlineData("oom_rate > 0.001", GuardMetric.OomRate, 0, 0.001, false)]
    [InlineData("thermal_serious_rate > 0.01", GuardMetric.ThermalSeriousRate, 0, 0.01, false)]
    [InlineData("load_failure_rate > 2x baseline", GuardMetric.LoadFailureRate, 0, 2, true)]
    public void Rules_parse(string text, GuardMetric metric, double q, double bound, bool relative)
    {
        var r = GuardRule.Parse(text);
        Assert.Equal((metric, bound, relative), (r.Metric, r.Bound, r.Relative));
        Assert.Equal(q, r.Quantile, 12);
    }

    [Theory]
    [InlineData("p99_latency_ms < 50")]
    [InlineData("p100_latency_ms > 50")]
    [InlineData("p0_latency_ms > 50")]
    [InlineData("p99_latency_ms > 0")]
    [InlineData("p99_latency_ms > -5")]
    [InlineData("crash_rate > 1.5")]
    [InlineData("crash_rate > 0.5x baseline")]
    [InlineData("cpu_rate > 0.1")]
    [InlineData("crash_rate > 0.1; drop table")]
    [InlineData("")]
    public void Bad_rules_are_rejected_with_a_message(string text)
    {
        var e = Assert.Throws<ArgumentException>(() => GuardRule.Parse(text));
        Assert.Contains("guard rule", e.Message);
    }
}
