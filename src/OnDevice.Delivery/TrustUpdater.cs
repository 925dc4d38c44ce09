namespace OnDevice.Delivery;

/// <summary>Where metadata comes from (HTTP in the client, memory in tests).</summary>
public interface IMetadataSource
{
    /// <summary>
    /// Fetches a metadata file by repository path (e.g. <c>2.root.json</c>, <c>timestamp.json</c>), reading at most
    /// <paramref name="maxBytes"/> + 1 bytes so an oversized file is detected without reading it all. Null when the
    /// file does not exist.
    /// </summary>
    Task<byte[]?> FetchAsync(string path, long maxBytes, CancellationToken cancellationToken);
}

/// <summary>Where verified metadata is kept between updates (a directory in the client, memory in tests).</summary>
public interface ITrustStore
{
    /// <summary>The stored bytes of <paramref name="name"/>, or null.</summary>
    byte[]? Load(string name);

    /// <summary>Stores verified bytes (atomically).</summary>
    void Save(string name, byte[] bytes);

    /// <summary>Removes a stored file if present.</summary>
    void Delete(string name);
}

/// <summary>An in-memory <see cref="ITrustStore"/>.</summary>
public sealed class MemoryTrustStore : ITrustStore
{
    private readonly Dictionary<string, byte[]> _files = new(StringComparer.Ordinal);

    /// <inheritdoc/>
    public byte[]? Load(string name) { lock (_files) return _files.GetValueOrDefault(name); }

    /// <inheritdoc/>
    public void Save(string name, byte[] bytes) { lock (_files) _files[name] = bytes; }

    /// <inheritdoc/>
    public void Delete(string name) { lock (_files) _files.Remove(name); }
}

/// <summary>
/// The TUF client workflow over a metadata source and a local trust store: root chain, timestamp, snapshot, then
/// the release files of one model. Everything fetched is verified by <see cref="TrustedMetadataSet"/> before it is
/// stored; the reference time is taken once, when <see cref="RefreshAsync"/> starts.
/// </summary>
public sealed class TrustUpdater(IMetadataSource source, ITrustStore store, ReadOnlyMemory<byte> bundledRoot, SizeLimits? limits = null, TimeProvider? time = null)
{
    /// <summary>Store name of the newest trusted root.</summary>
    public const string RootName = "root.json";
    private readonly SizeLimits _limits = limits ?? SizeLimits.Default;
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    /// <summary>
    /// Updates root, timestamp and snapshot. Returns the trusted set, ready for <see cref="LoadReleasesAsync"/>.
    /// </summary>
    public async Task<TrustedMetadataSet> RefreshAsync(CancellationToken cancellationToken = default)
    {
        var referenceTime = _time.GetUtcNow();
        var rootBytes = store.Load(RootName);
        TrustedMetadataSet set;
        if (rootBytes is null)
        {
            set = new TrustedMetadataSet(bundledRoot.Span, referenceTime, _limits);
        }
        else
        {
            set = new TrustedMetadataSet(rootBytes, referenceTime, _limits);
            // A cached root older than the bundled one (app update) yields to the bundled chain.
            var bundled = new TrustedMetadataSet(bundledRoot.Span, referenceTime, _limits);
            if (bundled.Root.Version > set.Root.Version) set = bundled;
        }

        for (int i = 0; i < _limits.MaxRootRotations; i++)
        {
            var next = await source.FetchAsync($"{set.Root.Version + 1}.root.json", _limits.MaxRootBytes, cancellationToken).ConfigureAwait(false);
            if (next is null) break;
            set.UpdateRoot(next);
            store.Save(RootName, set.RootBytes);
        }

        if (set.OnlineKeysRotated)
        {
            // Recovery from a fast-forward attack: versions signed by the old online keys are no longer a reference.
            store.Delete(Roles.Timestamp + ".json");
            store.Delete(Roles.Snapshot + ".json");
        }

        if (store.Load("timestamp.json") is { } localTs)
        {
            try { set.UpdateTimestamp(localTs, isLocal: true); }
            catch (TrustException) { store.Delete("timestamp.json"); }
        }
        var ts = await source.FetchAsync("timestamp.json", _limits.MaxTimestampBytes, cancellationToken).ConfigureAwait(false)
            ?? throw new TrustStateException("the repository has no timestamp.json");
        if (set.UpdateTimestamp(ts)) store.Save("timestamp.json", set.TimestampBytes!);

        var snapshotMeta = set.Timestamp!.Snapshot;
        if (store.Load("snapshot.json") is { } localSnap)
        {
            try { set.UpdateSnapshot(localSnap, isLocal: true); }
            catch (TrustException) { store.Delete("snapshot.json"); }
        }
        bool current = set.Snapshot is { } s && s.Version == snapshotMeta.Version && MatchesMeta(snapshotMeta, set.SnapshotBytes!);
        if (current)
        {
            if (set.Snapshot!.IsExpired(referenceTime)) throw new ExpiredMetadataException(Roles.Snapshot, set.Snapshot.Expires, referenceTime);
        }
        else
        {
            var path = set.Root.ConsistentSnapshot ? $"{snapshotMeta.Version}.snapshot.json" : "snapshot.json";
            var snap = await source.FetchAsync(path, set.MaxBytes(Roles.Snapshot), cancellationToken).ConfigureAwait(false)
                ?? throw new TrustStateException($"the repository has no {path}");
            set.UpdateSnapshot(snap);
            store.Save("snapshot.json", set.SnapshotBytes!);
        }
        return set;
    }

    /// <summary>Verifies and returns every release file the snapshot lists for <paramref name="model"/>.</summary>
    public async Task<IReadOnlyList<TargetsMetadata>> LoadReleasesAsync(TrustedMetadataSet set, string model, CancellationToken cancellationToken = default)
    {
        var result = new List<TargetsMetadata>();
        foreach (var (name, meta) in set.Snapshot!.Meta.Where(m => TargetsNames.ModelOf(m.Key) == model).OrderBy(m => m.Key, StringComparer.Ordinal))
            result.Add(await LoadTargetsAsync(set, name, cancellationToken).ConfigureAwait(false));
        return result;
    }

    /// <summary>Verifies one targets file, from the store when the stored copy is the current version.</summary>
    public async Task<TargetsMetadata> LoadTargetsAsync(TrustedMetadataSet set, string name, CancellationToken cancellationToken = default)
    {
        if (set.Targets.TryGetValue(name, out var t)) return t;
        var meta = set.Snapshot!.Meta[name];
        if (store.Load(name) is { } local)
        {
            try { return set.UpdateTargets(name, local); }
            catch (TrustException) { store.Delete(name); }
        }
        var path = set.Root.ConsistentSnapshot ? ConsistentPath(name, meta.Version) : name;
        var bytes = await source.FetchAsync(path, set.MaxBytes(Roles.Targets, name), cancellationToken).ConfigureAwait(false)
            ?? throw new TrustStateException($"the repository has no {path}");
        var verified = set.UpdateTargets(name, bytes);
        store.Save(name, bytes);
        return verified;
    }

    /// <summary><c>dir/VERSION.file</c> for a metadata name <c>dir/file</c>.</summary>
    public static string ConsistentPath(string name, long version)
    {
        int slash = name.LastIndexOf('/');
        return slash < 0 ? $"{version}.{name}" : $"{name[..(slash + 1)]}{version}.{name[(slash + 1)..]}";
    }

    private static bool MatchesMeta(MetaFile meta, byte[] bytes)
    {
        try { meta.Check("snapshot", bytes); return true; }
        catch (MixAndMatchException) { return false; }
    }
}
