using OnDevice.Runtime.Kernels.Elementwise;
using OnDevice.Runtime.Reference;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Tests;

/// <summary>
/// Every SIMD element-wise op against its scalar twin in <see cref="ElementwiseReference"/>, on every length from 0 to
/// 51 (three 512-bit vectors plus a tail), with NaN, ±Inf, ±0, subnormals and large magnitudes mixed in. Two checks:
/// (1) the driver's output equals the op's own scalar form bit for bit at every position (bulk and tail round alike);
/// (2) it equals the reference twin bit for bit for exact ops, and within the documented bound for transcendental
/// ones. The bounds (|actual − expected| ≤ atol + rtol·|expected|, measured against double-precision math over
/// millions of inputs, see <see cref="VectorMath"/>): exp, log, tanh, sigmoid, expm1-based ops, softplus, asin,
/// acos and atan within 2–3 ulp (rtol 4e-7); tan, sinh, cosh, asinh, acosh, atanh and mish within 4–5 ulp (rtol 6e-7); erf within 5e-7 absolute; sin/cos within 1.2e-7 absolute; Gelu within 1.5e-6 absolute (erf's
/// error times x/2); subnormal results within 1e-38 absolute. CI reruns this class on every SIMD rung.
/// </summary>
[Trait("Category", "Kernels")]
public class ElementwiseTwinTests
{
    public const int MaxLength = 3 * 16 + 3;

    private static readonly float[] Specials =
    [
        float.NaN, float.PositiveInfinity, float.NegativeInfinity, 0f, -0f, 1e-40f, -1e-40f, 1e30f, -1e30f,
        1f, -1f, 0.5f, -0.5f, 2.5f, -2.5f, 88.8f, -88.8f, -104f, 8192f, -9000f, 1e-7f, -1e-7f,
    ];

    /// <summary>n values in [lo, hi) with a special value at every third position (so specials land in vector bulk and tail).</summary>
    public static float[] Inputs(int n, int seed, float lo, float hi)
    {
        var x = NodeRunner.Random(n, seed, lo, hi);
        for (int i = 0; i < n; i += 3) x[i] = Specials[(i / 3 + seed) % Specials.Length];
        return x;
    }

    public sealed record UnaryCase(Action<float[], float[]> Driver, Func<float, float> Scalar, Func<float, float> Reference, float Rtol, float Atol, float Lo, float Hi);

    private static UnaryCase Op<TOp>(Func<float, float> reference, float rtol = 0, float atol = 0, float lo = -10, float hi = 10) where TOp : IUnaryOp =>
        new((x, y) => ElementwiseDriver.Unary<TOp>(x, y), TOp.Invoke, reference, rtol, atol, lo, hi);

    private static UnaryCase Op<TOp>(TOp op, Func<float, float> reference, float rtol = 0, float atol = 0, float lo = -10, float hi = 10) where TOp : struct, IParameterizedUnaryOp =>
        new((x, y) => ElementwiseDriver.Unary(op, x, y), op.Invoke, reference, rtol, atol, lo, hi);

    private const float Tight = 4e-7f;
    private const float Subnormal = 1e-38f;

    public static readonly Dictionary<string, UnaryCase> UnaryCases = new()
    {
        ["Relu"] = Op<ActivationKernels.ReluOp>(ElementwiseReference.Relu),
        ["Sigmoid"] = Op<ActivationKernels.SigmoidOp>(ElementwiseReference.Sigmoid, Tight, Subnormal, -30, 30),
        ["Tanh"] = Op<ActivationKernels.TanhOp>(ElementwiseReference.Tanh, Tight),
        ["HardSigmoid"] = Op(new ActivationKernels.HardSigmoidOp(0.3f, 0.4f), x => ElementwiseReference.HardSigmoid(x, 0.3f, 0.4f)),
        ["HardSwish"] = Op<ActivationKernels.HardSwishOp>(ElementwiseReference.HardSwish),
        ["LeakyRelu"] = Op(new ActivationKernels.LeakyReluOp(0.1f), x => ElementwiseReference.LeakyRelu(x, 0.1f)),
        ["Elu"] = Op(new ActivationKernels.EluOp(0.7f), x => ElementwiseReference.Elu(x, 0.7f), Tight, Subnormal),
        ["Selu"] = Op(new ActivationKernels.SeluOp(ActivationKernels.SeluOp.DefaultAlpha, ActivationKernels.SeluOp.DefaultGamma), x => ElementwiseReference.Selu(x), Tight, Subnormal),
        ["Celu"] = Op(new ActivationKernels.CeluOp(2f), x => ElementwiseReference.Celu(x, 2f), Tight, Subnormal),
        ["Softplus"] = Op<ActivationKernels.SoftplusOp>(ElementwiseReference.Softplus, Tight, Subnormal, -40, 40),
        ["Softsign"] = Op<ActivationKernels.SoftsignOp>(ElementwiseReference.Softsign, 2.4e-7f),
        ["Gelu"] = Op<ActivationKernels.GeluOp>(ElementwiseReference.Gelu, Tight, 1.5e-6f),
        ["GeluTanh"] = Op<ActivationKernels.GeluTanhOp>(ElementwiseReference.GeluTanh, Tight, 5e-7f),
        ["Exp"] = Op<MathKernels.ExpOp>(ElementwiseReference.Exp, Tight, Subnormal, -100, 100),
        ["Log"] = Op<MathKernels.LogOp>(ElementwiseReference.Log, Tight, 0, -1, 1000),
        ["Erf"] = Op<MathKernels.ErfOp>(ElementwiseReference.Erf, Tight, 5e-7f, -5, 5),
        ["Sin"] = Op<MathKernels.SinOp>(ElementwiseReference.Sin, Tight, 1.2e-7f, -1000, 1000),
        ["Cos"] = Op<MathKernels.CosOp>(ElementwiseReference.Cos, Tight, 1.2e-7f, -1000, 1000),
        ["Sqrt"] = Op<MathKernels.SqrtOp>(ElementwiseReference.Sqrt, lo: -1, hi: 100),
        ["Reciprocal"] = Op<MathKernels.ReciprocalOp>(ElementwiseReference.Reciprocal),
        ["Abs"] = Op<MathKernels.AbsOp>(ElementwiseReference.Abs),
        ["Neg"] = Op<MathKernels.NegOp>(ElementwiseReference.Neg),
        ["Floor"] = Op<MathKernels.FloorOp>(ElementwiseReference.Floor),
        ["Ceil"] = Op<MathKernels.CeilOp>(ElementwiseReference.Ceil),
        ["Round"] = Op<MathKernels.RoundOp>(ElementwiseReference.Round),
        ["Sign"] = Op<MathKernels.SignOp>(ElementwiseReference.Sign),
        ["ThresholdedRelu"] = Op(new ActivationKernels.ThresholdedReluOp(0.7f), x => ElementwiseReference.ThresholdedRelu(x, 0.7f)),
        ["Shrink"] = Op(new ActivationKernels.ShrinkOp(0.6f, 0.25f), x => ElementwiseReference.Shrink(x, 0.6f, 0.25f)),
        ["Mish"] = Op<ActivationKernels.MishOp>(ElementwiseReference.Mish, 6e-7f, Subnormal, -30, 30),
        ["Tan"] = Op<MathKernels.TanOp>(ElementwiseReference.Tan, 6e-7f, 0, -4, 4),
        ["Asin"] = Op<MathKernels.AsinOp>(ElementwiseReference.Asin, Tight, 0, -1.1f, 1.1f),
        ["Acos"] = Op<MathKernels.AcosOp>(ElementwiseReference.Acos, Tight, 0, -1.1f, 1.1f),
        ["Atan"] = Op<MathKernels.AtanOp>(ElementwiseReference.Atan, Tight, 0, -50, 50),
        ["Sinh"] = Op<MathKernels.SinhOp>(ElementwiseReference.Sinh, 6e-7f, 0, -12, 12),
        ["Cosh"] = Op<MathKernels.CoshOp>(ElementwiseReference.Cosh, 6e-7f, 0, -12, 12),
        ["Asinh"] = Op<MathKernels.AsinhOp>(ElementwiseReference.Asinh, 6e-7f, 0, -1000, 1000),
        ["Acosh"] = Op<MathKernels.AcoshOp>(ElementwiseReference.Acosh, 6e-7f, 0, 0.5f, 100),
        ["Atanh"] = Op<MathKernels.AtanhOp>(ElementwiseReference.Atanh, 6e-7f, 0, -1.05f, 1.05f),
        ["Clip"] = Op(new MathKernels.ClipOp(-2f, 3f), x => ElementwiseReference.Clip(x, -2f, 3f)),
        ["ClipInverted"] = Op(new MathKernels.ClipOp(3f, -2f), x => ElementwiseReference.Clip(x, 3f, -2f)),
    };

    public static TheoryData<string> UnaryNames() => new(UnaryCases.Keys);

    [Theory]
    [MemberData(nameof(UnaryNames))]
    public void Unary_DriverMatchesScalarFormAndTwin_OnEveryLength(string name)
    {
        var c = UnaryCases[name];
        for (int n = 0; n <= MaxLength; n++)
        {
            var x = Inputs(n, n, c.Lo, c.Hi);
            var y = new float[n];
            c.Driver(x, y);
            for (int i = 0; i < n; i++)
            {
                AssertBitwise(c.Scalar(x[i]), y[i], $"{name} n={n} i={i} x={x[i]}: vector lane vs scalar form");
                AssertClose(c.Reference(x[i]), y[i], c.Rtol, c.Atol, $"{name} n={n} i={i} x={x[i]}");
            }
            // In place (y aliasing x) gives the same result.
            var z = (float[])x.Clone();
            c.Driver(z, z);
            for (int i = 0; i < n; i++) AssertBitwise(y[i], z[i], $"{name} n={n} i={i}: in place");
        }
    }

    public sealed record BinaryCase(Action<float[], float[], float[]> Full, Action<float[], float, float[]> Right, Action<float, float[], float[]> Left,
        Func<float, float, float> Scalar, Func<float, float, float> Reference, Func<float, float, float, float, bool> Close);

    private static BinaryCase Bin<TOp>(Func<float, float, float> reference, Func<float, float, float, float, bool>? close = null) where TOp : IBinaryOp =>
        new((a, b, z) => ElementwiseDriver.Binary<TOp>(a, b, z), (a, b, z) => ElementwiseDriver.BinaryScalarRight<TOp>(a, b, z),
            (a, b, z) => ElementwiseDriver.BinaryScalarLeft<TOp>(a, b, z), TOp.Invoke, reference, close ?? Bitwise);

    private static bool Bitwise(float a, float b, float expected, float actual) =>
        BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(actual) || (float.IsNaN(expected) && float.IsNaN(actual));

    /// <summary>Pow's documented bound: relative error ≤ (2 + |y| + |y·ln|x||)·2^-23, results below 1e-37 within 1e-37.</summary>
    private static bool PowClose(float x, float y, float expected, float actual)
    {
        if (Bitwise(x, y, expected, actual)) return true;
        if (float.IsNaN(expected) || float.IsInfinity(expected) || float.IsNaN(actual)) return false;
        double bound = (2 + Math.Abs(y) + Math.Abs(y * Math.Log(Math.Abs(x)))) * Math.Pow(2, -23);
        return Math.Abs((double)actual - expected) <= 1e-37 + bound * Math.Abs(expected);
    }

    public static readonly Dictionary<string, BinaryCase> BinaryCases = new()
    {
        ["Add"] = Bin<ArithmeticKernels.AddOp>((a, b) => a + b),
        ["Sub"] = Bin<ArithmeticKernels.SubOp>((a, b) => a - b),
        ["Mul"] = Bin<ArithmeticKernels.MulOp>((a, b) => a * b),
        ["Div"] = Bin<ArithmeticKernels.DivOp>((a, b) => a / b),
        ["Max"] = Bin<ArithmeticKernels.MaxOp>(ElementwiseReference.Max),
        ["Min"] = Bin<ArithmeticKernels.MinOp>(ElementwiseReference.Min),
        ["PRelu"] = Bin<ArithmeticKernels.PReluOp>(ElementwiseReference.PRelu),
        ["Pow"] = Bin<ArithmeticKernels.PowOp>(ElementwiseReference.Pow, PowClose),
    };

    public static TheoryData<string> BinaryNames() => new(BinaryCases.Keys);

    [Theory]
    [MemberData(nameof(BinaryNames))]
    public void Binary_AllOperandForms_MatchScalarFormAndTwin_OnEveryLength(string name)
    {
        var c = BinaryCases[name];
        for (int n = 0; n <= MaxLength; n++)
        {
            var a = Inputs(n, n, -10, 10);
            var b = Inputs(n, n + 7, -10, 10);
            if (name == "Pow") for (int i = 1; i < n; i += 4) b[i] = MathF.Round(b[i]); // integer exponents take their own path
            float s = n % 2 == 0 ? 0.75f : -3f;
            var z = new float[n];
            c.Full(a, b, z);
            Check(i => (a[i], b[i]), z, "full");
            c.Right(a, s, z);
            Check(i => (a[i], s), z, "scalar right");
            c.Left(s, b, z);
            Check(i => (s, b[i]), z, "scalar left");

            void Check(Func<int, (float, float)> operands, float[] actual, string form)
            {
                for (int i = 0; i < n; i++)
                {
                    var (p, q) = operands(i);
                    AssertBitwise(c.Scalar(p, q), actual[i], $"{name} {form} n={n} i={i} ({p}, {q}): vector lane vs scalar form");
                    float e = c.Reference(p, q);
                    Assert.True(c.Close(p, q, e, actual[i]), $"{name} {form} n={n} i={i} ({p}, {q}): {actual[i]} vs twin {e}");
                }
            }
        }
    }

    [Fact]
    public void Pow_SpecialCases_FollowC99()
    {
        (float X, float Y, float Expected)[] cases =
        [
            (float.NaN, 0, 1), (1, float.NaN, 1), (-1, float.PositiveInfinity, 1), (-1, float.NegativeInfinity, 1),
            (-0f, 3, -0f), (-0f, -3, float.NegativeInfinity), (-0f, 2, 0), (0, -2, float.PositiveInfinity), (-0f, 0.5f, 0),
            (-8, 1f / 3, float.NaN), (-2, 3, -8), (-2, -2, 0.25f), (2, 10, 1024), (3, 2, 9), (0.5f, float.PositiveInfinity, 0),
            (2, float.NegativeInfinity, 0), (float.NegativeInfinity, 3, float.NegativeInfinity), (float.NegativeInfinity, 0.5f, float.PositiveInfinity),
            (float.NegativeInfinity, -3, -0f), (float.PositiveInfinity, -1, 0), (4, 0.5f, 2),
        ];
        foreach (var (x, y, expected) in cases)
        {
            AssertBitwise(expected, ArithmeticKernels.PowOp.Invoke(x, y), $"pow({x}, {y})");
            AssertBitwise((float)Math.Pow(x, y), expected, $"C99 pow({x}, {y})");
        }
    }

    [Fact]
    public void Square_IsPowWithExponentTwo_BitForBit()
    {
        var x = Inputs(MaxLength, 3, -1e20f, 1e20f);
        var pow = new float[x.Length];
        var sq = new float[x.Length];
        ElementwiseDriver.BinaryScalarRight<ArithmeticKernels.PowOp>(x, 2f, pow);
        ElementwiseDriver.Unary<ArithmeticKernels.SquareOp>(x, sq);
        for (int i = 0; i < x.Length; i++) AssertBitwise(pow[i], sq[i], $"x={x[i]}");
    }

    [Fact]
    public void Round_HalvesToEven_AndSignedZerosSurvive()
    {
        float[] x = [0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 0.49999997f, 8388609f, -0f, 1e30f];
        float[] expected = [0f, 2f, 2f, -0f, -2f, -2f, 0f, 8388609f, -0f, 1e30f];
        var y = new float[x.Length];
        ElementwiseDriver.Unary<MathKernels.RoundOp>(x, y);
        for (int i = 0; i < x.Length; i++) AssertBitwise(expected[i], y[i], $"Round({x[i]})");
    }

    [Fact]
    public void ReferenceErf_MatchesPublishedValues()
    {
        (double X, double Erf)[] table = [(0.1, 0.1124629160182849), (0.5, 0.5204998778130465), (1, 0.8427007929497149), (2, 0.9953222650189527), (3, 0.9999779095030014), (4, 0.9999999845827421)];
        foreach (var (x, e) in table)
        {
            Assert.Equal(e, ElementwiseReference.ErfDouble(x), 1e-14);
            Assert.Equal(-e, ElementwiseReference.ErfDouble(-x), 1e-14);
        }
    }

    private static void AssertBitwise(float expected, float actual, string what) =>
        Assert.True(Bitwise(0, 0, expected, actual), $"{what}: {actual} vs {expected}");

    private static void AssertClose(float expected, float actual, float rtol, float atol, string what)
    {
        if (rtol == 0 && atol == 0)
        {
            AssertBitwise(expected, actual, $"{what} (exact op) vs twin");
            return;
        }
        if (Bitwise(0, 0, expected, actual)) return;
        Assert.False(float.IsNaN(expected) || float.IsInfinity(expected) || float.IsNaN(actual), $"{what}: {actual} vs twin {expected}");
        Assert.True(Math.Abs((double)actual - expected) <= atol + rtol * Math.Abs((double)expected), $"{what}: {actual} vs twin {expected}");
    }
}
