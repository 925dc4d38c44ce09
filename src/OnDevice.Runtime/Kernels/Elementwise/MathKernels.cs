using System.Numerics;
using System.Runtime.Intrinsics;
using OnDevice.Core;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Kernels.Elementwise;

/// <summary>Element-wise math functions: float32 SIMD (float16/bfloat16 computed in float32), plus integer and
/// float64 forms for the ops ONNX defines on them (Abs, Neg, Sign, Clip).</summary>
internal static class MathKernels
{
    private static readonly DType[] SignedAndBf16 = [.. Numeric.Signed, DType.BFloat16];
    private static readonly DType[] NumericAndBf16 = [.. Numeric.Types, DType.BFloat16];

    public static void Register(KernelRegistry r)
    {
        r.Add("Exp", 6, FloatUnary.Types, _ => new UnaryKernel<ExpOp>());
        r.Add("Log", 6, FloatUnary.Types, _ => new UnaryKernel<LogOp>());
        r.Add("Erf", 9, FloatUnary.Types, _ => new UnaryKernel<ErfOp>());
        r.Add("Sin", 7, FloatUnary.Types, _ => new UnaryKernel<SinOp>());
        r.Add("Cos", 7, FloatUnary.Types, _ => new UnaryKernel<CosOp>());
        r.Add("Tan", 7, FloatUnary.Types, _ => new UnaryKernel<TanOp>());
        r.Add("Asin", 7, FloatUnary.Types, _ => new UnaryKernel<AsinOp>());
        r.Add("Acos", 7, FloatUnary.Types, _ => new UnaryKernel<AcosOp>());
        r.Add("Atan", 7, FloatUnary.Types, _ => new UnaryKernel<AtanOp>());
        r.Add("Sinh", 9, FloatUnary.Types, _ => new UnaryKernel<SinhOp>());
        r.Add("Cosh", 9, FloatUnary.Types, _ => new UnaryKernel<CoshOp>());
        r.Add("Asinh", 9, FloatUnary.Types, _ => new UnaryKernel<AsinhOp>());
        r.Add("Acosh", 9, FloatUnary.Types, _ => new UnaryKernel<AcoshOp>());
        r.Add("Atanh", 9, FloatUnary.Types, _ => new UnaryKernel<AtanhOp>());
        r.Add("Sqrt", 6, FloatUnary.Types, _ => new UnaryKernel<SqrtOp>());
        r.Add("Reciprocal", 6, FloatUnary.Types, _ => new UnaryKernel<ReciprocalOp>());
        r.Add("Floor", 6, FloatUnary.Types, _ => new UnaryKernel<FloorOp>());
        r.Add("Ceil", 6, FloatUnary.Types, _ => new UnaryKernel<CeilOp>());
        r.Add("Round", 11, FloatUnary.Types, _ => new UnaryKernel<RoundOp>());
        r.Add("Abs", 6, NumericAndBf16, _ => new UnaryKernel<AbsOp, AbsNum>());
        r.Add("Neg", 6, SignedAndBf16, _ => new UnaryKernel<NegOp, NegNum>());
        r.Add("Sign", 9, NumericAndBf16, _ => new UnaryKernel<SignOp, SignNum>());
        r.Add("Clip", 6, [DType.Float32, DType.Float16, DType.BFloat16], c => new ClipAttributeKernel(c.Node.GetFloat("min", float.MinValue), c.Node.GetFloat("max", float.MaxValue)), until: 10);
        r.Add("Clip", 11, NumericAndBf16, _ => new ClipKernel());
    }

    /// <summary>e^x.</summary>
    public readonly struct ExpOp : IUnaryOp
    {
        public static float Invoke(float x) => VectorMath.Exp(new Lanes1(x)).V;
        public static Vector128<float> Invoke(Vector128<float> x) => VectorMath.Exp(new Lanes128(x)).V;
        public static Vector256<float> Invoke(Vector256<float> x) => VectorMath.Exp(new Lanes256(x)).V;
        public static Vector512<float> Invoke(Vector512<float> x) => VectorMath.Exp(new Lanes512(x)).V;
    }

    /// <summary>ln x.</summary>
    public readonly struct LogOp : IUnaryOp
    {
        public static float Invoke(float x) => VectorMath.Log(new Lanes1(x)).V;
        public static Vector128<float> Invoke(Vector128<float> x) => VectorMath.Log(new Lanes128(x)).V;
        public static Vector256<float> Invoke(Vector256<float> x) => VectorMath.Log(new Lanes256(x)).V;
        public static Vector512<float> Invoke(Vector512<float> x) => VectorMath.Log(new Lanes512(x)).V;
    }

    /// <summary>erf x.</summary>
    public readonly struct ErfOp : IUnaryOp
    {
        public static float Invoke(float x) => VectorMath.Erf(new Lanes1(x)).V;
        public static Vector128<float> Invoke(Vector128<float> x) => VectorMath.Erf(new Lanes128(x)).V;
        public static Vector256<float> Invoke(Vector256<float> x) => VectorMath.Erf(new Lanes256(x)).V;
        public static Vector512<float> Invoke(Vector512<float> x) => VectorMath.Erf(new Lanes512(x)).V;
    }

    /// <summary>sin x.</summary>
    public readonly struct SinOp : IUnaryOp
    {
        public static float Invoke(float x) => VectorMath.Sin(new Lanes1(x)).V;
        public static Vector128<float> Invoke(Vector128<float> x) => VectorMath.Sin(new Lanes128(x)).V;
        public static Vector256<float> Invoke(Vector256<float> x) => VectorMath.Sin(new Lanes256(x)).V;
        public static Vector512<float> Invoke(Vector512<float> x) => VectorMath.Sin(new Lanes512(x)).V;
    }

    /// <summary>cos x.</summary>
    public readonly struct CosOp : IUnaryOp
    {
        public static float Invoke(float x) => VectorMath.Cos(new Lanes1(x)).V;
        public static Vector128<float> Invoke(Vector128<float> x) => VectorMath.Cos(new Lanes128(x)).V;
        public static Vector256<float> Invoke(Vector256<float> x) => VectorMath.Cos(new Lanes256(x)).V;
        public static Vector512<float> Invoke(Vector512<float> x) => VectorMath.Cos(new Lanes512(x)).V;
    }

    /// <summary>tan x.</summary>
    public readonly struct TanOp : IUnaryOp
    {
        public static float Invoke(float x) => VectorMath.Tan(new Lanes1(x)).V;
        public static Vector128<float> Invoke(Vector128<float> x) => VectorMath.Tan(new Lanes128(x)).V;
        public static Vector256<float> Invoke(Vector256<float> x) => VectorMath.Tan(new Lanes256(x)).V;
        public static Vector512<float> Invoke(Vector512<float> x) => VectorMath.Tan(new Lanes512(x)).V;
    }

    /// <summary>asin x.</summary>
    public readonly struct AsinOp : IUnaryOp
    {
        public static float Invoke(float x) => VectorMath.Asin(new Lanes1(x)).V;
        public static Vector128<float> Invoke(Vector128<float> x) => VectorMath.Asin(new Lanes128(x)).V;
        public static Vector256<float> Invoke(Vector256<float> x) => VectorMath.Asin(new Lanes256(x)).V;
        public static Vector512<float> Invoke(Vector512<float> x) => VectorMath.Asin(new Lanes512(x)).V;
    }

    /// <summary>acos x.</summary>
    public readonly struct AcosOp : IUnaryOp
    {
        public static float Invoke(float x) => VectorMath.Acos(new Lanes1(x)).V;
        public static Vector128<float> Invoke(Vector128<float> x) => VectorMath.Acos(new Lanes128(x)).V;
        public static Vector256<float> Invoke(Vector256<float> x) => VectorMath.Acos(new Lanes256(x)).V;
        public static Vector512<float> Invoke(Vector512<float> x) => VectorMath.Acos(new Lanes512(x)).V;
    }

    /// <summary>atan x.</summary>
    public readonly struct AtanOp : IUnaryOp
    {
        public static float Invoke(float x) => VectorMath.Atan(new Lanes1(x)).V;
        public static Vector128<float> Invoke(Vector128<float> x) => VectorMath.Atan(new Lanes128(x)).V;
        public static Vector256<float> Invoke(Vector256<float> x) => VectorMath.Atan(new Lanes256(x)).V;
        public static Vector512<float> Invoke(Vector512<float> x) => VectorMath.Atan(new Lanes512(x)).V;
    }

    /// <summary>sinh x.</summary>
    public readonly struct SinhOp : IUnaryOp
    {
        public static float Invoke(float x) => VectorMath.Sinh(new Lanes1(x)).V;
        public static Vector128<float> Invoke(Vector128<float> x) => VectorMath.Sinh(new Lanes128(x)).V;
        public static Vector256<float> Invoke(Vector256<float> x) => VectorMath.Sinh(new Lanes256(x)).V;
        public static Vector512<float> Invoke(Vector512<float> x) => VectorMath.Sinh(new Lanes512(x)).V;
    }

    /// <summary>cosh x.</summary>
    public readonly struct CoshOp : IUnaryOp
    {
        public static float Invoke(float x) => VectorMath.Cosh(new Lanes1(x)).V;
        public static Vector128<float> Invoke(Vector128<float> x) => VectorMath.Cosh(new Lanes128(x)).V;
        public static Vector256<float> Invoke(Vector256<float> x) => VectorMath.Cosh(new Lanes256(x)).V;
        public static Vector512<float> Invoke(Vector512<float> x) => VectorMath.Cosh(new Lanes512(x)).V;
    }

    /// <summary>asinh x.</summary>
    public readonly struct AsinhOp : IUnaryOp
    {
        public static float Invoke(float x) => VectorMath.Asinh(new Lanes1(x)).V;
        public static Vector128<float> Invoke(Vector128<float> x) => VectorMath.Asinh(new Lanes128(x)).V;
        public static Vector256<float> Invoke(Vector256<float> x) => VectorMath.Asinh(new Lanes256(x)).V;
        public static Vector512<float> Invoke(Vector512<float> x) => VectorMath.Asinh(new Lanes512(x)).V;
    }

    /// <summary>acosh x.</summary>
    public readonly struct AcoshOp : IUnaryOp
    {
        public static float Invoke(float x) => VectorMath.Acosh(new Lanes1(x)).V;
        public static Vector128<float> Invoke(Vector128<float> x) => VectorMath.Acosh(new Lanes128(x)).V;
        public static Vector256<float> Invoke(Vector256<float> x) => VectorMath.Acosh(new Lanes256(x)).V;
        public static Vector512<float> Invoke(Vector512<float> x) => VectorMath.Acosh(new Lanes512(x)).V;
    }

    /// <summary>atanh x.</summary>
    public readonly struct AtanhOp : IUnaryOp
    {
        public static float Invoke(float x) => VectorMath.Atanh(new Lanes1(x)).V;
        public static Vector128<float> Invoke(Vector128<float> x) => VectorMath.Atanh(new Lanes128(x)).V;
        public static Vector256<float> Invoke(Vector256<float> x) => VectorMath.Atanh(new Lanes256(x)).V;
        public static Vector512<float> Invoke(Vector512<float> x) => VectorMath.Atanh(new Lanes512(x)).V;
    }

    /// <summary>√x (correctly rounded).</summary>
    public readonly struct SqrtOp : IUnaryOp
    {
        public static float Invoke(float x) => MathF.Sqrt(x);
        public static Vector128<float> Invoke(Vector128<float> x) => Vector128.Sqrt(x);
        public static Vector256<float> Invoke(Vector256<float> x) => Vector256.Sqrt(x);
        public static Vector512<float> Invoke(Vector512<float> x) => Vector512.Sqrt(x);
    }

    /// <summary>1/x (correctly rounded division, not the hardware estimate).</summary>
    public readonly struct ReciprocalOp : IUnaryOp
    {
        public static float Invoke(float x) => 1f / x;
        public static Vector128<float> Invoke(Vector128<float> x) => Vector128<float>.One / x;
        public static Vector256<float> Invoke(Vector256<float> x) => Vector256<float>.One / x;
        public static Vector512<float> Invoke(Vector512<float> x) => Vector512<float>.One / x;
    }

    /// <summary>⌊x⌋.</summary>
    public readonly struct FloorOp : IUnaryOp
    {
        public static float Invoke(float x) => MathF.Floor(x);
        public static Vector128<float> Invoke(Vector128<float> x) => Vector128.Floor(x);
        public static Vector256<float> Invoke(Vector256<float> x) => Vector256.Floor(x);
        public static Vector512<float> Invoke(Vector512<float> x) => Vector512.Floor(x);
    }

    /// <summary>⌈x⌉.</summary>
    public readonly struct CeilOp : IUnaryOp
    {
        public static float Invoke(float x) => MathF.Ceiling(x);
        public static Vector128<float> Invoke(Vector128<float> x) => Vector128.Ceiling(x);
        public static Vector256<float> Invoke(Vector256<float> x) => Vector256.Ceiling(x);
        public static Vector512<float> Invoke(Vector512<float> x) => Vector512.Ceiling(x);
    }

    /// <summary>Round to nearest integer, halves to even.</summary>
    public readonly struct RoundOp : IUnaryOp
    {
        public static float Invoke(float x) => MathF.Round(x, MidpointRounding.ToEven);
        public static Vector128<float> Invoke(Vector128<float> x) => Vector128.Round(x);
        public static Vector256<float> Invoke(Vector256<float> x) => Vector256.Round(x);
        public static Vector512<float> Invoke(Vector512<float> x) => Vector512.Round(x);
    }

    /// <summary>|x| (clears the sign bit; NaN stays NaN).</summary>
    public readonly struct AbsOp : IUnaryOp
    {
        public static float Invoke(float x) => MathF.Abs(x);
        public static Vector128<float> Invoke(Vector128<float> x) => Vector128.AndNot(x, Vector128.Create(-0f));
        public static Vector256<float> Invoke(Vector256<float> x) => Vector256.AndNot(x, Vector256.Create(-0f));
        public static Vector512<float> Invoke(Vector512<float> x) => Vector512.AndNot(x, Vector512.Create(-0f));
    }

    /// <summary>|x| for integers (wrapping: |MinValue| = MinValue) and float64.</summary>
    public readonly struct AbsNum : INumericUnary
    {
        public static T Invoke<T>(T x) where T : unmanaged, INumber<T> => T.IsNegative(x) ? T.Zero - x : x;
    }

    /// <summary>−x (flips the sign bit).</summary>
    public readonly struct NegOp : IUnaryOp
    {
        public static float Invoke(float x) => -x;
        public static Vector128<float> Invoke(Vector128<float> x) => x ^ Vector128.Create(-0f);
        public static Vector256<float> Invoke(Vector256<float> x) => x ^ Vector256.Create(-0f);
        public static Vector512<float> Invoke(Vector512<float> x) => x ^ Vector512.Create(-0f);
    }

    /// <summary>−x for integers (wrapping) and float64.</summary>
    public readonly struct NegNum : INumericUnary
    {
        public static T Invoke<T>(T x) where T : unmanaged, INumber<T> => Numeric.IsFloat<T>() ? -x : T.Zero - x;
    }

    /// <summary>−1, 0 or 1; zeros and NaN are returned unchanged.</summary>
    public readonly struct SignOp : IUnaryOp
    {
        public static float Invoke(float x) => Apply(new Lanes1(x)).V;
        public static Vector128<float> Invoke(Vector128<float> x) => Apply(new Lanes128(x)).V;
        public static Vector256<float> Invoke(Vector256<float> x) => Apply(new Lanes256(x)).V;
        public static Vector512<float> Invoke(Vector512<float> x) => Apply(new Lanes512(x)).V;
        private static L Apply<L>(L x) where L : struct, IFloatLanes<L>
        {
            var r = L.Select(L.LessThan(L.Splat(0f), x), L.Splat(1f), x);
            return L.Select(L.LessThan(x, L.Splat(0f)), L.Splat(-1f), r);
        }
    }

    /// <summary>Sign for integers and float64.</summary>
    public readonly struct SignNum : INumericUnary
    {
        public static T Invoke<T>(T x) where T : unmanaged, INumber<T> =>
            x > T.Zero ? T.One : x < T.Zero ? T.Zero - T.One : x;
    }

    /// <summary>x below lo → lo, then above hi → hi (so lo &gt; hi gives hi everywhere); NaN stays NaN.</summary>
    public readonly struct ClipOp(float lo, float hi) : IParameterizedUnaryOp
    {
        private readonly float _lo = lo, _hi = hi;
        public float Invoke(float x) => Apply(new Lanes1(x)).V;
        public Vector128<float> Invoke(Vector128<float> x) => Apply(new Lanes128(x)).V;
        public Vector256<float> Invoke(Vector256<float> x) => Apply(new Lanes256(x)).V;
        public Vector512<float> Invoke(Vector512<float> x) => Apply(new Lanes512(x)).V;
        private L Apply<L>(L x) where L : struct, IFloatLanes<L>
        {
            var lo = L.Splat(_lo);
            var hi = L.Splat(_hi);
            x = L.Select(L.LessThan(x, lo), lo, x);
            return L.Select(L.LessThan(hi, x), hi, x);
        }
    }

    /// <summary>Clip for integers and float64 with the same rule as <see cref="ClipOp"/>.</summary>
    public static T Clip<T>(T x, T lo, T hi) where T : unmanaged, INumber<T>
    {
        if (x < lo) x = lo;
        return hi < x ? hi : x;
    }

    /// <summary>Clip-6 to Clip-10: bounds are attributes.</summary>
    private sealed class ClipAttributeKernel(float lo, float hi) : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var x = ctx.Required(0);
            FloatUnary.Run(ctx, new ClipOp(lo, hi), x, ctx.Output(0, x.DType, x.Shape));
        }
    }

    /// <summary>Clip-11 and later: optional scalar inputs min and max (defaults: the type's lowest and highest value).</summary>
    private sealed class ClipKernel : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var x = ctx.Required(0);
            var y = ctx.Output(0, x.DType, x.Shape);
            var lo = ctx.Input(1);
            var hi = ctx.Input(2);
            foreach (var bound in new[] { lo, hi })
                if (bound is not null && (bound.DType != x.DType || bound.Length != 1))
                    throw new InvalidOperationException($"node {ctx.Node.Label}: min and max must be {x.DType.Name()} scalars, got {bound}");
            switch (x.DType)
            {
                case DType.Float32 or DType.Float16 or DType.BFloat16:
                    float max = x.DType switch
                    {
                        DType.Float32 => float.MaxValue,
                        DType.Float16 => (float)Half.MaxValue,
                        _ => BFloat16.ToSingle(0x7F7F),
                    };
                    FloatUnary.Run(ctx, new ClipOp(lo is null ? -max : ReadFloat(lo), hi is null ? max : ReadFloat(hi)), x, y);
                    break;
                default:
                    Numeric.Dispatch(x.DType, new Loop(x, lo, hi, y));
                    break;
            }
        }

        private static float ReadFloat(TensorBuffer t) => t.DType switch
        {
            DType.Float32 => t.Span<float>()[0],
            DType.Float16 => (float)t.Span<Half>()[0],
            _ => BFloat16.ToSingle(t.Span<ushort>()[0]),
        };

        private readonly struct Loop(TensorBuffer x, TensorBuffer? lo, TensorBuffer? hi, TensorBuffer y) : INumericAction
        {
            public void Run<T>() where T : unmanaged, INumber<T>
            {
                var limits = Numeric.Limits<T>();
                T l = lo is null ? limits.Min : lo.Span<T>()[0];
                T h = hi is null ? limits.Max : hi.Span<T>()[0];
                var xs = x.Span<T>();
                var ys = y.Span<T>();
                for (int i = 0; i < xs.Length; i++) ys[i] = Clip(xs[i], l, h);
            }
        }
    }
}
