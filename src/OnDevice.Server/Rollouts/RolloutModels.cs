using System.Text.Json;
using OnDevice.Server.Storage;

namespace OnDevice.Server.Rollouts;

/// <summary>Rollout statuses.</summary>
public static class RolloutStatus
{
    /// <summary>Stages advance on schedule when health allows.</summary>
    public const string Active = "active";
    /// <summary>Held at the current stage by an operator (or because every reporting class failed with on-failure pause).</summary>
    public const string Paused = "paused";
    /// <summary>Reached its last stage at 100%; the candidate is the new last good version of the channel.</summary>
    public const string Completed = "completed";
    /// <summary>Stopped: devices that installed the candidate keep it, nobody else gets it.</summary>
    public const string Aborted = "aborted";
    /// <summary>Every device is told to return to the baseline (last good) version.</summary>
    public const string RolledBack = "rolled-back";

    /// <summary>True for statuses that end a rollout.</summary>
    public static bool IsFinal(string status) => status is Completed or Aborted or RolledBack;
}

/// <summary>States of one device class within a rollout.</summary>
public static class ClassState
{
    /// <summary>Follows the rollout's stages.</summary>
    public const string Active = "active";
    /// <summary>Halted: devices of the class that installed the candidate keep it, nobody else in the class gets it.</summary>
    public const string Paused = "paused";
    /// <summary>Devices of the class are told to return to the baseline (last good) version.</summary>
    public const string RolledBack = "rolled-back";
}

/// <summary>What a device is told to do (<see cref="Assignment.Action"/>).</summary>
public static class AssignmentAction
{
    /// <summary>No rollout governs this model and channel: run the newest signed version that fits.</summary>
    public const string Latest = "latest";
    /// <summary>Run the candidate (the device is in the cohort).</summary>
    public const string Candidate = "candidate";
    /// <summary>Run the baseline (the device is not in the cohort).</summary>
    public const string Baseline = "baseline";
    /// <summary>Keep the candidate already installed (halted class or aborted rollout).</summary>
    public const string Keep = "keep";
    /// <summary>Return from the candidate to the baseline, the last good version (rolled back).</summary>
    public const string Return = "return";
    /// <summary>No version is assigned yet (a first release that has not reached this device): install nothing.</summary>
    public const string None = "none";
}

/// <summary>Body of <c>POST /api/v1/rollouts</c>.</summary>
/// <param name="Model">Model name.</param>
/// <param name="Version">Candidate version (must be published).</param>
/// <param name="Channel">Channel, default <c>stable</c>.</param>
/// <param name="Schedule">Stage schedule (e.g. <c>1%@0h, 10%@24h, 100%@72h</c>); <c>apple</c> or null for Apple-style phased release.</param>
/// <param name="Guards">Guard rules, checked by <see cref="IRolloutHealth.ValidateRule"/>.</param>
/// <param name="OnFailure"><c>pause</c> (default) or <c>rollback</c>.</param>
/// <param name="Baseline">The last good version; default: the candidate of the channel's last completed rollout, else the newest older release.</param>
public sealed record StartRolloutRequest(string? Model, string? Version, string? Channel = null, string? Schedule = null, IReadOnlyList<string>? Guards = null,
    string? OnFailure = null, string? Baseline = null);

/// <summary>Body of an operator action (all optional).</summary>
/// <param name="DeviceClass">Apply to one device class only (pause, resume, rollback).</param>
/// <param name="Reason">Free text kept in the audit log.</param>
public sealed record RolloutActionRequest(string? DeviceClass = null, string? Reason = null);

/// <summary>A device class's state as shown to operators.</summary>
public sealed record ClassView(string DeviceClass, string State, string Reason, DateTimeOffset At, string Actor);

/// <summary>A decision as shown to operators; <see cref="Details"/> holds the numbers (guard outcomes, stages).</summary>
public sealed record DecisionView(long Id, DateTimeOffset At, string Actor, string Kind, string? DeviceClass, int Stage, double Percent, JsonElement Details);

/// <summary>A rollout as shown by the API, the CLI and the dashboard.</summary>
public sealed record RolloutView(long Id, string Model, string Channel, string Candidate, string? Baseline, string Schedule, IReadOnlyList<string> Guards,
    string OnFailure, string Status, int Stage, int StageCount, double Percent, DateTimeOffset StageStarted, DateTimeOffset? NextStageDue,
    DateTimeOffset Started, DateTimeOffset Updated, string StartedBy, string Reason, IReadOnlyList<ClassView> Classes,
    IReadOnlyList<DecisionView>? Decisions, IReadOnlyList<RolloutAssignmentCount>? Cohorts);

/// <summary>The answer of <c>POST /v1/assign/{model}</c>.</summary>
/// <param name="Model">Model name.</param>
/// <param name="Channel">Channel.</param>
/// <param name="RolloutId">The governing rollout, or null when there is none.</param>
/// <param name="Version">The version the device should run, or null (see <paramref name="Action"/>).</param>
/// <param name="Action">One of <see cref="AssignmentAction"/>.</param>
/// <param name="DeviceClass">The device class used (named by the device or derived from RAM).</param>
/// <param name="Bucket">The device's sticky cohort bucket in [0, 10000).</param>
/// <param name="BasisPoints">The stage's share of devices in basis points (0 without a rollout).</param>
/// <param name="Candidate">The rollout's candidate.</param>
/// <param name="Baseline">The rollout's baseline (last good) version.</param>
/// <param name="Reason">Why, in one sentence.</param>
/// <param name="Chosen">The variant of <paramref name="Version"/> the device should download (the client verifies it through TUF).</param>
public sealed record Assignment(string Model, string Channel, long? RolloutId, string? Version, string Action, string DeviceClass, int Bucket, int BasisPoints,
    string? Candidate, string? Baseline, string Reason, Api.ResolveApi.Chosen? Chosen);
