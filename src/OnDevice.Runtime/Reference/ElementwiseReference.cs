namespace OnDevice.Runtime.Reference;

/// <summary>
/// Scalar definitions of element-wise operators: the behaviour the fast kernels must reproduce. Written for clarity,
/// straight from the ONNX formulas, in double precision where a function is transcendental (rounded once to float),
/// with NaN propagating through every op.
/// </summary>
public static class ElementwiseReference
{
    /// <summary>Applies <paramref name="f"/> to each element.</summary>
    public static float[] Map(ReadOnlySpan<float> x, Func<float, float> f)
    {
        var r = new float[x.Length];
        for (int i = 0; i < r.Length; i++) r[i] = f(x[i]);
        return r;
    }

    /// <summary>Numpy-style broadcast of a binary function, by explicit index arithmetic (no blocking).</summary>
    public static (float[] Values, int[] Shape) Broadcast(ReadOnlySpan<float> a, int[] aShape, ReadOnlySpan<float> b, int[] bShape, Func<float, float, float> f) =>
        Broadcast<float, float, float>(a, aShape, b, bShape, f);

    /// <summary>Numpy-style broadcast of a binary function on any element types.</summary>
    public static (TR[] Values, int[] Shape) Broadcast<TA, TB, TR>(ReadOnlySpan<TA> a, int[] aShape, ReadOnlySpan<TB> b, int[] bShape, Func<TA, TB, TR> f)
    {
        int rank = Math.Max(aShape.Length, bShape.Length);
        var outShape = new int[rank];
        for (int d = 0; d < rank; d++)
        {
            int da = d - (rank - aShape.Length) is var ka && ka >= 0 ? aShape[ka] : 1;
            int db = d - (rank - bShape.Length) is var kb && kb >= 0 ? bShape[kb] : 1;
            if (da != db && da != 1 && db != 1) throw new InvalidOperationException("incompatible shapes");
            outShape[d] = da == 1 ? db : da;
        }
        int n = outShape.Aggregate(1, (p, d) => p * d);
        var r = new TR[n];
        var idx = new int[rank];
        for (int i = 0; i < n; i++)
        {
            int rem = i;
            for (int d = rank - 1; d >= 0; d--) { idx[d] = rem % outShape[d]; rem /= outShape[d]; }
            r[i] = f(a[Flat(aShape, idx, rank)], b[Flat(bShape, idx, rank)]);
        }
        return (r, outShape);

        static int Flat(int[] shape, int[] idx, int rank)
        {
            int off = 0;
            for (int d = 0; d < shape.Length; d++)
            {
                int k = d + rank - shape.Length;
                off = off * shape[d] + (shape[d] == 1 ? 0 : idx[k]);
            }
            return off;
        }
    }

    private static float D(Func<double, double> f, float x) => (float)f(x);

    // ---- activations ----

    /// <summary>ONNX Relu: max(x, 0).</summary>
    public static float Relu(float x) => float.IsNaN(x) ? x : x > 0 ? x : 0;

    /// <summary>ONNX Sigmoid: 1 / (1 + e^−x).</summary>
    public static float Sigmoid(float x) => D(v => 1 / (1 + Math.Exp(-v)), x);

    /// <summary>ONNX Tanh.</summary>
    public static float Tanh(float x) => D(Math.Tanh, x);

    /// <summary>ONNX HardSigmoid: max(0, min(1, αx + β)).</summary>
    public static float HardSigmoid(float x, float alpha = 0.2f, float beta = 0.5f)
    {
        float t = alpha * x + beta;
        return float.IsNaN(t) ? t : Math.Clamp(t, 0f, 1f);
    }

    /// <summary>ONNX HardSwish: x · HardSigmoid(x) with α = 1/6, β = 1/2.</summary>
    public static float HardSwish(float x) => x * HardSigmoid(x, 1f / 6f, 0.5f);

    /// <summary>ONNX LeakyRelu: x &lt; 0 ? αx : x.</summary>
    public static float LeakyRelu(float x, float alpha = 0.01f) => x < 0 ? alpha * x : x;

    /// <summary>ONNX Elu: x &lt; 0 ? α(e^x − 1) : x.</summary>
    public static float Elu(float x, float alpha = 1f) => x < 0 ? (float)(alpha * Expm1Double(x)) : x;

    /// <summary>ONNX Selu: γ(αe^x − α) for x ≤ 0, γx otherwise.</summary>
    public static float Selu(float x, float alpha = 1.67326319217681884765625f, float gamma = 1.05070102214813232421875f) =>
        x > 0 || float.IsNaN(x) ? gamma * x : (float)((double)gamma * alpha * Expm1Double(x));

    /// <summary>ONNX Celu: max(0, x) + min(0, α(e^{x/α} − 1)).</summary>
    public static float Celu(float x, float alpha = 1f) =>
        float.IsNaN(x) ? x : (float)(Math.Max(0, (double)x) + Math.Min(0, alpha * Expm1Double((double)x / alpha)));

    /// <summary>ONNX Softplus: ln(e^x + 1).</summary>
    public static float Softplus(float x) => D(v => Math.Max(v, 0) + Log1pDouble(Math.Exp(-Math.Abs(v))), x);

    /// <summary>ONNX Softsign: x / (1 + |x|) (its limit ±1 at ±∞).</summary>
    public static float Softsign(float x) => float.IsInfinity(x) ? MathF.Sign(x) : D(v => v / (1 + Math.Abs(v)), x);

    /// <summary>ONNX Gelu (approximate="none"): x/2 · (1 + erf(x/√2)).</summary>
    public static float Gelu(float x) => D(v => 0.5 * v * (1 + ErfDouble(v / Math.Sqrt(2))), x);

    /// <summary>ONNX Gelu (approximate="tanh"): x/2 · (1 + tanh(√(2/π)(x + 0.044715x³))).</summary>
    public static float GeluTanh(float x) => D(v => 0.5 * v * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v))), x);

    /// <summary>ONNX ThresholdedRelu: x &gt; α ? x : 0.</summary>
    public static float ThresholdedRelu(float x, float alpha = 1f) => x > alpha ? x : 0;

    /// <summary>ONNX Shrink: x &lt; −λ ? x + bias : x &gt; λ ? x − bias : 0.</summary>
    public static float Shrink(float x, float lambd = 0.5f, float bias = 0f) => float.IsNaN(x) ? 0 : x < -lambd ? x + bias : x > lambd ? x - bias : 0;

    /// <summary>ONNX Mish: x · tanh(ln(1 + e^x)).</summary>
    public static float Mish(float x) => D(v => v * Math.Tanh(Math.Max(v, 0) + Log1pDouble(Math.Exp(-Math.Abs(v)))), x);

    // ---- math ----

    /// <summary>ONNX Exp.</summary>
    public static float Exp(float x) => D(Math.Exp, x);

    /// <summary>ONNX Log.</summary>
    public static float Log(float x) => D(Math.Log, x);

    /// <summary>ONNX Erf.</summary>
    public static float Erf(float x) => D(ErfDouble, x);

    /// <summary>ONNX Sin.</summary>
    public static float Sin(float x) => D(Math.Sin, x);

    /// <summary>ONNX Cos.</summary>
    public static float Cos(float x) => D(Math.Cos, x);

    /// <summary>ONNX Tan.</summary>
    public static float Tan(float x) => D(Math.Tan, x);

    /// <summary>ONNX Asin.</summary>
    public static float Asin(float x) => D(Math.Asin, x);

    /// <summary>ONNX Acos.</summary>
    public static float Acos(float x) => D(Math.Acos, x);

    /// <summary>ONNX Atan.</summary>
    public static float Atan(float x) => D(Math.Atan, x);

    /// <summary>ONNX Sinh.</summary>
    public static float Sinh(float x) => D(Math.Sinh, x);

    /// <summary>ONNX Cosh.</summary>
    public static float Cosh(float x) => D(Math.Cosh, x);

    /// <summary>ONNX Asinh.</summary>
    public static float Asinh(float x) => D(Math.Asinh, x);

    /// <summary>ONNX Acosh.</summary>
    public static float Acosh(float x) => D(Math.Acosh, x);

    /// <summary>ONNX Atanh.</summary>
    public static float Atanh(float x) => D(Math.Atanh, x);

    /// <summary>ONNX Sqrt.</summary>
    public static float Sqrt(float x) => MathF.Sqrt(x);

    /// <summary>ONNX Reciprocal.</summary>
    public static float Reciprocal(float x) => 1f / x;

    /// <summary>ONNX Abs.</summary>
    public static float Abs(float x) => MathF.Abs(x);

    /// <summary>ONNX Neg.</summary>
    public static float Neg(float x) => -x;

    /// <summary>ONNX Floor.</summary>
    public static float Floor(float x) => MathF.Floor(x);

    /// <summary>ONNX Ceil.</summary>
    public static float Ceil(float x) => MathF.Ceiling(x);

    /// <summary>ONNX Round: to nearest, halves to even.</summary>
    public static float Round(float x) => MathF.Round(x, MidpointRounding.ToEven);

    /// <summary>ONNX Sign: −1, 0 or 1 (zeros keep their sign, NaN stays NaN).</summary>
    public static float Sign(float x) => x > 0 ? 1 : x < 0 ? -1 : x;

    /// <summary>ONNX Clip: below lo → lo, then above hi → hi.</summary>
    public static float Clip(float x, float lo, float hi) => float.IsNaN(x) ? x : x < lo ? (lo > hi ? hi : lo) : x > hi ? hi : x;

    // ---- binary ----

    /// <summary>ONNX Pow for floats (C99 pow).</summary>
    public static float Pow(float x, float y) => (float)Math.Pow(x, y);

    /// <summary>ONNX Max (NaN propagates).</summary>
    public static float Max(float a, float b) => float.IsNaN(a) || float.IsNaN(b) ? float.NaN : a < b ? b : a;

    /// <summary>ONNX Min (NaN propagates).</summary>
    public static float Min(float a, float b) => float.IsNaN(a) || float.IsNaN(b) ? float.NaN : b < a ? b : a;

    /// <summary>ONNX PRelu.</summary>
    public static float PRelu(float x, float slope) => x < 0 ? x * slope : x;

    /// <summary>ONNX Mod with fmod=1 (sign of the dividend).</summary>
    public static float Fmod(float a, float b) => a % b;

    /// <summary>ONNX Mod with fmod=0 on integers (sign of the divisor, like Python).</summary>
    public static long Mod(long a, long b)
    {
        long r = a % b;
        return r != 0 && (r < 0) != (b < 0) ? r + b : r;
    }

    /// <summary>ONNX BitShift on unsigned 64-bit integers (shifts of 64 or more give 0).</summary>
    public static ulong BitShift(ulong x, ulong amount, bool left) => amount >= 64 ? 0 : left ? x << (int)amount : x >> (int)amount;

    /// <summary>ONNX Div on integers: the quotient truncated toward zero.</summary>
    public static long DivInt(long a, long b) => (long)decimal.Truncate((decimal)a / b);

    /// <summary>e^x − 1 in double precision without cancellation near 0 (series below 1e-2).</summary>
    public static double Expm1Double(double x)
    {
        if (Math.Abs(x) >= 1e-2) return Math.Exp(x) - 1;
        double sum = 0, term = x;
        for (int n = 2; n < 12; n++) { sum += term; term *= x / n; }
        return sum;
    }

    /// <summary>ln(1 + u) in double precision without losing small u (series below 1e-4).</summary>
    public static double Log1pDouble(double u) => Math.Abs(u) < 1e-4 ? u - u * u / 2 + u * u * u / 3 - u * u * u * u / 4 : Math.Log(1 + u);

    /// <summary>erf in double precision: Taylor series below 2.5, continued fraction for erfc above (error &lt; 1e-15).</summary>
    public static double ErfDouble(double x)
    {
        if (double.IsNaN(x)) return x;
        double ax = Math.Abs(x);
        double r;
        if (ax < 2.5)
        {
            double sum = 0, term = ax, x2 = ax * ax;
            for (int n = 0; n < 200; n++)
            {
                double t = term / (2 * n + 1);
                sum += t;
                if (Math.Abs(t) < 1e-17 * Math.Abs(sum)) break;
                term *= -x2 / (n + 1);
            }
            r = 2 / Math.Sqrt(Math.PI) * sum;
        }
        else if (ax > 10) r = 1;
        else
        {
            double f = ax;
            for (int k = 300; k >= 1; k--) f = ax + k / 2.0 / f;
            r = 1 - Math.Exp(-ax * ax) / (Math.Sqrt(Math.PI) * f);
        }
        return x < 0 ? -r : r;
    }
}
