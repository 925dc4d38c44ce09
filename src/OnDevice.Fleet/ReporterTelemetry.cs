using OnDevice.Client;
using OnDevice.Delivery.Telemetry;

namespace OnDevice.Fleet;

/// <summary>A simulated device's telemetry through the real client <see cref="TelemetryReporter"/> (batches, backoff, rotating install id) to <c>POST /v1/telemetry</c>.</summary>
public sealed class ReporterTelemetry : IDeviceTelemetry
{
    private readonly TelemetryReporter _reporter;
    private readonly string _model;

    /// <summary>Creates the reporter for one device: its state in the device's folder, the fleet's shared HTTP client, short retries (the next flush resends what is pending).</summary>
    public ReporterTelemetry(Uri server, string model, DeviceContext device)
    {
        _model = model;
        _reporter = new TelemetryReporter(new TelemetryReporterOptions
        {
            Server = server, StateDirectory = Path.Combine(device.CacheDirectory, "telemetry"), DeviceClass = device.Class.Name, Http = device.Http,
            MaxAttempts = 2, InitialBackoff = TimeSpan.FromMilliseconds(50), MaxBackoff = TimeSpan.FromMilliseconds(200),
            FlushAfterEvents = long.MaxValue, FlushInterval = TimeSpan.FromHours(1),
        });
    }

    /// <summary>Unsent batches.</summary>
    public int Pending => _reporter.PendingBatches;

    private ModelInUse InUse(RunningModel m) => new(_model, m.Version, m.Variant, m.ExpectedVersion);

    /// <inheritdoc/>
    public void Load(RunningModel model, bool succeeded) => _reporter.RecordLoad(InUse(model), succeeded);

    /// <inheritdoc/>
    public void Inference(RunningModel model, double latencyMs) => _reporter.RecordInference(InUse(model), TimeSpan.FromMilliseconds(latencyMs));

    /// <inheritdoc/>
    public void Crash(RunningModel model) => _reporter.RecordCrash(InUse(model), CrashPhase.Inference);

    /// <inheritdoc/>
    public async Task FlushAsync(CancellationToken cancellationToken) => await _reporter.FlushAsync(cancellationToken).ConfigureAwait(false);

    /// <inheritdoc/>
    public ValueTask DisposeAsync() => _reporter.DisposeAsync();
}
