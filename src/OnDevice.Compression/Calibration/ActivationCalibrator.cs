using System.Diagnostics;
using OnDevice.Compression.Quantization;
using OnDevice.Core;
using OnDevice.Runtime;

namespace OnDevice.Compression.Calibration;

/// <summary>How an activation's range is chosen from its histogram.</summary>
public enum CalibrationMethod
{
    /// <summary>The exact observed minimum and maximum.</summary>
    MinMax,
    /// <summary>Cut (100 − p)/2 % of the values from each tail (<see cref="ActivationCalibrationOptions.Percentile"/>).</summary>
    Percentile,
    /// <summary>TensorRT-style entropy calibration: the clipping threshold minimizing KL divergence.</summary>
    Entropy,
}

/// <summary>Progress of a long compression stage (calibration, Hessian collection, GPTQ) for progress bars.</summary>
/// <param name="Stage">What runs ("calibrate", "hessian", "gptq", "layer-error").</param>
/// <param name="Done">Units finished (samples or layers).</param>
/// <param name="Total">Units in all.</param>
/// <param name="Item">The unit just finished (a layer name), when there is one.</param>
public readonly record struct StageProgress(string Stage, int Done, int Total, string? Item = null);

/// <summary>Options of <see cref="ActivationCalibrator.Calibrate"/>.</summary>
public sealed record ActivationCalibrationOptions
{
    /// <summary>How ranges are chosen (default min-max).</summary>
    public CalibrationMethod Method { get; init; } = CalibrationMethod.MinMax;

    /// <summary>Share of values the percentile calibrator keeps, in percent (default 99.99).</summary>
    public double Percentile { get; init; } = 99.99;

    /// <summary>
    /// Largest share of a value's elements the entropy calibrator may clip (default
    /// <see cref="ValueHistogram.DefaultMaxClippedShare"/>, 0.01 %): its threshold never lies below the range that
    /// holds nearly all the mass.
    /// </summary>
    public double EntropyMaxClippedShare { get; init; } = ValueHistogram.DefaultMaxClippedShare;

    /// <summary>
    /// Values with at most this many elements per sample (pooled squeeze-excitation vectors, classifier inputs) are
    /// not clipped by the entropy calibrator: each element is a whole channel's summary, so clipping even one per
    /// sample saturates a channel (default 1024).
    /// </summary>
    public int EntropyMinValuesPerSample { get; init; } = 1024;

    /// <summary>Histogram bins per sign (default 4096: after the range doubles, at least 2048 stay in use).</summary>
    public int Bins { get; init; } = 4096;

    /// <summary>Values to calibrate (graph value names); null calibrates every float32 value the model produces or takes.</summary>
    public IReadOnlyCollection<string>? Values { get; init; }

    /// <summary>Fewer samples than this draws a warning (default 16).</summary>
    public int MinSamples { get; init; } = 16;

    /// <summary>Trailing share of samples in which a range must not change much any more (default 0.2).</summary>
    public double SettleFraction { get; init; } = 0.2;

    /// <summary>How much (relative to the final range width) a range may still change in the trailing samples (default 0.05).</summary>
    public double SettleTolerance { get; init; } = 0.05;

    /// <summary>Threads each model run may use.</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;

    /// <summary>Called after each sample.</summary>
    public IProgress<StageProgress>? Progress { get; init; }
}

/// <summary>The outcome of a calibration.</summary>
/// <param name="Ranges">Chosen range per calibrated value.</param>
/// <param name="Warnings">Human-readable warnings (too few samples, ranges still moving); empty when settled.</param>
/// <param name="Unsettled">Values whose range still changed in the trailing samples.</param>
/// <param name="Samples">Samples run.</param>
/// <param name="HistogramBytes">Memory the histograms held (independent of the number of samples).</param>
/// <param name="Seconds">Wall time.</param>
public sealed record CalibrationResult(
    IReadOnlyDictionary<string, ActivationRange> Ranges,
    IReadOnlyList<string> Warnings,
    IReadOnlyList<string> Unsettled,
    int Samples,
    long HistogramBytes,
    double Seconds);

/// <summary>
/// Static activation calibration: runs the model over a calibration set and summarizes every chosen value in a
/// fixed-size <see cref="ValueHistogram"/> (activations are never stored), then picks ranges by min-max, percentile or
/// entropy, and warns when too few samples were seen for the ranges to settle.
/// </summary>
public static class ActivationCalibrator
{
    /// <summary>
    /// The values a static quantizer quantizes: the data inputs and the outputs of Conv, ConvTranspose, Gemm and
    /// MatMul nodes (constants excluded), in graph order, main graph and subgraphs.
    /// </summary>
    public static IReadOnlyList<string> LayerValues(Graph graph) => LayerValues(graph, QdqPlacement.Ops);

    /// <summary>
    /// <see cref="LayerValues(Graph)"/> for a placement: with <see cref="QdqPlacement.Activations"/> each layer output
    /// is replaced by the end of the element-wise chain that follows it (<see cref="ActivationChains"/>), where that
    /// placement quantizes it.
    /// </summary>
    public static IReadOnlyList<string> LayerValues(Graph graph, QdqPlacement placement)
    {
        var g = graph.Clone();
        ConstantLifting.Lift(g);
        var result = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var sg in g.SelfAndSubgraphs())
        {
            var index = placement == QdqPlacement.Activations ? new GraphIndex(sg) : null;
            foreach (var n in sg.Nodes)
            {
                if (!n.IsDefaultDomain || n.OpType is not ("Conv" or "ConvTranspose" or "Gemm" or "MatMul")) continue;
                int dataInputs = n.OpType == "MatMul" ? 2 : 1;
                for (int i = 0; i < Math.Min(dataInputs, n.Inputs.Count); i++)
                    if (n.Inputs[i].Length > 0 && !sg.Initializers.ContainsKey(n.Inputs[i]) && seen.Add(n.Inputs[i])) result.Add(n.Inputs[i]);
                if (n.Outputs.Count == 0 || n.Outputs[0].Length == 0) continue;
                string o = index is null ? n.Outputs[0] : ActivationChains.End(index, n.Outputs[0]);
                if (seen.Add(o)) result.Add(o);
            }
        }
        return result;
    }

    /// <summary>
    /// Runs <paramref name="model"/> over every sample of <paramref name="set"/> and returns a range per value.
    /// Bad options or unknown value names fail before any sample runs.
    /// </summary>
    public static CalibrationResult Calibrate(Model model, CalibrationSet set, ActivationCalibrationOptions? options = null)
    {
        var o = options ?? new ActivationCalibrationOptions();
        if (o.Method == CalibrationMethod.Percentile && !(o.Percentile > 50 && o.Percentile <= 100))
            throw new ArgumentOutOfRangeException(nameof(options), $"percentile must be in (50, 100], got {o.Percentile}");
        if (o.Bins < 256 || o.Bins % 2 != 0) throw new ArgumentOutOfRangeException(nameof(options), $"bins must be even and at least 256, got {o.Bins}");
        if (!(o.SettleFraction > 0 && o.SettleFraction < 1)) throw new ArgumentOutOfRangeException(nameof(options), $"settle fraction must be in (0, 1), got {o.SettleFraction}");
        if (!(o.EntropyMaxClippedShare >= 0 && o.EntropyMaxClippedShare < 1)) throw new ArgumentOutOfRangeException(nameof(options), $"the entropy clipped share must be in [0, 1), got {o.EntropyMaxClippedShare}");
        if (set.Count == 0) throw new CalibrationSetException("the calibration set is empty: give at least one sample");

        var sw = Stopwatch.StartNew();
        var session = new InferenceSession(model, new SessionOptions { Optimize = false, Threads = Math.Max(1, o.Threads) });
        var graph = session.OptimizedGraph;
        HashSet<string>? wanted = null;
        if (o.Values is { } values)
        {
            var known = new HashSet<string>(graph.SelfAndSubgraphs().SelectMany(g => g.Inputs.Select(i => i.Name).Concat(g.Nodes.SelectMany(n => n.Outputs))), StringComparer.Ordinal);
            foreach (var v in values)
                if (!known.Contains(v)) throw new ArgumentException($"'{v}' is not a value of the model (neither an input nor a node output)", nameof(options));
            wanted = new HashSet<string>(values, StringComparer.Ordinal);
        }

        var bounded = BoundedValues(graph);
        var hists = new Dictionary<string, ValueHistogram>(StringComparer.Ordinal);
        void Observe(string name, ReadOnlySpan<float> data)
        {
            if (wanted is not null && !wanted.Contains(name)) return;
            if (!hists.TryGetValue(name, out var h)) hists[name] = h = new ValueHistogram(o.Bins);
            h.Add(data);
        }

        int n = set.Count;
        int checkpoint = n >= 2 ? Math.Clamp((int)Math.Ceiling(n * (1 - o.SettleFraction)), 1, n - 1) : 0;
        Dictionary<string, ActivationRange>? early = null;
        int done = 0;
        foreach (var feed in set.Samples())
        {
            foreach (var (name, t) in feed)
                if (t.DType == DType.Float32) Observe(name, t.AsSpan<float>());
            session.Run(feed, (name, buffer) =>
            {
                if (buffer.DType == DType.Float32) Observe(name, buffer.Span<float>());
            });
            done++;
            if (done == checkpoint) early = hists.ToDictionary(kv => kv.Key, kv => Choose(kv.Value, o, bounded.Contains(kv.Key)), StringComparer.Ordinal);
            o.Progress?.Report(new StageProgress("calibrate", done, n));
        }

        var ranges = new Dictionary<string, ActivationRange>(StringComparer.Ordinal);
        foreach (var (name, h) in hists) ranges[name] = Choose(h, o, bounded.Contains(name));

        var warnings = new List<string>();
        var unsettled = new List<(string Name, double Moved)>();
        if (wanted is not null)
        {
            var never = wanted.Where(w => !hists.ContainsKey(w)).ToList();
            if (never.Count > 0)
                warnings.Add($"{never.Count} requested value(s) were never produced as float32 during calibration: {string.Join(", ", never.Take(5))}{(never.Count > 5 ? ", ..." : "")}");
        }
        if (n < o.MinSamples)
            warnings.Add($"only {n} calibration sample(s); at least {o.MinSamples} are recommended for ranges to settle");
        if (early is not null)
        {
            foreach (var (name, r) in ranges)
            {
                double width = Math.Max(r.Max - r.Min, 1e-12);
                double moved = early.TryGetValue(name, out var e) ? (Math.Abs(r.Min - e.Min) + Math.Abs(r.Max - e.Max)) / width : double.PositiveInfinity;
                if (moved > o.SettleTolerance) unsettled.Add((name, moved));
            }
            if (unsettled.Count > 0)
            {
                var worst = unsettled.OrderByDescending(u => u.Moved).Take(5)
                    .Select(u => double.IsInfinity(u.Moved) ? $"{u.Name} (first seen late)" : $"{u.Name} ({u.Moved:P0})");
                warnings.Add($"ranges of {unsettled.Count} of {ranges.Count} value(s) still changed by more than {o.SettleTolerance:P0} in the last {n - checkpoint} of {n} samples; "
                    + $"add more calibration samples. Most moved: {string.Join(", ", worst)}");
            }
        }
        return new CalibrationResult(ranges, warnings, unsettled.Select(u => u.Name).ToList(), n, hists.Values.Sum(h => h.Bytes), sw.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// The range <paramref name="options"/> choose from a histogram. The entropy calibrator keeps the observed range of
    /// a value whose producer bounds it (<paramref name="bounded"/>: Sigmoid, HardSigmoid, Tanh, Softmax, Clip — the
    /// bound already limits its outliers, and saturated values sit on it) and of a value with few elements per sample
    /// (<see cref="ActivationCalibrationOptions.EntropyMinValuesPerSample"/>).
    /// </summary>
    public static ActivationRange Choose(ValueHistogram histogram, ActivationCalibrationOptions options, bool bounded = false) => options.Method switch
    {
        CalibrationMethod.MinMax => histogram.MinMax(),
        CalibrationMethod.Percentile => histogram.Percentile(options.Percentile),
        CalibrationMethod.Entropy when bounded || histogram.ValuesPerBatch <= options.EntropyMinValuesPerSample => histogram.MinMax(),
        CalibrationMethod.Entropy => histogram.Entropy(options.EntropyMaxClippedShare),
        _ => throw new ArgumentOutOfRangeException(nameof(options), $"unknown calibration method {options.Method}"),
    };

    /// <summary>Op types whose output lies in a fixed interval whatever their input.</summary>
    private static readonly HashSet<string> BoundingOps = new(StringComparer.Ordinal) { "Sigmoid", "HardSigmoid", "Tanh", "Softmax", "Clip" };

    /// <summary>Values produced by a bounding op (<see cref="BoundingOps"/>; Clip only with a max), in every graph.</summary>
    public static IReadOnlySet<string> BoundedValues(Graph graph)
    {
        var result = new HashSet<string>(StringComparer.Ordinal);
        foreach (var g in graph.SelfAndSubgraphs())
            foreach (var n in g.Nodes)
            {
                if (!n.IsDefaultDomain || !BoundingOps.Contains(n.OpType) || n.Outputs.Count == 0 || n.Outputs[0].Length == 0) continue;
                if (n.OpType == "Clip" && !(n.Inputs.Count > 2 && n.Inputs[2].Length > 0) && !n.Attributes.ContainsKey("max")) continue;
                result.Add(n.Outputs[0]);
            }
        return result;
    }

    /// <summary>Parses a calibrator name as the CLI spells it: minmax, percentile, entropy (case-insensitive).</summary>
    public static CalibrationMethod ParseMethod(string name) => name.Trim().ToLowerInvariant() switch
    {
        "minmax" or "min-max" => CalibrationMethod.MinMax,
        "percentile" => CalibrationMethod.Percentile,
        "entropy" or "kl" => CalibrationMethod.Entropy,
        _ => throw new ArgumentException($"unknown calibrator '{name}' (use minmax, percentile or entropy)", nameof(name)),
    };
}
