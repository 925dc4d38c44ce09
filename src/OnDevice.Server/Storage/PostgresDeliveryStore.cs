using System.Data.Common;
using Npgsql;

namespace OnDevice.Server.Storage;

/// <summary>
/// PostgreSQL store shared by several server replicas; writers serialize on a transaction-scoped advisory lock.
/// </summary>
public sealed class PostgresDeliveryStore : SqlDeliveryStore
{
    private const long RepositoryLock = 0x4F6E446576; // "OnDev"
    private readonly NpgsqlDataSource _dataSource;
    private readonly string _description;

    /// <summary>Connects with an Npgsql connection string.</summary>
    public PostgresDeliveryStore(string connectionString)
    {
        var b = new NpgsqlConnectionStringBuilder(connectionString);
        _description = $"postgres:{b.Host}:{b.Port}/{b.Database}";
        _dataSource = NpgsqlDataSource.Create(b);
    }

    /// <inheritdoc/>
    public override string Description => _description;

    /// <inheritdoc/>
    protected override string BlobType => "BYTEA";

    /// <inheritdoc/>
    protected override string IdentityColumn => "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY";

    /// <inheritdoc/>
    protected override async Task<DbConnection> OpenAsync(CancellationToken cancellationToken) => await _dataSource.OpenConnectionAsync(cancellationToken);

    /// <inheritdoc/>
    protected override async Task<DbTransaction> BeginLockedAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        var tx = await connection.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted, cancellationToken);
        await Exec(connection, tx, "SELECT pg_advisory_xact_lock(@k)", ("k", RepositoryLock));
        return tx;
    }

    /// <inheritdoc/>
    protected override async Task<DbTransaction> BeginTelemetryWriteAsync(DbConnection connection, CancellationToken cancellationToken) =>
        await connection.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted, cancellationToken);

    /// <inheritdoc/>
    public override async ValueTask DisposeAsync() => await _dataSource.DisposeAsync();
}
