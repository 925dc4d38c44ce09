using System.Numerics;
using OnDevice.Core;
using OnDevice.Runtime.Kernels.Tensors;
using OnDevice.Runtime.Reference;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Kernels.Reduce;

/// <summary>
/// Reduce{Sum, Mean, Max, Min, Prod, L1, L2, LogSum, LogSumExp, SumSquare}: axes as attribute (ReduceSum before
/// opset 13, the others before 18) or input, keepdims, noop_with_empty_axes. float32 runs on the SIMD reduction
/// driver; float64 and the integer types on a generic scalar loop.
/// </summary>
internal static class ReduceKernels
{
    private static readonly DType[] Floats = [DType.Float32, DType.Float64];
    private static readonly DType[] Numeric = [DType.Float32, DType.Float64, DType.Int32, DType.Int64];
    private static readonly DType[] MinMax = [DType.Float32, DType.Float64, DType.Int32, DType.Int64, DType.Int8, DType.UInt8];

    public static void Register(KernelRegistry r)
    {
        Add(r, "ReduceSum", ReduceOp.Sum, Numeric, axesInputSince: 13);
        Add(r, "ReduceMean", ReduceOp.Mean, Numeric, axesInputSince: 18);
        Add(r, "ReduceMax", ReduceOp.Max, MinMax, axesInputSince: 18);
        Add(r, "ReduceMin", ReduceOp.Min, MinMax, axesInputSince: 18);
        Add(r, "ReduceProd", ReduceOp.Prod, Numeric, axesInputSince: 18);
        Add(r, "ReduceL1", ReduceOp.L1, Numeric, axesInputSince: 18);
        Add(r, "ReduceL2", ReduceOp.L2, Numeric, axesInputSince: 18);
        Add(r, "ReduceSumSquare", ReduceOp.SumSquare, Numeric, axesInputSince: 18);
        Add(r, "ReduceLogSum", ReduceOp.LogSum, Floats, axesInputSince: 18);
        Add(r, "ReduceLogSumExp", ReduceOp.LogSumExp, Floats, axesInputSince: 18);
    }

    private static void Add(KernelRegistry r, string name, ReduceOp op, DType[] types, int axesInputSince)
    {
        r.Add(name, 1, types, ctx => new ReduceKernel(op, ctx.Node.GetInts("axes"), ctx.Node.GetInt("keepdims", 1) != 0, false, false), until: axesInputSince - 1);
        r.Add(name, axesInputSince, types, ctx => new ReduceKernel(op, null, ctx.Node.GetInt("keepdims", 1) != 0, ctx.Node.GetInt("noop_with_empty_axes", 0) != 0, true));
    }

    /// <summary>Plans the reduced axes and output shape; null axes or none means all axes, or — with
    /// <paramref name="noop"/> — none, so each element is folded alone (Sum gives x, SumSquare x², L2 |x|, as the
    /// ONNX reference and ONNX Runtime do).</summary>
    public static (bool[] Reduce, int[] OutShape) Axes(int[] shape, long[]? axes, bool keepDims, bool noop)
    {
        int rank = shape.Length;
        var reduce = new bool[rank];
        if (axes is null || axes.Length == 0)
        {
            if (noop) return (reduce, shape);
            Array.Fill(reduce, true);
        }
        else foreach (var a in TensorUtil.Axes(axes, rank)) reduce[a] = true;
        var outShape = new List<int>(rank);
        for (int d = 0; d < rank; d++)
            if (!reduce[d]) outShape.Add(shape[d]);
            else if (keepDims) outShape.Add(1);
        return (reduce, [.. outShape]);
    }

    private sealed class ReduceKernel(ReduceOp op, long[]? axesAttr, bool keepDims, bool noop, bool axesFromInput) : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var x = ctx.Required(0);
            var axes = axesFromInput ? (ctx.Input(1) is { } a ? TensorUtil.Ints(a) : null) : axesAttr;
            var (reduce, outShape) = Axes(x.Shape, axes, keepDims, noop);
            var y = ctx.Output(0, x.DType, outShape);
            if (y.Length == 0) return;
            var layout = ReduceLayout.Of(x.Shape, reduce);
            var src = layout.Arrange(x, ctx);
            switch (x.DType)
            {
                case DType.Float32: Float32(ctx, op, src, y, layout); break;
                case DType.Float64: Generic<double>(op, src, y, layout); break;
                case DType.Int32: Generic<int>(op, src, y, layout); break;
                case DType.Int64: Generic<long>(op, src, y, layout); break;
                case DType.Int8: Generic<sbyte>(op, src, y, layout); break;
                case DType.UInt8: Generic<byte>(op, src, y, layout); break;
                default: throw new InvalidOperationException($"{ctx.Node.OpType} of {x.DType.Name()} is not supported");
            }
        }
    }

    private static void Float32(KernelContext ctx, ReduceOp op, ReadOnlyMemory<byte> srcMem, TensorBuffer y, ReduceLayout l)
    {
        int outer = l.Outer, n = l.Reduced, inner = l.Inner;
        if (n == 0)
        {
            y.Span<float>().Fill((float)ReduceReference.EmptyValue(op));
            return;
        }
        if (inner == 1)
        {
            ctx.ParallelFor(outer, (o0, o1) =>
            {
                var src = TensorUtil.As<float>(srcMem.Span);
                var dst = y.Span<float>();
                for (int o = o0; o < o1; o++) dst[o] = Row(op, src.Slice(o * n, n));
            }, minChunk: Math.Max(1, 16384 / n));
            return;
        }
        ctx.ParallelFor(outer, (o0, o1) =>
        {
            var src = TensorUtil.As<float>(srcMem.Span);
            var dst = y.Span<float>();
            float[]? sum = null, tmp = null;
            for (int o = o0; o < o1; o++)
            {
                var block = src.Slice(o * n * inner, n * inner);
                var acc = dst.Slice(o * inner, inner);
                switch (op)
                {
                    case ReduceOp.Sum or ReduceOp.Mean or ReduceOp.LogSum: Columns<ReductionOps.SumOp>(block, n, acc); break;
                    case ReduceOp.SumSquare or ReduceOp.L2: Columns<ReductionOps.SumSquaresOp>(block, n, acc); break;
                    case ReduceOp.L1: Columns<ReductionOps.SumAbsOp>(block, n, acc); break;
                    case ReduceOp.Prod: Columns<ReductionOps.ProductOp>(block, n, acc); break;
                    case ReduceOp.Max or ReduceOp.LogSumExp: Columns<ReductionOps.MaxOp>(block, n, acc); break;
                    case ReduceOp.Min: Columns<ReductionOps.MinOp>(block, n, acc); break;
                }
                switch (op)
                {
                    case ReduceOp.Mean: ReductionDriver.Divide(acc, n, acc); break;
                    case ReduceOp.L2: for (int i = 0; i < inner; i++) acc[i] = MathF.Sqrt(acc[i]); break;
                    case ReduceOp.LogSum: for (int i = 0; i < inner; i++) acc[i] = MathF.Log(acc[i]); break;
                    case ReduceOp.LogSumExp:
                        sum ??= new float[inner];
                        tmp ??= new float[inner];
                        Array.Clear(sum);
                        for (int r = 0; r < n; r++)
                        {
                            ElementwiseDriver.Binary<ReductionOps.ExpSubOp>(block.Slice(r * inner, inner), acc, tmp);
                            ReductionDriver.Accumulate<ReductionOps.SumOp>(tmp, sum);
                        }
                        for (int i = 0; i < inner; i++) acc[i] = float.IsFinite(acc[i]) ? acc[i] + MathF.Log(sum[i]) : acc[i];
                        break;
                }
            }
        }, minChunk: Math.Max(1, 16384 / Math.Max(1, n * inner)));
    }

    private static void Columns<TOp>(ReadOnlySpan<float> block, int n, Span<float> acc) where TOp : IAggregateOp
    {
        int inner = acc.Length;
        acc.Fill(TOp.Identity);
        for (int r = 0; r < n; r++) ReductionDriver.Accumulate<TOp>(block.Slice(r * inner, inner), acc);
    }

    /// <summary>One contiguous row reduced with the SIMD driver.</summary>
    internal static float Row(ReduceOp op, ReadOnlySpan<float> row)
    {
        switch (op)
        {
            case ReduceOp.Sum: return ReductionDriver.Sum(row);
            case ReduceOp.Mean: return ReductionDriver.Sum(row) / row.Length;
            case ReduceOp.Max: return ReductionDriver.Max(row);
            case ReduceOp.Min: return ReductionDriver.Aggregate<ReductionOps.MinOp>(row);
            case ReduceOp.Prod: return ReductionDriver.Aggregate<ReductionOps.ProductOp>(row);
            case ReduceOp.L1: return ReductionDriver.Aggregate<ReductionOps.SumAbsOp>(row);
            case ReduceOp.L2: return MathF.Sqrt(ReductionDriver.Aggregate<ReductionOps.SumSquaresOp>(row));
            case ReduceOp.SumSquare: return ReductionDriver.Aggregate<ReductionOps.SumSquaresOp>(row);
            case ReduceOp.LogSum: return MathF.Log(ReductionDriver.Sum(row));
            default:
                float m = ReductionDriver.Max(row);
                if (!float.IsFinite(m)) return m;
                Span<float> buf = stackalloc float[256];
                float s = 0;
                for (int i = 0; i < row.Length; i += buf.Length)
                {
                    var chunk = row.Slice(i, Math.Min(buf.Length, row.Length - i));
                    s += ReductionDriver.ExpShiftSum(chunk, m, buf);
                }
                return m + MathF.Log(s);
        }
    }

    private static void Generic<T>(ReduceOp op, ReadOnlyMemory<byte> srcMem, TensorBuffer y, ReduceLayout l) where T : unmanaged, INumber<T>
    {
        var src = TensorUtil.As<T>(srcMem.Span);
        var dst = y.Span<T>();
        int outer = l.Outer, n = l.Reduced, inner = l.Inner;
        if (n == 0)
        {
            dst.Fill(T.CreateSaturating(ReduceReference.EmptyValue(op)));
            return;
        }
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++)
                dst[o * inner + i] = Strided(op, src, o * n * inner + i, n, inner);
    }

    /// <summary>Reduces n elements starting at <paramref name="first"/>, <paramref name="stride"/> apart, in the element type
    /// (integers accumulate and divide as integers, as ONNX Runtime does).</summary>
    private static T Strided<T>(ReduceOp op, ReadOnlySpan<T> src, int first, int n, int stride) where T : unmanaged, INumber<T>
    {
        T acc;
        switch (op)
        {
            case ReduceOp.Max:
                acc = src[first];
                for (int k = 1; k < n; k++) acc = Max(acc, src[first + k * stride]);
                return acc;
            case ReduceOp.Min:
                acc = src[first];
                for (int k = 1; k < n; k++) acc = Min(acc, src[first + k * stride]);
                return acc;
            case ReduceOp.Prod:
                acc = T.One;
                for (int k = 0; k < n; k++) acc *= src[first + k * stride];
                return acc;
            case ReduceOp.LogSumExp:
                {
                    double m = double.NegativeInfinity;
                    for (int k = 0; k < n; k++) m = Math.Max(m, double.CreateTruncating(src[first + k * stride]));
                    if (!double.IsFinite(m)) return T.CreateTruncating(m);
                    double s = 0;
                    for (int k = 0; k < n; k++) s += Math.Exp(double.CreateTruncating(src[first + k * stride]) - m);
                    return T.CreateTruncating(m + Math.Log(s));
                }
        }
        acc = T.Zero;
        for (int k = 0; k < n; k++)
        {
            T v = src[first + k * stride];
            acc += op switch
            {
                ReduceOp.L1 => T.Abs(v),
                ReduceOp.L2 or ReduceOp.SumSquare => v * v,
                _ => v,
            };
        }
        return op switch
        {
            ReduceOp.Mean => acc / T.CreateTruncating(n),
            ReduceOp.L2 => T.CreateTruncating(Math.Sqrt(double.CreateTruncating(acc))),
            ReduceOp.LogSum => T.CreateTruncating(Math.Log(double.CreateTruncating(acc))),
            _ => acc,
        };

        static T Max(T a, T b) => T.IsNaN(a) || T.IsNaN(b) ? (T.IsNaN(a) ? a : b) : (a >= b ? a : b);
        static T Min(T a, T b) => T.IsNaN(a) || T.IsNaN(b) ? (T.IsNaN(a) ? a : b) : (a <= b ? a : b);
    }
}
