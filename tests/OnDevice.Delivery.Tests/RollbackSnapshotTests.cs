namespace OnDevice.Delivery.Tests;

/// <summary>Attack: a timestamp or snapshot that goes back to an older snapshot or older release files.</summary>
public class RollbackSnapshotTests
{
    [Fact]
    public async Task Timestamp_naming_an_older_snapshot_is_rejected()
    {
        var (repo, store, set) = await Fixture.UpdatedClient();
        var ts = new TimestampMetadata { Version = set.Timestamp!.Version + 1, Expires = repo.Time.Now.AddDays(1), Snapshot = new MetaFile(set.Timestamp.Snapshot.Version - 1) };
        repo.Overrides["timestamp.json"] = ts.Sign(repo.Keys[Roles.Timestamp]);
        var e = await Assert.ThrowsAsync<RollbackException>(() => Fixture.Update(repo, store));
        Assert.Equal(Roles.Snapshot, e.Role);
    }

    [Fact]
    public async Task Snapshot_that_drops_a_release_is_rejected()
    {
        var (repo, store, _) = await Fixture.UpdatedClient();
        repo.Releases.Clear();
        repo.PublishSnapshot();
        var e = await Assert.ThrowsAsync<RollbackException>(() => Fixture.Update(repo, store));
        Assert.Contains("dropped", e.Message);
    }

    [Fact]
    public async Task Rejected_snapshot_leaves_the_trusted_state_unchanged()
    {
        var (repo, store, _) = await Fixture.UpdatedClient();
        var trustedSnapshot = store.Load("snapshot.json");
        repo.Releases.Clear();
        repo.PublishSnapshot();
        await Assert.ThrowsAsync<RollbackException>(() => Fixture.Update(repo, store));
        Assert.Equal(trustedSnapshot, store.Load("snapshot.json"));
    }
}
