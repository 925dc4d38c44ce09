using OnDevice.Core;

namespace OnDevice.Compression.Quantization;

/// <summary>Where a static QDQ model rounds the output of a quantized layer.</summary>
public enum QdqPlacement
{
    /// <summary>On the layer's own output (a Q/DQ pair on every quantized op's input and output).</summary>
    Ops,

    /// <summary>
    /// After the chain of element-wise ops that follows the layer (per-channel or scalar constant Mul/Add/Sub/Div,
    /// Relu, Clip, HardSwish, HardSigmoid, Sigmoid, LeakyRelu, x·f(x) such as the decomposed hardswish or swish), each
    /// with a single reader: one rounding point per layer, on the activation the next layer reads.
    /// </summary>
    Activations,
}

/// <summary>Finds where the <see cref="QdqPlacement.Activations"/> placement quantizes a layer's output.</summary>
public static class ActivationChains
{
    /// <summary>Unary element-wise ops a chain may pass through (their first input is the chained value).</summary>
    private static readonly HashSet<string> Unary = new(StringComparer.Ordinal)
    {
        "Relu", "Clip", "HardSwish", "HardSigmoid", "Sigmoid", "LeakyRelu",
    };

    /// <summary>
    /// The value at the end of the element-wise chain that starts at <paramref name="value"/> (the value itself when
    /// no op follows it that the chain may take in): each step has a single reader and is no graph output.
    /// </summary>
    public static string End(GraphIndex index, string value)
    {
        var g = index.Graph;
        var outputs = g.Outputs.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        string v = value;
        for (int guard = 0; guard < 64; guard++)
        {
            if (outputs.Contains(v)) return v;
            var uses = index.Consumers(v);
            if (uses.Count == 1 && uses[0].InputIndex >= 0 && Step(g, uses[0].Node, v))
            {
                v = uses[0].Node.Outputs[0];
                continue;
            }
            if (uses.Count == 2 && SelfGate(index, v, uses, outputs) is { } gated)
            {
                v = gated;
                continue;
            }
            return v;
        }
        return v;
    }

    /// <summary>For every value: its chain end (only values whose end differs are listed).</summary>
    public static Dictionary<string, string> Ends(Graph graph, IEnumerable<string> values)
    {
        var index = new GraphIndex(graph);
        var r = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var v in values)
        {
            var e = End(index, v);
            if (e != v) r[v] = e;
        }
        return r;
    }

    /// <summary>True when <paramref name="n"/> is an element-wise op of one chained input <paramref name="v"/> (others constant).</summary>
    internal static bool Step(Graph g, Node n, string v)
    {
        if (!n.IsDefaultDomain || n.Outputs.Count == 0 || n.Outputs[0].Length == 0 || n.Outputs.Skip(1).Any(o => o.Length > 0)) return false;
        if (Unary.Contains(n.OpType))
            return n.Inputs.Count > 0 && n.Inputs[0] == v && n.Inputs.Skip(1).All(i => i.Length == 0 || g.Initializers.ContainsKey(i));
        if (n.OpType is not ("Mul" or "Add" or "Sub" or "Div") || n.Inputs.Count != 2) return false;
        int other = n.Inputs[0] == v ? 1 : n.Inputs[1] == v ? 0 : -1;
        if (other < 0 || n.Inputs[other] == v) return false;
        if (other == 0 && n.OpType is "Sub" or "Div") return false;
        return g.Initializers.TryGetValue(n.Inputs[other], out var c) && c.DType == DType.Float32 && c.Dims.Count(d => d != 1) <= 1;
    }

    /// <summary>
    /// x·f(x): <paramref name="v"/> is read by a Mul and by a chain of element-wise steps whose end is that Mul's other
    /// input (decomposed hardswish x·clip(x+3)/…, swish x·sigmoid(x)). Returns the Mul's output, else null.
    /// </summary>
    private static string? SelfGate(GraphIndex index, string v, IReadOnlyList<Use> uses, HashSet<string> outputs)
    {
        var g = index.Graph;
        foreach (var (mul, branch) in new[] { (uses[0], uses[1]), (uses[1], uses[0]) })
        {
            var m = mul.Node;
            if (mul.InputIndex < 0 || branch.InputIndex < 0 || !m.IsDefaultDomain || m.OpType != "Mul" || m.Inputs.Count != 2 || m.Outputs.Count != 1) continue;
            string y = m.Inputs[1 - mul.InputIndex];
            if (y == v) continue;
            var n = branch.Node;
            if (!Step(g, n, v)) continue;
            string w = n.Outputs[0];
            for (int guard = 0; guard < 16 && w != y; guard++)
            {
                if (outputs.Contains(w)) break;
                var u = index.Consumers(w);
                if (u.Count != 1 || u[0].InputIndex < 0 || !Step(g, u[0].Node, w)) break;
                w = u[0].Node.Outputs[0];
            }
            if (w == y && !outputs.Contains(y) && index.Consumers(y).Count == 1) return m.Outputs[0];
        }
        return null;
    }
}
