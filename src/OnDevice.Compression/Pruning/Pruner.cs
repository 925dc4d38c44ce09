using OnDevice.Compression.Calibration;
using OnDevice.Compression.Quantization;
using OnDevice.Core;
using OnDevice.Formats.Onnx;

namespace OnDevice.Compression.Pruning;

/// <summary>Which weights pruning removes.</summary>
public enum PrunePattern
{
    /// <summary>The smallest-magnitude fraction of each layer's weights set to zero.</summary>
    Unstructured,
    /// <summary>In every 4 consecutive weights along the reduction axis, the 2 smallest set to zero (50%).</summary>
    TwoFour,
    /// <summary>Whole output channels of a convolution removed, and the consuming convolution's input channels with them.</summary>
    Channel,
}

/// <summary>
/// Magnitude pruning passes. Unstructured and 2:4 keep dense float storage (zeros are stored; the file shrinks only
/// under general compression or with sparse kernels — the report says so). Channel pruning really removes weights:
/// a Conv's output channels with the smallest (BatchNormalization-scaled) filter norms go, with their bias and
/// BatchNormalization entries, and the consumer Conv's matching input channels — only where every path from the
/// pruned output to its consumer Convs runs through channel-wise ops (BatchNormalization, activations,
/// element-wise arithmetic with scalar constants), so the removal is exact apart from the removed channels.
/// </summary>
public static class Pruner
{
    private static readonly HashSet<string> Unary = new(StringComparer.Ordinal) { "Relu", "Clip", "Sigmoid", "HardSigmoid", "LeakyRelu", "Tanh", "HardSwish", "Identity", "Elu", "Selu", "Softplus" };
    private static readonly HashSet<string> Binary = new(StringComparer.Ordinal) { "Add", "Sub", "Mul", "Div" };

    /// <summary>Prunes a copy of <paramref name="input"/>.</summary>
    public static CompressionResult Prune(Model input, double sparsity, PrunePattern pattern, IReadOnlyList<string>? exclude = null, CalibrationSet? calibration = null)
    {
        if (pattern == PrunePattern.TwoFour) sparsity = 0.5;
        if (!(sparsity > 0 && sparsity < 1)) throw new CompressionException($"sparsity must be between 0 and 1 (exclusive), not {sparsity}");
        var model = Quantizer.CopyModel(input);
        var (sites, skipped) = WeightSites.Find(model.Graph, exclude);
        var reference = model.Graph.Clone();
        var report = new CompressionReport
        {
            Pass = "prune",
            Format = "float32 (dense)",
            Method = pattern switch { PrunePattern.Unstructured => "magnitude", PrunePattern.TwoFour => "2:4", _ => "channel" },
            InputBytes = input.SourcePath is { } sp && File.Exists(sp) ? new FileInfo(sp).Length : OnnxWriter.ToBytes(input).Length,
        };
        report.StayedFloat.AddRange(skipped.Where(s => !s.Reason.StartsWith("the weight is shared", StringComparison.Ordinal)));
        var measured = new HashSet<string>(StringComparer.Ordinal);
        var rows = new List<LayerReport>();
        if (pattern == PrunePattern.Channel) PruneChannels(model.Graph, sites, sparsity, rows, report, measured);
        else
        {
            foreach (var site in sites)
            {
                var m = site.Matrix();
                var pruned = pattern == PrunePattern.TwoFour ? TwoFour(m, site.Rows, site.Columns) : Magnitude(m, sparsity);
                var data = Layout.Permute(pruned, site.PermutedDims, Layout.Inverse(site.Perm));
                site.Graph.Initializers[site.WeightName] = Tensor.FromArray<float>(data, site.Tensor.Dims, site.WeightName);
                double zeros = pruned.Count(x => x == 0) / (double)pruned.Length;
                rows.Add(new LayerReport(site.Layer, site.Node.OpType, site.WeightName, $"{(pattern == PrunePattern.TwoFour ? "2:4" : "unstructured")} {zeros:P0} zeros",
                    "dense float32", site.Tensor.ElementCount, site.Tensor.ByteLength, site.Tensor.ByteLength, Quantizer.Sqnr(m, pruned), null, 0,
                    pattern == PrunePattern.TwoFour && site.Columns % 4 != 0 ? $"reduction {site.Columns} is not a multiple of 4: the last {site.Columns % 4} columns kept" : null));
                measured.Add(site.Node.Outputs[0]);
            }
            report.Notes.Add("zeros are stored densely: the file size is unchanged; it shrinks under zip/gzip or with a sparse weight format");
        }
        var floatModel = new Model(reference) { IrVersion = model.IrVersion };
        floatModel.OpsetImports.AddRange(model.OpsetImports);
        Dictionary<string, double>? errors = null;
        if (calibration is not null && pattern != PrunePattern.Channel)
            errors = Quantizer.MeasureOutputErrors(floatModel, model, measured, calibration, report);
        else if (calibration is not null)
            report.Notes.Add("channel pruning changes layer shapes: output errors are measured on the model outputs by the caller, not per layer");
        foreach (var r in rows)
        {
            string output = sites.FirstOrDefault(s => s.Layer == r.Layer)?.Node.Outputs[0] ?? "";
            report.Layers.Add(errors is not null && errors.TryGetValue(output, out var e) ? r with { OutputError = e } : r);
        }
        Quantizer.Rank(report.Layers);
        model.ProducerName = "ondevice";
        return new CompressionResult(model, report) { Simulated = pattern == PrunePattern.Channel ? null : model };
    }

    /// <summary>Sets the <paramref name="sparsity"/> fraction of smallest-magnitude values to zero.</summary>
    public static float[] Magnitude(float[] w, double sparsity)
    {
        int k = (int)Math.Round(w.Length * sparsity);
        var r = (float[])w.Clone();
        if (k <= 0) return r;
        var order = Enumerable.Range(0, w.Length).OrderBy(i => Math.Abs(w[i])).ThenBy(i => i).Take(k);
        foreach (var i in order) r[i] = 0;
        return r;
    }

    /// <summary>In each group of 4 consecutive columns of a row, zeroes the 2 smallest magnitudes.</summary>
    public static float[] TwoFour(float[] w, int rows, int cols)
    {
        var r = (float[])w.Clone();
        for (int row = 0; row < rows; row++)
            for (int c = 0; c + 4 <= cols; c += 4)
            {
                int b = row * cols + c;
                var idx = new[] { 0, 1, 2, 3 }.OrderBy(j => Math.Abs(w[b + j])).ThenBy(j => j).Take(2);
                foreach (var j in idx) r[b + j] = 0;
            }
        return r;
    }

    private static void PruneChannels(Graph main, List<WeightSite> sites, double sparsity, List<LayerReport> rows, CompressionReport report, HashSet<string> measured)
    {
        foreach (var original in sites.Where(s => s.Node.OpType == "Conv" && !s.Depthwise && s.Node.GetInt("group", 1) == 1 && ReferenceEquals(s.Graph, main)))
        {
            var g = original.Graph;
            // A consumer of an earlier pruned layer has lost input channels already: work on its current weight.
            var site = original with { Tensor = g.Initializers[original.WeightName] };
            var region = Region(g, site.Node.Outputs[0], out var bns, out var sinks, out var why);
            if (region is null)
            {
                report.StayedFloat.Add(new(site.Layer, "Conv", site.WeightName, site.Tensor.ByteLength, $"output channels kept: {why}"));
                continue;
            }
            int m = site.Rows;
            int remove = Math.Min(m - 1, (int)Math.Round(m * sparsity));
            if (remove <= 0) continue;
            var w = site.Tensor.ToFloatArray();
            int per = site.Columns;
            var score = new double[m];
            for (int o = 0; o < m; o++)
            {
                double s2 = 0;
                for (int j = 0; j < per; j++) s2 += (double)w[o * per + j] * w[o * per + j];
                score[o] = Math.Sqrt(s2);
            }
            foreach (var bn in bns)
            {
                var scale = g.Initializers[bn.Inputs[1]].ToFloatArray();
                var var_ = g.Initializers[bn.Inputs[4]].ToFloatArray();
                float eps = bn.GetFloat("epsilon", 1e-5f);
                for (int o = 0; o < m; o++) score[o] *= Math.Abs(scale[o]) / Math.Sqrt(var_[o] + eps);
            }
            var keep = Enumerable.Range(0, m).OrderByDescending(o => score[o]).ThenBy(o => o).Take(m - remove).Order().ToArray();
            long before = site.Tensor.ByteLength, after = 0;
            after += Slice(g, site.WeightName, 0, keep);
            if (site.Node.Inputs.Count > 2 && site.Node.Inputs[2].Length > 0) { before += g.Initializers[site.Node.Inputs[2]].ByteLength; after += Slice(g, site.Node.Inputs[2], 0, keep); }
            foreach (var bn in bns)
                for (int i = 1; i <= 4; i++) { before += g.Initializers[bn.Inputs[i]].ByteLength; after += Slice(g, bn.Inputs[i], 0, keep); }
            foreach (var sink in sinks)
            {
                before += g.Initializers[sink.Inputs[1]].ByteLength;
                after += Slice(g, sink.Inputs[1], 1, keep);
                measured.Add(sink.Outputs[0]);
            }
            // Shapes recorded for values in the region are stale now.
            g.ValueInfos.RemoveAll(v => region.Contains(v.Name));
            rows.Add(new LayerReport(site.Layer, "Conv", site.WeightName, $"channel {m}->{keep.Length} ({remove / (double)m:P0} removed)", "float32",
                site.Tensor.ElementCount, before, after, 0, null, 0, $"consumers: {string.Join(", ", sinks.Select(s => s.Name.Length > 0 ? s.Name : s.Outputs[0]))}"));
        }
    }

    /// <summary>Slices initializer <paramref name="name"/> along <paramref name="axis"/> to <paramref name="keep"/>; returns its new byte size.</summary>
    private static long Slice(Graph g, string name, int axis, int[] keep)
    {
        var t = g.Initializers[name];
        var dims = t.Dims;
        var data = t.ToFloatArray();
        long outer = 1, inner = 1;
        for (int d = 0; d < axis; d++) outer *= dims[d];
        for (int d = axis + 1; d < dims.Length; d++) inner *= dims[d];
        var r = new float[outer * keep.Length * inner];
        long p = 0;
        for (long o = 0; o < outer; o++)
            foreach (var k in keep)
            {
                Array.Copy(data, (o * dims[axis] + k) * inner, r, p, inner);
                p += inner;
            }
        var nd = (long[])dims.Clone();
        nd[axis] = keep.Length;
        var nt = Tensor.FromArray<float>(r, nd, name);
        g.Initializers[name] = nt;
        return nt.ByteLength;
    }

    /// <summary>
    /// The values reachable from <paramref name="start"/> through channel-wise ops, with the BatchNormalizations
    /// on the way and the Conv consumers at the end; null (and why) when any path leaves through something else.
    /// </summary>
    private static HashSet<string>? Region(Graph g, string start, out List<Node> bns, out List<Node> sinks, out string why)
    {
        bns = [];
        sinks = [];
        why = "";
        var consumers = g.Nodes.SelectMany(n => n.Inputs.Select((i, k) => (i, n, k))).Where(x => x.i.Length > 0)
            .GroupBy(x => x.i).ToDictionary(x => x.Key, x => x.Select(y => (y.n, y.k)).ToList(), StringComparer.Ordinal);
        var outputs = g.Outputs.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        var inits = g.Initializers;
        var region = new HashSet<string>(StringComparer.Ordinal) { start };
        var queue = new Queue<string>([start]);
        var visitedNodes = new HashSet<Node>(ReferenceEqualityComparer.Instance);
        while (queue.Count > 0)
        {
            var v = queue.Dequeue();
            if (outputs.Contains(v)) { why = $"'{v}' is a graph output"; return null; }
            if (!consumers.TryGetValue(v, out var cs)) continue;
            foreach (var (n, k) in cs)
            {
                if (!visitedNodes.Add(n)) continue;
                if (n.OpType == "Conv" && n.IsDefaultDomain && k == 0 && n.GetInt("group", 1) == 1 && n.Inputs.Count > 1 && inits.ContainsKey(n.Inputs[1])
                    && consumers[n.Inputs[1]].Count == 1)
                {
                    sinks.Add(n);
                    continue;
                }
                bool ok = n.IsDefaultDomain && n.Outputs.Count >= 1;
                if (ok && n.OpType == "BatchNormalization" && k == 0 && n.Inputs.Skip(1).Take(4).All(i => inits.ContainsKey(i) && consumers[i].Count == 1))
                    bns.Add(n);
                else if (ok && Unary.Contains(n.OpType))
                    ok = n.Inputs.Select((i, j) => j == 0 ? i == v || region.Contains(i) : i.Length == 0 || (inits.TryGetValue(i, out var t) && t.ElementCount == 1)).All(x => x);
                else if (ok && Binary.Contains(n.OpType))
                    ok = n.Inputs.All(i => region.Contains(i) || IsProducedInRegionLater(i) || (inits.TryGetValue(i, out var t) && t.ElementCount == 1));
                else ok = false;
                if (!ok) { why = $"'{v}' feeds {n.Label}, which is not channel-wise"; return null; }
                foreach (var o in n.Outputs.Take(1))
                    if (region.Add(o)) queue.Enqueue(o);
            }
        }
        if (sinks.Count == 0) { why = "no Conv consumes the output"; return null; }
        // A binary op whose second operand came from outside the region would mix channels: check it now.
        foreach (var n in visitedNodes)
            if (Binary.Contains(n.OpType) && !n.Inputs.All(i => region.Contains(i) || (inits.TryGetValue(i, out var t) && t.ElementCount == 1)))
            {
                why = $"{n.Label} combines the output with a value from elsewhere";
                return null;
            }
        return region;

        static bool IsProducedInRegionLater(string _) => true;
    }
}
