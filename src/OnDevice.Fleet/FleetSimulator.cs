using System.Diagnostics;
using System.Security.Cryptography;
using OnDevice.Client;
using OnDevice.Delivery;
using OnDevice.Delivery.Telemetry;

namespace OnDevice.Fleet;

/// <summary>What one simulated device is: its index, class, install id, cache folder and description.</summary>
/// <param name="Index">0-based index in the fleet.</param>
/// <param name="Class">Its class.</param>
/// <param name="InstallId">Stable install id (its sticky rollout cohort).</param>
/// <param name="CacheDirectory">Its own cache folder (model cache, trust store, telemetry state).</param>
/// <param name="Device">How it describes itself to the server.</param>
/// <param name="Http">The fleet's shared HTTP client (with injected network failures).</param>
public sealed record DeviceContext(int Index, DeviceClassSpec Class, string InstallId, string CacheDirectory, DeviceDescription Device, HttpClient Http);

/// <summary>Settings of a fleet simulation.</summary>
public sealed record FleetOptions
{
    /// <summary>Delivery server base URL.</summary>
    public required Uri Server { get; init; }
    /// <summary>Model name the devices run.</summary>
    public required string Model { get; init; }
    /// <summary>The trusted root metadata shipped with the app.</summary>
    public required byte[] TrustedRoot { get; init; }
    /// <summary>Device classes and how each version behaves on them.</summary>
    public required FleetScenario Scenario { get; init; }
    /// <summary>The version that behaves as the scenario's candidate (every other version behaves as the baseline).</summary>
    public required string Candidate { get; init; }
    /// <summary>Folder holding one cache folder per device.</summary>
    public required string WorkDirectory { get; init; }
    /// <summary>Number of simulated devices.</summary>
    public int Devices { get; init; } = 200;
    /// <summary>Fraction of HTTP requests that fail (half before, half after reaching the server).</summary>
    public double FailureRate { get; init; } = 0.02;
    /// <summary>Simulation step: every device runs its inferences once per tick.</summary>
    public TimeSpan Tick { get; init; } = TimeSpan.FromSeconds(0.5);
    /// <summary>How often each device checks for updates (jittered ±20%).</summary>
    public TimeSpan CheckEvery { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>How often each device flushes telemetry.</summary>
    public TimeSpan TelemetryEvery { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>Inferences each device runs per tick.</summary>
    public int InferencesPerTick { get; init; } = 10;
    /// <summary>Longest run.</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>Devices working at once.</summary>
    public int Concurrency { get; init; } = 32;
    /// <summary>Seed of the simulated randomness (latencies, crashes, install ids, failures).</summary>
    public int Seed { get; init; } = 1;
    /// <summary>Creates each device's updater (default: <see cref="ModelUpdater"/> with the device's cache and the shared client).</summary>
    public Func<DeviceContext, ModelUpdater>? UpdaterFactory { get; init; }
    /// <summary>Creates each device's telemetry sink (default: the real <see cref="TelemetryReporter"/> to the server; return null for none).</summary>
    public Func<DeviceContext, IDeviceTelemetry?>? TelemetryFactory { get; init; }
    /// <summary>False: devices send no telemetry.</summary>
    public bool ReportTelemetry { get; init; } = true;
    /// <summary>Reads the server-side rollout state after each tick (null: not observed).</summary>
    public Func<CancellationToken, Task<RolloutSnapshot?>>? Observer { get; init; }
    /// <summary>Ends the run early when it returns true for a tick.</summary>
    public Func<FleetTick, bool>? StopWhen { get; init; }

    /// <summary>Checks the settings.</summary>
    /// <exception cref="ArgumentException">The first bad setting.</exception>
    public FleetOptions Validate()
    {
        if (Devices is < 1 or > 100_000) throw new ArgumentException($"devices must be between 1 and 100000, got {Devices}");
        if (!(FailureRate is >= 0 and < 1)) throw new ArgumentException($"the failure rate must lie in [0, 1), got {FailureRate}");
        if (Tick <= TimeSpan.Zero || CheckEvery <= TimeSpan.Zero || TelemetryEvery <= TimeSpan.Zero || Duration <= TimeSpan.Zero) throw new ArgumentException("tick, check interval, telemetry interval and duration must be positive");
        if (InferencesPerTick is < 0 or > 100_000) throw new ArgumentException($"inferences per tick must be between 0 and 100000, got {InferencesPerTick}");
        if (Concurrency is < 1 or > 4096) throw new ArgumentException($"concurrency must be between 1 and 4096, got {Concurrency}");
        if (Scenario.Classes.Count == 0) throw new ArgumentException("the scenario has no device classes");
        foreach (var c in Scenario.Classes) { c.Baseline.Validate(); Scenario.Candidate(c).Validate(); }
        return this;
    }
}

/// <summary>
/// Runs a fleet of simulated devices against a real delivery server over HTTP: each device uses the real client
/// library (<see cref="ModelUpdater"/> to learn, download, verify and install its version, and a telemetry sink to
/// report), runs inferences whose latency and crashes follow the scenario for the version it actually runs, and its
/// requests fail at the configured rate. After each tick the fleet's state (versions in use per class, network
/// failures, the server's rollout state when observed) becomes a <see cref="FleetTick"/>.
/// </summary>
public sealed class FleetSimulator
{
    private readonly FleetOptions _o;

    /// <summary>Creates a simulator (no I/O until <see cref="RunAsync"/>).</summary>
    /// <exception cref="ArgumentException">Invalid options.</exception>
    public FleetSimulator(FleetOptions options) => _o = options.Validate();

    /// <summary>Runs until the duration passes or <see cref="FleetOptions.StopWhen"/> says so; <paramref name="onTick"/> sees each tick as it ends.</summary>
    public async Task<FleetResult> RunAsync(Action<FleetTick>? onTick = null, CancellationToken cancellationToken = default)
    {
        using var network = new FlakyNetworkHandler(_o.FailureRate, _o.Seed);
        using var http = new HttpClient(network, disposeHandler: false) { Timeout = TimeSpan.FromSeconds(30) };
        var devices = CreateDevices(http);
        var ticks = new List<FleetTick>();
        var clock = Stopwatch.StartNew();
        try
        {
            for (int t = 0; clock.Elapsed < _o.Duration; t++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var tickStart = clock.Elapsed;
                await Parallel.ForEachAsync(devices, new ParallelOptions { MaxDegreeOfParallelism = _o.Concurrency, CancellationToken = cancellationToken },
                    async (d, ct) => await d.TickAsync(clock.Elapsed, ct).ConfigureAwait(false)).ConfigureAwait(false);
                RolloutSnapshot? rollout = null;
                if (_o.Observer is not null)
                {
                    try { rollout = await _o.Observer(cancellationToken).ConfigureAwait(false); }
                    catch (HttpRequestException) { /* the observer's own request failed: no snapshot this tick */ }
                }
                var tick = Snapshot(t, clock.Elapsed, devices, network, rollout);
                ticks.Add(tick);
                onTick?.Invoke(tick);
                if (_o.StopWhen?.Invoke(tick) == true) break;
                var wait = _o.Tick - (clock.Elapsed - tickStart);
                if (wait > TimeSpan.Zero) await Task.Delay(wait, cancellationToken).ConfigureAwait(false);
            }
            foreach (var d in devices) await d.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            foreach (var d in devices) await d.DisposeAsync().ConfigureAwait(false);
        }
        return new FleetResult(_o.Scenario.Name, _o.Devices, clock.Elapsed.TotalSeconds, ticks, Measured(devices), network.Requests, network.Refused + network.Dropped);
    }

    private List<SimulatedDevice> CreateDevices(HttpClient http)
    {
        var classes = _o.Scenario.Classes;
        double total = classes.Sum(c => c.Share);
        var seedRng = new Random(_o.Seed);
        var list = new List<SimulatedDevice>(_o.Devices);
        double cumulative = 0;
        int next = 0;
        for (int ci = 0; ci < classes.Count; ci++)
        {
            cumulative += classes[ci].Share / total;
            int end = ci == classes.Count - 1 ? _o.Devices : (int)Math.Round(cumulative * _o.Devices);
            for (; next < end; next++)
            {
                var idBytes = new byte[16];
                seedRng.NextBytes(idBytes);
                var cls = classes[ci];
                var device = new DeviceDescription
                {
                    RamBytes = cls.RamBytes, Os = "android", OsVersion = "14", RuntimeVersion = "1.0", RuntimeApiVersion = "1",
                    CpuFeatures = ["neon"], DeviceModel = cls.DeviceModel,
                };
                var ctx = new DeviceContext(next, cls, "sim-" + Convert.ToHexStringLower(idBytes), Path.Combine(_o.WorkDirectory, "devices", next.ToString(System.Globalization.CultureInfo.InvariantCulture)), device, http);
                Directory.CreateDirectory(ctx.CacheDirectory);
                var updater = _o.UpdaterFactory?.Invoke(ctx) ?? new ModelUpdater(new ModelUpdaterOptions
                {
                    Server = _o.Server, Model = _o.Model, CacheDirectory = Path.Combine(ctx.CacheDirectory, "models"), TrustedRoot = _o.TrustedRoot,
                    Device = device, Http = http, MaxAttempts = 2, InitialBackoff = TimeSpan.FromMilliseconds(50), InstallId = ctx.InstallId,
                });
                var telemetry = !_o.ReportTelemetry ? null : _o.TelemetryFactory is { } f ? f(ctx) : new ReporterTelemetry(_o.Server, _o.Model, ctx);
                list.Add(new SimulatedDevice(ctx, _o, updater, telemetry, new Random(HashCode.Combine(_o.Seed, next))));
            }
        }
        return list;
    }

    private static FleetTick Snapshot(int t, TimeSpan at, List<SimulatedDevice> devices, FlakyNetworkHandler network, RolloutSnapshot? rollout)
    {
        var versions = devices.GroupBy(d => d.Context.Class.Name).OrderBy(g => g.Key, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => (IReadOnlyDictionary<string, int>)g.GroupBy(d => d.Running?.Version ?? "none").OrderBy(x => x.Key, StringComparer.Ordinal).ToDictionary(x => x.Key, x => x.Count()));
        return new FleetTick(t, Math.Round(at.TotalSeconds, 3), versions, devices.Sum(d => d.Installs), devices.Sum(d => d.Switches), devices.Sum(d => d.FailedUpdates), network.Requests, network.Refused + network.Dropped, rollout);
    }

    private static IReadOnlyList<MeasuredVersion> Measured(List<SimulatedDevice> devices) =>
        devices.SelectMany(d => d.Counts.Select(kv => (Class: d.Context.Class.Name, Version: kv.Key, Counts: kv.Value)))
            .GroupBy(x => (x.Class, x.Version)).OrderBy(g => g.Key.Class, StringComparer.Ordinal).ThenBy(g => g.Key.Version, ModelVersion.Comparer)
            .Select(g =>
            {
                var c = new TelemetryCounts();
                foreach (var x in g) c.Add(x.Counts);
                return new MeasuredVersion(g.Key.Class, g.Key.Version, g.Count(), c.Inferences, c.InferenceCrashes, c.Loads, c.LoadFailures,
                    c.Inferences > 0 ? Math.Round(c.LatencyQuantileMs(0.5), 3) : null, c.Inferences > 0 ? Math.Round(c.LatencyQuantileMs(0.99), 3) : null);
            }).ToList();
}

/// <summary>One simulated device: its updater, the model it runs, its random stream and its own counts (the ground truth).</summary>
internal sealed class SimulatedDevice(DeviceContext context, FleetOptions options, ModelUpdater updater, IDeviceTelemetry? telemetry, Random rng) : IAsyncDisposable
{
    private TimeSpan _nextCheck = TimeSpan.FromTicks((long)(options.CheckEvery.Ticks * rng.NextDouble()));
    private TimeSpan _nextFlush = TimeSpan.FromTicks((long)(options.TelemetryEvery.Ticks * rng.NextDouble()));
    private string? _path; // the installed file the running model came from
    private bool _loaded;

    public DeviceContext Context { get; } = context;
    public RunningModel? Running { get; private set; }
    public int Installs { get; private set; }
    public int Switches { get; private set; }
    public int FailedUpdates { get; private set; }
    /// <summary>What actually happened on this device per version (latency histogram, crashes, loads).</summary>
    public Dictionary<string, TelemetryCounts> Counts { get; } = new(StringComparer.Ordinal);

    public async Task TickAsync(TimeSpan now, CancellationToken ct)
    {
        if (now >= _nextCheck)
        {
            _nextCheck = now + options.CheckEvery * (0.8 + 0.4 * rng.NextDouble());
            var result = await updater.UpdateAsync(cancellationToken: ct).ConfigureAwait(false);
            if (result.Status == UpdateStatus.Installed) Installs++;
            else if (result.Status == UpdateStatus.Switched) Switches++;
            else if (result.Status == UpdateStatus.Failed) FailedUpdates++;
            var current = result.Current;
            if (current is null) Running = null;
            else if (Running is null || _path != current.Path)
            {
                Running = new RunningModel(current.Version, current.Variant, result.Candidate?.Target.Version);
                _path = current.Path;
                _loaded = false; // a different model: load it before the next inference
            }
        }
        if (Running is not { } model) return;
        var behavior = options.Scenario.Behavior(Context.Class, model.Version, options.Candidate);
        var counts = CountsOf(model.Version);
        if (!_loaded)
        {
            bool ok = rng.NextDouble() >= behavior.LoadFailureRate;
            counts.Loads++;
            if (!ok) counts.LoadFailures++;
            telemetry?.Load(model, ok);
            if (!ok) return;
            _loaded = true;
        }
        for (int i = 0; i < options.InferencesPerTick; i++)
        {
            if (rng.NextDouble() < behavior.CrashRate)
            {
                counts.InferenceCrashes++;
                telemetry?.Crash(model);
                _loaded = false; // the app restarts and loads the model again
                break;
            }
            var ms = behavior.Latency.Sample(rng);
            counts.Inferences++;
            counts.Latency[LatencyBuckets.Of(ms)]++;
            telemetry?.Inference(model, ms);
        }
        if (telemetry is not null && now >= _nextFlush)
        {
            _nextFlush = now + options.TelemetryEvery;
            await telemetry.FlushAsync(ct).ConfigureAwait(false);
        }
    }

    public Task FlushAsync(CancellationToken ct) => telemetry?.FlushAsync(ct) ?? Task.CompletedTask;

    private TelemetryCounts CountsOf(string version)
    {
        if (!Counts.TryGetValue(version, out var c)) Counts[version] = c = new TelemetryCounts();
        return c;
    }

    public async ValueTask DisposeAsync()
    {
        if (telemetry is not null) await telemetry.DisposeAsync().ConfigureAwait(false);
        updater.Dispose();
    }
}
