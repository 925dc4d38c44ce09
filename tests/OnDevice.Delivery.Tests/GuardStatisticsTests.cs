using System.Text.Json;
using OnDevice.Delivery.Guards;
using OnDevice.Delivery.Telemetry;

namespace OnDevice.Delivery.Tests;

/// <summary>Guard statistics against SciPy (Fixtures/make_guard_fixtures.py → guard_fixtures.json).</summary>
public class GuardStatisticsTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static readonly JsonElement F = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "guard_fixtures.json"))).RootElement;

    /// <summary>Relative agreement; values below 1e-300 compare as zero, tiny values compare in log space.</summary>
    private static void Close(double expected, double actual, double rel, string what)
    {
        if (expected < 1e-300) { Assert.True(actual < 1e-290, $"{what}: expected ~0, got {actual}"); return; }
        if (expected < 1e-100) { Assert.True(Math.Abs(Math.Log(actual) - Math.Log(expected)) < 1e-6 * Math.Abs(Math.Log(expected)), $"{what}: expected {expected}, got {actual}"); return; }
        Assert.True(Math.Abs(actual - expected) <= rel * Math.Abs(expected) + 1e-300, $"{what}: expected {expected:R}, got {actual:R}");
    }

    [Fact]
    public void Binomial_tails_match_scipy_up_to_a_billion_trials()
    {
        int cases = 0;
        foreach (var c in F.GetProperty("binomial").EnumerateArray())
        {
            double k = c.GetProperty("k").GetDouble(), n = c.GetProperty("n").GetDouble(), p = c.GetProperty("p").GetDouble();
            double rel = n >= 1e8 ? 1e-5 : 1e-9;
            Close(c.GetProperty("cdf").GetDouble(), Probability.BinomialCdf(k, n, p), rel, $"cdf({k},{n},{p})");
            Close(c.GetProperty("sf").GetDouble(), Probability.BinomialSf(k, n, p), rel, $"sf({k},{n},{p})");
            cases++;
        }
        Assert.Equal(15, cases);
    }

    [Fact]
    public void Incomplete_beta_and_log_gamma_match_scipy()
    {
        foreach (var c in F.GetProperty("incomplete_beta").EnumerateArray())
        {
            double a = c.GetProperty("a").GetDouble(), b = c.GetProperty("b").GetDouble(), x = c.GetProperty("x").GetDouble();
            Close(c.GetProperty("value").GetDouble(), Probability.IncompleteBeta(a, b, x), a >= 1e5 ? 1e-6 : 1e-10, $"I_{x}({a},{b})");
        }
        foreach (var c in F.GetProperty("log_gamma").EnumerateArray())
        {
            double x = c.GetProperty("x").GetDouble(), v = c.GetProperty("value").GetDouble();
            Assert.True(Math.Abs(Probability.LogGamma(x) - v) <= 1e-12 * Math.Max(1, Math.Abs(v)), $"lgamma({x}) = {Probability.LogGamma(x)}, expected {v}");
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => Probability.BinomialCdf(1, 10, 1.5));
        Assert.Throws<ArgumentOutOfRangeException>(() => Probability.IncompleteBeta(-1, 1, 0.5));
    }

    [Fact]
    public void Bucket_edges_and_quantile_bounds_match_an_independent_implementation()
    {
        foreach (var e in F.GetProperty("edges").EnumerateObject())
            Assert.Equal(e.Value.GetDouble(), LatencyBuckets.UpperMs(int.Parse(e.Name)));
        Assert.Equal(1.0, LatencyBuckets.UpperMs(48));
        Assert.Equal(1000.0, LatencyBuckets.UpperMs(192));
        foreach (var h in F.GetProperty("histograms").EnumerateArray())
        {
            var counts = h.GetProperty("hist").EnumerateArray().Select(x => x.GetInt64()).ToArray();
            var name = h.GetProperty("name").GetString();
            Close(h.GetProperty("p50").GetDouble(), LatencyBuckets.Quantile(counts, 0.5), 1e-12, name + " p50");
            Close(h.GetProperty("p99").GetDouble(), LatencyBuckets.Quantile(counts, 0.99), 1e-12, name + " p99");
            // The documented error bound: within one bucket width (4.91%) of the exact sample quantile.
            var exact = h.GetProperty("exact_p99").GetDouble();
            Assert.InRange(LatencyBuckets.Quantile(counts, 0.99) / exact, 1 / 1.0491, 1.0491);
            Assert.Equal(h.GetProperty("upper_p99").GetDouble(), GuardEvaluator.QuantileUpperBound(counts, 0.99, 0.005));
            Assert.Equal(h.GetProperty("lower_p99").GetDouble(), GuardEvaluator.QuantileLowerBound(counts, 0.99, 0.005));
            Assert.Equal(h.GetProperty("upper_p50").GetDouble(), GuardEvaluator.QuantileUpperBound(counts, 0.5, 0.005));
            Assert.Equal(h.GetProperty("lower_p50").GetDouble(), GuardEvaluator.QuantileLowerBound(counts, 0.5, 0.005));
        }
    }

    private static TelemetryCounts Hist(string name, int reports = 10)
    {
        var h = F.GetProperty("histograms").EnumerateArray().Single(x => x.GetProperty("name").GetString() == name);
        var c = new TelemetryCounts { Reports = reports };
        int i = 0;
        foreach (var x in h.GetProperty("hist").EnumerateArray()) c.Latency[i++] = x.GetInt64();
        c.Inferences = c.Latency.Sum();
        return c;
    }

    [Fact]
    public void Latency_guard_p_values_match_scipy()
    {
        var loose = GuardOptions.Default with { Alpha = 0.05 };
        foreach (var g in F.GetProperty("latency_guards").EnumerateArray())
        {
            var rule = GuardRule.Parse(g.GetProperty("rule").GetString()!);
            var cand = Hist(g.GetProperty("candidate").GetString()!);
            double pFail = g.GetProperty("p_fail").GetDouble(), pPass = g.GetProperty("p_pass").GetDouble();
            // α = 0.01 (the default) decides the fail side; the pass side is read at α = 0.05, where "same" passes.
            var strict = GuardEvaluator.Evaluate(rule, cand, Hist("baseline"));
            if (pFail < 0.01)
            {
                Assert.Equal(GuardDecision.Fail, strict.Decision);
                Close(pFail, strict.PValue!.Value, 1e-8, rule.Text + " fail");
            }
            else
            {
                Assert.NotEqual(GuardDecision.Fail, strict.Decision);
                var r = GuardEvaluator.Evaluate(rule, cand, Hist("baseline"), loose);
                Assert.Equal(pPass < 0.05 ? GuardDecision.Pass : GuardDecision.Insufficient, r.Decision);
                if (r.Decision == GuardDecision.Pass) Close(pPass, r.PValue!.Value, 1e-8, rule.Text + " pass");
            }
        }
    }

    [Fact]
    public void The_reason_carries_the_numbers()
    {
        var r = GuardEvaluator.Evaluate(GuardRule.Parse("p99_latency_ms > 1.2x baseline"), Hist("slow"), Hist("baseline"), null, "2.0", "1.0");
        output.WriteLine(r.Reason);
        Assert.Equal(GuardDecision.Fail, r.Decision);
        foreach (var part in new[] { "p99_latency_ms of 2.0 is 95.32 ms over 3000 inferences (10 reports)", "vs 46.33 ms of 1.0 over 6000", "1% are allowed", "α = 0.01", "fail" })
            Assert.Contains(part, r.Reason);
    }

    [Fact]
    public void Rate_guard_p_values_match_scipy()
    {
        int cases = 0;
        foreach (var g in F.GetProperty("rate_guards").EnumerateArray())
        {
            long kc = g.GetProperty("kc").GetInt64(), nc = g.GetProperty("nc").GetInt64(), kb = g.GetProperty("kb").GetInt64(), nb = g.GetProperty("nb").GetInt64();
            double bound = g.GetProperty("bound").GetDouble();
            bool relative = g.GetProperty("relative").GetBoolean();
            double pFail = g.GetProperty("p_fail").GetDouble(), pPass = g.GetProperty("p_pass").GetDouble();
            var rule = GuardRule.Parse(relative ? $"crash_rate > {bound}x baseline" : $"crash_rate > {bound.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
            var r = GuardEvaluator.Evaluate(rule, Loads(kc, nc), Loads(kb, nb));
            if (pFail < 0.01) { Assert.Equal(GuardDecision.Fail, r.Decision); Close(pFail, r.PValue!.Value, 1e-9, rule.Text); }
            else if (pPass < 0.01) { Assert.Equal(GuardDecision.Pass, r.Decision); Close(pPass, r.PValue!.Value, 1e-9, rule.Text); }
            else { Assert.Equal(GuardDecision.Insufficient, r.Decision); Close(pFail, r.PValue!.Value, 1e-9, rule.Text); }
            cases++;
        }
        Assert.Equal(6, cases);
    }

    /// <summary>Counts with <paramref name="crashes"/> crashes in <paramref name="operations"/> load attempts.</summary>
    internal static TelemetryCounts Loads(long crashes, long operations) => new() { Reports = 10, Loads = operations, LoadCrashes = crashes };
}
