using System.Runtime.InteropServices;
using OnDevice.Core;

namespace OnDevice.Runtime.Kernels.Tensors;

/// <summary>
/// GatherND (opset 11; batch_dims from opset 12): each row of the last indices axis addresses a slice of data (an
/// element when it indexes every remaining axis); leading batch_dims axes of data and indices are matched one to one.
/// Negative indices count from the end of their axis; out-of-range ones are an error naming the index and axis.
/// </summary>
internal static class GatherNDKernels
{
    public static void Register(KernelRegistry r)
    {
        r.Add("GatherND", 11, TypeSets.All, ctx => new GatherNDKernel(ctx.Opset >= 12 ? ctx.Node.GetInt("batch_dims", 0) : 0), supports: IndicesSupport);
    }

    private static string? IndicesSupport(KernelBuildContext ctx) =>
        ctx.InputType(1) is { } t && t is not (DType.Int32 or DType.Int64) ? $"indices of type {t.Name()} (int64 or int32 expected)" : null;

    /// <summary>The output shape, or an exception describing why the shapes do not fit.</summary>
    public static int[] OutputShape(int[] data, int[] indices, int batchDims)
    {
        int r = data.Length, q = indices.Length;
        if (r < 1 || q < 1) throw new InvalidOperationException($"GatherND: data and indices must have rank >= 1 (data {TensorBuffer.Format(data)}, indices {TensorBuffer.Format(indices)})");
        if (batchDims < 0 || batchDims >= Math.Min(r, q)) throw new InvalidOperationException($"GatherND: batch_dims {batchDims} must be in [0, {Math.Min(r, q)})");
        for (int d = 0; d < batchDims; d++)
            if (data[d] != indices[d]) throw new InvalidOperationException($"GatherND: batch axis {d} differs: data {TensorBuffer.Format(data)}, indices {TensorBuffer.Format(indices)}");
        int k = indices[q - 1];
        if (k < 1 || k > r - batchDims) throw new InvalidOperationException($"GatherND: the last indices axis has {k} entries; it must be in [1, {r - batchDims}] for data {TensorBuffer.Format(data)} with batch_dims {batchDims}");
        return [.. indices.AsSpan(0, q - 1).ToArray(), .. data.AsSpan(batchDims + k).ToArray()];
    }

    /// <summary>
    /// Element offsets into data of every gathered slice (one per indices row), negative indices normalized and
    /// all checked against their axis before anything is copied.
    /// </summary>
    public static int[] SliceOffsets(TensorBuffer ib, int[] data, int batchDims)
    {
        var idx = TensorUtil.Ints(ib);
        int q = ib.Rank, k = ib.Shape[q - 1];
        int rows = ib.Length / Math.Max(k, 1);
        int batches = TensorUtil.Product(data, 0, batchDims);
        int rowsPerBatch = batches == 0 ? 0 : rows / batches;
        int batchStride = TensorUtil.Product(data, batchDims, data.Length);
        var strides = new int[k];
        for (int j = 0; j < k; j++) strides[j] = TensorUtil.Product(data, batchDims + j + 1, data.Length);
        var offsets = new int[rows];
        for (int row = 0; row < rows; row++)
        {
            long off = (long)(row / Math.Max(rowsPerBatch, 1)) * batchStride;
            for (int j = 0; j < k; j++)
            {
                long v = idx[row * k + j];
                int dim = data[batchDims + j];
                long norm = v < 0 ? v + dim : v;
                if (norm < 0 || norm >= dim) throw new InvalidOperationException($"GatherND: index {v} is out of range for data axis {batchDims + j} of size {dim} (indices row {row})");
                off += norm * strides[j];
            }
            offsets[row] = (int)off;
        }
        return offsets;
    }

    /// <summary>Scalar reference: copies each slice byte by byte.</summary>
    public static void GatherBytes(ReadOnlySpan<byte> src, Span<byte> dst, int[] offsets, int sliceElements, int esz)
    {
        int block = sliceElements * esz;
        for (int i = 0; i < offsets.Length; i++)
            for (int b = 0; b < block; b++) dst[i * block + b] = src[offsets[i] * esz + b];
    }

    /// <summary>Fast path: typed element loads for single-element slices, block copies otherwise.</summary>
    public static void Gather(ReadOnlySpan<byte> src, Span<byte> dst, int[] offsets, int sliceElements, int esz)
    {
        if (sliceElements == 1)
        {
            switch (esz)
            {
                case 1: Elements(src, dst, offsets); return;
                case 2: Elements(MemoryMarshal.Cast<byte, ushort>(src), MemoryMarshal.Cast<byte, ushort>(dst), offsets); return;
                case 4: Elements(MemoryMarshal.Cast<byte, uint>(src), MemoryMarshal.Cast<byte, uint>(dst), offsets); return;
                case 8: Elements(MemoryMarshal.Cast<byte, ulong>(src), MemoryMarshal.Cast<byte, ulong>(dst), offsets); return;
            }
        }
        int block = sliceElements * esz;
        for (int i = 0; i < offsets.Length; i++)
            src.Slice(offsets[i] * esz, block).CopyTo(dst.Slice(i * block, block));
    }

    private static void Elements<T>(ReadOnlySpan<T> src, Span<T> dst, int[] offsets) where T : unmanaged
    {
        for (int i = 0; i < offsets.Length; i++) dst[i] = src[offsets[i]];
    }

    private sealed class GatherNDKernel(long batchDimsAttr) : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var x = ctx.Required(0);
            var ib = ctx.Required(1);
            if (batchDimsAttr < 0 || batchDimsAttr > int.MaxValue) throw new InvalidOperationException($"GatherND: batch_dims {batchDimsAttr} must be non-negative");
            int batchDims = (int)batchDimsAttr;
            var shape = OutputShape(x.Shape, ib.Shape, batchDims);
            var offsets = SliceOffsets(ib, x.Shape, batchDims);
            int slice = TensorUtil.Product(x.Shape, batchDims + ib.Shape[^1], x.Rank);
            var y = ctx.Output(0, x.DType, shape);
            Gather(x.Memory.Span, y.Memory.Span, offsets, slice, TensorUtil.ElementBytes(x.DType));
        }
    }
}
