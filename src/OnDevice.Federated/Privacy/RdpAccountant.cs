namespace OnDevice.Federated.Privacy;

/// <summary>How Rényi-DP at order α turns into (ε, δ)-DP.</summary>
public enum RdpConversion
{
    /// <summary>ε = RDP(α) − log δ / (α − 1) (Mironov 2017, Proposition 3); the TF Privacy tutorial figures.</summary>
    Classic,

    /// <summary>ε = RDP(α) + log(1 − 1/α) − log(δ·α)/(α − 1) (Balle et al. 2020; Canonne, Kamath, Steinke 2020), as in Opacus and dp_accounting.</summary>
    Improved,
}

/// <summary>An (ε, δ) guarantee and the Rényi order that gave it.</summary>
/// <param name="Epsilon">ε (0 when the guarantee is trivially met, +∞ when no order gives a finite bound).</param>
/// <param name="Delta">δ.</param>
/// <param name="Order">The order α attaining the minimum.</param>
public readonly record struct PrivacyGuarantee(double Epsilon, double Delta, double Order);

/// <summary>
/// Rényi-DP accountant for the Poisson-subsampled Gaussian mechanism (Mironov, Talwar, Zhang 2019, "Rényi
/// Differential Privacy of the Sampled Gaussian Mechanism"): each step samples every record with probability q
/// and adds N(0, σ²·C²) to the sum of clipped contributions. Integer orders use the binomial expansion of A_α,
/// fractional orders the two-sided series with erfc tails; everything in log space. Composition adds RDP per order.
/// </summary>
public sealed class RdpAccountant
{
    /// <summary>The default orders: 1.1 … 10.9 in steps of 0.1, 11 … 63, and 128, 256, 512, 1024 (as Google dp_accounting).</summary>
    public static IReadOnlyList<double> DefaultOrders { get; } =
        Enumerable.Range(1, 99).Select(x => 1 + x / 10.0).Concat(Enumerable.Range(11, 53).Select(x => (double)x)).Concat([128, 256, 512, 1024]).ToArray();

    private static readonly double[] DefaultOrdersArray = (double[])DefaultOrders;
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(double Q, double Sigma), double[]> DefaultOrdersCache = new();

    private readonly double[] _orders;
    private readonly double[] _rdp;

    /// <summary>A fresh accountant (nothing spent) over <paramref name="orders"/> (default <see cref="DefaultOrders"/>).</summary>
    public RdpAccountant(IEnumerable<double>? orders = null)
    {
        _orders = orders is null ? DefaultOrdersArray : orders.ToArray();
        if (_orders != DefaultOrdersArray && _orders.SequenceEqual(DefaultOrdersArray)) _orders = DefaultOrdersArray;
        if (_orders.Length == 0) throw new FederatedException("the accountant needs at least one Rényi order");
        foreach (var a in _orders)
            if (!(a > 1)) throw new FederatedException($"Rényi orders must be greater than 1, got {a}");
        _rdp = new double[_orders.Length];
    }

    /// <summary>The orders tracked.</summary>
    public IReadOnlyList<double> Orders => _orders;

    /// <summary>The accumulated RDP at each order.</summary>
    public IReadOnlyList<double> Rdp => _rdp;

    /// <summary>Adds <paramref name="steps"/> applications of the Poisson-subsampled Gaussian mechanism.</summary>
    public RdpAccountant Compose(double samplingRate, double noiseMultiplier, long steps = 1)
    {
        var r = ComputeRdp(samplingRate, noiseMultiplier, steps, _orders);
        for (int i = 0; i < _rdp.Length; i++) _rdp[i] += r[i];
        return this;
    }

    /// <summary>Adds another accountant's spending (same orders), e.g. the rounds of a second model.</summary>
    public RdpAccountant Compose(RdpAccountant other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (!other._orders.SequenceEqual(_orders)) throw new FederatedException("cannot compose accountants over different orders");
        for (int i = 0; i < _rdp.Length; i++) _rdp[i] += other._rdp[i];
        return this;
    }

    /// <summary>A copy with the same orders and spending.</summary>
    public RdpAccountant Clone()
    {
        var c = new RdpAccountant(_orders);
        Array.Copy(_rdp, c._rdp, _rdp.Length);
        return c;
    }

    /// <summary>The smallest ε over the tracked orders for <paramref name="delta"/>.</summary>
    public PrivacyGuarantee GetEpsilon(double delta, RdpConversion conversion = RdpConversion.Improved) =>
        ComputeEpsilon(_orders, _rdp, delta, conversion);

    /// <summary>RDP of <paramref name="steps"/> steps of the Poisson-subsampled Gaussian at each order.</summary>
    public static double[] ComputeRdp(double samplingRate, double noiseMultiplier, long steps, IReadOnlyList<double> orders)
    {
        ValidateMechanism(samplingRate, noiseMultiplier);
        if (steps < 0) throw new FederatedException($"steps must be non-negative, got {steps}");
        ArgumentNullException.ThrowIfNull(orders);
        if (ReferenceEquals(orders, DefaultOrdersArray))
        {
            // ledgers and calibration ask for the same (q, σ) again and again: cache the per-step RDP curve
            if (DefaultOrdersCache.Count > 10_000) DefaultOrdersCache.Clear();
            var perStep = DefaultOrdersCache.GetOrAdd((samplingRate, noiseMultiplier), k => DefaultOrdersArray.Select(a => ComputeRdpSingle(k.Q, k.Sigma, a)).ToArray());
            return perStep.Select(r => steps == 0 ? 0 : r * steps).ToArray();
        }
        var result = new double[orders.Count];
        for (int i = 0; i < result.Length; i++)
        {
            var a = orders[i];
            if (!(a > 1)) throw new FederatedException($"Rényi orders must be greater than 1, got {a}");
            result[i] = steps == 0 ? 0 : ComputeRdpSingle(samplingRate, noiseMultiplier, a) * steps;
        }
        return result;
    }

    private static void ValidateMechanism(double q, double sigma)
    {
        if (!(q >= 0 && q <= 1)) throw new FederatedException($"the sampling rate must be in [0, 1], got {q}");
        if (!(sigma >= 0) || double.IsInfinity(sigma)) throw new FederatedException($"the noise multiplier must be a finite non-negative number, got {sigma}");
    }

    internal static double ComputeRdpSingle(double q, double sigma, double alpha)
    {
        if (q == 0) return 0;
        if (sigma == 0) return double.PositiveInfinity;
        if (q == 1) return alpha / (2 * sigma * sigma);
        if (double.IsPositiveInfinity(alpha)) return double.PositiveInfinity;
        var logA = alpha == Math.Floor(alpha) && alpha < 1e6 ? LogAInteger(q, sigma, (long)alpha) : LogAFractional(q, sigma, alpha);
        return logA / (alpha - 1);
    }

    /// <summary>log A_α for integer α: log Σ_i C(α,i) q^i (1−q)^{α−i} exp((i²−i)/(2σ²)).</summary>
    internal static double LogAInteger(double q, double sigma, long alpha)
    {
        double logA = double.NegativeInfinity, logBinom = 0;
        double logQ = Math.Log(q), log1mQ = double.LogP1(-q);
        for (long i = 0; i <= alpha; i++)
        {
            if (i > 0) logBinom += Math.Log(alpha - i + 1) - Math.Log(i);
            var s = logBinom + i * logQ + (alpha - i) * log1mQ + (i * (double)i - i) / (2 * sigma * sigma);
            logA = SpecialFunctions.LogAdd(logA, s);
        }
        return logA;
    }

    /// <summary>log A_α for fractional α: the two infinite series split at z₀ = σ² log(1/q − 1) + 1/2.</summary>
    internal static double LogAFractional(double q, double sigma, double alpha)
    {
        double logA0 = double.NegativeInfinity, logA1 = double.NegativeInfinity;
        double z0 = sigma * sigma * Math.Log(1 / q - 1) + 0.5;
        double logQ = Math.Log(q), log1mQ = double.LogP1(-q), log05 = Math.Log(0.5), s2 = Math.Sqrt(2) * sigma;
        double logAbsCoef = 0;
        int sign = 1;
        for (long i = 0; i < 100_000; i++)
        {
            if (i > 0)
            {
                // C(α, i) = C(α, i−1) · (α − i + 1) / i, tracking sign and magnitude in log space
                var f = alpha - i + 1;
                if (f < 0) sign = -sign;
                logAbsCoef += Math.Log(Math.Abs(f)) - Math.Log(i);
            }
            double j = alpha - i;
            double logT0 = logAbsCoef + i * logQ + j * log1mQ;
            double logT1 = logAbsCoef + j * logQ + i * log1mQ;
            double logE0 = log05 + SpecialFunctions.LogErfc((i - z0) / s2);
            double logE1 = log05 + SpecialFunctions.LogErfc((z0 - j) / s2);
            double logS0 = logT0 + (i * (double)i - i) / (2 * sigma * sigma) + logE0;
            double logS1 = logT1 + (j * j - j) / (2 * sigma * sigma) + logE1;
            if (sign > 0)
            {
                logA0 = SpecialFunctions.LogAdd(logA0, logS0);
                logA1 = SpecialFunctions.LogAdd(logA1, logS1);
            }
            else
            {
                logA0 = SpecialFunctions.LogSub(logA0, logS0);
                logA1 = SpecialFunctions.LogSub(logA1, logS1);
            }
            if (Math.Max(logS0, logS1) < -30) break;
        }
        return SpecialFunctions.LogAdd(logA0, logA1);
    }

    /// <summary>The smallest ε over <paramref name="orders"/> given RDP values, for <paramref name="delta"/>.</summary>
    public static PrivacyGuarantee ComputeEpsilon(IReadOnlyList<double> orders, IReadOnlyList<double> rdp, double delta, RdpConversion conversion = RdpConversion.Improved)
    {
        ArgumentNullException.ThrowIfNull(orders);
        ArgumentNullException.ThrowIfNull(rdp);
        if (orders.Count != rdp.Count || orders.Count == 0) throw new FederatedException("orders and RDP values must be non-empty and of equal length");
        if (!(delta > 0 && delta < 1)) throw new FederatedException($"δ must be in (0, 1), got {delta}");
        double best = double.PositiveInfinity, bestOrder = orders[0];
        var logDelta = Math.Log(delta);
        for (int i = 0; i < orders.Count; i++)
        {
            double a = orders[i], r = rdp[i];
            if (!(a > 1)) throw new FederatedException($"Rényi orders must be greater than 1, got {a}");
            if (r < 0) throw new FederatedException($"RDP values must be non-negative, got {r}");
            double eps;
            if (conversion == RdpConversion.Classic)
                eps = r - logDelta / (a - 1);
            else if (delta * delta + double.ExpM1(-r) > 0)
                eps = 0; // δ alone already covers it
            else if (a > 1.01)
                eps = r + double.LogP1(-1 / a) - (logDelta + Math.Log(a)) / (a - 1);
            else
                eps = double.PositiveInfinity; // the improved bound is numerically unstable this close to 1
            if (double.IsNaN(eps)) eps = double.PositiveInfinity;
            if (eps < best) { best = eps; bestOrder = a; }
        }
        return new PrivacyGuarantee(Math.Max(0, best), delta, bestOrder);
    }

    /// <summary>ε after <paramref name="steps"/> steps at rate q and noise σ (default orders).</summary>
    public static PrivacyGuarantee Epsilon(double noiseMultiplier, double samplingRate, long steps, double delta, RdpConversion conversion = RdpConversion.Improved) =>
        new RdpAccountant().Compose(samplingRate, noiseMultiplier, steps).GetEpsilon(delta, conversion);

    /// <summary>
    /// The smallest noise multiplier σ (to a relative tolerance of 1e-6) for which <paramref name="steps"/> steps at
    /// rate q stay within (ε, δ); found by bisection, returning the upper end so the target is always met.
    /// </summary>
    public static double CalibrateNoise(double epsilon, double samplingRate, long steps, double delta, RdpConversion conversion = RdpConversion.Improved)
    {
        if (!(epsilon > 0) || double.IsInfinity(epsilon)) throw new FederatedException($"ε must be a positive finite number, got {epsilon}");
        if (!(samplingRate > 0 && samplingRate <= 1)) throw new FederatedException($"the sampling rate must be in (0, 1], got {samplingRate}");
        if (steps < 1) throw new FederatedException($"steps must be at least 1, got {steps}");
        if (!(delta > 0 && delta < 1)) throw new FederatedException($"δ must be in (0, 1), got {delta}");
        double Eps(double s) => Epsilon(s, samplingRate, steps, delta, conversion).Epsilon;
        double lo = 0, hi = 1;
        while (Eps(hi) > epsilon)
        {
            lo = hi;
            hi *= 2;
            if (hi > 1e6) throw new FederatedException($"no noise multiplier up to 1e6 reaches ε = {epsilon} (δ = {delta}, q = {samplingRate}, {steps} steps)");
        }
        for (int it = 0; it < 200 && hi - lo > 1e-6 * hi; it++)
        {
            var mid = 0.5 * (lo + hi);
            if (Eps(mid) > epsilon) lo = mid; else hi = mid;
        }
        return hi;
    }
}
