using System.Numerics;
using System.Runtime.Intrinsics;
using OnDevice.Core;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Kernels.Elementwise;

/// <summary>Broadcasting binary arithmetic: float32 through SIMD ops, float64/float16/integers through scalar loops.
/// Integer arithmetic wraps; integer division truncates toward zero (as ONNX Runtime does).</summary>
internal static class ArithmeticKernels
{
    private static readonly DType[] FloatTypes = [DType.Float32, DType.Float64, DType.Float16];
    private static readonly DType[] PowBaseTypes = [DType.Float32, DType.Float64, DType.Float16, DType.Int32, DType.Int64];

    public static void Register(KernelRegistry r)
    {
        r.Add("Add", 7, Numeric.Types, _ => new BinaryKernel<AddOp, AddNum>());
        r.Add("Sub", 7, Numeric.Types, _ => new BinaryKernel<SubOp, SubNum>());
        r.Add("Mul", 7, Numeric.Types, _ => new BinaryKernel<MulOp, MulNum>());
        r.Add("Div", 7, Numeric.Types, _ => new BinaryKernel<DivOp, DivNum>());
        r.Add("Pow", 7, PowBaseTypes, _ => new PowKernel(), supports: c =>
            c.InputType(1) is { } t && !Numeric.Types.Contains(t) ? $"Pow exponent type {t.Name()} is not supported" : null);
        r.Add("Mod", 10, Numeric.Types, c => c.Node.GetInt("fmod", 0) != 0 ? new NumericBinaryKernel<FmodNum>() : new NumericBinaryKernel<ModNum>(),
            supports: c => c.Node.GetInt("fmod", 0) == 0 && c.InputType(0) is { } t && t.IsFloatingPoint() ? "Mod on floating-point inputs requires fmod=1" : null);
        r.Add("PRelu", 7, [DType.Float32, DType.Float64, DType.Float16, DType.Int32, DType.Int64, DType.UInt32, DType.UInt64], _ => new PReluKernel());
        r.Add("BitShift", 11, [DType.UInt8, DType.UInt16, DType.UInt32, DType.UInt64], c => new BitShiftKernel(c.Node.GetString("direction", "") == "LEFT"),
            supports: c => c.Node.GetString("direction", "") is "LEFT" or "RIGHT" ? null : "BitShift direction must be LEFT or RIGHT");
        r.Add("Max", 6, Numeric.Types, _ => new VariadicKernel<MaxOp, MaxNum>(mean: false));
        r.Add("Min", 6, Numeric.Types, _ => new VariadicKernel<MinOp, MinNum>(mean: false));
        r.Add("Sum", 6, FloatTypes, _ => new VariadicKernel<AddOp, AddNum>(mean: false));
        r.Add("Mean", 6, FloatTypes, _ => new VariadicKernel<AddOp, AddNum>(mean: true));
    }

    /// <summary>x + y.</summary>
    public readonly struct AddOp : IBinaryOp
    {
        public static float Invoke(float x, float y) => x + y;
        public static Vector128<float> Invoke(Vector128<float> x, Vector128<float> y) => x + y;
        public static Vector256<float> Invoke(Vector256<float> x, Vector256<float> y) => x + y;
        public static Vector512<float> Invoke(Vector512<float> x, Vector512<float> y) => x + y;
    }

    /// <summary>x − y.</summary>
    public readonly struct SubOp : IBinaryOp
    {
        public static float Invoke(float x, float y) => x - y;
        public static Vector128<float> Invoke(Vector128<float> x, Vector128<float> y) => x - y;
        public static Vector256<float> Invoke(Vector256<float> x, Vector256<float> y) => x - y;
        public static Vector512<float> Invoke(Vector512<float> x, Vector512<float> y) => x - y;
    }

    /// <summary>x · y.</summary>
    public readonly struct MulOp : IBinaryOp
    {
        public static float Invoke(float x, float y) => x * y;
        public static Vector128<float> Invoke(Vector128<float> x, Vector128<float> y) => x * y;
        public static Vector256<float> Invoke(Vector256<float> x, Vector256<float> y) => x * y;
        public static Vector512<float> Invoke(Vector512<float> x, Vector512<float> y) => x * y;
    }

    /// <summary>x / y.</summary>
    public readonly struct DivOp : IBinaryOp
    {
        public static float Invoke(float x, float y) => x / y;
        public static Vector128<float> Invoke(Vector128<float> x, Vector128<float> y) => x / y;
        public static Vector256<float> Invoke(Vector256<float> x, Vector256<float> y) => x / y;
        public static Vector512<float> Invoke(Vector512<float> x, Vector512<float> y) => x / y;
    }

    /// <summary>max(x, y); NaN in either operand gives NaN.</summary>
    public readonly struct MaxOp : IBinaryOp
    {
        public static float Invoke(float x, float y) => Apply(new Lanes1(x), new Lanes1(y)).V;
        public static Vector128<float> Invoke(Vector128<float> x, Vector128<float> y) => Apply(new Lanes128(x), new Lanes128(y)).V;
        public static Vector256<float> Invoke(Vector256<float> x, Vector256<float> y) => Apply(new Lanes256(x), new Lanes256(y)).V;
        public static Vector512<float> Invoke(Vector512<float> x, Vector512<float> y) => Apply(new Lanes512(x), new Lanes512(y)).V;
        private static L Apply<L>(L x, L y) where L : struct, IFloatLanes<L> => L.Select(L.IsNaN(y), y, L.Select(L.LessThan(x, y), y, x));
    }

    /// <summary>min(x, y); NaN in either operand gives NaN.</summary>
    public readonly struct MinOp : IBinaryOp
    {
        public static float Invoke(float x, float y) => Apply(new Lanes1(x), new Lanes1(y)).V;
        public static Vector128<float> Invoke(Vector128<float> x, Vector128<float> y) => Apply(new Lanes128(x), new Lanes128(y)).V;
        public static Vector256<float> Invoke(Vector256<float> x, Vector256<float> y) => Apply(new Lanes256(x), new Lanes256(y)).V;
        public static Vector512<float> Invoke(Vector512<float> x, Vector512<float> y) => Apply(new Lanes512(x), new Lanes512(y)).V;
        private static L Apply<L>(L x, L y) where L : struct, IFloatLanes<L> => L.Select(L.IsNaN(y), y, L.Select(L.LessThan(y, x), y, x));
    }

    /// <summary>x &lt; 0 ? x · slope : x.</summary>
    public readonly struct PReluOp : IBinaryOp
    {
        public static float Invoke(float x, float y) => Apply(new Lanes1(x), new Lanes1(y)).V;
        public static Vector128<float> Invoke(Vector128<float> x, Vector128<float> y) => Apply(new Lanes128(x), new Lanes128(y)).V;
        public static Vector256<float> Invoke(Vector256<float> x, Vector256<float> y) => Apply(new Lanes256(x), new Lanes256(y)).V;
        public static Vector512<float> Invoke(Vector512<float> x, Vector512<float> y) => Apply(new Lanes512(x), new Lanes512(y)).V;
        private static L Apply<L>(L x, L slope) where L : struct, IFloatLanes<L> => L.Select(L.LessThan(x, L.Splat(0f)), x * slope, x);
    }

    /// <summary>x^y (see <see cref="VectorMath.Pow{L}"/> for accuracy).</summary>
    public readonly struct PowOp : IBinaryOp
    {
        public static float Invoke(float x, float y) => VectorMath.Pow(new Lanes1(x), new Lanes1(y)).V;
        public static Vector128<float> Invoke(Vector128<float> x, Vector128<float> y) => VectorMath.Pow(new Lanes128(x), new Lanes128(y)).V;
        public static Vector256<float> Invoke(Vector256<float> x, Vector256<float> y) => VectorMath.Pow(new Lanes256(x), new Lanes256(y)).V;
        public static Vector512<float> Invoke(Vector512<float> x, Vector512<float> y) => VectorMath.Pow(new Lanes512(x), new Lanes512(y)).V;
    }

    /// <summary>x · x (Pow with the constant exponent 2).</summary>
    public readonly struct SquareOp : IUnaryOp
    {
        public static float Invoke(float x) => x * x;
        public static Vector128<float> Invoke(Vector128<float> x) => x * x;
        public static Vector256<float> Invoke(Vector256<float> x) => x * x;
        public static Vector512<float> Invoke(Vector512<float> x) => x * x;
    }

    /// <summary>a + b (integers wrap).</summary>
    public readonly struct AddNum : INumericBinary
    {
        public static T Invoke<T>(T a, T b) where T : unmanaged, INumber<T> => a + b;
    }

    /// <summary>a − b (integers wrap).</summary>
    public readonly struct SubNum : INumericBinary
    {
        public static T Invoke<T>(T a, T b) where T : unmanaged, INumber<T> => a - b;
    }

    /// <summary>a · b (integers wrap).</summary>
    public readonly struct MulNum : INumericBinary
    {
        public static T Invoke<T>(T a, T b) where T : unmanaged, INumber<T> => a * b;
    }

    /// <summary>a / b; integers truncate toward zero, MinValue / −1 wraps to MinValue, division by zero throws.</summary>
    public readonly struct DivNum : INumericBinary
    {
        public static T Invoke<T>(T a, T b) where T : unmanaged, INumber<T>
        {
            if (Numeric.IsFloat<T>()) return a / b;
            if (T.IsNegative(b) && b == T.Zero - T.One) return T.Zero - a;
            return a / b;
        }
    }

    /// <summary>Integer remainder with the sign of the divisor (Python's %, Mod fmod=0).</summary>
    public readonly struct ModNum : INumericBinary
    {
        public static T Invoke<T>(T a, T b) where T : unmanaged, INumber<T>
        {
            if (T.IsNegative(b) && b == T.Zero - T.One) return T.Zero;
            var r = a % b;
            return r != T.Zero && T.IsNegative(r) != T.IsNegative(b) ? r + b : r;
        }
    }

    /// <summary>Remainder with the sign of the dividend (C's fmod and integer %, Mod fmod=1).</summary>
    public readonly struct FmodNum : INumericBinary
    {
        public static T Invoke<T>(T a, T b) where T : unmanaged, INumber<T>
        {
            if (!Numeric.IsFloat<T>() && T.IsNegative(b) && b == T.Zero - T.One) return T.Zero;
            return a % b;
        }
    }

    /// <summary>max(a, b); NaN in either operand gives NaN (same rule as <see cref="MaxOp"/>).</summary>
    public readonly struct MaxNum : INumericBinary
    {
        public static T Invoke<T>(T a, T b) where T : unmanaged, INumber<T> => T.IsNaN(b) ? b : a < b ? b : a;
    }

    /// <summary>min(a, b); NaN in either operand gives NaN (same rule as <see cref="MinOp"/>).</summary>
    public readonly struct MinNum : INumericBinary
    {
        public static T Invoke<T>(T a, T b) where T : unmanaged, INumber<T> => T.IsNaN(b) ? b : b < a ? b : a;
    }

    /// <summary>a &lt; 0 ? a · slope : a.</summary>
    public readonly struct PReluNum : INumericBinary
    {
        public static T Invoke<T>(T a, T slope) where T : unmanaged, INumber<T> => a < T.Zero ? a * slope : a;
    }

    /// <summary>PRelu: the slope broadcasts to X's shape (unidirectionally).</summary>
    private sealed class PReluKernel : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var x = ctx.Required(0);
            var slope = ctx.Required(1);
            Binary.CheckSameType(ctx, x, slope);
            var plan = Binary.Plan(ctx, x.Shape, slope.Shape);
            if (!plan.OutShape.AsSpan().SequenceEqual(x.Shape))
                throw new InvalidOperationException($"node {ctx.Node.Label}: slope {TensorBuffer.Format(slope.Shape)} does not broadcast to X {TensorBuffer.Format(x.Shape)}");
            var y = ctx.Output(0, x.DType, x.Shape);
            if (x.DType == DType.Float32) BroadcastLoop.Float<PReluOp>(ctx, plan, 0, 1, x, slope, y);
            else Binary.NumericLoop<PReluNum>(ctx, plan, 0, 1, x, slope, y);
        }
    }

    /// <summary>BitShift on unsigned integers; shifting by the bit width or more gives 0.</summary>
    private sealed class BitShiftKernel(bool left) : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var a = ctx.Required(0);
            var b = ctx.Required(1);
            Binary.CheckSameType(ctx, a, b);
            var plan = Binary.Plan(ctx, a.Shape, b.Shape);
            var y = ctx.Output(0, a.DType, plan.OutShape);
            switch (a.DType)
            {
                case DType.UInt8: Run<byte>(plan, a, b, y); break;
                case DType.UInt16: Run<ushort>(plan, a, b, y); break;
                case DType.UInt32: Run<uint>(plan, a, b, y); break;
                case DType.UInt64: Run<ulong>(plan, a, b, y); break;
                default: throw new InvalidOperationException($"node {ctx.Node.Label}: BitShift on {a.DType.Name()} is not supported");
            }
        }

        private void Run<T>(Broadcast plan, TensorBuffer a, TensorBuffer b, TensorBuffer y) where T : unmanaged, IBinaryInteger<T>, IUnsignedNumber<T>
        {
            if (left) BroadcastLoop.Run<T, T, T, ShiftLeft<T>>(plan, 0, 1, a.Span<T>(), b.Span<T>(), y.Span<T>());
            else BroadcastLoop.Run<T, T, T, ShiftRight<T>>(plan, 0, 1, a.Span<T>(), b.Span<T>(), y.Span<T>());
        }
    }

    private readonly struct ShiftLeft<T> : IElementFunc<T, T, T> where T : unmanaged, IBinaryInteger<T>, IUnsignedNumber<T>
    {
        public static T Invoke(T a, T b) => b >= T.CreateTruncating(System.Runtime.CompilerServices.Unsafe.SizeOf<T>() * 8) ? T.Zero : a << int.CreateTruncating(b);
    }

    private readonly struct ShiftRight<T> : IElementFunc<T, T, T> where T : unmanaged, IBinaryInteger<T>, IUnsignedNumber<T>
    {
        public static T Invoke(T a, T b) => b >= T.CreateTruncating(System.Runtime.CompilerServices.Unsafe.SizeOf<T>() * 8) ? T.Zero : a >>> int.CreateTruncating(b);
    }

    /// <summary>
    /// Pow with the exponent of any numeric type (Pow-12 and later). float32 bases run the SIMD op with the exponent
    /// converted to float32; float64 and float16 bases use double-precision <see cref="Math.Pow"/>; integer bases use
    /// exact binary powering for integer exponents (wrapping; negative exponents give 0 except for bases ±1) and
    /// truncate <see cref="Math.Pow"/> toward zero, saturating, for floating-point exponents.
    /// </summary>
    private sealed class PowKernel : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var x = ctx.Required(0);
            var e = ctx.Required(1);
            var plan = Binary.Plan(ctx, x.Shape, e.Shape);
            var y = ctx.Output(0, x.DType, plan.OutShape);
            DType want = x.DType switch
            {
                DType.Float32 => DType.Float32,
                DType.Int32 or DType.Int64 when e.DType.IsInteger() => DType.Int64,
                _ => DType.Float64,
            };
            if (e.DType != want)
            {
                var converted = new TensorBuffer(want, e.Shape, ctx.Scratch((int)want.ByteCount(e.Length)));
                CastKernels.Convert(e, converted);
                e = converted;
            }
            if (x.DType == DType.Float32 && e.Length == 1 && e.Span<float>()[0] == 2f)
            {
                // x^2 (the usual variance term): PowOp gives exactly x·x here too, this just skips its general machinery.
                FloatUnary.Run(ctx, default(StaticUnary<SquareOp>), x, y);
                return;
            }
            switch (x.DType)
            {
                case DType.Float32: BroadcastLoop.Float<PowOp>(ctx, plan, 0, 1, x, e, y); break;
                case DType.Float64: BroadcastLoop.Run<double, double, double, PowDouble<double>>(plan, 0, 1, x.Span<double>(), e.Span<double>(), y.Span<double>()); break;
                case DType.Float16: BroadcastLoop.Run<Half, double, Half, PowDouble<Half>>(plan, 0, 1, x.Span<Half>(), e.Span<double>(), y.Span<Half>()); break;
                case DType.Int32 when want == DType.Int64: BroadcastLoop.Run<int, long, int, PowInteger<int>>(plan, 0, 1, x.Span<int>(), e.Span<long>(), y.Span<int>()); break;
                case DType.Int64 when want == DType.Int64: BroadcastLoop.Run<long, long, long, PowInteger<long>>(plan, 0, 1, x.Span<long>(), e.Span<long>(), y.Span<long>()); break;
                case DType.Int32: BroadcastLoop.Run<int, double, int, PowDouble<int>>(plan, 0, 1, x.Span<int>(), e.Span<double>(), y.Span<int>()); break;
                case DType.Int64: BroadcastLoop.Run<long, double, long, PowDouble<long>>(plan, 0, 1, x.Span<long>(), e.Span<double>(), y.Span<long>()); break;
                default: throw new InvalidOperationException($"node {ctx.Node.Label}: Pow base type {x.DType.Name()} is not supported");
            }
        }
    }

    /// <summary>T(pow(double(a), b)): rounding for floats, truncation toward zero with saturation for integers.</summary>
    private readonly struct PowDouble<T> : IElementFunc<T, double, T> where T : unmanaged, INumber<T>
    {
        public static T Invoke(T a, double b) => T.CreateSaturating(Math.Pow(double.CreateTruncating(a), b));
    }

    /// <summary>a^b for integers by binary powering (wrapping).</summary>
    private readonly struct PowInteger<T> : IElementFunc<T, long, T> where T : unmanaged, INumber<T>
    {
        public static T Invoke(T a, long b)
        {
            if (b < 0)
            {
                if (a == T.One) return T.One;
                if (a == T.Zero - T.One) return (b & 1) == 0 ? T.One : a;
                return T.Zero;
            }
            T result = T.One, sq = a;
            while (b != 0)
            {
                if ((b & 1) != 0) result *= sq;
                sq *= sq;
                b >>= 1;
            }
            return result;
        }
    }
}
