using OnDevice.Compression.Calibration;
using OnDevice.Core;
using OnDevice.Runtime;

namespace OnDevice.Compression.Quantization;

/// <summary>
/// Pre-quantization graph clean-up: folds BatchNormalization and constant per-channel (or scalar) Mul/Add/Sub/Div
/// that directly follow a Conv (its only reader) into the Conv's weight and bias, so the Conv writes the folded op's
/// output. Exact up to float rounding; the folded values keep their names, so ranges calibrated on the original model
/// still apply.
/// </summary>
public static class ConvFolding
{
    /// <summary>Folds in place (main graph and subgraphs; constants lifted first); returns the folded node count.</summary>
    public static int Fold(Graph graph)
    {
        ConstantLifting.Lift(graph);
        int folded = 0;
        foreach (var g in graph.SelfAndSubgraphs())
        {
            bool again = true;
            while (again)
            {
                again = false;
                var index = new GraphIndex(g);
                var outputs = g.Outputs.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
                foreach (var conv in g.Nodes.ToList())
                {
                    if (!conv.IsDefaultDomain || conv.OpType != "Conv" || conv.Inputs.Count < 2 || conv.Outputs.Count != 1) continue;
                    string y = conv.Outputs[0];
                    if (outputs.Contains(y)) continue;
                    var uses = index.Consumers(y);
                    if (uses.Count != 1 || uses[0].InputIndex < 0) continue;
                    var next = uses[0].Node;
                    if (!g.Initializers.TryGetValue(conv.Inputs[1], out var w) || w.DType != DType.Float32 || w.Dims.Length < 3) continue;
                    if (index.Consumers(conv.Inputs[1]).Count != 1) continue;
                    int m = (int)w.Dims[0];
                    if (conv.Inputs.Count > 2 && conv.Inputs[2].Length > 0
                        && (!g.Initializers.TryGetValue(conv.Inputs[2], out var bt) || bt.DType != DType.Float32 || bt.ElementCount != m)) continue;
                    if (Affine(g, next, y, m, w.Dims.Length) is not var (a, b)) continue;
                    Apply(g, index, conv, w, a, b);
                    conv.Outputs[0] = next.Outputs[0];
                    g.Nodes.Remove(next);
                    foreach (var c in next.Inputs.Where(i => i != y))
                        if (c.Length > 0 && g.Initializers.ContainsKey(c) && !g.Nodes.Any(x => x.Inputs.Contains(c) || (x.Subgraphs.Any() && GraphAlgorithms.ImplicitInputs(x).Contains(c)))
                            && !g.Outputs.Any(o => o.Name == c))
                        {
                            g.Initializers.Remove(c);
                            g.Inputs.RemoveAll(i => i.Name == c);
                        }
                    folded++;
                    again = true;
                    break;
                }
            }
        }
        return folded;
    }

    /// <summary>y·a[c] + b[c] that <paramref name="n"/> computes on channel c of <paramref name="x"/> (rank <paramref name="rank"/>, <paramref name="m"/> channels), or null.</summary>
    internal static (float[] A, float[] B)? Affine(Graph g, Node n, string x, int m, int rank)
    {
        if (!n.IsDefaultDomain || n.Outputs.Count == 0 || n.Outputs[0].Length == 0) return null;
        if (n.OpType == "BatchNormalization")
        {
            if (n.Inputs.Count != 5 || n.Inputs[0] != x || n.Outputs.Skip(1).Any(o => o.Length > 0) || n.GetInt("training_mode", 0) != 0) return null;
            var p = new float[4][];
            for (int i = 0; i < 4; i++)
            {
                if (!g.Initializers.TryGetValue(n.Inputs[i + 1], out var t) || t.DType != DType.Float32 || t.ElementCount != m) return null;
                p[i] = t.ToFloatArray();
            }
            float eps = n.GetFloat("epsilon", 1e-5f);
            var a = new float[m];
            var b = new float[m];
            for (int c = 0; c < m; c++)
            {
                a[c] = (float)(p[0][c] / Math.Sqrt((double)p[3][c] + eps));
                b[c] = (float)(p[1][c] - (double)p[2][c] * a[c]);
            }
            return (a, b);
        }
        if (n.OpType is not ("Mul" or "Add" or "Sub" or "Div") || n.Inputs.Count != 2 || n.Outputs.Count != 1) return null;
        int ci = n.Inputs[0] == x ? 1 : n.Inputs[1] == x ? 0 : -1;
        if (ci < 0 || n.Inputs[ci] == x || (ci == 0 && n.OpType is "Sub" or "Div")) return null;
        if (!g.Initializers.TryGetValue(n.Inputs[ci], out var k) || k.DType != DType.Float32 || PerChannel(k, m, rank) is not { } v) return null;
        var ones = Enumerable.Repeat(1f, m).ToArray();
        var zeros = new float[m];
        switch (n.OpType)
        {
            case "Mul": return (v, zeros);
            case "Add": return (ones, v);
            case "Sub": return (ones, v.Select(z => -z).ToArray());
            default:
                if (v.Any(z => z == 0 || !float.IsFinite(z))) return null;
                return (v.Select(z => 1 / z).ToArray(), zeros);
        }
    }

    /// <summary>The constant's value per channel (axis 1 of a rank-<paramref name="rank"/> conv output), if it broadcasts per channel or is a scalar.</summary>
    private static float[]? PerChannel(Tensor k, int m, int rank)
    {
        var d = k.Dims;
        if (d.Length > rank) return null;
        var v = k.ToFloatArray();
        if (v.Length == 1) return Enumerable.Repeat(v[0], m).ToArray();
        int channelPos = 1 - (rank - d.Length);
        if (channelPos < 0 || d[channelPos] != m) return null;
        for (int i = 0; i < d.Length; i++)
            if (i != channelPos && d[i] != 1) return null;
        return v;
    }

    /// <summary>Scales output channel c of the conv's weight by a[c] and sets its bias to bias·a + b (new tensors; shared ones are never edited).</summary>
    private static void Apply(Graph g, GraphIndex index, Node conv, Tensor w, float[] a, float[] b)
    {
        int m = a.Length;
        var wv = w.ToFloatArray();
        int per = wv.Length / m;
        for (int c = 0; c < m; c++)
            for (int i = 0; i < per; i++) wv[c * per + i] *= a[c];
        g.Initializers[conv.Inputs[1]] = Tensor.FromArray<float>(wv, w.Dims, conv.Inputs[1]);
        float[] bias = new float[m];
        string? biasName = conv.Inputs.Count > 2 && conv.Inputs[2].Length > 0 ? conv.Inputs[2] : null;
        bool ownBias = false;
        if (biasName is not null)
        {
            bias = g.Initializers[biasName].ToFloatArray(); // checked by the caller: a float constant of m values
            ownBias = index.Consumers(biasName).Count == 1;
        }
        for (int c = 0; c < m; c++) bias[c] = bias[c] * a[c] + b[c];
        string name = ownBias ? biasName! : Fresh(g, (biasName ?? conv.Inputs[1]) + "_folded_bias");
        g.Initializers[name] = Tensor.FromArray<float>(bias, [m], name);
        while (conv.Inputs.Count < 3) conv.Inputs.Add("");
        conv.Inputs[2] = name;
    }

    private static string Fresh(Graph g, string hint)
    {
        var used = new HashSet<string>(g.Initializers.Keys, StringComparer.Ordinal);
        foreach (var n in g.Nodes) { used.UnionWith(n.Inputs); used.UnionWith(n.Outputs); }
        foreach (var v in g.Inputs.Concat(g.Outputs)) used.Add(v.Name);
        string s = hint;
        for (int i = 1; used.Contains(s); i++) s = $"{hint}_{i}";
        return s;
    }
}

/// <summary>
/// Cross-layer equalization (Nagel et al. 2019) of Conv → [Relu] → depthwise Conv pairs, driven by calibration data:
/// output channel c of the first conv (weight row and bias) is scaled by s_c > 0 and depthwise filter c divided by
/// s_c, which leaves the model's function unchanged (Relu is positively homogeneous) while every channel of the
/// intermediate activation gets the same range, so its per-tensor int8 grid serves all channels alike. Per-channel
/// weight grids are unaffected by the scaling.
/// </summary>
public static class CrossLayerEqualization
{
    /// <summary>A scale is at most this (channels that are nearly dead stay as they are).</summary>
    public const float MaxScale = 1024;

    /// <summary>One equalized pair.</summary>
    /// <param name="First">The first conv's label.</param>
    /// <param name="Depthwise">The depthwise conv's label.</param>
    /// <param name="Value">The intermediate activation.</param>
    /// <param name="SpreadBefore">Largest over smallest per-channel max |x| before (1 = equal).</param>
    public sealed record Pair(string First, string Depthwise, string Value, double SpreadBefore);

    /// <summary>Equalizes every eligible pair of the main graph in place, with per-channel ranges measured on up to <paramref name="samples"/> calibration samples.</summary>
    public static List<Pair> Equalize(Model model, CalibrationSet calibration, int samples = 16)
    {
        var g = model.Graph;
        ConstantLifting.Lift(g);
        var pairs = FindPairs(g);
        if (pairs.Count == 0) return [];
        var wanted = pairs.ToDictionary(p => p.Value, p => new double[p.Channels], StringComparer.Ordinal);
        var session = new InferenceSession(model, new SessionOptions { Optimize = false, Threads = 1 });
        foreach (var feed in calibration.Samples().Take(Math.Max(1, samples)))
            session.Run(feed, (name, buf) =>
            {
                if (!wanted.TryGetValue(name, out var mx) || buf.DType != DType.Float32 || buf.Rank < 2 || buf.Shape[1] != mx.Length) return;
                var s = buf.Span<float>();
                int c = mx.Length, inner = 1;
                for (int i = 2; i < buf.Rank; i++) inner *= buf.Shape[i];
                for (int i = 0; i < s.Length; i++)
                {
                    int ch = i / inner % c;
                    double a = Math.Abs(s[i]);
                    if (a > mx[ch]) mx[ch] = a;
                }
            });
        var done = new List<Pair>();
        foreach (var p in pairs)
        {
            var r = wanted[p.Value];
            double top = r.Max();
            if (!(top > 0)) continue;
            var scale = r.Select(x => x > 0 ? (float)Math.Min(MaxScale, top / x) : 1f).ToArray();
            Scale(g, p.First, scale, multiply: true);
            Scale(g, p.Depthwise, scale, multiply: false);
            double low = r.Where(x => x > 0).DefaultIfEmpty(top).Min();
            done.Add(new Pair(Name(p.First), Name(p.Depthwise), p.Value, top / low));
        }
        return done;
    }

    private static string Name(Node n) => n.Name.Length > 0 ? n.Name : n.Outputs[0];

    private sealed record Candidate(Node First, Node Depthwise, string Value, int Channels);

    private static List<Candidate> FindPairs(Graph g)
    {
        var index = new GraphIndex(g);
        var outputs = g.Outputs.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        var r = new List<Candidate>();
        foreach (var conv in g.Nodes)
        {
            if (!IsConv(g, index, conv, out int m)) continue;
            string v = conv.Outputs[0];
            if (outputs.Contains(v)) continue;
            var uses = index.Consumers(v);
            if (uses.Count != 1 || uses[0].InputIndex != 0) continue;
            var next = uses[0].Node;
            if (next.IsDefaultDomain && next.OpType == "Relu" && next.Outputs.Count == 1)
            {
                v = next.Outputs[0];
                if (outputs.Contains(v)) continue;
                uses = index.Consumers(v);
                if (uses.Count != 1 || uses[0].InputIndex != 0) continue;
                next = uses[0].Node;
            }
            if (!IsConv(g, index, next, out int m2) || m2 != m || next.GetInt("group", 1) != m) continue;
            if (g.Initializers[next.Inputs[1]].Dims[1] != 1) continue;
            r.Add(new Candidate(conv, next, v, m));
        }
        return r;
    }

    private static bool IsConv(Graph g, GraphIndex index, Node n, out int channels)
    {
        channels = 0;
        if (!n.IsDefaultDomain || n.OpType != "Conv" || n.Inputs.Count < 2 || n.Outputs.Count != 1) return false;
        if (!g.Initializers.TryGetValue(n.Inputs[1], out var w) || w.DType != DType.Float32 || w.Dims.Length < 3 || index.Consumers(n.Inputs[1]).Count != 1) return false;
        if (n.Inputs.Count > 2 && n.Inputs[2].Length > 0
            && (!g.Initializers.TryGetValue(n.Inputs[2], out var b) || b.DType != DType.Float32 || b.ElementCount != w.Dims[0] || index.Consumers(n.Inputs[2]).Count != 1)) return false;
        channels = (int)w.Dims[0];
        return true;
    }

    /// <summary>Multiplies (or divides) output channel c of the conv's weight by s[c]; the bias too when multiplying.</summary>
    private static void Scale(Graph g, Node conv, float[] s, bool multiply)
    {
        var w = g.Initializers[conv.Inputs[1]];
        var wv = w.ToFloatArray();
        int per = wv.Length / s.Length;
        for (int c = 0; c < s.Length; c++)
            for (int i = 0; i < per; i++) wv[c * per + i] = multiply ? wv[c * per + i] * s[c] : wv[c * per + i] / s[c];
        g.Initializers[conv.Inputs[1]] = Tensor.FromArray<float>(wv, w.Dims, conv.Inputs[1]);
        if (multiply && conv.Inputs.Count > 2 && conv.Inputs[2].Length > 0)
        {
            var b = g.Initializers[conv.Inputs[2]];
            var bv = b.ToFloatArray();
            for (int c = 0; c < s.Length; c++) bv[c] *= s[c];
            g.Initializers[conv.Inputs[2]] = Tensor.FromArray<float>(bv, b.Dims, conv.Inputs[2]);
        }
    }
}
