using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using OnDevice.Delivery.Telemetry;

namespace OnDevice.Client;

/// <summary>The model a measurement belongs to: the version and variant in use, and what the device expected to run.</summary>
/// <param name="Model">Model name.</param>
/// <param name="Version">Version in use.</param>
/// <param name="Variant">Variant in use.</param>
/// <param name="ExpectedVersion">Version the device was meant to run (e.g. its rollout assignment); differing from <paramref name="Version"/> marks a fallback.</param>
/// <param name="ExpectedVariant">Variant the device was meant to run.</param>
public sealed record ModelInUse(string Model, string Version, string Variant, string? ExpectedVersion = null, string? ExpectedVariant = null);

/// <summary>Settings of a <see cref="TelemetryReporter"/>.</summary>
public sealed record TelemetryReporterOptions
{
    /// <summary>Delivery server base URL; batches go to <c>POST /v1/telemetry</c>.</summary>
    public required Uri Server { get; init; }
    /// <summary>Directory for the reporter's state file (install id, unsent batches).</summary>
    public required string StateDirectory { get; init; }
    /// <summary>This device's class (e.g. <c>ram4-8GB</c>).</summary>
    public required string DeviceClass { get; init; }
    /// <summary>HTTP client to use (one is created when null).</summary>
    public HttpClient? Http { get; init; }
    /// <summary>Clock.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;
    /// <summary>A batch is sealed and sent at least this often by <see cref="TelemetryReporter.RunAsync"/>.</summary>
    public TimeSpan FlushInterval { get; init; } = TimeSpan.FromHours(1);
    /// <summary>A batch is sealed and sent early once this many events (inferences, loads, crashes) were recorded.</summary>
    public long FlushAfterEvents { get; init; } = 10_000;
    /// <summary>Unsent batches kept (in memory and on disk); beyond it the oldest is dropped and counted.</summary>
    public int MaxPendingBatches { get; init; } = 48;
    /// <summary>The install id is replaced by a fresh random one this often (it is never derived from anything on the device).</summary>
    public TimeSpan InstallIdRotation { get; init; } = TimeSpan.FromDays(30);
    /// <summary>Send attempts per flush (network errors, 429 and 5xx are retried).</summary>
    public int MaxAttempts { get; init; } = 6;
    /// <summary>Delay before the second attempt; doubled each time up to <see cref="MaxBackoff"/>, with jitter (50–100% of it).</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>Longest delay between attempts.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromMinutes(5);
    /// <summary>The current (unsealed) counts are written to disk at least this often by <see cref="TelemetryReporter.RunAsync"/>.</summary>
    public TimeSpan PersistInterval { get; init; } = TimeSpan.FromMinutes(1);
    /// <summary>Batch limits (a batch holds at most <see cref="TelemetryLimits.MaxEntries"/> model versions; more seal early).</summary>
    public TelemetryLimits Limits { get; init; } = TelemetryLimits.Default;
}

/// <summary>Outcome of <see cref="TelemetryReporter.FlushAsync"/>.</summary>
/// <param name="Sent">Batches the server accepted (including ones it already had).</param>
/// <param name="Rejected">Batches the server refused as invalid (dropped: resending cannot help).</param>
/// <param name="Pending">Batches still unsent.</param>
/// <param name="Attempts">HTTP attempts made.</param>
/// <param name="Error">The last transient error when batches remain unsent.</param>
public sealed record TelemetryFlushResult(int Sent, int Rejected, int Pending, int Attempts, Exception? Error);

/// <summary>
/// Collects privacy-preserving telemetry on the device and sends it in batches: per model version in use, a latency
/// histogram (<see cref="LatencyBuckets"/>), load attempts and failures, crashes and OOM kills by phase, and thermal
/// state counts — never inputs, outputs or anything about the user. Memory is bounded (at most
/// <see cref="TelemetryLimits.MaxEntries"/> model versions per batch, <see cref="TelemetryReporterOptions.MaxPendingBatches"/>
/// unsent batches); unsent batches and the current counts survive restarts in one state file written by temp + rename;
/// every batch has a random id, so a retry after a lost response is never counted twice; sends back off exponentially
/// with jitter on network errors, 429 and 5xx; the install id is random and rotated.
/// </summary>
public sealed class TelemetryReporter : IAsyncDisposable
{
    private const string StateFile = "telemetry-state.json";
    private readonly TelemetryReporterOptions _o;
    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly Uri _endpoint;
    private readonly object _lock = new();
    private readonly SemaphoreSlim _sendGate = new(1, 1);
    private readonly SemaphoreSlim _wake = new(0, 1);
    private readonly List<TelemetryBatch> _pending = [];
    private Dictionary<(string, string, string), TelemetryEntry> _current = [];
    private DateTimeOffset _periodStart;
    private long _eventsSinceSeal;
    private string _installId;
    private DateTimeOffset _installIdCreated;
    private long _dropped;

    /// <summary>Creates a reporter, restoring its state (install id, unsent batches, current counts) from disk.</summary>
    /// <exception cref="ArgumentException">Invalid options.</exception>
    public TelemetryReporter(TelemetryReporterOptions options)
    {
        try { TelemetryBatch.CheckDeviceClass(options.DeviceClass); }
        catch (InvalidTelemetryException e) { throw new ArgumentException(e.Message, nameof(options)); }
        if (options.MaxPendingBatches < 1) throw new ArgumentException("MaxPendingBatches must be at least 1", nameof(options));
        if (options.MaxAttempts < 1) throw new ArgumentException("MaxAttempts must be at least 1", nameof(options));
        if (options.FlushAfterEvents < 1) throw new ArgumentException("FlushAfterEvents must be at least 1", nameof(options));
        if (options.FlushInterval <= TimeSpan.Zero || options.InstallIdRotation <= TimeSpan.Zero || options.InitialBackoff < TimeSpan.Zero || options.MaxBackoff < options.InitialBackoff)
            throw new ArgumentException("FlushInterval and InstallIdRotation must be positive and InitialBackoff ≤ MaxBackoff", nameof(options));
        _o = options;
        _ownsHttp = options.Http is null;
        _http = options.Http ?? new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        _endpoint = new Uri(options.Server.AbsoluteUri.EndsWith('/') ? options.Server : new Uri(options.Server.AbsoluteUri + "/"), "v1/telemetry");
        Directory.CreateDirectory(options.StateDirectory);
        var now = options.Time.GetUtcNow();
        _installId = TelemetryBatch.NewId();
        _installIdCreated = now;
        _periodStart = Truncate(now);
        Load(now);
    }

    /// <summary>The current install id (random, rotated every <see cref="TelemetryReporterOptions.InstallIdRotation"/>).</summary>
    public string InstallId { get { lock (_lock) return _installId; } }

    /// <summary>Unsent batches.</summary>
    public int PendingBatches { get { lock (_lock) return _pending.Count; } }

    /// <summary>Batches dropped because too many were unsent (or the server refused them).</summary>
    public long DroppedBatches { get { lock (_lock) return _dropped; } }

    private string StatePath => Path.Combine(_o.StateDirectory, StateFile);

    /// <summary>Records one completed inference with its latency and, when known, the thermal state at the time.</summary>
    public void RecordInference(ModelInUse model, TimeSpan latency, ThermalState? thermal = null)
    {
        int bucket = LatencyBuckets.Of(latency);
        Record(model, c =>
        {
            c.Inferences++;
            c.Latency[bucket]++;
            if (thermal is { } t) c.Thermal[(int)t]++;
        });
    }

    /// <summary>Records a model load attempt and whether it succeeded (crashes during load: <see cref="RecordCrash"/>).</summary>
    public void RecordLoad(ModelInUse model, bool succeeded) => Record(model, c =>
    {
        c.Loads++;
        if (!succeeded) c.LoadFailures++;
    });

    /// <summary>
    /// Records a crash or OOM kill of a previous run (learned at the next start, e.g. from the platform's exit reason or
    /// a marker file) in the phase it happened. A load crash also counts as a load attempt. The state is saved at once.
    /// </summary>
    public void RecordCrash(ModelInUse model, CrashPhase phase, bool oomKill = false)
    {
        Record(model, c =>
        {
            if (phase == CrashPhase.Load)
            {
                c.Loads++;
                if (oomKill) c.LoadOomKills++; else c.LoadCrashes++;
            }
            else if (oomKill) c.InferenceOomKills++;
            else c.InferenceCrashes++;
        });
        Save();
    }

    private void Record(ModelInUse m, Action<TelemetryCounts> update)
    {
        ArgumentNullException.ThrowIfNull(m);
        var key = (m.Model, m.Version, m.Variant);
        bool wake;
        lock (_lock)
        {
            if (!_current.TryGetValue(key, out var e))
            {
                var entry = new TelemetryEntry(m.Model, m.Version, m.Variant, m.ExpectedVersion, m.ExpectedVariant, new TelemetryCounts { Reports = 1 });
                try { new TelemetryBatch(new string('0', 32), new string('0', 32), _o.DeviceClass, _periodStart, _periodStart, [WithOne(entry)]).Validate(_o.Limits); }
                catch (InvalidTelemetryException ex) { throw new ArgumentException(ex.Message, nameof(m)); }
                if (_current.Count >= _o.Limits.MaxEntries) SealLocked(_o.Time.GetUtcNow());
                _current[key] = e = entry;
                e.Counts.FallbackReports = e.IsFallback ? 1 : 0;
            }
            update(e.Counts);
            _eventsSinceSeal++;
            // Keep every counter below the batch limit: seal before one could pass it.
            if (e.Counts.Inferences >= _o.Limits.MaxCount - 1 || e.Counts.Loads >= _o.Limits.MaxCount - 1) SealLocked(_o.Time.GetUtcNow());
            wake = _eventsSinceSeal >= _o.FlushAfterEvents;
        }
        if (wake && _wake.CurrentCount == 0) { try { _wake.Release(); } catch (SemaphoreFullException) { } }
    }

    private static TelemetryEntry WithOne(TelemetryEntry e)
    {
        var c = new TelemetryCounts { Reports = 1, Loads = 1, FallbackReports = e.IsFallback ? 1 : 0 };
        return e with { Counts = c };
    }

    /// <summary>Seals the current counts into a batch (when there are any) and sends every unsent batch, retrying transient failures.</summary>
    public async Task<TelemetryFlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        lock (_lock) SealLocked(_o.Time.GetUtcNow());
        Save();
        await _sendGate.WaitAsync(cancellationToken);
        try { return await SendPendingAsync(cancellationToken); }
        finally { _sendGate.Release(); }
    }

    /// <summary>
    /// Runs until cancelled: flushes every <see cref="TelemetryReporterOptions.FlushInterval"/> or as soon as
    /// <see cref="TelemetryReporterOptions.FlushAfterEvents"/> events were recorded, and saves the current counts every
    /// <see cref="TelemetryReporterOptions.PersistInterval"/>. Send failures leave batches pending for the next round.
    /// </summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var lastFlush = _o.Time.GetUtcNow();
        while (!cancellationToken.IsCancellationRequested)
        {
            var wait = _o.PersistInterval < _o.FlushInterval ? _o.PersistInterval : _o.FlushInterval;
            bool woken;
            try { woken = await _wake.WaitAsync(wait, cancellationToken); }
            catch (OperationCanceledException) { break; }
            var now = _o.Time.GetUtcNow();
            if (woken || now - lastFlush >= _o.FlushInterval)
            {
                lastFlush = now;
                try { await FlushAsync(cancellationToken); }
                catch (OperationCanceledException) { break; }
            }
            else Save();
        }
        Save();
    }

    private async Task<TelemetryFlushResult> SendPendingAsync(CancellationToken ct)
    {
        int sent = 0, rejected = 0, attempts = 0;
        Exception? error = null;
        var backoff = _o.InitialBackoff;
        while (true)
        {
            TelemetryBatch? next;
            lock (_lock) next = _pending.Count > 0 ? _pending[0] : null;
            if (next is null) return new TelemetryFlushResult(sent, rejected, 0, attempts, null);
            attempts++;
            TimeSpan? retryAfter = null;
            try
            {
                using var content = new ByteArrayContent(next.ToJson());
                content.Headers.ContentType = new("application/json");
                using var response = await _http.PostAsync(_endpoint, content, ct);
                if (response.IsSuccessStatusCode || response.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.RequestEntityTooLarge)
                {
                    bool ok = response.IsSuccessStatusCode;
                    lock (_lock)
                    {
                        _pending.Remove(next);
                        if (!ok) _dropped++;
                    }
                    Save();
                    if (ok) sent++; else rejected++;
                    backoff = _o.InitialBackoff;
                    continue;
                }
                retryAfter = response.Headers.RetryAfter?.Delta;
                error = new HttpRequestException($"telemetry upload got {(int)response.StatusCode} {response.ReasonPhrase}", null, response.StatusCode);
            }
            catch (HttpRequestException e) { error = e; }
            catch (TaskCanceledException e) when (!ct.IsCancellationRequested) { error = e; } // timeout
            if (attempts >= _o.MaxAttempts) return new TelemetryFlushResult(sent, rejected, PendingBatches, attempts, error);
            // Exponential backoff with jitter (50–100% of the step), at least what the server asked for.
            var delay = TimeSpan.FromTicks((long)(backoff.Ticks * (0.5 + 0.5 * Random.Shared.NextDouble())));
            if (retryAfter is { } ra && ra > delay) delay = ra < _o.MaxBackoff ? ra : _o.MaxBackoff;
            await Task.Delay(delay, _o.Time, ct);
            backoff = TimeSpan.FromTicks(Math.Min(_o.MaxBackoff.Ticks, backoff.Ticks * 2));
        }
    }

    private void SealLocked(DateTimeOffset now)
    {
        if (now - _installIdCreated >= _o.InstallIdRotation)
        {
            _installId = TelemetryBatch.NewId();
            _installIdCreated = now;
        }
        var entries = _current.Values.Where(e => !e.Counts.IsEmpty).ToList();
        _current = [];
        _eventsSinceSeal = 0;
        var end = Truncate(now);
        if (end < _periodStart) end = _periodStart;
        var start = _periodStart;
        _periodStart = end;
        if (entries.Count == 0) return;
        if (end - start > _o.Limits.MaxPeriod) start = end - _o.Limits.MaxPeriod;
        // Split so that every batch stays under the server's size limit.
        var chunk = new List<TelemetryEntry>();
        foreach (var e in entries)
        {
            chunk.Add(e);
            if (chunk.Count > 1 && new TelemetryBatch(TelemetryBatch.NewId(), _installId, _o.DeviceClass, start, end, chunk).ToJson().Length > _o.Limits.MaxBatchBytes)
            {
                chunk.RemoveAt(chunk.Count - 1);
                _pending.Add(new TelemetryBatch(TelemetryBatch.NewId(), _installId, _o.DeviceClass, start, end, chunk));
                chunk = [e];
            }
        }
        _pending.Add(new TelemetryBatch(TelemetryBatch.NewId(), _installId, _o.DeviceClass, start, end, chunk));
        while (_pending.Count > _o.MaxPendingBatches)
        {
            _pending.RemoveAt(0);
            _dropped++;
        }
    }

    private static DateTimeOffset Truncate(DateTimeOffset t) => new(t.UtcTicks - t.UtcTicks % TimeSpan.TicksPerSecond, TimeSpan.Zero);

    /// <summary>Writes the state file (temp + rename): install id, drop count, unsent batches, current counts.</summary>
    public void Save()
    {
        JsonObject state;
        lock (_lock)
        {
            var current = _current.Values.Where(e => !e.Counts.IsEmpty).ToList();
            state = new JsonObject
            {
                ["install_id"] = _installId,
                ["install_id_created"] = _installIdCreated.UtcDateTime.ToString("o"),
                ["dropped"] = _dropped,
                ["pending"] = new JsonArray(_pending.Select(b => JsonNode.Parse(b.ToJson())).ToArray()),
                // The current counts as a batch-shaped object (period up to now), re-validated on load like the others.
                ["current"] = current.Count == 0 ? null : JsonNode.Parse(new TelemetryBatch(new string('0', 32), _installId, _o.DeviceClass, _periodStart,
                    Max(_periodStart, Truncate(_o.Time.GetUtcNow())), current).ToJson()),
            };
        }
        var path = StatePath;
        var temp = path + $".{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            {
                using (var w = new Utf8JsonWriter(fs)) state.WriteTo(w);
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch (IOException)
        {
            try { File.Delete(temp); } catch (IOException) { }
            // Telemetry must never break the app: the counts stay in memory and the next save tries again.
        }
        catch (UnauthorizedAccessException)
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    private static DateTimeOffset Max(DateTimeOffset a, DateTimeOffset b) => a > b ? a : b;

    private void Load(DateTimeOffset now)
    {
        if (!File.Exists(StatePath)) return;
        JsonObject? state;
        try { state = JsonNode.Parse(File.ReadAllBytes(StatePath)) as JsonObject; }
        catch (Exception e) when (e is JsonException or IOException) { return; } // unreadable: start afresh
        if (state is null) return;
        if (state["install_id"] is JsonValue id && id.TryGetValue<string>(out var ids) && ids.Length == 32 &&
            state["install_id_created"] is JsonValue created && created.TryGetValue<string>(out var cs) && DateTimeOffset.TryParse(cs, null, System.Globalization.DateTimeStyles.RoundtripKind, out var ct) &&
            now - ct < _o.InstallIdRotation && ct <= now)
        {
            _installId = ids;
            _installIdCreated = ct;
        }
        if (state["dropped"] is JsonValue d && d.TryGetValue<long>(out var dl)) _dropped = dl;
        if (state["pending"] is JsonArray pending)
        {
            foreach (var p in pending)
            {
                if (p is null) continue;
                try
                {
                    var b = TelemetryBatch.Parse(System.Text.Encoding.UTF8.GetBytes(p.ToJsonString()), _o.Limits);
                    if (b.PeriodEnd >= now - _o.Limits.MaxAge) _pending.Add(b); else _dropped++;
                }
                catch (InvalidTelemetryException) { _dropped++; }
            }
        }
        if (state["current"] is JsonObject current)
        {
            try
            {
                var b = TelemetryBatch.Parse(System.Text.Encoding.UTF8.GetBytes(current.ToJsonString()), _o.Limits);
                // Seal what the previous run collected as its own batch, under the current install id.
                if (b.PeriodEnd >= now - _o.Limits.MaxAge) _pending.Add(b with { BatchId = TelemetryBatch.NewId(), InstallId = _installId });
            }
            catch (InvalidTelemetryException) { _dropped++; }
        }
        while (_pending.Count > _o.MaxPendingBatches) { _pending.RemoveAt(0); _dropped++; }
    }

    /// <summary>Saves the state (unsent batches and current counts stay on disk for the next start).</summary>
    public ValueTask DisposeAsync()
    {
        Save();
        if (_ownsHttp) _http.Dispose();
        _sendGate.Dispose();
        _wake.Dispose();
        return ValueTask.CompletedTask;
    }
}
