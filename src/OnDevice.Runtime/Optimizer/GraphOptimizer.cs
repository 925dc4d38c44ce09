using OnDevice.Core;
using OnDevice.Runtime.Kernels;

namespace OnDevice.Runtime.Optimizer;

/// <summary>One rewrite over a graph; returns how many changes it made.</summary>
internal interface IGraphPass
{
    string Name { get; }
    int Apply(Graph graph, OptimizerContext ctx);
}

/// <summary>What passes may consult: the opset, the kernels available, and which values the caller reads.</summary>
internal sealed class OptimizerContext(long opset, KernelRegistry registry, IReadOnlyDictionary<string, Tensor>? outerConstants = null)
{
    public long Opset { get; } = opset;
    public KernelRegistry Registry { get; } = registry;

    /// <summary>Constants of the enclosing graphs that a subgraph may read (by name, innermost first).</summary>
    public IReadOnlyDictionary<string, Tensor> OuterConstants { get; } = outerConstants ?? new Dictionary<string, Tensor>();

    /// <summary>The constant value of <paramref name="name"/> as seen from <paramref name="graph"/>, or null.</summary>
    public Tensor? ConstantOf(Graph graph, string name)
    {
        if (graph.Initializers.TryGetValue(name, out var t)) return graph.Inputs.Any(i => i.Name == name) ? null : t;
        if (graph.Inputs.Any(i => i.Name == name) || graph.Nodes.Any(n => n.Outputs.Contains(name))) return null; // shadowed
        return OuterConstants.GetValueOrDefault(name);
    }
}

/// <summary>
/// Graph rewrites applied before a session compiles the graph: constant folding, removal of no-op nodes,
/// BatchNormalization folded into the preceding Conv, and fusions. Passes repeat until nothing changes.
/// Only the main graph is rewritten; subgraphs run as written.
/// </summary>
public static class GraphOptimizer
{
    private static readonly IGraphPass[] Passes =
    [
        new EliminateNoOps(),
        new FuseFlattenSoftmax(), // Flatten → Softmax → Reshape(Shape(x)) is a last-axis Softmax
        new FuseQdq(), // before folding, which would dequantize constant weights to float
        new FuseQdqNeck(), // ConvTranspose and the FPN neck of QDQ graphs, also before folding
        new FuseQdqConvChain(), // DQ(x) → Conv(DQ(w)) → [BN] → element-wise chain → Q: integer conv, float epilogue, bytes out
        new FuseQdqConvFloatOutput(), // DQ(x) → Conv(DQ(w)) with a float result: integer conv, float epilogue
        new FoldConstants(),
        new FoldBatchNormIntoConv(),
        new FuseElementwiseChains(),
        new FuseConvEpilogue(),
        new FoldQdqPairs(), // last: Q→DQ pairs no integer fusion took become an element-wise fake quantization (fused in the next round)
    ];

    /// <summary>
    /// Applies every pass until a fixed point (at most 8 rounds), to the graph and then to each subgraph (If/Loop
    /// bodies, where only the body's own initializers count as constants); returns the number of rewrites by pass.
    /// </summary>
    public static IReadOnlyDictionary<string, int> Optimize(Graph graph, long opset, KernelRegistry registry)
    {
        var counts = Passes.ToDictionary(p => p.Name, _ => 0);
        OptimizeOne(graph, new OptimizerContext(opset, registry), counts);
        return counts;
    }

    private static void OptimizeOne(Graph graph, OptimizerContext ctx, Dictionary<string, int> counts)
    {
        for (int round = 0; round < 8; round++)
        {
            int changed = 0;
            foreach (var p in Passes)
            {
                int c = p.Apply(graph, ctx);
                counts[p.Name] += c;
                changed += c;
            }
            if (changed == 0) break;
        }
        RemoveUnusedInitializers(graph);
        var outer = new Dictionary<string, Tensor>(ctx.OuterConstants, StringComparer.Ordinal);
        foreach (var (k, t) in graph.Initializers)
            if (!graph.Inputs.Any(i => i.Name == k)) outer[k] = t;
        foreach (var i in graph.Inputs) outer.Remove(i.Name);
        foreach (var n in graph.Nodes) foreach (var o in n.Outputs) outer.Remove(o);
        var inner = new OptimizerContext(ctx.Opset, ctx.Registry, outer);
        foreach (var n in graph.Nodes)
            foreach (var sub in n.Subgraphs)
                OptimizeOne(sub, inner, counts);
    }

    /// <summary>Drops initializers nothing reads (after folding), keeping graph inputs' defaults and subgraph captures.</summary>
    internal static void RemoveUnusedInitializers(Graph graph)
    {
        // Initializers of this graph may also be read by nested subgraphs (captured): those are uses.
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (var n in graph.Nodes)
        {
            foreach (var i in n.Inputs) used.Add(i);
            foreach (var i in GraphAlgorithms.ImplicitInputs(n)) used.Add(i);
        }
        foreach (var o in graph.Outputs) used.Add(o.Name);
        foreach (var i in graph.Inputs) used.Add(i.Name);
        foreach (var k in graph.Initializers.Keys.ToList())
            if (!used.Contains(k)) graph.Initializers.Remove(k);
    }
}

/// <summary>Graph editing helpers shared by passes.</summary>
internal static class Rewrite
{
    /// <summary>Every node input (and subgraph capture) reading <paramref name="from"/> reads <paramref name="to"/> instead.</summary>
    public static void ReplaceUses(Graph graph, string from, string to)
    {
        foreach (var n in graph.Nodes)
        {
            for (int i = 0; i < n.Inputs.Count; i++)
                if (n.Inputs[i] == from) n.Inputs[i] = to;
            foreach (var sub in n.Subgraphs) RenameFree(sub, from, to);
        }
    }

    private static void RenameFree(Graph g, string from, string to)
    {
        if (g.Inputs.Any(i => i.Name == from) || g.Initializers.ContainsKey(from) || g.Nodes.Any(n => n.Outputs.Contains(from))) return;
        foreach (var n in g.Nodes)
        {
            for (int i = 0; i < n.Inputs.Count; i++)
                if (n.Inputs[i] == from) n.Inputs[i] = to;
            foreach (var sub in n.Subgraphs) RenameFree(sub, from, to);
        }
        foreach (var o in g.Outputs)
            if (o.Name == from) o.Name = to;
    }

    public static bool IsGraphOutput(Graph graph, string name) => graph.Outputs.Any(o => o.Name == name);

    /// <summary>Number of reads of <paramref name="name"/> (node inputs, subgraph captures, graph outputs).</summary>
    public static int UseCount(Graph graph, string name)
    {
        int c = graph.Outputs.Count(o => o.Name == name);
        foreach (var n in graph.Nodes)
        {
            c += n.Inputs.Count(i => i == name);
            if (GraphAlgorithms.ImplicitInputs(n).Contains(name)) c++;
        }
        return c;
    }
    /// <summary>The node producing <paramref name="name"/>, or null (graph input, initializer, empty name).</summary>
    public static Node? Producer(Graph g, string name) => name.Length == 0 ? null : g.Nodes.FirstOrDefault(n => n.Outputs.Contains(name));

    /// <summary>True when exactly one node reads <paramref name="name"/> and it is not a graph output.</summary>
    public static bool SingleUse(Graph g, string name) => UseCount(g, name) == 1 && !IsGraphOutput(g, name);

    /// <summary>A one-element tensor of rank 0 or 1 (a per-tensor scale or zero point).</summary>
    public static bool Scalar(Tensor t) => t.ElementCount == 1 && t.Dims.Length <= 1;

    /// <summary>Removes <paramref name="n"/> when nothing reads any of its outputs (graph outputs count as reads).</summary>
    public static void RemoveIfUnused(Graph g, Node n)
    {
        if (n.Outputs.All(o => o.Length == 0 || UseCount(g, o) == 0)) g.Nodes.Remove(n);
    }

    /// <summary><paramref name="hint"/>, or hint_1, hint_2, … : a name no initializer, node output or graph input uses.</summary>
    public static string NewName(Graph g, string hint)
    {
        var name = hint;
        for (int i = 1; g.Initializers.ContainsKey(name) || g.Nodes.Any(n => n.Outputs.Contains(name)) || g.Inputs.Any(v => v.Name == name); i++) name = $"{hint}_{i}";
        return name;
    }

    /// <summary>Adds a copy of <paramref name="t"/> as an initializer under a fresh name; returns the name.</summary>
    public static string AddConst(Graph g, string hint, Tensor t)
    {
        var name = NewName(g, hint);
        g.Initializers.Add(name, t.Clone(name));
        return name;
    }
}

/// <summary>Removes Identity, inference-mode Dropout, Casts to the type a value already has, and Reshape chains.</summary>
internal sealed class EliminateNoOps : IGraphPass
{
    public string Name => "eliminate-no-ops";

    public int Apply(Graph graph, OptimizerContext ctx)
    {
        int changed = 0;
        var facts = ShapeInference.Infer(graph, ctx.Opset, new Dictionary<string, ValueFacts>());
        foreach (var n in graph.Nodes.ToList())
        {
            if (!n.IsDefaultDomain || n.Inputs.Count == 0 || n.Inputs[0].Length == 0) continue;
            bool noop = n.OpType switch
            {
                "Identity" => true,
                "Dropout" => (n.Outputs.Count < 2 || n.Outputs[1].Length == 0 || Rewrite.UseCount(graph, n.Outputs[1]) == 0) && IsInferenceDropout(graph, n),
                "Cast" => facts.Get(n.Inputs[0]) is { DType: var t } && t != DType.Undefined && (long)t == n.GetInt("to", -1),
                _ => false,
            };
            if (noop && Remove(graph, n)) changed++;
        }
        // Reshape(Reshape(x, s1), s2) → Reshape(x, s2) when the inner result has no other reader and s2 has no 0 (copy) entries.
        foreach (var n in graph.Nodes.ToList())
        {
            if (n is not { OpType: "Reshape", IsDefaultDomain: true } || n.Inputs.Count < 2) continue;
            var inner = graph.Nodes.FirstOrDefault(p => p.Outputs.Contains(n.Inputs[0]));
            if (inner is not { OpType: "Reshape", IsDefaultDomain: true } || Rewrite.UseCount(graph, inner.Outputs[0]) != 1) continue;
            if (!graph.Initializers.TryGetValue(n.Inputs[1], out var target) || target.ToInt64Array().Contains(0)) continue;
            if (Rewrite.IsGraphOutput(graph, inner.Outputs[0])) continue;
            n.Inputs[0] = inner.Inputs[0];
            graph.Nodes.Remove(inner);
            changed++;
        }
        return changed;
    }

    /// <summary>True when a Dropout cannot be in training mode: no training_mode input (opset 12+), or a constant false one.</summary>
    private static bool IsInferenceDropout(Graph graph, Node n)
    {
        if (n.Inputs.Count < 3 || n.Inputs[2].Length == 0) return true;
        return graph.Initializers.TryGetValue(n.Inputs[2], out var t) && t.ElementCount == 1 && t.GetDouble(0) == 0
            && !graph.Inputs.Any(i => i.Name == n.Inputs[2]);
    }

    /// <summary>Bypasses a pass-through node: its readers read its input instead.</summary>
    private static bool Remove(Graph graph, Node n)
    {
        string input = n.Inputs[0], output = n.Outputs[0];
        if (Rewrite.IsGraphOutput(graph, output))
        {
            // Keep the output's name: only possible when the input is itself produced by a node in this graph
            // that nothing else reads and that is not a graph input or initializer.
            var producer = graph.Nodes.FirstOrDefault(p => p.Outputs.Contains(input));
            if (producer is null || Rewrite.UseCount(graph, input) != 1 || Rewrite.IsGraphOutput(graph, input)) return false;
            producer.Outputs[producer.Outputs.IndexOf(input)] = output;
            graph.Nodes.Remove(n);
            return true;
        }
        Rewrite.ReplaceUses(graph, output, input);
        graph.Nodes.Remove(n);
        return true;
    }
}

/// <summary>Evaluates nodes whose inputs are all constants, with the runtime's own kernels, and stores the results as initializers.</summary>
internal sealed class FoldConstants : IGraphPass
{
    /// <summary>Largest result folded, in bytes; bigger results stay computed at run time to keep the model small.</summary>
    public const long MaxFoldedBytes = 16L << 20;

    private static readonly HashSet<string> NonDeterministic = new(StringComparer.Ordinal)
    {
        "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli",
    };

    public string Name => "fold-constants";

    public int Apply(Graph graph, OptimizerContext ctx)
    {
        int changed = 0;
        foreach (var n in GraphAlgorithms.TopologicalOrder(graph).ToList())
        {
            if (!n.IsDefaultDomain || NonDeterministic.Contains(n.OpType) || n.Subgraphs.Any() || n.OpType == "Constant") continue;
            // Graph inputs with initializer defaults may be overridden by callers: not constants (ConstantOf knows).
            if (n.Inputs.Count == 0 || !n.Inputs.All(i => i.Length == 0 || ctx.ConstantOf(graph, i) is not null)) continue;
            if (n.Outputs.Any(o => o.Length > 0 && (graph.Initializers.ContainsKey(o) || graph.Inputs.Any(i => i.Name == o)))) continue;
            Tensor[]? results = Evaluate(n, graph, ctx);
            if (results is null) continue;
            for (int k = 0; k < n.Outputs.Count; k++)
                if (n.Outputs[k].Length > 0) graph.Initializers.Add(n.Outputs[k], results[k].Clone(n.Outputs[k]));
            graph.Nodes.Remove(n);
            changed++;
        }
        return changed;
    }

    private static Tensor[]? Evaluate(Node n, Graph graph, OptimizerContext ctx)
    {
        var g = new Graph { Name = "fold" };
        var copy = new Node(n.OpType, n.Inputs, n.Outputs.Select((o, i) => o.Length > 0 ? o : "").ToList(), n.Name, n.Domain);
        foreach (var a in n.Attributes.Values) copy.Attributes.Add(a.Name, a);
        foreach (var i in n.Inputs.Where(i => i.Length > 0).Distinct()) g.Initializers.Add(i, ctx.ConstantOf(graph, i)!);
        g.Nodes.Add(copy);
        foreach (var o in n.Outputs) if (o.Length > 0) g.Outputs.Add(new ValueInfo(o));
        var m = new Model(g);
        m.OpsetImports.Add(new OpsetImport("", ctx.Opset));
        try
        {
            var s = new InferenceSession(m, new SessionOptions { Threads = 1, Optimize = false });
            var r = s.Run(new Dictionary<string, Tensor>());
            var outs = n.Outputs.Select(o => o.Length > 0 ? r[o] : Tensor.Zeros(DType.Float32, [0])).ToArray();
            return outs.Sum(t => t.ByteLength) > MaxFoldedBytes ? null : outs;
        }
        catch (Exception e) when (e is NotSupportedException or InvalidOperationException or ArgumentException)
        {
            return null; // leave it to run time, where the same error (if any) is reported in context
        }
    }
}

/// <summary>Conv (constant weights) followed by BatchNormalization (constant statistics) becomes one Conv with adjusted weights and bias.</summary>
internal sealed class FoldBatchNormIntoConv : IGraphPass
{
    public string Name => "fold-batchnorm-into-conv";

    public int Apply(Graph graph, OptimizerContext ctx)
    {
        int changed = 0;
        foreach (var bn in graph.Nodes.ToList())
        {
            if (bn is not { OpType: "BatchNormalization", IsDefaultDomain: true } || bn.Inputs.Count < 5) continue;
            if (bn.Outputs.Skip(1).Any(o => o.Length > 0 && Rewrite.UseCount(graph, o) > 0)) continue; // training outputs in use
            if (bn.GetInt("training_mode", 0) != 0) continue;
            var conv = graph.Nodes.FirstOrDefault(c => c.Outputs.Count > 0 && c.Outputs[0] == bn.Inputs[0]);
            if (conv is not { OpType: "Conv", IsDefaultDomain: true } || Rewrite.UseCount(graph, conv.Outputs[0]) != 1 || Rewrite.IsGraphOutput(graph, conv.Outputs[0])) continue;
            if (!graph.Initializers.TryGetValue(conv.Inputs[1], out var w) || w.DType != DType.Float32) continue;
            Tensor? b = conv.Inputs.Count > 2 && conv.Inputs[2].Length > 0 ? graph.Initializers.GetValueOrDefault(conv.Inputs[2]) : null;
            if (conv.Inputs.Count > 2 && conv.Inputs[2].Length > 0 && b is null) continue;
            var stats = bn.Inputs.Skip(1).Take(4).Select(i => graph.Initializers.GetValueOrDefault(i)).ToArray();
            if (stats.Any(s => s is null || s.DType != DType.Float32)) continue;
            int m = (int)w.Dims[0];
            if (stats.Any(s => s!.ElementCount != m) || (b is not null && b.ElementCount != m)) continue;
            float eps = bn.GetFloat("epsilon", 1e-5f);
            var (scale, beta, mean, variance) = (stats[0]!.ToFloatArray(), stats[1]!.ToFloatArray(), stats[2]!.ToFloatArray(), stats[3]!.ToFloatArray());
            var wv = w.ToFloatArray();
            var bv = b?.ToFloatArray() ?? new float[m];
            int per = wv.Length / m;
            var newB = new float[m];
            for (int o = 0; o < m; o++)
            {
                float f = scale[o] / MathF.Sqrt(variance[o] + eps);
                for (int k = 0; k < per; k++) wv[o * per + k] *= f;
                newB[o] = (bv[o] - mean[o]) * f + beta[o];
            }
            string wName = Unique(graph, conv.Inputs[1] + "_bnfolded"), bName = Unique(graph, (conv.Name.Length > 0 ? conv.Name : conv.Outputs[0]) + "_bias_bnfolded");
            graph.Initializers.Add(wName, Tensor.FromArray<float>(wv, w.Dims, wName));
            graph.Initializers.Add(bName, Tensor.FromArray<float>(newB, [m], bName));
            conv.Inputs[1] = wName;
            if (conv.Inputs.Count > 2) conv.Inputs[2] = bName; else conv.Inputs.Add(bName);
            conv.Outputs[0] = bn.Outputs[0];
            graph.Nodes.Remove(bn);
            changed++;
        }
        return changed;
    }

    private static string Unique(Graph g, string name)
    {
        var n = name;
        for (int i = 1; g.Initializers.ContainsKey(n) || g.Nodes.Any(x => x.Outputs.Contains(n)); i++) n = $"{name}_{i}";
        return n;
    }
}
