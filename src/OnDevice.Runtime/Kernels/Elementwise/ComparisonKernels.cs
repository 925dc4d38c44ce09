using System.Numerics;
using OnDevice.Core;

namespace OnDevice.Runtime.Kernels.Elementwise;

/// <summary>Broadcasting comparisons and floating-point class tests; the output is bool (one byte, 0 or 1).
/// Comparisons involving NaN are false (so NaN == NaN is false).</summary>
internal static class ComparisonKernels
{
    private static readonly DType[] EqualTypes = [.. Numeric.Types, DType.Bool];
    private static readonly DType[] FloatTypes = [DType.Float32, DType.Float64, DType.Float16, DType.BFloat16];

    public static void Register(KernelRegistry r)
    {
        r.Add("Equal", 7, EqualTypes, _ => new CompareKernel<EqualCmp>());
        r.Add("Less", 7, Numeric.Types, _ => new CompareKernel<LessCmp>());
        r.Add("Greater", 7, Numeric.Types, _ => new CompareKernel<GreaterCmp>());
        r.Add("LessOrEqual", 12, Numeric.Types, _ => new CompareKernel<LessOrEqualCmp>());
        r.Add("GreaterOrEqual", 12, Numeric.Types, _ => new CompareKernel<GreaterOrEqualCmp>());
        r.Add("IsNaN", 9, FloatTypes, _ => new FloatClassKernel(nan: true, positive: false, negative: false));
        r.Add("IsInf", 10, FloatTypes, c => new FloatClassKernel(nan: false, positive: c.Node.GetInt("detect_positive", 1) != 0, negative: c.Node.GetInt("detect_negative", 1) != 0));
    }

    /// <summary>a == b.</summary>
    public readonly struct EqualCmp : INumericCompare
    {
        public static bool Invoke<T>(T a, T b) where T : unmanaged, INumber<T> => a == b;
    }

    /// <summary>a &lt; b.</summary>
    public readonly struct LessCmp : INumericCompare
    {
        public static bool Invoke<T>(T a, T b) where T : unmanaged, INumber<T> => a < b;
    }

    /// <summary>a &gt; b.</summary>
    public readonly struct GreaterCmp : INumericCompare
    {
        public static bool Invoke<T>(T a, T b) where T : unmanaged, INumber<T> => a > b;
    }

    /// <summary>a &lt;= b.</summary>
    public readonly struct LessOrEqualCmp : INumericCompare
    {
        public static bool Invoke<T>(T a, T b) where T : unmanaged, INumber<T> => a <= b;
    }

    /// <summary>a &gt;= b.</summary>
    public readonly struct GreaterOrEqualCmp : INumericCompare
    {
        public static bool Invoke<T>(T a, T b) where T : unmanaged, INumber<T> => a >= b;
    }

    /// <summary>Equality of bools stored as bytes (any nonzero byte is true).</summary>
    private readonly struct BoolEqual : IElementFunc<byte, byte, byte>
    {
        public static byte Invoke(byte a, byte b) => (a != 0) == (b != 0) ? (byte)1 : (byte)0;
    }

    /// <summary>A broadcasting comparison of two tensors of the same numeric type (or bool for Equal).</summary>
    private sealed class CompareKernel<TCmp> : IKernel where TCmp : INumericCompare
    {
        public void Execute(KernelContext ctx)
        {
            var a = ctx.Required(0);
            var b = ctx.Required(1);
            Binary.CheckSameType(ctx, a, b);
            var plan = Binary.Plan(ctx, a.Shape, b.Shape);
            var y = ctx.Output(0, DType.Bool, plan.OutShape);
            if (a.DType == DType.Bool)
            {
                if (typeof(TCmp) != typeof(EqualCmp)) throw new InvalidOperationException($"node {ctx.Node.Label}: bool inputs are only compared for equality");
                BroadcastLoop.Run<byte, byte, byte, BoolEqual>(plan, 0, 1, a.Span<byte>(), b.Span<byte>(), y.Span<byte>());
            }
            else Numeric.Dispatch(a.DType, new Loop(plan, a, b, y));
        }

        private readonly struct Loop(Broadcast plan, TensorBuffer a, TensorBuffer b, TensorBuffer y) : INumericAction
        {
            public void Run<T>() where T : unmanaged, INumber<T> =>
                BroadcastLoop.Run<T, T, byte, CompareFunc<TCmp, T>>(plan, 0, 1, a.Span<T>(), b.Span<T>(), y.Span<byte>());
        }
    }

    /// <summary>IsNaN, or IsInf with its detect_positive / detect_negative attributes.</summary>
    private sealed class FloatClassKernel(bool nan, bool positive, bool negative) : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var x = ctx.Required(0);
            var y = ctx.Output(0, DType.Bool, x.Shape).Span<byte>();
            switch (x.DType)
            {
                case DType.Float32: Classify(x.Span<float>(), y); break;
                case DType.Float64: Classify(x.Span<double>(), y); break;
                case DType.Float16: Classify(x.Span<Half>(), y); break;
                case DType.BFloat16:
                    var bits = x.Span<ushort>();
                    for (int i = 0; i < bits.Length; i++) y[i] = Test(BFloat16.ToSingle(bits[i]));
                    break;
                default: throw new InvalidOperationException($"node {ctx.Node.Label}: input is {x.DType.Name()}, not floating point");
            }
        }

        private void Classify<T>(ReadOnlySpan<T> x, Span<byte> y) where T : unmanaged, IFloatingPointIeee754<T>
        {
            for (int i = 0; i < x.Length; i++) y[i] = Test(x[i]);
        }

        private byte Test<T>(T v) where T : unmanaged, IFloatingPointIeee754<T> =>
            (nan ? T.IsNaN(v) : (positive && T.IsPositiveInfinity(v)) || (negative && T.IsNegativeInfinity(v))) ? (byte)1 : (byte)0;
    }
}
