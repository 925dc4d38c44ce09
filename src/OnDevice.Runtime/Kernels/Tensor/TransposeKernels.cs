using OnDevice.Core;

namespace OnDevice.Runtime.Kernels.Tensors;

/// <summary>Axis permutations: Transpose, and DepthToSpace / SpaceToDepth as transposes of 6-D views.</summary>
internal static class TransposeKernels
{
    public static void Register(KernelRegistry r)
    {
        r.Add("Transpose", 1, TypeSets.All, ctx => new TransposeKernel(ctx.Node.GetInts("perm")));
        r.Add("DepthToSpace", 1, TypeSets.All, ctx => new SpaceDepthKernel(toDepth: false, ctx.Node.GetInt("blocksize", 0),
            crd: ctx.Opset >= 11 && ctx.Node.GetString("mode", "DCR") == "CRD"), supports: SpaceDepthSupport);
        r.Add("SpaceToDepth", 1, TypeSets.All, ctx => new SpaceDepthKernel(toDepth: true, ctx.Node.GetInt("blocksize", 0), crd: false), supports: SpaceDepthSupport);
    }

    private static string? SpaceDepthSupport(KernelBuildContext ctx)
    {
        if (ctx.Node.GetInt("blocksize", 0) < 1) return $"{ctx.Node.OpType} needs a positive blocksize";
        var mode = ctx.Node.GetString("mode", "DCR");
        return mode is "DCR" or "CRD" ? null : $"DepthToSpace mode '{mode}' is not DCR or CRD";
    }

    private sealed class TransposeKernel(long[]? permAttr) : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var x = ctx.Required(0);
            int rank = x.Rank;
            var perm = permAttr is null ? Enumerable.Range(0, rank).Reverse().ToArray() : permAttr.Select(p => TensorUtil.Axis(p, rank, "perm entry")).ToArray();
            if (perm.Length != rank) throw new InvalidOperationException($"Transpose: perm has {perm.Length} entries for input {TensorBuffer.Format(x.Shape)}");
            var shape = perm.Select(p => x.Shape[p]).ToArray();
            var y = ctx.Output(0, x.DType, shape);
            Transposer.Run(x.Memory, y.Memory, x.Shape, perm, TensorUtil.ElementBytes(x.DType), ctx.Threads);
        }
    }

    private sealed class SpaceDepthKernel(bool toDepth, long blocksize, bool crd) : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var x = ctx.Required(0);
            if (x.Rank != 4) throw new InvalidOperationException($"{ctx.Node.OpType} needs a 4-D input, got {TensorBuffer.Format(x.Shape)}");
            int b = TensorUtil.Dim(blocksize, "blocksize");
            int n = x.Shape[0], c = x.Shape[1], h = x.Shape[2], w = x.Shape[3];
            int[] view, perm, outShape;
            if (toDepth)
            {
                if (h % b != 0 || w % b != 0) throw new InvalidOperationException($"SpaceToDepth: {TensorBuffer.Format(x.Shape)} is not divisible by blocksize {b}");
                view = [n, c, h / b, b, w / b, b];
                perm = [0, 3, 5, 1, 2, 4];
                outShape = [n, c * b * b, h / b, w / b];
            }
            else
            {
                if (c % (b * b) != 0) throw new InvalidOperationException($"DepthToSpace: channels {c} are not divisible by blocksize² {b * b}");
                int cc = c / (b * b);
                view = crd ? [n, cc, b, b, h, w] : [n, b, b, cc, h, w];
                perm = crd ? [0, 1, 4, 2, 5, 3] : [0, 3, 4, 1, 5, 2];
                outShape = [n, cc, h * b, w * b];
            }
            var y = ctx.Output(0, x.DType, outShape);
            Transposer.Run(x.Memory, y.Memory, view, perm, TensorUtil.ElementBytes(x.DType), ctx.Threads);
        }
    }
}
