using System.Data.Common;
using Microsoft.Data.Sqlite;

namespace OnDevice.Server.Storage;

/// <summary>The embedded store: one SQLite file in WAL mode; writers take the database write lock (BEGIN IMMEDIATE).</summary>
public sealed class SqliteDeliveryStore : SqlDeliveryStore
{
    private readonly string _connectionString;

    /// <summary>Uses (creating if needed) the database file at <paramref name="path"/>.</summary>
    public SqliteDeliveryStore(string path)
    {
        Path = System.IO.Path.GetFullPath(path);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
        _connectionString = new SqliteConnectionStringBuilder { DataSource = Path, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = true, DefaultTimeout = 30 }.ToString();
    }

    /// <summary>The database file.</summary>
    public string Path { get; }

    /// <inheritdoc/>
    public override string Description => $"sqlite:{Path}";

    /// <inheritdoc/>
    protected override string BlobType => "BLOB";

    /// <inheritdoc/>
    protected override string IdentityColumn => "INTEGER PRIMARY KEY AUTOINCREMENT";

    /// <inheritdoc/>
    protected override async Task<DbConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var c = new SqliteConnection(_connectionString);
        await c.OpenAsync(cancellationToken);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "PRAGMA busy_timeout = 30000; PRAGMA synchronous = NORMAL;";
        await cmd.ExecuteNonQueryAsync(cancellationToken);
        return c;
    }

    /// <inheritdoc/>
    protected override async Task<DbTransaction> BeginLockedAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        // Non-deferred: BEGIN IMMEDIATE takes the write lock now, so read-then-write cannot interleave.
        return await Task.FromResult(((SqliteConnection)connection).BeginTransaction(deferred: false));
    }

    /// <inheritdoc/>
    protected override async Task RunMigrationAsync(DbConnection connection, IReadOnlyList<string> statements, CancellationToken cancellationToken)
    {
        await Exec(connection, null, "PRAGMA journal_mode = WAL");
        await base.RunMigrationAsync(connection, statements, cancellationToken);
    }
}
