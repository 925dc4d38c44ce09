using OnDevice.Compression.Calibration;
using OnDevice.Core;
using OnDevice.Runtime;

namespace OnDevice.Compression.Quantization;

/// <summary>A weight or activation that <see cref="QuantizeOptions.KeepSensitive"/> kept at higher precision, and why.</summary>
/// <param name="Kind">"activation" (its Q/DQ pair was left out, so the layers around it compute in float) or "weight" (stored as int8 per-channel instead of the requested sub-8-bit grid).</param>
/// <param name="Name">The activation's value name, or the weight's layer label.</param>
/// <param name="ModelErrorAlone">Relative error of the model's outputs on calibration data with only this quantized (everything else float).</param>
/// <param name="Rank">Its rank among all candidates (1 = the most sensitive).</param>
/// <param name="Candidates">How many weights and activations were ranked.</param>
public sealed record KeptSensitive(string Kind, string Name, double ModelErrorAlone, int Rank, int Candidates);

/// <summary>
/// Mixed precision by measured sensitivity: ranks every activation a static QDQ model would quantize, and every weight
/// quantized below 8 bits, by the model-output error on calibration data when only that one is quantized, and keeps
/// the <see cref="QuantizeOptions.KeepSensitive"/> most sensitive at higher precision (activations float, weights int8
/// per-channel). Eight-bit weights are not candidates (they are the higher precision).
/// </summary>
public static class SensitivityPolicy
{
    /// <summary>Calibration samples each activation's sensitivity is measured on (the first ones of the set).</summary>
    public const int ActivationSamples = 8;

    /// <summary>
    /// The values a static QDQ model quantizes: inputs and outputs of every weight site (not initializers); with
    /// <see cref="QdqPlacement.Activations"/> each output is replaced by the end of its element-wise chain.
    /// </summary>
    public static IReadOnlyList<string> QuantizedActivations(Model model, IReadOnlyList<string> exclude, QdqPlacement placement = QdqPlacement.Ops)
    {
        var copy = Quantizer.CopyModel(model);
        var (sites, _) = WeightSites.Find(copy.Graph, exclude);
        var ends = OutputPoints(sites, placement);
        var names = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var s in sites)
            foreach (var v in new[] { s.Node.Inputs[0], ends.GetValueOrDefault(s.Node.Outputs[0], s.Node.Outputs[0]) })
                if (v.Length > 0 && !s.Graph.Initializers.ContainsKey(v) && seen.Add(v)) names.Add(v);
        return names;
    }

    /// <summary>Where each site's output is quantized under <paramref name="placement"/> (only outputs that move are listed).</summary>
    private static Dictionary<string, string> OutputPoints(List<WeightSite> sites, QdqPlacement placement)
    {
        var r = new Dictionary<string, string>(StringComparer.Ordinal);
        if (placement != QdqPlacement.Activations) return r;
        foreach (var g in sites.GroupBy(s => s.Graph))
            foreach (var (k, v) in ActivationChains.Ends(g.Key, g.Select(s => s.Node.Outputs[0]))) r[k] = v;
        return r;
    }

    /// <summary>
    /// For each activation read by weight sites: the element count of the largest weight among them. An activation kept
    /// float makes those layers run in float, so this is what keeping it costs. With <see cref="QdqPlacement.Activations"/>
    /// the layer that writes the activation (through its element-wise chain) counts too: without the rounding point
    /// after its chain it cannot run as one integer conv either.
    /// </summary>
    public static Dictionary<string, long> ReaderWeightElements(Model model, IReadOnlyList<string> exclude, QdqPlacement placement = QdqPlacement.Ops)
    {
        var copy = Quantizer.CopyModel(model);
        var (sites, _) = WeightSites.Find(copy.Graph, exclude);
        var result = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var s in sites)
            if (s.Node.Inputs[0].Length > 0)
                result[s.Node.Inputs[0]] = Math.Max(result.GetValueOrDefault(s.Node.Inputs[0]), s.Tensor.ElementCount);
        if (placement == QdqPlacement.Activations)
        {
            var ends = OutputPoints(sites, placement);
            foreach (var s in sites)
            {
                var v = ends.GetValueOrDefault(s.Node.Outputs[0], s.Node.Outputs[0]);
                result[v] = Math.Max(result.GetValueOrDefault(v), s.Tensor.ElementCount);
            }
        }
        return result;
    }

    /// <summary>
    /// Each activation's sensitivity: the relative L2 error of the model's float outputs (all together) when only that
    /// value passes through QuantizeLinear→DequantizeLinear on its range, over the first <paramref name="samples"/>
    /// calibration samples, in OnDevice.Runtime. Values without a range are not measured.
    /// </summary>
    public static Dictionary<string, double> ActivationErrors(Model model, IEnumerable<string> values, IReadOnlyDictionary<string, ActivationRange> ranges,
        DType type, CalibrationSet calibration, int samples = ActivationSamples, IProgress<StageProgress>? progress = null)
    {
        if (calibration.Count == 0) throw new CalibrationSetException("the calibration set is empty: give at least one sample");
        var opts = new SessionOptions { Threads = 1 };
        var feeds = calibration.Samples().Take(Math.Max(1, samples)).ToList();
        var fs = new InferenceSession(model, opts);
        var outNames = fs.Outputs.Select(o => o.Name).ToList();
        float[] All(IReadOnlyDictionary<string, Tensor> o) => outNames.Where(n => o[n].DType.IsFloatingPoint()).SelectMany(n => o[n].ToFloatArray()).ToArray();
        var expected = feeds.Select(f => All(fs.Run(f))).ToList();
        var todo = values.Where(ranges.ContainsKey).Distinct(StringComparer.Ordinal).ToList();
        var result = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var v in todo)
        {
            var m = Quantizer.CopyModel(model);
            var g = m.Graph.SelfAndSubgraphs().FirstOrDefault(x => x.Nodes.Any(n => n.Inputs.Contains(v)));
            if (g is null || g.Initializers.ContainsKey(v)) continue;
            var edit = new GraphEdit(g);
            Quantizer.EmitActivationQdq(edit, v, ranges[v], type);
            edit.Finish();
            OpsetUpgrade.Raise(m, 10);
            var qs = new InferenceSession(m, opts);
            double num = 0, den = 0;
            for (int i = 0; i < feeds.Count; i++)
            {
                var y = All(qs.Run(feeds[i]));
                var e = expected[i];
                for (int k = 0; k < y.Length; k++) { double d = y[k] - e[k]; num += d * d; den += (double)e[k] * e[k]; }
            }
            result[v] = den > 0 ? Math.Sqrt(num / den) : Math.Sqrt(num);
            progress?.Report(new StageProgress("activation-sensitivity", result.Count, todo.Count, v));
        }
        return result;
    }

    /// <summary>
    /// Quantizes with <see cref="QuantizeOptions.KeepSensitive"/>: measures the candidates, keeps the most sensitive at
    /// higher precision, quantizes the rest as asked, and lists what was kept in the report.
    /// </summary>
    internal static CompressionResult Quantize(Model input, QuantizeOptions options)
    {
        var cal = options.Calibration ?? throw new CompressionException("keeping sensitive layers needs calibration data (--calibration DIR)");
        var inner = options with { KeepSensitive = 0 };
        var candidates = new List<(string Kind, string Name, double Error)>();
        bool staticQdq = options.ActivationRanges is not null && options.Format == QuantFormat.Qdq;
        if (staticQdq)
        {
            var readers = ReaderWeightElements(input, options.Exclude, options.Placement);
            var values = QuantizedActivations(input, options.Exclude, options.Placement).Where(v => options.FloatActivations?.Contains(v) != true
                && (options.KeepSensitiveMaxParameters <= 0 || readers.GetValueOrDefault(v) <= options.KeepSensitiveMaxParameters));
            foreach (var (v, e) in ActivationErrors(input, values, options.ActivationRanges!, options.ActivationType, cal, progress: options.Progress))
                candidates.Add(("activation", v, e));
        }
        int bits = options.Plan switch { null => options.Scheme.Bits, IntPlan ip => ip.Scheme.Bits, _ => 8 };
        if (bits < 8)
        {
            var probe = Quantizer.QuantizePrepared(input, inner with { MeasureSensitivity = true, ActivationRanges = null });
            foreach (var l in probe.Report.Layers)
                if (l.ModelErrorAlone is { } e && options.PerLayer?.ContainsKey(l.Layer) != true && l.Scheme.Contains("int4", StringComparison.Ordinal)
                    && (options.KeepSensitiveMaxParameters <= 0 || l.Parameters <= options.KeepSensitiveMaxParameters))
                    candidates.Add(("weight", l.Layer, e));
        }
        var ranked = candidates.OrderByDescending(c => c.Error).ThenBy(c => c.Name, StringComparer.Ordinal).ToList();
        var all = ranked.Select((c, i) => new KeptSensitive(c.Kind, c.Name, c.Error, i + 1, ranked.Count)).ToList();
        var keep = all.Take(options.KeepSensitive).ToList();
        var floatActs = new HashSet<string>(options.FloatActivations ?? new HashSet<string>(), StringComparer.Ordinal);
        var perLayer = new Dictionary<string, LayerPlan>(options.PerLayer ?? new Dictionary<string, LayerPlan>(), StringComparer.Ordinal);
        var int8 = new IntPlan(new QuantScheme(8, true, true, Granularity.PerChannel, 0, 0, options.Scheme.Fp16Scales));
        foreach (var k in keep)
            if (k.Kind == "activation") floatActs.Add(k.Name);
            else perLayer[k.Name] = int8;
        var result = Quantizer.QuantizePrepared(input, inner with { FloatActivations = floatActs, PerLayer = perLayer });
        result.Report.KeptAtHigherPrecision.AddRange(keep);
        result.Report.SensitivityRanking.AddRange(all);
        if (keep.Count < options.KeepSensitive)
            result.Report.Notes.Add($"--keep-sensitive {options.KeepSensitive}: only {ranked.Count} candidate(s) (activations of a static QDQ model, weights below 8 bits)");
        return result;
    }
}
