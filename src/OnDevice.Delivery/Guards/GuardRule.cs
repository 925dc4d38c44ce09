using System.Globalization;
using System.Text.RegularExpressions;

namespace OnDevice.Delivery.Guards;

/// <summary>What a guard measures.</summary>
public enum GuardMetric
{
    /// <summary><c>pQ_latency_ms</c>: the Q-th percentile of inference latency in milliseconds.</summary>
    LatencyQuantile,
    /// <summary><c>crash_rate</c>: crashes (load or inference) per operation (load attempt or inference started).</summary>
    CrashRate,
    /// <summary><c>oom_rate</c>: out-of-memory kills (load or inference) per operation.</summary>
    OomRate,
    /// <summary><c>load_failure_rate</c>: failed loads (errors, crashes, OOM kills while loading) per load attempt.</summary>
    LoadFailureRate,
    /// <summary><c>thermal_serious_rate</c>: fraction of inferences run in the serious or critical thermal state.</summary>
    ThermalSeriousRate,
}

/// <summary>
/// A parsed guard rule. Grammar (whitespace between tokens is free):
/// <code>
/// rule     = metric "&gt;" bound
/// metric   = "p" PERCENT "_latency_ms" | "crash_rate" | "oom_rate" | "load_failure_rate" | "thermal_serious_rate"
/// bound    = NUMBER                    ; absolute: fail when the candidate exceeds max(NUMBER, baseline)
///          | NUMBER "x" "baseline"     ; relative: fail when the candidate exceeds NUMBER × baseline
/// </code>
/// PERCENT lies strictly between 0 and 100 (p50, p90, p99, p99.9); latency bounds are milliseconds (positive);
/// rate bounds lie in [0, 1); relative factors lie in [1, 100].
/// </summary>
public sealed partial record GuardRule(string Text, GuardMetric Metric, double Quantile, double Bound, bool Relative)
{
    [GeneratedRegex(@"^\s*(?<metric>p(?<pct>[0-9]+(?:\.[0-9]+)?)_latency_ms|crash_rate|oom_rate|load_failure_rate|thermal_serious_rate)\s*>\s*(?<num>[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)\s*(?<rel>x\s*baseline)?\s*$", RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();

    /// <summary>The metric's name as written in rules.</summary>
    public string MetricName => Metric switch
    {
        GuardMetric.LatencyQuantile => $"p{(Quantile * 100).ToString("0.###", CultureInfo.InvariantCulture)}_latency_ms",
        GuardMetric.CrashRate => "crash_rate",
        GuardMetric.OomRate => "oom_rate",
        GuardMetric.LoadFailureRate => "load_failure_rate",
        _ => "thermal_serious_rate",
    };

    /// <summary>True for latency rules.</summary>
    public bool IsLatency => Metric == GuardMetric.LatencyQuantile;

    /// <summary>Parses a rule.</summary>
    /// <exception cref="ArgumentException">The rule does not follow the grammar or its numbers are out of range; the message says how.</exception>
    public static GuardRule Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length > 200) throw new ArgumentException("a guard rule is at most 200 characters", nameof(text));
        var m = Pattern().Match(text);
        if (!m.Success)
            throw new ArgumentException($"guard rule '{text}' is not understood; write METRIC > NUMBER or METRIC > NUMBERx baseline, where METRIC is pNN_latency_ms, crash_rate, oom_rate, load_failure_rate or thermal_serious_rate (e.g. 'p99_latency_ms > 50', 'crash_rate > 0.0001', 'p99_latency_ms > 1.2x baseline')", nameof(text));
        var bound = double.Parse(m.Groups["num"].Value, NumberStyles.Float, CultureInfo.InvariantCulture);
        bool relative = m.Groups["rel"].Success;
        var metricText = m.Groups["metric"].Value;
        var metric = metricText switch
        {
            "crash_rate" => GuardMetric.CrashRate,
            "oom_rate" => GuardMetric.OomRate,
            "load_failure_rate" => GuardMetric.LoadFailureRate,
            "thermal_serious_rate" => GuardMetric.ThermalSeriousRate,
            _ => GuardMetric.LatencyQuantile,
        };
        double q = 0;
        if (metric == GuardMetric.LatencyQuantile)
        {
            var pct = double.Parse(m.Groups["pct"].Value, NumberStyles.Float, CultureInfo.InvariantCulture);
            if (!(pct > 0 && pct < 100)) throw new ArgumentException($"guard rule '{text}': the percentile must lie strictly between 0 and 100", nameof(text));
            q = pct / 100;
        }
        if (relative)
        {
            if (!(bound >= 1 && bound <= 100)) throw new ArgumentException($"guard rule '{text}': a relative factor must lie between 1 and 100 (e.g. 1.2x baseline)", nameof(text));
        }
        else if (metric == GuardMetric.LatencyQuantile)
        {
            if (!(bound > 0 && double.IsFinite(bound))) throw new ArgumentException($"guard rule '{text}': a latency bound must be a positive number of milliseconds", nameof(text));
        }
        else if (!(bound >= 0 && bound < 1)) throw new ArgumentException($"guard rule '{text}': a rate bound must lie in [0, 1)", nameof(text));
        return new GuardRule(text.Trim(), metric, q, bound, relative);
    }
}
