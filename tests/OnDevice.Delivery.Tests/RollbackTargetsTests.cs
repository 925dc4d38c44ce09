namespace OnDevice.Delivery.Tests;

/// <summary>Attack: an older version of a release (targets) file replaces the newer one.</summary>
public class RollbackTargetsTests
{
    [Fact]
    public async Task Snapshot_listing_an_older_release_version_is_rejected()
    {
        var (repo, store, _) = await Fixture.UpdatedClient();
        var name = TargetsNames.Release("m", "1.0");
        var v1 = repo.Releases[name];
        repo.AddRelease("m", "1.0", ("int8", Fixture.ModelB, 0)); // re-signed release, version 2
        var set = await Fixture.Update(repo, store);
        Assert.Equal(2, set.Targets[name].Version);
        repo.Releases[name] = v1;
        repo.PublishSnapshot();
        var e = await Assert.ThrowsAsync<RollbackException>(() => Fixture.Update(repo, store));
        Assert.Equal(name, e.Role);
        Assert.Equal(2, e.TrustedVersion);
        Assert.Equal(1, e.OfferedVersion);
    }

    [Fact]
    public async Task Old_release_file_served_for_the_new_version_is_rejected_without_hashes()
    {
        var repo = new RepositorySimulator { SnapshotHashes = false };
        var name = repo.AddRelease("m", "1.0", ("int8", Fixture.ModelA, 0));
        var v1 = repo.Releases[name].Bytes;
        repo.AddRelease("m", "1.0", ("int8", Fixture.ModelB, 0));
        repo.Overrides[TrustUpdater.ConsistentPath(name, 2)] = v1;
        var e = await Assert.ThrowsAsync<MixAndMatchException>(() => Fixture.Update(repo, new MemoryTrustStore()));
        Assert.Contains("version 1", e.Message);
    }
}
