namespace OnDevice.Server.Rollouts;

/// <summary>What the rollout engine asks about one rollout's current stage.</summary>
/// <param name="Model">Model name.</param>
/// <param name="CandidateVersion">The version being rolled out.</param>
/// <param name="BaselineVersion">The previous (last good) version the candidate is compared against, or null for a first release.</param>
/// <param name="Guards">The rollout's guard rules as the operator wrote them, e.g. <c>p99_latency_ms &gt; 50</c>.</param>
/// <param name="Since">Start of the window to evaluate (the start of the current stage).</param>
/// <param name="Now">The engine's current time.</param>
public sealed record HealthQuery(string Model, string CandidateVersion, string? BaselineVersion, IReadOnlyList<string> Guards, DateTimeOffset Since, DateTimeOffset Now);

/// <summary>Outcome of one guard for one device class.</summary>
public enum GuardVerdict
{
    /// <summary>Enough samples, and the test does not find the candidate worse than the rule allows.</summary>
    Pass,
    /// <summary>Enough samples, and the test finds the candidate worse than the rule allows.</summary>
    Fail,
    /// <summary>Too few samples to decide either way (no decision on no data).</summary>
    Insufficient,
}

/// <summary>One guard's decision for one device class, with the numbers behind it.</summary>
/// <param name="DeviceClass">Device class the decision applies to.</param>
/// <param name="Rule">The rule text.</param>
/// <param name="Verdict">Pass, fail or insufficient data.</param>
/// <param name="CandidateValue">The measured value for the candidate version.</param>
/// <param name="BaselineValue">The measured value for the baseline version on the same device class, if any.</param>
/// <param name="CandidateSamples">Samples behind <paramref name="CandidateValue"/>.</param>
/// <param name="BaselineSamples">Samples behind <paramref name="BaselineValue"/>.</param>
/// <param name="PValue">P-value of the statistical test, when one was run.</param>
/// <param name="Reason">One human-readable sentence with the numbers.</param>
public sealed record GuardOutcome(string DeviceClass, string Rule, GuardVerdict Verdict, double CandidateValue, double? BaselineValue,
    long CandidateSamples, long BaselineSamples, double? PValue, string Reason);

/// <summary>
/// The source of health decisions for rollouts (implemented from device telemetry). The rollout engine halts a device
/// class whose outcome is <see cref="GuardVerdict.Fail"/> and advances a stage only when every outcome is
/// <see cref="GuardVerdict.Pass"/>.
/// </summary>
public interface IRolloutHealth
{
    /// <summary>Checks a rule's syntax when a rollout starts; throws <see cref="ArgumentException"/> with a clear message.</summary>
    void ValidateRule(string rule);

    /// <summary>Evaluates every guard for every device class that reported on the candidate in the window.</summary>
    Task<IReadOnlyList<GuardOutcome>> EvaluateAsync(HealthQuery query, CancellationToken cancellationToken = default);
}
