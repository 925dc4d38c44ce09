namespace OnDevice.Delivery.Tests;

/// <summary>Attack: a fresh timestamp pointing at an expired snapshot.</summary>
public class FreezeSnapshotTests
{
    [Fact]
    public async Task Expired_snapshot_is_rejected_even_with_a_fresh_timestamp()
    {
        var repo = new RepositorySimulator { SnapshotLifetime = TimeSpan.FromHours(1) };
        repo.AddRelease("m", "1.0", ("int8", Fixture.ModelA, 0));
        repo.Time.Now += TimeSpan.FromHours(2);
        repo.PublishTimestamp(); // fresh timestamp, same (expired) snapshot
        var e = await Assert.ThrowsAsync<ExpiredMetadataException>(() => Fixture.Update(repo, new MemoryTrustStore()));
        Assert.Equal(Roles.Snapshot, e.Role);
    }

    [Fact]
    public async Task Cached_snapshot_that_expired_is_not_used()
    {
        var repo = new RepositorySimulator { SnapshotLifetime = TimeSpan.FromHours(1) };
        repo.AddRelease("m", "1.0", ("int8", Fixture.ModelA, 0));
        var store = new MemoryTrustStore();
        await Fixture.Update(repo, store);
        repo.Time.Now += TimeSpan.FromHours(2);
        repo.PublishTimestamp();
        var e = await Assert.ThrowsAsync<ExpiredMetadataException>(() => Fixture.Update(repo, store));
        Assert.Equal(Roles.Snapshot, e.Role);
    }
}
