using OnDevice.Delivery.Telemetry;

namespace OnDevice.Server.Storage;

/// <summary>Telemetry counters of one (model, version, variant, device class), summed over a window.</summary>
public sealed record TelemetryRow(string Model, string Version, string Variant, string DeviceClass, TelemetryCounts Counts);

public partial interface IDeliveryStore
{
    /// <summary>
    /// Adds a validated batch into the aggregates of the minute <paramref name="receivedAt"/> falls in (upserts, one
    /// transaction). Returns false, changing nothing, when a batch with the same id was already added (a retry).
    /// </summary>
    Task<bool> AddTelemetryAsync(TelemetryBatch batch, DateTimeOffset receivedAt, CancellationToken cancellationToken = default);

    /// <summary>
    /// Aggregates of a model (optionally one version and/or device class) over the minutes from the one holding
    /// <paramref name="from"/> up to <paramref name="to"/>, one row per version, variant and device class.
    /// </summary>
    Task<IReadOnlyList<TelemetryRow>> QueryTelemetryAsync(string model, string? version, string? deviceClass, DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default);

    /// <summary>Forgets the ids of batches received before <paramref name="olderThan"/>; returns how many.</summary>
    Task<int> PruneTelemetryBatchIdsAsync(DateTimeOffset olderThan, CancellationToken cancellationToken = default);
}
