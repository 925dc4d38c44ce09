using System.CommandLine;
using System.Globalization;
using OnDevice.Evaluation;
using OnDevice.Evaluation.Reporting;
using Spectre.Console;

namespace OnDevice.Cli.Verbs;

/// <summary>
/// <c>ondevice compare A B --data DIR --task T</c>: is B worse than A, by how much, with what certainty? Paired
/// bootstrap CI of Δ = B − A, McNemar on correctness, a permutation test, a verdict against <c>--margin</c>,
/// slices, latency side by side and an HTML report.
/// </summary>
public static class CompareVerb
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var a = new Argument<string>("a") { Description = "Model A (the baseline): ONNX file or sample name (generation: prediction file)" };
        var b = new Argument<string>("b") { Description = "Model B (the candidate)" };
        var o = new EvalCliOptions();
        var margin = new Option<double>("--margin") { Description = "Non-inferiority margin in metric units (e.g. 0.01 = 1 CER point)", DefaultValueFactory = _ => 0 };
        var report = new Option<string>("--report") { Description = "Write a self-contained HTML report here" };
        var cmd = new Command("compare", "Compare model B against model A on the same examples: Δ with CI, paired tests, verdict, slices, latency") { a, b, margin, report };
        o.AddTo(cmd);
        cmd.SetAction(r =>
        {
            bool json = r.GetValue(o.Json);
            var pa = Cli.ResolveModel(r.GetValue(a)!, json);
            var pb = Cli.ResolveModel(r.GetValue(b)!, json);
            var (task, data, taskOptions, evalOptions) = o.Read(r, pa);
            double m = r.GetValue(margin);
            if (m < 0 || double.IsNaN(m)) throw new CliException($"--margin must be ≥ 0 (got {m})");
            evalOptions = evalOptions with { Margin = m };
            var reportPath = r.GetValue(report);
            if (reportPath is not null && Path.GetDirectoryName(Path.GetFullPath(reportPath)) is { } rd && !Directory.Exists(rd))
                throw new CliException($"--report: folder '{rd}' does not exist");
            var result = EvalCliOptions.WithProgress(json, $"comparing {Path.GetFileName(pa)} vs {Path.GetFileName(pb)}", evalOptions,
                eo => Evaluator.Compare(task, pa, pb, data, taskOptions, eo));
            if (reportPath is not null) HtmlReport.Write(result, reportPath);
            if (json) { Cli.WriteJson(result); return 0; }
            Print(result, reportPath);
            return 0;
        });
        return cmd;
    }

    private static void Print(CompareResult r, string? report)
    {
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine($"A {Path.GetFileName(r.ModelA)}   B {Path.GetFileName(r.ModelB)}   task {r.Task}   {r.Examples} examples   {r.Level:P0} CI, {r.Bootstrap} resamples, seed {r.Seed}");
        var t = new Table().AddColumns("metric", "A", "B", "Δ (B−A)", "CI of Δ", "verdict").Border(TableBorder.Simple);
        foreach (var m in r.Metrics)
            t.AddRow(m.Name, EvalCliOptions.F(m.A), EvalCliOptions.F(m.B), EvalCliOptions.F(m.Delta), EvalCliOptions.Ci(m.CiLow, m.CiHigh), m.Verdict);
        AnsiConsole.Write(t);
        Console.WriteLine(string.Format(inv, "verdict on {0} with margin {1}: {2}", r.Metric, r.Margin, r.Verdict.ToUpperInvariant()));
        if (r.McnemarP is { } p)
            Console.WriteLine(string.Format(inv, "McNemar: only A correct {0}, only B correct {1}, exact p = {2:G4}, mid-p = {3:G4}", r.OnlyACorrect, r.OnlyBCorrect, p, r.McnemarMidP));
        Console.WriteLine(string.Format(inv, "paired permutation test on {0}: p = {1:G4} ({2})", r.Metric, r.PermutationP, r.PermutationExact ? "exact" : "Monte Carlo"));
        if (r.Slices.Count > 0)
        {
            var s = new Table().AddColumns("slice", "n", "A", "B", "Δ", "CI of Δ", "p (Holm)", "flag").Border(TableBorder.Simple);
            foreach (var x in r.Slices)
                s.AddRow(Markup.Escape($"{x.Field}={x.Value}"), x.N.ToString(inv), EvalCliOptions.F(x.A), EvalCliOptions.F(x.B), EvalCliOptions.F(x.Delta),
                    EvalCliOptions.Ci(x.CiLow, x.CiHigh), x.PHolm.ToString("G3", inv), x.Flagged ? "[red]WORSE[/]" : x.WorseBeyondMargin ? "worse (n.s.)" : "");
            AnsiConsole.Write(s);
        }
        if (r.LatencyA is { } la && r.LatencyB is { } lb)
        {
            Console.WriteLine(string.Format(inv, "latency A p50 {0:0.00} p90 {1:0.00} p99 {2:0.00} ms, cold {3:0.0} ms, peak arena {4}", la.P50Ms, la.P90Ms, la.P99Ms, la.ColdStartMs, Cli.Bytes(la.PeakArenaBytes)));
            Console.WriteLine(string.Format(inv, "latency B p50 {0:0.00} p90 {1:0.00} p99 {2:0.00} ms, cold {3:0.0} ms, peak arena {4}  (B/A p50 {5:0.00}x)", lb.P50Ms, lb.P90Ms, lb.P99Ms, lb.ColdStartMs, Cli.Bytes(lb.PeakArenaBytes), lb.P50Ms / la.P50Ms));
        }
        Console.WriteLine($"{r.DisagreementCount} examples where A and B disagree");
        if (report is not null) Console.WriteLine($"report: {Path.GetFullPath(report)}");
    }
}
