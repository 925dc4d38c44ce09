namespace OnDevice.Delivery;

/// <summary>Upper bounds on metadata sizes; a fetch reads at most this many bytes (plus one to detect excess).</summary>
public sealed record SizeLimits
{
    /// <summary>Default limits.</summary>
    public static readonly SizeLimits Default = new();

    /// <summary>Root metadata (each version in the chain).</summary>
    public long MaxRootBytes { get; init; } = 512_000;
    /// <summary>Timestamp metadata (16 KiB).</summary>
    public long MaxTimestampBytes { get; init; } = 16_384;
    /// <summary>Snapshot metadata when the timestamp does not give its length.</summary>
    public long MaxSnapshotBytes { get; init; } = 2_000_000;
    /// <summary>Each targets (release) metadata file when the snapshot does not give its length.</summary>
    public long MaxTargetsBytes { get; init; } = 5_000_000;
    /// <summary>Most root versions followed in one update.</summary>
    public int MaxRootRotations { get; init; } = 32;

    /// <summary>The limit for a role.</summary>
    public long For(string role) => role switch
    {
        Roles.Root => MaxRootBytes,
        Roles.Timestamp => MaxTimestampBytes,
        Roles.Snapshot => MaxSnapshotBytes,
        _ => MaxTargetsBytes,
    };

    /// <summary>The name of the limit that applies to a role (for messages).</summary>
    public static string NameOf(string role) => role switch
    {
        Roles.Root => "maxRootBytes",
        Roles.Timestamp => "maxTimestampBytes",
        Roles.Snapshot => "maxSnapshotBytes",
        _ => "maxTargetsBytes",
    };
}

/// <summary>The four top-level TUF role names.</summary>
public static class Roles
{
    /// <summary>Root: keys and thresholds of every role.</summary>
    public const string Root = "root";
    /// <summary>Targets: the releases (signed offline by the publisher).</summary>
    public const string Targets = "targets";
    /// <summary>Snapshot: the versions of every targets file (online key).</summary>
    public const string Snapshot = "snapshot";
    /// <summary>Timestamp: the current snapshot (online key, short expiry).</summary>
    public const string Timestamp = "timestamp";

    /// <summary>All four.</summary>
    public static readonly IReadOnlyList<string> All = [Root, Targets, Snapshot, Timestamp];
}
