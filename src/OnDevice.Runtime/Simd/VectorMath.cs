using System.Runtime.CompilerServices;

namespace OnDevice.Runtime.Simd;

/// <summary>
/// float32 transcendental functions written once over <see cref="IFloatLanes{TSelf}"/>, so the scalar tail and every
/// vector width round identically. Polynomials are Cephes' single-precision ones (exp, log, tanh, sin, cos) and Eigen's
/// rational erf; special values (NaN, ±Inf, ±0, subnormals) follow C99. Measured error against double-precision
/// math is stated per function (ulp = unit in the last place of the float32 result).
/// </summary>
public static class VectorMath
{
    /// <summary>e^x; ≤ 2 ulp for normal results, overflow to +Inf above 88.72, subnormal results near −87.3…−104.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static L Exp<L>(L x) where L : struct, IFloatLanes<L>
    {
        var xc = Clamp(x, -104f, 89f);
        var n = L.Round(xc * L.Splat(1.44269504088896341f));
        var r = xc - n * L.Splat(0.693359375f);      // ln 2 = 0.693359375 − 2.12194440e-4 (Cody–Waite, first part exact)
        r -= n * L.Splat(-2.12194440e-4f);
        var z = r * r;
        var p = L.Splat(1.9875691500e-4f);
        p = p * r + L.Splat(1.3981999507e-3f);
        p = p * r + L.Splat(8.3334519073e-3f);
        p = p * r + L.Splat(4.1665795894e-2f);
        p = p * r + L.Splat(1.6666665459e-1f);
        p = p * r + L.Splat(5.0000001201e-1f);
        p = p * z + r + L.Splat(1f);
        var n1 = L.Floor(n * L.Splat(0.5f));        // 2^n as two factors so n in [-150, 128] stays representable
        var y = p * L.Pow2(n1) * L.Pow2(n - n1);
        y = L.Select(L.LessThan(L.Splat(88.72283935546875f), x), L.Splat(float.PositiveInfinity), y);
        y = L.Select(L.LessThan(x, L.Splat(-103.97208404541015625f)), L.Splat(0f), y);
        return L.Select(L.IsNaN(x), x, y);
    }

    /// <summary>e^x − 1 without cancellation near 0 (Taylor series for |x| &lt; 0.35, else <see cref="Exp{L}"/> − 1); ≤ 3 ulp.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static L Expm1<L>(L x) where L : struct, IFloatLanes<L>
    {
        var q = L.Splat(1f / 40320f);
        q = q * x + L.Splat(1f / 5040f);
        q = q * x + L.Splat(1f / 720f);
        q = q * x + L.Splat(1f / 120f);
        q = q * x + L.Splat(1f / 24f);
        q = q * x + L.Splat(1f / 6f);
        q = q * x + L.Splat(0.5f);
        var small = x + x * x * q;
        var big = Exp(x) - L.Splat(1f);
        return L.Select(L.LessThan(L.Abs(x), L.Splat(0.35f)), small, big);
    }

    /// <summary>Natural logarithm; ≤ 1 ulp; log(±0) = −Inf, log(x &lt; 0) = NaN, subnormal inputs handled.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static L Log<L>(L x) where L : struct, IFloatLanes<L>
    {
        var sub = L.LessThan(x, L.Splat(1.17549435e-38f));
        var xs = L.Select(sub, x * L.Splat(8388608f), x);   // scale subnormals by 2^23
        var m = L.Frexp(xs, out var e);
        e = L.Select(sub, e - L.Splat(23f), e);
        var low = L.LessThan(m, L.Splat(0.707106781186547524f));
        e = L.Select(low, e - L.Splat(1f), e);
        m = L.Select(low, m + m - L.Splat(1f), m - L.Splat(1f));
        var z = m * m;
        var y = L.Splat(7.0376836292e-2f);
        y = y * m + L.Splat(-1.1514610310e-1f);
        y = y * m + L.Splat(1.1676998740e-1f);
        y = y * m + L.Splat(-1.2420140846e-1f);
        y = y * m + L.Splat(1.4249322787e-1f);
        y = y * m + L.Splat(-1.6668057665e-1f);
        y = y * m + L.Splat(2.0000714765e-1f);
        y = y * m + L.Splat(-2.4999993993e-1f);
        y = y * m + L.Splat(3.3333331174e-1f);
        y = y * m * z;
        y += e * L.Splat(-2.12194440e-4f);
        y -= z * L.Splat(0.5f);
        var r = m + y;
        r += e * L.Splat(0.693359375f);
        r = L.Select(L.Equal(x, L.Splat(float.PositiveInfinity)), x, r);
        r = L.Select(L.Equal(x, L.Splat(0f)), L.Splat(float.NegativeInfinity), r);
        r = L.Select(L.LessThan(x, L.Splat(0f)), L.Splat(float.NaN), r);
        return L.Select(L.IsNaN(x), x, r);
    }

    /// <summary>log(1 + u) without losing small u (Goldberg's correction of log(1 ⊕ u)); ≤ 2 ulp; −Inf at −1, NaN below.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static L Log1p<L>(L u) where L : struct, IFloatLanes<L>
    {
        var w = L.Splat(1f) + u;
        var r = Log(w) * (u / (w - L.Splat(1f)));
        r = L.Select(L.Equal(w, L.Splat(1f)), u, r);
        r = L.Select(L.Equal(u, L.Splat(float.PositiveInfinity)), u, r);
        return L.Select(L.Equal(u, L.Splat(-1f)), L.Splat(float.NegativeInfinity), r);
    }

    /// <summary>Hyperbolic tangent (Cephes tanhf: odd polynomial below 0.625, 1 − 2/(e^{2|x|} + 1) above); ≤ 2 ulp.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static L Tanh<L>(L x) where L : struct, IFloatLanes<L>
    {
        var ax = L.Abs(x);
        var big = L.Splat(1f) - L.Splat(2f) / (Exp(ax + ax) + L.Splat(1f));
        big |= x & L.Splat(-0f);
        var s = x * x;
        var p = L.Splat(-5.70498872745e-3f);
        p = p * s + L.Splat(2.06390887954e-2f);
        p = p * s + L.Splat(-5.37397155531e-2f);
        p = p * s + L.Splat(1.33314422036e-1f);
        p = p * s + L.Splat(-3.33332819422e-1f);
        var small = p * s * x + x;
        var r = L.Select(L.LessThan(ax, L.Splat(0.625f)), small, big);
        r = L.Select(L.Equal(x, L.Splat(0f)), x, r);
        return L.Select(L.IsNaN(x), x, r);
    }

    /// <summary>Logistic sigmoid: 1/(1 + e^−x) for x ≥ 0, e^x/(1 + e^x) below (keeps relative accuracy for negative x); ≤ 2 ulp.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static L Sigmoid<L>(L x) where L : struct, IFloatLanes<L>
    {
        var e = Exp(-L.Abs(x));
        var d = L.Splat(1f) + e;
        return L.Select(L.LessThan(x, L.Splat(0f)), e / d, L.Splat(1f) / d);
    }

    /// <summary>Error function (Eigen's rational approximation on [−4, 4], ±1 beyond); absolute error ≤ 2e-7.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static L Erf<L>(L x) where L : struct, IFloatLanes<L>
    {
        var xc = Clamp(x, -4f, 4f);
        var x2 = xc * xc;
        var p = L.Splat(-2.72614225801306e-10f);
        p = p * x2 + L.Splat(2.77068142495902e-08f);
        p = p * x2 + L.Splat(-2.10102402082508e-06f);
        p = p * x2 + L.Splat(-5.69250639462346e-05f);
        p = p * x2 + L.Splat(-7.34990630326855e-04f);
        p = p * x2 + L.Splat(-2.95459980854025e-03f);
        p = p * x2 + L.Splat(-1.60960333262415e-02f);
        p *= xc;
        var q = L.Splat(-1.45660718464996e-05f);
        q = q * x2 + L.Splat(-2.13374055278905e-04f);
        q = q * x2 + L.Splat(-1.68282697438203e-03f);
        q = q * x2 + L.Splat(-7.37332916720468e-03f);
        q = q * x2 + L.Splat(-1.42647390514189e-02f);
        return p / q;
    }

    /// <summary>Sine; absolute error ≤ 1e-7 for |x| ≤ 8192 (Cody–Waite reduction by π/4); larger or non-finite lanes use <see cref="MathF.Sin"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static L Sin<L>(L x) where L : struct, IFloatLanes<L>
    {
        var y = SinCosCore(x, quadrantShift: 0f);
        y ^= x & L.Splat(-0f); // odd function
        var large = L.LessThan(L.Splat(SinCosReductionLimit), L.Abs(x));
        return L.AnyTrue(large) ? Patch(y, x, large, MathF.Sin) : y;
    }

    /// <summary>Cosine; absolute error ≤ 1e-7 for |x| ≤ 8192; larger or non-finite lanes use <see cref="MathF.Cos"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static L Cos<L>(L x) where L : struct, IFloatLanes<L>
    {
        var y = SinCosCore(x, quadrantShift: 1f);
        var large = L.LessThan(L.Splat(SinCosReductionLimit), L.Abs(x));
        return L.AnyTrue(large) ? Patch(y, x, large, MathF.Cos) : y;
    }

    /// <summary>
    /// x^y with C99 special cases. Integer exponents with |y| ≤ 64 use binary powering (exact when the result is
    /// representable, e.g. 2^10, x^2 = x·x); others e^{y·ln|x|}, whose relative error grows as (2 + |y·ln x|)·2^-23.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static L Pow<L>(L x, L y) where L : struct, IFloatLanes<L>
    {
        var one = L.Splat(1f);
        var ax = L.Abs(x);
        var fy = L.Floor(y);
        var yInt = L.Equal(fy, y);
        var yOdd = yInt & L.Equal(y - L.Floor(y * L.Splat(0.5f)) * L.Splat(2f), one);
        var negSign = L.LessThan(one | (x & L.Splat(-0f)), L.Splat(0f));

        var ay = L.Abs(y);
        var powering = yInt & L.LessThanOrEqual(ay, L.Splat(64f));
        var zero = L.Splat(0f);
        var allSet = L.Equal(zero, zero);

        // General case through exp and log of |x| (skipped when every lane has a small integer exponent).
        var r = L.AnyTrue(L.Select(powering, zero, allSet)) ? Exp(y * Log(ax)) : zero;

        // Small integer exponents: binary powering of |x| (stops once no lane has exponent bits left).
        if (L.AnyTrue(powering))
        {
            var acc = one;
            var sq = ax;
            var bits = L.Select(powering, ay, zero);
            for (int k = 0; k < 7 && L.AnyTrue(L.LessThan(zero, bits)); k++)
            {
                var half = L.Floor(bits * L.Splat(0.5f));
                acc = L.Select(L.Equal(bits - half - half, one), acc * sq, acc);
                sq *= sq;
                bits = half;
            }
            acc = L.Select(L.LessThan(y, zero), one / acc, acc);
            r = L.Select(powering, acc, r);
        }

        r = L.Select(negSign & yOdd, -r, r);
        var finiteNegative = L.LessThan(x, L.Splat(0f)) & L.LessThan(ax, L.Splat(float.PositiveInfinity));
        var notInt = L.Select(yInt, L.Splat(0f), L.Equal(y, y)); // mask: y is a number and not an integer
        r = L.Select(finiteNegative & notInt, L.Splat(float.NaN), r);
        r = L.Select(L.IsNaN(x) | L.IsNaN(y), L.Splat(float.NaN), r);
        var isOne = L.Equal(y, L.Splat(0f)) | L.Equal(x, one) | (L.Equal(ax, one) & L.Equal(ay, L.Splat(float.PositiveInfinity)));
        return L.Select(isOne, one, r);
    }

    /// <summary>Tangent as sine over cosine of one reduction; ≤ 4 ulp away from the poles; |x| &gt; 8192 uses <see cref="MathF.Tan"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static L Tan<L>(L x) where L : struct, IFloatLanes<L>
    {
        var y = SinCosCore(x, quadrantShift: 0f) / SinCosCore(x, quadrantShift: 1f);
        y ^= x & L.Splat(-0f);
        var large = L.LessThan(L.Splat(SinCosReductionLimit), L.Abs(x));
        return L.AnyTrue(large) ? Patch(y, x, large, MathF.Tan) : y;
    }

    /// <summary>Arctangent (Cephes atanf: reduction by tan(π/8) and tan(3π/8), odd polynomial); ≤ 2 ulp.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static L Atan<L>(L x) where L : struct, IFloatLanes<L>
    {
        var a = L.Abs(x);
        var big = L.LessThan(L.Splat(2.414213562373095f), a);
        var mid = L.LessThan(L.Splat(0.4142135623730950f), a);
        var t = L.Select(big, -(L.Splat(1f) / a), L.Select(mid, (a - L.Splat(1f)) / (a + L.Splat(1f)), a));
        var y = L.Select(big, L.Splat(1.5707963267948966f), L.Select(mid, L.Splat(0.7853981633974483f), L.Splat(0f)));
        var z = t * t;
        var p = L.Splat(8.05374449538e-2f);
        p = p * z + L.Splat(-1.38776856032e-1f);
        p = p * z + L.Splat(1.99777106478e-1f);
        p = p * z + L.Splat(-3.33329491539e-1f);
        y += p * z * t + t;
        return y | (x & L.Splat(-0f));
    }

    /// <summary>Arcsine (Cephes asinf: polynomial on [0, 0.5], asin(a) = π/2 − 2·asin(√((1 − a)/2)) above); ≤ 2 ulp; NaN outside [−1, 1].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static L Asin<L>(L x) where L : struct, IFloatLanes<L>
    {
        var a = L.Abs(x);
        var y = AsinCore(a);
        y = L.Select(L.LessThan(L.Splat(1f), a), L.Splat(float.NaN), y);
        return y ^ (x & L.Splat(-0f));
    }

    /// <summary>Arccosine (Cephes acosf); ≤ 2 ulp; NaN outside [−1, 1].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static L Acos<L>(L x) where L : struct, IFloatLanes<L>
    {
        var half = L.Splat(0.5f);
        var one = L.Splat(1f);
        var hi = L.Splat(2f) * AsinCore(L.Sqrt(half * (one - x)));                 // x > 0.5
        var lo = L.Splat(3.14159265358979f) - L.Splat(2f) * AsinCore(L.Sqrt(half * (one + x))); // x < −0.5
        var mid = L.Splat(1.5707963267948966f) - (AsinCore(L.Abs(x)) ^ (x & L.Splat(-0f)));
        var y = L.Select(L.LessThan(half, x), hi, L.Select(L.LessThan(x, -half), lo, mid));
        return L.Select(L.LessThan(one, L.Abs(x)), L.Splat(float.NaN), y);
    }

    /// <summary>Hyperbolic sine (expm1 form below 1, ½h² − ½/h² with h = e^{|x|/2} above, finite up to 89.4); ≤ 3 ulp.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static L Sinh<L>(L x) where L : struct, IFloatLanes<L>
    {
        var a = L.Abs(x);
        var u = Expm1(a);
        var small = L.Splat(0.5f) * (u + u / (u + L.Splat(1f)));
        var h = Exp(a * L.Splat(0.5f));
        var big = L.Splat(0.5f) * h * h - L.Splat(0.5f) / (h * h);
        var y = L.Select(L.LessThan(a, L.Splat(1f)), small, big);
        return y ^ (x & L.Splat(-0f));
    }

    /// <summary>Hyperbolic cosine ½h² + ½/h² with h = e^{|x|/2} (finite up to 89.4); ≤ 3 ulp.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static L Cosh<L>(L x) where L : struct, IFloatLanes<L>
    {
        var h = Exp(L.Abs(x) * L.Splat(0.5f));
        return L.Splat(0.5f) * h * h + L.Splat(0.5f) / (h * h);
    }

    /// <summary>Inverse hyperbolic sine: log1p(|x| + x²/(1 + √(1 + x²))), log|x| + ln 2 beyond 1e10; ≤ 3 ulp.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static L Asinh<L>(L x) where L : struct, IFloatLanes<L>
    {
        var a = L.Abs(x);
        var one = L.Splat(1f);
        var a2 = a * a;
        var near = Log1p(a + a2 / (one + L.Sqrt(one + a2)));
        var far = Log(a) + L.Splat(0.693147180559945f);
        var y = L.Select(L.LessThan(L.Splat(1e10f), a), far, near);
        return y ^ (x & L.Splat(-0f));
    }

    /// <summary>Inverse hyperbolic cosine: log1p(t + √(t(x + 1))) with t = x − 1, log x + ln 2 beyond 1e10; ≤ 3 ulp; NaN below 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static L Acosh<L>(L x) where L : struct, IFloatLanes<L>
    {
        var one = L.Splat(1f);
        var t = x - one;
        var near = Log1p(t + L.Sqrt(t * (x + one)));
        var far = Log(x) + L.Splat(0.693147180559945f);
        var y = L.Select(L.LessThan(L.Splat(1e10f), x), far, near);
        return L.Select(L.LessThan(x, one), L.Splat(float.NaN), y);
    }

    /// <summary>Inverse hyperbolic tangent: ½·log1p(2|x|/(1 − |x|)); ≤ 3 ulp; ±Inf at ±1, NaN beyond.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static L Atanh<L>(L x) where L : struct, IFloatLanes<L>
    {
        var a = L.Abs(x);
        var y = L.Splat(0.5f) * Log1p((a + a) / (L.Splat(1f) - a));
        y = L.Select(L.LessThan(L.Splat(1f), a), L.Splat(float.NaN), y);
        return y ^ (x & L.Splat(-0f));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static L AsinCore<L>(L a) where L : struct, IFloatLanes<L>
    {
        var upper = L.LessThan(L.Splat(0.5f), a);
        var z = L.Select(upper, L.Splat(0.5f) * (L.Splat(1f) - a), a * a);
        var t = L.Select(upper, L.Sqrt(z), a);
        var p = L.Splat(4.2163199048e-2f);
        p = p * z + L.Splat(2.4181311049e-2f);
        p = p * z + L.Splat(4.5470025998e-2f);
        p = p * z + L.Splat(7.4953002686e-2f);
        p = p * z + L.Splat(1.6666752422e-1f);
        var y = p * z * t + t;
        return L.Select(upper, L.Splat(1.5707963267948966f) - (y + y), y);
    }

    /// <summary>Largest |x| for which sine and cosine use the vector reduction.</summary>
    public const float SinCosReductionLimit = 8192f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static L SinCosCore<L>(L x, float quadrantShift) where L : struct, IFloatLanes<L>
    {
        var ax = L.Abs(x);
        var j = L.Floor(ax * L.Splat(1.27323954473516f)); // octant of |x| (4/π)
        j += j - L.Floor(j * L.Splat(0.5f)) * L.Splat(2f); // round odd octants up: j is even
        var r = ax - j * L.Splat(0.78515625f);
        r -= j * L.Splat(2.4187564849853515625e-4f);
        r -= j * L.Splat(3.77489497744594108e-8f);
        var q = j * L.Splat(0.5f) + L.Splat(quadrantShift);
        q -= L.Floor(q * L.Splat(0.25f)) * L.Splat(4f); // quadrant mod 4
        var z = r * r;
        var sp = L.Splat(-1.9515295891e-4f);
        sp = sp * z + L.Splat(8.3321608736e-3f);
        sp = sp * z + L.Splat(-1.6666654611e-1f);
        sp = sp * z * r + r;
        var cp = L.Splat(2.443315711809948e-5f);
        cp = cp * z + L.Splat(-1.388731625493765e-3f);
        cp = cp * z + L.Splat(4.166664568298827e-2f);
        cp = cp * z * z;
        cp -= z * L.Splat(0.5f);
        cp += L.Splat(1f);
        var odd = L.Equal(q - L.Floor(q * L.Splat(0.5f)) * L.Splat(2f), L.Splat(1f));
        var y = L.Select(odd, cp, sp);
        return L.Select(L.LessThanOrEqual(L.Splat(2f), q), -y, y);
    }

    private static L Patch<L>(L y, L x, L mask, Func<float, float> f) where L : struct, IFloatLanes<L>
    {
        for (int i = 0; i < L.Count; i++)
            if (float.IsNaN(L.GetLane(mask, i)))
                y = L.WithLane(y, i, f(L.GetLane(x, i)));
        return y;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static L Clamp<L>(L x, float lo, float hi) where L : struct, IFloatLanes<L>
    {
        var l = L.Splat(lo);
        var h = L.Splat(hi);
        return L.Select(L.LessThan(x, l), l, L.Select(L.LessThan(h, x), h, x));
    }
}
