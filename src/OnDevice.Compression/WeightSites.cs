using System.Text.RegularExpressions;
using OnDevice.Core;

namespace OnDevice.Compression;

/// <summary>Bad compression input or options (unknown format, impossible size budget, ...).</summary>
public sealed class CompressionException(string message) : Exception(message);

/// <summary>
/// A float weight consumed by a Conv, ConvTranspose, Gemm or MatMul node, with its matrix view: the tensor transposed
/// by <see cref="Perm"/> and reshaped to [Rows = output channels, Columns = reduction].
/// </summary>
/// <param name="Graph">The graph (main or subgraph) holding the node and the initializer.</param>
/// <param name="Node">The consuming node.</param>
/// <param name="InputIndex">Which input of <paramref name="Node"/> is the weight.</param>
/// <param name="Tensor">The float32 weight (an initializer after constant lifting).</param>
/// <param name="Perm">Axis order that puts the output-channel axis first.</param>
/// <param name="ChannelAxis">The output-channel axis in the original layout.</param>
/// <param name="Depthwise">A depthwise convolution (one input channel per group).</param>
public sealed record WeightSite(Graph Graph, Node Node, int InputIndex, Tensor Tensor, int[] Perm, int ChannelAxis, bool Depthwise)
{
    /// <summary>The weight's value name.</summary>
    public string WeightName => Node.Inputs[InputIndex];

    /// <summary>A label for reports: the node name, or its first output.</summary>
    public string Layer => Node.Name.Length > 0 ? Node.Name : Node.Outputs[0];

    /// <summary>Output channels.</summary>
    public int Rows => (int)Tensor.Dims[Perm[0]];

    /// <summary>Reduction length.</summary>
    public int Columns => (int)(Tensor.ElementCount / Math.Max(1, Rows));

    /// <summary>The weight as a row-major [Rows, Columns] matrix.</summary>
    public float[] Matrix() => Layout.Permute(Tensor.ToFloatArray(), Tensor.Dims, Perm);

    /// <summary>Dimensions of the tensor in matrix axis order (before flattening to two axes).</summary>
    public long[] PermutedDims => Perm.Select(p => Tensor.Dims[p]).ToArray();

    /// <summary>True when the matrix view is the tensor itself (no transpose).</summary>
    public bool IdentityPerm => Perm.Select((p, i) => p == i).All(x => x);
}

/// <summary>A layer (or large constant) the compressor left in float, and why.</summary>
/// <param name="Layer">Node name (or first output).</param>
/// <param name="OpType">The node's op type.</param>
/// <param name="Weight">The constant's name.</param>
/// <param name="Bytes">Its size in bytes.</param>
/// <param name="Reason">Why it stayed float.</param>
public sealed record SkippedLayer(string Layer, string OpType, string Weight, long Bytes, string Reason);

/// <summary>Finds the weights the compression passes can handle, and lists the ones they cannot.</summary>
public static class WeightSites
{
    /// <summary>Float constants smaller than this that feed unsupported ops are not listed (shape constants, biases).</summary>
    public const long ListThresholdElements = 1024;

    /// <summary>
    /// Lifts <c>Constant</c> nodes into initializers (in place), then returns every weight site of
    /// <paramref name="graph"/> and its subgraphs, and the float constants that stay float with the reason.
    /// </summary>
    public static (List<WeightSite> Sites, List<SkippedLayer> Skipped) Find(Graph graph, IReadOnlyList<string>? exclude = null)
    {
        ConstantLifting.Lift(graph);
        var patterns = (exclude ?? []).Select(Glob).ToList();
        var sites = new List<WeightSite>();
        var skipped = new List<SkippedLayer>();
        foreach (var g in graph.SelfAndSubgraphs())
        {
            var taken = new Dictionary<string, WeightSite>(StringComparer.Ordinal);
            var consumers = g.Nodes.SelectMany(n => n.Inputs.Where(i => i.Length > 0).Distinct().Select(i => (i, n)))
                .GroupBy(x => x.i).ToDictionary(x => x.Key, x => x.Select(y => y.n).ToList(), StringComparer.Ordinal);
            var listed = new HashSet<string>(StringComparer.Ordinal);
            foreach (var n in g.Nodes)
            {
                int wi = WeightInput(n);
                string label = n.Name.Length > 0 ? n.Name : n.Outputs.FirstOrDefault() ?? n.OpType;
                if (wi < 0)
                {
                    foreach (var inp in n.Inputs)
                        if (inp.Length > 0 && g.Initializers.TryGetValue(inp, out var t) && t.DType.IsFloatingPoint()
                            && t.ElementCount >= ListThresholdElements && !listed.Contains(inp) && !IsWeightOfSupported(g, inp))
                        {
                            listed.Add(inp);
                            skipped.Add(new(label, n.OpType, inp, t.ByteLength, $"{n.OpType} is not a layer the quantizer handles (Conv, ConvTranspose, Gemm, MatMul)"));
                        }
                    continue;
                }
                if (wi >= n.Inputs.Count || n.Inputs[wi].Length == 0) continue;
                string w = n.Inputs[wi];
                if (!g.Initializers.TryGetValue(w, out var tensor))
                {
                    if (n.OpType is "Conv" or "ConvTranspose")
                        skipped.Add(new(label, n.OpType, w, 0, "the weight is computed at run time, not a constant"));
                    continue;
                }
                string? reason = null;
                if (tensor.DType != DType.Float32) reason = $"the weight is {tensor.DType.Name()}, not float32";
                else if (patterns.Any(p => p.IsMatch(label) || p.IsMatch(w))) reason = "excluded by --exclude";
                else if (tensor.ElementCount == 0) reason = "empty weight";
                if (reason is null && taken.TryGetValue(w, out var prev))
                    reason = $"the weight is shared with {prev.Layer}, quantized there";
                int[]? perm = null;
                int axis = 0;
                bool depthwise = false;
                if (reason is null)
                {
                    switch (n.OpType)
                    {
                        case "Conv":
                            if (tensor.Dims.Length < 3) { reason = $"Conv weight of rank {tensor.Dims.Length}"; break; }
                            perm = Enumerable.Range(0, tensor.Dims.Length).ToArray();
                            long group = n.GetInt("group", 1);
                            depthwise = group > 1 && tensor.Dims[1] == 1 && group == tensor.Dims[0];
                            break;
                        case "ConvTranspose":
                            if (tensor.Dims.Length < 3) { reason = $"ConvTranspose weight of rank {tensor.Dims.Length}"; break; }
                            perm = [1, 0, .. Enumerable.Range(2, tensor.Dims.Length - 2)];
                            axis = 1;
                            break;
                        case "Gemm":
                            if (tensor.Dims.Length != 2) { reason = $"Gemm B of rank {tensor.Dims.Length}"; break; }
                            if (n.GetInt("transB", 0) != 0) perm = [0, 1];
                            else { perm = [1, 0]; axis = 1; }
                            break;
                        case "MatMul":
                            if (tensor.Dims.Length != 2) { reason = $"MatMul B of rank {tensor.Dims.Length} (batched weights are not quantized)"; break; }
                            perm = [1, 0];
                            axis = 1;
                            break;
                    }
                }
                if (reason is not null || perm is null)
                {
                    if (!listed.Contains(w)) skipped.Add(new(label, n.OpType, w, tensor.ByteLength, reason ?? "unsupported"));
                    listed.Add(w);
                    continue;
                }
                var site = new WeightSite(g, n, wi, tensor, perm, axis, depthwise);
                taken[w] = site;
                sites.Add(site);
            }

            bool IsWeightOfSupported(Graph gg, string name) =>
                consumers.TryGetValue(name, out var cs) && cs.Any(c => WeightInput(c) is var k && k >= 0 && k < c.Inputs.Count && c.Inputs[k] == name);
        }
        return (sites, skipped);
    }

    /// <summary>The input index holding the weight for a supported op, or −1.</summary>
    public static int WeightInput(Node n) => n.IsDefaultDomain && n.OpType is "Conv" or "ConvTranspose" or "Gemm" or "MatMul" ? 1 : -1;

    /// <summary>A glob (<c>*</c>, <c>?</c>) as an anchored regular expression.</summary>
    public static Regex Glob(string pattern) =>
        new("^" + Regex.Escape(pattern).Replace("\\*", ".*").Replace("\\?", ".") + "$", RegexOptions.CultureInvariant);
}

/// <summary>Transposes flat C-order arrays.</summary>
public static class Layout
{
    /// <summary>Returns <paramref name="data"/> (shape <paramref name="dims"/>) with axes reordered by <paramref name="perm"/>.</summary>
    public static T[] Permute<T>(T[] data, long[] dims, int[] perm)
    {
        int rank = dims.Length;
        if (perm.Select((p, i) => p == i).All(x => x)) return (T[])data.Clone();
        var outDims = perm.Select(p => dims[p]).ToArray();
        var inStrides = Strides(dims);
        var r = new T[data.Length];
        var idx = new long[rank];
        for (long o = 0; o < r.Length; o++)
        {
            long src = 0;
            for (int d = 0; d < rank; d++) src += idx[d] * inStrides[perm[d]];
            r[o] = data[src];
            for (int d = rank - 1; d >= 0; d--)
            {
                if (++idx[d] < outDims[d]) break;
                idx[d] = 0;
            }
        }
        return r;
    }

    /// <summary>The inverse of a permutation.</summary>
    public static int[] Inverse(int[] perm)
    {
        var inv = new int[perm.Length];
        for (int i = 0; i < perm.Length; i++) inv[perm[i]] = i;
        return inv;
    }

    /// <summary>C-order strides of <paramref name="dims"/>.</summary>
    public static long[] Strides(long[] dims)
    {
        var s = new long[dims.Length];
        long m = 1;
        for (int d = dims.Length - 1; d >= 0; d--) { s[d] = m; m *= dims[d]; }
        return s;
    }
}
