using OnDevice.Core;
using OnDevice.Runtime.Kernels.Elementwise;

namespace OnDevice.Runtime.Optimizer;

/// <summary>
/// QDQ fusions for detection heads and FPN necks (next to <see cref="FuseQdq"/>, which handles Conv/MatMul and
/// element-wise islands):
/// <list type="bullet">
/// <item>DequantizeLinear(x) and DequantizeLinear(constant w [C, M, kh, kw], per tensor or per output channel, axis 1)
/// → ConvTranspose (2-D, one group) → QuantizeLinear becomes <c>com.ondevice.QLinearConvTranspose</c> (bias turned
/// into int32 at x_scale·w_scale as for QLinearConv); a QLinearLookup reading only its output moves into it (input 9).</item>
/// </list>
/// Runs before constant folding, which would otherwise turn the DequantizeLinear of the weight into a float tensor.
/// </summary>
internal sealed class FuseQdqNeck : IGraphPass
{
    public string Name => "fuse-qdq-neck";

    public int Apply(Graph graph, OptimizerContext ctx)
    {
        int changed = 0;
        if (graph.Nodes.Any(n => n is { OpType: "ConvTranspose", IsDefaultDomain: true }))
        {
            var facts = ShapeInference.Infer(graph, ctx.Opset, new Dictionary<string, ValueFacts>());
            foreach (var q in graph.Nodes.ToList())
            {
                if (q is not { OpType: "QuantizeLinear", IsDefaultDomain: true } || !graph.Nodes.Contains(q)) continue;
                if (TryFuseConvTranspose(graph, ctx, facts, q)) changed++;
            }
        }
        foreach (var lut in graph.Nodes.ToList())
        {
            if (lut is not { OpType: "QLinearLookup" } || lut.Domain != FusedElementwiseKernels.Domain || !graph.Nodes.Contains(lut)) continue;
            if (TryFoldLookup(graph, ctx, lut)) changed++;
        }
        return changed;
    }

    private static Node? Producer(Graph g, string name) => name.Length == 0 ? null : g.Nodes.FirstOrDefault(n => n.Outputs.Contains(name));

    private static bool SingleUse(Graph g, string name) => Rewrite.UseCount(g, name) == 1 && !Rewrite.IsGraphOutput(g, name);

    private static bool Scalar(Tensor t) => t.ElementCount == 1 && t.Dims.Length <= 1;

    private static void RemoveIfUnused(Graph g, Node n)
    {
        if (n.Outputs.All(o => o.Length == 0 || Rewrite.UseCount(g, o) == 0)) g.Nodes.Remove(n);
    }

    /// <summary>A DequantizeLinear node's parts (scale and zero point constant, no block size), or null.</summary>
    private sealed record Dq(Node Node, string X, Tensor? XConst, Tensor Scale, Tensor? Zp, long Axis);

    private static Dq? ReadDq(Graph g, OptimizerContext ctx, Node? n)
    {
        if (n is not { OpType: "DequantizeLinear", IsDefaultDomain: true } || n.Inputs.Count < 2 || n.GetInt("block_size", 0) != 0) return null;
        if (ctx.ConstantOf(g, n.Inputs[1]) is not { DType: DType.Float32 or DType.Float16 } scale) return null;
        Tensor? zp = null;
        if (n.Inputs.Count > 2 && n.Inputs[2].Length > 0 && (zp = ctx.ConstantOf(g, n.Inputs[2])) is null) return null;
        return new Dq(n, n.Inputs[0], ctx.ConstantOf(g, n.Inputs[0]), scale, zp, n.GetInt("axis", 1));
    }

    private static string AddConst(Graph g, string hint, Tensor t)
    {
        var name = hint;
        for (int i = 1; g.Initializers.ContainsKey(name) || g.Nodes.Any(n => n.Outputs.Contains(name)) || g.Inputs.Any(v => v.Name == name); i++) name = $"{hint}_{i}";
        g.Initializers.Add(name, t.Clone(name));
        return name;
    }

    /// <summary>The scalar output parameters of a QuantizeLinear (scale, zero point name or null, type), or null.</summary>
    private static (Tensor Scale, Tensor? Zp, DType Type)? ReadQ(Graph g, OptimizerContext ctx, Node q)
    {
        if (q.Inputs.Count < 2 || q.Outputs.Count != 1 || q.Outputs[0].Length == 0 || q.GetInt("block_size", 0) != 0) return null;
        if (ctx.ConstantOf(g, q.Inputs[1]) is not { DType: DType.Float32 or DType.Float16 } ys || !Scalar(ys)) return null;
        Tensor? yzp = q.Inputs.Count > 2 && q.Inputs[2].Length > 0 ? ctx.ConstantOf(g, q.Inputs[2]) : null;
        if (q.Inputs.Count > 2 && q.Inputs[2].Length > 0 && (yzp is null || !Scalar(yzp))) return null;
        var yType = yzp?.DType ?? (DType)q.GetInt("output_dtype", (long)DType.UInt8);
        if (yType is not (DType.UInt8 or DType.Int8)) return null;
        return (ys, yzp, yType);
    }

    /// <summary>DequantizeLinear(x), DequantizeLinear(constant w) → ConvTranspose → QuantizeLinear → QLinearConvTranspose.</summary>
    private static bool TryFuseConvTranspose(Graph g, OptimizerContext ctx, ShapeInferenceResult facts, Node q)
    {
        if (ReadQ(g, ctx, q) is not var (_, yzp, yType)) return false;
        if (!SingleUse(g, q.Inputs[0])) return false;
        var op = Producer(g, q.Inputs[0]);
        if (op is not { OpType: "ConvTranspose", IsDefaultDomain: true } || op.Outputs.Count != 1 || op.Inputs.Count < 2) return false;
        if (op.GetInt("group", 1) != 1 || op.GetInts("output_shape") is not null || op.GetInts("output_padding")?.Any(v => v != 0) == true) return false;
        if (op.GetString("auto_pad", "NOTSET") is not ("NOTSET" or "" or "VALID")) return false;
        var x = ReadDq(g, ctx, Producer(g, op.Inputs[0]));
        var w = ReadDq(g, ctx, Producer(g, op.Inputs[1]));
        if (x is null || w is null || w.XConst is not { Dims.Length: 4 } wc || x.XConst is not null) return false;
        if (!Scalar(x.Scale) || (x.Zp is not null && !Scalar(x.Zp))) return false;
        var xType = x.Zp?.DType ?? facts.Get(x.X)?.DType;
        if (xType is not (DType.UInt8 or DType.Int8) || wc.DType is not (DType.UInt8 or DType.Int8)) return false;
        long channels = wc.Dims[1];
        bool perTensor = Scalar(w.Scale);
        long wAxis = w.Axis < 0 ? w.Axis + 4 : w.Axis;
        if (!perTensor && !(w.Scale.Dims.Length == 1 && w.Scale.ElementCount == channels && wAxis == 1)) return false;
        if (w.Zp is not null && (w.Zp.ElementCount != w.Scale.ElementCount || w.Zp.DType != wc.DType)) return false;

        string label = op.Name.Length > 0 ? op.Name : op.Outputs[0];
        string zx = x.Zp is null ? AddConst(g, label + "_x_zero_point", Tensor.FromBytes(xType.Value, [], new byte[1])) : x.Node.Inputs[2];
        string zw = w.Zp is null ? AddConst(g, label + "_w_zero_point", Tensor.FromBytes(wc.DType, w.Scale.Dims, new byte[w.Scale.ElementCount])) : w.Node.Inputs[2];
        string zy = yzp is null ? AddConst(g, label + "_y_zero_point", Tensor.FromBytes(yType, [], new byte[1])) : q.Inputs[2];
        var inputs = new List<string> { x.X, x.Node.Inputs[1], zx, w.X, w.Node.Inputs[1], zw, q.Inputs[1], zy };
        Node? biasDq = null;
        if (op.Inputs.Count > 2 && op.Inputs[2].Length > 0)
        {
            var bias = BiasValues(g, ctx, op.Inputs[2], out biasDq);
            if (bias is null || bias.Length != channels) return false;
            double sx = (float)x.Scale.GetDouble(0);
            var ints = new int[bias.Length];
            for (int i = 0; i < ints.Length; i++)
            {
                double s = sx * w.Scale.GetDouble(perTensor ? 0 : i);
                ints[i] = s == 0 ? 0 : (int)Math.Clamp(Math.Round(bias[i] / s), int.MinValue, int.MaxValue);
            }
            inputs.Add(AddConst(g, label + "_bias_int32", Tensor.FromArray<int>(ints, [ints.Length])));
        }
        var fused = new Node("QLinearConvTranspose", inputs, [q.Outputs[0]], label + "+qdq", FusedElementwiseKernels.Domain);
        foreach (var a in op.Attributes.Values) fused.Attributes.Add(a.Name, a);
        g.Nodes[g.Nodes.IndexOf(op)] = fused;
        g.Nodes.Remove(q);
        RemoveIfUnused(g, x.Node);
        RemoveIfUnused(g, w.Node);
        if (biasDq is not null) RemoveIfUnused(g, biasDq);
        return true;
    }

    /// <summary>Float bias values from a float constant or a DequantizeLinear of a constant.</summary>
    private static double[]? BiasValues(Graph g, OptimizerContext ctx, string name, out Node? dqNode)
    {
        dqNode = null;
        if (ctx.ConstantOf(g, name) is { } t) return t.DType.IsFloatingPoint() ? Enumerable.Range(0, (int)t.ElementCount).Select(i => t.GetDouble(i)).ToArray() : null;
        var dq = ReadDq(g, ctx, Producer(g, name));
        if (dq?.XConst is not { } xc) return null;
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

    /// <summary>QLinearConvTranspose (single reader) → QLinearLookup: the table becomes its input 9.</summary>
    private static bool TryFoldLookup(Graph g, OptimizerContext ctx, Node lut)
    {
        if (lut.Inputs.Count != 2 || ctx.ConstantOf(g, lut.Inputs[1]) is not { } table) return false;
        var op = Producer(g, lut.Inputs[0]);
        if (op is not { OpType: "QLinearConvTranspose" } || op.Domain != FusedElementwiseKernels.Domain || op.Inputs.Count is < 8 or > 9) return false;
        if (!SingleUse(g, lut.Inputs[0]) || ctx.ConstantOf(g, op.Inputs[7]) is not { } yzp || yzp.DType != table.DType) return false;
        if (ctx.ConstantOf(g, op.Inputs[3]) is not { Dims.Length: 4 } w) return false;
        long rows = table.ElementCount / 256;
        if (table.ElementCount % 256 != 0 || (rows != 1 && rows != w.Dims[1])) return false;
        if (op.Inputs.Count == 8) op.Inputs.Add("");
        op.Inputs.Add(lut.Inputs[1]);
        op.Outputs[0] = lut.Outputs[0];
        g.Nodes.Remove(lut);
        return true;
    }
}
