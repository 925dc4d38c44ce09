using System.Text.Json;
using OnDevice.Evaluation.Statistics;

namespace OnDevice.Evaluation.Tests;

/// <summary>Statistics against reference values from SciPy (Fixtures/make_stats_fixtures.py → stats_fixtures.json).</summary>
public class StatisticsTests
{
    private static readonly JsonElement F = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "stats_fixtures.json"))).RootElement;

    private static double[] Arr(JsonElement e) => e.EnumerateArray().Select(x => x.GetDouble()).ToArray();

    private static readonly Metric Mean = Metric.Ratio("mean", true, 1, 0);

    private static List<double[]> Rows(double[] values) => values.Select(v => new[] { 1.0, v }).ToList();

    [Fact]
    public void McNemar_MatchesSciPyBinomtest_AndMidP()
    {
        int cases = 0;
        foreach (var c in F.GetProperty("mcnemar").EnumerateArray())
        {
            var r = McNemar.Test(c.GetProperty("b").GetInt32(), c.GetProperty("c").GetInt32());
            Assert.Equal(c.GetProperty("exact").GetDouble(), r.PExact, 1e-10);
            Assert.Equal(c.GetProperty("mid").GetDouble(), r.PMid, 1e-10);
            cases++;
        }
        Assert.Equal(9, cases);
        Assert.Equal(1.0, McNemar.Test(0, 0).PExact);
        var fromOutcomes = McNemar.Test([true, true, false, false, true], [false, true, true, true, true]);
        Assert.Equal((1, 2), (fromOutcomes.OnlyACorrect, fromOutcomes.OnlyBCorrect));
    }

    [Fact]
    public void Binomial_LargeN_UsesStirlingAccurately()
    {
        // log(2000!) from the exact sum of logs.
        double exact = 0;
        for (int i = 2; i <= 2000; i++) exact += Math.Log(i);
        Assert.Equal(exact, Binomial.LogFactorial(2000), 1e-8);
        Assert.Equal(1.0, Enumerable.Range(0, 1501).Sum(k => Binomial.Pmf(k, 1500, 0.5)), 1e-9);
    }

    [Fact]
    public void Permutation_Exact_MatchesSciPy()
    {
        foreach (var c in F.GetProperty("permutation").EnumerateArray())
        {
            var a = Arr(c.GetProperty("a"));
            var b = Arr(c.GetProperty("b"));
            var r = PermutationTest.Run(Mean, Rows(a), Rows(b));
            Assert.True(r.Exact);
            Assert.Equal(1L << a.Length, r.Permutations);
            Assert.Equal(c.GetProperty("statistic").GetDouble(), r.Statistic, 1e-12);
            Assert.Equal(c.GetProperty("p").GetDouble(), r.P, 1e-12);
        }
    }

    [Fact]
    public void Permutation_RatioMetric_MatchesBruteForce()
    {
        var cer = Metric.Ratio("cer", false, 0, 1);
        foreach (var c in F.GetProperty("permutationRatio").EnumerateArray())
        {
            var len = Arr(c.GetProperty("length"));
            var ea = Arr(c.GetProperty("editsA"));
            var eb = Arr(c.GetProperty("editsB"));
            var r = PermutationTest.Run(cer, ea.Select((e, i) => new[] { e, len[i] }).ToList(), eb.Select((e, i) => new[] { e, len[i] }).ToList());
            Assert.Equal(c.GetProperty("statistic").GetDouble(), r.Statistic, 1e-12);
            Assert.Equal(c.GetProperty("p").GetDouble(), r.P, 1e-12);
        }
    }

    [Fact]
    public void Permutation_MonteCarlo_ApproachesTheExactValue_AndIsSeeded()
    {
        // n = 42 (three copies of a 14-example case) is beyond exact enumeration.
        var c = F.GetProperty("permutation")[3];
        var a = Arr(c.GetProperty("a"));
        var b = Arr(c.GetProperty("b"));
        double exact = c.GetProperty("p").GetDouble();
        var a2 = a.Concat(a).Concat(a).ToArray();
        var b2 = b.Concat(b).Concat(b).ToArray();
        var r1 = PermutationTest.Run(Mean, Rows(a2), Rows(b2), resamples: 20000, seed: 3);
        var r2 = PermutationTest.Run(Mean, Rows(a2), Rows(b2), resamples: 20000, seed: 3);
        Assert.False(r1.Exact);
        Assert.Equal(r1.P, r2.P);
        Assert.True(r1.P < exact, $"tripling the data should strengthen the evidence: {r1.P} vs {exact}");
        // The exact case plus three neutral pairs (a = b, which do not change the null distribution) goes Monte Carlo.
        var a3 = a.Append(0.5).Concat(new[] { 0.5, 0.5 }).ToArray();
        var b3 = b.Append(0.5).Concat(new[] { 0.5, 0.5 }).ToArray();
        var mc = PermutationTest.Run(Mean, Rows(a3), Rows(b3), resamples: 40000, seed: 11);
        Assert.False(mc.Exact);
        Assert.InRange(mc.P, exact - 0.01, exact + 0.01);
    }

    [Fact]
    public void Bootstrap_PercentileCi_MatchesSciPy_WithinMonteCarloError()
    {
        var f = F.GetProperty("bootstrap");
        var a = Arr(f.GetProperty("a"));
        var b = Arr(f.GetProperty("b"));
        var r = PairedBootstrap.Run(Mean, Rows(a), Rows(b), resamples: 20000, seed: 42);
        Assert.Equal(f.GetProperty("delta").GetDouble(), r.Delta, 1e-12);
        Assert.Equal(f.GetProperty("ciLow").GetDouble(), r.CiLow, 0.006);
        Assert.Equal(f.GetProperty("ciHigh").GetDouble(), r.CiHigh, 0.006);
        Assert.True(r.ALow <= r.A && r.A <= r.AHigh && r.BLow <= r.B && r.B <= r.BHigh);
        var again = PairedBootstrap.Run(Mean, Rows(a), Rows(b), resamples: 20000, seed: 42);
        Assert.Equal((r.CiLow, r.CiHigh), (again.CiLow, again.CiHigh));
    }

    [Fact]
    public void Bootstrap_IdenticalModels_GiveAZeroWidthInterval()
    {
        var a = Rows([1, 0, 1, 1, 0, 1]);
        var r = PairedBootstrap.Run(Mean, a, a, 500, 1);
        Assert.Equal((0.0, 0.0), (r.CiLow, r.CiHigh));
        Assert.Equal(Verdict.NonInferior, Verdicts.Decide(r.CiLow, r.CiHigh, 0, true));
    }

    [Fact]
    public void Percentile_InterpolatesLikeNumPy()
    {
        double[] v = [4, 1, 3, 2];
        Assert.Equal(1.075, PairedBootstrap.Percentile(v, 2.5), 12); // numpy.percentile([1,2,3,4], 2.5)
        Assert.Equal(3.925, PairedBootstrap.Percentile(v, 97.5), 12);
    }

    [Fact]
    public void Holm_MatchesTheReference()
    {
        foreach (var c in F.GetProperty("holm").EnumerateArray())
        {
            var adj = Holm.Adjust(Arr(c.GetProperty("p")));
            var expected = Arr(c.GetProperty("adjusted"));
            for (int i = 0; i < adj.Length; i++) Assert.Equal(expected[i], adj[i], 1e-15);
        }
    }

    [Theory]
    [InlineData(0.01, 0.03, 0.02, true, Verdict.Superior)]
    [InlineData(-0.01, 0.03, 0.02, true, Verdict.NonInferior)]
    [InlineData(-0.05, -0.03, 0.02, true, Verdict.Inferior)]
    [InlineData(-0.05, 0.01, 0.02, true, Verdict.Inconclusive)]
    [InlineData(-0.03, -0.01, 0.02, false, Verdict.Superior)] // CER fell: better
    [InlineData(0.01, 0.015, 0.02, false, Verdict.NonInferior)]
    [InlineData(0.025, 0.04, 0.02, false, Verdict.Inferior)]
    [InlineData(0.0, 0.04, 0.02, false, Verdict.Inconclusive)]
    public void Verdict_FollowsTheInterval(double lo, double hi, double margin, bool higherIsBetter, Verdict expected)
    {
        Assert.Equal(expected, Verdicts.Decide(lo, hi, margin, higherIsBetter));
    }
}
