using System.Runtime.InteropServices;
using OnDevice.Core;

namespace OnDevice.Runtime.Kernels.Tensors;

/// <summary>Slice: per-axis start, end (clamped, negative counting from the end) and step (negative walks backwards).</summary>
internal static class SliceKernels
{
    public static void Register(KernelRegistry r)
    {
        r.Add("Slice", 1, TypeSets.All, ctx => new SliceKernel(ctx.Node.GetInts("starts"), ctx.Node.GetInts("ends"), ctx.Node.GetInts("axes")), until: 9,
            supports: ctx => ctx.Node.GetInts("starts") is null || ctx.Node.GetInts("ends") is null ? "Slice-1 needs starts and ends attributes" : null);
        r.Add("Slice", 10, TypeSets.All, _ => new SliceKernel(null, null, null));
    }

    /// <summary>Per input axis: first index, step and number of elements taken (ONNX clamping rules).</summary>
    public static (int Start, int Step, int Count)[] Plan(int[] shape, long[] starts, long[] ends, long[]? axes, long[]? steps)
    {
        int rank = shape.Length;
        if (ends.Length != starts.Length) throw new InvalidOperationException($"Slice: {starts.Length} starts but {ends.Length} ends");
        if (axes is not null && axes.Length != starts.Length) throw new InvalidOperationException($"Slice: {starts.Length} starts but {axes.Length} axes");
        if (steps is not null && steps.Length != starts.Length) throw new InvalidOperationException($"Slice: {starts.Length} starts but {steps.Length} steps");
        var plan = new (int Start, int Step, int Count)[rank];
        for (int d = 0; d < rank; d++) plan[d] = (0, 1, shape[d]);
        var axisList = axes is null ? Enumerable.Range(0, starts.Length).ToArray() : TensorUtil.Axes(axes, rank);
        for (int i = 0; i < starts.Length; i++)
        {
            int a = axisList[i];
            if (a >= rank) throw new InvalidOperationException($"Slice: axis {a} out of range for rank {rank}");
            long dim = shape[a];
            long step = steps?[i] ?? 1;
            if (step == 0) throw new InvalidOperationException("Slice: step 0");
            long start = starts[i], end = ends[i];
            if (start < 0) start += dim;
            if (end < 0) end += dim;
            long count;
            if (dim == 0) { start = 0; count = 0; }
            else if (step > 0)
            {
                start = Math.Clamp(start, 0, dim);
                end = Math.Clamp(end, 0, dim);
                count = end > start ? (end - start + step - 1) / step : 0;
            }
            else
            {
                start = Math.Clamp(start, 0, dim - 1);
                end = Math.Clamp(end, -1, dim - 1);
                count = start > end ? (start - end + (-step) - 1) / (-step) : 0;
            }
            if (count == 0) start = 0;
            plan[a] = ((int)start, (int)Math.Clamp(step, -dim, dim), (int)count);
        }
        return plan;
    }

    private sealed class SliceKernel(long[]? startsAttr, long[]? endsAttr, long[]? axesAttr) : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var x = ctx.Required(0);
            long[] starts, ends;
            long[]? axes, steps = null;
            if (startsAttr is not null)
            {
                (starts, ends, axes) = (startsAttr, endsAttr!, axesAttr);
            }
            else
            {
                starts = TensorUtil.Ints(ctx.Required(1));
                ends = TensorUtil.Ints(ctx.Required(2));
                axes = ctx.Input(3) is { } a ? TensorUtil.Ints(a) : null;
                steps = ctx.Input(4) is { } s ? TensorUtil.Ints(s) : null;
            }
            var plan = Plan(x.Shape, starts, ends, axes, steps);
            var y = ctx.Output(0, x.DType, plan.Select(p => p.Count).ToArray());
            Gather(x.Memory.Span, x.Shape, plan, y.Memory.Span, TensorUtil.ElementBytes(x.DType));
        }
    }

    /// <summary>Copies the strided box described by <paramref name="plan"/> out of <paramref name="src"/>.</summary>
    public static void Gather(ReadOnlySpan<byte> src, int[] shape, (int Start, int Step, int Count)[] plan, Span<byte> dst, int esz)
    {
        int rank = shape.Length;
        long total = 1;
        foreach (var p in plan) total *= p.Count;
        if (total == 0) return;
        if (rank == 0)
        {
            src[..esz].CopyTo(dst);
            return;
        }
        var strides = TensorUtil.Strides(shape);
        // Trailing axes taken whole form a contiguous inner block.
        int k = rank - 1;
        int inner = 1;
        while (k > 0 && plan[k].Start == 0 && plan[k].Step == 1 && plan[k].Count == shape[k])
        {
            inner *= shape[k];
            k--;
        }
        var (kStart, kStep, kCount) = plan[k];
        int blockBytes = inner * esz;
        long rows = total / ((long)kCount * inner);
        var idx = new int[k];
        long baseOff = 0;
        for (int d = 0; d < k; d++) baseOff += (long)plan[d].Start * strides[d];
        int o = 0;
        for (long row = 0; row < rows; row++)
        {
            long off = baseOff + (long)kStart * strides[k];
            if (kStep == 1)
            {
                int bytes = kCount * blockBytes;
                src.Slice((int)(off * esz), bytes).CopyTo(dst.Slice(o, bytes));
                o += bytes;
            }
            else if (inner == 1)
            {
                StridedCopy(src, (int)off, strides[k] * kStep, kCount, dst.Slice(o, kCount * esz), esz);
                o += kCount * esz;
            }
            else
            {
                for (int t = 0; t < kCount; t++, off += (long)kStep * strides[k])
                {
                    src.Slice((int)(off * esz), blockBytes).CopyTo(dst.Slice(o, blockBytes));
                    o += blockBytes;
                }
            }
            for (int d = k - 1; d >= 0; d--)
            {
                baseOff += (long)plan[d].Step * strides[d];
                if (++idx[d] < plan[d].Count) break;
                baseOff -= (long)plan[d].Step * strides[d] * idx[d];
                idx[d] = 0;
            }
        }
    }

    /// <summary>dst[t] = src[first + t*stride] for t in [0, count), element by element.</summary>
    public static void StridedCopy(ReadOnlySpan<byte> src, int first, int stride, int count, Span<byte> dst, int esz)
    {
        switch (esz)
        {
            case 1: Copy(src, first, stride, count, dst); break;
            case 2: Copy(MemoryMarshal.Cast<byte, ushort>(src), first, stride, count, MemoryMarshal.Cast<byte, ushort>(dst)); break;
            case 4: Copy(MemoryMarshal.Cast<byte, uint>(src), first, stride, count, MemoryMarshal.Cast<byte, uint>(dst)); break;
            case 8: Copy(MemoryMarshal.Cast<byte, ulong>(src), first, stride, count, MemoryMarshal.Cast<byte, ulong>(dst)); break;
            default:
                for (int t = 0; t < count; t++) src.Slice((first + t * stride) * esz, esz).CopyTo(dst.Slice(t * esz, esz));
                break;
        }

        static void Copy<T>(ReadOnlySpan<T> s, int first, int stride, int count, Span<T> d) where T : unmanaged
        {
            for (int t = 0, i = first; t < count; t++, i += stride) d[t] = s[i];
        }
    }
}
