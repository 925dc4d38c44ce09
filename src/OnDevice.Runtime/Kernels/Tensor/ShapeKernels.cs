using OnDevice.Core;

namespace OnDevice.Runtime.Kernels.Tensors;

/// <summary>Ops that change only the shape (or report it): Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout
/// (inference), Shape, Size. Data is copied, never aliased: the memory planner gives every value its own lifetime.</summary>
internal static class ShapeKernels
{
    public static void Register(KernelRegistry r)
    {
        r.Add("Reshape", 1, TypeSets.All, ctx => new ReshapeKernel(ctx.Opset >= 5 ? null : ctx.Node.GetInts("shape"), ctx.Opset >= 14 && ctx.Node.GetInt("allowzero", 0) != 0),
            supports: ctx => ctx.Opset < 5 && ctx.Node.GetInts("shape") is null ? "Reshape-1 needs the shape attribute" : null);
        r.Add("Flatten", 1, TypeSets.All, ctx => new FlattenKernel(ctx.Node.GetInt("axis", 1)));
        r.Add("Squeeze", 1, TypeSets.All, ctx => new SqueezeKernel(ctx.Opset < 13 ? ctx.Node.GetInts("axes") : null), until: 12);
        r.Add("Squeeze", 13, TypeSets.All, _ => new SqueezeKernel(null));
        r.Add("Unsqueeze", 1, TypeSets.All, ctx => new UnsqueezeKernel(ctx.Node.GetInts("axes")), until: 12,
            supports: ctx => ctx.Node.GetInts("axes") is null ? "Unsqueeze needs the axes attribute before opset 13" : null);
        r.Add("Unsqueeze", 13, TypeSets.All, _ => new UnsqueezeKernel(null));
        r.Add("Identity", 1, TypeSets.All, _ => new IdentityKernel());
        r.Add("Dropout", 7, DropoutTypes, ctx => new DropoutKernel(ctx.Opset >= 10), supports: DropoutSupport);
        r.Add("Shape", 1, TypeSets.All, ctx => new ShapeKernel(ctx.Opset >= 15 ? ctx.Node.GetInt("start", 0) : 0, ctx.Opset >= 15 ? ctx.Node.GetInt("end", long.MaxValue) : long.MaxValue));
        r.Add("Size", 1, TypeSets.All, _ => new SizeKernel());
    }

    private static readonly DType[] DropoutTypes = [DType.Float32, DType.Float64, DType.Float16, DType.BFloat16];

    /// <summary>The output shape of Reshape: 0 copies the input dimension (unless <paramref name="allowZero"/>), -1 is inferred.</summary>
    public static int[] ReshapeShape(int[] input, long[] target, bool allowZero)
    {
        int length = TensorBuffer.CheckedLength(input);
        var dims = new int[target.Length];
        int infer = -1;
        long known = 1;
        for (int i = 0; i < target.Length; i++)
        {
            long v = target[i];
            if (v == -1)
            {
                if (infer >= 0) throw new InvalidOperationException("Reshape: more than one -1 in the target shape");
                infer = i;
                continue;
            }
            if (v == 0 && !allowZero)
            {
                if (i >= input.Length) throw new InvalidOperationException($"Reshape: target dimension {i} is 0 (copy) but the input has rank {input.Length}");
                dims[i] = input[i];
            }
            else dims[i] = TensorUtil.Dim(v, "Reshape target dimension");
            known *= dims[i];
        }
        if (infer >= 0)
        {
            if (allowZero && target.Contains(0)) throw new InvalidOperationException("Reshape: allowzero=1 with both 0 and -1 in the target shape");
            if (known == 0)
            {
                if (length != 0) throw new InvalidOperationException($"Reshape: cannot infer -1 for {TensorBuffer.Format(input)} with a zero-sized target");
                dims[infer] = 0;
            }
            else
            {
                if (length % known != 0) throw new InvalidOperationException($"Reshape: {TensorBuffer.Format(input)} cannot be reshaped to [{string.Join(",", target)}]");
                dims[infer] = (int)(length / known);
            }
        }
        else if (known != length) throw new InvalidOperationException($"Reshape: {TensorBuffer.Format(input)} cannot be reshaped to [{string.Join(",", target)}]");
        return dims;
    }

    private sealed class ReshapeKernel(long[]? shapeAttr, bool allowZero) : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var x = ctx.Required(0);
            var target = shapeAttr ?? TensorUtil.Ints(ctx.Required(1));
            TensorUtil.CopyTo(ctx, 0, x, ReshapeShape(x.Shape, target, allowZero));
        }
    }

    private sealed class FlattenKernel(long axisAttr) : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var x = ctx.Required(0);
            int axis = TensorUtil.AxisInclusive(axisAttr, x.Rank);
            TensorUtil.CopyTo(ctx, 0, x, [TensorUtil.Product(x.Shape, 0, axis), TensorUtil.Product(x.Shape, axis, x.Rank)]);
        }
    }

    private sealed class SqueezeKernel(long[]? axesAttr) : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var x = ctx.Required(0);
            var axesValues = axesAttr ?? (ctx.Input(1) is { } a ? TensorUtil.Ints(a) : null);
            var drop = new bool[x.Rank];
            if (axesValues is null)
            {
                for (int d = 0; d < x.Rank; d++) drop[d] = x.Shape[d] == 1;
            }
            else
            {
                foreach (int d in TensorUtil.Axes(axesValues, x.Rank))
                {
                    if (x.Shape[d] != 1) throw new InvalidOperationException($"Squeeze: dimension {d} of {TensorBuffer.Format(x.Shape)} is not 1");
                    drop[d] = true;
                }
            }
            var shape = new List<int>(x.Rank);
            for (int d = 0; d < x.Rank; d++) if (!drop[d]) shape.Add(x.Shape[d]);
            TensorUtil.CopyTo(ctx, 0, x, [.. shape]);
        }
    }

    private sealed class UnsqueezeKernel(long[]? axesAttr) : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var x = ctx.Required(0);
            var axesValues = axesAttr ?? TensorUtil.Ints(ctx.Required(1));
            int rank = x.Rank + axesValues.Length;
            var insert = new bool[rank];
            foreach (int d in TensorUtil.Axes(axesValues, rank)) insert[d] = true;
            var shape = new int[rank];
            for (int d = 0, k = 0; d < rank; d++) shape[d] = insert[d] ? 1 : x.Shape[k++];
            TensorUtil.CopyTo(ctx, 0, x, shape);
        }
    }

    private sealed class IdentityKernel : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var x = ctx.Required(0);
            TensorUtil.CopyTo(ctx, 0, x, x.Shape);
        }
    }

    /// <summary>Inference only: training mode must be absent or a constant false, or the ratio a constant 0.</summary>
    private static string? DropoutSupport(KernelBuildContext ctx)
    {
        if (ctx.Opset < 12 || !ctx.HasInput(2)) return null;
        if (ctx.Constant(2) is { } t && t.ElementCount == 1 && t.GetDouble(0) == 0) return null;
        if (ctx.Constant(1) is { } r && r.ElementCount == 1 && r.GetDouble(0) == 0) return null;
        return "Dropout in training mode (training_mode not a constant false) draws random masks; only inference is supported";
    }

    /// <summary>Inference Dropout: the output is the input, the optional mask all ones (bool from opset 10, else the input type).</summary>
    private sealed class DropoutKernel(bool boolMask) : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var x = ctx.Required(0);
            TensorUtil.CopyTo(ctx, 0, x, x.Shape);
            if (!ctx.IsOutputUsed(1)) return;
            if (boolMask)
            {
                ctx.Output(1, DType.Bool, x.Shape).Span<byte>().Fill(1);
                return;
            }
            var m = ctx.Output(1, x.DType, x.Shape);
            switch (x.DType)
            {
                case DType.Float32: m.Span<float>().Fill(1f); break;
                case DType.Float64: m.Span<double>().Fill(1d); break;
                case DType.Float16: m.Span<Half>().Fill((Half)1f); break;
                case DType.BFloat16: m.Span<ushort>().Fill(BFloat16.FromSingle(1f)); break;
                default: throw new InvalidOperationException($"Dropout mask of type {x.DType.Name()} is not defined");
            }
        }
    }

    private sealed class ShapeKernel(long start, long end) : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var x = ctx.Required(0);
            int rank = x.Rank;
            long s = Math.Clamp(start < 0 ? start + rank : start, 0, rank);
            long e = Math.Clamp(end < 0 ? end + rank : end, 0, rank);
            int n = (int)Math.Max(0, e - s);
            var y = ctx.Output(0, DType.Int64, n).Span<long>();
            for (int i = 0; i < n; i++) y[i] = x.Shape[s + i];
        }
    }

    private sealed class SizeKernel : IKernel
    {
        public void Execute(KernelContext ctx) => ctx.Output(0, DType.Int64).Span<long>()[0] = ctx.Required(0).Length;
    }
}
