using OnDevice.Core;

namespace OnDevice.Runtime.Optimizer;

/// <summary>
/// Flatten(x, axis = rank − 1) → Softmax over the last axis of the 2-D result → Reshape back to Shape(x) (the
/// opset-11 spelling of a last-axis softmax that converters and quantizers write) becomes one Softmax(x, axis = −1):
/// the same rows, so the same values, without the two copies of the tensor that the Flatten and the Reshape make
/// while Shape(x) keeps x alive.
/// </summary>
internal sealed class FuseFlattenSoftmax : IGraphPass
{
    public string Name => "fuse-flatten-softmax";

    public int Apply(Graph graph, OptimizerContext ctx)
    {
        if (!graph.Nodes.Any(n => n is { OpType: "Flatten", IsDefaultDomain: true })) return 0;
        var facts = ShapeInference.Infer(graph, ctx.Opset, new Dictionary<string, ValueFacts>());
        int changed = 0;
        foreach (var f in graph.Nodes.ToList())
            if (f is { OpType: "Flatten", IsDefaultDomain: true } && graph.Nodes.Contains(f) && TryFuse(graph, ctx, facts, f)) changed++;
        return changed;
    }

    private static Node? OnlyReader(Graph g, string value)
    {
        if (Rewrite.IsGraphOutput(g, value) || Rewrite.UseCount(g, value) != 1) return null;
        return g.Nodes.FirstOrDefault(n => n.Inputs.Contains(value));
    }

    private static bool TryFuse(Graph g, OptimizerContext ctx, ShapeInferenceResult facts, Node f)
    {
        if (f.Inputs.Count != 1 || f.Outputs.Count != 1) return false;
        string x = f.Inputs[0];
        if (facts.Get(x) is not { DType: DType.Float32 or DType.Float16 or DType.Float64, Shape: { Rank: >= 2 } shape }) return false;
        int r = shape.Rank;
        long axis = f.GetInt("axis", 1);
        if (axis < 0) axis += r;
        if (axis != r - 1) return false;
        if (OnlyReader(g, f.Outputs[0]) is not { OpType: "Softmax", IsDefaultDomain: true } s || s.Inputs.Count != 1 || s.Inputs[0] != f.Outputs[0]) return false;
        long sAxis = s.GetInt("axis", ctx.Opset >= 13 ? -1 : 1);
        if (sAxis is not (1 or -1)) return false; // the 2-D result's last axis
        if (OnlyReader(g, s.Outputs[0]) is not { OpType: "Reshape", IsDefaultDomain: true } rs || rs.Inputs.Count < 2 || rs.Inputs[0] != s.Outputs[0]) return false;
        // The target shape is x's own: Shape(x) (whole shape), or a constant equal to x's known dimensions.
        var shapeNode = g.Nodes.FirstOrDefault(n => n.Outputs.Contains(rs.Inputs[1]));
        bool sameShape = shapeNode is { OpType: "Shape", IsDefaultDomain: true } && shapeNode.Inputs[0] == x
            && !shapeNode.Attributes.ContainsKey("start") && !shapeNode.Attributes.ContainsKey("end");
        if (!sameShape && ctx.ConstantOf(g, rs.Inputs[1]) is { } target)
        {
            var t = target.ToInt64Array();
            sameShape = t.Length == r && Enumerable.Range(0, r).All(i => shape[i].IsKnown && t[i] == shape[i].Value);
        }
        if (!sameShape) return false;
        var softmax = new Node("Softmax", [x], [rs.Outputs[0]], s.Name.Length > 0 ? s.Name : rs.Outputs[0]);
        softmax.With(Core.Attribute.Of("axis", (long)(r - 1)));
        g.Nodes[g.Nodes.IndexOf(rs)] = softmax;
        g.Nodes.Remove(f);
        g.Nodes.Remove(s);
        if (shapeNode is { OpType: "Shape" } && Rewrite.UseCount(g, shapeNode.Outputs[0]) == 0 && !Rewrite.IsGraphOutput(g, shapeNode.Outputs[0])) g.Nodes.Remove(shapeNode);
        return true;
    }
}
