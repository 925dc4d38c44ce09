namespace OnDevice.Delivery.Tests;

/// <summary>Attack: metadata from different repository states combined (snapshot of one, timestamp or release of another).</summary>
public class MixAndMatchTests
{
    [Fact]
    public async Task Snapshot_other_than_the_one_the_timestamp_names_is_rejected()
    {
        var repo = new RepositorySimulator();
        repo.AddRelease("m", "1.0", ("int8", Fixture.ModelA, 0));
        var older = repo.Snapshots[repo.SnapshotVersion];
        repo.AddRelease("m", "2.0", ("int8", Fixture.ModelB, 0));
        repo.Overrides[$"{repo.SnapshotVersion}.snapshot.json"] = older;
        await Assert.ThrowsAsync<MixAndMatchException>(() => Fixture.Update(repo, new MemoryTrustStore()));
    }

    [Fact]
    public async Task Snapshot_version_mismatch_is_rejected_without_hashes()
    {
        var repo = new RepositorySimulator { SnapshotHashes = false };
        repo.AddRelease("m", "1.0", ("int8", Fixture.ModelA, 0));
        var older = repo.Snapshots[repo.SnapshotVersion];
        repo.AddRelease("m", "2.0", ("int8", Fixture.ModelB, 0));
        repo.Overrides[$"{repo.SnapshotVersion}.snapshot.json"] = older;
        var e = await Assert.ThrowsAsync<MixAndMatchException>(() => Fixture.Update(repo, new MemoryTrustStore()));
        Assert.Contains("timestamp names", e.Message);
    }

    [Fact]
    public async Task Release_file_from_another_state_is_rejected()
    {
        var repo = new RepositorySimulator();
        var name = repo.AddRelease("m", "1.0", ("int8", Fixture.ModelA, 0));
        var v1 = repo.Releases[name].Bytes;
        repo.AddRelease("m", "1.0", ("int8", Fixture.ModelB, 0));
        repo.Overrides[TrustUpdater.ConsistentPath(name, 2)] = v1;
        await Assert.ThrowsAsync<MixAndMatchException>(() => Fixture.Update(repo, new MemoryTrustStore()));
    }

    [Fact]
    public async Task Release_file_not_listed_in_the_snapshot_is_refused()
    {
        var (repo, _, set) = await Fixture.UpdatedClient();
        var other = new TargetsMetadata { Version = 1, Expires = repo.Time.Now.AddDays(1) };
        Assert.Throws<TrustStateException>(() => set.UpdateTargets("releases/evil/1.0.json", other.Sign(repo.Keys[Roles.Targets])));
        await Task.CompletedTask;
    }
}
