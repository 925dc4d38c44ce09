namespace OnDevice.Server.Telemetry;

/// <summary>
/// Token buckets for telemetry ingest: one per install id (<see cref="ServerOptions.TelemetryBatchesPerMinute"/>,
/// burst of the same size) and one for the whole server (<see cref="ServerOptions.TelemetryBatchesPerSecond"/>), so a
/// client rotating ids on every request is still bounded. In memory; at most 100 000 ids are tracked.
/// </summary>
public sealed class TelemetryRateLimiter(ServerOptions options, TimeProvider? time = null)
{
    private const int MaxTracked = 100_000;
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly Dictionary<string, Bucket> _perInstall = new(StringComparer.Ordinal);
    private readonly Bucket _global = new(options.TelemetryBatchesPerSecond, 0);
    private long _accepted;

    private sealed class Bucket(double tokens, long at)
    {
        public double Tokens = tokens;
        public long At = at;
    }

    /// <summary>Takes one token from the global bucket; false (with a retry delay) when empty.</summary>
    public bool TryAcquireGlobal(out TimeSpan retryAfter) =>
        Take(_global, options.TelemetryBatchesPerSecond, options.TelemetryBatchesPerSecond, out retryAfter);

    /// <summary>Takes one token for an install id; false (with a retry delay) when its bucket is empty.</summary>
    public bool TryAcquire(string installId, out TimeSpan retryAfter)
    {
        double capacity = options.TelemetryBatchesPerMinute, perSecond = options.TelemetryBatchesPerMinute / 60.0;
        lock (_perInstall)
        {
            if (!_perInstall.TryGetValue(installId, out var b))
            {
                if (_perInstall.Count >= MaxTracked) Evict(capacity, perSecond);
                _perInstall[installId] = b = new Bucket(capacity, _time.GetTimestamp());
            }
            return Take(b, capacity, perSecond, out retryAfter);
        }
    }

    /// <summary>Counts an accepted batch; true every 256th time (when the server prunes old batch ids).</summary>
    public bool CountAccepted() => Interlocked.Increment(ref _accepted) % 256 == 1;

    private bool Take(Bucket b, double capacity, double perSecond, out TimeSpan retryAfter)
    {
        lock (b)
        {
            long now = _time.GetTimestamp();
            b.Tokens = Math.Min(capacity, b.Tokens + _time.GetElapsedTime(b.At, now).TotalSeconds * perSecond);
            b.At = now;
            if (b.Tokens >= 1)
            {
                b.Tokens -= 1;
                retryAfter = TimeSpan.Zero;
                return true;
            }
            retryAfter = TimeSpan.FromSeconds(Math.Ceiling((1 - b.Tokens) / perSecond));
            return false;
        }
    }

    private void Evict(double capacity, double perSecond)
    {
        long now = _time.GetTimestamp();
        // Drop ids whose bucket has refilled (they would start full anyway); if none, drop everything.
        var full = _perInstall.Where(kv => kv.Value.Tokens + _time.GetElapsedTime(kv.Value.At, now).TotalSeconds * perSecond >= capacity).Select(kv => kv.Key).ToList();
        if (full.Count == 0) _perInstall.Clear();
        foreach (var k in full) _perInstall.Remove(k);
    }
}
