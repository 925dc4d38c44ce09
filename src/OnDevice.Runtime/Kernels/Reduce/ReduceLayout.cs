using OnDevice.Runtime.Kernels.Tensors;

namespace OnDevice.Runtime.Kernels.Reduce;

/// <summary>
/// A reduction seen as [outer, reduced, inner]: when the reduced axes are adjacent (ignoring size-1 axes) the input
/// already has this layout; otherwise the reduced axes are moved last by a transpose (<see cref="Permutation"/>)
/// and inner is 1. The output, in either case, is [outer, inner] in row-major order.
/// </summary>
internal sealed class ReduceLayout
{
    private ReduceLayout(int outer, int reduced, int inner, int[]? permutation)
    {
        Outer = outer;
        Reduced = reduced;
        Inner = inner;
        Permutation = permutation;
    }

    /// <summary>Product of the kept axes before the reduced block (or of all kept axes when transposed).</summary>
    public int Outer { get; }

    /// <summary>Number of elements folded into each output element.</summary>
    public int Reduced { get; }

    /// <summary>Product of the kept axes after the reduced block.</summary>
    public int Inner { get; }

    /// <summary>The transpose that moves the reduced axes last, or null when none is needed.</summary>
    public int[]? Permutation { get; }

    /// <summary>Plans reducing <paramref name="shape"/> over the axes marked in <paramref name="reduce"/>.</summary>
    public static ReduceLayout Of(int[] shape, bool[] reduce)
    {
        int rank = shape.Length;
        // Pattern over axes of size != 1: kept* reduced* kept* is contiguous.
        int phase = 0; // 0: leading kept, 1: reduced, 2: trailing kept
        bool contiguous = true;
        for (int d = 0; d < rank && contiguous; d++)
        {
            if (shape[d] == 1) continue;
            if (reduce[d])
            {
                if (phase == 2) contiguous = false;
                else phase = 1;
            }
            else if (phase == 1) phase = 2;
        }
        long outer = 1, reduced = 1, inner = 1;
        if (contiguous)
        {
            int state = 0;
            for (int d = 0; d < rank; d++)
            {
                if (shape[d] == 1) continue;
                if (reduce[d]) { reduced *= shape[d]; state = 1; }
                else if (state == 0) outer *= shape[d];
                else inner *= shape[d];
            }
            return new ReduceLayout(Check(outer), Check(reduced), Check(inner), null);
        }
        var kept = Enumerable.Range(0, rank).Where(d => !reduce[d]).ToArray();
        var red = Enumerable.Range(0, rank).Where(d => reduce[d]).ToArray();
        foreach (var d in kept) outer *= shape[d];
        foreach (var d in red) reduced *= shape[d];
        return new ReduceLayout(Check(outer), Check(reduced), 1, [.. kept, .. red]);
    }

    private static int Check(long v) => v <= int.MaxValue ? (int)v : throw new InvalidOperationException("reduction too large");

    /// <summary>The input bytes in [outer, reduced, inner] order: the input itself, or its transpose in the run's
    /// scratch memory (so the caller must not ask for scratch again while it uses the result).</summary>
    public ReadOnlyMemory<byte> Arrange(TensorBuffer x, KernelContext ctx)
    {
        if (Permutation is null) return x.Memory;
        int esz = TensorUtil.ElementBytes(x.DType);
        var scratch = ctx.Scratch(x.Length * esz);
        Transposer.Run(x.Memory, scratch, x.Shape, Permutation, esz, ctx.Threads);
        return scratch;
    }
}
