namespace OnDevice.Delivery;

/// <summary>
/// The client's trust state machine (TUF client workflow, §5): bytes in, verified metadata out. Starts from a
/// trusted root; accepts newer roots, then one timestamp, then the snapshot it names, then targets (release) files
/// the snapshot lists. Every check uses the reference time fixed when the update started. Each rejection is a
/// typed <see cref="TrustException"/>; a rejected file never changes the trusted state (except that an expired
/// timestamp or snapshot is kept as the rollback reference, as TUF requires).
/// </summary>
public sealed class TrustedMetadataSet
{
    private readonly Dictionary<string, TargetsMetadata> _targets = new(StringComparer.Ordinal);
    private readonly Dictionary<string, byte[]> _targetsBytes = new(StringComparer.Ordinal);

    /// <summary>Loads the trusted root (bundled or cached); it must be signed by a threshold of its own root keys.</summary>
    public TrustedMetadataSet(ReadOnlySpan<byte> trustedRoot, DateTimeOffset referenceTime, SizeLimits? limits = null)
    {
        ReferenceTime = referenceTime;
        Limits = limits ?? SizeLimits.Default;
        CheckSize(Roles.Root, trustedRoot.Length);
        var (env, root) = MetadataReader.Read<RootMetadata>(trustedRoot);
        env.VerifyThreshold(root, Roles.Root);
        Root = root;
        RootBytes = trustedRoot.ToArray();
        InitialRoot = root;
    }

    /// <summary>The time every expiry is checked against (fixed at the start of the update).</summary>
    public DateTimeOffset ReferenceTime { get; }

    /// <summary>Size limits applied to every file.</summary>
    public SizeLimits Limits { get; }

    /// <summary>The newest trusted root.</summary>
    public RootMetadata Root { get; private set; }

    /// <summary>Bytes of <see cref="Root"/>.</summary>
    public byte[] RootBytes { get; private set; }

    /// <summary>The root the update started from.</summary>
    public RootMetadata InitialRoot { get; }

    /// <summary>The trusted timestamp, if any.</summary>
    public TimestampMetadata? Timestamp { get; private set; }

    /// <summary>Bytes of <see cref="Timestamp"/>.</summary>
    public byte[]? TimestampBytes { get; private set; }

    /// <summary>The trusted snapshot, if any.</summary>
    public SnapshotMetadata? Snapshot { get; private set; }

    /// <summary>Bytes of <see cref="Snapshot"/>.</summary>
    public byte[]? SnapshotBytes { get; private set; }

    /// <summary>Trusted targets (release) files by name.</summary>
    public IReadOnlyDictionary<string, TargetsMetadata> Targets => _targets;

    /// <summary>Bytes of a trusted targets file.</summary>
    public byte[] TargetsBytes(string name) => _targetsBytes[name];

    /// <summary>True when the timestamp or snapshot keys changed between the initial and the final root (TUF §5.3.11).</summary>
    public bool OnlineKeysRotated =>
        !SameKeys(InitialRoot.GetRole(Roles.Timestamp), Root.GetRole(Roles.Timestamp)) ||
        !SameKeys(InitialRoot.GetRole(Roles.Snapshot), Root.GetRole(Roles.Snapshot));

    /// <summary>
    /// Accepts root version N+1: signed by a threshold of the trusted root's keys and of its own keys.
    /// Expiry of intermediate roots is not checked; the final root's is (at <see cref="UpdateTimestamp"/>).
    /// </summary>
    public RootMetadata UpdateRoot(ReadOnlySpan<byte> bytes)
    {
        if (Timestamp is not null) throw new TrustStateException("root updates must come before the timestamp");
        CheckSize(Roles.Root, bytes.Length);
        var (env, root) = MetadataReader.Read<RootMetadata>(bytes);
        env.VerifyThreshold(Root, Roles.Root);
        if (root.Version <= Root.Version) throw new RollbackException(Roles.Root, Root.Version, root.Version);
        if (root.Version != Root.Version + 1) throw new RootVersionException(Root.Version + 1, root.Version);
        env.VerifyThreshold(root, Roles.Root);
        Root = root;
        RootBytes = bytes.ToArray();
        return root;
    }

    /// <summary>
    /// Accepts a timestamp. Returns false when it has the same version as the trusted one (nothing new).
    /// </summary>
    /// <param name="bytes">The timestamp file.</param>
    /// <param name="isLocal">True when loading the locally cached copy (a reference for rollback checks).</param>
    public bool UpdateTimestamp(ReadOnlySpan<byte> bytes, bool isLocal = false)
    {
        if (Snapshot is not null) throw new TrustStateException("the timestamp must come before the snapshot");
        if (Root.IsExpired(ReferenceTime)) throw new ExpiredMetadataException(Roles.Root, Root.Expires, ReferenceTime);
        CheckSize(Roles.Timestamp, bytes.Length);
        var (env, ts) = MetadataReader.Read<TimestampMetadata>(bytes);
        env.VerifyThreshold(Root, Roles.Timestamp);
        if (Timestamp is not null)
        {
            if (ts.Version < Timestamp.Version) throw new RollbackException(Roles.Timestamp, Timestamp.Version, ts.Version);
            if (ts.Version == Timestamp.Version)
            {
                if (!bytes.SequenceEqual(TimestampBytes)) throw new RollbackException(Roles.Timestamp, Timestamp.Version, ts.Version);
                if (!isLocal && Timestamp.IsExpired(ReferenceTime)) throw new ExpiredMetadataException(Roles.Timestamp, Timestamp.Expires, ReferenceTime);
                return false;
            }
            if (ts.Snapshot.Version < Timestamp.Snapshot.Version)
                throw new RollbackException(Roles.Snapshot, Timestamp.Snapshot.Version, ts.Snapshot.Version);
        }
        // Kept even when expired, as the rollback reference (TUF 5.4.5 checks expiry last).
        Timestamp = ts;
        TimestampBytes = bytes.ToArray();
        if (!isLocal && ts.IsExpired(ReferenceTime)) throw new ExpiredMetadataException(Roles.Timestamp, ts.Expires, ReferenceTime);
        return true;
    }

    /// <summary>Accepts the snapshot the trusted timestamp names.</summary>
    /// <param name="bytes">The snapshot file.</param>
    /// <param name="isLocal">True when loading the locally cached copy: its hash is not checked against the timestamp, nor its expiry.</param>
    public SnapshotMetadata UpdateSnapshot(ReadOnlySpan<byte> bytes, bool isLocal = false)
    {
        if (Timestamp is null) throw new TrustStateException("a timestamp must be trusted before the snapshot");
        if (_targets.Count > 0) throw new TrustStateException("the snapshot must come before targets files");
        if (!isLocal && Timestamp.IsExpired(ReferenceTime)) throw new ExpiredMetadataException(Roles.Timestamp, Timestamp.Expires, ReferenceTime);
        CheckSize(Roles.Snapshot, bytes.Length, isLocal ? null : Timestamp.Snapshot.Length);
        if (!isLocal) Timestamp.Snapshot.Check("snapshot", bytes);
        var (env, snap) = MetadataReader.Read<SnapshotMetadata>(bytes);
        env.VerifyThreshold(Root, Roles.Snapshot);
        if (Snapshot is not null)
        {
            foreach (var (name, old) in Snapshot.Meta)
            {
                if (!snap.Meta.TryGetValue(name, out var now))
                    throw new RollbackException($"{name} (dropped from snapshot)", old.Version, 0);
                if (now.Version < old.Version) throw new RollbackException(name, old.Version, now.Version);
            }
        }
        if (!isLocal && snap.Version != Timestamp.Snapshot.Version)
            throw new MixAndMatchException($"snapshot version {snap.Version} differs from the version {Timestamp.Snapshot.Version} the timestamp names");
        Snapshot = snap;
        SnapshotBytes = bytes.ToArray();
        if (!isLocal && snap.IsExpired(ReferenceTime)) throw new ExpiredMetadataException(Roles.Snapshot, snap.Expires, ReferenceTime);
        return snap;
    }

    /// <summary>Accepts a targets (release) file the trusted snapshot lists, signed by the targets role.</summary>
    public TargetsMetadata UpdateTargets(string name, ReadOnlySpan<byte> bytes)
    {
        if (Snapshot is null) throw new TrustStateException("a snapshot must be trusted before targets files");
        if (Snapshot.IsExpired(ReferenceTime)) throw new ExpiredMetadataException(Roles.Snapshot, Snapshot.Expires, ReferenceTime);
        if (!Snapshot.Meta.TryGetValue(name, out var meta)) throw new TrustStateException($"targets file {name} is not listed in the trusted snapshot");
        CheckSize(Roles.Targets, bytes.Length, meta.Length);
        meta.Check(name, bytes);
        var (env, targets) = MetadataReader.Read<TargetsMetadata>(bytes);
        env.VerifyThreshold(Root, Roles.Targets);
        if (targets.Version != meta.Version)
            throw new MixAndMatchException($"{name} version {targets.Version} differs from the version {meta.Version} the snapshot names");
        if (targets.IsExpired(ReferenceTime)) throw new ExpiredMetadataException($"{Roles.Targets} ({name})", targets.Expires, ReferenceTime);
        _targets[name] = targets;
        _targetsBytes[name] = bytes.ToArray();
        return targets;
    }

    /// <summary>The most bytes to read for a file of <paramref name="role"/> (the referrer's length when it gives one).</summary>
    public long MaxBytes(string role, string? name = null) => role switch
    {
        Roles.Snapshot when Timestamp?.Snapshot.Length is { } l => Math.Min(l, Limits.MaxSnapshotBytes),
        Roles.Targets when name is not null && Snapshot?.Meta.GetValueOrDefault(name)?.Length is { } l2 => Math.Min(l2, Limits.MaxTargetsBytes),
        _ => Limits.For(role),
    };

    private void CheckSize(string role, long length, long? declared = null)
    {
        var limit = Limits.For(role);
        if (length > limit) throw new MetadataTooLargeException(role, limit);
        if (declared is { } d && length > d) throw new MixAndMatchException($"{role} has {length} bytes, more than the {d} its referrer declares");
    }

    private static bool SameKeys(RoleKeys a, RoleKeys b) => a.Threshold == b.Threshold && a.KeyIds.Order().SequenceEqual(b.KeyIds.Order());
}
