namespace OnDevice.Evaluation.Statistics;

/// <summary>Holm's step-down correction for multiple comparisons (controls the family-wise error rate).</summary>
public static class Holm
{
    /// <summary>Adjusted p-values in the input order: sorted ascending, p₍ᵢ₎·(m − i + 1), made monotone, capped at 1.</summary>
    public static double[] Adjust(IReadOnlyList<double> p)
    {
        int m = p.Count;
        var order = Enumerable.Range(0, m).OrderBy(i => p[i]).ThenBy(i => i).ToArray();
        var adjusted = new double[m];
        double running = 0;
        for (int rank = 0; rank < m; rank++)
        {
            int i = order[rank];
            double v = double.IsNaN(p[i]) ? 1 : Math.Min(1, p[i] * (m - rank));
            running = Math.Max(running, v);
            adjusted[i] = running;
        }
        return adjusted;
    }
}
