using System.Numerics;
using System.Runtime.Intrinsics;
using OnDevice.Core;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Kernels.Elementwise;

// Shared machinery of the element-wise family: the generic numeric ops used for non-float32 types, the dtype → T
// dispatch, the broadcasting loops, and the kernel classes the family files register.

/// <summary>An element function over any numeric type (scalar loops; float32 goes through SIMD ops instead).</summary>
internal interface INumericUnary
{
    static abstract T Invoke<T>(T x) where T : unmanaged, INumber<T>;
}

/// <summary>A binary element function over any numeric type.</summary>
internal interface INumericBinary
{
    static abstract T Invoke<T>(T a, T b) where T : unmanaged, INumber<T>;
}

/// <summary>A comparison over any numeric type.</summary>
internal interface INumericCompare
{
    static abstract bool Invoke<T>(T a, T b) where T : unmanaged, INumber<T>;
}

/// <summary>A binary element function with fixed operand and result types, for the broadcasting loop.</summary>
internal interface IElementFunc<TA, TB, TR>
{
    static abstract TR Invoke(TA a, TB b);
}

/// <summary>Something to run for one numeric element type (see <see cref="Numeric.Dispatch"/>).</summary>
internal interface INumericAction
{
    void Run<T>() where T : unmanaged, INumber<T>;
}

/// <summary>The numeric element types the generic loops run on, and the dtype → T dispatch.</summary>
internal static class Numeric
{
    /// <summary>Every numeric type with a .NET arithmetic type (bfloat16 has none).</summary>
    public static readonly DType[] Types = [DType.Float32, DType.Float64, DType.Float16, DType.Int8, DType.UInt8, DType.Int16, DType.UInt16, DType.Int32, DType.UInt32, DType.Int64, DType.UInt64];

    /// <summary>Signed integers and the floating types (for ops such as Neg).</summary>
    public static readonly DType[] Signed = [DType.Float32, DType.Float64, DType.Float16, DType.Int8, DType.Int16, DType.Int32, DType.Int64];

    /// <summary>Runs <paramref name="action"/> with T the .NET type of <paramref name="t"/>.</summary>
    public static void Dispatch<TAction>(DType t, TAction action) where TAction : INumericAction
    {
        switch (t)
        {
            case DType.Float32: action.Run<float>(); break;
            case DType.Float64: action.Run<double>(); break;
            case DType.Float16: action.Run<Half>(); break;
            case DType.Int8: action.Run<sbyte>(); break;
            case DType.UInt8: action.Run<byte>(); break;
            case DType.Int16: action.Run<short>(); break;
            case DType.UInt16: action.Run<ushort>(); break;
            case DType.Int32: action.Run<int>(); break;
            case DType.UInt32: action.Run<uint>(); break;
            case DType.Int64: action.Run<long>(); break;
            case DType.UInt64: action.Run<ulong>(); break;
            default: throw new NotSupportedException($"element type {t.Name()} is not supported here");
        }
    }

    /// <summary>True for the floating-point .NET types (folded by the JIT).</summary>
    public static bool IsFloat<T>() => typeof(T) == typeof(float) || typeof(T) == typeof(double) || typeof(T) == typeof(Half);

    /// <summary>The smallest and largest finite value of <typeparamref name="T"/>.</summary>
    public static (T Min, T Max) Limits<T>() where T : unmanaged, INumber<T>
    {
        if (typeof(T) == typeof(float)) return (T.CreateTruncating(float.MinValue), T.CreateTruncating(float.MaxValue));
        if (typeof(T) == typeof(double)) return (T.CreateTruncating(double.MinValue), T.CreateTruncating(double.MaxValue));
        if (typeof(T) == typeof(Half)) return (T.CreateTruncating(Half.MinValue), T.CreateTruncating(Half.MaxValue));
        if (typeof(T) == typeof(sbyte)) return (T.CreateTruncating(sbyte.MinValue), T.CreateTruncating(sbyte.MaxValue));
        if (typeof(T) == typeof(byte)) return (T.CreateTruncating(byte.MinValue), T.CreateTruncating(byte.MaxValue));
        if (typeof(T) == typeof(short)) return (T.CreateTruncating(short.MinValue), T.CreateTruncating(short.MaxValue));
        if (typeof(T) == typeof(ushort)) return (T.CreateTruncating(ushort.MinValue), T.CreateTruncating(ushort.MaxValue));
        if (typeof(T) == typeof(int)) return (T.CreateTruncating(int.MinValue), T.CreateTruncating(int.MaxValue));
        if (typeof(T) == typeof(uint)) return (T.CreateTruncating(uint.MinValue), T.CreateTruncating(uint.MaxValue));
        if (typeof(T) == typeof(long)) return (T.CreateTruncating(long.MinValue), T.CreateTruncating(long.MaxValue));
        if (typeof(T) == typeof(ulong)) return (T.CreateTruncating(ulong.MinValue), T.CreateTruncating(ulong.MaxValue));
        throw new NotSupportedException(typeof(T).Name);
    }
}

/// <summary>Adapts an <see cref="INumericBinary"/> to the broadcasting loop.</summary>
internal readonly struct NumericFunc<TOp, T> : IElementFunc<T, T, T> where TOp : INumericBinary where T : unmanaged, INumber<T>
{
    public static T Invoke(T a, T b) => TOp.Invoke(a, b);
}

/// <summary>Adapts an <see cref="INumericCompare"/> to the broadcasting loop (bool out, one byte 0/1).</summary>
internal readonly struct CompareFunc<TOp, T> : IElementFunc<T, T, byte> where TOp : INumericCompare where T : unmanaged, INumber<T>
{
    public static byte Invoke(T a, T b) => TOp.Invoke(a, b) ? (byte)1 : (byte)0;
}

/// <summary>Adapts a static float op to <see cref="IParameterizedUnaryOp"/> so one set of kernels serves both kinds.</summary>
internal readonly struct StaticUnary<TOp> : IParameterizedUnaryOp where TOp : IUnaryOp
{
    public float Invoke(float x) => TOp.Invoke(x);
    public Vector128<float> Invoke(Vector128<float> x) => TOp.Invoke(x);
    public Vector256<float> Invoke(Vector256<float> x) => TOp.Invoke(x);
    public Vector512<float> Invoke(Vector512<float> x) => TOp.Invoke(x);
}

/// <summary>Loops over a <see cref="Broadcast"/> plan: scalar for any element types, SIMD for float32 ops.</summary>
internal static class BroadcastLoop
{
    /// <summary>Element counts below which a float32 loop stays on one thread.</summary>
    public const int ParallelMinElements = 1 << 15;

    /// <summary>y = f(a, b) over the plan, where a and b are plan operands <paramref name="opA"/> and <paramref name="opB"/>.
    /// <paramref name="y"/> may alias an operand whose shape is the output shape.</summary>
    public static void Run<TA, TB, TR, TF>(Broadcast plan, int opA, int opB, ReadOnlySpan<TA> a, ReadOnlySpan<TB> b, Span<TR> y)
        where TF : IElementFunc<TA, TB, TR>
    {
        int inner = plan.Inner;
        bool ca = plan.InnerContiguous[opA], cb = plan.InnerContiguous[opB];
        for (int blk = 0, blocks = plan.Blocks; blk < blocks; blk++)
        {
            var dst = y.Slice(blk * inner, inner);
            int oa = plan.Offset(opA, blk), ob = plan.Offset(opB, blk);
            if (ca && cb)
            {
                var sa = a.Slice(oa, inner);
                var sb = b.Slice(ob, inner);
                for (int i = 0; i < dst.Length; i++) dst[i] = TF.Invoke(sa[i], sb[i]);
            }
            else if (ca)
            {
                var sa = a.Slice(oa, inner);
                var vb = b[ob];
                for (int i = 0; i < dst.Length; i++) dst[i] = TF.Invoke(sa[i], vb);
            }
            else if (cb)
            {
                var va = a[oa];
                var sb = b.Slice(ob, inner);
                for (int i = 0; i < dst.Length; i++) dst[i] = TF.Invoke(va, sb[i]);
            }
            else dst.Fill(TF.Invoke(a[oa], b[ob]));
        }
    }

    /// <summary>The float32 SIMD form of <see cref="Run"/> over output elements [begin, end).</summary>
    public static void Float<TOp>(Broadcast plan, int opA, int opB, ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y, int begin, int end)
        where TOp : IBinaryOp
    {
        int inner = plan.Inner;
        bool ca = plan.InnerContiguous[opA], cb = plan.InnerContiguous[opB];
        for (int i = begin; i < end;)
        {
            int blk = i / inner, off = i - blk * inner, len = Math.Min(inner - off, end - i);
            int oa = plan.Offset(opA, blk) + (ca ? off : 0), ob = plan.Offset(opB, blk) + (cb ? off : 0);
            var dst = y.Slice(i, len);
            if (ca && cb) ElementwiseDriver.Binary<TOp>(a.Slice(oa, len), b.Slice(ob, len), dst);
            else if (ca) ElementwiseDriver.BinaryScalarRight<TOp>(a.Slice(oa, len), b[ob], dst);
            else if (cb) ElementwiseDriver.BinaryScalarLeft<TOp>(a[oa], b.Slice(ob, len), dst);
            else dst.Fill(TOp.Invoke(a[oa], b[ob]));
            i += len;
        }
    }

    /// <summary>Runs the float32 SIMD loop over the whole output, split across the run's threads when large.</summary>
    public static void Float<TOp>(KernelContext ctx, Broadcast plan, int opA, int opB, TensorBuffer a, TensorBuffer b, TensorBuffer y)
        where TOp : IBinaryOp
    {
        int n = plan.OutLength;
        if (ctx.Threads == 1 || n < 2 * ParallelMinElements)
            Float<TOp>(plan, opA, opB, a.Span<float>(), b.Span<float>(), y.Span<float>(), 0, n);
        else
            ctx.ParallelFor(n, (s, e) => Float<TOp>(plan, opA, opB, a.Span<float>(), b.Span<float>(), y.Span<float>(), s, e), ParallelMinElements);
    }
}

/// <summary>Float element-wise unary loops: float32 through the SIMD driver (in parallel when large), float16 and
/// bfloat16 widened to float32 in small tiles.</summary>
internal static class FloatUnary
{
    /// <summary>Floating types the unary float kernels accept.</summary>
    public static readonly DType[] Types = [DType.Float32, DType.Float16, DType.BFloat16];

    private const int TileElements = 256;

    /// <summary>y = op(x) for a float32, float16 or bfloat16 tensor.</summary>
    public static void Run<TOp>(KernelContext ctx, TOp op, TensorBuffer x, TensorBuffer y) where TOp : struct, IParameterizedUnaryOp
    {
        int n = x.Length;
        switch (x.DType)
        {
            case DType.Float32:
                if (ctx.Threads == 1 || n < 2 * BroadcastLoop.ParallelMinElements)
                    ElementwiseDriver.Unary(op, x.Span<float>(), y.Span<float>());
                else
                    ctx.ParallelFor(n, (s, e) => ElementwiseDriver.Unary(op, x.Span<float>()[s..e], y.Span<float>()[s..e]), BroadcastLoop.ParallelMinElements);
                break;
            case DType.Float16 or DType.BFloat16:
                Tiled(op, x.DType == DType.BFloat16, x.Span<ushort>(), y.Span<ushort>());
                break;
            default:
                throw new InvalidOperationException($"node {ctx.Node.Label}: input is {x.DType.Name()}; this kernel computes float32, float16 and bfloat16");
        }
    }

    private static void Tiled<TOp>(TOp op, bool bf16, ReadOnlySpan<ushort> x, Span<ushort> y) where TOp : struct, IParameterizedUnaryOp
    {
        Span<float> tile = stackalloc float[TileElements];
        for (int i = 0; i < x.Length; i += TileElements)
        {
            int len = Math.Min(TileElements, x.Length - i);
            var t = tile[..len];
            Widen(bf16, x.Slice(i, len), t);
            ElementwiseDriver.Unary(op, t, t);
            Narrow(bf16, t, y.Slice(i, len));
        }
    }

    /// <summary>float16 or bfloat16 bits to float32 (exact).</summary>
    public static void Widen(bool bf16, ReadOnlySpan<ushort> x, Span<float> y)
    {
        if (bf16) for (int i = 0; i < x.Length; i++) y[i] = BFloat16.ToSingle(x[i]);
        else for (int i = 0; i < x.Length; i++) y[i] = (float)BitConverter.UInt16BitsToHalf(x[i]);
    }

    /// <summary>float32 to float16 or bfloat16 bits (round to nearest even).</summary>
    public static void Narrow(bool bf16, ReadOnlySpan<float> x, Span<ushort> y)
    {
        if (bf16) for (int i = 0; i < x.Length; i++) y[i] = BFloat16.FromSingle(x[i]);
        else for (int i = 0; i < x.Length; i++) y[i] = BitConverter.HalfToUInt16Bits((Half)x[i]);
    }
}

/// <summary>A float unary op (float32 SIMD; float16/bfloat16 via float32) whose parameters were read at build time.</summary>
internal sealed class FloatUnaryKernel<TOp>(TOp op) : IKernel where TOp : struct, IParameterizedUnaryOp
{
    public void Execute(KernelContext ctx)
    {
        var x = ctx.Required(0);
        FloatUnary.Run(ctx, op, x, ctx.Output(0, x.DType, x.Shape));
    }
}

/// <summary>A parameterless float unary op (float32 SIMD; float16/bfloat16 via float32).</summary>
internal sealed class UnaryKernel<TOp> : IKernel where TOp : IUnaryOp
{
    public void Execute(KernelContext ctx)
    {
        var x = ctx.Required(0);
        FloatUnary.Run(ctx, default(StaticUnary<TOp>), x, ctx.Output(0, x.DType, x.Shape));
    }
}

/// <summary>A unary op defined for floats (SIMD <typeparamref name="TOp"/>) and for the other numeric types
/// (scalar <typeparamref name="TNum"/>, also used for float64).</summary>
internal sealed class UnaryKernel<TOp, TNum> : IKernel where TOp : IUnaryOp where TNum : INumericUnary
{
    public void Execute(KernelContext ctx)
    {
        var x = ctx.Required(0);
        var y = ctx.Output(0, x.DType, x.Shape);
        if (x.DType is DType.Float32 or DType.Float16 or DType.BFloat16) FloatUnary.Run(ctx, default(StaticUnary<TOp>), x, y);
        else Numeric.Dispatch(x.DType, new Loop(x, y));
    }

    private readonly struct Loop(TensorBuffer x, TensorBuffer y) : INumericAction
    {
        public void Run<T>() where T : unmanaged, INumber<T>
        {
            var xs = x.Span<T>();
            var ys = y.Span<T>();
            for (int i = 0; i < xs.Length; i++) ys[i] = TNum.Invoke(xs[i]);
        }
    }
}

/// <summary>A broadcasting binary op: float32 through SIMD <typeparamref name="TOp"/>, the other numeric types through
/// scalar <typeparamref name="TNum"/>. Both inputs must have the same element type; the output has it too.</summary>
internal sealed class BinaryKernel<TOp, TNum> : IKernel where TOp : IBinaryOp where TNum : INumericBinary
{
    public void Execute(KernelContext ctx)
    {
        var a = ctx.Required(0);
        var b = ctx.Required(1);
        Binary.CheckSameType(ctx, a, b);
        var plan = Binary.Plan(ctx, a.Shape, b.Shape);
        var y = ctx.Output(0, a.DType, plan.OutShape);
        if (a.DType == DType.Float32) BroadcastLoop.Float<TOp>(ctx, plan, 0, 1, a, b, y);
        else Binary.NumericLoop<TNum>(ctx, plan, 0, 1, a, b, y);
    }
}

/// <summary>A broadcasting float32-only binary op (kept for kernels that need no other types).</summary>
internal sealed class BinaryKernel<TOp> : IKernel where TOp : IBinaryOp
{
    public void Execute(KernelContext ctx)
    {
        var a = ctx.Required(0);
        var b = ctx.Required(1);
        if (a.DType != DType.Float32 || b.DType != DType.Float32)
            throw new InvalidOperationException($"node {ctx.Node.Label}: operands are {a.DType.Name()} and {b.DType.Name()}; this kernel computes float32");
        var plan = Binary.Plan(ctx, a.Shape, b.Shape);
        BroadcastLoop.Float<TOp>(ctx, plan, 0, 1, a, b, ctx.Output(0, DType.Float32, plan.OutShape));
    }
}

/// <summary>A broadcasting binary op computed by scalar loops for every numeric type.</summary>
internal sealed class NumericBinaryKernel<TNum> : IKernel where TNum : INumericBinary
{
    public void Execute(KernelContext ctx)
    {
        var a = ctx.Required(0);
        var b = ctx.Required(1);
        Binary.CheckSameType(ctx, a, b);
        var plan = Binary.Plan(ctx, a.Shape, b.Shape);
        Binary.NumericLoop<TNum>(ctx, plan, 0, 1, a, b, ctx.Output(0, a.DType, plan.OutShape));
    }
}

/// <summary>Helpers shared by the binary kernels.</summary>
internal static class Binary
{
    /// <summary>Throws unless both operands have the same element type.</summary>
    public static void CheckSameType(KernelContext ctx, TensorBuffer a, TensorBuffer b)
    {
        if (a.DType != b.DType)
            throw new InvalidOperationException($"node {ctx.Node.Label}: operands are {a.DType.Name()} and {b.DType.Name()}; they must have the same type");
    }

    /// <summary>The broadcast plan, with the node named in the error when the shapes are incompatible.</summary>
    public static Broadcast Plan(KernelContext ctx, params int[][] shapes)
    {
        try { return new Broadcast(shapes); }
        catch (InvalidOperationException e) { throw new InvalidOperationException($"node {ctx.Node.Label}: {e.Message}"); }
    }

    /// <summary>Scalar broadcasting loop of <typeparamref name="TNum"/> for a's element type (integer division by zero is reported with the node).</summary>
    public static void NumericLoop<TNum>(KernelContext ctx, Broadcast plan, int opA, int opB, TensorBuffer a, TensorBuffer b, TensorBuffer y) where TNum : INumericBinary
    {
        try { Numeric.Dispatch(a.DType, new Loop<TNum>(plan, opA, opB, a, b, y)); }
        catch (DivideByZeroException) { throw new InvalidOperationException($"node {ctx.Node.Label}: integer division by zero"); }
    }

    private readonly struct Loop<TNum>(Broadcast plan, int opA, int opB, TensorBuffer a, TensorBuffer b, TensorBuffer y) : INumericAction where TNum : INumericBinary
    {
        public void Run<T>() where T : unmanaged, INumber<T> =>
            BroadcastLoop.Run<T, T, T, NumericFunc<TNum, T>>(plan, opA, opB, a.Span<T>(), b.Span<T>(), y.Span<T>());
    }
}

/// <summary>Variadic Max/Min/Sum/Mean: the inputs folded pairwise into the output with multidirectional broadcasting.</summary>
internal sealed class VariadicKernel<TOp, TNum>(bool mean) : IKernel where TOp : IBinaryOp where TNum : INumericBinary
{
    public void Execute(KernelContext ctx)
    {
        var inputs = new List<TensorBuffer>();
        for (int i = 0; i < ctx.InputCount; i++)
            if (ctx.Input(i) is { } t) inputs.Add(t);
        if (inputs.Count == 0) throw new InvalidOperationException($"node {ctx.Node.Label}: needs at least one input");
        foreach (var t in inputs) Binary.CheckSameType(ctx, inputs[0], t);
        var dtype = inputs[0].DType;
        var outShape = Binary.Plan(ctx, inputs.Select(t => t.Shape).ToArray()).OutShape;
        var y = ctx.Output(0, dtype, outShape);
        if (inputs.Count == 1)
        {
            inputs[0].Memory.Span.CopyTo(y.Memory.Span);
        }
        else
        {
            Fold(ctx, new Broadcast(outShape, inputs[0].Shape, inputs[1].Shape), 1, 2, inputs[0], inputs[1], y);
            for (int k = 2; k < inputs.Count; k++)
                Fold(ctx, new Broadcast(outShape, inputs[k].Shape), 0, 1, y, inputs[k], y);
        }
        if (mean && inputs.Count > 1) Numeric.Dispatch(dtype, new DivideBy(y, inputs.Count));
    }

    private static void Fold(KernelContext ctx, Broadcast plan, int opA, int opB, TensorBuffer a, TensorBuffer b, TensorBuffer y)
    {
        if (a.DType == DType.Float32) BroadcastLoop.Float<TOp>(ctx, plan, opA, opB, a, b, y);
        else Binary.NumericLoop<TNum>(ctx, plan, opA, opB, a, b, y);
    }

    private readonly struct DivideBy(TensorBuffer y, int count) : INumericAction
    {
        public void Run<T>() where T : unmanaged, INumber<T>
        {
            var ys = y.Span<T>();
            if (typeof(T) == typeof(float))
            {
                var f = System.Runtime.InteropServices.MemoryMarshal.Cast<T, float>(ys);
                ElementwiseDriver.BinaryScalarRight<ArithmeticKernels.DivOp>(f, count, f);
                return;
            }
            var n = T.CreateTruncating(count);
            for (int i = 0; i < ys.Length; i++) ys[i] /= n;
        }
    }
}
