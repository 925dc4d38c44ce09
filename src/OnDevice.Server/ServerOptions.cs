using System.Globalization;

namespace OnDevice.Server;

/// <summary>Options of a delivery server (from <c>ondevice serve</c> or the server's own command line).</summary>
public sealed record ServerOptions
{
    /// <summary>Store directory (blobs; the SQLite file by default).</summary>
    public required string Store { get; init; }

    /// <summary><c>sqlite:PATH</c> or <c>postgres:CONNSTR</c>; null means <c>sqlite:STORE/delivery.db</c>.</summary>
    public string? Db { get; init; }

    /// <summary>Listen URLs (semicolon-separated).</summary>
    public string Urls { get; init; } = "http://127.0.0.1:5080";

    /// <summary>Keys directory from <c>ondevice keys init</c>: its online/ keys sign snapshot and timestamp, its root.json seeds an empty database.</summary>
    public required string Keys { get; init; }

    /// <summary>File holding an operator token: created (owner-only) with a fresh token when missing, registered on start.</summary>
    public string? AdminTokenFile { get; init; }

    /// <summary>Lifetime of each timestamp.</summary>
    public TimeSpan TimestampLifetime { get; init; } = TimeSpan.FromDays(1);

    /// <summary>Lifetime of each snapshot.</summary>
    public TimeSpan SnapshotLifetime { get; init; } = TimeSpan.FromDays(7);

    /// <summary>How long the current timestamp is served from memory before the database is asked again.</summary>
    public TimeSpan TimestampCache { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Largest blob upload.</summary>
    public long MaxBlobBytes { get; init; } = 8L << 30;

    /// <summary>How often the rollout engine looks at every active rollout (<c>--rollout-tick</c>).</summary>
    public TimeSpan RolloutTick { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Telemetry batches accepted per install id per minute (also the burst size).</summary>
    public int TelemetryBatchesPerMinute { get; init; } = 60;

    /// <summary>Telemetry batches accepted per second by the whole server (also the burst size).</summary>
    public int TelemetryBatchesPerSecond { get; init; } = 2000;

    /// <summary>Settings of the telemetry guards (significance level, minimum reports and samples).</summary>
    public OnDevice.Delivery.Guards.GuardOptions Guards { get; init; } = OnDevice.Delivery.Guards.GuardOptions.Default;

    /// <summary>Parses durations like 90s, 15m, 12h, 7d (or a TimeSpan).</summary>
    public static TimeSpan ParseDuration(string s)
    {
        s = s.Trim();
        if (s.Length > 1 && double.TryParse(s[..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v > 0)
        {
            switch (s[^1])
            {
                case 's': return TimeSpan.FromSeconds(v);
                case 'm': return TimeSpan.FromMinutes(v);
                case 'h': return TimeSpan.FromHours(v);
                case 'd': return TimeSpan.FromDays(v);
            }
        }
        if (TimeSpan.TryParse(s, CultureInfo.InvariantCulture, out var t) && t > TimeSpan.Zero) return t;
        throw new FormatException($"'{s}' is not a duration (e.g. 30s, 15m, 12h, 7d)");
    }
}
