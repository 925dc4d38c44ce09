using System.Data.Common;
using OnDevice.Delivery.Telemetry;

namespace OnDevice.Server.Storage;

public abstract partial class SqlDeliveryStore
{
    private const string TelemetryKey = "model, version, variant, device_class, minute";

    private static readonly string[] CountColumns =
    [
        "reports", "fallback_reports", "inferences", "loads", "load_failures", "load_crashes", "inference_crashes",
        "load_oom_kills", "inference_oom_kills", "thermal_nominal", "thermal_fair", "thermal_serious", "thermal_critical",
    ];

    /// <summary>
    /// Telemetry aggregate tables; idempotent statements. Counters per (model, version in use, variant, device class,
    /// minute of arrival), latency histogram counts per bucket under the same key, and the ids of accepted batches
    /// (random, not linked to any device) so a retried batch is never counted twice. No raw events, no install ids.
    /// </summary>
    private IReadOnlyList<string> TelemetrySchema =>
    [
        "CREATE TABLE IF NOT EXISTS telemetry_counts (model TEXT NOT NULL, version TEXT NOT NULL, variant TEXT NOT NULL, device_class TEXT NOT NULL, minute TEXT NOT NULL, " +
            string.Join(", ", CountColumns.Select(c => c + " BIGINT NOT NULL")) + $", PRIMARY KEY ({TelemetryKey}))",
        $"CREATE TABLE IF NOT EXISTS telemetry_latency (model TEXT NOT NULL, version TEXT NOT NULL, variant TEXT NOT NULL, device_class TEXT NOT NULL, minute TEXT NOT NULL, bucket INTEGER NOT NULL, count BIGINT NOT NULL, PRIMARY KEY ({TelemetryKey}, bucket))",
        "CREATE TABLE IF NOT EXISTS telemetry_batches (id TEXT PRIMARY KEY, received TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS telemetry_batches_received ON telemetry_batches (received)",
    ];

    /// <summary>Begins a telemetry write: the repository lock where the database needs it for writes (SQLite); PostgreSQL overrides this with a plain transaction, upserts being atomic there.</summary>
    protected virtual Task<DbTransaction> BeginTelemetryWriteAsync(DbConnection connection, CancellationToken cancellationToken) => BeginLockedAsync(connection, cancellationToken);

    /// <summary>The start of the minute holding <paramref name="t"/> (UTC).</summary>
    public static DateTimeOffset TelemetryMinute(DateTimeOffset t) => new(t.UtcTicks - t.UtcTicks % TimeSpan.TicksPerMinute, TimeSpan.Zero);

    /// <inheritdoc/>
    public async Task<bool> AddTelemetryAsync(TelemetryBatch batch, DateTimeOffset receivedAt, CancellationToken cancellationToken = default)
    {
        await using var c = await OpenAsync(cancellationToken);
        await using var tx = await BeginTelemetryWriteAsync(c, cancellationToken);
        await using (var ins = Command(c, tx, "INSERT INTO telemetry_batches (id, received) VALUES (@id, @r) ON CONFLICT (id) DO NOTHING", [("id", batch.BatchId), ("r", FormatTime(receivedAt))]))
        {
            if (await ins.ExecuteNonQueryAsync(cancellationToken) == 0)
            {
                await tx.RollbackAsync(cancellationToken);
                return false;
            }
        }
        var minute = FormatTime(TelemetryMinute(receivedAt));
        var countsSql = $"INSERT INTO telemetry_counts ({TelemetryKey}, {string.Join(", ", CountColumns)}) VALUES (@m, @v, @a, @d, @t, {string.Join(", ", CountColumns.Select(x => "@" + x))}) " +
                        $"ON CONFLICT ({TelemetryKey}) DO UPDATE SET {string.Join(", ", CountColumns.Select(x => $"{x} = telemetry_counts.{x} + excluded.{x}"))}";
        // A fixed order of keys, so concurrent writers on PostgreSQL take row locks in the same order (no deadlocks).
        foreach (var e in batch.Entries.OrderBy(e => e.Model, StringComparer.Ordinal).ThenBy(e => e.Version, StringComparer.Ordinal).ThenBy(e => e.Variant, StringComparer.Ordinal))
        {
            var k = e.Counts;
            (string, object)[] key = [("m", e.Model), ("v", e.Version), ("a", e.Variant), ("d", batch.DeviceClass), ("t", minute)];
            long[] values = [k.Reports, k.FallbackReports, k.Inferences, k.Loads, k.LoadFailures, k.LoadCrashes, k.InferenceCrashes, k.LoadOomKills, k.InferenceOomKills, .. k.Thermal];
            await Exec(c, tx, countsSql, [.. key, .. CountColumns.Select((col, i) => (col, (object)values[i]))]);
            // Every non-empty bucket in one multi-row upsert (one round trip; buckets are distinct within an entry).
            var tuples = new List<string>();
            var ps = new List<(string, object)>(key);
            for (int b = 0; b < k.Latency.Length; b++)
            {
                if (k.Latency[b] == 0) continue;
                tuples.Add($"(@m, @v, @a, @d, @t, @b{b}, @n{b})");
                ps.Add(("b" + b, b));
                ps.Add(("n" + b, k.Latency[b]));
            }
            if (tuples.Count > 0)
                await Exec(c, tx, $"INSERT INTO telemetry_latency ({TelemetryKey}, bucket, count) VALUES {string.Join(", ", tuples)} " +
                                  $"ON CONFLICT ({TelemetryKey}, bucket) DO UPDATE SET count = telemetry_latency.count + excluded.count", [.. ps]);
        }
        await tx.CommitAsync(cancellationToken);
        return true;
    }

    /// <inheritdoc/>
    public async Task<IReadOnlyList<TelemetryRow>> QueryTelemetryAsync(string model, string? version, string? deviceClass, DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default)
    {
        await using var c = await OpenAsync(cancellationToken);
        var where = "model = @m AND minute >= @f AND minute <= @t" + (version is null ? "" : " AND version = @v") + (deviceClass is null ? "" : " AND device_class = @d");
        List<(string, object)> ps = [("m", model), ("f", FormatTime(TelemetryMinute(from))), ("t", FormatTime(to))];
        if (version is not null) ps.Add(("v", version));
        if (deviceClass is not null) ps.Add(("d", deviceClass));
        var rows = new Dictionary<(string, string, string), TelemetryCounts>();
        await using (var cmd = Command(c, null, $"SELECT version, variant, device_class, {string.Join(", ", CountColumns.Select(x => $"SUM({x})"))} FROM telemetry_counts WHERE {where} GROUP BY version, variant, device_class", ps))
        await using (var rd = await cmd.ExecuteReaderAsync(cancellationToken))
        {
            while (await rd.ReadAsync(cancellationToken))
            {
                long V(int i) => Convert.ToInt64(rd.GetValue(3 + i), System.Globalization.CultureInfo.InvariantCulture);
                var k = new TelemetryCounts
                {
                    Reports = V(0), FallbackReports = V(1), Inferences = V(2), Loads = V(3), LoadFailures = V(4), LoadCrashes = V(5),
                    InferenceCrashes = V(6), LoadOomKills = V(7), InferenceOomKills = V(8),
                };
                for (int i = 0; i < 4; i++) k.Thermal[i] = V(9 + i);
                rows[(rd.GetString(0), rd.GetString(1), rd.GetString(2))] = k;
            }
        }
        await using (var cmd = Command(c, null, $"SELECT version, variant, device_class, bucket, SUM(count) FROM telemetry_latency WHERE {where} GROUP BY version, variant, device_class, bucket", ps))
        await using (var rd = await cmd.ExecuteReaderAsync(cancellationToken))
        {
            while (await rd.ReadAsync(cancellationToken))
            {
                var bucket = Convert.ToInt32(rd.GetValue(3), System.Globalization.CultureInfo.InvariantCulture);
                if (rows.TryGetValue((rd.GetString(0), rd.GetString(1), rd.GetString(2)), out var k) && (uint)bucket < LatencyBuckets.Count)
                    k.Latency[bucket] = Convert.ToInt64(rd.GetValue(4), System.Globalization.CultureInfo.InvariantCulture);
            }
        }
        return rows.OrderBy(r => r.Key.Item1, Delivery.ModelVersion.Comparer).ThenBy(r => r.Key.Item2, StringComparer.Ordinal).ThenBy(r => r.Key.Item3, StringComparer.Ordinal)
            .Select(r => new TelemetryRow(model, r.Key.Item1, r.Key.Item2, r.Key.Item3, r.Value)).ToList();
    }

    /// <inheritdoc/>
    public async Task<int> PruneTelemetryBatchIdsAsync(DateTimeOffset olderThan, CancellationToken cancellationToken = default)
    {
        await using var c = await OpenAsync(cancellationToken);
        await using var cmd = Command(c, null, "DELETE FROM telemetry_batches WHERE received < @t", [("t", FormatTime(olderThan))]);
        return await cmd.ExecuteNonQueryAsync(cancellationToken);
    }
}
