using System.Numerics;
using System.Runtime.Intrinsics;
using OnDevice.Core;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Kernels.Elementwise;

/// <summary>Element-wise activations on float32 (float16/bfloat16 computed in float32): one readonly struct per op,
/// written once over <see cref="IFloatLanes{TSelf}"/> so the scalar tail rounds like the vector lanes.</summary>
internal static class ActivationKernels
{
    private static readonly DType[] ReluTypes = [.. Numeric.Signed, DType.BFloat16];

    public static void Register(KernelRegistry r)
    {
        r.Add("Relu", 6, ReluTypes, _ => new UnaryKernel<ReluOp, ReluNum>());
        r.Add("Sigmoid", 6, FloatUnary.Types, _ => new UnaryKernel<SigmoidOp>());
        r.Add("Tanh", 6, FloatUnary.Types, _ => new UnaryKernel<TanhOp>());
        r.Add("HardSigmoid", 6, FloatUnary.Types, c => new FloatUnaryKernel<HardSigmoidOp>(new(c.Node.GetFloat("alpha", 0.2f), c.Node.GetFloat("beta", 0.5f))));
        r.Add("HardSwish", 14, FloatUnary.Types, _ => new UnaryKernel<HardSwishOp>());
        r.Add("LeakyRelu", 6, FloatUnary.Types, c => new FloatUnaryKernel<LeakyReluOp>(new(c.Node.GetFloat("alpha", 0.01f))));
        r.Add("Elu", 6, FloatUnary.Types, c => new FloatUnaryKernel<EluOp>(new(c.Node.GetFloat("alpha", 1f))));
        r.Add("Selu", 6, FloatUnary.Types, c => new FloatUnaryKernel<SeluOp>(new(c.Node.GetFloat("alpha", SeluOp.DefaultAlpha), c.Node.GetFloat("gamma", SeluOp.DefaultGamma))));
        r.Add("Celu", 12, FloatUnary.Types, c => new FloatUnaryKernel<CeluOp>(new(c.Node.GetFloat("alpha", 1f))), supports: c =>
            c.Node.GetFloat("alpha", 1f) == 0 ? "Celu alpha must be nonzero" : null);
        r.Add("Softplus", 1, FloatUnary.Types, _ => new UnaryKernel<SoftplusOp>());
        r.Add("Softsign", 1, FloatUnary.Types, _ => new UnaryKernel<SoftsignOp>());
        r.Add("ThresholdedRelu", 10, FloatUnary.Types, c => new FloatUnaryKernel<ThresholdedReluOp>(new(c.Node.GetFloat("alpha", 1f))));
        r.Add("Shrink", 9, FloatUnary.Types, c => new FloatUnaryKernel<ShrinkOp>(new(c.Node.GetFloat("lambd", 0.5f), c.Node.GetFloat("bias", 0f))));
        r.Add("Mish", 18, FloatUnary.Types, _ => new UnaryKernel<MishOp>());
        r.Add("Gelu", 20, FloatUnary.Types, c => c.Node.GetString("approximate", "none") == "tanh" ? new UnaryKernel<GeluTanhOp>() : new UnaryKernel<GeluOp>(),
            supports: c => c.Node.GetString("approximate", "none") is "none" or "tanh" ? null : $"Gelu approximate='{c.Node.GetString("approximate", "")}' is not 'none' or 'tanh'");
    }

    /// <summary>max(x, 0); NaN stays NaN as in ONNX Runtime.</summary>
    public readonly struct ReluOp : IUnaryOp
    {
        public static float Invoke(float x) => x > 0 ? x : (float.IsNaN(x) ? x : 0);
        public static Vector128<float> Invoke(Vector128<float> x) => Vector128.ConditionalSelect(Vector128.LessThanOrEqual(x, Vector128<float>.Zero), Vector128<float>.Zero, x);
        public static Vector256<float> Invoke(Vector256<float> x) => Vector256.ConditionalSelect(Vector256.LessThanOrEqual(x, Vector256<float>.Zero), Vector256<float>.Zero, x);
        public static Vector512<float> Invoke(Vector512<float> x) => Vector512.ConditionalSelect(Vector512.LessThanOrEqual(x, Vector512<float>.Zero), Vector512<float>.Zero, x);
    }

    /// <summary>Relu for integers and float64.</summary>
    public readonly struct ReluNum : INumericUnary
    {
        public static T Invoke<T>(T x) where T : unmanaged, INumber<T> => x > T.Zero || T.IsNaN(x) ? x : T.Zero;
    }

    /// <summary>1 / (1 + e^−x).</summary>
    public readonly struct SigmoidOp : IUnaryOp
    {
        public static float Invoke(float x) => VectorMath.Sigmoid(new Lanes1(x)).V;
        public static Vector128<float> Invoke(Vector128<float> x) => VectorMath.Sigmoid(new Lanes128(x)).V;
        public static Vector256<float> Invoke(Vector256<float> x) => VectorMath.Sigmoid(new Lanes256(x)).V;
        public static Vector512<float> Invoke(Vector512<float> x) => VectorMath.Sigmoid(new Lanes512(x)).V;
    }

    /// <summary>tanh(x).</summary>
    public readonly struct TanhOp : IUnaryOp
    {
        public static float Invoke(float x) => VectorMath.Tanh(new Lanes1(x)).V;
        public static Vector128<float> Invoke(Vector128<float> x) => VectorMath.Tanh(new Lanes128(x)).V;
        public static Vector256<float> Invoke(Vector256<float> x) => VectorMath.Tanh(new Lanes256(x)).V;
        public static Vector512<float> Invoke(Vector512<float> x) => VectorMath.Tanh(new Lanes512(x)).V;
    }

    /// <summary>max(0, min(1, αx + β)); NaN stays NaN.</summary>
    public readonly struct HardSigmoidOp(float alpha, float beta) : IParameterizedUnaryOp
    {
        private readonly float _alpha = alpha, _beta = beta;
        public float Invoke(float x) => Apply(new Lanes1(x)).V;
        public Vector128<float> Invoke(Vector128<float> x) => Apply(new Lanes128(x)).V;
        public Vector256<float> Invoke(Vector256<float> x) => Apply(new Lanes256(x)).V;
        public Vector512<float> Invoke(Vector512<float> x) => Apply(new Lanes512(x)).V;
        private L Apply<L>(L x) where L : struct, IFloatLanes<L> => Unit(x * L.Splat(_alpha) + L.Splat(_beta));

        /// <summary>t clamped to [0, 1], NaN kept.</summary>
        internal static L Unit<L>(L t) where L : struct, IFloatLanes<L>
        {
            t = L.Select(L.LessThan(t, L.Splat(0f)), L.Splat(0f), t);
            return L.Select(L.LessThan(L.Splat(1f), t), L.Splat(1f), t);
        }
    }

    /// <summary>x · max(0, min(1, x/6 + 1/2)).</summary>
    public readonly struct HardSwishOp : IUnaryOp
    {
        public static float Invoke(float x) => Apply(new Lanes1(x)).V;
        public static Vector128<float> Invoke(Vector128<float> x) => Apply(new Lanes128(x)).V;
        public static Vector256<float> Invoke(Vector256<float> x) => Apply(new Lanes256(x)).V;
        public static Vector512<float> Invoke(Vector512<float> x) => Apply(new Lanes512(x)).V;
        private static L Apply<L>(L x) where L : struct, IFloatLanes<L> => x * HardSigmoidOp.Unit(x * L.Splat(1f / 6f) + L.Splat(0.5f));
    }

    /// <summary>x &lt; 0 ? αx : x.</summary>
    public readonly struct LeakyReluOp(float alpha) : IParameterizedUnaryOp
    {
        private readonly float _alpha = alpha;
        public float Invoke(float x) => Apply(new Lanes1(x)).V;
        public Vector128<float> Invoke(Vector128<float> x) => Apply(new Lanes128(x)).V;
        public Vector256<float> Invoke(Vector256<float> x) => Apply(new Lanes256(x)).V;
        public Vector512<float> Invoke(Vector512<float> x) => Apply(new Lanes512(x)).V;
        private L Apply<L>(L x) where L : struct, IFloatLanes<L> => L.Select(L.LessThan(x, L.Splat(0f)), x * L.Splat(_alpha), x);
    }

    /// <summary>x &lt; 0 ? α(e^x − 1) : x.</summary>
    public readonly struct EluOp(float alpha) : IParameterizedUnaryOp
    {
        private readonly float _alpha = alpha;
        public float Invoke(float x) => Apply(new Lanes1(x)).V;
        public Vector128<float> Invoke(Vector128<float> x) => Apply(new Lanes128(x)).V;
        public Vector256<float> Invoke(Vector256<float> x) => Apply(new Lanes256(x)).V;
        public Vector512<float> Invoke(Vector512<float> x) => Apply(new Lanes512(x)).V;
        private L Apply<L>(L x) where L : struct, IFloatLanes<L> => L.Select(L.LessThan(x, L.Splat(0f)), L.Splat(_alpha) * VectorMath.Expm1(x), x);
    }

    /// <summary>γ · (x &gt; 0 ? x : α(e^x − 1)).</summary>
    public readonly struct SeluOp(float alpha, float gamma) : IParameterizedUnaryOp
    {
        /// <summary>ONNX default α.</summary>
        public const float DefaultAlpha = 1.67326319217681884765625f;
        /// <summary>ONNX default γ.</summary>
        public const float DefaultGamma = 1.05070102214813232421875f;
        private readonly float _alpha = alpha, _gamma = gamma;
        public float Invoke(float x) => Apply(new Lanes1(x)).V;
        public Vector128<float> Invoke(Vector128<float> x) => Apply(new Lanes128(x)).V;
        public Vector256<float> Invoke(Vector256<float> x) => Apply(new Lanes256(x)).V;
        public Vector512<float> Invoke(Vector512<float> x) => Apply(new Lanes512(x)).V;
        private L Apply<L>(L x) where L : struct, IFloatLanes<L> =>
            L.Splat(_gamma) * L.Select(L.LessThan(L.Splat(0f), x), x, L.Splat(_alpha) * VectorMath.Expm1(x));
    }

    /// <summary>max(0, x) + min(0, α(e^{x/α} − 1)).</summary>
    public readonly struct CeluOp(float alpha) : IParameterizedUnaryOp
    {
        private readonly float _alpha = alpha;
        public float Invoke(float x) => Apply(new Lanes1(x)).V;
        public Vector128<float> Invoke(Vector128<float> x) => Apply(new Lanes128(x)).V;
        public Vector256<float> Invoke(Vector256<float> x) => Apply(new Lanes256(x)).V;
        public Vector512<float> Invoke(Vector512<float> x) => Apply(new Lanes512(x)).V;
        private L Apply<L>(L x) where L : struct, IFloatLanes<L> =>
            L.Select(L.LessThan(L.Splat(0f), x), x, L.Splat(_alpha) * VectorMath.Expm1(x / L.Splat(_alpha)));
    }

    /// <summary>ln(1 + e^x), computed as max(x, 0) + ln(1 + e^−|x|).</summary>
    public readonly struct SoftplusOp : IUnaryOp
    {
        public static float Invoke(float x) => Apply(new Lanes1(x)).V;
        public static Vector128<float> Invoke(Vector128<float> x) => Apply(new Lanes128(x)).V;
        public static Vector256<float> Invoke(Vector256<float> x) => Apply(new Lanes256(x)).V;
        public static Vector512<float> Invoke(Vector512<float> x) => Apply(new Lanes512(x)).V;
        internal static L Apply<L>(L x) where L : struct, IFloatLanes<L> =>
            L.Select(L.LessThan(L.Splat(0f), x), x, L.Splat(0f)) + VectorMath.Log1p(VectorMath.Exp(-L.Abs(x)));
    }

    /// <summary>x / (1 + |x|); ±1 at ±∞.</summary>
    public readonly struct SoftsignOp : IUnaryOp
    {
        public static float Invoke(float x) => Apply(new Lanes1(x)).V;
        public static Vector128<float> Invoke(Vector128<float> x) => Apply(new Lanes128(x)).V;
        public static Vector256<float> Invoke(Vector256<float> x) => Apply(new Lanes256(x)).V;
        public static Vector512<float> Invoke(Vector512<float> x) => Apply(new Lanes512(x)).V;
        private static L Apply<L>(L x) where L : struct, IFloatLanes<L>
        {
            var ax = L.Abs(x);
            var one = L.Splat(1f) | (x & L.Splat(-0f));
            return L.Select(L.Equal(ax, L.Splat(float.PositiveInfinity)), one, x / (L.Splat(1f) + ax));
        }
    }

    /// <summary>x &gt; α ? x : 0.</summary>
    public readonly struct ThresholdedReluOp(float alpha) : IParameterizedUnaryOp
    {
        private readonly float _alpha = alpha;
        public float Invoke(float x) => Apply(new Lanes1(x)).V;
        public Vector128<float> Invoke(Vector128<float> x) => Apply(new Lanes128(x)).V;
        public Vector256<float> Invoke(Vector256<float> x) => Apply(new Lanes256(x)).V;
        public Vector512<float> Invoke(Vector512<float> x) => Apply(new Lanes512(x)).V;
        private L Apply<L>(L x) where L : struct, IFloatLanes<L> => L.Select(L.LessThan(L.Splat(_alpha), x), x, L.Splat(0f));
    }

    /// <summary>x &lt; −λ ? x + bias : x &gt; λ ? x − bias : 0.</summary>
    public readonly struct ShrinkOp(float lambd, float bias) : IParameterizedUnaryOp
    {
        private readonly float _lambd = lambd, _bias = bias;
        public float Invoke(float x) => Apply(new Lanes1(x)).V;
        public Vector128<float> Invoke(Vector128<float> x) => Apply(new Lanes128(x)).V;
        public Vector256<float> Invoke(Vector256<float> x) => Apply(new Lanes256(x)).V;
        public Vector512<float> Invoke(Vector512<float> x) => Apply(new Lanes512(x)).V;
        private L Apply<L>(L x) where L : struct, IFloatLanes<L>
        {
            var l = L.Splat(_lambd);
            var b = L.Splat(_bias);
            var y = L.Select(L.LessThan(l, x), x - b, L.Splat(0f));
            return L.Select(L.LessThan(x, -l), x + b, y);
        }
    }

    /// <summary>x · tanh(softplus(x)).</summary>
    public readonly struct MishOp : IUnaryOp
    {
        public static float Invoke(float x) => Apply(new Lanes1(x)).V;
        public static Vector128<float> Invoke(Vector128<float> x) => Apply(new Lanes128(x)).V;
        public static Vector256<float> Invoke(Vector256<float> x) => Apply(new Lanes256(x)).V;
        public static Vector512<float> Invoke(Vector512<float> x) => Apply(new Lanes512(x)).V;
        private static L Apply<L>(L x) where L : struct, IFloatLanes<L> => x * VectorMath.Tanh(SoftplusOp.Apply(x));
    }

    /// <summary>x/2 · (1 + erf(x/√2)) (Gelu approximate="none").</summary>
    public readonly struct GeluOp : IUnaryOp
    {
        public static float Invoke(float x) => Apply(new Lanes1(x)).V;
        public static Vector128<float> Invoke(Vector128<float> x) => Apply(new Lanes128(x)).V;
        public static Vector256<float> Invoke(Vector256<float> x) => Apply(new Lanes256(x)).V;
        public static Vector512<float> Invoke(Vector512<float> x) => Apply(new Lanes512(x)).V;
        private static L Apply<L>(L x) where L : struct, IFloatLanes<L> =>
            L.Splat(0.5f) * x * (L.Splat(1f) + VectorMath.Erf(x * L.Splat(0.70710678118654752f)));
    }

    /// <summary>x/2 · (1 + tanh(√(2/π)(x + 0.044715x³))) (Gelu approximate="tanh").</summary>
    public readonly struct GeluTanhOp : IUnaryOp
    {
        public static float Invoke(float x) => Apply(new Lanes1(x)).V;
        public static Vector128<float> Invoke(Vector128<float> x) => Apply(new Lanes128(x)).V;
        public static Vector256<float> Invoke(Vector256<float> x) => Apply(new Lanes256(x)).V;
        public static Vector512<float> Invoke(Vector512<float> x) => Apply(new Lanes512(x)).V;
        private static L Apply<L>(L x) where L : struct, IFloatLanes<L> =>
            L.Splat(0.5f) * x * (L.Splat(1f) + VectorMath.Tanh(L.Splat(0.79788456080286536f) * (x + L.Splat(0.044715f) * x * x * x)));
    }
}
