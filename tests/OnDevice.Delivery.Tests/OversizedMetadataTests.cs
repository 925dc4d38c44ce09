using System.Text;

namespace OnDevice.Delivery.Tests;

/// <summary>Attack: metadata larger than its named limit (to exhaust memory or disk); reading stops at the limit.</summary>
public class OversizedMetadataTests
{
    [Fact]
    public void Named_limits_have_the_documented_values()
    {
        var l = SizeLimits.Default;
        Assert.Equal(512_000, l.MaxRootBytes);
        Assert.Equal(16_384, l.MaxTimestampBytes);
        Assert.Equal(2_000_000, l.MaxSnapshotBytes);
        Assert.Equal(5_000_000, l.MaxTargetsBytes);
    }

    [Fact]
    public async Task Oversized_timestamp_is_rejected_after_reading_at_most_the_limit()
    {
        var repo = new RepositorySimulator();
        repo.Overrides["timestamp.json"] = Encoding.UTF8.GetBytes(new string(' ', 100_000) + "{}");
        var e = await Assert.ThrowsAsync<MetadataTooLargeException>(() => Fixture.Update(repo, new MemoryTrustStore()));
        Assert.Equal(Roles.Timestamp, e.Role);
        Assert.Contains("maxTimestampBytes", e.Message);
    }

    [Fact]
    public async Task Oversized_root_is_rejected()
    {
        var repo = new RepositorySimulator();
        repo.Overrides["2.root.json"] = new byte[600_000];
        var e = await Assert.ThrowsAsync<MetadataTooLargeException>(() => Fixture.Update(repo, new MemoryTrustStore()));
        Assert.Equal(Roles.Root, e.Role);
    }

    [Fact]
    public async Task Snapshot_longer_than_the_timestamp_declares_is_rejected()
    {
        var repo = new RepositorySimulator();
        repo.AddRelease("m", "1.0", ("int8", Fixture.ModelA, 0));
        var real = repo.Snapshots[repo.SnapshotVersion];
        repo.Overrides[$"{repo.SnapshotVersion}.snapshot.json"] = real.Concat(new byte[50_000]).ToArray();
        await Assert.ThrowsAsync<MixAndMatchException>(() => Fixture.Update(repo, new MemoryTrustStore()));
    }

    [Fact]
    public async Task Smaller_configured_limit_applies_to_release_files()
    {
        var repo = new RepositorySimulator { SnapshotHashes = false };
        repo.AddRelease("m", "1.0", ("int8", Fixture.ModelA, 0));
        var client = repo.Client(new MemoryTrustStore(), SizeLimits.Default with { MaxTargetsBytes = 200 });
        var set = await client.RefreshAsync();
        var e = await Assert.ThrowsAsync<MetadataTooLargeException>(() => client.LoadReleasesAsync(set, "m"));
        Assert.Contains("maxTargetsBytes", e.Message);
    }
}
