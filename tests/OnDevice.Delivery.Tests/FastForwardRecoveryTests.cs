namespace OnDevice.Delivery.Tests;

/// <summary>
/// Attack: a stolen timestamp key signs a timestamp with a huge version (fast-forward), so the real one looks like a
/// rollback forever. Recovery: the repository rotates the timestamp key in a new root; clients then drop the
/// poisoned timestamp and accept the real one.
/// </summary>
public class FastForwardRecoveryTests
{
    private static async Task<(RepositorySimulator, MemoryTrustStore)> Poisoned()
    {
        var (repo, store, set) = await Fixture.UpdatedClient();
        var evil = new TimestampMetadata { Version = 1_000_000, Expires = repo.Time.Now.AddDays(1), Snapshot = set.Timestamp!.Snapshot };
        repo.Overrides["timestamp.json"] = evil.Sign(repo.Keys[Roles.Timestamp]);
        await Fixture.Update(repo, store);
        repo.Overrides.Remove("timestamp.json");
        repo.AddRelease("m", "2.0", ("int8", Fixture.ModelB, 0));
        return (repo, store);
    }

    [Fact]
    public async Task Without_key_rotation_the_real_timestamp_looks_like_a_rollback()
    {
        var (repo, store) = await Poisoned();
        await Assert.ThrowsAsync<RollbackException>(() => Fixture.Update(repo, store));
    }

    [Fact]
    public async Task Rotating_the_timestamp_key_recovers()
    {
        var (repo, store) = await Poisoned();
        repo.Keys[Roles.Timestamp] = [SigningKey.Generate()];
        repo.PublishRoot();
        repo.PublishTimestamp();
        var set = await Fixture.Update(repo, store);
        Assert.Equal(2, set.Root.Version);
        Assert.True(set.Timestamp!.Version < 1_000_000);
        Assert.Equal(2, set.Targets.Count);
    }

    [Fact]
    public async Task Rotating_the_snapshot_key_recovers_from_a_fast_forwarded_snapshot()
    {
        var (repo, store, set) = await Fixture.UpdatedClient();
        var evilSnap = new SnapshotMetadata { Version = 500_000, Expires = repo.Time.Now.AddDays(1), Meta = repo.Releases.ToDictionary(r => r.Key, r => MetaFile.Of(r.Value.Meta.Version, r.Value.Bytes)) };
        var evilSnapBytes = evilSnap.Sign(repo.Keys[Roles.Snapshot]);
        var evilTs = new TimestampMetadata { Version = set.Timestamp!.Version + 1, Expires = repo.Time.Now.AddDays(1), Snapshot = MetaFile.Of(500_000, evilSnapBytes) };
        repo.Overrides["timestamp.json"] = evilTs.Sign(repo.Keys[Roles.Timestamp]);
        repo.Overrides["500000.snapshot.json"] = evilSnapBytes;
        await Fixture.Update(repo, store);
        repo.Overrides.Clear();
        repo.PublishTimestamp();
        await Assert.ThrowsAnyAsync<TrustException>(() => Fixture.Update(repo, store));

        repo.Keys[Roles.Snapshot] = [SigningKey.Generate()];
        repo.PublishRoot();
        repo.PublishSnapshot();
        var recovered = await Fixture.Update(repo, store);
        Assert.True(recovered.Snapshot!.Version < 500_000);
    }
}
