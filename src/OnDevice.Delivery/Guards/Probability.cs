namespace OnDevice.Delivery.Guards;

/// <summary>
/// Binomial tail probabilities for counts up to 10^12 through the regularized incomplete beta function
/// (P(X ≤ k) = I_(1-p)(n-k, k+1), P(X ≥ k) = I_p(k, n-k+1)), evaluated by its continued fraction (modified Lentz)
/// with a Lanczos log-gamma. Relative accuracy about 1e-12 for n below 10^6, degrading to about 1e-6 at 10^9
/// (log-gamma cancellation), which is far inside what a decision at α = 0.01 needs.
/// </summary>
public static class Probability
{
    private static readonly double[] Lanczos =
    [
        0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
        12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
    ];

    /// <summary>log Γ(x) for x &gt; 0 (Lanczos, g = 7).</summary>
    public static double LogGamma(double x)
    {
        if (!(x > 0)) throw new ArgumentOutOfRangeException(nameof(x), x, "log-gamma needs a positive argument");
        if (x < 0.5) return Math.Log(Math.PI / Math.Sin(Math.PI * x)) - LogGamma(1 - x);
        x -= 1;
        double a = Lanczos[0], t = x + 7.5;
        for (int i = 1; i < 9; i++) a += Lanczos[i] / (x + i);
        return 0.5 * Math.Log(2 * Math.PI) + (x + 0.5) * Math.Log(t) - t + Math.Log(a);
    }

    /// <summary>The regularized incomplete beta function I_x(a, b) for a, b &gt; 0 and 0 ≤ x ≤ 1.</summary>
    public static double IncompleteBeta(double a, double b, double x)
    {
        if (!(a > 0) || !(b > 0)) throw new ArgumentOutOfRangeException(nameof(a), $"a and b must be positive, got {a} and {b}");
        if (!(x >= 0 && x <= 1)) throw new ArgumentOutOfRangeException(nameof(x), x, "x must lie in [0, 1]");
        if (x == 0) return 0;
        if (x == 1) return 1;
        double lnFront = LogGamma(a + b) - LogGamma(a) - LogGamma(b) + a * Math.Log(x) + b * Math.Log(1 - x);
        if (x < (a + 1) / (a + b + 2)) return Math.Exp(lnFront) * ContinuedFraction(a, b, x) / a;
        return 1 - Math.Exp(lnFront) * ContinuedFraction(b, a, 1 - x) / b;
    }

    private static double ContinuedFraction(double a, double b, double x)
    {
        const double tiny = 1e-300, eps = 1e-15;
        double qab = a + b, qap = a + 1, qam = a - 1;
        double c = 1, d = 1 - qab * x / qap;
        if (Math.Abs(d) < tiny) d = tiny;
        d = 1 / d;
        double h = d;
        int max = (int)Math.Min(10_000_000, 1000 + 20 * Math.Sqrt(Math.Max(a, b)));
        for (int m = 1; m <= max; m++)
        {
            int m2 = 2 * m;
            double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
            d = 1 + aa * d; if (Math.Abs(d) < tiny) d = tiny;
            c = 1 + aa / c; if (Math.Abs(c) < tiny) c = tiny;
            d = 1 / d;
            h *= d * c;
            aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
            d = 1 + aa * d; if (Math.Abs(d) < tiny) d = tiny;
            c = 1 + aa / c; if (Math.Abs(c) < tiny) c = tiny;
            d = 1 / d;
            double del = d * c;
            h *= del;
            if (Math.Abs(del - 1) < eps) return h;
        }
        throw new ArithmeticException($"the incomplete beta continued fraction did not converge for a={a}, b={b}, x={x}");
    }

    /// <summary>P(X ≤ k) for X ~ Binomial(n, p).</summary>
    public static double BinomialCdf(double k, double n, double p)
    {
        CheckBinomial(k, n, p);
        if (k < 0) return 0;
        if (k >= n) return 1;
        if (p == 0) return 1;
        if (p == 1) return 0;
        return Math.Clamp(IncompleteBeta(n - k, k + 1, 1 - p), 0, 1);
    }

    /// <summary>P(X ≥ k) for X ~ Binomial(n, p) (computed directly, not as 1 − CDF, so tiny tails keep their digits).</summary>
    public static double BinomialSf(double k, double n, double p)
    {
        CheckBinomial(k, n, p);
        if (k <= 0) return 1;
        if (k > n) return 0;
        if (p == 0) return 0;
        if (p == 1) return 1;
        return Math.Clamp(IncompleteBeta(k, n - k + 1, p), 0, 1);
    }

    private static void CheckBinomial(double k, double n, double p)
    {
        if (!(n >= 0) || n != Math.Floor(n) || k != Math.Floor(k)) throw new ArgumentOutOfRangeException(nameof(n), $"binomial counts must be whole numbers with n ≥ 0, got k={k}, n={n}");
        if (!(p >= 0 && p <= 1)) throw new ArgumentOutOfRangeException(nameof(p), p, "a probability must lie in [0, 1]");
    }
}
