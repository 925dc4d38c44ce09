namespace OnDevice.Delivery.Tests;

/// <summary>Attack: the newest root available has expired (the repository is frozen at an old root).</summary>
public class FreezeRootTests
{
    [Fact]
    public async Task Expired_final_root_is_rejected()
    {
        var repo = new RepositorySimulator(rootLifetime: TimeSpan.FromDays(3));
        repo.AddRelease("m", "1.0", ("int8", Fixture.ModelA, 0));
        repo.Time.Now += TimeSpan.FromDays(4);
        repo.PublishSnapshot();
        var e = await Assert.ThrowsAsync<ExpiredMetadataException>(() => Fixture.Update(repo, new MemoryTrustStore()));
        Assert.Equal(Roles.Root, e.Role);
    }

    [Fact]
    public async Task Expired_intermediate_root_is_fine_when_a_newer_one_is_valid()
    {
        var repo = new RepositorySimulator(rootLifetime: TimeSpan.FromDays(3));
        repo.AddRelease("m", "1.0", ("int8", Fixture.ModelA, 0));
        repo.Time.Now += TimeSpan.FromDays(4);
        repo.PublishRoot();
        repo.PublishSnapshot();
        var set = await Fixture.Update(repo, new MemoryTrustStore());
        Assert.Equal(2, set.Root.Version);
    }
}
