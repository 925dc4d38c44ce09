using System.Globalization;
using OnDevice.Delivery.Telemetry;

namespace OnDevice.Delivery.Guards;

/// <summary>A guard's decision.</summary>
public enum GuardDecision
{
    /// <summary>Enough data, and the candidate is significantly within the rule.</summary>
    Pass,
    /// <summary>Enough data, and the candidate is significantly worse than the rule allows.</summary>
    Fail,
    /// <summary>Too little data, or not yet significant either way.</summary>
    Insufficient,
}

/// <summary>Settings of the guard statistics (defaults documented in docs/telemetry.md).</summary>
public sealed record GuardOptions
{
    /// <summary>Default settings.</summary>
    public static readonly GuardOptions Default = new();

    /// <summary>Significance level of both the fail and the pass decision (one-sided), per rule and device class.</summary>
    public double Alpha { get; init; } = 0.01;
    /// <summary>Fewest device reports (batches) behind each version before any decision.</summary>
    public long MinReports { get; init; } = 5;
    /// <summary>Fewest inferences behind a latency quantile before any decision.</summary>
    public long MinLatencySamples { get; init; } = 200;
    /// <summary>Fewest expected samples beyond the quantile: a pQ rule needs at least this / (1 − Q) inferences (1000 for p99).</summary>
    public long MinTailSamples { get; init; } = 10;
    /// <summary>Fewest trials (operations, loads or thermal samples) behind a rate before any decision.</summary>
    public long MinRateTrials { get; init; } = 1000;
    /// <summary>
    /// Non-inferiority margin of absolute rules against a baseline that is already above the rule's bound: the
    /// candidate passes once it is significantly below (1 + margin) × baseline.
    /// </summary>
    public double Margin { get; init; } = 0.2;

    /// <summary>Checks the settings.</summary>
    /// <exception cref="ArgumentException">A setting is out of range.</exception>
    public GuardOptions Validate()
    {
        if (!(Alpha > 0 && Alpha < 0.5)) throw new ArgumentException($"alpha must lie in (0, 0.5), got {Alpha}");
        if (MinReports < 1 || MinLatencySamples < 1 || MinTailSamples < 1 || MinRateTrials < 1) throw new ArgumentException("minimum report and sample counts must be at least 1");
        if (!(Margin >= 0 && Margin <= 10)) throw new ArgumentException($"margin must lie in [0, 10], got {Margin}");
        return this;
    }
}

/// <summary>The outcome of one rule on one device class, with the numbers behind it.</summary>
/// <param name="Decision">Pass, fail or insufficient.</param>
/// <param name="CandidateValue">The candidate's measured value (NaN without data).</param>
/// <param name="BaselineValue">The baseline's measured value, when it has data.</param>
/// <param name="CandidateSamples">Samples behind the candidate value (inferences for latency, trials for rates).</param>
/// <param name="BaselineSamples">Samples behind the baseline value.</param>
/// <param name="PValue">P-value of the deciding test (of the fail test when undecided), when one was run.</param>
/// <param name="Reason">One sentence with the numbers.</param>
public sealed record GuardResult(GuardDecision Decision, double CandidateValue, double? BaselineValue, long CandidateSamples, long BaselineSamples, double? PValue, string Reason);

/// <summary>
/// Evaluates a <see cref="GuardRule"/> on the aggregated telemetry of a candidate and a baseline version on one device
/// class. Both decisions need significance at <see cref="GuardOptions.Alpha"/>: Fail when the candidate is significantly
/// above the bound, Pass when it is significantly below it, otherwise Insufficient; below the minimum counts nothing is
/// tested. Rates: exact binomial test against an absolute bound, and the exact conditional test for the ratio of two
/// Poisson rates against the baseline (k_c given k_c + k_b is binomial). Latency quantiles: the number of candidate
/// inferences beyond a latency is binomial with p = 1 − Q when that latency is the candidate's Q-quantile; the baseline's
/// quantile enters through a distribution-free order-statistic confidence bound. Bucketing is handled conservatively:
/// only buckets surely above a latency count for a failure, and buckets possibly above it count against a pass.
/// The tests and their justification are in docs/telemetry.md.
/// </summary>
public static class GuardEvaluator
{
    /// <summary>Fewest samples behind a rule's metric (per version) before a decision is attempted.</summary>
    public static long MinimumSamples(GuardRule rule, GuardOptions options) => rule.IsLatency
        ? Math.Max(options.MinLatencySamples, (long)Math.Ceiling(options.MinTailSamples / (1 - rule.Quantile) - 1e-9))
        : options.MinRateTrials;

    /// <summary>Events and trials of a rate metric.</summary>
    public static (long Events, long Trials) Rate(GuardMetric metric, TelemetryCounts c) => metric switch
    {
        GuardMetric.CrashRate => (c.Crashes, c.Operations),
        GuardMetric.OomRate => (c.OomKills, c.Operations),
        GuardMetric.LoadFailureRate => (c.FailedLoads, c.Loads),
        GuardMetric.ThermalSeriousRate => (c.ThermalSeriousOrWorse, c.ThermalSamples),
        _ => throw new ArgumentException("latency rules have no rate", nameof(metric)),
    };

    /// <summary>Evaluates one rule for one device class.</summary>
    /// <param name="rule">The rule.</param>
    /// <param name="candidate">The candidate version's counts on this class (null: none).</param>
    /// <param name="baseline">The baseline version's counts on this class over the same window (null: none or a first release).</param>
    /// <param name="options">Settings (defaults when null).</param>
    /// <param name="candidateName">Name of the candidate in the reason (e.g. its version).</param>
    /// <param name="baselineName">Name of the baseline in the reason.</param>
    public static GuardResult Evaluate(GuardRule rule, TelemetryCounts? candidate, TelemetryCounts? baseline, GuardOptions? options = null,
        string candidateName = "candidate", string baselineName = "baseline")
    {
        ArgumentNullException.ThrowIfNull(rule);
        var o = (options ?? GuardOptions.Default).Validate();
        var c = candidate ?? new TelemetryCounts();
        var e = new Evaluation(rule, o, c, baseline, candidateName, baselineName);
        return e.Run();
    }

    private sealed class Evaluation(GuardRule rule, GuardOptions o, TelemetryCounts c, TelemetryCounts? b, string cName, string bName)
    {
        private readonly long _min = MinimumSamples(rule, o);
        private long NC => Samples(c);
        private long NB => b is null ? 0 : Samples(b);
        private double VC => Value(c);
        private double? VB => b is null || NB == 0 ? null : Value(b);

        private long Samples(TelemetryCounts x) => rule.IsLatency ? x.Inferences : Rate(rule.Metric, x).Trials;

        private double Value(TelemetryCounts x)
        {
            if (rule.IsLatency) return x.LatencyQuantileMs(rule.Quantile);
            var (k, n) = Rate(rule.Metric, x);
            return n == 0 ? double.NaN : (double)k / n;
        }

        private bool Enough(TelemetryCounts? x) => x is not null && x.Reports >= o.MinReports && Samples(x) >= _min;

        private GuardResult Result(GuardDecision d, double? p, string why) =>
            new(d, VC, VB, NC, NB, p, $"{rule.MetricName} of {cName} is {Fmt(VC)} over {NC} {Unit} ({c.Reports} reports)" +
                (VB is { } vb ? $" vs {Fmt(vb)} of {bName} over {NB} ({b!.Reports} reports)" : b is null ? $", no {bName} to compare" : $", no data on {bName}") + "; " + why);

        private string Unit => rule.IsLatency ? "inferences" : rule.Metric switch
        {
            GuardMetric.LoadFailureRate => "loads",
            GuardMetric.ThermalSeriousRate => "thermal samples",
            _ => "operations",
        };

        private string Fmt(double v) => double.IsNaN(v) ? "n/a" : rule.IsLatency
            ? (double.IsPositiveInfinity(v) ? "∞ ms" : v.ToString(v >= 100 ? "0" : "0.##", CultureInfo.InvariantCulture) + " ms")
            : v.ToString("0.######", CultureInfo.InvariantCulture);

        private static string P(double p) => p.ToString(p < 1e-3 ? "0.##e0" : "0.####", CultureInfo.InvariantCulture);

        public GuardResult Run()
        {
            if (!Enough(c))
                return Result(GuardDecision.Insufficient, null, $"too few data to decide (need at least {o.MinReports} reports and {_min} {Unit} per version)");
            bool baseOk = Enough(b);
            if (rule.Relative && !baseOk)
                return Result(GuardDecision.Insufficient, null, $"too few data on {bName} to compare against (need at least {o.MinReports} reports and {_min} {Unit})");

            List<(double P, string What)> fail = [], pass = [];
            string boundText;
            if (rule.Relative)
            {
                if (!rule.IsLatency && Rate(rule.Metric, c).Events + Rate(rule.Metric, b!).Events == 0)
                    return Result(GuardDecision.Pass, null, $"no events on either version, so the candidate cannot exceed {rule.Bound}x {bName}: pass");
                boundText = $"{rule.Bound.ToString("0.###", CultureInfo.InvariantCulture)}x {bName}";
                fail.Add(BaselineFail(rule.Bound));
                pass.Add(BaselinePass(rule.Bound));
            }
            else
            {
                var bound = Fmt(rule.Bound);
                boundText = baseOk ? $"max({bound}, {bName})" : bound;
                fail.Add(AbsoluteFail());
                pass.Add(AbsolutePass());
                if (baseOk)
                {
                    fail.Add(BaselineFail(1));
                    pass.Add(BaselinePass(1 + o.Margin));
                }
            }
            // Fail: every component must be significant (intersection-union test, size α). Pass: any component
            // (Bonferroni over the m alternatives).
            var pFail = fail.Max(x => x.P);
            var bestPass = pass.MinBy(x => x.P);
            var pPass = Math.Min(1, bestPass.P * pass.Count);
            if (pFail < o.Alpha)
                return Result(GuardDecision.Fail, pFail, $"{string.Join("; ", fail.Select(x => x.What))}: significantly above {boundText} (p = {P(pFail)} < α = {o.Alpha}): fail");
            if (pPass < o.Alpha)
                return Result(GuardDecision.Pass, pPass, $"{bestPass.What}: significantly within {boundText} (p = {P(pPass)} < α = {o.Alpha}): pass");
            return Result(GuardDecision.Insufficient, pFail, $"neither significantly above nor below {boundText} yet (p above = {P(pFail)}, p below = {P(pPass)}, α = {o.Alpha}): waiting for more data");
        }

        // --- latency ---------------------------------------------------------------------------------------------
        private double Tail => 1 - rule.Quantile;
        private string TailText => (Tail * 100).ToString("0.###", CultureInfo.InvariantCulture) + "%";

        private string Share(long x, long n) => $"{x} of {n} inferences ({(100.0 * x / n).ToString("0.###", CultureInfo.InvariantCulture)}%)";

        private (double, string) AbsoluteFail()
        {
            if (!rule.IsLatency) return RateAbsolute(fail: true);
            long x = LatencyBuckets.CountSurelyAbove(c.Latency, rule.Bound);
            return (Probability.BinomialSf(x, NC, Tail), $"{Share(x, NC)} are above {Fmt(rule.Bound)} where {TailText} are allowed");
        }

        private (double, string) AbsolutePass()
        {
            if (!rule.IsLatency) return RateAbsolute(fail: false);
            long x = LatencyBuckets.CountPossiblyAbove(c.Latency, rule.Bound);
            return (Probability.BinomialCdf(x, NC, Tail), $"at most {Share(x, NC)} are above {Fmt(rule.Bound)} where {TailText} are allowed");
        }

        private (double, string) BaselineFail(double k)
        {
            if (!rule.IsLatency) return RateRatio(k, fail: true);
            var upper = QuantileUpperBound(b!.Latency, rule.Quantile, o.Alpha / 2);
            if (double.IsPositiveInfinity(upper)) return (1, $"{bName}'s {rule.MetricName} has no finite upper confidence bound");
            double t = k * upper;
            long x = LatencyBuckets.CountSurelyAbove(c.Latency, t);
            var p = Math.Min(1, 2 * Probability.BinomialSf(x, NC, Tail));
            return (p, $"{Share(x, NC)} are above {Fmt(t)} ({Mult(k)}{bName}'s upper {Conf} bound {Fmt(upper)}) where {TailText} are allowed");
        }

        private (double, string) BaselinePass(double k)
        {
            if (!rule.IsLatency) return RateRatio(k, fail: false);
            var lower = QuantileLowerBound(b!.Latency, rule.Quantile, o.Alpha / 2);
            double t = k * lower;
            long x = LatencyBuckets.CountPossiblyAbove(c.Latency, t);
            var p = Math.Min(1, 2 * Probability.BinomialCdf(x, NC, Tail));
            return (p, $"at most {Share(x, NC)} are above {Fmt(t)} ({Mult(k)}{bName}'s lower {Conf} bound {Fmt(lower)}) where {TailText} are allowed");
        }

        private string Conf => ((1 - o.Alpha / 2) * 100).ToString("0.##", CultureInfo.InvariantCulture) + "%";

        private static string Mult(double k) => k == 1 ? "" : k.ToString("0.###", CultureInfo.InvariantCulture) + " × ";

        // --- rates -----------------------------------------------------------------------------------------------
        private (double, string) RateAbsolute(bool fail)
        {
            var (k, n) = Rate(rule.Metric, c);
            var p = fail ? Probability.BinomialSf(k, n, rule.Bound) : Probability.BinomialCdf(k, n, rule.Bound);
            return (p, $"{k} events in {n} {Unit} against a bound of {Fmt(rule.Bound)} (exact binomial test)");
        }

        private (double, string) RateRatio(double ratio, bool fail)
        {
            var (kc, nc) = Rate(rule.Metric, c);
            var (kb, nb) = Rate(rule.Metric, b!);
            long total = kc + kb;
            var what = $"{kc} events in {nc} {Unit} vs {kb} in {nb} on {bName}, ratio bound {ratio.ToString("0.###", CultureInfo.InvariantCulture)} (exact conditional Poisson-ratio test)";
            if (total == 0) return (1, what);
            double pi = ratio * nc / (ratio * nc + nb);
            var p = fail ? Probability.BinomialSf(kc, total, pi) : Probability.BinomialCdf(kc, total, pi);
            return (p, what);
        }
    }

    /// <summary>
    /// A distribution-free upper confidence bound (level 1 − a) for the q-quantile from a histogram: the upper edge of
    /// the bucket holding the j-th smallest sample, j the smallest rank with P(Binomial(n, q) ≤ j − 1) ≥ 1 − a.
    /// +∞ when even the largest sample is not enough.
    /// </summary>
    public static double QuantileUpperBound(ReadOnlySpan<long> counts, double q, double a)
    {
        long n = Sum(counts);
        if (n == 0 || Probability.BinomialCdf(n - 1, n, q) < 1 - a) return double.PositiveInfinity;
        long lo = 1, hi = n;
        while (lo < hi)
        {
            long mid = lo + (hi - lo) / 2;
            if (Probability.BinomialCdf(mid - 1, n, q) >= 1 - a) hi = mid; else lo = mid + 1;
        }
        return LatencyBuckets.UpperMs(BucketOfRank(counts, lo));
    }

    /// <summary>
    /// A distribution-free lower confidence bound (level 1 − a) for the q-quantile from a histogram: the lower edge of
    /// the bucket holding the j-th smallest sample, j the largest rank with P(Binomial(n, q) ≥ j) ≥ 1 − a. 0 when none.
    /// </summary>
    public static double QuantileLowerBound(ReadOnlySpan<long> counts, double q, double a)
    {
        long n = Sum(counts);
        if (n == 0 || Probability.BinomialSf(1, n, q) < 1 - a) return 0;
        long lo = 1, hi = n;
        while (lo < hi)
        {
            long mid = lo + (hi - lo + 1) / 2;
            if (Probability.BinomialSf(mid, n, q) >= 1 - a) lo = mid; else hi = mid - 1;
        }
        return LatencyBuckets.LowerMs(BucketOfRank(counts, lo));
    }

    private static long Sum(ReadOnlySpan<long> counts)
    {
        long s = 0;
        foreach (var x in counts) s += x;
        return s;
    }

    private static int BucketOfRank(ReadOnlySpan<long> counts, long rank)
    {
        long cum = 0;
        for (int i = 0; i < counts.Length; i++)
        {
            cum += counts[i];
            if (cum >= rank) return i;
        }
        return counts.Length - 1;
    }
}
