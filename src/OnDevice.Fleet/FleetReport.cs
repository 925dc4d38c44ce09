namespace OnDevice.Fleet;

/// <summary>The fleet after one tick.</summary>
/// <param name="Tick">0-based tick number.</param>
/// <param name="Seconds">Seconds since the start.</param>
/// <param name="Versions">Per device class: how many devices run each version (<c>none</c>: nothing installed yet).</param>
/// <param name="Installs">Downloads installed so far (all devices).</param>
/// <param name="Switches">Switches to an already cached version so far (e.g. returning to the last good version).</param>
/// <param name="FailedUpdates">Update attempts that failed so far (network failures, mostly).</param>
/// <param name="Requests">HTTP requests sent so far.</param>
/// <param name="NetworkFailures">Requests failed by the injected network faults so far.</param>
/// <param name="Rollout">The server's rollout state, when observed.</param>
public sealed record FleetTick(int Tick, double Seconds, IReadOnlyDictionary<string, IReadOnlyDictionary<string, int>> Versions, int Installs, int Switches, int FailedUpdates,
    long Requests, long NetworkFailures, RolloutSnapshot? Rollout)
{
    /// <summary>Devices of <paramref name="deviceClass"/> running <paramref name="version"/>.</summary>
    public int Count(string deviceClass, string version) => Versions.TryGetValue(deviceClass, out var v) && v.TryGetValue(version, out var n) ? n : 0;

    /// <summary>Devices running <paramref name="version"/> in every class.</summary>
    public int Count(string version) => Versions.Values.Sum(v => v.TryGetValue(version, out var n) ? n : 0);
}

/// <summary>The server's view of the rollout being simulated.</summary>
/// <param name="Id">Rollout id.</param>
/// <param name="Candidate">The version being rolled out.</param>
/// <param name="Baseline">The last good version it is compared against.</param>
/// <param name="Status">active, paused, completed, aborted or rolled-back.</param>
/// <param name="Stage">0-based stage.</param>
/// <param name="StageCount">Stages in the schedule.</param>
/// <param name="Percent">Share of devices at this stage.</param>
/// <param name="Classes">Device classes that left the active state: class → state (paused, rolled-back).</param>
/// <param name="Cohorts">Devices the server assigned, per class: in the cohort / total.</param>
/// <param name="Decisions">The server's most recent decisions, newest first (kind, class, reason).</param>
public sealed record RolloutSnapshot(long Id, string Candidate, string? Baseline, string Status, int Stage, int StageCount, double Percent, IReadOnlyDictionary<string, string> Classes,
    IReadOnlyDictionary<string, CohortSize> Cohorts, IReadOnlyList<RolloutDecisionSummary> Decisions);

/// <summary>Devices of one class assigned by the server.</summary>
/// <param name="InCohort">Devices in the rollout's cohort.</param>
/// <param name="Total">All devices of the class that asked.</param>
public sealed record CohortSize(long InCohort, long Total);

/// <summary>A rollout decision in brief.</summary>
/// <param name="Id">Decision id.</param>
/// <param name="Kind">advance, complete, wait, halt-pause, halt-rollback, pause, rollback, operator-…</param>
/// <param name="DeviceClass">The class it applies to, or null for the whole rollout.</param>
/// <param name="Percent">Stage share when decided.</param>
/// <param name="Summary">The decision's reason with its numbers.</param>
public sealed record RolloutDecisionSummary(long Id, string Kind, string? DeviceClass, double Percent, string Summary);

/// <summary>What the devices measured for one version on one class (the ground truth the server's telemetry should match).</summary>
/// <param name="DeviceClass">Device class.</param>
/// <param name="Version">Version.</param>
/// <param name="Devices">Devices that ran it.</param>
/// <param name="Inferences">Completed inferences.</param>
/// <param name="Crashes">Crashes during inference.</param>
/// <param name="Loads">Load attempts.</param>
/// <param name="LoadFailures">Failed loads.</param>
/// <param name="P50Ms">Median latency (bucket midpoint).</param>
/// <param name="P99Ms">99th percentile latency (bucket midpoint).</param>
public sealed record MeasuredVersion(string DeviceClass, string Version, int Devices, long Inferences, long Crashes, long Loads, long LoadFailures, double? P50Ms, double? P99Ms);

/// <summary>The outcome of a fleet simulation.</summary>
/// <param name="Scenario">Scenario name.</param>
/// <param name="Devices">Simulated devices.</param>
/// <param name="Seconds">Wall-clock duration.</param>
/// <param name="Ticks">Every tick.</param>
/// <param name="Measured">Per class and version, what the devices measured.</param>
/// <param name="Requests">HTTP requests sent.</param>
/// <param name="NetworkFailures">Requests failed by injected faults.</param>
public sealed record FleetResult(string Scenario, int Devices, double Seconds, IReadOnlyList<FleetTick> Ticks, IReadOnlyList<MeasuredVersion> Measured, long Requests, long NetworkFailures)
{
    /// <summary>The last tick.</summary>
    public FleetTick Final => Ticks[^1];
}
