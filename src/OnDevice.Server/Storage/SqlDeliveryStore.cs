using System.Data.Common;
using System.Globalization;

namespace OnDevice.Server.Storage;

/// <summary>The SQL shared by the SQLite and PostgreSQL stores; dialects supply connections, types and locking.</summary>
public abstract partial class SqlDeliveryStore : IDeliveryStore
{
    /// <inheritdoc/>
    public abstract string Description { get; }

    /// <summary>Opens a connection.</summary>
    protected abstract Task<DbConnection> OpenAsync(CancellationToken cancellationToken);

    /// <summary>Column type for binary data.</summary>
    protected abstract string BlobType { get; }

    /// <summary>Column definition of an auto-incrementing 64-bit primary key.</summary>
    protected abstract string IdentityColumn { get; }

    /// <summary>Begins the write transaction and takes the repository lock.</summary>
    protected abstract Task<DbTransaction> BeginLockedAsync(DbConnection connection, CancellationToken cancellationToken);

    /// <summary>Runs the schema statements under a cross-process lock where the database needs one.</summary>
    protected virtual async Task RunMigrationAsync(DbConnection connection, IReadOnlyList<string> statements, CancellationToken cancellationToken)
    {
        await using var tx = await BeginLockedAsync(connection, cancellationToken);
        foreach (var sql in statements) await Exec(connection, tx, sql);
        await tx.CommitAsync(cancellationToken);
    }

    /// <summary>Schema, in order; every statement is idempotent: the delivery tables, then rollouts, then telemetry.</summary>
    protected IReadOnlyList<string> Schema => [.. DeliverySchema, .. RolloutSchema, .. TelemetrySchema];

    /// <summary>The delivery tables (roots, releases, snapshots, timestamps, tokens, audit).</summary>
    private IReadOnlyList<string> DeliverySchema =>
    [
        $"CREATE TABLE IF NOT EXISTS roots (version BIGINT PRIMARY KEY, bytes {BlobType} NOT NULL, created TEXT NOT NULL)",
        $"CREATE TABLE IF NOT EXISTS releases (name TEXT NOT NULL, revision BIGINT NOT NULL, model TEXT NOT NULL, version TEXT NOT NULL, bytes {BlobType} NOT NULL, published_by TEXT NOT NULL, published_at TEXT NOT NULL, PRIMARY KEY (name, revision))",
        "CREATE INDEX IF NOT EXISTS releases_model ON releases (model)",
        $"CREATE TABLE IF NOT EXISTS snapshots (version BIGINT PRIMARY KEY, bytes {BlobType} NOT NULL, expires TEXT NOT NULL)",
        $"CREATE TABLE IF NOT EXISTS timestamps (version BIGINT PRIMARY KEY, bytes {BlobType} NOT NULL, expires TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS tokens (hash TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, created TEXT NOT NULL)",
        $"CREATE TABLE IF NOT EXISTS audit (id {IdentityColumn}, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, subject TEXT NOT NULL, details TEXT NOT NULL)",
    ];

    /// <inheritdoc/>
    public async Task MigrateAsync(CancellationToken cancellationToken = default)
    {
        await using var c = await OpenAsync(cancellationToken);
        await RunMigrationAsync(c, Schema, cancellationToken);
    }

    /// <inheritdoc/>
    public async Task<T> InTransactionAsync<T>(Func<IDeliveryTransaction, Task<T>> work, CancellationToken cancellationToken = default)
    {
        await using var c = await OpenAsync(cancellationToken);
        await using var tx = await BeginLockedAsync(c, cancellationToken);
        var result = await work(new Tx(c, tx));
        await tx.CommitAsync(cancellationToken);
        return result;
    }

    /// <inheritdoc/>
    public async Task<byte[]?> GetRootAsync(long version, CancellationToken cancellationToken = default)
    {
        await using var c = await OpenAsync(cancellationToken);
        return await Scalar<byte[]>(c, null, "SELECT bytes FROM roots WHERE version = @v", ("v", version));
    }

    /// <inheritdoc/>
    public async Task<long> GetLatestRootVersionAsync(CancellationToken cancellationToken = default)
    {
        await using var c = await OpenAsync(cancellationToken);
        return await Scalar<long?>(c, null, "SELECT MAX(version) FROM roots") ?? 0;
    }

    /// <inheritdoc/>
    public async Task<MetadataRow?> GetTimestampAsync(CancellationToken cancellationToken = default)
    {
        await using var c = await OpenAsync(cancellationToken);
        return await LatestMeta(c, null, "timestamps");
    }

    /// <inheritdoc/>
    public async Task<byte[]?> GetSnapshotAsync(long version, CancellationToken cancellationToken = default)
    {
        await using var c = await OpenAsync(cancellationToken);
        return await Scalar<byte[]>(c, null, "SELECT bytes FROM snapshots WHERE version = @v", ("v", version));
    }

    /// <inheritdoc/>
    public async Task<byte[]?> GetReleaseAsync(string name, long revision, CancellationToken cancellationToken = default)
    {
        await using var c = await OpenAsync(cancellationToken);
        return await Scalar<byte[]>(c, null, "SELECT bytes FROM releases WHERE name = @n AND revision = @r", ("n", name), ("r", revision));
    }

    /// <inheritdoc/>
    public async Task<IReadOnlyList<ReleaseRow>> ListReleasesAsync(string? model, CancellationToken cancellationToken = default)
    {
        await using var c = await OpenAsync(cancellationToken);
        var sql = "SELECT r.name, r.revision, r.model, r.version, r.bytes, r.published_by, r.published_at FROM releases r " +
                  "WHERE r.revision = (SELECT MAX(x.revision) FROM releases x WHERE x.name = r.name)" + (model is null ? "" : " AND r.model = @m") + " ORDER BY r.model, r.published_at";
        await using var cmd = Command(c, null, sql, model is null ? [] : [("m", model)]);
        await using var rd = await cmd.ExecuteReaderAsync(cancellationToken);
        var rows = new List<ReleaseRow>();
        while (await rd.ReadAsync(cancellationToken))
            rows.Add(new ReleaseRow(rd.GetString(0), rd.GetInt64(1), rd.GetString(2), rd.GetString(3), (byte[])rd.GetValue(4), rd.GetString(5), ParseTime(rd.GetString(6))));
        return rows;
    }

    /// <inheritdoc/>
    public async Task<IReadOnlyList<AuditRow>> ListAuditAsync(int limit, long? beforeId, CancellationToken cancellationToken = default)
    {
        await using var c = await OpenAsync(cancellationToken);
        var sql = "SELECT id, at, actor, action, subject, details FROM audit" + (beforeId is null ? "" : " WHERE id < @b") + " ORDER BY id DESC LIMIT @l";
        (string, object)[] ps = beforeId is { } b ? [("b", b), ("l", (long)limit)] : [("l", (long)limit)];
        await using var cmd = Command(c, null, sql, ps);
        await using var rd = await cmd.ExecuteReaderAsync(cancellationToken);
        var rows = new List<AuditRow>();
        while (await rd.ReadAsync(cancellationToken))
            rows.Add(new AuditRow(rd.GetInt64(0), ParseTime(rd.GetString(1)), rd.GetString(2), rd.GetString(3), rd.GetString(4), rd.GetString(5)));
        return rows;
    }

    /// <inheritdoc/>
    public async Task<TokenRow?> FindTokenAsync(string hash, CancellationToken cancellationToken = default)
    {
        await using var c = await OpenAsync(cancellationToken);
        await using var cmd = Command(c, null, "SELECT hash, name, role, created FROM tokens WHERE hash = @h", [("h", hash)]);
        await using var rd = await cmd.ExecuteReaderAsync(cancellationToken);
        return await rd.ReadAsync(cancellationToken) ? new TokenRow(rd.GetString(0), rd.GetString(1), rd.GetString(2), ParseTime(rd.GetString(3))) : null;
    }

    /// <inheritdoc/>
    public virtual ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>Stored form of a time (UTC, ISO 8601, sortable as text).</summary>
    protected static string FormatTime(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);

    /// <summary>Parses a stored time.</summary>
    protected static DateTimeOffset ParseTime(string s) => DateTimeOffset.Parse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);

    /// <summary>A command with named parameters.</summary>
    protected static DbCommand Command(DbConnection c, DbTransaction? tx, string sql, IEnumerable<(string Name, object Value)> parameters)
    {
        var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        foreach (var (n, v) in parameters)
        {
            var p = cmd.CreateParameter();
            p.ParameterName = n;
            p.Value = v;
            cmd.Parameters.Add(p);
        }
        return cmd;
    }

    /// <summary>Executes a statement.</summary>
    protected static async Task Exec(DbConnection c, DbTransaction? tx, string sql, params (string, object)[] parameters)
    {
        await using var cmd = Command(c, tx, sql, parameters);
        await cmd.ExecuteNonQueryAsync();
    }

    /// <summary>Runs a query and returns its first column of the first row, or default.</summary>
    protected static async Task<T?> Scalar<T>(DbConnection c, DbTransaction? tx, string sql, params (string, object)[] parameters)
    {
        await using var cmd = Command(c, tx, sql, parameters);
        var v = await cmd.ExecuteScalarAsync();
        if (v is null || v is DBNull) return default;
        var t = Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T);
        return (T)(t == typeof(byte[]) ? v : Convert.ChangeType(v, t, CultureInfo.InvariantCulture));
    }

    private static async Task<MetadataRow?> LatestMeta(DbConnection c, DbTransaction? tx, string table)
    {
        await using var cmd = Command(c, tx, $"SELECT version, bytes, expires FROM {table} ORDER BY version DESC LIMIT 1", []);
        await using var rd = await cmd.ExecuteReaderAsync();
        return await rd.ReadAsync() ? new MetadataRow(rd.GetInt64(0), (byte[])rd.GetValue(1), ParseTime(rd.GetString(2))) : null;
    }

    private sealed partial class Tx(DbConnection c, DbTransaction tx) : IDeliveryTransaction
    {
        public async Task<long> LatestRootVersionAsync() => await Scalar<long?>(c, tx, "SELECT MAX(version) FROM roots") ?? 0;

        public Task<byte[]?> LatestRootAsync() => Scalar<byte[]>(c, tx, "SELECT bytes FROM roots ORDER BY version DESC LIMIT 1");

        public Task InsertRootAsync(long version, byte[] bytes) =>
            Exec(c, tx, "INSERT INTO roots (version, bytes, created) VALUES (@v, @b, @t)", ("v", version), ("b", bytes), ("t", FormatTime(DateTimeOffset.UtcNow)));

        public async Task<IReadOnlyDictionary<string, (long Revision, byte[] Bytes)>> CurrentReleasesAsync()
        {
            await using var cmd = Command(c, tx, "SELECT r.name, r.revision, r.bytes FROM releases r WHERE r.revision = (SELECT MAX(x.revision) FROM releases x WHERE x.name = r.name)", []);
            await using var rd = await cmd.ExecuteReaderAsync();
            var d = new Dictionary<string, (long, byte[])>(StringComparer.Ordinal);
            while (await rd.ReadAsync()) d[rd.GetString(0)] = (rd.GetInt64(1), (byte[])rd.GetValue(2));
            return d;
        }

        public Task InsertReleaseAsync(ReleaseRow r) =>
            Exec(c, tx, "INSERT INTO releases (name, revision, model, version, bytes, published_by, published_at) VALUES (@n, @r, @m, @v, @b, @p, @t)",
                ("n", r.Name), ("r", r.Revision), ("m", r.Model), ("v", r.Version), ("b", r.Bytes), ("p", r.PublishedBy), ("t", FormatTime(r.PublishedAt)));

        public Task<MetadataRow?> LatestSnapshotAsync() => LatestMeta(c, tx, "snapshots");

        public Task InsertSnapshotAsync(MetadataRow row) =>
            Exec(c, tx, "INSERT INTO snapshots (version, bytes, expires) VALUES (@v, @b, @e)", ("v", row.Version), ("b", row.Bytes), ("e", FormatTime(row.Expires)));

        public Task<MetadataRow?> LatestTimestampAsync() => LatestMeta(c, tx, "timestamps");

        public Task InsertTimestampAsync(MetadataRow row) =>
            Exec(c, tx, "INSERT INTO timestamps (version, bytes, expires) VALUES (@v, @b, @e)", ("v", row.Version), ("b", row.Bytes), ("e", FormatTime(row.Expires)));

        public async Task UpsertTokenAsync(TokenRow row)
        {
            await Exec(c, tx, "DELETE FROM tokens WHERE hash = @h", ("h", row.Hash));
            await Exec(c, tx, "INSERT INTO tokens (hash, name, role, created) VALUES (@h, @n, @r, @t)", ("h", row.Hash), ("n", row.Name), ("r", row.Role), ("t", FormatTime(row.Created)));
        }

        public Task AuditAsync(string actor, string action, string subject, string details) =>
            Exec(c, tx, "INSERT INTO audit (at, actor, action, subject, details) VALUES (@t, @a, @x, @s, @d)",
                ("t", FormatTime(DateTimeOffset.UtcNow)), ("a", actor), ("x", action), ("s", subject), ("d", details));
    }
}
