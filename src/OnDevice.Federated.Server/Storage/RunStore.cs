using System.Data.Common;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Npgsql;
using OnDevice.Federated.Remote;

namespace OnDevice.Federated.Server.Storage;

/// <summary>
/// Runs and rounds of federated training in SQLite (default, embedded) or PostgreSQL. One SQL dialect (both accept
/// @parameters and INSERT … ON CONFLICT); only column types differ.
/// </summary>
public sealed class RunStore : IAsyncDisposable
{
    private readonly Func<DbConnection> _connect;
    private readonly bool _postgres;
    private readonly NpgsqlDataSource? _pg;

    private RunStore(Func<DbConnection> connect, bool postgres, NpgsqlDataSource? pg, string description)
    {
        _connect = connect;
        _postgres = postgres;
        _pg = pg;
        Description = description;
    }

    /// <summary>Kind and location (no secrets).</summary>
    public string Description { get; }

    /// <summary>Opens sqlite:PATH or postgres:CONNSTR.</summary>
    public static RunStore Open(string spec)
    {
        ArgumentException.ThrowIfNullOrEmpty(spec);
        if (spec.StartsWith("sqlite:", StringComparison.Ordinal))
        {
            var path = spec["sqlite:".Length..];
            var cs = new SqliteConnectionStringBuilder { DataSource = path, Pooling = true }.ToString();
            return new RunStore(() => new SqliteConnection(cs), false, null, $"sqlite:{path}");
        }
        if (spec.StartsWith("postgres:", StringComparison.Ordinal))
        {
            var ds = NpgsqlDataSource.Create(spec["postgres:".Length..]);
            return new RunStore(() => ds.CreateConnection(), true, ds, "postgres");
        }
        throw new FederatedException($"--db must be sqlite:PATH or postgres:CONNSTR, got '{spec}'");
    }

    private async Task<DbConnection> OpenAsync(CancellationToken ct)
    {
        var c = _connect();
        await c.OpenAsync(ct);
        if (!_postgres)
        {
            using var pragma = c.CreateCommand();
            pragma.CommandText = "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=5000;";
            await pragma.ExecuteNonQueryAsync(ct);
        }
        return c;
    }

    private static DbCommand Command(DbConnection c, string sql, params (string Name, object? Value)[] ps)
    {
        var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (n, v) in ps)
        {
            var p = cmd.CreateParameter();
            p.ParameterName = n;
            p.Value = v ?? DBNull.Value;
            cmd.Parameters.Add(p);
        }
        return cmd;
    }

    /// <summary>Creates the tables if missing.</summary>
    public async Task MigrateAsync(CancellationToken ct = default)
    {
        string blob = _postgres ? "BYTEA" : "BLOB", real = _postgres ? "DOUBLE PRECISION" : "REAL";
        await using var c = await OpenAsync(ct);
        await using var cmd = Command(c, $"""
            CREATE TABLE IF NOT EXISTS fl_runs (id TEXT PRIMARY KEY, config TEXT NOT NULL, state TEXT NOT NULL, rounds_done INTEGER NOT NULL,
                epsilon {real}, devices INTEGER NOT NULL, model {blob} NOT NULL, created TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS fl_rounds (run_id TEXT NOT NULL, round INTEGER NOT NULL, checked_in INTEGER NOT NULL, sampled INTEGER NOT NULL,
                survivors INTEGER NOT NULL, updated INTEGER NOT NULL, note TEXT, epsilon {real}, bytes_in BIGINT NOT NULL, seconds {real} NOT NULL,
                PRIMARY KEY (run_id, round));
            """);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Inserts or updates a run with its current model.</summary>
    public async Task SaveRunAsync(string id, RunConfig config, string state, int roundsDone, double? epsilon, int devices, float[] model, CancellationToken ct = default)
    {
        var bytes = new byte[model.Length * 4];
        Buffer.BlockCopy(model, 0, bytes, 0, bytes.Length);
        await using var c = await OpenAsync(ct);
        await using var cmd = Command(c, """
            INSERT INTO fl_runs (id, config, state, rounds_done, epsilon, devices, model, created) VALUES (@id, @config, @state, @done, @eps, @devices, @model, @created)
            ON CONFLICT (id) DO UPDATE SET state = excluded.state, rounds_done = excluded.rounds_done, epsilon = excluded.epsilon, devices = excluded.devices, model = excluded.model
            """, ("@id", id), ("@config", JsonSerializer.Serialize(config)), ("@state", state), ("@done", roundsDone), ("@eps", epsilon), ("@devices", devices),
            ("@model", bytes), ("@created", DateTimeOffset.UtcNow.ToString("O")));
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Records a finished round.</summary>
    public async Task SaveRoundAsync(string runId, RoundRecord r, CancellationToken ct = default)
    {
        await using var c = await OpenAsync(ct);
        await using var cmd = Command(c, """
            INSERT INTO fl_rounds (run_id, round, checked_in, sampled, survivors, updated, note, epsilon, bytes_in, seconds)
            VALUES (@run, @round, @ci, @sampled, @surv, @upd, @note, @eps, @bytes, @secs)
            ON CONFLICT (run_id, round) DO NOTHING
            """, ("@run", runId), ("@round", r.Round), ("@ci", r.CheckedIn), ("@sampled", r.Sampled), ("@surv", r.Survivors), ("@upd", r.Updated ? 1 : 0),
            ("@note", r.Note), ("@eps", r.Epsilon), ("@bytes", r.BytesIn), ("@secs", r.Seconds));
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>A run's stored status with its rounds, or null.</summary>
    public async Task<RunStatus?> GetRunAsync(string id, CancellationToken ct = default)
    {
        await using var c = await OpenAsync(ct);
        RunStatus? status;
        await using (var cmd = Command(c, "SELECT config, state, rounds_done, epsilon, devices FROM fl_runs WHERE id = @id", ("@id", id)))
        await using (var r = await cmd.ExecuteReaderAsync(ct))
        {
            if (!await r.ReadAsync(ct)) return null;
            var config = JsonSerializer.Deserialize<RunConfig>(r.GetString(0))!;
            status = new RunStatus(id, config, r.GetString(1), Convert.ToInt32(r.GetValue(2)), r.IsDBNull(3) ? null : r.GetDouble(3), Convert.ToInt32(r.GetValue(4)), []);
        }
        await using (var cmd = Command(c, "SELECT round, checked_in, sampled, survivors, updated, note, epsilon, bytes_in, seconds FROM fl_rounds WHERE run_id = @id ORDER BY round", ("@id", id)))
        await using (var r = await cmd.ExecuteReaderAsync(ct))
        {
            while (await r.ReadAsync(ct))
                status.Rounds.Add(new RoundRecord(Convert.ToInt32(r.GetValue(0)), Convert.ToInt32(r.GetValue(1)), Convert.ToInt32(r.GetValue(2)), Convert.ToInt32(r.GetValue(3)),
                    Convert.ToInt32(r.GetValue(4)) != 0, r.IsDBNull(5) ? null : r.GetString(5), r.IsDBNull(6) ? null : r.GetDouble(6), Convert.ToInt64(r.GetValue(7)), r.GetDouble(8)));
        }
        return status;
    }

    /// <summary>The stored model of a run, or null.</summary>
    public async Task<byte[]?> GetModelAsync(string id, CancellationToken ct = default)
    {
        await using var c = await OpenAsync(ct);
        await using var cmd = Command(c, "SELECT model FROM fl_runs WHERE id = @id", ("@id", id));
        return await cmd.ExecuteScalarAsync(ct) as byte[];
    }

    /// <summary>Closes the PostgreSQL data source.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_pg is not null) await _pg.DisposeAsync();
    }
}
