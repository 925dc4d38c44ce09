using OnDevice.Compression.Palettization;
using OnDevice.Core;
using OnDevice.Formats.Onnx;
using OnDevice.Runtime;

namespace OnDevice.Compression.Quantization;

/// <summary>One layer's line in a compression report.</summary>
/// <param name="Layer">Node name (or first output).</param>
/// <param name="OpType">Conv, ConvTranspose, Gemm, MatMul.</param>
/// <param name="Weight">The weight's name.</param>
/// <param name="Scheme">What the weight became ("int8 channel sym", "fp16", "pal4", ...).</param>
/// <param name="Form">How it is written (DequantizeLinear, MatMulNBits, QLinearConv, ...).</param>
/// <param name="Parameters">Weight elements.</param>
/// <param name="BytesBefore">Float32 bytes of the weight.</param>
/// <param name="BytesAfter">Bytes of everything stored for it (values, scales, zero points, codebooks).</param>
/// <param name="SqnrDb">Weight signal-to-quantization-noise ratio in dB (capped at 200 for exact).</param>
/// <param name="OutputError">Relative L2 error of the layer's output vs the float model on calibration data, if measured.</param>
/// <param name="SensitivityRank">1 = the most sensitive layer: by <see cref="LayerReport.ModelErrorAlone"/> when measured, else by output error, else by SQNR.</param>
/// <param name="Note">Anything the reader should know (upgraded granularity, fallback form).</param>
public sealed record LayerReport(string Layer, string OpType, string Weight, string Scheme, string Form, long Parameters, long BytesBefore, long BytesAfter,
    double SqnrDb, double? OutputError, int SensitivityRank, string? Note)
{
    /// <summary>Relative error of the model's outputs with only this layer compressed (calibration data), if measured.</summary>
    public double? ModelErrorAlone { get; init; }
}

/// <summary>What a compression pass did.</summary>
public sealed class CompressionReport
{
    /// <summary>The pass ("quantize", "palettize", "prune") and its main setting.</summary>
    public string Pass { get; init; } = "";
    /// <summary>Output form.</summary>
    public string Format { get; init; } = "";
    /// <summary>Rounding method (rtn, gptq, kmeans, magnitude).</summary>
    public string Method { get; init; } = "";
    /// <summary>Bytes of the input model file (set by the caller that read it), else of its serialized form.</summary>
    public long InputBytes { get; set; }
    /// <summary>Bytes of the written model.</summary>
    public long OutputBytes { get; set; }
    /// <summary>Sum of <see cref="LayerReport.BytesBefore"/> over compressed layers.</summary>
    public long LayerBytesBefore => Layers.Sum(l => l.BytesBefore);
    /// <summary>Sum of <see cref="LayerReport.BytesAfter"/> over compressed layers.</summary>
    public long LayerBytesAfter => Layers.Sum(l => l.BytesAfter);
    /// <summary>Calibration samples the output errors were measured on (0 = not measured).</summary>
    public int CalibrationSamples { get; set; }
    /// <summary>Per-layer table.</summary>
    public List<LayerReport> Layers { get; } = [];
    /// <summary>Layers and large constants that stayed float, with the reason.</summary>
    public List<SkippedLayer> StayedFloat { get; } = [];
    /// <summary>Other notes.</summary>
    public List<string> Notes { get; } = [];
    /// <summary>Weights and activations <see cref="QuantizeOptions.KeepSensitive"/> kept at higher precision, most sensitive first.</summary>
    public List<KeptSensitive> KeptAtHigherPrecision { get; } = [];
    /// <summary>Every candidate <see cref="QuantizeOptions.KeepSensitive"/> ranked (the kept ones first), for choosing N.</summary>
    public List<KeptSensitive> SensitivityRanking { get; } = [];
}

/// <summary>The compressed model and its report.</summary>
public sealed record CompressionResult(Model Model, CompressionReport Report)
{
    /// <summary>
    /// The float model with every compressed weight replaced by its reconstruction (dequantized or decoded) — what a
    /// weight-only compressed model computes, runnable by any float runtime; null when not built.
    /// </summary>
    public Model? Simulated { get; init; }

    /// <summary>Serializes the model, checks it against <paramref name="maxBytes"/> (if given), and writes it atomically.</summary>
    public long Save(string path, long? maxBytes = null)
    {
        var bytes = OnnxWriter.ToBytes(Model);
        if (maxBytes is { } m && bytes.Length > m)
            throw new CompressionException($"the compressed model is {bytes.Length:N0} bytes, over --max-size {m:N0}; nothing was written");
        AtomicFile.WriteAllBytes(path, bytes);
        Report.OutputBytes = bytes.Length;
        return bytes.Length;
    }
}

/// <summary>
/// Weight quantization over the IR: finds Conv/ConvTranspose/Gemm/MatMul weights (initializers or Constant nodes),
/// rounds them with an <see cref="IWeightRounder"/> (RTN by default) and writes standard ONNX (QDQ, QOperator or
/// com.microsoft MatMulNBits), raising the opset as the chosen forms need.
/// </summary>
public static class Quantizer
{
    /// <summary>Quantizes a copy of <paramref name="input"/>; the input model is not modified.</summary>
    public static CompressionResult Quantize(Model input, QuantizeOptions options)
    {
        options.Validate();
        var (prepared, notes) = Prepare(input, options);
        var result = QuantizePrepared(prepared, options with { Equalize = false });
        result.Report.Notes.InsertRange(0, notes);
        return result;
    }

    /// <summary>
    /// The model the quantizer works on: a copy of <paramref name="input"/> with Conv affines folded
    /// (<see cref="QuantizeOptions.FoldConvAffine"/>) and Conv → depthwise pairs equalized (<see cref="QuantizeOptions.Equalize"/>),
    /// and notes on what changed. Calibrate activation ranges on this model (its values keep their names), then quantize
    /// it with <see cref="QuantizeOptions.Equalize"/> off; folding again finds nothing to fold. Returns
    /// <paramref name="input"/> itself when nothing was folded or equalized.
    /// </summary>
    public static (Model Model, List<string> Notes) Prepare(Model input, QuantizeOptions options)
    {
        var model = CopyModel(input);
        var notes = new List<string>();
        if (options.Folds && ConvFolding.Fold(model.Graph) is var folded and > 0)
            notes.Add($"folded {folded} BatchNormalization / constant Mul, Add, Sub, Div node(s) into the Conv before it");
        if (options.Equalize && options.Calibration is { } cal)
            foreach (var p in CrossLayerEqualization.Equalize(model, cal))
                notes.Add(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                    $"equalized {p.First} -> {p.Depthwise} on '{p.Value}' (per-channel max |x| spread {p.SpreadBefore:0.0}x before)"));
        // Nothing changed: hand on the input itself (what the rounder factory and callers see stays the caller's model).
        return (notes.Count == 0 ? input : model, notes);
    }

    /// <summary>Quantizes a model <see cref="Prepare"/> made (no further folding or equalization).</summary>
    internal static CompressionResult QuantizePrepared(Model input, QuantizeOptions options)
    {
        if (options.KeepSensitive > 0) return SensitivityPolicy.Quantize(input, options);
        var model = CopyModel(input);
        var (sites, skipped) = WeightSites.Find(model.Graph, options.Exclude);
        var editedGraphs = model.Graph.SelfAndSubgraphs().ToList();
        var reference = model.Graph.Clone();
        var originalOpsets = model.OpsetImports.ToList();
        long originalIr = model.IrVersion;
        var rounder = options.RounderFactory?.Invoke(input, options.Calibration) ?? RtnRounder.Instance;
        var report = new CompressionReport
        {
            Pass = "quantize",
            Format = options.Format.ToString().ToLowerInvariant(),
            Method = options.Plan is PalettePlan ? "kmeans" : rounder.Name,
            InputBytes = input.SourcePath is { } sp && File.Exists(sp) ? new FileInfo(sp).Length : OnnxWriter.ToBytes(input).Length,
        };
        report.StayedFloat.AddRange(skipped);
        var edits = new Dictionary<Graph, GraphEdit>(ReferenceEqualityComparer.Instance);
        var recon = new Dictionary<(Graph, string), float[]>();
        long opset = model.OpsetVersion("") ?? 1;
        long need = 1;
        bool usesMs = false;
        var activationNames = new List<(GraphEdit Edit, string Name)>();
        var rows = new List<(WeightSite Site, string Scheme, string Form, long After, double Sqnr, string? Note)>();
        var chainEnds = options.Placement == QdqPlacement.Activations && options.ActivationRanges is not null
            ? sites.GroupBy(ws => ws.Graph).SelectMany(gr => ActivationChains.Ends(gr.Key, gr.Select(ws => ws.Node.Outputs[0])).Select(kv => (G: gr.Key, From: kv.Key, To: kv.Value)))
                .ToDictionary(x => (x.G, x.From), x => x.To)
            : new Dictionary<(Graph, string), string>();

        foreach (var site in sites)
        {
            if (!edits.TryGetValue(site.Graph, out var edit)) edits[site.Graph] = edit = new GraphEdit(site.Graph);
            var plan = options.PerLayer is { } pl && pl.TryGetValue(site.Layer, out var p) ? p : options.Plan ?? new IntPlan(options.Scheme);
            string? note = null;
            long before = edit.AddedBytes;
            string form;
            float[] rebuilt;
            switch (plan)
            {
                case FloatPlan:
                    report.StayedFloat.Add(new(site.Layer, site.Node.OpType, site.WeightName, site.Tensor.ByteLength, "kept float by the size budget"));
                    continue;
                case Fp16Plan:
                {
                    var f = site.Tensor.ToFloatArray();
                    rebuilt = f.Select(x => (float)(Half)x).ToArray();
                    edit.RemoveInitializer(site.WeightName);
                    string h = edit.AddFloats(site.WeightName + "_fp16", f, site.Tensor.Dims, fp16: true);
                    edit.Prefix.Add(edit.Node("Cast", [h], [site.WeightName], site.WeightName + "_cast").With(Core.Attribute.Of("to", (long)DType.Float32)));
                    form = "Cast(float16)";
                    break;
                }
                case PalettePlan pp:
                {
                    var (pal, palNote) = Palettizer.Cluster(site, pp);
                    long palBytes = (pp.Bits <= 4 ? (site.Tensor.ElementCount + 1) / 2 : site.Tensor.ElementCount) + pal.Codebooks.Length * 4L;
                    if (palBytes >= site.Tensor.ByteLength)
                    {
                        report.StayedFloat.Add(new(site.Layer, site.Node.OpType, site.WeightName, site.Tensor.ByteLength,
                            $"too small to palettize: indices and codebooks ({palBytes} bytes) would not be smaller than float32"));
                        continue;
                    }
                    note = palNote;
                    rebuilt = Layout.Permute(pal.Reconstruct(), site.PermutedDims, Layout.Inverse(site.Perm));
                    need = Math.Max(need, Palettizer.Emit(edit, site, pal));
                    form = pal.GroupSize > 0 ? "GatherND(codebook)" : "Gather(codebook)";
                    break;
                }
                case IntPlan ip:
                {
                    var scheme = ip.Scheme;
                    if (site.Depthwise && scheme.Granularity == Granularity.PerTensor)
                    {
                        scheme = scheme with { Granularity = Granularity.PerChannel };
                        note = "depthwise: per-channel (per-tensor collapses depthwise convolutions)";
                    }
                    scheme = scheme with { Axis = scheme.Granularity == Granularity.Blocked ? 1 : 0 };
                    var q = rounder.Quantize(new WeightMatrix(site.WeightName, site.Matrix(), site.Rows, site.Columns), scheme);
                    if (rounder is IBiasCorrectingRounder bc && bc.BiasCorrection(site.WeightName) is { } delta)
                    {
                        var (biasName, biasData, why) = Gptq.BiasSlots.Add(site.Graph, site.Node, delta);
                        if (biasName is not null) recon[(site.Graph, biasName)] = biasData!; // the simulated model gets it where the float model has that bias
                        string bn = why is null ? $"bias corrected ({biasName})" : $"no bias correction: {why}";
                        note = note is null ? bn : note + "; " + bn;
                    }
                    rebuilt = Layout.Permute(q.Dequantize(), site.PermutedDims, Layout.Inverse(site.Perm));
                    // DequantizeLinear with float16 scales computes in float16.
                    if (scheme.Fp16Scales) rebuilt = rebuilt.Select(x => (float)(Half)x).ToArray();
                    (form, long req, string? fallback) = EmitInt(edit, site, q, options, activationNames,
                        chainEnds.GetValueOrDefault((site.Graph, site.Node.Outputs[0]), site.Node.Outputs[0]));
                    if (fallback is not null) note = note is null ? fallback : note + "; " + fallback;
                    need = Math.Max(need, req);
                    usesMs |= form == "MatMulNBits";
                    break;
                }
                default:
                    throw new CompressionException($"unknown layer plan {plan}");
            }
            recon[(site.Graph, site.WeightName)] = rebuilt;
            rows.Add((site, plan is IntPlan ip2 && site.Depthwise && ip2.Scheme.Granularity == Granularity.PerTensor
                ? IntPlan.Describe(ip2.Scheme with { Granularity = Granularity.PerChannel }) : plan.Label, form, edit.AddedBytes - before, Sqnr(site.Tensor.ToFloatArray(), rebuilt), note));
        }

        // Static QDQ: a Q/DQ pair on every activation entering or leaving a quantized layer that has a range.
        if (options.ActivationRanges is { } ranges && options.Format == QuantFormat.Qdq)
        {
            foreach (var grp in activationNames.GroupBy(a => a.Edit))
                foreach (var name in grp.Select(a => a.Name).Distinct())
                    if (options.FloatActivations?.Contains(name) == true) report.Notes.Add($"activation '{name}' left float (kept at higher precision)");
                    else if (ranges.TryGetValue(name, out var r)) EmitActivationQdq(grp.Key, name, r, options.ActivationType);
                    else report.Notes.Add($"no activation range for '{name}': left float");
            need = Math.Max(need, 10);
        }

        foreach (var e in edits.Values) e.Finish();
        var (floatModel, simulated) = BuildSimulated(reference, editedGraphs, recon, originalOpsets, originalIr);
        if (need > opset) OpsetUpgrade.Raise(model, need);
        else model.IrVersion = Math.Max(model.IrVersion, OpsetUpgrade.IrVersionFor(opset));
        if (usesMs && model.OpsetVersion("com.microsoft") is null) model.OpsetImports.Add(new OpsetImport("com.microsoft", 1));
        model.ProducerName = "ondevice";

        var errors = options.Calibration is { } cal ? MeasureOutputErrors(floatModel, simulated, rows.Select(r => r.Site.Node.Outputs[0]).ToHashSet(StringComparer.Ordinal), cal, report) : null;
        var alone = options.Calibration is { } cal2 && options.MeasureSensitivity && errors is not null
            ? MeasureSensitivity(floatModel, reference, editedGraphs, recon, rows.Select(r => r.Site).ToList(), originalOpsets, originalIr, cal2, report) : null;
        foreach (var (site, scheme, form, after, sqnr, note) in rows)
            report.Layers.Add(new LayerReport(site.Layer, site.Node.OpType, site.WeightName, scheme, form, site.Tensor.ElementCount, site.Tensor.ByteLength, after, sqnr,
                errors is not null && errors.TryGetValue(site.Node.Outputs[0], out var err) ? err : null, 0, note)
            { ModelErrorAlone = alone is not null && alone.TryGetValue(site.Layer, out var a) ? a : null });
        Rank(report.Layers);
        return new CompressionResult(model, report) { Simulated = simulated };
    }

    /// <summary>The float model (constants lifted) and the same model with every compressed weight replaced by its reconstruction.</summary>
    private static (Model Float, Model Simulated) BuildSimulated(Graph reference, List<Graph> editedGraphs, Dictionary<(Graph, string), float[]> recon,
        List<OpsetImport> opsets, long irVersion)
    {
        var fake = reference.Clone();
        var fakeGraphs = fake.SelfAndSubgraphs().ToList();
        foreach (var ((g, name), data) in recon)
        {
            var fg = fakeGraphs[editedGraphs.FindIndex(x => ReferenceEquals(x, g))];
            if (fg.Initializers.TryGetValue(name, out var t)) fg.Initializers[name] = Tensor.FromArray<float>(data, t.Dims, name);
        }
        var floatModel = new Model(reference) { IrVersion = irVersion };
        var simulated = new Model(fake) { IrVersion = irVersion };
        floatModel.OpsetImports.AddRange(opsets);
        simulated.OpsetImports.AddRange(opsets);
        return (floatModel, simulated);
    }

    /// <summary>
    /// Each layer's sensitivity: the relative error of the model's float outputs (together) when only that layer is compressed
    /// (everything else float), on the first <see cref="MaxSensitivitySamples"/> calibration samples, in OnDevice.Runtime.
    /// </summary>
    private static Dictionary<string, double>? MeasureSensitivity(Model floatModel, Graph reference, List<Graph> editedGraphs, Dictionary<(Graph, string), float[]> recon,
        List<WeightSite> sites, List<OpsetImport> opsets, long ir, Calibration.CalibrationSet cal, CompressionReport report)
    {
        try
        {
            var opts = new SessionOptions { Threads = 1 };
            var samples = cal.Samples().Take(MaxSensitivitySamples).ToList();
            var fs = new InferenceSession(floatModel, opts);
            var outNames = fs.Outputs.Select(o => o.Name).ToList();
            float[] All(IReadOnlyDictionary<string, Tensor> o) => outNames.Where(n => o[n].DType.IsFloatingPoint()).SelectMany(n => o[n].ToFloatArray()).ToArray();
            var expected = samples.Select(x => All(fs.Run(x))).ToList();
            var r = new Dictionary<string, double>(StringComparer.Ordinal);
            foreach (var site in sites)
            {
                if (!recon.TryGetValue((site.Graph, site.WeightName), out var data)) continue;
                var one = new Dictionary<(Graph, string), float[]> { [(site.Graph, site.WeightName)] = data };
                var (_, sim) = BuildSimulated(reference, editedGraphs, one, opsets, ir);
                var qs = new InferenceSession(sim, opts);
                double num = 0, den = 0;
                for (int i = 0; i < samples.Count; i++)
                {
                    var y = All(qs.Run(samples[i]));
                    for (int k = 0; k < y.Length; k++) { double d = y[k] - expected[i][k]; num += d * d; den += (double)expected[i][k] * expected[i][k]; }
                }
                r[site.Layer] = den > 0 ? Math.Sqrt(num / den) : Math.Sqrt(num);
            }
            return r;
        }
        catch (Exception e) when (e is NotSupportedException or InvalidOperationException or ArgumentException)
        {
            report.Notes.Add($"sensitivity not measured: OnDevice.Runtime could not run the model ({e.Message})");
            return null;
        }
    }

    /// <summary>Calibration samples used for per-layer sensitivity (each layer costs one run per sample).</summary>
    public const int MaxSensitivitySamples = 4;

    /// <summary>Assigns sensitivity ranks: by the model error with the layer alone compressed, else by layer output error, else by SQNR.</summary>
    internal static void Rank(List<LayerReport> layers)
    {
        var order = layers.Select((l, i) => (l, i))
            .OrderByDescending(x => x.l.ModelErrorAlone ?? -1)
            .ThenByDescending(x => x.l.OutputError ?? -1)
            .ThenBy(x => x.l.SqnrDb).Select(x => x.i).ToList();
        for (int r = 0; r < order.Count; r++) layers[order[r]] = layers[order[r]] with { SensitivityRank = r + 1 };
    }

    /// <summary>A structural copy of <paramref name="m"/> (tensors shared, never modified in place).</summary>
    public static Model CopyModel(Model m)
    {
        var c = new Model(m.Graph.Clone())
        {
            IrVersion = m.IrVersion, ProducerName = m.ProducerName, ProducerVersion = m.ProducerVersion, Domain = m.Domain,
            ModelVersion = m.ModelVersion, DocString = m.DocString, SourcePath = m.SourcePath,
        };
        c.OpsetImports.AddRange(m.OpsetImports);
        c.Metadata.AddRange(m.Metadata);
        c.Functions.AddRange(m.Functions);
        return c;
    }

    /// <summary>Signal-to-quantization-noise ratio in dB, capped at 200 (exact reconstruction).</summary>
    public static double Sqnr(float[] reference, float[] approx)
    {
        double s = 0, e = 0;
        for (int i = 0; i < reference.Length; i++)
        {
            s += (double)reference[i] * reference[i];
            double d = reference[i] - approx[i];
            e += d * d;
        }
        if (e <= 0) return 200;
        if (s <= 0) return 0;
        return Math.Min(200, 10 * Math.Log10(s / e));
    }

    private static bool SimpleGemm(Node n) =>
        n.OpType == "MatMul" || (n.OpType == "Gemm" && n.GetInt("transA", 0) == 0 && n.GetFloat("alpha", 1) == 1 && n.GetFloat("beta", 1) == 1);

    private static (string Form, long Opset, string? Note) EmitInt(GraphEdit edit, WeightSite site, QuantizedWeight q, QuantizeOptions o,
        List<(GraphEdit, string)> activations, string outputPoint)
    {
        var n = site.Node;
        bool matmulLike = n.OpType is "MatMul" or "Gemm";
        switch (o.Format)
        {
            case QuantFormat.MatMulNBits when matmulLike && SimpleGemm(n):
                EmitMatMulNBits(edit, site, q);
                return ("MatMulNBits", 1, null);
            case QuantFormat.MatMulNBits:
                return (EmitDq(edit, site, q, out long r1), r1, $"{n.OpType} has no MatMulNBits form: written as DequantizeLinear");
            case QuantFormat.QOperator when o.ActivationRanges is { } ranges:
            {
                string x = n.Inputs[0], y = n.Outputs[0];
                bool hasRanges = ranges.ContainsKey(x) && ranges.ContainsKey(y);
                if (hasRanges && n.OpType == "Conv")
                {
                    EmitQLinearConv(edit, site, q, ranges[x], ranges[y], o.ActivationType);
                    return ("QLinearConv", 10, null);
                }
                if (hasRanges && matmulLike && SimpleGemm(n))
                {
                    EmitQLinearMatMul(edit, site, q, ranges[x], ranges[y], o.ActivationType);
                    return ("QLinearMatMul", 10, null);
                }
                return (EmitDq(edit, site, q, out long r2), r2, hasRanges ? $"{n.OpType} has no QLinear form: weight written as DequantizeLinear" : "no activation range: weight-only DequantizeLinear");
            }
            case QuantFormat.QOperator when matmulLike && SimpleGemm(n):
                EmitDynamic(edit, site, q);
                return ("MatMulInteger(dynamic)", 11, null);
            case QuantFormat.QOperator:
                return (EmitDq(edit, site, q, out long r3), r3, "dynamic quantization covers MatMul/Gemm inputs: weight written as DequantizeLinear");
            default:
                if (o.ActivationRanges is not null)
                {
                    activations.Add((edit, n.Inputs[0]));
                    activations.Add((edit, outputPoint));
                }
                return (EmitDq(edit, site, q, out long r4), r4, null);
        }
    }

    /// <summary>Replaces the weight initializer by DequantizeLinear (per-axis or blocked) producing the same name.</summary>
    private static string EmitDq(GraphEdit edit, WeightSite site, QuantizedWeight q, out long opset)
    {
        var s = q.Scheme;
        string w = site.WeightName;
        var dims = site.Tensor.Dims;
        var inv = Layout.Inverse(site.Perm);
        int rank = dims.Length;
        edit.RemoveInitializer(w);
        opset = s.Granularity switch { Granularity.PerTensor => 10, Granularity.PerChannel => 13, _ => 21 };
        if (s.Bits == 4) opset = 21;
        if (s.Fp16Scales) opset = Math.Max(opset, 19);

        int[] values; long[] vdims; float[] scales; int[] zps; long[] sdims; long axis = 0; bool twoD = false;
        int nb = s.Granularity == Granularity.Blocked ? (site.Columns + s.BlockSize - 1) / s.BlockSize : 0;
        if (s.Granularity != Granularity.Blocked)
        {
            values = Layout.Permute(q.Values, site.PermutedDims, inv);
            vdims = dims;
            scales = q.Scales;
            zps = q.ZeroPoints;
            sdims = s.Granularity == Granularity.PerTensor ? [] : [site.Rows];
            axis = site.ChannelAxis;
        }
        else
        {
            var red = Enumerable.Range(0, rank).Where(a => a != site.ChannelAxis && dims[a] > 1).ToList();
            if (red.Count <= 1)
            {
                int b = red.Count == 1 ? red[0] : Enumerable.Range(0, rank).First(a => a != site.ChannelAxis);
                values = Layout.Permute(q.Values, site.PermutedDims, inv);
                vdims = dims;
                var spd = site.PermutedDims.ToArray();
                spd[Array.IndexOf(site.Perm, b)] = nb;
                scales = Layout.Permute(q.Scales, spd, inv);
                zps = Layout.Permute(q.ZeroPoints, spd, inv);
                sdims = dims.Select((d, i) => i == b ? nb : d).ToArray();
                axis = b;
            }
            else
            {
                values = q.Values;
                vdims = [site.Rows, site.Columns];
                scales = q.Scales;
                zps = q.ZeroPoints;
                sdims = [site.Rows, nb];
                axis = 1;
                twoD = true;
            }
        }
        string qn = edit.AddQuantized(w + "_quantized", values, vdims, s.DType);
        string sn = edit.AddFloats(w + "_scale", scales, sdims, s.Fp16Scales);
        bool omitZp = s.Signed && zps.All(z => z == 0);
        var inputs = omitZp ? new[] { qn, sn } : [qn, sn, edit.AddQuantized(w + "_zero_point", zps, sdims, s.DType)];
        string last = s.Fp16Scales || twoD ? edit.Fresh(w + "_dq") : w;
        var dq = edit.Node("DequantizeLinear", inputs, [last], w + "_DequantizeLinear");
        if (s.Granularity != Granularity.PerTensor) dq.With(Core.Attribute.Of("axis", axis));
        if (s.Granularity == Granularity.Blocked) dq.With(Core.Attribute.Of("block_size", (long)s.BlockSize));
        edit.Prefix.Add(dq);
        if (s.Fp16Scales)
        {
            string c = twoD ? edit.Fresh(w + "_dqf") : w;
            edit.Prefix.Add(edit.Node("Cast", [last], [c], w + "_Cast").With(Core.Attribute.Of("to", (long)DType.Float32)));
            last = c;
        }
        if (twoD)
        {
            bool transpose = !site.IdentityPerm;
            string shaped = transpose ? edit.Fresh(w + "_shaped") : w;
            edit.Prefix.Add(edit.Node("Reshape", [last, edit.AddInts(w + "_shape", site.PermutedDims)], [shaped], w + "_Reshape"));
            if (transpose)
                edit.Prefix.Add(edit.Node("Transpose", [shaped], [w], w + "_Transpose").With(Core.Attribute.Of("perm", inv.Select(i => (long)i).ToArray())));
        }
        return "DequantizeLinear";
    }

    private static void RemoveIfUnused(GraphEdit edit, string name)
    {
        if (!edit.Graph.Nodes.Any(n => n.Inputs.Contains(name)) && !edit.Graph.Outputs.Any(o => o.Name == name)) edit.RemoveInitializer(name);
    }

    /// <summary>Replaces <paramref name="old"/> by <paramref name="nodes"/> at its position.</summary>
    private static void Replace(GraphEdit edit, Node old, params Node[] nodes)
    {
        int i = edit.Graph.Nodes.IndexOf(old);
        edit.Graph.Nodes.RemoveAt(i);
        edit.Graph.Nodes.InsertRange(i, nodes);
    }

    /// <summary>For Gemm, adds C after the product; returns the name the product must write.</summary>
    private static (string Product, Node? Add) GemmBias(GraphEdit edit, Node n)
    {
        if (n.OpType != "Gemm" || n.Inputs.Count < 3 || n.Inputs[2].Length == 0) return (n.Outputs[0], null);
        string p = edit.Fresh(n.Outputs[0] + "_matmul");
        return (p, edit.Node("Add", [p, n.Inputs[2]], [n.Outputs[0]], (n.Name.Length > 0 ? n.Name : n.Outputs[0]) + "_bias"));
    }

    private static void EmitMatMulNBits(GraphEdit edit, WeightSite site, QuantizedWeight q)
    {
        var s = q.Scheme;
        int N = site.Rows, K = site.Columns, bs = s.BlockSize, nb = (K + bs - 1) / bs, bits = s.Bits;
        int off = s.Signed ? 1 << (bits - 1) : 0, dflt = 1 << (bits - 1);
        int blockBytes = bs * bits / 8;
        var packed = new byte[(long)N * nb * blockBytes];
        for (int n = 0; n < N; n++)
            for (int b = 0; b < nb; b++)
            {
                int zpU = q.ZeroPoints[n * nb + b] + off;
                for (int j = 0; j < bs; j++)
                {
                    int k = b * bs + j;
                    int u = k < K ? q.Values[(long)n * K + k] + off : zpU;
                    long e = ((long)n * nb + b) * bs + j;
                    if (bits == 8) packed[e] = (byte)u;
                    else packed[e >> 1] |= (byte)((u & 15) << (int)((e & 1) * 4));
                }
            }
        string w = site.WeightName;
        string bn = edit.Add(Tensor.FromBytes(DType.UInt8, [N, nb, blockBytes], packed, edit.Fresh(w + "_nbits")));
        string sn = edit.AddFloats(w + "_scales", q.Scales, [N, nb]);
        var zpu = q.ZeroPoints.Select(z => z + off).ToArray();
        string zn = "";
        if (zpu.Any(z => z != dflt))
        {
            if (bits == 8) zn = edit.Add(Tensor.FromArray<byte>(zpu.Select(z => (byte)z).ToArray(), [N, nb], edit.Fresh(w + "_zp")));
            else
            {
                int per = (nb + 1) / 2;
                var zb = new byte[N * per];
                for (int n = 0; n < N; n++)
                    for (int b = 0; b < nb; b++) zb[n * per + b / 2] |= (byte)((zpu[n * nb + b] & 15) << ((b & 1) * 4));
                zn = edit.Add(Tensor.FromBytes(DType.UInt8, [N, per], zb, edit.Fresh(w + "_zp")));
            }
        }
        var node = site.Node;
        var (product, add) = GemmBias(edit, node);
        var inputs = zn.Length > 0 ? new[] { node.Inputs[0], bn, sn, zn } : [node.Inputs[0], bn, sn];
        var mm = edit.Node("MatMulNBits", inputs, [product], (node.Name.Length > 0 ? node.Name : product) + "_MatMulNBits", "com.microsoft")
            .With(Core.Attribute.Of("K", (long)K)).With(Core.Attribute.Of("N", (long)N))
            .With(Core.Attribute.Of("bits", (long)bits)).With(Core.Attribute.Of("block_size", (long)bs));
        Replace(edit, node, add is null ? [mm] : [mm, add]);
        RemoveIfUnused(edit, w);
    }

    /// <summary>B as [K, N] integers with per-tensor or per-column scale and zero point.</summary>
    private static (string B, string Scale, string Zp) WeightKN(GraphEdit edit, WeightSite site, QuantizedWeight q)
    {
        var s = q.Scheme;
        string w = site.WeightName;
        var kn = Layout.Permute(q.Values, [site.Rows, site.Columns], [1, 0]);
        string b = edit.AddQuantized(w + "_quantized", kn, [site.Columns, site.Rows], s.DType);
        long[] sd = s.Granularity == Granularity.PerTensor ? [] : [site.Rows];
        return (b, edit.AddFloats(w + "_scale", q.Scales, sd), edit.AddQuantized(w + "_zero_point", q.ZeroPoints, sd, s.DType));
    }

    private static void EmitDynamic(GraphEdit edit, WeightSite site, QuantizedWeight q)
    {
        var n = site.Node;
        string label = n.Name.Length > 0 ? n.Name : n.Outputs[0];
        var (b, bs, bzp) = WeightKN(edit, site, q);
        string aq = edit.Fresh(label + "_a_q"), ascale = edit.Fresh(label + "_a_scale"), azp = edit.Fresh(label + "_a_zp");
        string i32 = edit.Fresh(label + "_i32"), f = edit.Fresh(label + "_f"), sc = edit.Fresh(label + "_scale");
        var (product, add) = GemmBias(edit, n);
        var nodes = new List<Node>
        {
            edit.Node("DynamicQuantizeLinear", [n.Inputs[0]], [aq, ascale, azp], label + "_DynamicQuantizeLinear"),
            edit.Node("MatMulInteger", [aq, b, azp, bzp], [i32], label + "_MatMulInteger"),
            edit.Node("Cast", [i32], [f], label + "_Cast").With(Core.Attribute.Of("to", (long)DType.Float32)),
            edit.Node("Mul", [ascale, bs], [sc], label + "_scale_mul"),
            edit.Node("Mul", [f, sc], [product], label + "_Mul"),
        };
        if (add is not null) nodes.Add(add);
        Replace(edit, n, [.. nodes]);
        RemoveIfUnused(edit, site.WeightName);
    }

    /// <summary>Scale and zero point of an activation range on an 8-bit grid (asymmetric, range widened to include 0).</summary>
    public static (float Scale, int ZeroPoint) ActivationParams(ActivationRange r, DType type) =>
        RtnRounder.ScaleAndZeroPoint(r.Min, r.Max, new QuantScheme(8, type == DType.Int8, false, Granularity.PerTensor));

    private static (string Scale, string Zp) AddActivationParams(GraphEdit edit, string name, ActivationRange r, DType type)
    {
        var (s, z) = ActivationParams(r, type);
        return (edit.AddFloats(name + "_scale", [s], []), edit.AddQuantized(name + "_zero_point", [z], [], type));
    }

    private static void EmitQLinearMatMul(GraphEdit edit, WeightSite site, QuantizedWeight q, ActivationRange rx, ActivationRange ry, DType at)
    {
        var n = site.Node;
        string label = n.Name.Length > 0 ? n.Name : n.Outputs[0];
        var (b, bs, bzp) = WeightKN(edit, site, q);
        var (xs, xz) = AddActivationParams(edit, n.Inputs[0], rx, at);
        var (product, add) = GemmBias(edit, n);
        if (add is not null && n.Inputs.Count > 2 && edit.Graph.Initializers.TryGetValue(n.Inputs[2], out var c))
        {
            // The range seen was of A·B + C; the product alone lies within it shifted by C's extremes.
            var cv = c.ToFloatArray();
            ry = new ActivationRange(ry.Min - cv.Max(), ry.Max - cv.Min());
        }
        var (ys, yz) = AddActivationParams(edit, product, ry, at);
        string xq = edit.Fresh(n.Inputs[0] + "_q_" + label), yq = edit.Fresh(product + "_q");
        var nodes = new List<Node>
        {
            edit.Node("QuantizeLinear", [n.Inputs[0], xs, xz], [xq], label + "_QuantizeLinear"),
            edit.Node("QLinearMatMul", [xq, xs, xz, b, bs, bzp, ys, yz], [yq], label + "_QLinearMatMul"),
            edit.Node("DequantizeLinear", [yq, ys, yz], [product], label + "_DequantizeLinear"),
        };
        if (add is not null) nodes.Add(add);
        Replace(edit, n, [.. nodes]);
        RemoveIfUnused(edit, site.WeightName);
    }

    private static void EmitQLinearConv(GraphEdit edit, WeightSite site, QuantizedWeight q, ActivationRange rx, ActivationRange ry, DType at)
    {
        var n = site.Node;
        var s = q.Scheme;
        string label = n.Name.Length > 0 ? n.Name : n.Outputs[0];
        string w = site.WeightName;
        string wq = edit.AddQuantized(w + "_quantized", q.Values, site.Tensor.Dims, s.DType);
        long[] sd = s.Granularity == Granularity.PerTensor ? [] : [site.Rows];
        string ws = edit.AddFloats(w + "_scale", q.Scales, sd), wz = edit.AddQuantized(w + "_zero_point", q.ZeroPoints, sd, s.DType);
        var (xs, xz) = AddActivationParams(edit, n.Inputs[0], rx, at);
        var (ys, yz) = AddActivationParams(edit, n.Outputs[0], ry, at);
        float xScale = edit.Graph.Initializers[xs].AsSpan<float>()[0];
        var inputs = new List<string> { "", xs, xz, wq, ws, wz, ys, yz };
        if (n.Inputs.Count > 2 && n.Inputs[2].Length > 0 && edit.Graph.Initializers.TryGetValue(n.Inputs[2], out var bias))
        {
            var bv = bias.ToFloatArray();
            var bq = new int[bv.Length];
            for (int m = 0; m < bv.Length; m++)
            {
                double sc = (double)xScale * q.Scales[s.Granularity == Granularity.PerTensor ? 0 : m];
                bq[m] = (int)Math.Clamp(Math.Round(bv[m] / sc, MidpointRounding.ToEven), int.MinValue, int.MaxValue);
            }
            inputs.Add(edit.AddQuantized(n.Inputs[2] + "_quantized", bq, [bv.Length], DType.Int32));
        }
        string xq = edit.Fresh(n.Inputs[0] + "_q_" + label), yq = edit.Fresh(n.Outputs[0] + "_q");
        inputs[0] = xq;
        var conv = edit.Node("QLinearConv", [.. inputs], [yq], label + "_QLinearConv");
        foreach (var a in n.Attributes.Values) conv.With(a);
        Replace(edit, n,
            edit.Node("QuantizeLinear", [n.Inputs[0], xs, xz], [xq], label + "_QuantizeLinear"),
            conv,
            edit.Node("DequantizeLinear", [yq, ys, yz], [n.Outputs[0]], label + "_DequantizeLinear"));
        RemoveIfUnused(edit, w);
        if (n.Inputs.Count > 2 && n.Inputs[2].Length > 0 && edit.Graph.Initializers.ContainsKey(n.Inputs[2])) RemoveIfUnused(edit, n.Inputs[2]);
    }

    /// <summary>Inserts QuantizeLinear→DequantizeLinear on <paramref name="name"/> and points its consumers at the result.</summary>
    internal static void EmitActivationQdq(GraphEdit edit, string name, ActivationRange r, DType at)
    {
        if (edit.Graph.Initializers.ContainsKey(name)) return;
        var (s, z) = AddActivationParams(edit, name, r, at);
        string q = edit.Fresh(name + "_QuantizeLinear_out"), dq = edit.Fresh(name + "_DequantizeLinear_out");
        foreach (var n in edit.Graph.Nodes)
            for (int i = 0; i < n.Inputs.Count; i++)
                if (n.Inputs[i] == name) n.Inputs[i] = dq;
        edit.Graph.Nodes.Add(edit.Node("QuantizeLinear", [name, s, z], [q], name + "_QuantizeLinear"));
        edit.Graph.Nodes.Add(edit.Node("DequantizeLinear", [q, s, z], [dq], name + "_DequantizeLinear"));
    }

    /// <summary>
    /// Runs the float model and the model with reconstructed (dequantized) weights in OnDevice.Runtime over the
    /// calibration samples and returns each layer output's relative L2 error (‖y_q − y‖ / ‖y‖).
    /// </summary>
    internal static Dictionary<string, double>? MeasureOutputErrors(Model floatModel, Model fakeModel, HashSet<string> names, Calibration.CalibrationSet cal, CompressionReport report)
    {
        var opts = new SessionOptions { Optimize = false, Threads = 1 };
        try
        {
            var fs = new InferenceSession(floatModel, opts);
            var qs = new InferenceSession(fakeModel, opts);
            var num = new Dictionary<string, double>(StringComparer.Ordinal);
            var den = new Dictionary<string, double>(StringComparer.Ordinal);
            int count = 0;
            foreach (var sample in cal.Samples().Take(MaxErrorSamples))
            {
                var kept = new Dictionary<string, float[]>(StringComparer.Ordinal);
                fs.Run(sample, (name, buf) => { if (names.Contains(name) && buf.DType == DType.Float32) kept[name] = buf.Span<float>().ToArray(); });
                qs.Run(sample, (name, buf) =>
                {
                    if (!kept.TryGetValue(name, out var y) || buf.DType != DType.Float32) return;
                    var yq = buf.Span<float>();
                    if (yq.Length != y.Length) return;
                    double a = 0, b = 0;
                    for (int i = 0; i < y.Length; i++) { double d = yq[i] - y[i]; a += d * d; b += (double)y[i] * y[i]; }
                    num[name] = num.GetValueOrDefault(name) + a;
                    den[name] = den.GetValueOrDefault(name) + b;
                });
                count++;
            }
            report.CalibrationSamples = count;
            return num.Keys.ToDictionary(k => k, k => den[k] > 0 ? Math.Sqrt(num[k] / den[k]) : 0, StringComparer.Ordinal);
        }
        catch (Exception e) when (e is NotSupportedException or InvalidOperationException or ArgumentException)
        {
            report.Notes.Add($"output errors not measured: OnDevice.Runtime could not run the model ({e.Message})");
            return null;
        }
    }

    /// <summary>Samples used for output errors (the first ones of the calibration set).</summary>
    public const int MaxErrorSamples = 16;

}
