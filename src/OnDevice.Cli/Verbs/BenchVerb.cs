using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using OnDevice.Runtime;
using Spectre.Console;

namespace OnDevice.Cli.Verbs;

/// <summary><c>ondevice bench MODEL</c>: latency percentiles, cold start and memory of the managed runtime.</summary>
public static class BenchVerb
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var model = new Argument<string>("model") { Description = "ONNX model file or sample name" };
        var threads = new Option<int>("--threads") { Description = "Threads per run", DefaultValueFactory = _ => 1 };
        var runs = new Option<int>("--runs") { Description = "Timed runs", DefaultValueFactory = _ => 50 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed runs first", DefaultValueFactory = _ => 5 };
        var inputs = new Option<string[]>("--input") { Description = "NAME=FILE.npy or NAME=NUMBER (repeatable)" };
        var shapes = new Option<string[]>("--shape") { Description = "NAME=1x3x48x320: random input of this shape (repeatable)" };
        var profile = new Option<bool>("--profile") { Description = "Time per op type and per node" };
        var json = new Option<bool>("--json") { Description = "Print JSON" };
        var cmd = new Command("bench", "Measure latency (p50/p90/p99), cold start and peak memory on this machine")
        {
            model, threads, runs, warmup, inputs, shapes, profile, json,
        };
        cmd.SetAction(r =>
        {
            bool asJson = r.GetValue(json);
            var path = Cli.ResolveModel(r.GetValue(model)!, asJson);
            int n = Math.Max(1, r.GetValue(runs)), w = Math.Max(0, r.GetValue(warmup));
            var options = new SessionOptions { Threads = Math.Max(1, r.GetValue(threads)), Profiling = r.GetValue(profile) };

            var cold = Stopwatch.StartNew();
            var session = InferenceSession.Load(path, options);
            var feeds = ModelInputs.Build(session, r.GetValue(inputs) ?? [], r.GetValue(shapes) ?? [], requireAll: false);
            session.Run(feeds);
            double coldMs = cold.Elapsed.TotalMilliseconds;

            var report = Cli.WithStatus(asJson, $"benchmarking {Path.GetFileName(path)}", () =>
            {
                for (int i = 0; i < w; i++) session.Run(feeds);
                var times = new double[n];
                for (int i = 0; i < n; i++)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    session.Run(feeds);
                    times[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                }
                Array.Sort(times);
                using var proc = Process.GetCurrentProcess();
                proc.Refresh();
                return new BenchReport(
                    Model: Path.GetFullPath(path), Threads: options.Threads, Runs: n, Warmup: w,
                    Inputs: feeds.ToDictionary(k => k.Key, k => k.Value.Dims),
                    P50Ms: Percentile(times, 50), P90Ms: Percentile(times, 90), P99Ms: Percentile(times, 99),
                    MeanMs: times.Average(), MinMs: times[0], ColdStartMs: coldMs,
                    PlannedPeakBytes: session.PlannedPeakBytes(feeds), PeakWorkingSetBytes: proc.PeakWorkingSet64,
                    Profile: options.Profiling ? session.GetProfile() : null);
            });
            if (asJson) Cli.WriteJson(report);
            else Print(report);
            return 0;
        });
        return cmd;
    }

    /// <summary>Nearest-rank percentile of sorted values.</summary>
    public static double Percentile(double[] sorted, double p)
    {
        if (sorted.Length == 0) return double.NaN;
        int rank = (int)Math.Ceiling(p / 100 * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }

    private static void Print(BenchReport r)
    {
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine($"{Path.GetFileName(r.Model)}  threads {r.Threads}  runs {r.Runs} (+{r.Warmup} warm-up)  inputs {string.Join(", ", r.Inputs.Select(i => $"{i.Key}[{string.Join("x", i.Value)}]"))}");
        Console.WriteLine(string.Format(inv, "latency  p50 {0:0.000} ms  p90 {1:0.000} ms  p99 {2:0.000} ms  (min {3:0.000}, mean {4:0.000})", r.P50Ms, r.P90Ms, r.P99Ms, r.MinMs, r.MeanMs));
        Console.WriteLine(string.Format(inv, "cold start (load + first run) {0:0.0} ms", r.ColdStartMs));
        Console.WriteLine($"memory   planned peak activations {Cli.Bytes(r.PlannedPeakBytes)}  process peak working set {Cli.Bytes(r.PeakWorkingSetBytes)}");
        if (r.Profile is { } p)
        {
            var t = new Table().AddColumns("op", "nodes", "ms/run", "share").Border(TableBorder.Simple);
            double total = p.ByOp.Sum(o => o.MeanMs);
            foreach (var o in p.ByOp)
                t.AddRow(Markup.Escape(o.OpType), o.Nodes.ToString(inv), o.MeanMs.ToString("0.000", inv), (o.MeanMs / Math.Max(total, 1e-9)).ToString("P1", inv));
            AnsiConsole.Write(t);
            var top = new Table().AddColumns("node", "op", "ms/run").Border(TableBorder.Simple);
            foreach (var nd in p.Nodes.OrderByDescending(x => x.MeanMs).Take(15))
                top.AddRow(Markup.Escape(nd.Name), Markup.Escape(nd.OpType), nd.MeanMs.ToString("0.000", inv));
            AnsiConsole.Write(top);
        }
    }
}

/// <summary>What <c>ondevice bench --json</c> prints.</summary>
public sealed record BenchReport(string Model, int Threads, int Runs, int Warmup, Dictionary<string, long[]> Inputs,
    double P50Ms, double P90Ms, double P99Ms, double MeanMs, double MinMs, double ColdStartMs,
    long PlannedPeakBytes, long PeakWorkingSetBytes, ProfileReport? Profile);
