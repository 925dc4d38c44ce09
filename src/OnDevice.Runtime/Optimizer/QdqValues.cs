using OnDevice.Core;
using static OnDevice.Runtime.Optimizer.Rewrite;

namespace OnDevice.Runtime.Optimizer;

/// <summary>A DequantizeLinear node's parts: quantized input, scale, zero point (constants where known), axis, block size.</summary>
internal sealed record Dq(Node Node, string X, Tensor? XConst, Tensor Scale, Tensor? Zp, long Axis, long BlockSize);

/// <summary>Reading DequantizeLinear nodes and constant biases, shared by the QDQ fusion passes.</summary>
internal static class QdqValues
{
    /// <summary>The parts of <paramref name="n"/> when it is a DequantizeLinear with a constant float scale (and constant zero point, if any).</summary>
    public static Dq? ReadDq(Graph g, OptimizerContext ctx, Node? n)
    {
        if (n is not { OpType: "DequantizeLinear", IsDefaultDomain: true } || n.Inputs.Count < 2) return null;
        if (ctx.ConstantOf(g, n.Inputs[1]) is not { DType: DType.Float32 or DType.Float16 } scale) return null;
        Tensor? zp = null;
        if (n.Inputs.Count > 2 && n.Inputs[2].Length > 0 && (zp = ctx.ConstantOf(g, n.Inputs[2])) is null) return null;
        return new Dq(n, n.Inputs[0], ctx.ConstantOf(g, n.Inputs[0]), scale, zp, n.GetInt("axis", 1), n.GetInt("block_size", 0));
    }

    /// <summary>
    /// Float bias values from a float constant or a per-tensor / per-element DequantizeLinear of a constant (then
    /// <paramref name="dqNode"/> is that node, for removal once unused); null otherwise.
    /// </summary>
    public static double[]? BiasValues(Graph g, OptimizerContext ctx, string name, out Node? dqNode)
    {
        dqNode = null;
        if (ctx.ConstantOf(g, name) is { } t) return t.DType.IsFloatingPoint() ? Enumerable.Range(0, (int)t.ElementCount).Select(i => t.GetDouble(i)).ToArray() : null;
        var dq = ReadDq(g, ctx, Producer(g, name));
        if (dq?.XConst is not { } xc || dq.BlockSize != 0) return null;
        int n = (int)xc.ElementCount;
        if (!Scalar(dq.Scale) && dq.Scale.ElementCount != n) return null;
        var r = new double[n];
        for (int i = 0; i < n; i++)
        {
            int si = Scalar(dq.Scale) ? 0 : i;
            double z = dq.Zp is null ? 0 : dq.Zp.GetDouble(si);
            r[i] = (xc.GetDouble(i) - z) * dq.Scale.GetDouble(si);
        }
        dqNode = dq.Node;
        return r;
    }

    /// <summary><see cref="BiasValues(Graph, OptimizerContext, string, out Node?)"/> without the node.</summary>
    public static double[]? BiasValues(Graph g, OptimizerContext ctx, string name) => BiasValues(g, ctx, name, out _);

    /// <summary>
    /// When a BatchNormalization (inference mode, constant float statistics of <paramref name="scale"/>.Length channels)
    /// is the only reader of <paramref name="output"/>, folds it into the per-channel <paramref name="scale"/> and
    /// <paramref name="bias"/> of y = acc·scale + bias (changed in place) and returns it (the caller removes it); else null.
    /// </summary>
    public static Node? FoldFollowingBatchNorm(Graph g, OptimizerContext ctx, string output, double[] scale, double[] bias)
    {
        int m = scale.Length;
        if (IsGraphOutput(g, output) || UseCount(g, output) != 1) return null;
        if (g.Nodes.FirstOrDefault(n => n.Inputs.Contains(output)) is not { OpType: "BatchNormalization", IsDefaultDomain: true } b
            || b.Inputs.Count < 5 || b.Inputs[0] != output || b.GetInt("training_mode", 0) != 0
            || b.Outputs.Skip(1).Any(o => o.Length > 0 && UseCount(g, o) > 0)) return null;
        var stats = b.Inputs.Skip(1).Take(4).Select(i => ctx.ConstantOf(g, i)).ToArray();
        if (!stats.All(t => t is { DType: DType.Float32 } && t.ElementCount == m)) return null;
        float eps = b.GetFloat("epsilon", 1e-5f);
        for (int o = 0; o < m; o++)
        {
            double f = stats[0]!.GetDouble(o) / Math.Sqrt(stats[3]!.GetDouble(o) + eps);
            scale[o] *= f;
            bias[o] = (bias[o] - stats[2]!.GetDouble(o)) * f + stats[1]!.GetDouble(o);
        }
        return b;
    }
}
