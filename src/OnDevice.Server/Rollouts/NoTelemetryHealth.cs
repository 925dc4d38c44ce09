namespace OnDevice.Server.Rollouts;

/// <summary>
/// The default <see cref="IRolloutHealth"/> when no telemetry is wired in: it knows no guard rules (so a rollout with
/// guards is refused at start) and reports no outcomes, so stages advance on schedule only.
/// </summary>
public sealed class NoTelemetryHealth : IRolloutHealth
{
    /// <inheritdoc/>
    public void ValidateRule(string rule) =>
        throw new ArgumentException($"guard '{rule}' cannot be checked: this server has no telemetry health source");

    /// <inheritdoc/>
    public Task<IReadOnlyList<GuardOutcome>> EvaluateAsync(HealthQuery query, CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<GuardOutcome>>([]);
}
