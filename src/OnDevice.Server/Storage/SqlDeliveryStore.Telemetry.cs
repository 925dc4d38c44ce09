namespace OnDevice.Server.Storage;

public abstract partial class SqlDeliveryStore
{
    /// <summary>Telemetry aggregate tables; idempotent statements.</summary>
    private IReadOnlyList<string> TelemetrySchema => [];
}
