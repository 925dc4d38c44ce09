using System.Security.Cryptography;
using System.Text.Json;
using OnDevice.Delivery;
using OnDevice.Server.Storage;

namespace OnDevice.Server;

/// <summary>A request the repository refuses, with the HTTP status that describes why.</summary>
public sealed class RepositoryException(int status, string message) : Exception(message)
{
    /// <summary>HTTP status (400 malformed, 409 conflict, 422 failed verification).</summary>
    public int Status { get; } = status;
}

/// <summary>What a publish produced.</summary>
public sealed record PublishResult(string Name, string Model, string Version, long Revision, long SnapshotVersion, long TimestampVersion, IReadOnlyList<string> Targets);

/// <summary>
/// The server side of the TUF repository: verifies releases signed offline against the newest root, stores them,
/// and signs a new snapshot and timestamp with the online keys, all inside the store's locked transaction so that
/// concurrent publishes (also from other replicas) produce a linear history.
/// </summary>
public sealed class DeliveryRepository(IDeliveryStore store, BlobStore blobs, SigningKey snapshotKey, SigningKey timestampKey, ServerOptions options, TimeProvider time)
{
    private volatile CachedTimestamp? _timestamp;
    private readonly Dictionary<string, (long Snapshot, IReadOnlyList<TargetsMetadata> Releases)> _releaseCache = new(StringComparer.Ordinal);

    private sealed record CachedTimestamp(byte[] Bytes, string ETag, long Version, long SnapshotVersion, DateTimeOffset FetchedAt);

    /// <summary>The store.</summary>
    public IDeliveryStore Store => store;

    /// <summary>The blob store.</summary>
    public BlobStore Blobs => blobs;

    /// <summary>Creates the schema, seeds root version 1 when the database is empty, and issues the first snapshot.</summary>
    public async Task InitializeAsync(byte[] seedRoot, CancellationToken cancellationToken = default)
    {
        await store.MigrateAsync(cancellationToken);
        await store.InTransactionAsync(async tx =>
        {
            var latest = await tx.LatestRootAsync();
            if (latest is null)
            {
                var set = Trusted(seedRoot, "seed root");
                if (set.Root.Version != 1) throw new RepositoryException(400, $"the seed root must be version 1, got {set.Root.Version}");
                await tx.InsertRootAsync(1, seedRoot);
                await tx.AuditAsync("server", "root.seed", "1.root.json", Json(new { keyIds = set.Root.Keys.Keys }));
                latest = seedRoot;
            }
            CheckOnlineKeys(MetadataReader.Read<RootMetadata>(latest).Signed);
            if (await tx.LatestSnapshotAsync() is null) await IssueAsync(tx, newSnapshot: true, "server");
            return 0;
        }, cancellationToken);
    }

    /// <summary>Verifies and publishes a signed release (targets metadata).</summary>
    public async Task<PublishResult> PublishReleaseAsync(byte[] bytes, string actor, CancellationToken cancellationToken = default)
    {
        Envelope env;
        TargetsMetadata targets;
        try { (env, targets) = MetadataReader.Read<TargetsMetadata>(bytes); }
        catch (TrustException e) { throw new RepositoryException(400, $"not a release: {e.Message}"); }
        if (targets.Targets.Count == 0) throw new RepositoryException(400, "the release lists no targets");
        var models = targets.Targets.Select(t => t.Value.Model ?? throw new RepositoryException(400, $"target {t.Key} has no model fields")).ToList();
        var first = models[0];
        if (models.Any(m => m.Model != first.Model || m.Version != first.Version))
            throw new RepositoryException(400, "every target of a release must have the same model and version");
        foreach (var path in targets.Targets.Keys)
            if (!path.StartsWith($"{first.Model}/{first.Version}/", StringComparison.Ordinal))
                throw new RepositoryException(400, $"target path {path} must start with {first.Model}/{first.Version}/");
        if (targets.IsExpired(time.GetUtcNow())) throw new RepositoryException(422, $"the release expired at {targets.Expires:u}");
        foreach (var (path, f) in targets.Targets)
        {
            var len = blobs.LengthOf(f.Sha256);
            if (len is null) throw new RepositoryException(422, $"blob {f.Sha256} of {path} has not been uploaded (PUT /api/v1/blobs/{f.Sha256})");
            if (len != f.Length) throw new RepositoryException(422, $"blob {f.Sha256} has {len} bytes, {path} declares {f.Length}");
        }
        var name = TargetsNames.Release(first.Model, first.Version);

        var result = await store.InTransactionAsync(async tx =>
        {
            var root = MetadataReader.Read<RootMetadata>((await tx.LatestRootAsync())!).Signed;
            try { env.VerifyThreshold(root, Roles.Targets); }
            catch (SignatureThresholdException e) { throw new RepositoryException(422, e.Message); }
            var current = await tx.CurrentReleasesAsync();
            if (current.TryGetValue(name, out var existing) && existing.Revision >= targets.Version)
                throw new RepositoryException(409, $"{name} revision {existing.Revision} is already published; re-pack with --revision {existing.Revision + 1}");
            await tx.InsertReleaseAsync(new ReleaseRow(name, targets.Version, first.Model, first.Version, bytes, actor, time.GetUtcNow()));
            var (snap, ts) = await IssueAsync(tx, newSnapshot: true, actor);
            await tx.AuditAsync(actor, "release.publish", name, Json(new
            {
                revision = targets.Version,
                targets = targets.Targets.ToDictionary(t => t.Key, t => new { t.Value.Length, t.Value.Sha256 }),
                snapshot = snap, timestamp = ts,
            }));
            return new PublishResult(name, first.Model, first.Version, targets.Version, snap, ts, targets.Targets.Keys.ToList());
        }, cancellationToken);
        Invalidate();
        return result;
    }

    /// <summary>Adds root version N+1 (signed by the thresholds of the old and the new root).</summary>
    public async Task<long> PublishRootAsync(byte[] bytes, string actor, CancellationToken cancellationToken = default)
    {
        var version = await store.InTransactionAsync(async tx =>
        {
            var set = Trusted((await tx.LatestRootAsync())!, "stored root");
            try { set.UpdateRoot(bytes); }
            catch (TrustException e) { throw new RepositoryException(422, e.Message); }
            CheckOnlineKeys(set.Root);
            await tx.InsertRootAsync(set.Root.Version, bytes);
            // Fresh snapshot and timestamp under the (possibly new) online keys.
            var (snap, ts) = await IssueAsync(tx, newSnapshot: true, actor);
            await tx.AuditAsync(actor, "root.publish", $"{set.Root.Version}.root.json", Json(new { snapshot = snap, timestamp = ts }));
            return set.Root.Version;
        }, cancellationToken);
        Invalidate();
        return version;
    }

    /// <summary>Re-signs the timestamp (and the snapshot) when less than half of its lifetime is left. Returns true when it did.</summary>
    public async Task<bool> RefreshAsync(CancellationToken cancellationToken = default)
    {
        var now = time.GetUtcNow();
        var done = await store.InTransactionAsync(async tx =>
        {
            var snap = await tx.LatestSnapshotAsync();
            var ts = await tx.LatestTimestampAsync();
            bool snapStale = snap is null || snap.Expires - now < options.SnapshotLifetime / 2;
            bool tsStale = ts is null || ts.Expires - now < options.TimestampLifetime / 2;
            if (!snapStale && !tsStale) return false;
            var (s, t) = await IssueAsync(tx, snapStale, "server");
            await tx.AuditAsync("server", "timestamp.refresh", "timestamp.json", Json(new { snapshot = s, timestamp = t, newSnapshot = snapStale }));
            return true;
        }, cancellationToken);
        if (done) Invalidate();
        return done;
    }

    /// <summary>The current timestamp bytes and ETag, served from memory for <see cref="ServerOptions.TimestampCache"/>.</summary>
    public async Task<(byte[] Bytes, string ETag, long SnapshotVersion)> GetTimestampAsync(CancellationToken cancellationToken = default)
    {
        var c = _timestamp;
        var now = time.GetUtcNow();
        if (c is null || now - c.FetchedAt > options.TimestampCache)
        {
            var row = await store.GetTimestampAsync(cancellationToken) ?? throw new RepositoryException(503, "the repository has no timestamp yet");
            var ts = MetadataReader.Read<TimestampMetadata>(row.Bytes).Signed;
            c = new CachedTimestamp(row.Bytes, $"\"{Convert.ToHexStringLower(SHA256.HashData(row.Bytes))[..32]}\"", row.Version, ts.Snapshot.Version, now);
            _timestamp = c;
        }
        return (c.Bytes, c.ETag, c.SnapshotVersion);
    }

    /// <summary>Metadata by repository path (<c>timestamp.json</c>, <c>N.root.json</c>, <c>N.snapshot.json</c>, <c>releases/M/N.V.json</c>).</summary>
    public async Task<byte[]?> GetMetadataAsync(string path, CancellationToken cancellationToken = default)
    {
        if (path == "timestamp.json") return (await GetTimestampAsync(cancellationToken)).Bytes;
        if (path == "root.json") return await store.GetRootAsync(await store.GetLatestRootVersionAsync(cancellationToken), cancellationToken);
        int slash = path.LastIndexOf('/');
        var file = path[(slash + 1)..];
        int dot = file.IndexOf('.');
        if (dot <= 0 || !long.TryParse(file[..dot], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var version)) return null;
        var rest = file[(dot + 1)..];
        if (slash < 0)
            return rest switch
            {
                "root.json" => await store.GetRootAsync(version, cancellationToken),
                "snapshot.json" => await store.GetSnapshotAsync(version, cancellationToken),
                _ => null,
            };
        var name = path[..(slash + 1)] + rest;
        return TargetsNames.ModelOf(name) is null ? null : await store.GetReleaseAsync(name, version, cancellationToken);
    }

    /// <summary>The newest revision of every release of <paramref name="model"/> (cached per snapshot version).</summary>
    public async Task<IReadOnlyList<TargetsMetadata>> ReleasesOfAsync(string model, CancellationToken cancellationToken = default)
    {
        var (_, _, snapshot) = await GetTimestampAsync(cancellationToken);
        lock (_releaseCache)
            if (_releaseCache.TryGetValue(model, out var c) && c.Snapshot == snapshot) return c.Releases;
        var rows = await store.ListReleasesAsync(model, cancellationToken);
        var list = rows.Select(r => MetadataReader.Read<TargetsMetadata>(r.Bytes).Signed).ToList();
        lock (_releaseCache) _releaseCache[model] = (snapshot, list);
        return list;
    }

    /// <summary>Registers a token (hash only) with a role.</summary>
    public Task CreateTokenAsync(string token, string name, string role, string actor, CancellationToken cancellationToken = default) =>
        store.InTransactionAsync(async tx =>
        {
            await tx.UpsertTokenAsync(new TokenRow(TokenAuth.Hash(token), name, role, time.GetUtcNow()));
            await tx.AuditAsync(actor, "token.create", name, Json(new { role }));
            return 0;
        }, cancellationToken);

    private void Invalidate() => _timestamp = null;

    private async Task<(long Snapshot, long Timestamp)> IssueAsync(IDeliveryTransaction tx, bool newSnapshot, string actor)
    {
        var now = time.GetUtcNow();
        var snap = await tx.LatestSnapshotAsync();
        if (newSnapshot || snap is null)
        {
            var releases = await tx.CurrentReleasesAsync();
            var meta = new SnapshotMetadata
            {
                Version = (snap?.Version ?? 0) + 1,
                Expires = Trim(now + options.SnapshotLifetime),
                Meta = releases.ToDictionary(r => r.Key, r => MetaFile.Of(r.Value.Revision, r.Value.Bytes)),
            };
            snap = new MetadataRow(meta.Version, meta.Sign(snapshotKey), meta.Expires);
            await tx.InsertSnapshotAsync(snap);
        }
        var last = await tx.LatestTimestampAsync();
        var ts = new TimestampMetadata
        {
            Version = (last?.Version ?? 0) + 1,
            Expires = Trim(now + options.TimestampLifetime),
            Snapshot = MetaFile.Of(snap.Version, snap.Bytes),
        };
        await tx.InsertTimestampAsync(new MetadataRow(ts.Version, ts.Sign(timestampKey), ts.Expires));
        _ = actor;
        return (snap.Version, ts.Version);
    }

    private static DateTimeOffset Trim(DateTimeOffset t) => new(t.Ticks - t.Ticks % TimeSpan.TicksPerSecond, TimeSpan.Zero);

    private TrustedMetadataSet Trusted(byte[] root, string what)
    {
        try { return new TrustedMetadataSet(root, time.GetUtcNow()); }
        catch (TrustException e) { throw new RepositoryException(422, $"{what}: {e.Message}"); }
    }

    private void CheckOnlineKeys(RootMetadata root)
    {
        if (!root.GetRole(Roles.Snapshot).KeyIds.Contains(snapshotKey.KeyId))
            throw new RepositoryException(409, $"the server's snapshot key {snapshotKey.KeyId[..12]} is not a snapshot key of root version {root.Version}");
        if (!root.GetRole(Roles.Timestamp).KeyIds.Contains(timestampKey.KeyId))
            throw new RepositoryException(409, $"the server's timestamp key {timestampKey.KeyId[..12]} is not a timestamp key of root version {root.Version}");
        if (root.GetRole(Roles.Snapshot).Threshold > 1 || root.GetRole(Roles.Timestamp).Threshold > 1)
            throw new RepositoryException(409, "snapshot and timestamp thresholds above 1 are not supported by one server key each");
    }

    private static string Json(object o) => JsonSerializer.Serialize(o, JsonSerializerOptions.Web);
}
