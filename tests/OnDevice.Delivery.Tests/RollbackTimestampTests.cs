namespace OnDevice.Delivery.Tests;

/// <summary>Attack: the server replays an older timestamp to hide newer releases.</summary>
public class RollbackTimestampTests
{
    [Fact]
    public async Task Older_timestamp_version_is_rejected()
    {
        var (repo, store, _) = await Fixture.UpdatedClient();
        var old = repo.TimestampBytes;
        repo.AddRelease("m", "2.0", ("int8", Fixture.ModelB, 0));
        await Fixture.Update(repo, store);
        repo.Overrides["timestamp.json"] = old;
        var e = await Assert.ThrowsAsync<RollbackException>(() => Fixture.Update(repo, store));
        Assert.Equal(Roles.Timestamp, e.Role);
        Assert.True(e.OfferedVersion < e.TrustedVersion);
    }

    [Fact]
    public async Task Same_version_with_different_content_is_rejected()
    {
        var (repo, store, set) = await Fixture.UpdatedClient();
        // Same version number, re-signed with a different snapshot reference.
        var forged = new TimestampMetadata { Version = set.Timestamp!.Version, Expires = set.Timestamp.Expires.AddHours(1), Snapshot = set.Timestamp.Snapshot };
        repo.Overrides["timestamp.json"] = forged.Sign(repo.Keys[Roles.Timestamp]);
        await Assert.ThrowsAsync<RollbackException>(() => Fixture.Update(repo, store));
    }

    [Fact]
    public async Task Same_timestamp_again_is_no_change_and_keeps_working()
    {
        var (repo, store, _) = await Fixture.UpdatedClient();
        var set = await Fixture.Update(repo, store);
        Assert.Single(set.Targets);
        Assert.DoesNotContain(repo.Fetched.Skip(repo.Fetched.LastIndexOf("timestamp.json") + 1), p => p.EndsWith("snapshot.json"));
    }
}
