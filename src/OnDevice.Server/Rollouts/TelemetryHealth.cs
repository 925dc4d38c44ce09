using OnDevice.Delivery.Guards;
using OnDevice.Delivery.Telemetry;
using OnDevice.Server.Storage;

namespace OnDevice.Server.Rollouts;

/// <summary>
/// Rollout health from device telemetry: every guard rule is evaluated per device class that reported on the candidate
/// in the window, comparing the candidate with the baseline version on the same class over the same window
/// (<see cref="GuardEvaluator"/>; statistics in docs/telemetry.md). No telemetry at all gives one Insufficient outcome
/// per rule for the device class <c>*</c>.
/// </summary>
public sealed class TelemetryHealth(IDeliveryStore store, ServerOptions options) : IRolloutHealth
{
    /// <summary>Device class of outcomes when the candidate has no telemetry at all.</summary>
    public const string AnyClass = "*";

    /// <inheritdoc/>
    public void ValidateRule(string rule) => GuardRule.Parse(rule);

    /// <inheritdoc/>
    public async Task<IReadOnlyList<GuardOutcome>> EvaluateAsync(HealthQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        var rules = query.Guards.Select(GuardRule.Parse).ToList();
        if (rules.Count == 0) return [];
        var guardOptions = options.Guards.Validate();
        var candidate = ByClass(await store.QueryTelemetryAsync(query.Model, query.CandidateVersion, null, query.Since, query.Now, cancellationToken));
        var baseline = query.BaselineVersion is null
            ? new Dictionary<string, TelemetryCounts>()
            : ByClass(await store.QueryTelemetryAsync(query.Model, query.BaselineVersion, null, query.Since, query.Now, cancellationToken));
        var outcomes = new List<GuardOutcome>();
        if (candidate.Count == 0)
        {
            foreach (var rule in rules)
                outcomes.Add(new GuardOutcome(AnyClass, rule.Text, GuardVerdict.Insufficient, 0, null, 0, 0, null,
                    $"no telemetry from {query.Model} {query.CandidateVersion} since {query.Since.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z: no decision"));
            return outcomes;
        }
        foreach (var (deviceClass, counts) in candidate.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            baseline.TryGetValue(deviceClass, out var b);
            foreach (var rule in rules)
            {
                var r = GuardEvaluator.Evaluate(rule, counts, b, guardOptions, query.CandidateVersion, query.BaselineVersion ?? "baseline");
                outcomes.Add(new GuardOutcome(deviceClass, rule.Text, Map(r.Decision), double.IsFinite(r.CandidateValue) ? r.CandidateValue : 0,
                    r.BaselineValue is { } bv && double.IsFinite(bv) ? bv : null, r.CandidateSamples, r.BaselineSamples, r.PValue, $"{deviceClass}: {r.Reason}"));
            }
        }
        return outcomes;
    }

    private static GuardVerdict Map(GuardDecision d) => d switch
    {
        GuardDecision.Pass => GuardVerdict.Pass,
        GuardDecision.Fail => GuardVerdict.Fail,
        _ => GuardVerdict.Insufficient,
    };

    private static Dictionary<string, TelemetryCounts> ByClass(IReadOnlyList<TelemetryRow> rows)
    {
        var d = new Dictionary<string, TelemetryCounts>(StringComparer.Ordinal);
        foreach (var r in rows)
        {
            if (!d.TryGetValue(r.DeviceClass, out var c)) d[r.DeviceClass] = c = new TelemetryCounts();
            c.Add(r.Counts);
        }
        return d;
    }
}
