using System.Runtime.InteropServices;
using OnDevice.Core;

namespace OnDevice.Runtime.Kernels.Tensors;

/// <summary>Indexed reads: Gather (whole slices along an axis) and GatherElements (one element per index).</summary>
internal static class GatherKernels
{
    public static void Register(KernelRegistry r)
    {
        r.Add("Gather", 1, TypeSets.All, ctx => new GatherKernel(ctx.Node.GetInt("axis", 0)), supports: IndicesSupport);
        r.Add("GatherElements", 11, TypeSets.All, ctx => new GatherElementsKernel(ctx.Node.GetInt("axis", 0)), supports: IndicesSupport);
    }

    private static string? IndicesSupport(KernelBuildContext ctx) =>
        ctx.InputType(1) is { } t && t is not (DType.Int32 or DType.Int64) ? $"indices of type {t.Name()} (int32 or int64 expected)" : null;

    /// <summary>Indices as ints in [0, dim), negative ones counted from the end; out-of-range ones are an error.</summary>
    public static int[] Indices(TensorBuffer b, int dim, string op)
    {
        var r = new int[b.Length];
        if (b.DType == DType.Int64)
        {
            var s = b.Span<long>();
            for (int i = 0; i < r.Length; i++) r[i] = Check(s[i], dim, op);
        }
        else if (b.DType == DType.Int32)
        {
            var s = b.Span<int>();
            for (int i = 0; i < r.Length; i++) r[i] = Check(s[i], dim, op);
        }
        else throw new InvalidOperationException($"{op}: indices must be int32 or int64, got {b.DType.Name()}");
        return r;

        static int Check(long v, int dim, string op)
        {
            long k = v < 0 ? v + dim : v;
            if (k < 0 || k >= dim) throw new InvalidOperationException($"{op}: index {v} is out of range for dimension {dim}");
            return (int)k;
        }
    }

    private sealed class GatherKernel(long axisAttr) : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var x = ctx.Required(0);
            var ib = ctx.Required(1);
            int axis = TensorUtil.Axis(axisAttr, x.Rank);
            int dim = x.Shape[axis];
            var idx = Indices(ib, dim, "Gather");
            var shape = x.Shape.Take(axis).Concat(ib.Shape).Concat(x.Shape.Skip(axis + 1)).ToArray();
            var y = ctx.Output(0, x.DType, shape);
            int esz = TensorUtil.ElementBytes(x.DType);
            int outer = TensorUtil.Product(x.Shape, 0, axis);
            int inner = TensorUtil.Product(x.Shape, axis + 1, x.Rank);
            var src = x.Memory.Span;
            var dst = y.Memory.Span;
            if (inner == 1 && esz is 1 or 2 or 4 or 8)
            {
                switch (esz)
                {
                    case 1: Elements(src, dst, idx, outer, dim); break;
                    case 2: Elements(MemoryMarshal.Cast<byte, ushort>(src), MemoryMarshal.Cast<byte, ushort>(dst), idx, outer, dim); break;
                    case 4: Elements(MemoryMarshal.Cast<byte, uint>(src), MemoryMarshal.Cast<byte, uint>(dst), idx, outer, dim); break;
                    default: Elements(MemoryMarshal.Cast<byte, ulong>(src), MemoryMarshal.Cast<byte, ulong>(dst), idx, outer, dim); break;
                }
                return;
            }
            int block = inner * esz;
            int o = 0;
            for (int b = 0; b < outer; b++)
            {
                int baseOff = b * dim;
                foreach (var k in idx)
                {
                    src.Slice((baseOff + k) * block, block).CopyTo(dst.Slice(o, block));
                    o += block;
                }
            }
        }

        private static void Elements<T>(ReadOnlySpan<T> src, Span<T> dst, int[] idx, int outer, int dim) where T : unmanaged
        {
            int o = 0;
            for (int b = 0; b < outer; b++)
            {
                var row = src.Slice(b * dim, dim);
                foreach (var k in idx) dst[o++] = row[k];
            }
        }
    }

    private sealed class GatherElementsKernel(long axisAttr) : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var x = ctx.Required(0);
            var ib = ctx.Required(1);
            if (ib.Rank != x.Rank) throw new InvalidOperationException($"GatherElements: indices {TensorBuffer.Format(ib.Shape)} and data {TensorBuffer.Format(x.Shape)} differ in rank");
            int axis = TensorUtil.Axis(axisAttr, x.Rank);
            for (int d = 0; d < x.Rank; d++)
                if (d != axis && ib.Shape[d] > x.Shape[d])
                    throw new InvalidOperationException($"GatherElements: indices {TensorBuffer.Format(ib.Shape)} exceed data {TensorBuffer.Format(x.Shape)} on axis {d}");
            var idx = Indices(ib, x.Shape[axis], "GatherElements");
            var y = ctx.Output(0, x.DType, ib.Shape);
            int esz = TensorUtil.ElementBytes(x.DType);
            var src = x.Memory.Span;
            var dst = y.Memory.Span;
            switch (esz)
            {
                case 1: Run(src, dst, idx, x.Shape, ib.Shape, axis); break;
                case 2: Run(MemoryMarshal.Cast<byte, ushort>(src), MemoryMarshal.Cast<byte, ushort>(dst), idx, x.Shape, ib.Shape, axis); break;
                case 4: Run(MemoryMarshal.Cast<byte, uint>(src), MemoryMarshal.Cast<byte, uint>(dst), idx, x.Shape, ib.Shape, axis); break;
                case 8: Run(MemoryMarshal.Cast<byte, ulong>(src), MemoryMarshal.Cast<byte, ulong>(dst), idx, x.Shape, ib.Shape, axis); break;
                default: throw new InvalidOperationException($"GatherElements of {esz}-byte elements is not supported");
            }
        }

        private static void Run<T>(ReadOnlySpan<T> src, Span<T> dst, int[] idx, int[] dataShape, int[] idxShape, int axis) where T : unmanaged
        {
            int rank = dataShape.Length;
            if (idx.Length == 0) return;
            var strides = TensorUtil.Strides(dataShape);
            var c = new int[rank];
            long off = 0; // data offset of the current coordinate, without the axis term
            int axisStride = strides[axis];
            for (int i = 0; i < idx.Length; i++)
            {
                dst[i] = src[(int)(off + (long)idx[i] * axisStride)];
                for (int d = rank - 1; d >= 0; d--)
                {
                    if (d != axis) off += strides[d];
                    if (++c[d] < idxShape[d]) break;
                    if (d != axis) off -= (long)strides[d] * c[d];
                    c[d] = 0;
                }
            }
        }
    }
}
