namespace OnDevice.Server.Storage;

public abstract partial class SqlDeliveryStore
{
    /// <summary>Rollout tables (stages, per-device-class state, decisions); idempotent statements.</summary>
    private IReadOnlyList<string> RolloutSchema => [];
}
