using System.Numerics;
using OnDevice.Core;
using OnDevice.Runtime.Kernels.Tensors;

namespace OnDevice.Runtime.Kernels.Reduce;

/// <summary>TopK: the k largest (or smallest) elements along an axis and their int64 indices, in order; equal values
/// keep ascending index order (as ONNX Runtime). NaN ranks above every number.</summary>
internal static class TopKKernels
{
    private static readonly DType[] Types = [DType.Float32, DType.Float64, DType.Float16, DType.Int8, DType.UInt8, DType.Int16, DType.UInt16, DType.Int32, DType.UInt32, DType.Int64, DType.UInt64];

    public static void Register(KernelRegistry r)
    {
        r.Add("TopK", 1, Types, ctx => new TopKKernel(ctx.Node.GetInt("axis", -1), ctx.Opset < 10 ? ctx.Node.GetInt("k", -1) : null,
            ctx.Opset < 11 || ctx.Node.GetInt("largest", 1) != 0), supports: ctx => ctx.Opset < 10 && ctx.Node.Attr("k") is null ? "TopK-1 needs the k attribute" : null);
    }

    private sealed class TopKKernel(long axisAttr, long? kAttr, bool largest) : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var x = ctx.Required(0);
            int axis = TensorUtil.Axis(axisAttr, x.Rank);
            long k = kAttr ?? TensorUtil.Scalar(ctx.Required(1), "TopK k");
            int n = x.Shape[axis];
            if (k < 0 || k > n) throw new InvalidOperationException($"TopK: k = {k} is out of range for axis of length {n}");
            var shape = (int[])x.Shape.Clone();
            shape[axis] = (int)k;
            var values = ctx.Output(0, x.DType, shape);
            var indices = ctx.Output(1, DType.Int64, shape);
            if (values.Length == 0) return;
            int outer = TensorUtil.Product(x.Shape, 0, axis), inner = TensorUtil.Product(x.Shape, axis + 1, x.Rank);
            switch (x.DType)
            {
                case DType.Float32: Run<float>(x, values, indices, outer, n, inner, (int)k); break;
                case DType.Float64: Run<double>(x, values, indices, outer, n, inner, (int)k); break;
                case DType.Float16: Run<Half>(x, values, indices, outer, n, inner, (int)k); break;
                case DType.Int8: Run<sbyte>(x, values, indices, outer, n, inner, (int)k); break;
                case DType.UInt8: Run<byte>(x, values, indices, outer, n, inner, (int)k); break;
                case DType.Int16: Run<short>(x, values, indices, outer, n, inner, (int)k); break;
                case DType.UInt16: Run<ushort>(x, values, indices, outer, n, inner, (int)k); break;
                case DType.Int32: Run<int>(x, values, indices, outer, n, inner, (int)k); break;
                case DType.UInt32: Run<uint>(x, values, indices, outer, n, inner, (int)k); break;
                case DType.Int64: Run<long>(x, values, indices, outer, n, inner, (int)k); break;
                case DType.UInt64: Run<ulong>(x, values, indices, outer, n, inner, (int)k); break;
                default: throw new InvalidOperationException($"TopK of {x.DType.Name()} is not supported");
            }
        }

        private void Run<T>(TensorBuffer x, TensorBuffer values, TensorBuffer indices, int outer, int n, int inner, int k) where T : unmanaged, INumber<T>
        {
            var src = x.Span<T>();
            var vals = values.Span<T>();
            var idx = indices.Span<long>();
            var line = new T[n];
            var order = new int[n];
            bool big = largest;
            Comparison<int> cmp = (a, b) =>
            {
                int c = Compare(line[a], line[b]);
                if (big) c = -c;
                return c != 0 ? c : a.CompareTo(b);
            };
            for (int o = 0; o < outer; o++)
                for (int i = 0; i < inner; i++)
                {
                    int b = o * n * inner + i;
                    for (int t = 0; t < n; t++) { line[t] = src[b + t * inner]; order[t] = t; }
                    if (k == 1)
                    {
                        int best = 0;
                        for (int t = 1; t < n; t++) if (cmp(t, best) < 0) best = t;
                        order[0] = best;
                    }
                    else order.AsSpan().Sort(cmp);
                    int ob = o * k * inner + i;
                    for (int t = 0; t < k; t++)
                    {
                        vals[ob + t * inner] = line[order[t]];
                        idx[ob + t * inner] = order[t];
                    }
                }
        }

        /// <summary>Total order: numbers ascending, NaN above all.</summary>
        private static int Compare<T>(T a, T b) where T : INumber<T>
        {
            bool na = T.IsNaN(a), nb = T.IsNaN(b);
            if (na || nb) return na == nb ? 0 : (na ? 1 : -1);
            return a < b ? -1 : a > b ? 1 : 0;
        }
    }
}
