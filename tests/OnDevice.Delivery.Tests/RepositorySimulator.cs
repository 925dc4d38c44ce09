using System.Security.Cryptography;
using OnDevice.Delivery;

namespace OnDevice.Delivery.Tests;

/// <summary>A clock the test moves by hand.</summary>
public sealed class ManualTime(DateTimeOffset now) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = now;
    public override DateTimeOffset GetUtcNow() => Now;
}

/// <summary>
/// An in-memory TUF repository: role keys, the root chain, release (targets) files, snapshot and timestamp, and
/// the target blobs. Serves metadata as <see cref="IMetadataSource"/>; tests replace served bytes to attack.
/// </summary>
public sealed class RepositorySimulator : IMetadataSource
{
    public static readonly DateTimeOffset Start = new(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public Dictionary<string, List<SigningKey>> Keys { get; } = new();
    public Dictionary<string, int> Thresholds { get; } = new() { [Roles.Root] = 1, [Roles.Targets] = 1, [Roles.Snapshot] = 1, [Roles.Timestamp] = 1 };
    public List<byte[]> RootChain { get; } = [];
    public Dictionary<string, (TargetsMetadata Meta, byte[] Bytes)> Releases { get; } = new(StringComparer.Ordinal);
    public Dictionary<long, byte[]> Snapshots { get; } = new();
    public byte[] TimestampBytes { get; private set; } = [];
    public long SnapshotVersion { get; private set; }
    public long TimestampVersion { get; private set; }
    public Dictionary<string, byte[]> Blobs { get; } = new(StringComparer.Ordinal);
    /// <summary>Served instead of the real file at a path (attacks).</summary>
    public Dictionary<string, byte[]> Overrides { get; } = new(StringComparer.Ordinal);
    public List<string> Fetched { get; } = [];
    public bool SnapshotHashes { get; set; } = true;
    public TimeSpan TimestampLifetime { get; set; } = TimeSpan.FromDays(1);
    public TimeSpan SnapshotLifetime { get; set; } = TimeSpan.FromDays(7);
    public TimeSpan TargetsLifetime { get; set; } = TimeSpan.FromDays(365);
    public TimeSpan RootLifetime { get; set; } = TimeSpan.FromDays(365);
    public ManualTime Time { get; } = new(Start);

    public RepositorySimulator(TimeSpan? rootLifetime = null)
    {
        if (rootLifetime is { } rl) RootLifetime = rl;
        foreach (var role in Roles.All) Keys[role] = [SigningKey.Generate()];
        PublishRoot();
        PublishSnapshot();
    }

    public byte[] TrustedRoot => RootChain[0];
    public RootMetadata CurrentRoot => MetadataReader.Read<RootMetadata>(RootChain[^1]).Signed;

    /// <summary>Builds root version N+1 from <see cref="Keys"/>/<see cref="Thresholds"/>, signed by the previous root's keys and the new ones.</summary>
    public byte[] PublishRoot(IEnumerable<SigningKey>? extraSigners = null, IEnumerable<SigningKey>? onlySigners = null)
    {
        var previousSigners = RootChain.Count == 0 ? [] : _rootSigners;
        var root = RootMetadata.Create(RootChain.Count + 1, Time.Now + RootLifetime,
            Roles.All.ToDictionary(r => r, r => ((IReadOnlyList<PublicKey>)Keys[r].Select(k => k.Public).ToList(), Thresholds[r])));
        var signers = onlySigners?.ToList() ?? previousSigners.Concat(Keys[Roles.Root]).DistinctBy(k => k.KeyId).Concat(extraSigners ?? []).ToList();
        var bytes = root.Sign(signers);
        RootChain.Add(bytes);
        _rootSigners = Keys[Roles.Root].ToList();
        return bytes;
    }

    private List<SigningKey> _rootSigners = [];

    /// <summary>Adds a release with one variant per (name, bytes) and republishes snapshot and timestamp.</summary>
    public string AddRelease(string model, string version, params (string Variant, byte[] Bytes, long MinRam)[] variants)
    {
        var targets = new Dictionary<string, TargetFile>();
        foreach (var (variant, bytes, minRam) in variants)
        {
            var path = $"{model}/{version}/{variant}/model.onnx";
            var custom = new ModelTarget { Model = model, Version = version, Variant = variant, Precision = "int8", Requirements = new DeviceRequirements { MinRamBytes = minRam } };
            targets[path] = new TargetFile(bytes.Length, Sha(bytes), custom.ToJson());
            Blobs[path] = bytes;
        }
        var name = TargetsNames.Release(model, version);
        long v = Releases.TryGetValue(name, out var old) ? old.Meta.Version + 1 : 1;
        var meta = new TargetsMetadata { Version = v, Expires = Time.Now + TargetsLifetime, Targets = targets };
        Releases[name] = (meta, meta.Sign(Keys[Roles.Targets]));
        PublishSnapshot();
        return name;
    }

    /// <summary>Signs a new snapshot of every release and a new timestamp for it.</summary>
    public void PublishSnapshot()
    {
        SnapshotVersion++;
        var snap = new SnapshotMetadata
        {
            Version = SnapshotVersion,
            Expires = Time.Now + SnapshotLifetime,
            Meta = Releases.ToDictionary(r => r.Key, r => SnapshotHashes ? MetaFile.Of(r.Value.Meta.Version, r.Value.Bytes) : new MetaFile(r.Value.Meta.Version)),
        };
        Snapshots[SnapshotVersion] = snap.Sign(Keys[Roles.Snapshot]);
        PublishTimestamp();
    }

    public void PublishTimestamp()
    {
        TimestampVersion++;
        var ts = new TimestampMetadata
        {
            Version = TimestampVersion,
            Expires = Time.Now + TimestampLifetime,
            Snapshot = SnapshotHashes ? MetaFile.Of(SnapshotVersion, Snapshots[SnapshotVersion]) : new MetaFile(SnapshotVersion),
        };
        TimestampBytes = ts.Sign(Keys[Roles.Timestamp]);
    }

    public Task<byte[]?> FetchAsync(string path, long maxBytes, CancellationToken cancellationToken)
    {
        Fetched.Add(path);
        var bytes = Serve(path);
        if (bytes is not null && bytes.Length > maxBytes + 1) bytes = bytes[..(int)(maxBytes + 1)];
        return Task.FromResult(bytes);
    }

    private byte[]? Serve(string path)
    {
        if (Overrides.TryGetValue(path, out var o)) return o;
        if (path == "timestamp.json") return TimestampBytes;
        if (path.EndsWith(".root.json", StringComparison.Ordinal) && long.TryParse(path.Split('.')[0], out var rv))
            return rv >= 1 && rv <= RootChain.Count ? RootChain[(int)rv - 1] : null;
        if (path.EndsWith(".snapshot.json", StringComparison.Ordinal) && long.TryParse(path.Split('.')[0], out var sv))
            return Snapshots.GetValueOrDefault(sv);
        foreach (var (name, (meta, bytes)) in Releases)
            if (TrustUpdater.ConsistentPath(name, meta.Version) == path) return bytes;
        return null;
    }

    public static string Sha(byte[] b) => Convert.ToHexStringLower(SHA256.HashData(b));

    public static byte[] RandomBytes(int n, int seed)
    {
        var b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }

    /// <summary>A client updater over this repository with its own store.</summary>
    public TrustUpdater Client(ITrustStore store, SizeLimits? limits = null) => new(this, store, TrustedRoot, limits, Time);
}
