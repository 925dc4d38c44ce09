using OnDevice.Core;
using static OnDevice.Runtime.Optimizer.Rewrite;
using static OnDevice.Runtime.Optimizer.QdqValues;

namespace OnDevice.Runtime.Optimizer;

/// <summary>
/// Weight-only 4-bit Gemm: Gemm(A, DequantizeLinear(constant int4/uint4 B), C) with transA = 0, B [K, N] (transB = 0)
/// or [N, K] (transB = 1) blocked along K, per output column or per tensor, becomes <c>com.microsoft.MatMulNBits</c>
/// over the same 4-bit values (re-laid out (N, blocks, bs/2) once, float scales and zero points (N, blocks), alpha
/// folded into the scales, beta·C as its bias), so the float weight is never materialized — the Gemm counterpart of
/// <see cref="FuseQdq"/>'s weight-only MatMul rewrite. C must be a constant of N values or one value (broadcast over
/// rows); anything else stays as written (and is folded to float). Runs before constant folding.
/// </summary>
internal sealed class FuseBlockQuantGemm : IGraphPass
{
    public string Name => "fuse-block-quant-gemm";

    public int Apply(Graph graph, OptimizerContext ctx)
    {
        if (!graph.Nodes.Any(n => n is { OpType: "DequantizeLinear", IsDefaultDomain: true })) return 0;
        int changed = 0;
        foreach (var gemm in graph.Nodes.ToList())
            if (gemm is { OpType: "Gemm", IsDefaultDomain: true } && graph.Nodes.Contains(gemm) && TryFuse(graph, ctx, gemm)) changed++;
        return changed;
    }

    private static bool TryFuse(Graph g, OptimizerContext ctx, Node gemm)
    {
        if (gemm.Inputs.Count < 2 || gemm.Outputs.Count != 1 || gemm.GetInt("transA", 0) != 0 || !SingleUse(g, gemm.Inputs[1])) return false;
        var w = ReadDq(g, ctx, Producer(g, gemm.Inputs[1]));
        if (w?.XConst is not { DType: DType.Int4 or DType.UInt4, Dims.Length: 2 } wc || w.Scale.DType != DType.Float32) return false;
        bool transB = gemm.GetInt("transB", 0) != 0;
        int k = checked((int)wc.Dims[transB ? 1 : 0]), n = checked((int)wc.Dims[transB ? 0 : 1]);
        long axis = w.Axis < 0 ? w.Axis + 2 : w.Axis;
        long kAxis = transB ? 1 : 0, nAxis = 1 - kAxis;
        Func<int, int, long> element = transB ? (kk, j) => (long)j * k + kk : (kk, j) => (long)kk * n + j;
        Func<int, int, long> scaleAt;
        int bs;
        if (w.BlockSize > 0)
        {
            if (axis != kAxis || w.BlockSize < 16 || w.BlockSize > 1024 || (w.BlockSize & (w.BlockSize - 1)) != 0) return false;
            int b = (int)w.BlockSize, nb = (k + b - 1) / b;
            long[] expect = transB ? [n, nb] : [nb, n];
            if (!w.Scale.Dims.AsSpan().SequenceEqual(expect)) return false;
            scaleAt = transB ? (kk, j) => (long)j * nb + kk / b : (kk, j) => (long)(kk / b) * n + j;
            bs = b;
        }
        else if (Scalar(w.Scale))
        {
            scaleAt = (_, _) => 0;
            bs = BlockFor(k);
        }
        else if (axis == nAxis && w.Scale.Dims.Length == 1 && w.Scale.ElementCount == n)
        {
            scaleAt = (_, j) => j;
            bs = BlockFor(k);
        }
        else return false;
        if (w.Zp is not null && (w.Zp.ElementCount != w.Scale.ElementCount || w.Zp.DType != wc.DType)) return false;

        float alpha = gemm.GetFloat("alpha", 1f), beta = gemm.GetFloat("beta", 1f);
        float[]? bias = null;
        if (gemm.Inputs.Count > 2 && gemm.Inputs[2].Length > 0)
        {
            if (ctx.ConstantOf(g, gemm.Inputs[2]) is not { } c || !c.DType.IsFloatingPoint() || !(c.ElementCount == n && c.Dims.Length <= 2 && c.Dims[^1] == n || c.ElementCount == 1)) return false;
            bias = Enumerable.Range(0, n).Select(j => beta * (float)c.GetDouble(c.ElementCount == 1 ? 0 : j)).ToArray();
        }

        int blocks = (k + bs - 1) / bs;
        var (packed, scales, zps) = PackInt4Columns(w, n, k, bs, (j, kk) => element(kk, j), (j, kk) => scaleAt(kk, j), _ => alpha);
        string label = gemm.Name.Length > 0 ? gemm.Name : gemm.Outputs[0];
        var inputs = new List<string>
        {
            gemm.Inputs[0],
            AddConst(g, label + "_B_nbits", Tensor.FromBytes(DType.UInt8, [n, blocks, bs / 2], packed)),
            AddConst(g, label + "_scales", Tensor.FromArray<float>(scales, [n, blocks])),
            AddConst(g, label + "_zero_points", Tensor.FromArray<float>(zps, [n, blocks])),
        };
        if (bias is not null) inputs.AddRange(["", AddConst(g, label + "_bias", Tensor.FromArray<float>(bias, [n]))]);
        var node = new Node("MatMulNBits", inputs, [gemm.Outputs[0]], label + "+dq", "com.microsoft");
        node.With(Core.Attribute.Of("K", (long)k)).With(Core.Attribute.Of("N", (long)n)).With(Core.Attribute.Of("bits", 4L))
            .With(Core.Attribute.Of("block_size", (long)bs)).With(Core.Attribute.Of("accuracy_level", 0L));
        g.Nodes[g.Nodes.IndexOf(gemm)] = node;
        RemoveIfUnused(g, w.Node);
        return true;
    }
}
