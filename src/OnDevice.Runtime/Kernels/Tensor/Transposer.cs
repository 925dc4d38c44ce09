using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace OnDevice.Runtime.Kernels.Tensors;

/// <summary>
/// Permutes the axes of a row-major tensor of any fixed-size element type. The permutation is first simplified
/// (size-1 axes dropped, axes that stay adjacent merged); what remains is either a copy, a gather of contiguous
/// blocks (the last axis stays last) or a set of strided 2-D transposes done in cache-sized tiles (the 2-D and
/// batched last-two-axes swaps are the common cases of the latter).
/// </summary>
internal static class Transposer
{
    private const int Tile = 16;

    /// <summary>Writes <paramref name="src"/> (shape <paramref name="shape"/>) permuted by <paramref name="perm"/> into <paramref name="dst"/>.</summary>
    public static void Run(ReadOnlyMemory<byte> src, Memory<byte> dst, int[] shape, int[] perm, int elementBytes, int threads = 1)
    {
        int rank = shape.Length;
        if (perm.Length != rank) throw new InvalidOperationException($"perm has {perm.Length} entries for rank {rank}");
        var seen = new bool[rank];
        foreach (var p in perm)
        {
            if (p < 0 || p >= rank || seen[p]) throw new InvalidOperationException($"perm [{string.Join(",", perm)}] is not a permutation of 0..{rank - 1}");
            seen[p] = true;
        }
        long total = TensorBuffer.CheckedLength(shape);
        if (total == 0) return;
        var (dims, order) = Simplify(shape, perm);
        int r = dims.Length;
        if (r <= 1)
        {
            src.Span[..(int)(total * elementBytes)].CopyTo(dst.Span);
            return;
        }
        var inStrides = TensorUtil.Strides(dims);
        var outShape = new int[r];
        for (int j = 0; j < r; j++) outShape[j] = dims[order[j]];
        if (order[r - 1] == r - 1)
        {
            // The last axis stays last: copy contiguous blocks.
            int blockBytes = dims[r - 1] * elementBytes;
            int blocks = (int)(total / dims[r - 1]);
            Parallel2.For(blocks, threads, (b0, b1) => CopyBlocks(src.Span, dst.Span, outShape, order, inStrides, blockBytes, elementBytes, b0, b1), minChunk: Math.Max(1, 16384 / Math.Max(1, blockBytes)));
            return;
        }
        switch (elementBytes)
        {
            case 1: Strided<byte>(src, dst, dims, order, inStrides, outShape, threads); break;
            case 2: Strided<ushort>(src, dst, dims, order, inStrides, outShape, threads); break;
            case 4: Strided<uint>(src, dst, dims, order, inStrides, outShape, threads); break;
            case 8: Strided<ulong>(src, dst, dims, order, inStrides, outShape, threads); break;
            default: throw new InvalidOperationException($"Transpose of {elementBytes}-byte elements is not supported");
        }
    }

    /// <summary>Drops size-1 axes and merges axes that remain adjacent and in order; returns the reduced input
    /// dimensions and the reduced permutation.</summary>
    internal static (int[] Dims, int[] Perm) Simplify(int[] shape, int[] perm)
    {
        // Keep axes of size > 1, numbered among themselves (so axes separated only by size-1 axes are adjacent), in output order.
        var rankAmongKept = new int[shape.Length];
        for (int d = 0, k = 0; d < shape.Length; d++) rankAmongKept[d] = shape[d] != 1 ? k++ : -1;
        var kept = perm.Where(p => shape[p] != 1).ToList();
        // Group consecutive output axes whose input axes are consecutive.
        var groups = new List<List<int>>();
        foreach (var p in kept)
        {
            if (groups.Count > 0 && rankAmongKept[groups[^1][^1]] + 1 == rankAmongKept[p]) groups[^1].Add(p);
            else groups.Add([p]);
        }
        // Input order of groups: sort by first input axis.
        var byInput = groups.Select((g, i) => (First: g[0], Index: i)).OrderBy(t => t.First).ToList();
        var dims = new int[groups.Count];
        var groupInputPos = new int[groups.Count];
        for (int k = 0; k < byInput.Count; k++)
        {
            var g = groups[byInput[k].Index];
            long size = 1;
            foreach (var a in g) size *= shape[a];
            dims[k] = (int)size;
            groupInputPos[byInput[k].Index] = k;
        }
        return (dims, groupInputPos);
    }

    private static void CopyBlocks(ReadOnlySpan<byte> src, Span<byte> dst, int[] outShape, int[] order, int[] inStrides, int blockBytes, int elementBytes, int b0, int b1)
    {
        int r = outShape.Length;
        int outer = r - 1;
        // Decode b0 into output indices over the first r-1 output axes.
        var idx = new int[outer];
        int rem = b0;
        for (int j = outer - 1; j >= 0; j--)
        {
            idx[j] = rem % outShape[j];
            rem /= outShape[j];
        }
        long inOff = 0;
        for (int j = 0; j < outer; j++) inOff += (long)idx[j] * inStrides[order[j]];
        for (int b = b0; b < b1; b++)
        {
            src.Slice((int)(inOff * elementBytes), blockBytes).CopyTo(dst.Slice(b * blockBytes, blockBytes));
            for (int j = outer - 1; j >= 0; j--)
            {
                inOff += inStrides[order[j]];
                if (++idx[j] < outShape[j]) break;
                inOff -= (long)idx[j] * inStrides[order[j]];
                idx[j] = 0;
            }
        }
    }

    private static void Strided<T>(ReadOnlyMemory<byte> srcMem, Memory<byte> dstMem, int[] dims, int[] order, int[] inStrides, int[] outShape, int threads) where T : unmanaged
    {
        int r = dims.Length;
        var outStrides = TensorUtil.Strides(outShape);
        // Axis A: the output axis that reads the input's last (contiguous) axis. Axis B: the output's last axis.
        int a = Array.IndexOf(order, r - 1);
        int b = r - 1;
        int rows = outShape[a], cols = outShape[b];
        int srcColStride = inStrides[order[b]];
        int dstRowStride = outStrides[a];
        var others = Enumerable.Range(0, r).Where(j => j != a && j != b).ToArray();
        int outerCount = 1;
        foreach (var j in others) outerCount *= outShape[j];
        int rowTiles = (rows + Tile - 1) / Tile;
        int units = outerCount * rowTiles;
        Parallel2.For(units, threads, (u0, u1) =>
        {
            var src = MemoryMarshal.Cast<byte, T>(srcMem.Span);
            var dst = MemoryMarshal.Cast<byte, T>(dstMem.Span);
            for (int u = u0; u < u1; u++)
            {
                int outer = u / rowTiles, tile = u % rowTiles;
                long srcBase = 0, dstBase = 0;
                int rem = outer;
                for (int k = others.Length - 1; k >= 0; k--)
                {
                    int j = others[k];
                    int i = rem % outShape[j];
                    rem /= outShape[j];
                    srcBase += (long)i * inStrides[order[j]];
                    dstBase += (long)i * outStrides[j];
                }
                int r0 = tile * Tile, r1 = Math.Min(rows, r0 + Tile);
                Tile2D(src, (int)srcBase, srcColStride, dst, (int)dstBase, dstRowStride, r0, r1, cols);
            }
        }, minChunk: Math.Max(1, 4096 / Math.Max(1, Tile * cols)));
    }

    /// <summary>dst[dstBase + i*dstRowStride + j] = src[srcBase + i + j*srcColStride] for i in [r0, r1), j in [0, cols), in tiles.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile2D<T>(ReadOnlySpan<T> src, int srcBase, int srcColStride, Span<T> dst, int dstBase, int dstRowStride, int r0, int r1, int cols) where T : unmanaged
    {
        ref readonly T s = ref MemoryMarshal.GetReference(src);
        ref T d = ref MemoryMarshal.GetReference(dst);
        for (int c0 = 0; c0 < cols; c0 += Tile)
        {
            int c1 = Math.Min(cols, c0 + Tile);
            for (int i = r0; i < r1; i++)
            {
                int so = srcBase + i + c0 * srcColStride;
                int dO = dstBase + i * dstRowStride;
                for (int j = c0; j < c1; j++, so += srcColStride)
                    Unsafe.Add(ref d, dO + j) = Unsafe.Add(ref Unsafe.AsRef(in s), so);
            }
        }
    }
}
