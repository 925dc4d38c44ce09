using OnDevice.Core;
using static OnDevice.Runtime.Optimizer.Rewrite;

namespace OnDevice.Runtime.Optimizer;

/// <summary>
/// A QuantizeLinear whose only readers are DequantizeLinear nodes with the same scale and zero point, and that
/// <see cref="FuseQdq"/> left in place (the values around it stay float: mixed-precision models keep sensitive
/// activations float), is a fake quantization of a float tensor. The pair becomes the element-wise chain
/// Div(x, s) → Round → Clip(min − zp, max − zp) → Mul(s), which <see cref="FuseElementwiseChains"/> and
/// <see cref="FuseConvEpilogue"/> then run inside the neighbouring float kernels instead of two extra passes over
/// memory and a byte tensor. Same values as the pair for finite inputs: QuantizeLinear computes
/// clamp(round-half-even(x / s) + zp) and DequantizeLinear (q − zp)·s, and (r + zp) − zp = r exactly for the
/// integers involved. Runs last in each round, after every integer fusion, so pairs those can use are never touched.
/// </summary>
internal sealed class FoldQdqPairs : IGraphPass
{
    public string Name => "fold-qdq-pairs";

    public int Apply(Graph graph, OptimizerContext ctx)
    {
        if (ctx.Opset < 11 || !graph.Nodes.Any(n => n is { OpType: "QuantizeLinear", IsDefaultDomain: true })) return 0;
        var facts = ShapeInference.Infer(graph, ctx.Opset, new Dictionary<string, ValueFacts>());
        int changed = 0;
        foreach (var q in graph.Nodes.ToList())
            if (q is { OpType: "QuantizeLinear", IsDefaultDomain: true } && TryFold(graph, ctx, facts, q)) changed++;
        return changed;
    }

    private static bool TryFold(Graph g, OptimizerContext ctx, ShapeInferenceResult facts, Node q)
    {
        if (q.Inputs.Count < 2 || q.Outputs.Count != 1 || q.Outputs[0].Length == 0 || Rewrite.IsGraphOutput(g, q.Outputs[0])) return false;
        if (q.GetInt("block_size", 0) != 0 || facts.Get(q.Inputs[0]) is not { DType: DType.Float32 }) return false;
        if (ReadScale(g, ctx, q) is not var (scale, zp, type)) return false;
        if (type is not (DType.UInt8 or DType.Int8)) return false;
        var readers = g.Nodes.Where(n => n.Inputs.Contains(q.Outputs[0]) || GraphAlgorithms.ImplicitInputs(n).Contains(q.Outputs[0])).ToList();
        if (readers.Count == 0) return false;
        foreach (var r in readers)
        {
            if (r is not { OpType: "DequantizeLinear", IsDefaultDomain: true } || r.Inputs[0] != q.Outputs[0] || r.Outputs.Count != 1) return false;
            if (r.Inputs.Skip(1).Contains(q.Outputs[0]) || r.GetInt("block_size", 0) != 0) return false;
            if (ReadScale(g, ctx, r) is not var (s2, z2, t2)) return false;
            if (t2 == DType.Undefined) t2 = type; // no zero point: 0 in the type of its input, which is this QuantizeLinear's output
            if (BitConverter.SingleToInt32Bits(s2) != BitConverter.SingleToInt32Bits(scale) || z2 != zp || t2 != type) return false;
            if (facts.Get(r.Outputs[0]) is { DType: not DType.Float32 }) return false;
        }
        if (!float.IsFinite(scale) || scale == 0) return false;
        int min = type == DType.Int8 ? -128 : 0, max = type == DType.Int8 ? 127 : 255;

        string label = q.Name.Length > 0 ? q.Name : q.Outputs[0];
        string sName = AddConst(g, label + "_fq_scale", Tensor.Scalar(scale));
        string loName = AddConst(g, label + "_fq_min", Tensor.Scalar((float)(min - zp)));
        string hiName = AddConst(g, label + "_fq_max", Tensor.Scalar((float)(max - zp)));
        string divided = NewName(g, label + "_fq_div"), rounded = NewName(g, label + "_fq_round"), clipped = NewName(g, label + "_fq_clip");
        // All readers read one result: the first reader's output name is kept, the others are renamed to it.
        string output = readers[0].Outputs[0];
        var chain = new[]
        {
            new Node("Div", [q.Inputs[0], sName], [divided], label + "_fq_div"),
            new Node("Round", [divided], [rounded], label + "_fq_round"),
            new Node("Clip", [rounded, loName, hiName], [clipped], label + "_fq_clip"),
            new Node("Mul", [clipped, sName], [output], label + "_fq_mul"),
        };
        int at = g.Nodes.IndexOf(q);
        g.Nodes.RemoveAt(at);
        g.Nodes.InsertRange(at, chain);
        foreach (var r in readers)
        {
            g.Nodes.Remove(r);
            if (r.Outputs[0] == output) continue;
            if (Rewrite.IsGraphOutput(g, r.Outputs[0]))
            {
                // Keep a graph output's own name: give it its own Mul.
                g.Nodes.Insert(g.Nodes.IndexOf(chain[^1]) + 1, new Node("Mul", [clipped, sName], [r.Outputs[0]], label + "_fq_mul_" + r.Outputs[0]));
                continue;
            }
            Rewrite.ReplaceUses(g, r.Outputs[0], output);
        }
        return true;
    }

    /// <summary>Scalar float scale, scalar zero point (0 when absent) and the quantized type, when all are constants.</summary>
    private static (float Scale, int Zp, DType Type)? ReadScale(Graph g, OptimizerContext ctx, Node n)
    {
        if (ctx.ConstantOf(g, n.Inputs[1]) is not { DType: DType.Float32, ElementCount: 1 } s || s.Dims.Length > 1) return null;
        Tensor? z = n.Inputs.Count > 2 && n.Inputs[2].Length > 0 ? ctx.ConstantOf(g, n.Inputs[2]) : null;
        if (n.Inputs.Count > 2 && n.Inputs[2].Length > 0 && (z is null || z.ElementCount != 1 || z.Dims.Length > 1)) return null;
        DType type = z?.DType ?? (n.OpType == "QuantizeLinear" ? (DType)n.GetInt("output_dtype", (long)DType.UInt8) : DType.Undefined);
        if (n.OpType == "DequantizeLinear" && z is null) type = DType.Undefined; // the input's type decides; only accepted with an explicit zero point
        return ((float)s.GetDouble(0), z is null ? 0 : (int)z.GetDouble(0), type);
    }

}
