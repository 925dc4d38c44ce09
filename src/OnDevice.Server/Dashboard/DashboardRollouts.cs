using System.Globalization;
using System.Text.Json;
using OnDevice.Delivery;
using OnDevice.Delivery.Telemetry;
using OnDevice.Server.Rollouts;
using OnDevice.Server.Storage;

namespace OnDevice.Server.Dashboard;

public static partial class DashboardEndpoints
{
    private static string RolloutHref(long id) => "/dashboard/rollouts/" + id.ToString(CultureInfo.InvariantCulture);

    private static void MapRolloutPages(RouteGroupBuilder pages)
    {
        pages.MapGet("/rollouts", async (HttpContext http, RolloutService rollouts, CancellationToken ct) =>
        {
            var list = await rollouts.ListAsync(null, null, 200, ct);
            var body = new Html().Element("h1", "Rollouts");
            body.Table("rollouts", ["#", "model", "channel", "candidate", "baseline", "status", "stage", "halted classes", "started", "by"],
                list.Select(r => (IReadOnlyList<object?>)[Html.LinkTo(RolloutHref(r.Id), "#" + r.Id.ToString(CultureInfo.InvariantCulture)), r.Model, r.Channel, r.Candidate, r.Baseline ?? "–",
                    Status(r.Status), StageText(r), string.Join(", ", r.Classes.Where(c => c.State != ClassState.Active).Select(c => $"{c.DeviceClass} ({c.State})")),
                    Html.Time(r.Started), r.StartedBy]),
                "No rollout has been started.");
            return Page(http, "Rollouts", body);
        });

        pages.MapGet("/rollouts/{id:long}", async (long id, HttpContext http, RolloutService rollouts, IRolloutHealth health, IDeliveryStore store, TimeProvider time, CancellationToken ct) =>
        {
            var r = await rollouts.GetAsync(id, ct, decisions: 200);
            if (r is null) return Page(http, "Rollout", new Html().Element("h1", $"Rollout #{id}").Element("p", $"There is no rollout {id}.", "empty"), StatusCodes.Status404NotFound);
            var now = time.GetUtcNow();
            var body = new Html().Element("h1", $"Rollout #{r.Id}: {r.Model} {r.Candidate}");
            Summary(body, r);

            // Health now: the guards evaluated live over the current stage, per device class.
            IReadOnlyList<GuardOutcome> live = [];
            if (r.Guards.Count > 0 && !RolloutStatus.IsFinal(r.Status))
                live = await health.EvaluateAsync(new HealthQuery(r.Model, r.Candidate, r.Baseline, r.Guards, r.StageStarted, now), ct);
            ClassesTable(body, r, live);
            if (live.Count > 0)
            {
                body.Element("h2", "Health of the current stage");
                OutcomesTable(body, "health", live);
            }

            body.Element("h2", "Decisions");
            DecisionsTable(body, r.Decisions ?? []);

            body.Element("h2", "Latency per version");
            var versions = new[] { r.Baseline, r.Candidate }.OfType<string>().ToList();
            var rows = await store.QueryTelemetryAsync(r.Model, null, null, r.Started, now, ct);
            LatencySection(body, rows.Where(x => versions.Contains(x.Version)).ToList(), versions);
            return Page(http, $"Rollout #{r.Id}", body);
        });
    }

    private static Html Status(string status) => new Html().Raw("<span class=\"").Text(status).Raw("\">").Text(status).Raw("</span>");

    private static string StageText(RolloutView r) =>
        string.Create(CultureInfo.InvariantCulture, $"{r.Stage + 1}/{r.StageCount} ({r.Percent:0.##}%)");

    private static void Summary(Html body, RolloutView r)
    {
        body.Table("summary", ["field", "value"],
        [
            ["model", Html.LinkTo(ModelHref(r.Model), r.Model)],
            ["channel", r.Channel],
            ["candidate", r.Candidate],
            ["baseline (last good)", r.Baseline ?? "none"],
            ["status", Status(r.Status)],
            ["stage", StageText(r)],
            ["schedule", r.Schedule],
            ["guards", r.Guards.Count == 0 ? "none (stages advance on schedule)" : string.Join("; ", r.Guards)],
            ["on failure", r.OnFailure],
            ["next stage due", r.NextStageDue is { } d ? Html.Time(d) : "–"],
            ["started", $"{Html.Time(r.Started)} by {r.StartedBy}"],
            ["reason", r.Reason],
        ]);
    }

    private static void ClassesTable(Html body, RolloutView r, IReadOnlyList<GuardOutcome> live)
    {
        body.Element("h2", "Device classes");
        var cohorts = r.Cohorts ?? [];
        var names = cohorts.Select(c => c.DeviceClass).Concat(r.Classes.Select(c => c.DeviceClass)).Concat(live.Select(o => o.DeviceClass))
            .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        body.Table("classes", ["device class", "state", "devices", "in cohort", "assigned " + r.Candidate, "assigned " + (r.Baseline ?? "baseline"), "health now", "why"],
            names.Select(n =>
            {
                var state = r.Classes.FirstOrDefault(c => c.DeviceClass == n);
                var mine = cohorts.Where(c => c.DeviceClass == n).ToList();
                var outcomes = live.Where(o => o.DeviceClass == n).ToList();
                var healthNow = outcomes.Count == 0 ? new Html().Text("–")
                    : outcomes.Any(o => o.Verdict == GuardVerdict.Fail) ? Verdict(GuardVerdict.Fail)
                    : outcomes.All(o => o.Verdict == GuardVerdict.Pass) ? Verdict(GuardVerdict.Pass) : Verdict(GuardVerdict.Insufficient);
                return (IReadOnlyList<object?>)[n, Status(state?.State ?? ClassState.Active), mine.Sum(c => c.Devices), mine.Where(c => c.InCohort).Sum(c => c.Devices),
                    mine.Where(c => c.Version == r.Candidate).Sum(c => c.Devices), mine.Where(c => c.Version == r.Baseline).Sum(c => c.Devices), healthNow,
                    state is null ? "" : $"{state.Reason} ({state.Actor}, {Html.Time(state.At)})"];
            }),
            "No device has asked for an assignment yet.");
    }

    private static Html Verdict(GuardVerdict v)
    {
        var text = v switch { GuardVerdict.Pass => "pass", GuardVerdict.Fail => "fail", _ => "insufficient" };
        return new Html().Raw("<span class=\"").Text(text).Raw("\">").Text(text).Raw("</span>");
    }

    private static void OutcomesTable(Html body, string id, IEnumerable<GuardOutcome> outcomes) =>
        body.Table(id, ["device class", "rule", "verdict", "candidate", "baseline", "candidate samples", "baseline samples", "p-value", "reason"],
            outcomes.OrderBy(o => o.DeviceClass, StringComparer.Ordinal).ThenBy(o => o.Rule, StringComparer.Ordinal).Select(o => (IReadOnlyList<object?>)[o.DeviceClass, o.Rule, Verdict(o.Verdict),
                o.CandidateValue, o.BaselineValue, o.CandidateSamples, o.BaselineSamples, o.PValue is { } p ? PValue(p) : "–", o.Reason]));

    private static string PValue(double p) => p < 1e-4 ? p.ToString("0.##e0", CultureInfo.InvariantCulture) : p.ToString("0.####", CultureInfo.InvariantCulture);

    private static void DecisionsTable(Html body, IReadOnlyList<DecisionView> decisions)
    {
        body.Table("decisions", ["#", "at", "actor", "decision", "device class", "stage share", "numbers"],
            decisions.Select(d => (IReadOnlyList<object?>)[d.Id, Html.Time(d.At), d.Actor, new Html().Raw("<span class=\"").Text(DecisionClass(d.Kind)).Raw("\">").Text(d.Kind).Raw("</span>"),
                d.DeviceClass ?? "all", d.Percent.ToString("0.##", CultureInfo.InvariantCulture) + "%", DecisionNumbers(d.Details)]),
            "No decisions yet.");
    }

    private static string DecisionClass(string kind) =>
        kind.StartsWith("halt", StringComparison.Ordinal) || kind is "rollback" or "operator-rollback" or "operator-abort" ? "fail"
        : kind is "advance" or "complete" or "start" ? "pass" : "waiting";

    /// <summary>A decision's numbers: its guard outcomes as a small table, else its reason or stage change.</summary>
    private static Html DecisionNumbers(JsonElement details)
    {
        var h = new Html();
        if (details.ValueKind != JsonValueKind.Object) return h;
        if (details.TryGetProperty("fromPercent", out var f) && details.TryGetProperty("toPercent", out var t) && f.ValueKind == JsonValueKind.Number && t.ValueKind == JsonValueKind.Number)
            h.Element("div", string.Create(CultureInfo.InvariantCulture, $"{f.GetDouble():0.##}% → {t.GetDouble():0.##}%"));
        bool hasOutcomes = details.TryGetProperty("outcomes", out var o) && o.ValueKind == JsonValueKind.Array && o.GetArrayLength() > 0;
        // A wait's reason repeats its outcomes: show the outcomes alone then.
        if (details.TryGetProperty("reason", out var reason) && reason.ValueKind == JsonValueKind.String && !string.IsNullOrEmpty(reason.GetString())
            && !(hasOutcomes && reason.GetString()!.StartsWith("waiting:", StringComparison.Ordinal)))
            h.Element("div", reason.GetString());
        if (hasOutcomes)
        {
            h.Raw("<ul class=\"outcomes\">");
            foreach (var x in o.EnumerateArray())
            {
                var verdict = ParseVerdict(x);
                h.Raw("<li>").Raw(Verdict(verdict).ToString()).Text($" {Str(x, "deviceClass")} {Str(x, "rule")}: {Str(x, "reason")}").Raw("</li>");
            }
            h.Raw("</ul>");
        }
        return h;
    }

    private static GuardVerdict ParseVerdict(JsonElement x)
    {
        if (!x.TryGetProperty("verdict", out var v)) return GuardVerdict.Insufficient;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var n) && Enum.IsDefined(typeof(GuardVerdict), n)) return (GuardVerdict)n;
        return v.ValueKind == JsonValueKind.String && Enum.TryParse<GuardVerdict>(v.GetString(), ignoreCase: true, out var e) ? e : GuardVerdict.Insufficient;
    }

    private static string Str(JsonElement e, string name) =>
        e.TryGetProperty(name, out var p) ? p.ValueKind == JsonValueKind.String ? p.GetString()! : p.ValueKind == JsonValueKind.Null ? "" : p.ToString() : "";

    // --- latency histograms ------------------------------------------------------------------------------------------

    private static readonly string[] SeriesColors = ["#1f6feb", "#d1242f", "#8250df", "#1a7f37"];

    private static void LatencySection(Html body, IReadOnlyList<TelemetryRow> rows, IReadOnlyList<string> versions)
    {
        if (rows.Count == 0) { body.Element("p", "No telemetry since the rollout started.", "empty"); return; }
        var byClass = rows.GroupBy(r => r.DeviceClass).OrderBy(g => g.Key, StringComparer.Ordinal).ToList();
        var summary = new List<IReadOnlyList<object?>>();
        foreach (var g in byClass)
        {
            var series = versions.Select(v => (Version: v, Counts: g.Where(r => r.Version == v).Aggregate(new TelemetryCounts(), (acc, r) => acc.Add(r.Counts))))
                .Where(s => s.Counts.Inferences > 0 || s.Counts.Loads > 0).ToList();
            body.Raw("<div class=\"card\">").Element("h3", g.Key);
            Histogram(body, g.Key, series.Where(s => s.Counts.Inferences > 0).Select(s => (s.Version, s.Counts)).ToList(), versions);
            body.Raw("</div>");
            foreach (var (v, c) in series)
                summary.Add([g.Key, v, c.Reports, c.Inferences, c.Inferences > 0 ? Math.Round(c.LatencyQuantileMs(0.5), 2) : null, c.Inferences > 0 ? Math.Round(c.LatencyQuantileMs(0.99), 2) : null,
                    c.Crashes, c.Loads, c.FailedLoads, c.FallbackReports]);
        }
        body.Table("latency", ["device class", "version", "reports", "inferences", "p50 ms", "p99 ms", "crashes", "loads", "failed loads", "fallback reports"], summary);
    }

    /// <summary>An inline SVG: per version, the share of inferences in each log-spaced latency bucket, with its p99 marked.</summary>
    private static void Histogram(Html body, string deviceClass, IReadOnlyList<(string Version, TelemetryCounts Counts)> series, IReadOnlyList<string> versions)
    {
        if (series.Count == 0) { body.Element("p", "no inferences", "empty"); return; }
        int lo = LatencyBuckets.Count, hi = 0;
        foreach (var (_, c) in series)
            for (int b = 0; b < LatencyBuckets.Count; b++)
                if (c.Latency[b] > 0) { lo = Math.Min(lo, b); hi = Math.Max(hi, b); }
        lo = Math.Max(1, lo - 2);
        hi = Math.Min(LatencyBuckets.Count - 2, hi + 2);
        if (hi <= lo) hi = lo + 1;
        const double W = 520, H = 150, L = 44, T = 10, B = 28;
        double maxShare = series.Max(s => Enumerable.Range(lo, hi - lo + 1).Max(b => (double)s.Counts.Latency[b] / s.Counts.Inferences));
        double X(int bucket) => L + (bucket - lo) * (W - L - 8) / (hi - lo + 1);
        double Y(double share) => T + (H - T - B) * (1 - share / maxShare);
        string F(double v) => v.ToString("0.#", CultureInfo.InvariantCulture);

        body.Raw("<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"").Raw(F(W)).Raw("\" height=\"").Raw(F(H)).Raw("\" viewBox=\"0 0 ").Raw(F(W)).Raw(" ").Raw(F(H))
            .Raw("\" data-class=\"").Text(deviceClass).Raw("\"><title>").Text($"latency histogram of {deviceClass}").Raw("</title>");
        body.Raw($"<line x1=\"{F(L)}\" y1=\"{F(H - B)}\" x2=\"{F(W - 8)}\" y2=\"{F(H - B)}\" stroke=\"#6b7280\"/>");
        body.Raw($"<line x1=\"{F(L)}\" y1=\"{F(T)}\" x2=\"{F(L)}\" y2=\"{F(H - B)}\" stroke=\"#6b7280\"/>");
        body.Raw($"<text x=\"2\" y=\"{F(T + 8)}\">{Html.Escape((maxShare * 100).ToString("0.#", CultureInfo.InvariantCulture))}%</text>");
        // Decade ticks (and 2×, 5×) on the log axis.
        foreach (var ms in new[] { 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000 })
        {
            int b = LatencyBuckets.Of(ms);
            if (b < lo || b > hi) continue;
            body.Raw($"<line x1=\"{F(X(b))}\" y1=\"{F(H - B)}\" x2=\"{F(X(b))}\" y2=\"{F(H - B + 4)}\" stroke=\"#6b7280\"/>")
                .Raw($"<text x=\"{F(X(b) - 8)}\" y=\"{F(H - B + 16)}\">{Html.Escape(ms.ToString("0.#", CultureInfo.InvariantCulture))}</text>");
        }
        body.Raw($"<text x=\"{F(W - 60)}\" y=\"{F(H - 2)}\">ms (log)</text>");
        for (int si = 0; si < series.Count; si++)
        {
            var (version, c) = series[si];
            var color = SeriesColors[Math.Max(0, versions.ToList().IndexOf(version)) % SeriesColors.Length];
            var points = new List<string>();
            for (int b = lo; b <= hi; b++)
            {
                double y = Y((double)c.Latency[b] / c.Inferences);
                points.Add($"{F(X(b))},{F(y)}");
                points.Add($"{F(X(b + 1))},{F(y)}");
            }
            body.Raw("<polyline fill=\"none\" stroke-width=\"2\" stroke=\"").Raw(color).Raw("\" data-version=\"").Text(version).Raw("\" points=\"").Raw(string.Join(' ', points)).Raw("\"/>");
            var p99 = c.LatencyQuantileMs(0.99);
            int pb = Math.Clamp(LatencyBuckets.Of(p99), lo, hi);
            body.Raw($"<line stroke-dasharray=\"4 3\" stroke=\"{color}\" x1=\"{F(X(pb))}\" y1=\"{F(T)}\" x2=\"{F(X(pb))}\" y2=\"{F(H - B)}\"/>");
            body.Raw($"<text style=\"fill:{color}\" x=\"{F(W - 190)}\" y=\"{F(T + 12 + 14 * si)}\">").Text(string.Create(CultureInfo.InvariantCulture, $"{version}: p99 {p99:0.#} ms, n={c.Inferences}")).Raw("</text>");
        }
        body.Raw("</svg>");
    }
}
