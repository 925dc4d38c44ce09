namespace OnDevice.Evaluation.Statistics;

/// <summary>What the confidence interval of Δ says about B relative to A, given a non-inferiority margin.</summary>
public enum Verdict
{
    /// <summary>The whole interval is better than A: B is better.</summary>
    Superior,
    /// <summary>The interval lies above −margin: B is not worse than A by more than the margin.</summary>
    NonInferior,
    /// <summary>The whole interval is worse than −margin: B is worse by more than the margin.</summary>
    Inferior,
    /// <summary>The interval straddles −margin: not enough evidence either way.</summary>
    Inconclusive,
}

/// <summary>Non-inferiority decisions.</summary>
public static class Verdicts
{
    /// <summary>
    /// Decides from the CI [<paramref name="ciLow"/>, <paramref name="ciHigh"/>] of Δ = B − A (metric units) and a margin
    /// ≥ 0 in the same units. Δ is first turned so that positive means "B better" (sign flipped for lower-is-better).
    /// </summary>
    public static Verdict Decide(double ciLow, double ciHigh, double margin, bool higherIsBetter)
    {
        if (margin < 0 || double.IsNaN(margin)) throw new ArgumentOutOfRangeException(nameof(margin), "the margin must be ≥ 0");
        if (double.IsNaN(ciLow) || double.IsNaN(ciHigh)) return Verdict.Inconclusive;
        double lo = higherIsBetter ? ciLow : -ciHigh, hi = higherIsBetter ? ciHigh : -ciLow;
        if (lo > 0) return Verdict.Superior;
        if (lo >= -margin) return Verdict.NonInferior;
        if (hi < -margin) return Verdict.Inferior;
        return Verdict.Inconclusive;
    }

    /// <summary>The verdict as written in reports: "superior", "non-inferior", "inferior", "inconclusive".</summary>
    public static string Text(this Verdict v) => v switch
    {
        Verdict.Superior => "superior",
        Verdict.NonInferior => "non-inferior",
        Verdict.Inferior => "inferior",
        _ => "inconclusive",
    };
}
