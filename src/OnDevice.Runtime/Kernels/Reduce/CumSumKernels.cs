using System.Numerics;
using OnDevice.Core;
using OnDevice.Runtime.Kernels.Tensors;

namespace OnDevice.Runtime.Kernels.Reduce;

/// <summary>CumSum along an axis given as a tensor, with exclusive and reverse.</summary>
internal static class CumSumKernels
{
    private static readonly DType[] Types = [DType.Float32, DType.Float64, DType.Int32, DType.Int64, DType.UInt32, DType.UInt64];

    public static void Register(KernelRegistry r) =>
        r.Add("CumSum", 11, Types, ctx => new CumSumKernel(ctx.Node.GetInt("exclusive", 0) != 0, ctx.Node.GetInt("reverse", 0) != 0));

    private sealed class CumSumKernel(bool exclusive, bool reverse) : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var x = ctx.Required(0);
            int axis = TensorUtil.Axis(TensorUtil.Scalar(ctx.Required(1), "CumSum axis"), x.Rank);
            var y = ctx.Output(0, x.DType, x.Shape);
            if (y.Length == 0) return;
            int outer = TensorUtil.Product(x.Shape, 0, axis), n = x.Shape[axis], inner = TensorUtil.Product(x.Shape, axis + 1, x.Rank);
            switch (x.DType)
            {
                case DType.Float32: Run(x.Span<float>(), y.Span<float>(), outer, n, inner); break;
                case DType.Float64: Run(x.Span<double>(), y.Span<double>(), outer, n, inner); break;
                case DType.Int32: Run(x.Span<int>(), y.Span<int>(), outer, n, inner); break;
                case DType.Int64: Run(x.Span<long>(), y.Span<long>(), outer, n, inner); break;
                case DType.UInt32: Run(x.Span<uint>(), y.Span<uint>(), outer, n, inner); break;
                case DType.UInt64: Run(x.Span<ulong>(), y.Span<ulong>(), outer, n, inner); break;
                default: throw new InvalidOperationException($"CumSum of {x.DType.Name()} is not supported");
            }
        }

        private void Run<T>(ReadOnlySpan<T> x, Span<T> y, int outer, int n, int inner) where T : unmanaged, INumber<T>
        {
            var acc = new T[inner];
            for (int o = 0; o < outer; o++)
            {
                Array.Clear(acc);
                for (int s = 0; s < n; s++)
                {
                    int k = reverse ? n - 1 - s : s;
                    var xr = x.Slice((o * n + k) * inner, inner);
                    var yr = y.Slice((o * n + k) * inner, inner);
                    for (int i = 0; i < inner; i++)
                    {
                        if (exclusive) { yr[i] = acc[i]; acc[i] += xr[i]; }
                        else { acc[i] += xr[i]; yr[i] = acc[i]; }
                    }
                }
            }
        }
    }
}
