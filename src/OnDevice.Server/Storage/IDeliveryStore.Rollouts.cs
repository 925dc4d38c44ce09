namespace OnDevice.Server.Storage;

/// <summary>A staged rollout of one model version on one channel.</summary>
/// <param name="Id">Rollout id.</param>
/// <param name="Model">Model name.</param>
/// <param name="Channel">Channel (e.g. stable, beta); devices ask for one, default stable.</param>
/// <param name="Candidate">The version being rolled out.</param>
/// <param name="Baseline">The last good version devices outside the cohort run (null for a first release).</param>
/// <param name="Schedule">Stage schedule text, e.g. <c>1%@0h, 10%@24h, 100%@72h</c>.</param>
/// <param name="Guards">Guard rule texts.</param>
/// <param name="OnFailure"><c>pause</c> or <c>rollback</c>: what a failed guard does to its device class.</param>
/// <param name="Status"><c>active</c>, <c>paused</c>, <c>completed</c>, <c>aborted</c> or <c>rolled-back</c>.</param>
/// <param name="Stage">Index of the stage in force.</param>
/// <param name="StageStarted">When the stage in force began.</param>
/// <param name="Started">When the rollout started.</param>
/// <param name="Updated">Last change.</param>
/// <param name="StartedBy">Who started it.</param>
/// <param name="Reason">Why the status is what it is (last transition).</param>
public sealed record RolloutRow(long Id, string Model, string Channel, string Candidate, string? Baseline, string Schedule, IReadOnlyList<string> Guards,
    string OnFailure, string Status, int Stage, DateTimeOffset StageStarted, DateTimeOffset Started, DateTimeOffset Updated, string StartedBy, string Reason);

/// <summary>The state of one device class in a rollout: <c>active</c>, <c>paused</c> (halted) or <c>rolled-back</c>.</summary>
public sealed record RolloutClassRow(long RolloutId, string DeviceClass, string State, string Reason, DateTimeOffset At, string Actor);

/// <summary>One decision about a rollout (automatic or by an operator), with its numbers in <see cref="Details"/> (JSON).</summary>
public sealed record RolloutDecisionRow(long Id, long RolloutId, DateTimeOffset At, string Actor, string Kind, string? DeviceClass, int Stage, int BasisPoints, string Key, string Details);

/// <summary>How many devices of a class were last told to run a version in a rollout.</summary>
public sealed record RolloutAssignmentCount(string DeviceClass, string? Version, bool InCohort, long Devices);

public partial interface IDeliveryStore
{
    /// <summary>A rollout by id, or null.</summary>
    Task<RolloutRow?> GetRolloutAsync(long id, CancellationToken cancellationToken = default);

    /// <summary>Rollouts, newest first, optionally of one model and/or channel.</summary>
    Task<IReadOnlyList<RolloutRow>> ListRolloutsAsync(string? model, string? channel, int limit, CancellationToken cancellationToken = default);

    /// <summary>Rollouts whose status is <c>active</c>.</summary>
    Task<IReadOnlyList<RolloutRow>> ListActiveRolloutsAsync(CancellationToken cancellationToken = default);

    /// <summary>Per-device-class states of a rollout (classes never halted have no row).</summary>
    Task<IReadOnlyList<RolloutClassRow>> ListRolloutClassesAsync(long rolloutId, CancellationToken cancellationToken = default);

    /// <summary>Decisions of a rollout, newest first.</summary>
    Task<IReadOnlyList<RolloutDecisionRow>> ListRolloutDecisionsAsync(long rolloutId, int limit, CancellationToken cancellationToken = default);

    /// <summary>Records (upserts) what one install was last told; no repository lock (devices call this often).</summary>
    Task RecordAssignmentAsync(long rolloutId, string installId, string deviceClass, string? version, bool inCohort, DateTimeOffset at, CancellationToken cancellationToken = default);

    /// <summary>Devices per class, assigned version and cohort membership (the cohort sizes).</summary>
    Task<IReadOnlyList<RolloutAssignmentCount>> CountAssignmentsAsync(long rolloutId, CancellationToken cancellationToken = default);
}

public partial interface IDeliveryTransaction
{
    /// <summary>A rollout by id, read under the lock.</summary>
    Task<RolloutRow?> RolloutAsync(long id);
    /// <summary>The newest rollout of a model on a channel whose status is one of <paramref name="statuses"/>, or null.</summary>
    Task<RolloutRow?> LatestRolloutAsync(string model, string channel, params string[] statuses);
    /// <summary>Adds a rollout and returns its id.</summary>
    Task<long> InsertRolloutAsync(RolloutRow row);
    /// <summary>Updates status, stage, stage start, update time and reason.</summary>
    Task UpdateRolloutAsync(long id, string status, int stage, DateTimeOffset stageStarted, DateTimeOffset updated, string reason);
    /// <summary>Per-class states of a rollout.</summary>
    Task<IReadOnlyList<RolloutClassRow>> RolloutClassesAsync(long rolloutId);
    /// <summary>Sets the state of one device class.</summary>
    Task UpsertRolloutClassAsync(RolloutClassRow row);
    /// <summary>The newest decision of a rollout, or null.</summary>
    Task<RolloutDecisionRow?> LastRolloutDecisionAsync(long rolloutId);
    /// <summary>Appends a decision.</summary>
    Task InsertRolloutDecisionAsync(RolloutDecisionRow row);
}
