namespace OnDevice.Server.Storage;

/// <summary>A stored release (one revision of one model version's targets metadata).</summary>
public sealed record ReleaseRow(string Name, long Revision, string Model, string Version, byte[] Bytes, string PublishedBy, DateTimeOffset PublishedAt);

/// <summary>Signed metadata with its version and expiry (snapshot or timestamp).</summary>
public sealed record MetadataRow(long Version, byte[] Bytes, DateTimeOffset Expires);

/// <summary>One audit entry: who did what to which subject, when.</summary>
public sealed record AuditRow(long Id, DateTimeOffset At, string Actor, string Action, string Subject, string Details);

/// <summary>An API token (only its SHA-256 is stored).</summary>
public sealed record TokenRow(string Hash, string Name, string Role, DateTimeOffset Created);

/// <summary>
/// Persistent state of a delivery server: roots, releases, snapshots, timestamps, tokens and the audit log.
/// Implementations: SQLite (embedded) and PostgreSQL (shared by several replicas). Writes go through
/// <see cref="InTransactionAsync{T}"/>, which holds a repository-wide lock so replicas never interleave publishes.
/// </summary>
public partial interface IDeliveryStore : IAsyncDisposable
{
    /// <summary>A short description for logs (kind and location, no secrets).</summary>
    string Description { get; }

    /// <summary>Creates or upgrades the schema (safe to run from several replicas at once).</summary>
    Task MigrateAsync(CancellationToken cancellationToken = default);

    /// <summary>Runs <paramref name="work"/> in one transaction holding the repository lock.</summary>
    Task<T> InTransactionAsync<T>(Func<IDeliveryTransaction, Task<T>> work, CancellationToken cancellationToken = default);

    /// <summary>Root metadata of a version, or null.</summary>
    Task<byte[]?> GetRootAsync(long version, CancellationToken cancellationToken = default);

    /// <summary>The newest root version (0 when none).</summary>
    Task<long> GetLatestRootVersionAsync(CancellationToken cancellationToken = default);

    /// <summary>The newest timestamp, or null.</summary>
    Task<MetadataRow?> GetTimestampAsync(CancellationToken cancellationToken = default);

    /// <summary>A snapshot by version, or null.</summary>
    Task<byte[]?> GetSnapshotAsync(long version, CancellationToken cancellationToken = default);

    /// <summary>A release file by name and revision, or null.</summary>
    Task<byte[]?> GetReleaseAsync(string name, long revision, CancellationToken cancellationToken = default);

    /// <summary>The newest revision of every release (optionally of one model).</summary>
    Task<IReadOnlyList<ReleaseRow>> ListReleasesAsync(string? model, CancellationToken cancellationToken = default);

    /// <summary>Audit entries, newest first.</summary>
    Task<IReadOnlyList<AuditRow>> ListAuditAsync(int limit, long? beforeId, CancellationToken cancellationToken = default);

    /// <summary>A token by hash, or null.</summary>
    Task<TokenRow?> FindTokenAsync(string hash, CancellationToken cancellationToken = default);
}

/// <summary>Operations inside one locked transaction.</summary>
public partial interface IDeliveryTransaction
{
    /// <summary>The newest root version (0 when none).</summary>
    Task<long> LatestRootVersionAsync();
    /// <summary>Bytes of the newest root, or null.</summary>
    Task<byte[]?> LatestRootAsync();
    /// <summary>Adds a root version.</summary>
    Task InsertRootAsync(long version, byte[] bytes);
    /// <summary>Newest revision of every release: name → (revision, bytes).</summary>
    Task<IReadOnlyDictionary<string, (long Revision, byte[] Bytes)>> CurrentReleasesAsync();
    /// <summary>Adds a release revision.</summary>
    Task InsertReleaseAsync(ReleaseRow row);
    /// <summary>The newest snapshot, or null.</summary>
    Task<MetadataRow?> LatestSnapshotAsync();
    /// <summary>Adds a snapshot.</summary>
    Task InsertSnapshotAsync(MetadataRow row);
    /// <summary>The newest timestamp, or null.</summary>
    Task<MetadataRow?> LatestTimestampAsync();
    /// <summary>Adds a timestamp.</summary>
    Task InsertTimestampAsync(MetadataRow row);
    /// <summary>Adds or replaces a token.</summary>
    Task UpsertTokenAsync(TokenRow row);
    /// <summary>Appends to the audit log.</summary>
    Task AuditAsync(string actor, string action, string subject, string details);
}
