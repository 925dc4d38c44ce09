namespace OnDevice.Federated.Privacy;

/// <summary>Log-space helpers the accountant needs (.NET has no erfc or log-binomial).</summary>
internal static class SpecialFunctions
{
    private static readonly double LogSqrtPi = 0.5 * Math.Log(Math.PI);

    /// <summary>log(exp(a) + exp(b)) without overflow.</summary>
    public static double LogAdd(double a, double b)
    {
        if (double.IsNegativeInfinity(a)) return b;
        if (double.IsNegativeInfinity(b)) return a;
        var hi = Math.Max(a, b);
        var lo = Math.Min(a, b);
        return hi + double.LogP1(Math.Exp(lo - hi));
    }

    /// <summary>log(exp(a) − exp(b)) for a ≥ b; −∞ when equal.</summary>
    public static double LogSub(double a, double b)
    {
        if (double.IsNegativeInfinity(b)) return a;
        if (a < b) throw new ArgumentException("log-sub of a larger value");
        if (a == b) return double.NegativeInfinity;
        var d = b - a;
        // log(1 − e^d): choose the stable form (Mächler 2012).
        return a + (d > -0.6931471805599453 ? Math.Log(-double.ExpM1(d)) : double.LogP1(-Math.Exp(d)));
    }

    /// <summary>erfc(x) for x ≥ 0 split as erfc(x) = exp(−x²) · s; returns log s (stable for huge x).</summary>
    private static double LogScaledErfc(double x)
    {
        if (x < 2.0)
        {
            // erf(x) = 2/√π · e^{−x²} · Σ x (2x²)^n / (2n+1)!!  (all terms positive, no cancellation)
            double term = x, sum = x, twoX2 = 2 * x * x;
            for (int n = 1; n < 500; n++)
            {
                term *= twoX2 / (2 * n + 1);
                sum += term;
                if (term < sum * 1e-17) break;
            }
            var erf = 2.0 / Math.Sqrt(Math.PI) * Math.Exp(-x * x) * sum;
            return Math.Log(1.0 - erf) + x * x;
        }
        // Continued fraction erfc(x) = e^{−x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))), evaluated backwards.
        // modified Lentz: f = x + a1/(x + a2/(x + …)) with a_k = k/2
        const double tiny = 1e-300;
        double f = x, c = x, d = 0;
        for (int k = 1; k < 5000; k++)
        {
            double a = k * 0.5;
            d = x + a * d;
            if (d == 0) d = tiny;
            c = x + a / c;
            if (c == 0) c = tiny;
            d = 1 / d;
            double delta = c * d;
            f *= delta;
            if (Math.Abs(delta - 1) < 1e-16) break;
        }
        return -LogSqrtPi - Math.Log(f);
    }

    /// <summary>log(erfc(x)) for any real x, accurate far into both tails.</summary>
    public static double LogErfc(double x)
    {
        if (double.IsNaN(x)) return double.NaN;
        if (double.IsPositiveInfinity(x)) return double.NegativeInfinity;
        if (double.IsNegativeInfinity(x)) return Math.Log(2);
        if (x >= 0) return LogScaledErfc(x) - x * x;
        // erfc(x) = 2 − erfc(−x), a value in (1, 2]
        return Math.Log(2.0 - Math.Exp(LogScaledErfc(-x) - x * x));
    }

    /// <summary>erfc(x).</summary>
    public static double Erfc(double x) => Math.Exp(LogErfc(x));
}
