using System.Globalization;
using System.Net;
using System.Text;

namespace OnDevice.Evaluation.Reporting;

/// <summary>
/// A self-contained HTML report of a comparison: one file, inline SVG charts and inline CSS/JS, no external
/// requests. Charts: each metric for A and B with CI bars, Δ with its CI against the margin, latency histograms,
/// per-slice Δ with CIs; then a filterable list of the examples where A and B disagree (PNG thumbnails inline).
/// </summary>
public static class HtmlReport
{
    /// <summary>Largest input image embedded as a thumbnail, in bytes.</summary>
    public const long MaxThumbnailBytes = 256 * 1024;

    /// <summary>Most disagreements listed.</summary>
    public const int MaxDisagreements = 1000;

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Writes the report atomically (temp file + rename).</summary>
    public static void Write(CompareResult r, string path) => Core.AtomicFile.WriteAllBytes(path, Encoding.UTF8.GetBytes(Render(r)));

    /// <summary>The report as HTML text.</summary>
    public static string Render(CompareResult r)
    {
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>ondevice compare: ").Append(E(Path.GetFileName(r.ModelA))).Append(" vs ").Append(E(Path.GetFileName(r.ModelB))).Append("</title>");
        sb.Append("<style>body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}h1{font-size:20px}h2{font-size:16px;margin-top:28px}")
          .Append("table{border-collapse:collapse;font-size:13px}td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}")
          .Append(".verdict{display:inline-block;padding:4px 10px;border-radius:4px;font-weight:bold}.superior,.non-inferior{background:#d4f4d4}.inferior{background:#f8d0d0}.inconclusive{background:#f4ecc4}")
          .Append(".ok{color:#187018}.bad{color:#b01818}svg.chart{display:block;margin:8px 0}code{font-size:12px}img.thumb{max-height:40px;max-width:420px;image-rendering:auto;border:1px solid #ccc}")
          .Append("</style></head><body>");
        sb.Append("<h1>ondevice compare</h1><p>A <code>").Append(E(r.ModelA)).Append("</code><br>B <code>").Append(E(r.ModelB)).Append("</code></p>");
        sb.Append(Fmt("<p>task <b>{0}</b>, {1} examples, {2:P0} bootstrap CI ({3} resamples, seed {4}), margin {5}</p>", E(r.Task), r.Examples, r.Level, r.Bootstrap, r.Seed, r.Margin));
        sb.Append(Fmt("<p>Verdict on <b>{0}</b>: <span class=\"verdict {1}\">{1}</span> &nbsp; Δ = {2} [{3}, {4}]", E(r.Metric), r.Verdict, N(r.Delta), N(r.CiLow), N(r.CiHigh)));
        if (r.McnemarP is { } p) sb.Append(Fmt(" &nbsp; McNemar exact p = {0:G4} (mid-p {1:G4}; only A correct {2}, only B correct {3})", p, r.McnemarMidP, r.OnlyACorrect, r.OnlyBCorrect));
        sb.Append(Fmt(" &nbsp; permutation p = {0:G4}</p>", r.PermutationP));

        sb.Append("<h2>Metrics</h2><table><tr><th>metric</th><th>A</th><th>B</th><th>Δ (B−A)</th><th>CI of Δ</th><th>verdict</th></tr>");
        foreach (var m in r.Metrics)
            sb.Append(Fmt("<tr><td>{0}{1}</td><td>{2} [{3}, {4}]</td><td>{5} [{6}, {7}]</td><td>{8}</td><td>[{9}, {10}]</td><td>{11}</td></tr>",
                E(m.Name), m.HigherIsBetter ? " ↑" : " ↓", N(m.A), N(m.ALow), N(m.AHigh), N(m.B), N(m.BLow), N(m.BHigh), N(m.Delta), N(m.CiLow), N(m.CiHigh), m.Verdict));
        sb.Append("</table>");
        sb.Append(MetricChart(r));
        sb.Append("<h3 style=\"font-size:14px\">Δ with CI (shaded: beyond the margin)</h3>").Append(DeltaChart(r));

        if (r.LatencyA is { } la && r.LatencyB is { } lb)
        {
            sb.Append("<h2>Latency</h2>");
            sb.Append(Fmt("<p>{0} alternating runs each after {1} warm-up runs. A: p50 {2:0.00} ms, p90 {3:0.00}, p99 {4:0.00}, cold start {5:0.0} ms, peak arena {6:N0} B. B: p50 {7:0.00} ms, p90 {8:0.00}, p99 {9:0.00}, cold start {10:0.0} ms, peak arena {11:N0} B. Process peak working set {12:N0} B.</p>",
                la.Runs, la.Warmup, la.P50Ms, la.P90Ms, la.P99Ms, la.ColdStartMs, la.PeakArenaBytes, lb.P50Ms, lb.P90Ms, lb.P99Ms, lb.ColdStartMs, lb.PeakArenaBytes, r.PeakWorkingSetBytes));
            sb.Append(Histogram(la.SamplesMs, lb.SamplesMs));
        }

        if (r.Slices.Count > 0)
        {
            sb.Append("<h2>Slices</h2><table><tr><th>slice</th><th>n</th><th>A</th><th>B</th><th>Δ</th><th>CI of Δ</th><th>p</th><th>p (Holm)</th><th></th></tr>");
            foreach (var s in r.Slices)
                sb.Append(Fmt("<tr><td>{0}={1}</td><td>{2}</td><td>{3}</td><td>{4}</td><td>{5}</td><td>[{6}, {7}]</td><td>{8:G3}</td><td>{9:G3}</td><td>{10}</td></tr>",
                    E(s.Field), E(s.Value), s.N, N(s.A), N(s.B), N(s.Delta), N(s.CiLow), N(s.CiHigh), s.P, s.PHolm,
                    s.Flagged ? "<b class=\"bad\">worse beyond margin</b>" : s.WorseBeyondMargin ? "worse (not significant)" : ""));
            sb.Append("</table>").Append(SliceChart(r));
        }

        sb.Append(Fmt("<h2>Disagreements ({0})</h2>", r.DisagreementCount));
        sb.Append("<p><input id=\"filter\" placeholder=\"filter by id, label or output\" size=\"40\" oninput=\"filterRows()\"> <span id=\"shown\"></span></p>");
        sb.Append("<table id=\"dis\"><tr><th>#</th><th>input</th><th>label</th><th>A</th><th>B</th><th>").Append(E(r.Metric)).Append(" A → B</th></tr>");
        foreach (var d in r.Disagreements.Take(MaxDisagreements))
        {
            sb.Append("<tr class=\"row\"><td>").Append(d.Index).Append("</td><td>").Append(Thumbnail(d)).Append("<br><code>").Append(E(d.Id)).Append("</code></td>");
            sb.Append("<td>").Append(E(d.Label ?? "")).Append("</td>");
            sb.Append("<td class=\"").Append(d.CorrectA == true ? "ok" : d.CorrectA == false ? "bad" : "").Append("\">").Append(E(d.OutputA)).Append("</td>");
            sb.Append("<td class=\"").Append(d.CorrectB == true ? "ok" : d.CorrectB == false ? "bad" : "").Append("\">").Append(E(d.OutputB)).Append("</td>");
            sb.Append("<td>").Append(N(d.ValueA)).Append(" → ").Append(N(d.ValueB)).Append("</td></tr>");
        }
        sb.Append("</table>");
        if (r.DisagreementCount > MaxDisagreements) sb.Append(Fmt("<p>(first {0} of {1} shown)</p>", MaxDisagreements, r.DisagreementCount));
        sb.Append("<script>function filterRows(){var q=document.getElementById('filter').value.toLowerCase();var n=0;")
          .Append("document.querySelectorAll('#dis tr.row').forEach(function(tr){var v=tr.textContent.toLowerCase().indexOf(q)>=0;tr.style.display=v?'':'none';if(v)n++;});")
          .Append("document.getElementById('shown').textContent=n+' shown';}filterRows();</script>");
        sb.Append("</body></html>");
        return sb.ToString();
    }

    private static string Thumbnail(Disagreement d)
    {
        if (d.File is null || !d.File.EndsWith(".png", StringComparison.OrdinalIgnoreCase) || !File.Exists(d.File)) return "";
        var info = new FileInfo(d.File);
        if (info.Length > MaxThumbnailBytes) return "(image too large to embed)";
        return "<img class=\"thumb\" alt=\"" + E(d.Id) + "\" src=\"data:image/png;base64," + Convert.ToBase64String(File.ReadAllBytes(d.File)) + "\">";
    }

    // ---- charts ----

    private const int W = 720, Left = 150, Right = 40;

    private static string MetricChart(CompareResult r)
    {
        int rowH = 22, h = r.Metrics.Count * 2 * rowH + 30;
        var sb = new StringBuilder();
        sb.Append(Fmt("<svg class=\"chart\" id=\"metrics-chart\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" xmlns=\"http://www.w3.org/2000/svg\" font-size=\"12\">", W, h));
        int y = 10;
        foreach (var m in r.Metrics)
        {
            // Each metric on its own axis spanning both CIs.
            double lo = Min(m.ALow, m.BLow, m.A, m.B), hi = Max(m.AHigh, m.BHigh, m.A, m.B);
            (lo, hi) = Pad(lo, hi);
            foreach (var (name, v, l, u, colour) in new[] { ("A", m.A, m.ALow, m.AHigh, "#3060c0"), ("B", m.B, m.BLow, m.BHigh, "#d07020") })
            {
                double X(double x) => Left + (x - lo) / (hi - lo) * (W - Left - Right);
                sb.Append(Fmt("<text x=\"4\" y=\"{0}\">{1} {2}</text>", y + 14, E(m.Name), name));
                sb.Append(Fmt("<rect x=\"{0:0.0}\" y=\"{1}\" width=\"{2:0.0}\" height=\"12\" fill=\"{3}\" opacity=\"0.35\"/>", X(Math.Min(lo, hi)), y + 4, Math.Max(1, X(v) - X(lo)), colour));
                sb.Append(Fmt("<line x1=\"{0:0.0}\" x2=\"{1:0.0}\" y1=\"{2}\" y2=\"{2}\" stroke=\"{3}\" stroke-width=\"2\"/>", X(l), X(u), y + 10, colour));
                sb.Append(Fmt("<line x1=\"{0:0.0}\" x2=\"{0:0.0}\" y1=\"{1}\" y2=\"{2}\" stroke=\"{3}\"/><line x1=\"{4:0.0}\" x2=\"{4:0.0}\" y1=\"{1}\" y2=\"{2}\" stroke=\"{3}\"/>", X(l), y + 5, y + 15, colour, X(u)));
                sb.Append(Fmt("<circle cx=\"{0:0.0}\" cy=\"{1}\" r=\"4\" fill=\"{2}\"/>", X(v), y + 10, colour));
                sb.Append(Fmt("<text x=\"{0:0.0}\" y=\"{1}\" fill=\"#555\">{2}</text>", Math.Min(X(u) + 6, W - 60), y + 14, N(v)));
                y += rowH;
            }
        }
        sb.Append("</svg>");
        return sb.ToString();
    }

    private static string DeltaChart(CompareResult r)
    {
        int rowH = 24, h = r.Metrics.Count * rowH + 34;
        var sb = new StringBuilder();
        sb.Append(Fmt("<svg class=\"chart\" id=\"delta-chart\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" xmlns=\"http://www.w3.org/2000/svg\" font-size=\"12\">", W, h));
        int y = 8;
        foreach (var m in r.Metrics)
        {
            double margin = m.Name == r.Metric ? r.Margin : 0;
            double worse = m.HigherIsBetter ? -margin : margin;
            var (lo, hi) = Pad(Min(m.CiLow, 0, worse, m.Delta), Max(m.CiHigh, 0, worse, m.Delta));
            double X(double x) => Left + (x - lo) / (hi - lo) * (W - Left - Right);
            sb.Append(Fmt("<text x=\"4\" y=\"{0}\">Δ {1}</text>", y + 14, E(m.Name)));
            if (margin > 0)
            {
                double x0 = m.HigherIsBetter ? X(lo) : X(worse), x1 = m.HigherIsBetter ? X(worse) : X(hi);
                sb.Append(Fmt("<rect x=\"{0:0.0}\" y=\"{1}\" width=\"{2:0.0}\" height=\"20\" fill=\"#f0c0c0\" opacity=\"0.5\"/>", x0, y, Math.Max(0, x1 - x0)));
            }
            sb.Append(Fmt("<line x1=\"{0:0.0}\" x2=\"{0:0.0}\" y1=\"{1}\" y2=\"{2}\" stroke=\"#999\" stroke-dasharray=\"3,3\"/>", X(0), y, y + 20));
            sb.Append(Fmt("<line x1=\"{0:0.0}\" x2=\"{1:0.0}\" y1=\"{2}\" y2=\"{2}\" stroke=\"#333\" stroke-width=\"2\"/>", X(m.CiLow), Math.Max(X(m.CiHigh), X(m.CiLow) + 1), y + 10));
            sb.Append(Fmt("<rect x=\"{0:0.0}\" y=\"{1}\" width=\"6\" height=\"6\" fill=\"#333\"/>", X(m.Delta) - 3, y + 7));
            sb.Append(Fmt("<text x=\"{0:0.0}\" y=\"{1}\" fill=\"#555\">{2} [{3}, {4}]</text>", Math.Min(X(m.CiHigh) + 8, W - 200), y + 14, N(m.Delta), N(m.CiLow), N(m.CiHigh)));
            y += rowH;
        }
        sb.Append(Fmt("<text x=\"{0}\" y=\"{1}\" fill=\"#777\">0 = no difference; dashed line at 0</text></svg>", Left, h - 6));
        return sb.ToString();
    }

    private static string Histogram(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        const int bins = 24, h = 180, bottom = 150;
        double lo = Math.Min(a.Min(), b.Min()), hi = Math.Max(a.Max(), b.Max());
        if (hi <= lo) hi = lo + 1;
        int[] Count(IReadOnlyList<double> v)
        {
            var c = new int[bins];
            foreach (var x in v) c[Math.Clamp((int)((x - lo) / (hi - lo) * bins), 0, bins - 1)]++;
            return c;
        }
        var ca = Count(a);
        var cb = Count(b);
        int max = Math.Max(1, Math.Max(ca.Max(), cb.Max()));
        double bw = (W - 60.0) / bins;
        var sb = new StringBuilder();
        sb.Append(Fmt("<svg class=\"chart\" id=\"latency-chart\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" xmlns=\"http://www.w3.org/2000/svg\" font-size=\"12\">", W, h));
        for (int i = 0; i < bins; i++)
        {
            double x = 40 + i * bw;
            double ha = (bottom - 20.0) * ca[i] / max, hb = (bottom - 20.0) * cb[i] / max;
            if (ca[i] > 0) sb.Append(Fmt("<rect class=\"bar-a\" x=\"{0:0.0}\" y=\"{1:0.0}\" width=\"{2:0.0}\" height=\"{3:0.0}\" fill=\"#3060c0\" opacity=\"0.7\"/>", x + 1, bottom - ha, bw / 2 - 1, ha));
            if (cb[i] > 0) sb.Append(Fmt("<rect class=\"bar-b\" x=\"{0:0.0}\" y=\"{1:0.0}\" width=\"{2:0.0}\" height=\"{3:0.0}\" fill=\"#d07020\" opacity=\"0.7\"/>", x + bw / 2, bottom - hb, bw / 2 - 1, hb));
        }
        sb.Append(Fmt("<line x1=\"40\" x2=\"{0}\" y1=\"{1}\" y2=\"{1}\" stroke=\"#333\"/>", W - 20, bottom));
        sb.Append(Fmt("<text x=\"40\" y=\"{0}\">{1:0.00} ms</text><text x=\"{2}\" y=\"{0}\" text-anchor=\"end\">{3:0.00} ms</text>", bottom + 16, lo, W - 20, hi));
        sb.Append(Fmt("<rect x=\"{0}\" y=\"4\" width=\"10\" height=\"10\" fill=\"#3060c0\"/><text x=\"{1}\" y=\"13\">A</text><rect x=\"{2}\" y=\"4\" width=\"10\" height=\"10\" fill=\"#d07020\"/><text x=\"{3}\" y=\"13\">B</text>", W - 120, W - 106, W - 80, W - 66));
        sb.Append("</svg>");
        return sb.ToString();
    }

    private static string SliceChart(CompareResult r)
    {
        int rowH = 20, h = r.Slices.Count * rowH + 30;
        bool higher = r.HigherIsBetter;
        double worse = higher ? -r.Margin : r.Margin;
        var (lo, hi) = Pad(Min([.. r.Slices.Select(s => s.CiLow), 0, worse]), Max([.. r.Slices.Select(s => s.CiHigh), 0, worse]));
        double X(double x) => Left + (x - lo) / (hi - lo) * (W - Left - Right);
        var sb = new StringBuilder();
        sb.Append(Fmt("<svg class=\"chart\" id=\"slice-chart\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" xmlns=\"http://www.w3.org/2000/svg\" font-size=\"12\">", W, h));
        if (r.Margin > 0)
        {
            double x0 = higher ? X(lo) : X(worse), x1 = higher ? X(worse) : X(hi);
            sb.Append(Fmt("<rect x=\"{0:0.0}\" y=\"0\" width=\"{1:0.0}\" height=\"{2}\" fill=\"#f0c0c0\" opacity=\"0.4\"/>", x0, Math.Max(0, x1 - x0), h - 20));
        }
        sb.Append(Fmt("<line x1=\"{0:0.0}\" x2=\"{0:0.0}\" y1=\"0\" y2=\"{1}\" stroke=\"#999\" stroke-dasharray=\"3,3\"/>", X(0), h - 20));
        int y = 4;
        foreach (var s in r.Slices)
        {
            string colour = s.Flagged ? "#b01818" : "#333";
            sb.Append(Fmt("<text x=\"4\" y=\"{0}\">{1}={2} (n={3})</text>", y + 12, E(s.Field), E(Short(s.Value)), s.N));
            sb.Append(Fmt("<line x1=\"{0:0.0}\" x2=\"{1:0.0}\" y1=\"{2}\" y2=\"{2}\" stroke=\"{3}\" stroke-width=\"2\"/>", X(s.CiLow), Math.Max(X(s.CiHigh), X(s.CiLow) + 1), y + 8, colour));
            sb.Append(Fmt("<circle cx=\"{0:0.0}\" cy=\"{1}\" r=\"4\" fill=\"{2}\"/>", X(s.Delta), y + 8, colour));
            y += rowH;
        }
        sb.Append(Fmt("<text x=\"{0}\" y=\"{1}\" fill=\"#777\">Δ {2} per slice with {3:P0} CI; shaded: worse than the margin</text></svg>", Left, h - 6, E(r.Metric), r.Level));
        return sb.ToString();
    }

    private static string Short(string s) => s.Length > 16 ? s[..15] + "…" : s;

    private static (double, double) Pad(double lo, double hi)
    {
        if (double.IsNaN(lo) || double.IsNaN(hi)) return (0, 1);
        if (hi - lo < 1e-9) { lo -= 0.01; hi += 0.01; }
        double p = (hi - lo) * 0.08;
        return (lo - p, hi + p);
    }

    private static double Min(params double[] v) => v.Where(x => !double.IsNaN(x)).DefaultIfEmpty(0).Min();

    private static double Max(params double[] v) => v.Where(x => !double.IsNaN(x)).DefaultIfEmpty(1).Max();

    private static string N(double v) => double.IsNaN(v) ? "n/a" : v.ToString("0.0000", Inv);

    private static string E(string s) => WebUtility.HtmlEncode(s);

    private static string Fmt(string format, params object?[] args) => string.Format(Inv, format, args);
}
