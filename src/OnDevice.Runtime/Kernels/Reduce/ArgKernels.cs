using System.Numerics;
using OnDevice.Core;
using OnDevice.Runtime.Kernels.Tensors;

namespace OnDevice.Runtime.Kernels.Reduce;

/// <summary>ArgMax and ArgMin along one axis (keepdims, select_last_index); int64 indices.</summary>
internal static class ArgKernels
{
    private static readonly DType[] Types = [DType.Float32, DType.Float64, DType.Float16, DType.Int8, DType.UInt8, DType.Int16, DType.UInt16, DType.Int32, DType.UInt32, DType.Int64, DType.UInt64];

    public static void Register(KernelRegistry r)
    {
        foreach (var (name, max) in new[] { ("ArgMax", true), ("ArgMin", false) })
            r.Add(name, 1, Types, ctx => new ArgKernel(max, ctx.Node.GetInt("axis", 0), ctx.Node.GetInt("keepdims", 1) != 0,
                ctx.Opset >= 12 && ctx.Node.GetInt("select_last_index", 0) != 0));
    }

    private sealed class ArgKernel(bool max, long axisAttr, bool keepDims, bool selectLast) : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var x = ctx.Required(0);
            int axis = TensorUtil.Axis(axisAttr, x.Rank);
            var shape = x.Shape.Select((d, i) => i == axis ? 1 : d).Where((_, i) => keepDims || i != axis).ToArray();
            int n = x.Shape[axis];
            var y = ctx.Output(0, DType.Int64, shape);
            if (y.Length == 0) return;
            if (n == 0) throw new InvalidOperationException($"{ctx.Node.OpType} over an empty axis of {TensorBuffer.Format(x.Shape)}");
            int outer = TensorUtil.Product(x.Shape, 0, axis), inner = TensorUtil.Product(x.Shape, axis + 1, x.Rank);
            var dst = y.Span<long>();
            switch (x.DType)
            {
                case DType.Float32: Run(x.Span<float>(), dst, outer, n, inner); break;
                case DType.Float64: Run(x.Span<double>(), dst, outer, n, inner); break;
                case DType.Float16: Run(x.Span<Half>(), dst, outer, n, inner); break;
                case DType.Int8: Run(x.Span<sbyte>(), dst, outer, n, inner); break;
                case DType.UInt8: Run(x.Span<byte>(), dst, outer, n, inner); break;
                case DType.Int16: Run(x.Span<short>(), dst, outer, n, inner); break;
                case DType.UInt16: Run(x.Span<ushort>(), dst, outer, n, inner); break;
                case DType.Int32: Run(x.Span<int>(), dst, outer, n, inner); break;
                case DType.UInt32: Run(x.Span<uint>(), dst, outer, n, inner); break;
                case DType.Int64: Run(x.Span<long>(), dst, outer, n, inner); break;
                case DType.UInt64: Run(x.Span<ulong>(), dst, outer, n, inner); break;
                default: throw new InvalidOperationException($"{ctx.Node.OpType} of {x.DType.Name()} is not supported");
            }
        }

        private void Run<T>(ReadOnlySpan<T> src, Span<long> dst, int outer, int n, int inner) where T : unmanaged, INumber<T>
        {
            for (int o = 0; o < outer; o++)
                for (int i = 0; i < inner; i++)
                {
                    int baseIdx = o * n * inner + i;
                    T best = src[baseIdx];
                    int arg = 0;
                    for (int k = 1; k < n; k++)
                    {
                        T v = src[baseIdx + k * inner];
                        bool better = max ? (selectLast ? v >= best : v > best) : (selectLast ? v <= best : v < best);
                        if (better) { best = v; arg = k; }
                    }
                    dst[o * inner + i] = arg;
                }
        }
    }
}
