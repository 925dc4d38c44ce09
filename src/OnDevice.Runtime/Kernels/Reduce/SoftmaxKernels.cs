using OnDevice.Core;
using OnDevice.Runtime.Kernels.Tensors;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Kernels.Reduce;

/// <summary>
/// Softmax, LogSoftmax and Hardmax along one axis. Before opset 13 the input is coerced to 2-D at <c>axis</c>
/// (default 1) and the op runs over the whole trailing block; from opset 13 it runs along the one axis (default −1).
/// float32 rows use the SIMD driver (max, exp-and-sum, divide); float64 is scalar.
/// </summary>
internal static class SoftmaxKernels
{
    private static readonly DType[] Types = [DType.Float32, DType.Float64];

    public static void Register(KernelRegistry r)
    {
        foreach (var kind in new[] { Kind.Softmax, Kind.LogSoftmax, Kind.Hardmax })
        {
            r.Add(kind.ToString(), 1, Types, ctx => new SoftmaxKernel(kind, ctx.Node.GetInt("axis", 1), coerce: true), until: 12);
            r.Add(kind.ToString(), 13, Types, ctx => new SoftmaxKernel(kind, ctx.Node.GetInt("axis", -1), coerce: false));
        }
    }

    internal enum Kind { Softmax, LogSoftmax, Hardmax }

    private sealed class SoftmaxKernel(Kind kind, long axisAttr, bool coerce) : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var x = ctx.Required(0);
            int rank = x.Rank;
            int axis = rank == 0 ? 0 : TensorUtil.Axis(axisAttr, rank);
            int outer = TensorUtil.Product(x.Shape, 0, axis);
            int n = coerce ? TensorUtil.Product(x.Shape, axis, rank) : (rank == 0 ? 1 : x.Shape[axis]);
            int inner = coerce || rank == 0 ? 1 : TensorUtil.Product(x.Shape, axis + 1, rank);
            var y = ctx.Output(0, x.DType, x.Shape);
            if (y.Length == 0) return;
            if (x.DType == DType.Float32)
                ctx.ParallelFor(outer, (o0, o1) => Float32(kind, x.Span<float>(), y.Span<float>(), o0, o1, n, inner), minChunk: Math.Max(1, 8192 / (n * inner)));
            else Float64(kind, x.Span<double>(), y.Span<double>(), outer, n, inner);
        }
    }

    /// <summary>Runs blocks [o0, o1) of an [outer, n, inner] float32 tensor.</summary>
    internal static void Float32(Kind kind, ReadOnlySpan<float> x, Span<float> y, int o0, int o1, int n, int inner)
    {
        if (inner == 1)
        {
            for (int o = o0; o < o1; o++) Row(kind, x.Slice(o * n, n), y.Slice(o * n, n));
            return;
        }
        var m = new float[inner];
        var s = new float[inner];
        for (int o = o0; o < o1; o++)
        {
            var xb = x.Slice(o * n * inner, n * inner);
            var yb = y.Slice(o * n * inner, n * inner);
            if (kind == Kind.Hardmax)
            {
                yb.Clear();
                for (int i = 0; i < inner; i++)
                {
                    int arg = 0;
                    for (int k = 1; k < n; k++) if (xb[k * inner + i] > xb[arg * inner + i]) arg = k;
                    yb[arg * inner + i] = 1;
                }
                continue;
            }
            m.AsSpan().Fill(float.NegativeInfinity);
            s.AsSpan().Clear();
            for (int k = 0; k < n; k++) ReductionDriver.Accumulate<ReductionOps.MaxOp>(xb.Slice(k * inner, inner), m);
            for (int k = 0; k < n; k++)
            {
                var yr = yb.Slice(k * inner, inner);
                ElementwiseDriver.Binary<ReductionOps.ExpSubOp>(xb.Slice(k * inner, inner), m, yr);
                ReductionDriver.Accumulate<ReductionOps.SumOp>(yr, s);
            }
            if (kind == Kind.Softmax)
            {
                for (int k = 0; k < n; k++) ElementwiseDriver.Binary<ReductionOps.DivOp>(yb.Slice(k * inner, inner), s, yb.Slice(k * inner, inner));
            }
            else
            {
                for (int i = 0; i < inner; i++) s[i] = MathF.Log(s[i]);
                for (int k = 0; k < n; k++)
                {
                    var yr = yb.Slice(k * inner, inner);
                    ElementwiseDriver.Binary<ReductionOps.SubOp>(xb.Slice(k * inner, inner), m, yr);
                    ElementwiseDriver.Binary<ReductionOps.SubOp>(yr, s, yr);
                }
            }
        }
    }

    /// <summary>One contiguous row.</summary>
    internal static void Row(Kind kind, ReadOnlySpan<float> x, Span<float> y)
    {
        if (kind == Kind.Hardmax)
        {
            int arg = 0;
            for (int k = 1; k < x.Length; k++) if (x[k] > x[arg]) arg = k;
            y.Clear();
            y[arg] = 1;
            return;
        }
        float m = ReductionDriver.Max(x);
        float s = ReductionDriver.ExpShiftSum(x, m, y);
        if (kind == Kind.Softmax) ReductionDriver.Divide(y, s, y);
        else
        {
            ReductionDriver.Subtract(x, m, y);
            ReductionDriver.Subtract(y, MathF.Log(s), y);
        }
    }

    private static void Float64(Kind kind, ReadOnlySpan<double> x, Span<double> y, int outer, int n, int inner)
    {
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++)
            {
                int b = o * n * inner + i;
                double m = double.NegativeInfinity;
                int arg = 0;
                for (int k = 0; k < n; k++)
                {
                    double v = x[b + k * inner];
                    if (v > x[b + arg * inner]) arg = k;
                    m = Math.Max(m, v);
                }
                if (kind == Kind.Hardmax)
                {
                    for (int k = 0; k < n; k++) y[b + k * inner] = k == arg ? 1 : 0;
                    continue;
                }
                double s = 0;
                for (int k = 0; k < n; k++) s += Math.Exp(x[b + k * inner] - m);
                for (int k = 0; k < n; k++)
                    y[b + k * inner] = kind == Kind.Softmax ? Math.Exp(x[b + k * inner] - m) / s : x[b + k * inner] - m - Math.Log(s);
            }
    }
}
