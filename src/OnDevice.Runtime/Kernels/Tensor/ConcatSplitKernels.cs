using OnDevice.Core;

namespace OnDevice.Runtime.Kernels.Tensors;

/// <summary>Joining and splitting along one axis: Concat and Split (split sizes as attribute, input, num_outputs or equal parts).</summary>
internal static class ConcatSplitKernels
{
    public static void Register(KernelRegistry r)
    {
        r.Add("Concat", 1, TypeSets.All, ctx => new ConcatKernel(ctx.Node.GetInt("axis", ctx.Opset < 4 ? 1 : long.MinValue)),
            supports: ctx => ctx.Opset >= 4 && ctx.Node.Attr("axis") is null ? "Concat needs the axis attribute" : null);
        r.Add("Split", 1, TypeSets.All, ctx => new SplitKernel(ctx.Node.GetInt("axis", 0), ctx.Opset < 13 ? ctx.Node.GetInts("split") : null,
            ctx.Opset >= 18 ? ctx.Node.GetInt("num_outputs", 0) : 0));
    }

    private sealed class ConcatKernel(long axisAttr) : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var inputs = new List<TensorBuffer>(ctx.Node.Inputs.Count);
            for (int i = 0; i < ctx.Node.Inputs.Count; i++)
                if (ctx.Input(i) is { } b) inputs.Add(b);
            if (inputs.Count == 0) throw new InvalidOperationException("Concat needs at least one input");
            var first = inputs[0];
            int rank = first.Rank;
            int axis = TensorUtil.Axis(axisAttr, rank);
            var shape = (int[])first.Shape.Clone();
            long total = 0;
            foreach (var b in inputs)
            {
                if (b.Rank != rank || b.DType != first.DType)
                    throw new InvalidOperationException($"Concat: input {b} does not match {first}");
                for (int d = 0; d < rank; d++)
                    if (d != axis && b.Shape[d] != shape[d])
                        throw new InvalidOperationException($"Concat: input {b} does not match {first} outside axis {axis}");
                total += b.Shape[axis];
            }
            shape[axis] = TensorUtil.Dim(total, "Concat output dimension");
            var y = ctx.Output(0, first.DType, shape);
            int esz = TensorUtil.ElementBytes(first.DType);
            int outer = TensorUtil.Product(shape, 0, axis);
            int innerBytes = TensorUtil.Product(shape, axis + 1, rank) * esz;
            int outBlock = shape[axis] * innerBytes;
            var dst = y.Memory.Span;
            int offset = 0;
            foreach (var b in inputs)
            {
                int block = b.Shape[axis] * innerBytes;
                if (block == 0) continue;
                var src = b.Memory.Span;
                for (int o = 0; o < outer; o++)
                    src.Slice(o * block, block).CopyTo(dst.Slice(o * outBlock + offset, block));
                offset += block;
            }
        }
    }

    private sealed class SplitKernel(long axisAttr, long[]? splitAttr, long numOutputs) : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var x = ctx.Required(0);
            int axis = TensorUtil.Axis(axisAttr, x.Rank);
            int n = ctx.OutputCount;
            int dim = x.Shape[axis];
            var split = splitAttr ?? (ctx.Input(1) is { } s ? TensorUtil.Ints(s) : null);
            var sizes = new int[n];
            if (split is not null)
            {
                if (split.Length != n) throw new InvalidOperationException($"Split: {split.Length} sizes for {n} outputs");
                long sum = 0;
                for (int i = 0; i < n; i++) sum += sizes[i] = TensorUtil.Dim(split[i], "split size");
                if (sum != dim) throw new InvalidOperationException($"Split: sizes [{string.Join(",", split)}] do not add up to dimension {dim}");
            }
            else if (numOutputs > 0)
            {
                if (numOutputs != n) throw new InvalidOperationException($"Split: num_outputs {numOutputs} but the node has {n} outputs");
                int chunk = (dim + n - 1) / n;
                for (int i = 0; i < n; i++) sizes[i] = Math.Max(0, Math.Min(chunk, dim - i * chunk));
                if (sizes.Sum() != dim) throw new InvalidOperationException($"Split: dimension {dim} cannot be split into {n} parts");
            }
            else
            {
                if (dim % n != 0) throw new InvalidOperationException($"Split: dimension {dim} is not divisible into {n} equal parts");
                Array.Fill(sizes, dim / n);
            }
            int esz = TensorUtil.ElementBytes(x.DType);
            int outer = TensorUtil.Product(x.Shape, 0, axis);
            int innerBytes = TensorUtil.Product(x.Shape, axis + 1, x.Rank) * esz;
            int inBlock = dim * innerBytes;
            var src = x.Memory.Span;
            int offset = 0;
            for (int i = 0; i < n; i++)
            {
                var shape = (int[])x.Shape.Clone();
                shape[axis] = sizes[i];
                int block = sizes[i] * innerBytes;
                if (ctx.IsOutputUsed(i))
                {
                    var dst = ctx.Output(i, x.DType, shape).Memory.Span;
                    for (int o = 0; o < outer && block > 0; o++)
                        src.Slice(o * inBlock + offset, block).CopyTo(dst.Slice(o * block, block));
                }
                offset += block;
            }
        }
    }
}
