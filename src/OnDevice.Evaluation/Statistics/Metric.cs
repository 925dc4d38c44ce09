namespace OnDevice.Evaluation.Statistics;

/// <summary>
/// A metric computed from the column sums of per-example statistics (e.g. CER = Σ edits / Σ reference characters,
/// accuracy = Σ correct / Σ 1). Expressing every metric this way lets the bootstrap and the permutation test
/// recompute it exactly on any resample of examples.
/// </summary>
/// <param name="Name">Metric name, e.g. "cer".</param>
/// <param name="HigherIsBetter">True for accuracy-like metrics, false for error rates and distances.</param>
/// <param name="FromSums">The metric from the sums of each statistic column over a set of examples.</param>
public sealed record Metric(string Name, bool HigherIsBetter, Func<double[], double> FromSums)
{
    /// <summary>The metric over the rows <paramref name="rows"/> of per-example statistics.</summary>
    public double Compute(IReadOnlyList<double[]> rows)
    {
        if (rows.Count == 0) return double.NaN;
        var sums = new double[rows[0].Length];
        foreach (var r in rows) for (int j = 0; j < sums.Length; j++) sums[j] += r[j];
        return FromSums(sums);
    }

    /// <summary>A ratio Σ stat[num] / Σ stat[den] (NaN when the denominator is zero).</summary>
    public static Metric Ratio(string name, bool higherIsBetter, int num, int den) =>
        new(name, higherIsBetter, s => s[den] == 0 ? double.NaN : s[num] / s[den]);
}
