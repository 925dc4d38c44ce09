using OnDevice.Core;

namespace OnDevice.Runtime.Kernels.Tensors;

/// <summary>Replication: Expand (numpy broadcast to a shape) and Tile (repeat along each axis).</summary>
internal static class ExpandTileKernels
{
    public static void Register(KernelRegistry r)
    {
        r.Add("Expand", 8, TypeSets.All, _ => new ExpandKernel());
        r.Add("Tile", 6, TypeSets.All, _ => new TileKernel());
    }

    /// <summary>Fills <paramref name="dst"/> with copies of the <paramref name="esz"/>-byte element <paramref name="element"/>.</summary>
    public static void FillElement(ReadOnlySpan<byte> element, Span<byte> dst, int esz)
    {
        switch (esz)
        {
            case 1: dst.Fill(element[0]); break;
            case 2: TensorUtil.As<ushort>(dst).Fill(TensorUtil.As<ushort>(element)[0]); break;
            case 4: TensorUtil.As<uint>(dst).Fill(TensorUtil.As<uint>(element)[0]); break;
            case 8: TensorUtil.As<ulong>(dst).Fill(TensorUtil.As<ulong>(element)[0]); break;
            default:
                for (int o = 0; o < dst.Length; o += esz) element[..esz].CopyTo(dst[o..]);
                break;
        }
    }

    private sealed class ExpandKernel : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var x = ctx.Required(0);
            var target = TensorUtil.Ints(ctx.Required(1)).Select(d => TensorUtil.Dim(d, "Expand dimension")).ToArray();
            var plan = new Broadcast(x.Shape, target);
            var y = ctx.Output(0, x.DType, plan.OutShape);
            int esz = TensorUtil.ElementBytes(x.DType);
            var src = x.Memory.Span;
            var dst = y.Memory.Span;
            int innerBytes = plan.Inner * esz;
            bool contiguous = plan.InnerContiguous[0];
            for (int b = 0; b < plan.Blocks; b++)
            {
                int off = plan.Offset(0, b) * esz;
                var d = dst.Slice(b * innerBytes, innerBytes);
                if (contiguous) src.Slice(off, innerBytes).CopyTo(d);
                else FillElement(src.Slice(off, esz), d, esz);
            }
        }
    }

    private sealed class TileKernel : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var x = ctx.Required(0);
            var reps = TensorUtil.Ints(ctx.Required(1));
            int rank = x.Rank;
            if (reps.Length != rank) throw new InvalidOperationException($"Tile: {reps.Length} repeats for input {TensorBuffer.Format(x.Shape)}");
            var shape = new int[rank];
            for (int d = 0; d < rank; d++) shape[d] = TensorUtil.Dim((long)x.Shape[d] * TensorUtil.Dim(reps[d], "Tile repeat"), "Tile output dimension");
            var y = ctx.Output(0, x.DType, shape);
            if (y.Length == 0) return;
            int esz = TensorUtil.ElementBytes(x.DType);
            var src = x.Memory.Span;
            var dst = y.Memory.Span;
            if (rank == 0)
            {
                src.CopyTo(dst);
                return;
            }
            var inStrides = TensorUtil.Strides(x.Shape);
            int inRowBytes = x.Shape[rank - 1] * esz;
            int outRowBytes = shape[rank - 1] * esz;
            int rows = y.Length / shape[rank - 1];
            var idx = new int[rank - 1];
            for (int row = 0; row < rows; row++)
            {
                long inOff = 0;
                for (int d = 0; d < rank - 1; d++) inOff += (long)(idx[d] % x.Shape[d]) * inStrides[d];
                var srcRow = src.Slice((int)(inOff * esz), inRowBytes);
                var dstRow = dst.Slice(row * outRowBytes, outRowBytes);
                for (int o = 0; o < outRowBytes; o += inRowBytes) srcRow.CopyTo(dstRow[o..]);
                for (int d = rank - 2; d >= 0; d--)
                {
                    if (++idx[d] < shape[d]) break;
                    idx[d] = 0;
                }
            }
        }
    }
}
