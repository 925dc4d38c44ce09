using System.Data.Common;
using System.Text.Json;

namespace OnDevice.Server.Storage;

public abstract partial class SqlDeliveryStore
{
    /// <summary>Rollout tables (stages, per-device-class state, decisions); idempotent statements.</summary>
    private IReadOnlyList<string> RolloutSchema =>
    [
        $"CREATE TABLE IF NOT EXISTS rollouts (id {IdentityColumn}, model TEXT NOT NULL, channel TEXT NOT NULL, candidate TEXT NOT NULL, baseline TEXT, schedule TEXT NOT NULL, guards TEXT NOT NULL, on_failure TEXT NOT NULL, status TEXT NOT NULL, stage BIGINT NOT NULL, stage_started TEXT NOT NULL, started TEXT NOT NULL, updated TEXT NOT NULL, started_by TEXT NOT NULL, reason TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS rollouts_model_channel ON rollouts (model, channel)",
        "CREATE TABLE IF NOT EXISTS rollout_classes (rollout_id BIGINT NOT NULL, device_class TEXT NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL, actor TEXT NOT NULL, PRIMARY KEY (rollout_id, device_class))",
        $"CREATE TABLE IF NOT EXISTS rollout_decisions (id {IdentityColumn}, rollout_id BIGINT NOT NULL, at TEXT NOT NULL, actor TEXT NOT NULL, kind TEXT NOT NULL, device_class TEXT, stage BIGINT NOT NULL, basis_points BIGINT NOT NULL, decision_key TEXT NOT NULL, details TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS rollout_decisions_rollout ON rollout_decisions (rollout_id, id)",
        "CREATE TABLE IF NOT EXISTS rollout_assignments (rollout_id BIGINT NOT NULL, install_id TEXT NOT NULL, device_class TEXT NOT NULL, version TEXT, in_cohort BIGINT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (rollout_id, install_id))",
    ];

    private const string RolloutColumns = "id, model, channel, candidate, baseline, schedule, guards, on_failure, status, stage, stage_started, started, updated, started_by, reason";
    private const string DecisionColumns = "id, rollout_id, at, actor, kind, device_class, stage, basis_points, decision_key, details";

    /// <inheritdoc/>
    public async Task<RolloutRow?> GetRolloutAsync(long id, CancellationToken cancellationToken = default)
    {
        await using var c = await OpenAsync(cancellationToken);
        return (await ReadRollouts(c, null, $"SELECT {RolloutColumns} FROM rollouts WHERE id = @i", ("i", id))).FirstOrDefault();
    }

    /// <inheritdoc/>
    public async Task<IReadOnlyList<RolloutRow>> ListRolloutsAsync(string? model, string? channel, int limit, CancellationToken cancellationToken = default)
    {
        await using var c = await OpenAsync(cancellationToken);
        var where = new List<string>();
        var ps = new List<(string, object)> { ("l", (long)limit) };
        if (model is not null) { where.Add("model = @m"); ps.Add(("m", model)); }
        if (channel is not null) { where.Add("channel = @c"); ps.Add(("c", channel)); }
        var sql = $"SELECT {RolloutColumns} FROM rollouts" + (where.Count > 0 ? " WHERE " + string.Join(" AND ", where) : "") + " ORDER BY id DESC LIMIT @l";
        return await ReadRollouts(c, null, sql, [.. ps]);
    }

    /// <inheritdoc/>
    public async Task<IReadOnlyList<RolloutRow>> ListActiveRolloutsAsync(CancellationToken cancellationToken = default)
    {
        await using var c = await OpenAsync(cancellationToken);
        return await ReadRollouts(c, null, $"SELECT {RolloutColumns} FROM rollouts WHERE status = 'active' ORDER BY id");
    }

    /// <inheritdoc/>
    public async Task<IReadOnlyList<RolloutClassRow>> ListRolloutClassesAsync(long rolloutId, CancellationToken cancellationToken = default)
    {
        await using var c = await OpenAsync(cancellationToken);
        return await ReadClasses(c, null, rolloutId);
    }

    /// <inheritdoc/>
    public async Task<IReadOnlyList<RolloutDecisionRow>> ListRolloutDecisionsAsync(long rolloutId, int limit, CancellationToken cancellationToken = default)
    {
        await using var c = await OpenAsync(cancellationToken);
        return await ReadDecisions(c, null, $"SELECT {DecisionColumns} FROM rollout_decisions WHERE rollout_id = @r ORDER BY id DESC LIMIT @l", ("r", rolloutId), ("l", (long)limit));
    }

    /// <inheritdoc/>
    public async Task RecordAssignmentAsync(long rolloutId, string installId, string deviceClass, string? version, bool inCohort, DateTimeOffset at, CancellationToken cancellationToken = default)
    {
        await using var c = await OpenAsync(cancellationToken);
        await using var tx = await c.BeginTransactionAsync(cancellationToken);
        // Informational rows (cohort sizes): PostgreSQL need not wait for the WAL flush; a crash loses at most the last few.
        if (c is Npgsql.NpgsqlConnection) await Exec(c, tx, "SET LOCAL synchronous_commit = off");
        await Exec(c, tx,
            "INSERT INTO rollout_assignments (rollout_id, install_id, device_class, version, in_cohort, at) VALUES (@r, @i, @c, @v, @k, @t) " +
            "ON CONFLICT (rollout_id, install_id) DO UPDATE SET device_class = excluded.device_class, version = excluded.version, in_cohort = excluded.in_cohort, at = excluded.at",
            ("r", rolloutId), ("i", installId), ("c", deviceClass), ("v", (object?)version ?? DBNull.Value), ("k", inCohort ? 1L : 0L), ("t", FormatTime(at)));
        await tx.CommitAsync(cancellationToken);
    }

    /// <inheritdoc/>
    public async Task<IReadOnlyList<RolloutAssignmentCount>> CountAssignmentsAsync(long rolloutId, CancellationToken cancellationToken = default)
    {
        await using var c = await OpenAsync(cancellationToken);
        await using var cmd = Command(c, null, "SELECT device_class, version, in_cohort, COUNT(*) FROM rollout_assignments WHERE rollout_id = @r GROUP BY device_class, version, in_cohort ORDER BY device_class, version", [("r", rolloutId)]);
        await using var rd = await cmd.ExecuteReaderAsync(cancellationToken);
        var rows = new List<RolloutAssignmentCount>();
        while (await rd.ReadAsync(cancellationToken))
            rows.Add(new RolloutAssignmentCount(rd.GetString(0), rd.IsDBNull(1) ? null : rd.GetString(1), Convert.ToInt64(rd.GetValue(2)) != 0, Convert.ToInt64(rd.GetValue(3))));
        return rows;
    }

    private static async Task<IReadOnlyList<RolloutRow>> ReadRollouts(DbConnection c, DbTransaction? tx, string sql, params (string, object)[] ps)
    {
        await using var cmd = Command(c, tx, sql, ps);
        await using var rd = await cmd.ExecuteReaderAsync();
        var rows = new List<RolloutRow>();
        while (await rd.ReadAsync())
            rows.Add(new RolloutRow(rd.GetInt64(0), rd.GetString(1), rd.GetString(2), rd.GetString(3), rd.IsDBNull(4) ? null : rd.GetString(4), rd.GetString(5),
                JsonSerializer.Deserialize<List<string>>(rd.GetString(6)) ?? [], rd.GetString(7), rd.GetString(8), (int)rd.GetInt64(9),
                ParseTime(rd.GetString(10)), ParseTime(rd.GetString(11)), ParseTime(rd.GetString(12)), rd.GetString(13), rd.GetString(14)));
        return rows;
    }

    private static async Task<IReadOnlyList<RolloutClassRow>> ReadClasses(DbConnection c, DbTransaction? tx, long rolloutId)
    {
        await using var cmd = Command(c, tx, "SELECT rollout_id, device_class, state, reason, at, actor FROM rollout_classes WHERE rollout_id = @r ORDER BY device_class", [("r", rolloutId)]);
        await using var rd = await cmd.ExecuteReaderAsync();
        var rows = new List<RolloutClassRow>();
        while (await rd.ReadAsync())
            rows.Add(new RolloutClassRow(rd.GetInt64(0), rd.GetString(1), rd.GetString(2), rd.GetString(3), ParseTime(rd.GetString(4)), rd.GetString(5)));
        return rows;
    }

    private static async Task<IReadOnlyList<RolloutDecisionRow>> ReadDecisions(DbConnection c, DbTransaction? tx, string sql, params (string, object)[] ps)
    {
        await using var cmd = Command(c, tx, sql, ps);
        await using var rd = await cmd.ExecuteReaderAsync();
        var rows = new List<RolloutDecisionRow>();
        while (await rd.ReadAsync())
            rows.Add(new RolloutDecisionRow(rd.GetInt64(0), rd.GetInt64(1), ParseTime(rd.GetString(2)), rd.GetString(3), rd.GetString(4), rd.IsDBNull(5) ? null : rd.GetString(5),
                (int)rd.GetInt64(6), (int)rd.GetInt64(7), rd.GetString(8), rd.GetString(9)));
        return rows;
    }

    private sealed partial class Tx
    {
        public async Task<RolloutRow?> RolloutAsync(long id) =>
            (await ReadRollouts(c, tx, $"SELECT {RolloutColumns} FROM rollouts WHERE id = @i", ("i", id))).FirstOrDefault();

        public async Task<RolloutRow?> LatestRolloutAsync(string model, string channel, params string[] statuses)
        {
            var names = statuses.Select((_, i) => "@s" + i).ToList();
            var ps = new List<(string, object)> { ("m", model), ("c", channel) };
            ps.AddRange(statuses.Select((s, i) => ("s" + i, (object)s)));
            var filter = statuses.Length == 0 ? "" : $" AND status IN ({string.Join(", ", names)})";
            return (await ReadRollouts(c, tx, $"SELECT {RolloutColumns} FROM rollouts WHERE model = @m AND channel = @c{filter} ORDER BY id DESC LIMIT 1", [.. ps])).FirstOrDefault();
        }

        public async Task<long> InsertRolloutAsync(RolloutRow r) =>
            await Scalar<long>(c, tx,
                "INSERT INTO rollouts (model, channel, candidate, baseline, schedule, guards, on_failure, status, stage, stage_started, started, updated, started_by, reason) " +
                "VALUES (@m, @ch, @c, @b, @s, @g, @f, @st, @sg, @ss, @t, @u, @by, @re) RETURNING id",
                ("m", r.Model), ("ch", r.Channel), ("c", r.Candidate), ("b", (object?)r.Baseline ?? DBNull.Value), ("s", r.Schedule), ("g", JsonSerializer.Serialize(r.Guards)),
                ("f", r.OnFailure), ("st", r.Status), ("sg", (long)r.Stage), ("ss", FormatTime(r.StageStarted)), ("t", FormatTime(r.Started)), ("u", FormatTime(r.Updated)),
                ("by", r.StartedBy), ("re", r.Reason));

        public Task UpdateRolloutAsync(long id, string status, int stage, DateTimeOffset stageStarted, DateTimeOffset updated, string reason) =>
            Exec(c, tx, "UPDATE rollouts SET status = @s, stage = @g, stage_started = @ss, updated = @u, reason = @r WHERE id = @i",
                ("s", status), ("g", (long)stage), ("ss", FormatTime(stageStarted)), ("u", FormatTime(updated)), ("r", reason), ("i", id));

        public Task<IReadOnlyList<RolloutClassRow>> RolloutClassesAsync(long rolloutId) => ReadClasses(c, tx, rolloutId);

        public async Task UpsertRolloutClassAsync(RolloutClassRow row)
        {
            await Exec(c, tx, "DELETE FROM rollout_classes WHERE rollout_id = @r AND device_class = @d", ("r", row.RolloutId), ("d", row.DeviceClass));
            await Exec(c, tx, "INSERT INTO rollout_classes (rollout_id, device_class, state, reason, at, actor) VALUES (@r, @d, @s, @re, @t, @a)",
                ("r", row.RolloutId), ("d", row.DeviceClass), ("s", row.State), ("re", row.Reason), ("t", FormatTime(row.At)), ("a", row.Actor));
        }

        public async Task<RolloutDecisionRow?> LastRolloutDecisionAsync(long rolloutId) =>
            (await ReadDecisions(c, tx, $"SELECT {DecisionColumns} FROM rollout_decisions WHERE rollout_id = @r ORDER BY id DESC LIMIT 1", ("r", rolloutId))).FirstOrDefault();

        public Task InsertRolloutDecisionAsync(RolloutDecisionRow r) =>
            Exec(c, tx, "INSERT INTO rollout_decisions (rollout_id, at, actor, kind, device_class, stage, basis_points, decision_key, details) VALUES (@r, @t, @a, @k, @d, @s, @b, @y, @x)",
                ("r", r.RolloutId), ("t", FormatTime(r.At)), ("a", r.Actor), ("k", r.Kind), ("d", (object?)r.DeviceClass ?? DBNull.Value), ("s", (long)r.Stage),
                ("b", (long)r.BasisPoints), ("y", r.Key), ("x", r.Details));
    }
}
