namespace OnDevice.Delivery.Telemetry;

/// <summary>Device thermal states (the four levels iOS and Android both report).</summary>
public enum ThermalState
{
    /// <summary>Within normal limits.</summary>
    Nominal,
    /// <summary>Slightly elevated.</summary>
    Fair,
    /// <summary>High; the system is throttling.</summary>
    Serious,
    /// <summary>Critical; the system may shut down.</summary>
    Critical,
}

/// <summary>Where a crash or out-of-memory kill happened.</summary>
public enum CrashPhase
{
    /// <summary>While loading the model.</summary>
    Load,
    /// <summary>While running inference.</summary>
    Inference,
}

/// <summary>
/// Aggregate counters of one model version (per device, per batch, or summed on the server). Definitions:
/// <see cref="Inferences"/> are completed inferences, each with a latency in <see cref="Latency"/> (so the buckets sum
/// to it); <see cref="Loads"/> are load attempts, of which <see cref="LoadFailures"/> failed with an error and
/// <see cref="LoadCrashes"/>/<see cref="LoadOomKills"/> killed the process; crashes and OOM kills during inference are
/// not counted as completed inferences. Thermal counts are the thermal state sampled at each completed inference.
/// </summary>
public sealed class TelemetryCounts
{
    /// <summary>Batches (device reports) behind these counts.</summary>
    public long Reports { get; set; }
    /// <summary>Reports whose version or variant in use differed from the one the device expected (a fallback).</summary>
    public long FallbackReports { get; set; }
    /// <summary>Completed inferences.</summary>
    public long Inferences { get; set; }
    /// <summary>Model load attempts.</summary>
    public long Loads { get; set; }
    /// <summary>Load attempts that failed with an error (the process survived).</summary>
    public long LoadFailures { get; set; }
    /// <summary>Crashes while loading.</summary>
    public long LoadCrashes { get; set; }
    /// <summary>Crashes during inference.</summary>
    public long InferenceCrashes { get; set; }
    /// <summary>Out-of-memory kills while loading.</summary>
    public long LoadOomKills { get; set; }
    /// <summary>Out-of-memory kills during inference.</summary>
    public long InferenceOomKills { get; set; }
    /// <summary>Inferences completed in each thermal state, indexed by <see cref="ThermalState"/>.</summary>
    public long[] Thermal { get; } = new long[4];
    /// <summary>Completed inferences per latency bucket (<see cref="LatencyBuckets"/>).</summary>
    public long[] Latency { get; } = new long[LatencyBuckets.Count];

    /// <summary>Load attempts plus every inference started (completed, crashed or killed): the trials of crash and OOM rates.</summary>
    public long Operations => Loads + Inferences + InferenceCrashes + InferenceOomKills;

    /// <summary>Crashes in either phase.</summary>
    public long Crashes => LoadCrashes + InferenceCrashes;

    /// <summary>OOM kills in either phase.</summary>
    public long OomKills => LoadOomKills + InferenceOomKills;

    /// <summary>Load attempts that did not produce a usable model (errors, crashes and OOM kills while loading).</summary>
    public long FailedLoads => LoadFailures + LoadCrashes + LoadOomKills;

    /// <summary>Thermal samples in total.</summary>
    public long ThermalSamples => Thermal[0] + Thermal[1] + Thermal[2] + Thermal[3];

    /// <summary>Thermal samples in the serious or critical state.</summary>
    public long ThermalSeriousOrWorse => Thermal[(int)ThermalState.Serious] + Thermal[(int)ThermalState.Critical];

    /// <summary>Adds <paramref name="other"/> into these counts (checked: overflow throws).</summary>
    public TelemetryCounts Add(TelemetryCounts other)
    {
        checked
        {
            Reports += other.Reports;
            FallbackReports += other.FallbackReports;
            Inferences += other.Inferences;
            Loads += other.Loads;
            LoadFailures += other.LoadFailures;
            LoadCrashes += other.LoadCrashes;
            InferenceCrashes += other.InferenceCrashes;
            LoadOomKills += other.LoadOomKills;
            InferenceOomKills += other.InferenceOomKills;
            for (int i = 0; i < Thermal.Length; i++) Thermal[i] += other.Thermal[i];
            for (int i = 0; i < Latency.Length; i++) Latency[i] += other.Latency[i];
        }
        return this;
    }

    /// <summary>A copy.</summary>
    public TelemetryCounts Clone() => new TelemetryCounts().Add(this);

    /// <summary>The q-quantile latency in milliseconds (NaN when there are no inferences).</summary>
    public double LatencyQuantileMs(double q) => LatencyBuckets.Quantile(Latency, q);

    /// <summary>True when nothing was counted.</summary>
    public bool IsEmpty => Inferences == 0 && Loads == 0 && Crashes == 0 && OomKills == 0 && ThermalSamples == 0;
}
