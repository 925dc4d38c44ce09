namespace OnDevice.Delivery.Tests;

/// <summary>Attack: a release file whose expiry has passed.</summary>
public class FreezeTargetsTests
{
    [Fact]
    public async Task Expired_release_file_is_rejected()
    {
        var repo = new RepositorySimulator { TargetsLifetime = TimeSpan.FromHours(1) };
        repo.AddRelease("m", "1.0", ("int8", Fixture.ModelA, 0));
        repo.Time.Now += TimeSpan.FromHours(2);
        repo.PublishSnapshot();
        var e = await Assert.ThrowsAsync<ExpiredMetadataException>(() => Fixture.Update(repo, new MemoryTrustStore()));
        Assert.StartsWith(Roles.Targets, e.Role);
    }
}
