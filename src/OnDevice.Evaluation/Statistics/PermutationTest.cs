namespace OnDevice.Evaluation.Statistics;

/// <summary>Result of a paired permutation test.</summary>
/// <param name="Statistic">Observed metric(B) − metric(A).</param>
/// <param name="P">Two-sided p-value: 2·min(P(T ≤ t), P(T ≥ t)), capped at 1 (SciPy's convention).</param>
/// <param name="Exact">True when all 2ⁿ swaps were enumerated; false for a Monte Carlo estimate.</param>
/// <param name="Permutations">Arrangements evaluated.</param>
public sealed record PermutationResult(double Statistic, double P, bool Exact, long Permutations);

/// <summary>
/// Paired permutation test of "A and B are exchangeable": each example's A and B results are swapped or not,
/// and the metric difference recomputed. Exact (every one of the 2ⁿ arrangements) when n ≤
/// <see cref="MaxExactExamples"/>, otherwise Monte Carlo with a fixed seed and p = (count + 1) / (R + 1).
/// </summary>
public static class PermutationTest
{
    /// <summary>Largest n tested exactly (2ⁿ arrangements).</summary>
    public const int MaxExactExamples = 16;

    /// <summary>Runs the test; <paramref name="resamples"/> and <paramref name="seed"/> apply to the Monte Carlo case.</summary>
    public static PermutationResult Run(Metric metric, IReadOnlyList<double[]> a, IReadOnlyList<double[]> b, int resamples = 10000, int seed = 0)
    {
        if (a.Count != b.Count) throw new ArgumentException($"paired results differ in length ({a.Count} vs {b.Count})");
        int n = a.Count;
        if (n == 0) throw new ArgumentException("no examples");
        int k = a[0].Length;
        var sumA = new double[k];
        var sumB = new double[k];
        foreach (var r in a) for (int c = 0; c < k; c++) sumA[c] += r[c];
        foreach (var r in b) for (int c = 0; c < k; c++) sumB[c] += r[c];
        double observed = metric.FromSums(sumB) - metric.FromSums(sumA);
        if (double.IsNaN(observed)) return new PermutationResult(observed, 1, true, 0);
        double tol = 1e-12 * Math.Max(1, Math.Abs(observed));
        // Swapping example i moves d_i = b_i − a_i from B's sums to A's.
        var diff = new double[n][];
        for (int i = 0; i < n; i++) { diff[i] = new double[k]; for (int c = 0; c < k; c++) diff[i][c] = b[i][c] - a[i][c]; }
        var ta = new double[k];
        var tb = new double[k];
        long less = 0, greater = 0, total;
        double Stat(Func<int, bool> swapped)
        {
            Array.Copy(sumA, ta, k);
            Array.Copy(sumB, tb, k);
            for (int i = 0; i < n; i++)
                if (swapped(i))
                    for (int c = 0; c < k; c++) { ta[c] += diff[i][c]; tb[c] -= diff[i][c]; }
            return metric.FromSums(tb) - metric.FromSums(ta);
        }
        bool exact = n <= MaxExactExamples;
        if (exact)
        {
            total = 1L << n;
            for (long mask = 0; mask < total; mask++)
            {
                long m = mask;
                double t = Stat(i => ((m >> i) & 1) != 0);
                if (t <= observed + tol) less++;
                if (t >= observed - tol) greater++;
            }
            double p = 2.0 * Math.Min(less, greater) / total;
            return new PermutationResult(observed, Math.Min(1, p), true, total);
        }
        var rng = new Random(seed);
        var flips = new bool[n];
        total = resamples;
        for (int r = 0; r < resamples; r++)
        {
            for (int i = 0; i < n; i++) flips[i] = rng.Next(2) == 1;
            double t = Stat(i => flips[i]);
            if (t <= observed + tol) less++;
            if (t >= observed - tol) greater++;
        }
        double pl = (less + 1.0) / (resamples + 1.0), pg = (greater + 1.0) / (resamples + 1.0);
        return new PermutationResult(observed, Math.Min(1, 2 * Math.Min(pl, pg)), false, total);
    }
}
