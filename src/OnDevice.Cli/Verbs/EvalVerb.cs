using System.CommandLine;
using System.Globalization;
using OnDevice.Evaluation;
using OnDevice.Evaluation.Data;
using OnDevice.Evaluation.Tasks;
using OnDevice.Samples;
using Spectre.Console;

namespace OnDevice.Cli.Verbs;

/// <summary><c>ondevice eval MODEL --data DIR --task T</c>: a model's metrics on a dataset, with bootstrap confidence intervals.</summary>
public static class EvalVerb
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var model = new Argument<string>("model") { Description = "ONNX model file or sample name (generation: a prediction file)" };
        var o = new EvalCliOptions();
        var saveInputs = new Option<string>("--save-inputs") { Description = "Write each example's model inputs as DIR/NNNNN/<input>.npy (a calibration set for quantize)" };
        var cmd = new Command("eval", "Evaluate a model on a dataset: metrics with bootstrap confidence intervals, slices, latency") { model, saveInputs };
        o.AddTo(cmd);
        cmd.SetAction(r =>
        {
            bool json = r.GetValue(o.Json);
            var path = Cli.ResolveModel(r.GetValue(model)!, json);
            var (task, data, taskOptions, evalOptions) = o.Read(r, path);
            evalOptions = evalOptions with { SaveInputs = r.GetValue(saveInputs) };
            var result = EvalCliOptions.WithProgress(json, $"evaluating {Path.GetFileName(path)}", evalOptions, eo => Evaluator.Evaluate(task, path, data, taskOptions, eo));
            if (json)
            {
                Cli.WriteJson(new
                {
                    result.Model, result.Task, result.Metric, result.Value, result.CiLow, result.CiHigh, result.Examples,
                    result.Metrics, result.Slices, result.Latency, result.PeakWorkingSetBytes, savedInputs = evalOptions.SaveInputs,
                    perExample = result.Results.Select(x => new { id = data.Examples[x.Index].Id, label = data.Examples[x.Index].Label, output = x.Output, correct = x.Correct, ms = x.Ms }),
                });
                return 0;
            }
            var inv = CultureInfo.InvariantCulture;
            Console.WriteLine($"{Path.GetFileName(result.Model)}  task {result.Task}  {result.Examples} examples  ({evalOptions.Level:P0} bootstrap CI, {evalOptions.Bootstrap} resamples, seed {evalOptions.Seed})");
            var t = new Table().AddColumns("metric", "value", "CI").Border(TableBorder.Simple);
            foreach (var m in result.Metrics) t.AddRow(m.Name, EvalCliOptions.F(m.Value), EvalCliOptions.Ci(m.CiLow, m.CiHigh));
            AnsiConsole.Write(t);
            if (result.Slices.Count > 0)
            {
                var s = new Table().AddColumns("slice", "n", result.Metric, "CI").Border(TableBorder.Simple);
                foreach (var x in result.Slices) s.AddRow(Markup.Escape($"{x.Field}={x.Value}"), x.N.ToString(inv), EvalCliOptions.F(x.A), EvalCliOptions.Ci(x.CiLow, x.CiHigh));
                AnsiConsole.Write(s);
            }
            if (result.Latency is { } l)
                Console.WriteLine(string.Format(inv, "latency p50 {0:0.00} ms  p90 {1:0.00} ms  p99 {2:0.00} ms  cold start {3:0.0} ms  peak arena {4}", l.P50Ms, l.P90Ms, l.P99Ms, l.ColdStartMs, Cli.Bytes(l.PeakArenaBytes)));
            if (evalOptions.SaveInputs is { } dir) Console.WriteLine($"inputs saved to {dir} (use as --calibration for quantize)");
            return 0;
        });
        return cmd;
    }
}

/// <summary>Options shared by <c>eval</c> and <c>compare</c>.</summary>
internal sealed class EvalCliOptions
{
    public readonly Option<string> Data = new("--data") { Description = "Dataset folder (inputs and labels.tsv or labels.jsonl)", Required = true };
    public readonly Option<string> Task = new("--task") { Description = "classification, ctc, generation, regression or agreement", Required = true };
    public readonly Option<string> Labels = new("--labels") { Description = "Labels file (default: DIR/labels.tsv or DIR/labels.jsonl)" };
    public readonly Option<string> Dict = new("--dict") { Description = "ctc: character list (default for PaddleOCR samples: their ppocr_keys_v1.txt)" };
    public readonly Option<string> Output = new("--output") { Description = "Model output to score (default: the first)" };
    public readonly Option<string> Size = new("--size") { Description = "classification: input HxW (default: from the model)" };
    public readonly Option<string> Mean = new("--mean") { Description = "classification: per-channel mean, e.g. 0.485,0.456,0.406" };
    public readonly Option<string> Std = new("--std") { Description = "classification: per-channel std, e.g. 0.229,0.224,0.225" };
    public readonly Option<string> ChannelOrder = new("--channel-order") { Description = "classification: rgb or bgr", DefaultValueFactory = _ => "rgb" };
    public readonly Option<int> MinWidth = new("--min-width") { Description = "ctc: pad lines to at least this width", DefaultValueFactory = _ => 320 };
    public readonly Option<string> Reference = new("--reference") { Description = "agreement: reference model (compare: default A)" };
    public readonly Option<string> Preprocess = new("--preprocess") { Description = "agreement/regression: PNG preprocessing, ctc or classification" };
    public readonly Option<int> Threads = new("--threads") { Description = "Threads per model run", DefaultValueFactory = _ => 1 };
    public readonly Option<int> Limit = new("--limit") { Description = "Only the first N examples" };
    public readonly Option<string[]> SliceBy = new("--slice-by") { Description = "Report the metric per value of this field (repeatable)" };
    public readonly Option<int> Bootstrap = new("--bootstrap") { Description = "Bootstrap resamples", DefaultValueFactory = _ => 1000 };
    public readonly Option<int> Seed = new("--seed") { Description = "Seed for resampling", DefaultValueFactory = _ => 1 };
    public readonly Option<int> LatencyRuns = new("--latency-runs") { Description = "Timed runs per model on the first example (0: skip)", DefaultValueFactory = _ => 20 };
    public readonly Option<int> Warmup = new("--warmup") { Description = "Untimed runs per model before timing", DefaultValueFactory = _ => 3 };
    public readonly Option<bool> Json = new("--json") { Description = "Print JSON" };

    public void AddTo(Command cmd)
    {
        foreach (var opt in new Option[] { Data, Task, Labels, Dict, Output, Size, Mean, Std, ChannelOrder, MinWidth, Reference, Preprocess, Threads, Limit, SliceBy, Bootstrap, Seed, LatencyRuns, Warmup, Json })
            cmd.Options.Add(opt);
    }

    /// <summary>Reads and checks everything before any work; evaluation errors become one-line CLI errors.</summary>
    public (ITaskAdapter Task, Dataset Data, TaskOptions TaskOptions, EvalOptions EvalOptions) Read(ParseResult r, string modelPath)
    {
        try
        {
            var task = TaskRegistry.Get(r.GetValue(Task)!);
            var data = Dataset.Load(r.GetValue(Data)!, r.GetValue(Labels));
            int limit = r.GetValue(Limit);
            if (limit < 0) throw new CliException("--limit must be ≥ 0");
            var dict = r.GetValue(Dict) ?? (task.Name == "ctc" ? SampleDictionary(modelPath) : null);
            var to = new TaskOptions
            {
                Dictionary = dict,
                Output = r.GetValue(Output),
                Size = r.GetValue(Size) is { } s ? ParseSize(s) : null,
                Mean = r.GetValue(Mean) is { } m ? Floats(m, "--mean") : new TaskOptions().Mean,
                Std = r.GetValue(Std) is { } sd ? Floats(sd, "--std") : new TaskOptions().Std,
                ChannelOrder = r.GetValue(ChannelOrder)!.ToLowerInvariant(),
                MinWidth = r.GetValue(MinWidth),
                Reference = r.GetValue(Reference) is { } rf ? Cli.ResolveModel(rf, true) : null,
                Preprocess = r.GetValue(Preprocess),
                Threads = Math.Max(1, r.GetValue(Threads)),
            };
            var eo = new EvalOptions
            {
                Limit = limit,
                SliceBy = r.GetValue(SliceBy) ?? [],
                Bootstrap = r.GetValue(Bootstrap),
                Seed = r.GetValue(Seed),
                LatencyRuns = Math.Max(0, r.GetValue(LatencyRuns)),
                Warmup = Math.Max(0, r.GetValue(Warmup)),
            };
            if (eo.Bootstrap < 1) throw new CliException("--bootstrap must be at least 1");
            return (task, data, to, eo);
        }
        catch (EvaluationException e) { throw new CliException(e.Message); }
    }

    /// <summary>The ppocr_keys_v1.txt of the sample the model file belongs to, if any.</summary>
    private static string? SampleDictionary(string modelPath)
    {
        var store = SampleStore.Default();
        var full = Path.GetFullPath(modelPath);
        foreach (var s in SampleCatalog.All)
            if (string.Equals(Path.GetFullPath(store.ModelPath(s)), full, StringComparison.Ordinal))
                return s.Companions.Where(c => c.PathInPackage.EndsWith(".txt", StringComparison.Ordinal)).Select(c => store.PathOf(s.Package, c)).FirstOrDefault();
        return null;
    }

    private static (int, int) ParseSize(string s)
    {
        var p = s.Split('x', 'X');
        if (p.Length == 2 && int.TryParse(p[0], out int h) && int.TryParse(p[1], out int w) && h > 0 && w > 0) return (h, w);
        throw new CliException($"--size '{s}' is not HxW (e.g. 224x224)");
    }

    private static float[] Floats(string s, string option)
    {
        var parts = s.Split(',');
        var v = new float[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!float.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out v[i])) throw new CliException($"{option} '{s}' is not a comma-separated list of numbers");
        return v;
    }

    /// <summary>Runs <paramref name="work"/> with a progress bar on a terminal (quiet with --json or redirected output).</summary>
    public static T WithProgress<T>(bool quiet, string title, EvalOptions options, Func<EvalOptions, T> work)
    {
        try
        {
            if (quiet || !Cli.IsInteractive) return work(options);
            T result = default!;
            AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var bar = ctx.AddTask(Markup.Escape(title));
                    result = work(options with { Progress = (done, total) => { bar.MaxValue = total; bar.Value = done; } });
                    bar.Value = bar.MaxValue;
                });
            return result;
        }
        catch (EvaluationException e) { throw new CliException(e.Message); }
    }

    /// <summary>A confidence interval as escaped table markup.</summary>
    public static string Ci(double lo, double hi) => Markup.Escape($"[{F(lo)}, {F(hi)}]");

    /// <summary>A metric value for tables.</summary>
    public static string F(double v) => double.IsNaN(v) ? "n/a" : v.ToString("0.0000", CultureInfo.InvariantCulture);
}
