namespace OnDevice.Evaluation.Statistics;

/// <summary>Binomial probabilities in log space (stable for large n).</summary>
public static class Binomial
{
    /// <summary>P(X = k) for X ~ Binomial(n, p).</summary>
    public static double Pmf(int k, int n, double p)
    {
        if (k < 0 || k > n) return 0;
        if (p == 0) return k == 0 ? 1 : 0;
        if (p == 1) return k == n ? 1 : 0;
        return Math.Exp(LogChoose(n, k) + k * Math.Log(p) + (n - k) * Math.Log(1 - p));
    }

    /// <summary>P(X ≤ k) for X ~ Binomial(n, p).</summary>
    public static double Cdf(int k, int n, double p)
    {
        if (k < 0) return 0;
        if (k >= n) return 1;
        double s = 0;
        for (int i = 0; i <= k; i++) s += Pmf(i, n, p);
        return Math.Min(1, s);
    }

    /// <summary>log(n choose k).</summary>
    public static double LogChoose(int n, int k) => LogFactorial(n) - LogFactorial(k) - LogFactorial(n - k);

    private static readonly double[] SmallLogFactorials = BuildTable(1024);

    private static double[] BuildTable(int n)
    {
        var t = new double[n + 1];
        for (int i = 2; i <= n; i++) t[i] = t[i - 1] + Math.Log(i);
        return t;
    }

    /// <summary>log(n!): a table up to 1024, Stirling's series beyond (relative error below 1e-15).</summary>
    public static double LogFactorial(int n)
    {
        if (n < 0) throw new ArgumentOutOfRangeException(nameof(n));
        if (n < SmallLogFactorials.Length) return SmallLogFactorials[n];
        double x = n + 1.0; // log Γ(x)
        return (x - 0.5) * Math.Log(x) - x + 0.5 * Math.Log(2 * Math.PI) + 1 / (12 * x) - 1 / (360 * x * x * x) + 1 / (1260 * Math.Pow(x, 5));
    }
}
