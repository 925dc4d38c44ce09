using System.Diagnostics;
using OnDevice.Core;
using OnDevice.Evaluation.Data;
using OnDevice.Evaluation.Statistics;
using OnDevice.Evaluation.Tasks;
using OnDevice.Formats.Npy;

namespace OnDevice.Evaluation;

/// <summary>How to run an evaluation.</summary>
public sealed record EvalOptions
{
    /// <summary>Evaluate only the first N examples (0: all).</summary>
    public int Limit { get; init; }

    /// <summary>Write each example's model inputs as DIR/NNNNN/&lt;input&gt;.npy (a calibration set).</summary>
    public string? SaveInputs { get; init; }

    /// <summary>Called after each example with (done, total).</summary>
    public Action<int, int>? Progress { get; init; }

    /// <summary>Bootstrap resamples.</summary>
    public int Bootstrap { get; init; } = 1000;

    /// <summary>Seed for the bootstrap and Monte Carlo permutations.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>Non-inferiority margin in the primary metric's units (≥ 0).</summary>
    public double Margin { get; init; }

    /// <summary>Fields to slice by.</summary>
    public IReadOnlyList<string> SliceBy { get; init; } = [];

    /// <summary>Confidence level of intervals and significance level (1 − level) of slice flags.</summary>
    public double Level { get; init; } = 0.95;

    /// <summary>Timed latency runs per model after the evaluation (0: none).</summary>
    public int LatencyRuns { get; init; } = 20;

    /// <summary>Untimed runs per model before the latency runs.</summary>
    public int Warmup { get; init; } = 3;
}

/// <summary>Summary of one metric for one model: value and bootstrap CI.</summary>
public sealed record MetricValue(string Name, bool HigherIsBetter, double Value, double CiLow, double CiHigh);

/// <summary>Latency and memory of one model.</summary>
public sealed record LatencyReport(double P50Ms, double P90Ms, double P99Ms, double MeanMs, double ColdStartMs, double LoadMs,
    long PeakArenaBytes, int Runs, int Warmup, IReadOnlyList<double> SamplesMs);

/// <summary>The result of <c>ondevice eval</c>.</summary>
public sealed record EvalResult(string Model, string Task, string Metric, double Value, double CiLow, double CiHigh, int Examples,
    IReadOnlyList<MetricValue> Metrics, IReadOnlyList<ExampleResult> Results, LatencyReport? Latency, long PeakWorkingSetBytes,
    IReadOnlyList<SliceResult> Slices);

/// <summary>One metric compared between A and B.</summary>
public sealed record MetricComparison(string Name, bool HigherIsBetter, double A, double B, double Delta, double CiLow, double CiHigh,
    double ALow, double AHigh, double BLow, double BHigh, string Verdict);

/// <summary>One slice (value of a field): metric for A and B, Δ with CI, p-value (permutation) before and after Holm.</summary>
public sealed record SliceResult(string Field, string Value, int N, double A, double B, double Delta, double CiLow, double CiHigh,
    double P, double PHolm, bool WorseBeyondMargin, bool Flagged);

/// <summary>An example where A and B differ (in correctness, or in output for tasks without it).</summary>
public sealed record Disagreement(int Index, string Id, string? File, string? Label, string OutputA, string OutputB, bool? CorrectA, bool? CorrectB, double ValueA, double ValueB);

/// <summary>The result of <c>ondevice compare</c>.</summary>
public sealed record CompareResult(string ModelA, string ModelB, string Task, string Metric, bool HigherIsBetter, double A, double B,
    double Delta, double CiLow, double CiHigh, double? McnemarP, double? McnemarMidP, int? OnlyACorrect, int? OnlyBCorrect,
    double PermutationP, bool PermutationExact, string Verdict, double Margin, int Examples, int Bootstrap, int Seed, double Level,
    IReadOnlyList<MetricComparison> Metrics, IReadOnlyList<SliceResult> Slices, LatencyReport? LatencyA, LatencyReport? LatencyB,
    long PeakWorkingSetBytes, IReadOnlyList<Disagreement> Disagreements, int DisagreementCount);

/// <summary>Runs tasks over datasets: single-model evaluation and paired A/B comparison.</summary>
public static class Evaluator
{
    /// <summary>Evaluates <paramref name="model"/> on <paramref name="data"/>.</summary>
    public static EvalResult Evaluate(ITaskAdapter task, string model, Dataset data, TaskOptions taskOptions, EvalOptions options)
    {
        CheckSliceFields(data, options);
        using var bound = task.Bind(model, data, taskOptions);
        var examples = data.Take(options.Limit).Examples;
        if (options.SaveInputs is { } save)
        {
            if (bound.Session is null) throw new EvaluationException($"--save-inputs needs a model that takes inputs; task {task.Name} scores prediction files");
            // A folder with older samples would mix them into the calibration set.
            if (Directory.Exists(save) && Directory.EnumerateFileSystemEntries(save).Any())
                throw new EvaluationException($"--save-inputs folder '{save}' is not empty; give a new or empty folder");
        }
        var results = new ExampleResult[examples.Count];
        for (int i = 0; i < examples.Count; i++)
        {
            var feeds = bound.Prepare(examples[i]);
            if (feeds is not null && options.SaveInputs is not null) SaveFeeds(options.SaveInputs, i, feeds);
            var (outputs, ms) = Run(bound, feeds);
            results[i] = bound.Score(examples[i], outputs, ms);
            options.Progress?.Invoke(i + 1, examples.Count);
        }
        var metrics = task.Metrics.Select(m =>
        {
            var rows = results.Select(r => r.Stats).ToList();
            var bs = PairedBootstrap.Run(m, rows, rows, options.Bootstrap, options.Seed, options.Level);
            return new MetricValue(m.Name, m.HigherIsBetter, bs.A, bs.ALow, bs.AHigh);
        }).ToList();
        LatencyReport? latency = null;
        if (bound.Session is not null && options.LatencyRuns > 0)
            latency = MeasureLatency([bound], bound.Prepare(examples[0])!, options)[0];
        var slices = SliceSingle(task.Metrics[0], examples, results, options);
        return new EvalResult(Path.GetFullPath(model), task.Name, metrics[0].Name, metrics[0].Value, metrics[0].CiLow, metrics[0].CiHigh,
            examples.Count, metrics, results, latency, PeakWorkingSet(), slices);
    }

    /// <summary>Compares B against A on the same examples, running them alternately.</summary>
    public static CompareResult Compare(ITaskAdapter task, string modelA, string modelB, Dataset data, TaskOptions taskOptions, EvalOptions options)
    {
        if (options.Margin < 0 || double.IsNaN(options.Margin)) throw new EvaluationException($"--margin must be ≥ 0 (got {options.Margin})");
        if (options.Bootstrap < 1) throw new EvaluationException("--bootstrap must be at least 1");
        CheckSliceFields(data, options);
        var optsA = task.Name == "agreement" && taskOptions.Reference is null ? taskOptions with { Reference = modelA } : taskOptions;
        using var a = task.Bind(modelA, data, optsA);
        using var b = task.Bind(modelB, data, optsA);
        var examples = data.Take(options.Limit).Examples;
        var ra = new ExampleResult[examples.Count];
        var rb = new ExampleResult[examples.Count];
        for (int i = 0; i < examples.Count; i++)
        {
            // Alternate which model runs first so slow drift of the machine affects both equally.
            foreach (var (bound, results) in i % 2 == 0 ? new[] { (a, ra), (b, rb) } : [(b, rb), (a, ra)])
            {
                var feeds = bound.Prepare(examples[i]);
                var (outputs, ms) = Run(bound, feeds);
                results[i] = bound.Score(examples[i], outputs, ms);
            }
            options.Progress?.Invoke(i + 1, examples.Count);
        }

        var rowsA = ra.Select(r => r.Stats).ToList();
        var rowsB = rb.Select(r => r.Stats).ToList();
        var metrics = task.Metrics.Select(m =>
        {
            var bs = PairedBootstrap.Run(m, rowsA, rowsB, options.Bootstrap, options.Seed, options.Level);
            var verdict = Verdicts.Decide(bs.CiLow, bs.CiHigh, options.Margin, m.HigherIsBetter).Text();
            return new MetricComparison(m.Name, m.HigherIsBetter, bs.A, bs.B, bs.Delta, bs.CiLow, bs.CiHigh, bs.ALow, bs.AHigh, bs.BLow, bs.BHigh, verdict);
        }).ToList();
        var primary = metrics[0];
        McNemarResult? mc = task.HasCorrectness ? McNemar.Test(ra.Select(r => r.Correct == true).ToList(), rb.Select(r => r.Correct == true).ToList()) : null;
        var perm = PermutationTest.Run(task.Metrics[0], rowsA, rowsB, 10000, options.Seed);
        var slices = SlicePaired(task.Metrics[0], examples, ra, rb, options);

        LatencyReport? la = null, lb = null;
        if (a.Session is not null && b.Session is not null && options.LatencyRuns > 0)
        {
            var lat = MeasureLatency([a, b], a.Prepare(examples[0])!, options);
            (la, lb) = (lat[0], lat[1]);
        }
        var m0 = task.Metrics[0];
        var disagreements = new List<Disagreement>();
        for (int i = 0; i < examples.Count; i++)
        {
            bool differ = task.HasCorrectness ? ra[i].Correct != rb[i].Correct || ra[i].Output != rb[i].Output : ra[i].Output != rb[i].Output;
            if (!differ) continue;
            var e = examples[i];
            disagreements.Add(new Disagreement(i, e.Id, e.File, e.Label, ra[i].Output, rb[i].Output, ra[i].Correct, rb[i].Correct,
                m0.FromSums(ra[i].Stats), m0.FromSums(rb[i].Stats)));
        }
        return new CompareResult(Path.GetFullPath(modelA), Path.GetFullPath(modelB), task.Name, primary.Name, primary.HigherIsBetter,
            primary.A, primary.B, primary.Delta, primary.CiLow, primary.CiHigh, mc?.PExact, mc?.PMid, mc?.OnlyACorrect, mc?.OnlyBCorrect,
            perm.P, perm.Exact, primary.Verdict, options.Margin, examples.Count, options.Bootstrap, options.Seed, options.Level,
            metrics, slices, la, lb, PeakWorkingSet(), disagreements, disagreements.Count);
    }

    private static (IReadOnlyDictionary<string, Tensor>? Outputs, double Ms) Run(IBoundTask bound, IReadOnlyDictionary<string, Tensor>? feeds)
    {
        if (bound.Session is null || feeds is null) return (null, 0);
        long t0 = Stopwatch.GetTimestamp();
        var outputs = bound.Session.Run(feeds);
        return (outputs, Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
    }

    private static void CheckSliceFields(Dataset data, EvalOptions options)
    {
        foreach (var f in options.SliceBy)
            if (!data.Examples.Any(e => e.Fields.ContainsKey(f)))
                throw new DatasetException($"--slice-by '{f}': no example has that field; fields: {(data.FieldNames.Count == 0 ? "(none)" : string.Join(", ", data.FieldNames))}");
    }

    private static void SaveFeeds(string dir, int index, IReadOnlyDictionary<string, Tensor> feeds)
    {
        var sub = Path.Combine(dir, index.ToString("D5", System.Globalization.CultureInfo.InvariantCulture));
        Directory.CreateDirectory(sub);
        foreach (var (name, t) in feeds)
        {
            var file = Path.Combine(sub, name + ".npy");
            Core.AtomicFile.WriteAllBytes(file, NpyFile.ToBytes(t));
        }
    }

    /// <summary>
    /// Latency of each model on the same feeds: <see cref="EvalOptions.Warmup"/> untimed runs each, then
    /// <see cref="EvalOptions.LatencyRuns"/> rounds in which every model runs once, the order rotating each round.
    /// </summary>
    public static IReadOnlyList<LatencyReport> MeasureLatency(IReadOnlyList<IBoundTask> models, IReadOnlyDictionary<string, Tensor> feeds, EvalOptions options)
    {
        int n = models.Count;
        // Cold start: a fresh session of each model loaded and run once, in a process whose JIT is already warm,
        // so the model loaded first does not also pay for compiling the runtime.
        var coldMs = new double[n];
        for (int j = 0; j < n; j++)
        {
            long c0 = Stopwatch.GetTimestamp();
            var fresh = Runtime.InferenceSession.Load(models[j].Model, models[j].Session!.Options);
            fresh.Run(feeds);
            coldMs[j] = Stopwatch.GetElapsedTime(c0).TotalMilliseconds;
        }
        for (int w = 0; w < options.Warmup; w++) foreach (var m in models) m.Session!.Run(feeds);
        var times = Enumerable.Range(0, n).Select(_ => new List<double>()).ToArray();
        var peak = new long[n];
        for (int r = 0; r < options.LatencyRuns; r++)
            for (int k = 0; k < n; k++)
            {
                int j = (k + r) % n;
                long t0 = Stopwatch.GetTimestamp();
                models[j].Session!.Run(feeds);
                times[j].Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                peak[j] = Math.Max(peak[j], models[j].Session!.LastRunPeakArenaBytes);
            }
        return Enumerable.Range(0, n).Select(j =>
        {
            var s = times[j].Order().ToArray();
            return new LatencyReport(Percentile(s, 50), Percentile(s, 90), Percentile(s, 99), s.Average(), coldMs[j], models[j].LoadMs,
                peak[j], options.LatencyRuns, options.Warmup, times[j]);
        }).ToList();
    }

    /// <summary>Nearest-rank percentile of sorted values.</summary>
    public static double Percentile(double[] sorted, double p)
    {
        if (sorted.Length == 0) return double.NaN;
        int rank = (int)Math.Ceiling(p / 100 * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }

    private static long PeakWorkingSet()
    {
        using var p = Process.GetCurrentProcess();
        p.Refresh();
        return p.PeakWorkingSet64;
    }

    private static IEnumerable<(string Field, string Value, int[] Indices)> Groups(IReadOnlyList<Example> examples, EvalOptions options) =>
        options.SliceBy.SelectMany(f => examples.Where(e => e.Fields.ContainsKey(f)).GroupBy(e => e.Fields[f], StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => (f, g.Key, g.Select(e => e.Index).ToArray())));

    private static List<SliceResult> SliceSingle(Metric metric, IReadOnlyList<Example> examples, ExampleResult[] results, EvalOptions options)
    {
        var list = new List<SliceResult>();
        var pos = examples.Select((e, i) => (e.Index, i)).ToDictionary(p => p.Index, p => p.i);
        foreach (var (field, value, idx) in Groups(examples, options))
        {
            var rows = idx.Select(i => results[pos[i]].Stats).ToList();
            var bs = PairedBootstrap.Run(metric, rows, rows, options.Bootstrap, options.Seed, options.Level);
            list.Add(new SliceResult(field, value, idx.Length, bs.A, bs.A, 0, bs.ALow, bs.AHigh, 1, 1, false, false));
        }
        return list;
    }

    private static List<SliceResult> SlicePaired(Metric metric, IReadOnlyList<Example> examples, ExampleResult[] ra, ExampleResult[] rb, EvalOptions options)
    {
        var groups = Groups(examples, options).ToList();
        var raw = new List<(string F, string V, int N, BootstrapResult Bs, double P)>();
        var pos = examples.Select((e, i) => (e.Index, i)).ToDictionary(p => p.Index, p => p.i);
        foreach (var (field, value, idx) in groups)
        {
            var a = idx.Select(i => ra[pos[i]].Stats).ToList();
            var b = idx.Select(i => rb[pos[i]].Stats).ToList();
            var bs = PairedBootstrap.Run(metric, a, b, options.Bootstrap, options.Seed, options.Level);
            var p = PermutationTest.Run(metric, a, b, 5000, options.Seed).P;
            raw.Add((field, value, idx.Length, bs, p));
        }
        // Holm within each field: the slices of one field form one family of comparisons.
        var result = new List<SliceResult>();
        foreach (var fam in raw.GroupBy(r => r.F))
        {
            var items = fam.ToList();
            var adj = Holm.Adjust(items.Select(r => r.P).ToList());
            for (int k = 0; k < items.Count; k++)
            {
                var (f, v, n, bs, p) = items[k];
                double oriented = metric.HigherIsBetter ? bs.Delta : -bs.Delta;
                bool worse = oriented < -options.Margin;
                result.Add(new SliceResult(f, v, n, bs.A, bs.B, bs.Delta, bs.CiLow, bs.CiHigh, p, adj[k], worse, worse && adj[k] < 1 - options.Level));
            }
        }
        return result;
    }
}
