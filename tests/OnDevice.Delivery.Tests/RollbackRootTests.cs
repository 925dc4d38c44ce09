namespace OnDevice.Delivery.Tests;

/// <summary>Attack: an older root offered as the next one, or a root that skips versions.</summary>
public class RollbackRootTests
{
    [Fact]
    public async Task Older_root_offered_as_next_is_rejected()
    {
        var repo = new RepositorySimulator();
        repo.AddRelease("m", "1.0", ("int8", Fixture.ModelA, 0));
        repo.PublishRoot();
        var store = new MemoryTrustStore();
        await Fixture.Update(repo, store);
        repo.Overrides["3.root.json"] = repo.RootChain[1];
        var e = await Assert.ThrowsAsync<RollbackException>(() => Fixture.Update(repo, store));
        Assert.Equal(Roles.Root, e.Role);
    }

    [Fact]
    public void Root_that_skips_a_version_is_rejected()
    {
        var repo = new RepositorySimulator();
        repo.PublishRoot();
        repo.PublishRoot();
        var set = new TrustedMetadataSet(repo.RootChain[0], repo.Time.Now);
        Assert.Throws<RootVersionException>(() => set.UpdateRoot(repo.RootChain[2]));
        Assert.Equal(1, set.Root.Version);
    }
}
