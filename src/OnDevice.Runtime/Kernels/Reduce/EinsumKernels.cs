using System.Numerics;
using System.Runtime.InteropServices;
using OnDevice.Core;
using OnDevice.Runtime.Kernels.Tensors;
using OnDevice.Runtime.Reference;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Kernels.Reduce;

/// <summary>
/// Einsum. Operands are first made plain (diagonals of repeated labels taken, size-1 dimensions broadcast), then
/// contracted left to right, two at a time, as batched matrix products: each pair is transposed to
/// [batch, free, contracted] × [batch, contracted, free] with labels used by nobody else summed away first; a
/// single operand is transposed and summed. The result is transposed into the output's label order.
/// </summary>
internal static class EinsumKernels
{
    private static readonly DType[] Types = [DType.Float32, DType.Float64, DType.Int32, DType.Int64];

    public static void Register(KernelRegistry r) =>
        r.Add("Einsum", 12, Types, ctx => new EinsumKernel(ctx.Node.GetString("equation", "")),
            supports: ctx => ctx.Node.GetString("equation", "").Length == 0 ? "Einsum needs an equation" : null);

    /// <summary>An intermediate: row-major elements, one label per dimension.</summary>
    private sealed record Operand(ReadOnlyMemory<byte> Data, int[] Labels, int[] Dims)
    {
        public int Length => TensorBuffer.CheckedLength(Dims);
    }

    private sealed class EinsumKernel(string equation) : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var inputs = Enumerable.Range(0, ctx.Node.Inputs.Count).Select(ctx.Required).ToList();
            var dtype = inputs[0].DType;
            if (inputs.Any(b => b.DType != dtype)) throw new InvalidOperationException("Einsum: operands differ in type");
            var eq = EinsumEquation.Parse(equation, inputs.Select(b => b.Shape).ToList());
            var y = ctx.Output(0, dtype, eq.Output.Select(l => eq.Sizes[l]).ToArray());
            switch (dtype)
            {
                case DType.Float32: Run<float>(ctx, eq, inputs, y); break;
                case DType.Float64: Run<double>(ctx, eq, inputs, y); break;
                case DType.Int32: Run<int>(ctx, eq, inputs, y); break;
                case DType.Int64: Run<long>(ctx, eq, inputs, y); break;
                default: throw new InvalidOperationException($"Einsum of {dtype.Name()} is not supported");
            }
        }
    }

    private static void Run<T>(KernelContext ctx, EinsumEquation eq, List<TensorBuffer> inputs, TensorBuffer y) where T : unmanaged, INumber<T>
    {
        var ops = new List<Operand>();
        for (int i = 0; i < inputs.Count; i++)
        {
            var op = new Operand(inputs[i].Memory, eq.Inputs[i], inputs[i].Shape);
            op = Diagonal<T>(op);
            op = BroadcastTo<T>(op, eq.Sizes);
            ops.Add(op);
        }
        var output = eq.Output;
        var cur = ops[0];
        for (int j = 1; j < ops.Count; j++)
        {
            var needed = new HashSet<int>(output);
            for (int k = j + 1; k < ops.Count; k++) needed.UnionWith(ops[k].Labels);
            cur = Contract<T>(cur, ops[j], needed, ctx.Threads);
        }
        // Sum what the output does not name, then order the dimensions as the output does.
        var extra = cur.Labels.Where(l => !output.Contains(l)).ToArray();
        if (extra.Length > 0) cur = ArrangeAndSum<T>(cur, cur.Labels.Where(output.Contains).ToArray(), extra, ctx.Threads);
        foreach (var l in output.Where(l => !cur.Labels.Contains(l)))
            cur = cur with { Labels = [.. cur.Labels, l], Dims = [.. cur.Dims, 1] }; // a size-1 label no operand kept
        var perm = output.Select(l => Array.IndexOf(cur.Labels, l)).ToArray();
        if (y.Length == 0) return;
        Transposer.Run(cur.Data, y.Memory, cur.Dims, perm, Marshal.SizeOf<T>(), ctx.Threads);
    }

    /// <summary>Takes the diagonal over repeated labels, so every label appears once.</summary>
    private static Operand Diagonal<T>(Operand op) where T : unmanaged
    {
        var unique = op.Labels.Distinct().ToArray();
        if (unique.Length == op.Labels.Length) return op;
        var dims = unique.Select(l => op.Dims[Array.IndexOf(op.Labels, l)]).ToArray();
        for (int d = 0; d < op.Labels.Length; d++)
            if (op.Dims[d] != dims[Array.IndexOf(unique, op.Labels[d])])
                throw new InvalidOperationException($"Einsum: repeated label {EinsumEquation.Name(op.Labels[d])} has different sizes");
        var strides = TensorUtil.Strides(op.Dims);
        var ustride = new int[unique.Length]; // input stride of each unique label (sum over its occurrences)
        for (int d = 0; d < op.Labels.Length; d++) ustride[Array.IndexOf(unique, op.Labels[d])] += strides[d];
        int n = TensorBuffer.CheckedLength(dims);
        var result = new T[n];
        var src = MemoryMarshal.Cast<byte, T>(op.Data.Span);
        var idx = new int[unique.Length];
        for (int i = 0; i < n; i++)
        {
            int rem = i, off = 0;
            for (int d = unique.Length - 1; d >= 0; d--) { idx[d] = rem % dims[d]; rem /= dims[d]; off += idx[d] * ustride[d]; }
            result[i] = src[off];
        }
        return new Operand(MemoryMarshal.AsBytes(result.AsSpan()).ToArray(), unique, dims);
    }

    /// <summary>Materializes size-1 dimensions whose label is larger elsewhere.</summary>
    private static Operand BroadcastTo<T>(Operand op, IReadOnlyDictionary<int, int> sizes) where T : unmanaged
    {
        var full = op.Labels.Select(l => sizes[l]).ToArray();
        if (full.SequenceEqual(op.Dims)) return op;
        var plan = new Broadcast(op.Dims, full);
        int esz = Marshal.SizeOf<T>();
        var dst = new byte[plan.OutLength * esz];
        var src = op.Data.Span;
        int innerBytes = plan.Inner * esz;
        for (int b = 0; b < plan.Blocks; b++)
        {
            int off = plan.Offset(0, b) * esz;
            var d = dst.AsSpan(b * innerBytes, innerBytes);
            if (plan.InnerContiguous[0]) src.Slice(off, innerBytes).CopyTo(d);
            else ExpandTileKernels.FillElement(src.Slice(off, esz), d, esz);
        }
        return new Operand(dst, op.Labels, full);
    }

    /// <summary>Transposes to [keep..., sum...] and sums the trailing block away.</summary>
    private static Operand ArrangeAndSum<T>(Operand op, int[] keep, int[] sum, int threads) where T : unmanaged, INumber<T>
    {
        var order = keep.Concat(sum).ToArray();
        var arranged = Permute<T>(op, order, threads);
        if (sum.Length == 0) return arranged;
        var keepDims = keep.Select(l => op.Dims[Array.IndexOf(op.Labels, l)]).ToArray();
        int rows = TensorBuffer.CheckedLength(keepDims);
        int n = TensorBuffer.CheckedLength(sum.Select(l => op.Dims[Array.IndexOf(op.Labels, l)]).ToArray());
        var result = new T[rows];
        var src = MemoryMarshal.Cast<byte, T>(arranged.Data.Span);
        for (int r = 0; r < rows; r++)
        {
            var row = src.Slice(r * n, n);
            if (typeof(T) == typeof(float)) result[r] = (T)(object)ReductionDriver.Sum(MemoryMarshal.Cast<T, float>(row));
            else
            {
                T s = T.Zero;
                foreach (var v in row) s += v;
                result[r] = s;
            }
        }
        return new Operand(MemoryMarshal.AsBytes(result.AsSpan()).ToArray(), keep, keepDims);
    }

    private static Operand Permute<T>(Operand op, int[] order, int threads) where T : unmanaged
    {
        var perm = order.Select(l => Array.IndexOf(op.Labels, l)).ToArray();
        var dims = perm.Select(p => op.Dims[p]).ToArray();
        if (perm.Select((p, i) => p == i).All(b => b)) return op with { Labels = order, Dims = dims };
        var dst = new byte[op.Length * Marshal.SizeOf<T>()];
        if (dst.Length > 0) Transposer.Run(op.Data, dst, op.Dims, perm, Marshal.SizeOf<T>(), threads);
        return new Operand(dst, order, dims);
    }

    /// <summary>Contracts two operands, keeping the labels in <paramref name="needed"/>; the result is [batch, freeA, freeB].</summary>
    private static Operand Contract<T>(Operand a, Operand b, HashSet<int> needed, int threads) where T : unmanaged, INumber<T>
    {
        var batch = a.Labels.Where(l => b.Labels.Contains(l) && needed.Contains(l)).ToArray();
        var freeA = a.Labels.Where(l => !b.Labels.Contains(l) && needed.Contains(l)).ToArray();
        var freeB = b.Labels.Where(l => !a.Labels.Contains(l) && needed.Contains(l)).ToArray();
        var inner = a.Labels.Where(l => b.Labels.Contains(l) && !needed.Contains(l)).ToArray();
        var onlyA = a.Labels.Where(l => !b.Labels.Contains(l) && !needed.Contains(l)).ToArray();
        var onlyB = b.Labels.Where(l => !a.Labels.Contains(l) && !needed.Contains(l)).ToArray();
        var pa = ArrangeAndSum<T>(a, [.. batch, .. freeA, .. inner], onlyA, threads);
        var pb = ArrangeAndSum<T>(b, [.. batch, .. inner, .. freeB], onlyB, threads);
        int Size(Operand o, int[] labels) => labels.Aggregate(1, (p, l) => p * o.Dims[Array.IndexOf(o.Labels, l)]);
        int nb = Size(pa, batch), m = Size(pa, freeA), k = Size(pa, inner), n = Size(pb, freeB);
        var c = new T[(long)nb * m * n];
        var sa = MemoryMarshal.Cast<byte, T>(pa.Data.Span);
        var sb = MemoryMarshal.Cast<byte, T>(pb.Data.Span);
        for (int bi = 0; bi < nb; bi++)
            MatMul(sa.Slice(bi * m * k, m * k), sb.Slice(bi * k * n, k * n), c.AsSpan(bi * m * n, m * n), m, k, n);
        var labels = batch.Concat(freeA).Concat(freeB).ToArray();
        var dims = labels.Select(l => batch.Contains(l) || freeA.Contains(l) ? pa.Dims[Array.IndexOf(pa.Labels, l)] : pb.Dims[Array.IndexOf(pb.Labels, l)]).ToArray();
        return new Operand(MemoryMarshal.AsBytes(c.AsSpan()).ToArray(), labels, dims);
    }

    /// <summary>c[m×n] = a[m×k] · b[k×n]; float32 rows go through the SIMD multiply-add.</summary>
    private static void MatMul<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> c, int m, int k, int n) where T : unmanaged, INumber<T>
    {
        c.Clear();
        if (typeof(T) == typeof(float))
        {
            var af = MemoryMarshal.Cast<T, float>(a);
            var bf = MemoryMarshal.Cast<T, float>(b);
            var cf = MemoryMarshal.Cast<T, float>(c);
            for (int i = 0; i < m; i++)
                for (int p = 0; p < k; p++)
                    ReductionDriver.MultiplyAdd(bf.Slice(p * n, n), af[i * k + p], cf.Slice(i * n, n));
            return;
        }
        for (int i = 0; i < m; i++)
            for (int p = 0; p < k; p++)
            {
                T av = a[i * k + p];
                var brow = b.Slice(p * n, n);
                var crow = c.Slice(i * n, n);
                for (int j = 0; j < n; j++) crow[j] += av * brow[j];
            }
    }
}
