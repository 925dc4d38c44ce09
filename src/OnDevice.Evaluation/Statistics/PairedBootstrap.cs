namespace OnDevice.Evaluation.Statistics;

/// <summary>Point estimates and percentile confidence intervals of a metric for A, B and Δ = B − A.</summary>
public sealed record BootstrapResult(double A, double B, double Delta, double CiLow, double CiHigh,
    double ALow, double AHigh, double BLow, double BHigh, int Resamples, int Seed, double Level);

/// <summary>
/// Paired bootstrap: resample example indices with replacement (the same indices for A and B, so their
/// correlation is kept), recompute the metric of each, and take percentiles of Δ. Deterministic for a seed.
/// </summary>
public static class PairedBootstrap
{
    /// <summary>Runs <paramref name="resamples"/> resamples with <paramref name="seed"/>; <paramref name="level"/> e.g. 0.95.</summary>
    public static BootstrapResult Run(Metric metric, IReadOnlyList<double[]> a, IReadOnlyList<double[]> b, int resamples, int seed, double level = 0.95)
    {
        if (a.Count != b.Count) throw new ArgumentException($"paired results differ in length ({a.Count} vs {b.Count})");
        if (a.Count == 0) throw new ArgumentException("no examples");
        if (resamples < 1) throw new ArgumentOutOfRangeException(nameof(resamples), "need at least one resample");
        int n = a.Count, k = a[0].Length;
        double pa = metric.Compute(a), pb = metric.Compute(b);
        var rng = new Random(seed);
        var da = new double[resamples];
        var db = new double[resamples];
        var dd = new double[resamples];
        var sa = new double[k];
        var sb = new double[k];
        for (int r = 0; r < resamples; r++)
        {
            Array.Clear(sa);
            Array.Clear(sb);
            for (int i = 0; i < n; i++)
            {
                int j = rng.Next(n);
                var ra = a[j]; var rb = b[j];
                for (int c = 0; c < k; c++) { sa[c] += ra[c]; sb[c] += rb[c]; }
            }
            da[r] = metric.FromSums(sa);
            db[r] = metric.FromSums(sb);
            dd[r] = db[r] - da[r];
        }
        double lo = (1 - level) / 2 * 100, hi = (1 + level) / 2 * 100;
        return new BootstrapResult(pa, pb, pb - pa, Percentile(dd, lo), Percentile(dd, hi),
            Percentile(da, lo), Percentile(da, hi), Percentile(db, lo), Percentile(db, hi), resamples, seed, level);
    }

    /// <summary>Percentile with linear interpolation between order statistics (NumPy's default); NaNs are ignored.</summary>
    public static double Percentile(double[] values, double percent)
    {
        var v = values.Where(x => !double.IsNaN(x)).Order().ToArray();
        if (v.Length == 0) return double.NaN;
        double pos = percent / 100 * (v.Length - 1);
        int lo = (int)Math.Floor(pos);
        int hi = Math.Min(lo + 1, v.Length - 1);
        return v[lo] + (v[hi] - v[lo]) * (pos - lo);
    }
}
