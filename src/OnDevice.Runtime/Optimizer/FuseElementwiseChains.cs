using OnDevice.Core;
using OnDevice.Runtime.Kernels.Elementwise;

namespace OnDevice.Runtime.Optimizer;

/// <summary>
/// Finds regions of float32 element-wise nodes that read one root value (plus scalar or per-channel constants)
/// and produce one value used outside, and replaces each region by a single <c>com.ondevice.FusedElementwise</c>
/// node whose body holds the original nodes. One pass over memory instead of one per node.
/// </summary>
internal sealed class FuseElementwiseChains : IGraphPass
{
    public string Name => "fuse-elementwise";

    public int Apply(Graph graph, OptimizerContext ctx)
    {
        var facts = ShapeInference.Infer(graph, ctx.Opset, new Dictionary<string, ValueFacts>());
        var order = GraphAlgorithms.TopologicalOrder(graph).ToList();
        var position = new Dictionary<Node, int>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < order.Count; i++) position[order[i]] = i;
        var consumers = new Dictionary<string, List<Node>>(StringComparer.Ordinal);
        foreach (var n in order)
            foreach (var i in n.Inputs.Concat(GraphAlgorithms.ImplicitInputs(n)).Where(i => i.Length > 0).Distinct())
            {
                if (!consumers.TryGetValue(i, out var l)) consumers[i] = l = [];
                l.Add(n);
            }
        var outputs = new HashSet<string>(graph.Outputs.Select(o => o.Name), StringComparer.Ordinal);
        var used = new HashSet<Node>(ReferenceEqualityComparer.Instance);
        int fused = 0;

        var roots = graph.Inputs.Select(i => i.Name).Concat(order.SelectMany(n => n.Outputs)).Where(v => v.Length > 0).ToList();
        foreach (var root in roots)
        {
            if (facts.Get(root) is not { DType: DType.Float32, Shape: { } rootShape }) continue;
            if (graph.Initializers.ContainsKey(root)) continue;
            int rank = rootShape.Rank;
            // Grow the region: nodes whose inputs are region values or acceptable constants.
            var region = new List<Node>();
            var values = new HashSet<string>(StringComparer.Ordinal) { root };
            var frontier = new Queue<string>([root]);
            var candidates = new SortedSet<int>();
            void Offer(string v)
            {
                if (consumers.TryGetValue(v, out var cs)) foreach (var c in cs) if (!used.Contains(c)) candidates.Add(position[c]);
            }
            Offer(root);
            while (candidates.Count > 0)
            {
                int p = candidates.Min;
                candidates.Remove(p);
                var n = order[p];
                if (region.Contains(n) || !Eligible(n, graph, values, rank, rootShape, facts)) continue;
                region.Add(n);
                values.Add(n.Outputs[0]);
                Offer(n.Outputs[0]);
            }
            region.Sort((a, b) => position[a].CompareTo(position[b]));
            // Shrink from the end until exactly one region value escapes (read outside or a graph output).
            for (int k = region.Count; k >= 2; k--)
            {
                var members = region.Take(k).ToHashSet<Node>(ReferenceEqualityComparer.Instance);
                var escaping = members.Select(m => m.Outputs[0])
                    .Where(v => outputs.Contains(v) || (consumers.TryGetValue(v, out var cs) && cs.Any(c => !members.Contains(c))))
                    .ToList();
                if (escaping.Count != 1 || escaping[0] != region[k - 1].Outputs[0]) continue;
                if (members.Any(m => !ContributesTo(m, escaping[0], members))) continue;
                Replace(graph, root, rank, region.Take(k).ToList(), ctx.Opset);
                foreach (var m in members) used.Add(m);
                fused++;
                break;
            }
        }
        return fused;
    }

    private static bool ContributesTo(Node m, string target, HashSet<Node> members)
    {
        var stack = new Stack<string>([m.Outputs[0]]);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        while (stack.Count > 0)
        {
            var v = stack.Pop();
            if (v == target) return true;
            if (!seen.Add(v)) continue;
            foreach (var c in members) if (c.Inputs.Contains(v)) stack.Push(c.Outputs[0]);
        }
        return false;
    }

    private static bool Eligible(Node n, Graph graph, HashSet<string> values, int rank, Shape rootShape, ShapeInferenceResult facts)
    {
        if (!n.IsDefaultDomain || !ElementwiseProgram.SupportedOps.Contains(n.OpType) || n.Outputs.Count != 1 || n.Outputs[0].Length == 0) return false;
        if (facts.Get(n.Outputs[0]) is not { DType: DType.Float32, Shape: { } outShape } || !outShape.Equals(rootShape)) return false;
        bool readsRegion = false;
        for (int i = 0; i < n.Inputs.Count; i++)
        {
            var v = n.Inputs[i];
            if (v.Length == 0) continue;
            if (values.Contains(v)) { readsRegion = true; continue; }
            if (!graph.Initializers.TryGetValue(v, out var t) || t.DType != DType.Float32) return false;
            if (graph.Inputs.Any(g => g.Name == v)) return false; // overridable default, not a constant
            var form = ElementwiseProgram.ChannelForm(t.Dims, rank);
            if (form is null) return false;
            if (form == true && (rank < 2 || !rootShape[1].IsKnown || rootShape[1].Value != t.ElementCount)) return false;
            if (n.OpType == "Clip" && i > 0 && t.ElementCount != 1) return false;
        }
        return readsRegion && (n.OpType != "Clip" || n.Inputs.Count == 0 || values.Contains(n.Inputs[0]));
    }

    private static void Replace(Graph graph, string root, int rank, List<Node> members, long opset)
    {
        var body = new Graph { Name = $"fused_{members[^1].Outputs[0]}" };
        body.Inputs.Add(ValueInfo.Tensor(root, DType.Float32, null));
        foreach (var m in members)
        {
            body.Nodes.Add(m);
            foreach (var i in m.Inputs)
                if (i.Length > 0 && graph.Initializers.TryGetValue(i, out var t) && !body.Initializers.ContainsKey(i)) body.Initializers.Add(i, t);
        }
        var output = members[^1].Outputs[0];
        body.Outputs.Add(ValueInfo.Tensor(output, DType.Float32, null));
        var fusedNode = new Node("FusedElementwise", [root], [output], $"fused:{string.Join("+", members.Select(m => m.OpType))}:{output}", FusedElementwiseKernels.Domain)
            .With(Core.Attribute.Of("body", body))
            .With(Core.Attribute.Of("rank", (long)rank))
            .With(Core.Attribute.Of("opset", opset));
        int at = graph.Nodes.IndexOf(members[0]);
        foreach (var m in members) graph.Nodes.Remove(m);
        graph.Nodes.Insert(Math.Min(at, graph.Nodes.Count), fusedNode);
    }
}
