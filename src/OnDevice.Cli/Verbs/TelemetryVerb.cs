using System.CommandLine;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;
using OnDevice.Delivery.Guards;
using OnDevice.Delivery.Telemetry;
using OnDevice.Server;

namespace OnDevice.Cli.Verbs;

/// <summary>
/// <c>ondevice telemetry show|check</c>: the telemetry aggregates of a model on a delivery server (any token), and what
/// guard rules decide on them per device class (the same statistics the rollout engine uses).
/// </summary>
public static class TelemetryVerb
{
    /// <summary>Builds the command and its subcommands.</summary>
    public static Command Create()
    {
        var cmd = new Command("telemetry", "Device telemetry on a delivery server: aggregates per version and device class, and guard decisions on them");
        cmd.Subcommands.Add(Show());
        cmd.Subcommands.Add(Check());
        return cmd;
    }

    private sealed record Common(Option<string> Server, Option<string?> Token, Option<string?> TokenFile, Option<string> Since, Option<string?> Until, Option<bool> Json);

    private static Common AddCommon(Command c)
    {
        var common = new Common(
            new Option<string>("--server") { Description = "Server base URL, e.g. http://127.0.0.1:5080", Required = true },
            new Option<string?>("--token") { Description = "API token (any role; or ONDEVICE_TOKEN)" },
            new Option<string?>("--token-file") { Description = "File holding the token" },
            new Option<string>("--since") { Description = "Window start: a duration back from now (30m, 24h, 7d) or a UTC time", DefaultValueFactory = _ => "24h" },
            new Option<string?>("--until") { Description = "Window end (UTC time; default now)" },
            new Option<bool>("--json") { Description = "Print JSON" });
        foreach (var o in new Option[] { common.Server, common.Token, common.TokenFile, common.Since, common.Until, common.Json }) c.Options.Add(o);
        return common;
    }

    private static Command Show()
    {
        var model = new Argument<string>("model") { Description = "Model name" };
        var version = new Option<string?>("--version") { Description = "Only this version" };
        var cls = new Option<string?>("--class") { Description = "Only this device class" };
        var by = new Option<string>("--by") { Description = "Rows per variant (version, variant, class), class (version, class) or version", DefaultValueFactory = _ => "class" };
        var histogram = new Option<bool>("--histogram") { Description = "Also draw each row's latency histogram" };
        var c = new Command("show", "Show the aggregates: reports, inferences, p50/p90/p99 latency, crash/OOM/load-failure/thermal rates, fallbacks") { model, version, cls, by, histogram };
        var common = AddCommon(c);
        c.SetAction(r =>
        {
            var doc = Fetch(r, common, r.GetValue(model)!, r.GetValue(version), r.GetValue(cls), r.GetValue(by)!);
            if (r.GetValue(common.Json)) { Console.WriteLine(doc.GetRawText()); return 0; }
            var rows = doc.GetProperty("rows").EnumerateArray().ToList();
            Console.WriteLine($"{r.GetValue(model)} from {doc.GetProperty("since").GetString()} to {doc.GetProperty("until").GetString()}: {rows.Count} rows");
            if (rows.Count == 0) return 0;
            Console.WriteLine($"{"version",-10} {"variant",-10} {"class",-12} {"reports",8} {"inferences",11} {"p50 ms",8} {"p90 ms",8} {"p99 ms",8} {"crash",9} {"oom",9} {"load fail",9} {"thermal",8} {"fallback",8}");
            foreach (var row in rows)
            {
                Console.WriteLine($"{row.GetProperty("version").GetString(),-10} {Str(row, "variant"),-10} {Str(row, "device_class"),-12} {row.GetProperty("reports").GetInt64(),8} " +
                    $"{row.GetProperty("inferences").GetInt64(),11} {Num(row, "p50_latency_ms", "0.##"),8} {Num(row, "p90_latency_ms", "0.##"),8} {Num(row, "p99_latency_ms", "0.##"),8} " +
                    $"{Num(row, "crash_rate", "0.#####"),9} {Num(row, "oom_rate", "0.#####"),9} {Num(row, "load_failure_rate", "0.####"),9} {Num(row, "thermal_serious_rate", "0.####"),8} {row.GetProperty("fallback_reports").GetInt64(),8}");
                if (r.GetValue(histogram)) DrawHistogram(row);
            }
            return 0;
        });
        return c;
    }

    private static Command Check()
    {
        var model = new Argument<string>("model") { Description = "Model name" };
        var candidate = new Argument<string>("candidate") { Description = "Candidate version" };
        var baseline = new Argument<string?>("baseline") { Description = "Baseline version (omit for a first release)", Arity = ArgumentArity.ZeroOrOne };
        var guards = new Option<string[]>("--guard") { Description = "Guard rule (repeatable), e.g. 'p99_latency_ms > 1.2x baseline'", Required = true };
        var alpha = new Option<double>("--alpha") { Description = "Significance level", DefaultValueFactory = _ => GuardOptions.Default.Alpha };
        var minReports = new Option<long>("--min-reports") { Description = "Fewest reports per version and class", DefaultValueFactory = _ => GuardOptions.Default.MinReports };
        var c = new Command("check", "Evaluate guard rules on the telemetry of a candidate against a baseline, per device class, as the rollout engine would") { model, candidate, baseline, guards, alpha, minReports };
        var common = AddCommon(c);
        c.SetAction(r =>
        {
            List<GuardRule> rules;
            GuardOptions options;
            try
            {
                rules = r.GetValue(guards)!.Select(GuardRule.Parse).ToList();
                options = (GuardOptions.Default with { Alpha = r.GetValue(alpha), MinReports = r.GetValue(minReports) }).Validate();
            }
            catch (ArgumentException e) { throw new CliException(e.Message); }
            string m = r.GetValue(model)!, cand = r.GetValue(candidate)!;
            var baseVersion = r.GetValue(baseline);
            var candRows = ByClass(Fetch(r, common, m, cand, null, "class"));
            var baseRows = baseVersion is null ? [] : ByClass(Fetch(r, common, m, baseVersion, null, "class"));
            var results = new List<object>();
            if (candRows.Count == 0 && !r.GetValue(common.Json)) Console.WriteLine($"no telemetry from {m} {cand} in the window: no decision");
            foreach (var (deviceClass, counts) in candRows.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                baseRows.TryGetValue(deviceClass, out var b);
                foreach (var rule in rules)
                {
                    var g = GuardEvaluator.Evaluate(rule, counts, b, options, cand, baseVersion ?? "baseline");
                    results.Add(new { deviceClass, rule = rule.Text, decision = g.Decision.ToString().ToLowerInvariant(), candidateValue = Finite(g.CandidateValue), baselineValue = g.BaselineValue is { } bv ? Finite(bv) : null,
                        g.CandidateSamples, g.BaselineSamples, pValue = g.PValue, reason = g.Reason });
                    if (!r.GetValue(common.Json)) Console.WriteLine($"{deviceClass,-12} {g.Decision.ToString().ToUpperInvariant(),-12} {rule.Text}: {g.Reason}");
                }
            }
            if (r.GetValue(common.Json)) Cli.WriteJson(results);
            return 0;
        });
        return c;
    }

    private static double? Finite(double v) => double.IsFinite(v) ? v : null;

    private static JsonElement Fetch(ParseResult r, Common common, string model, string? version, string? deviceClass, string by)
    {
        var token = r.GetValue(common.Token) ?? (r.GetValue(common.TokenFile) is { } tf ? File.ReadAllText(tf).Trim() : Environment.GetEnvironmentVariable("ONDEVICE_TOKEN"))
            ?? throw new CliException("give --token, --token-file or ONDEVICE_TOKEN");
        if (!Uri.TryCreate(r.GetValue(common.Server), UriKind.Absolute, out var baseUri)) throw new CliException($"--server '{r.GetValue(common.Server)}' is not an absolute URL");
        var until = r.GetValue(common.Until) is { } u ? Time(u, "--until") : DateTimeOffset.UtcNow;
        var sinceText = r.GetValue(common.Since)!;
        DateTimeOffset since;
        try { since = until - ServerOptions.ParseDuration(sinceText); }
        catch (FormatException) { since = Time(sinceText, "--since"); }
        var q = $"/api/v1/telemetry/{Uri.EscapeDataString(model)}?by={Uri.EscapeDataString(by)}&since={Uri.EscapeDataString(since.UtcDateTime.ToString("o", CultureInfo.InvariantCulture))}&until={Uri.EscapeDataString(until.UtcDateTime.ToString("o", CultureInfo.InvariantCulture))}"
                + (version is null ? "" : "&version=" + Uri.EscapeDataString(version)) + (deviceClass is null ? "" : "&device_class=" + Uri.EscapeDataString(deviceClass));
        using var http = new HttpClient { BaseAddress = baseUri, Timeout = TimeSpan.FromMinutes(2) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        HttpResponseMessage response;
        try { response = http.Send(new HttpRequestMessage(HttpMethod.Get, q)); }
        catch (HttpRequestException e) { throw new CliException($"cannot reach {baseUri}: {e.Message}"); }
        using (response)
        {
            var text = response.Content.ReadAsStringAsync().GetAwaiter().GetResult();
            if (!response.IsSuccessStatusCode)
            {
                string detail = text;
                try { if (JsonDocument.Parse(text).RootElement.TryGetProperty("detail", out var d)) detail = d.GetString() ?? text; }
                catch (JsonException) { }
                throw new CliException($"telemetry query failed: {(int)response.StatusCode} {response.ReasonPhrase}: {detail}");
            }
            return JsonDocument.Parse(text).RootElement.Clone();
        }
    }

    private static DateTimeOffset Time(string s, string name) =>
        DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t)
            ? t : throw new CliException($"{name} must be a duration (30m, 24h, 7d) or a UTC time, got '{s}'");

    /// <summary>Rebuilds the counters of each device class from the read API's rows (by=class).</summary>
    private static Dictionary<string, TelemetryCounts> ByClass(JsonElement doc)
    {
        var d = new Dictionary<string, TelemetryCounts>(StringComparer.Ordinal);
        foreach (var row in doc.GetProperty("rows").EnumerateArray())
        {
            var c = new TelemetryCounts
            {
                Reports = row.GetProperty("reports").GetInt64(),
                FallbackReports = row.GetProperty("fallback_reports").GetInt64(),
                Inferences = row.GetProperty("inferences").GetInt64(),
                Loads = row.GetProperty("loads").GetInt64(),
                LoadFailures = row.GetProperty("load_failures").GetInt64(),
                LoadCrashes = row.GetProperty("crashes").GetProperty("load").GetInt64(),
                InferenceCrashes = row.GetProperty("crashes").GetProperty("inference").GetInt64(),
                LoadOomKills = row.GetProperty("oom_kills").GetProperty("load").GetInt64(),
                InferenceOomKills = row.GetProperty("oom_kills").GetProperty("inference").GetInt64(),
            };
            var t = row.GetProperty("thermal");
            for (int i = 0; i < 4; i++) c.Thermal[i] = t.GetProperty(TelemetryBatch.ThermalName((ThermalState)i)).GetInt64();
            foreach (var b in row.GetProperty("latency_buckets").EnumerateArray())
            {
                int bucket = b.GetProperty("bucket").GetInt32();
                if ((uint)bucket < LatencyBuckets.Count) c.Latency[bucket] = b.GetProperty("count").GetInt64();
            }
            var cls = row.GetProperty("device_class").GetString() ?? "*";
            d[cls] = d.TryGetValue(cls, out var prev) ? prev.Add(c) : c;
        }
        return d;
    }

    private static void DrawHistogram(JsonElement row)
    {
        var buckets = row.GetProperty("latency_buckets").EnumerateArray().ToList();
        if (buckets.Count == 0) return;
        long max = buckets.Max(b => b.GetProperty("count").GetInt64());
        foreach (var b in buckets)
        {
            long n = b.GetProperty("count").GetInt64();
            var upper = b.GetProperty("upper_ms").ValueKind == JsonValueKind.Null ? "inf" : b.GetProperty("upper_ms").GetDouble().ToString("0.###", CultureInfo.InvariantCulture);
            var range = $"[{b.GetProperty("lower_ms").GetDouble().ToString("0.###", CultureInfo.InvariantCulture)}, {upper}) ms";
            Console.WriteLine($"    {range,-22} {n,10} {new string('#', (int)Math.Ceiling(40.0 * n / max))}");
        }
    }

    private static string Str(JsonElement row, string name) => row.GetProperty(name).ValueKind == JsonValueKind.Null ? "*" : row.GetProperty(name).GetString()!;

    private static string Num(JsonElement row, string name, string format) =>
        row.GetProperty(name).ValueKind == JsonValueKind.Number ? row.GetProperty(name).GetDouble().ToString(format, CultureInfo.InvariantCulture) : "-";
}
