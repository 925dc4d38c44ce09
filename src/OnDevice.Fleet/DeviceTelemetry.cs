namespace OnDevice.Fleet;

/// <summary>The model a simulated device is running, and what it was meant to run (when it knows).</summary>
/// <param name="Version">Version in use.</param>
/// <param name="Variant">Variant in use.</param>
/// <param name="ExpectedVersion">Version the device's assignment asked for, if known.</param>
public sealed record RunningModel(string Version, string Variant, string? ExpectedVersion);

/// <summary>Where a simulated device reports what happened on it (the real client's telemetry reporter in a fleet run).</summary>
public interface IDeviceTelemetry : IAsyncDisposable
{
    /// <summary>A model load and whether it succeeded.</summary>
    void Load(RunningModel model, bool succeeded);
    /// <summary>A completed inference and its latency.</summary>
    void Inference(RunningModel model, double latencyMs);
    /// <summary>A crash during inference.</summary>
    void Crash(RunningModel model);
    /// <summary>Sends what was recorded (never throws for network failures).</summary>
    Task FlushAsync(CancellationToken cancellationToken);
}
