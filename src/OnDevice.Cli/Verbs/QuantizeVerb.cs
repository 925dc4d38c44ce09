using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using OnDevice.Compression;
using OnDevice.Compression.Calibration;
using OnDevice.Compression.Gptq;
using OnDevice.Compression.Quantization;
using OnDevice.Core;
using OnDevice.Formats.Onnx;
using Spectre.Console;

namespace OnDevice.Cli.Verbs;

/// <summary><c>ondevice quantize MODEL -o OUT</c>: int8/int4 weights (and activations), written as standard ONNX.</summary>
public static class QuantizeVerb
{
    /// <summary>Builds the GPTQ rounder for <c>--method gptq</c>: layer statistics over the calibration set, RTN for
    /// weights GPTQ does not cover. Progress goes to <paramref name="progress"/>.</summary>
    internal static IWeightRounder Gptq(Model m, CalibrationSet cal, IProgress<StageProgress>? progress, GptqOptions? options = null) =>
        GptqRounder.Calibrate(m, cal, (options ?? new GptqOptions()) with { Progress = progress }, new HessianOptions { Progress = progress }, fallback: RtnRounder.Instance);

    /// <summary>Activation ranges for <c>--activations</c> with the named calibrator; warnings go to stderr.</summary>
    internal static IReadOnlyDictionary<string, ActivationRange> Calibrate(Model m, CalibrationSet cal, string calibrator, bool quiet, QdqPlacement placement = QdqPlacement.Ops)
    {
        var result = WithStages(quiet, "calibrating activations", p => ActivationCalibrator.Calibrate(m, cal, new ActivationCalibrationOptions
        {
            Method = ActivationCalibrator.ParseMethod(calibrator),
            Values = ActivationCalibrator.LayerValues(m.Graph, placement),
            Progress = p,
        }));
        foreach (var w in result.Warnings) Console.Error.WriteLine($"warning: {w}");
        return result.Ranges;
    }

    /// <summary>Runs <paramref name="work"/> with a progress bar per stage on a terminal (quiet otherwise). The
    /// progress sink is synchronous, so bars follow the work exactly.</summary>
    internal static T WithStages<T>(bool quiet, string title, Func<IProgress<StageProgress>?, T> work)
    {
        if (quiet || !Cli.IsInteractive) return work(null);
        T result = default!;
        AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var bars = new Dictionary<string, ProgressTask>(StringComparer.Ordinal);
                result = work(new SyncProgress<StageProgress>(p =>
                {
                    if (!bars.TryGetValue(p.Stage, out var bar)) bars[p.Stage] = bar = ctx.AddTask($"{title}: {p.Stage}");
                    bar.MaxValue = Math.Max(1, p.Total);
                    bar.Value = p.Done;
                }));
                foreach (var b in bars.Values) b.Value = b.MaxValue;
            });
        return result;
    }

    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }

    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var model = new Argument<string>("model") { Description = "ONNX model file, or the name of a sample" };
        var output = new Option<string>("--output", "-o") { Description = "Where to write the quantized model", Required = true };
        var weights = new Option<string>("--weights") { Description = "Weight type: int8, uint8, int4, uint4", DefaultValueFactory = _ => "int8" };
        var granularity = new Option<string?>("--granularity") { Description = "tensor, channel or block:N (N = 16, 32, 64, 128); default channel (block:32 for matmulnbits)" };
        var symmetric = new Option<bool>("--symmetric") { Description = "Symmetric weights (zero point fixed); default asymmetric" };
        var fp16Scales = new Option<bool>("--fp16-scales") { Description = "Store weight scales as float16" };
        var method = new Option<string>("--method") { Description = "Weight rounding: rtn or gptq (gptq needs --calibration)", DefaultValueFactory = _ => "rtn" };
        var activations = new Option<string?>("--activations") { Description = "Also quantize activations statically: int8 or uint8 (needs --calibration)" };
        var calibration = new Option<string?>("--calibration") { Description = "Folder of .npy calibration samples (one sub-folder per sample with NAME.npy per input, or one .npy per sample)" };
        var calibrator = new Option<string>("--calibrator") { Description = "Activation range method: minmax, percentile, entropy", DefaultValueFactory = _ => "minmax" };
        var format = new Option<string>("--format") { Description = "qdq, qoperator or matmulnbits", DefaultValueFactory = _ => "qdq" };
        var exclude = new Option<string[]>("--exclude") { Description = "Leave layers matching this glob (node or weight name) in float (repeatable)" };
        var maxSize = new Option<string?>("--max-size") { Description = "Choose per-layer precision (fp16/int8/int4/4-bit palette) to fit this size, e.g. 4MB or 4000000" };
        var gptqActOrder = new Option<bool>("--gptq-act-order") { Description = "GPTQ: quantize columns in order of decreasing Hessian diagonal (act-order)" };
        var gptqDamp = new Option<double>("--gptq-damp") { Description = "GPTQ: dampening added to the Hessian diagonal, as a share of its mean (default 0.01)", DefaultValueFactory = _ => 0.01 };
        var gptqSequential = new Option<bool>("--gptq-sequential") { Description = "GPTQ: true-sequential — each layer's Hessian from the model whose earlier layers are already quantized (one calibration pass per layer)" };
        var gptqOutputAware = new Option<bool>("--gptq-output-aware") { Description = "GPTQ: output-aware true-sequential — round each layer for ‖X̃Ŵᵀ − XWᵀ‖² (X float inputs, X̃ the quantized prefix's; runs the float and the quantized model per sample)" };
        var gptqBias = new Option<bool>("--gptq-bias-correction") { Description = "GPTQ: add E[W·x − Ŵ·x̃] per output channel to each layer's bias after quantizing it" };
        var gptqLayersPerPass = new Option<int>("--gptq-layers-per-pass") { Description = "GPTQ with --gptq-sequential or --gptq-output-aware: most layers whose statistics one calibration pass collects (default 1); only parallel branches share a pass, so the result is the same, faster", DefaultValueFactory = _ => 1 };
        var gptqClip = new Option<bool>("--gptq-clip-search") { Description = "GPTQ: choose each scale group's scale by a clip search (least Hessian-weighted rounding error over shrunk ranges)" };
        var keepSensitive = new Option<int>("--keep-sensitive") { Description = "Keep the N most sensitive sites (static activations, sub-8-bit weights; measured on --calibration) at higher precision: activations float, weights int8" };
        var keepMaxParams = new Option<long>("--keep-sensitive-max-params") { Description = "With --keep-sensitive: only weights with at most this many elements are raised to int8, and only activations read by layers that small stay float (cheap sites; 0 = any)" };
        var placementOpt = new Option<string>("--qdq-placement") { Description = "Static QDQ: quantize a layer's output on the op itself (ops) or after the element-wise chain that follows it (activations: one rounding point per layer)", DefaultValueFactory = _ => "ops" };
        var fold = new Option<string>("--fold") { Description = "Fold BatchNormalization and constant per-channel Mul/Add into the Conv before them: on, off, or auto (on with --qdq-placement activations or --equalize)", DefaultValueFactory = _ => "auto" };
        var equalize = new Option<bool>("--equalize") { Description = "Cross-layer equalization of Conv -> [Relu] -> depthwise Conv pairs on per-channel ranges from --calibration (exact in float)" };
        var reportFile = new Option<string?>("--report") { Description = "Write the per-layer report (JSON) to this file" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object (sizes and the per-layer table)" };
        var cmd = new Command("quantize", "Quantize weights (int8/uint8/int4/uint4) and optionally activations; write QDQ, QOperator or MatMulNBits ONNX")
        {
            model, output, weights, granularity, symmetric, fp16Scales, method, activations, calibration, calibrator, format, exclude, maxSize, keepSensitive, reportFile, json,
            gptqActOrder, gptqDamp, gptqSequential, gptqClip, keepMaxParams,
            gptqOutputAware, gptqBias, gptqLayersPerPass,
            placementOpt, fold, equalize,
        };
        cmd.SetAction(r =>
        {
            bool asJson = r.GetValue(json);
            // Everything the user typed is checked before any work.
            var (bits, signed) = r.GetValue(weights)!.ToLowerInvariant() switch
            {
                "int8" => (8, true),
                "uint8" => (8, false),
                "int4" => (4, true),
                "uint4" => (4, false),
                var w => throw new CliException($"--weights must be int8, uint8, int4 or uint4, not '{w}'"),
            };
            var fmt = r.GetValue(format)!.ToLowerInvariant() switch
            {
                "qdq" => QuantFormat.Qdq,
                "qoperator" => QuantFormat.QOperator,
                "matmulnbits" => QuantFormat.MatMulNBits,
                var f => throw new CliException($"--format must be qdq, qoperator or matmulnbits, not '{f}'"),
            };
            var (gran, block) = ParseGranularity(r.GetValue(granularity) ?? (fmt == QuantFormat.MatMulNBits ? "block:32" : "channel"));
            string methodName = r.GetValue(method)!.ToLowerInvariant();
            if (methodName is not ("rtn" or "gptq")) throw new CliException($"--method must be rtn or gptq, not '{methodName}'");
            string calibratorName = r.GetValue(calibrator)!.ToLowerInvariant();
            if (calibratorName is not ("minmax" or "percentile" or "entropy")) throw new CliException($"--calibrator must be minmax, percentile or entropy, not '{calibratorName}'");
            DType? actType = r.GetValue(activations)?.ToLowerInvariant() switch
            {
                null => null,
                "int8" => DType.Int8,
                "uint8" => DType.UInt8,
                var a => throw new CliException($"--activations must be int8 or uint8, not '{a}'"),
            };
            if (actType is not null && r.GetValue(calibration) is null) throw new CliException("--activations needs --calibration DIR (activation ranges come from calibration samples)");
            int keep = r.GetValue(keepSensitive);
            if (keep < 0) throw new CliException($"--keep-sensitive must be 0 or more, not {keep}");
            if (keep > 0 && r.GetValue(calibration) is null) throw new CliException("--keep-sensitive needs --calibration DIR (sensitivity is measured on calibration samples)");
            if (methodName == "gptq" && r.GetValue(calibration) is null) throw new CliException("--method gptq needs --calibration DIR (its Hessians come from calibration activations)");
            double damp = r.GetValue(gptqDamp);
            if (!(damp >= 0 && damp <= 10)) throw new CliException($"--gptq-damp must be in [0, 10], not {damp.ToString(CultureInfo.InvariantCulture)}");
            bool outputAware = r.GetValue(gptqOutputAware);
            bool sequential = r.GetValue(gptqSequential) || outputAware;
            int layersPerPass = r.GetValue(gptqLayersPerPass);
            if (methodName != "gptq" && (r.GetValue(gptqActOrder) || sequential || r.GetValue(gptqClip) || r.GetValue(gptqBias) || r.GetResult(gptqDamp) is { Implicit: false }
                    || r.GetResult(gptqLayersPerPass) is { Implicit: false }))
                throw new CliException("--gptq-act-order, --gptq-damp, --gptq-sequential, --gptq-output-aware, --gptq-bias-correction, --gptq-layers-per-pass and --gptq-clip-search need --method gptq");
            if (layersPerPass < 1) throw new CliException($"--gptq-layers-per-pass must be 1 or more, not {layersPerPass}");
            if (!sequential && r.GetResult(gptqLayersPerPass) is { Implicit: false }) throw new CliException("--gptq-layers-per-pass needs --gptq-sequential or --gptq-output-aware");
            var gptqOptions = new GptqOptions
            {
                ActOrder = r.GetValue(gptqActOrder), PercDamp = damp, ClipSearch = r.GetValue(gptqClip),
                OutputAware = outputAware, BiasCorrection = r.GetValue(gptqBias), LayersPerPass = layersPerPass,
            };
            long? max = r.GetValue(maxSize) is { } ms ? Wrap(() => SizeBudget.ParseSize(ms)) : null;
            if (max is not null && fmt != QuantFormat.Qdq) throw new CliException("--max-size mixes fp16, int8, int4 and palettized layers, which only --format qdq can hold");
            var scheme = new QuantScheme(bits, signed, r.GetValue(symmetric), gran, gran == Granularity.Blocked ? 1 : 0, block, r.GetValue(fp16Scales));
            var placement = r.GetValue(placementOpt)!.ToLowerInvariant() switch
            {
                "ops" => QdqPlacement.Ops,
                "activations" => QdqPlacement.Activations,
                var q => throw new CliException($"--qdq-placement must be ops or activations, not '{q}'"),
            };
            if (r.GetValue(equalize) && r.GetValue(calibration) is null) throw new CliException("--equalize needs --calibration DIR (per-channel ranges are measured on calibration samples)");
            bool? folding = r.GetValue(fold)!.ToLowerInvariant() switch
            {
                "auto" => null,
                "on" => true,
                "off" => false,
                var f => throw new CliException($"--fold must be on, off or auto, not '{f}'"),
            };
            var options = new QuantizeOptions
            {
                Scheme = scheme, Format = fmt, Exclude = r.GetValue(exclude) ?? [], Placement = placement, FoldConvAffine = folding,
            };
            Wrap(() => { options.Validate(); return 0; });
            string outPath = r.GetValue(output)!;
            string? reportPath = r.GetValue(reportFile);
            CheckWritable(outPath, "--output");
            if (reportPath is not null) CheckWritable(reportPath, "--report");

            var path = Cli.ResolveModel(r.GetValue(model)!, asJson);
            var m = OnnxReader.Read(path);
            CalibrationSet? cal = r.GetValue(calibration) is { } dir ? Wrap(() => CalibrationSet.Load(dir, m.Graph)) : null;
            options = options with { Calibration = cal, Equalize = r.GetValue(equalize) };
            // Fold and equalize once, up front: ranges, GPTQ statistics and sensitivities are all taken on the model that is quantized.
            var (prepared, prepNotes) = Wrap(() => Quantizer.Prepare(m, options));
            m = prepared;
            options = options with { Equalize = false };
            if (actType is { } at)
                options = options with { ActivationType = at, ActivationRanges = Wrap(() => Calibrate(m, cal!, calibratorName, asJson, placement)) };
            Func<IReadOnlyDictionary<string, GptqLayerStats>?>? gptqStats = null;
            if (methodName == "gptq" && !sequential)
            {
                var rounder = Wrap(() => WithStages(asJson, "GPTQ", p => Gptq(m, cal!, p, gptqOptions)));
                options = options with { RounderFactory = (_, _) => rounder };
                gptqStats = () => (rounder as GptqRounder)?.Stats;
            }
            if (max is { } mb)
            {
                // With calibration data, weigh each layer's error by how much the model output feels it (int8 probe, each layer alone).
                IReadOnlyDictionary<string, double>? weightsByLayer = null;
                if (cal is not null)
                {
                    var probe = Wrap(() => Cli.WithStatus(asJson, "measuring layer sensitivity", () =>
                        Quantizer.Quantize(m, new QuantizeOptions { Scheme = new QuantScheme(8, true, true, Granularity.PerChannel), Exclude = options.Exclude, Calibration = cal })));
                    weightsByLayer = SizeBudget.SensitivityWeights(probe.Report);
                }
                var budget = Wrap(() => SizeBudget.Choose(m, mb, options.Exclude, weightsByLayer));
                options = options with { PerLayer = budget.Plans };
            }
            long keepMax = r.GetValue(keepMaxParams);
            if (keepMax < 0) throw new CliException($"--keep-sensitive-max-params must be 0 or more, not {keepMax}");
            if (keep > 0) options = options with { KeepSensitive = keep, KeepSensitiveMaxParameters = keepMax };
            var result = sequential
                // A fresh sequential rounder per quantization (sensitivity probing quantizes twice); its passes run inside.
                ? Wrap(() => WithStages(asJson, outputAware ? "GPTQ (output-aware)" : "GPTQ (sequential)", p => Quantizer.Quantize(m, options with
                {
                    RounderFactory = (fm, c) =>
                    {
                        var seq = new SequentialGptqRounder(fm, c ?? cal!, gptqOptions with { Progress = p }, new HessianOptions { Progress = p }, RtnRounder.Instance);
                        gptqStats = () => seq.Stats; // the last quantization's (the one written)
                        return seq;
                    },
                })))
                : Wrap(() => Cli.WithStatus(asJson, "quantizing", () => Quantizer.Quantize(m, options)));
            result.Report.Notes.InsertRange(0, prepNotes);
            Wrap(() => result.Save(outPath, max));
            Finish(result, path, outPath, reportPath, asJson, max, gptqStats?.Invoke());
            return 0;
        });
        return cmd;
    }

    /// <summary>Parses tensor | channel | block:N.</summary>
    internal static (Granularity, int) ParseGranularity(string g)
    {
        var s = g.ToLowerInvariant();
        if (s == "tensor") return (Granularity.PerTensor, 0);
        if (s == "channel") return (Granularity.PerChannel, 0);
        if (s.StartsWith("block:", StringComparison.Ordinal) && int.TryParse(s[6..], NumberStyles.None, CultureInfo.InvariantCulture, out var n))
        {
            if (n is not (16 or 32 or 64 or 128)) throw new CliException($"--granularity block:N needs N = 16, 32, 64 or 128, not {n}");
            return (Granularity.Blocked, n);
        }
        throw new CliException($"--granularity must be tensor, channel or block:N, not '{g}'");
    }

    /// <summary>Fails now (before any work) when <paramref name="path"/> cannot be written; leaves nothing behind.</summary>
    internal static void CheckWritable(string path, string option)
    {
        try
        {
            var full = Path.GetFullPath(path);
            if (Directory.Exists(full)) throw new CliException($"{option} '{path}' is a directory; give a file name");
            var dir = Path.GetDirectoryName(full)!;
            Directory.CreateDirectory(dir);
            var probe = Path.Combine(dir, $".ondevice-probe-{Environment.ProcessId}-{Guid.NewGuid():N}");
            using (File.Create(probe, 1, FileOptions.DeleteOnClose)) { }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            throw new CliException($"{option} '{path}' cannot be written: {e.Message}");
        }
    }

    /// <summary>Turns compression and calibration failures into one-line CLI errors.</summary>
    internal static T Wrap<T>(Func<T> work)
    {
        try
        {
            return work();
        }
        catch (Exception e) when (e is CompressionException or CalibrationSetException)
        {
            throw new CliException(e.Message);
        }
    }

    /// <summary>The JSON form of a compression report.</summary>
    internal sealed record ReportJson(string Model, string Output, string Pass, string Format, string Method, long InputBytes, long OutputBytes, double Ratio,
        long LayerBytesBefore, long LayerBytesAfter, double LayerRatio, long? MaxSize, int CalibrationSamples,
        IReadOnlyList<LayerReport> Layers, IReadOnlyList<SkippedLayer> StayedFloat, IReadOnlyList<string> Notes)
    {
        /// <summary>Sites <c>--keep-sensitive</c> kept at higher precision, most sensitive first.</summary>
        public IReadOnlyList<KeptSensitive> KeptAtHigherPrecision { get; init; } = [];
        /// <summary>Every site <c>--keep-sensitive</c> ranked, most sensitive first.</summary>
        public IReadOnlyList<KeptSensitive> SensitivityRanking { get; init; } = [];
        /// <summary>GPTQ per layer: its output error and round-to-nearest's on the calibration data (relative), rows kept at RTN.</summary>
        public IReadOnlyList<GptqLayerJson>? Gptq { get; init; }
    }

    /// <summary>One layer's GPTQ-versus-RTN output error in the JSON report.</summary>
    internal sealed record GptqLayerJson(string Weight, int Rows, int Columns, double RtnError, double GptqError, int RowsKeptRtn, double Seconds);

    /// <summary>Writes the report file and prints the result (JSON or a table).</summary>
    internal static void Finish(CompressionResult result, string modelPath, string outPath, string? reportPath, bool asJson, long? max = null,
        IReadOnlyDictionary<string, GptqLayerStats>? gptq = null)
    {
        var rep = result.Report;
        rep.InputBytes = new FileInfo(modelPath).Length;
        var j = new ReportJson(modelPath, outPath, rep.Pass, rep.Format, rep.Method, rep.InputBytes, rep.OutputBytes,
            rep.OutputBytes > 0 ? Math.Round(rep.InputBytes / (double)rep.OutputBytes, 3) : 0,
            rep.LayerBytesBefore, rep.LayerBytesAfter, rep.LayerBytesAfter > 0 ? Math.Round(rep.LayerBytesBefore / (double)rep.LayerBytesAfter, 3) : 0,
            max, rep.CalibrationSamples, rep.Layers, rep.StayedFloat, rep.Notes)
        {
            KeptAtHigherPrecision = rep.KeptAtHigherPrecision, SensitivityRanking = rep.SensitivityRanking,
            Gptq = gptq?.Values.OrderBy(g => rep.Layers.FindIndex(l => l.Weight == g.Weight) is var i && i >= 0 ? i : int.MaxValue)
                .Select(g => new GptqLayerJson(g.Weight, g.Rows, g.Columns, g.RtnError, g.GptqError, g.RowsKeptRtn, g.Seconds)).ToList(),
        };
        if (reportPath is not null) AtomicFile.WriteAllBytes(reportPath, JsonSerializer.SerializeToUtf8Bytes(j, Cli.Json));
        if (asJson)
        {
            Cli.WriteJson(j);
            return;
        }
        var t = new Table().AddColumns("layer", "op", "scheme", "form", "bytes", "SQNR dB", "layer out err", "model err alone", "rank").Border(TableBorder.Simple);
        foreach (var l in rep.Layers)
            t.AddRow(Markup.Escape(l.Layer), l.OpType, Markup.Escape(l.Scheme), Markup.Escape(l.Form), $"{Cli.Bytes(l.BytesBefore)} → {Cli.Bytes(l.BytesAfter)}",
                l.SqnrDb.ToString("0.0", CultureInfo.InvariantCulture), l.OutputError is { } e ? e.ToString("0.0000", CultureInfo.InvariantCulture) : "",
                l.ModelErrorAlone is { } a ? a.ToString("0.0000", CultureInfo.InvariantCulture) : "", l.SensitivityRank.ToString(CultureInfo.InvariantCulture));
        AnsiConsole.Write(t);
        foreach (var s in rep.StayedFloat) Console.WriteLine($"float    {s.Layer} ({s.OpType}, {s.Weight}, {Cli.Bytes(s.Bytes)}): {s.Reason}");
        foreach (var k in rep.KeptAtHigherPrecision)
            Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "kept     {0} {1}: sensitivity rank {2} of {3} (model error alone {4:0.0000}) → {5}",
                k.Kind, k.Name, k.Rank, k.Candidates, k.ModelErrorAlone, k.Kind == "activation" ? "float" : "int8 per-channel"));
        foreach (var n in rep.Notes) Console.WriteLine($"note     {n}");
        if (j.Gptq is { Count: > 0 } gl)
            Console.WriteLine($"gptq     {gl.Count} layers, mean relative output error RTN {gl.Average(g => g.RtnError).ToString("0.0000", CultureInfo.InvariantCulture)} → GPTQ "
                + $"{gl.Average(g => g.GptqError).ToString("0.0000", CultureInfo.InvariantCulture)} (per layer in --json / --report)");
        Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "{0} -> {1}: {2} -> {3} ({4:0.00}x smaller); compressed layers {5} -> {6} ({7:0.00}x)",
            modelPath, outPath, Cli.Bytes(rep.InputBytes), Cli.Bytes(rep.OutputBytes), j.Ratio, Cli.Bytes(rep.LayerBytesBefore), Cli.Bytes(rep.LayerBytesAfter), j.LayerRatio));
        if (rep.CalibrationSamples == 0) Console.WriteLine("         (no --calibration: output errors not measured; sensitivity ranked by SQNR)");
    }
}
