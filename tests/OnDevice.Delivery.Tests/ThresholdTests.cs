namespace OnDevice.Delivery.Tests;

/// <summary>Attack: metadata with fewer valid signatures than its role's threshold.</summary>
public class ThresholdTests
{
    [Fact]
    public async Task Release_signed_by_one_of_two_required_keys_is_rejected()
    {
        var repo = new RepositorySimulator();
        repo.Keys[Roles.Targets].Add(SigningKey.Generate());
        repo.Thresholds[Roles.Targets] = 2;
        repo.PublishRoot();
        var name = repo.AddRelease("m", "1.0", ("int8", Fixture.ModelA, 0));
        var meta = repo.Releases[name].Meta;
        repo.Releases[name] = (meta, meta.Sign(repo.Keys[Roles.Targets][0]));
        repo.PublishSnapshot();
        var e = await Assert.ThrowsAsync<SignatureThresholdException>(() => Fixture.Update(repo, new MemoryTrustStore()));
        Assert.Equal(1, e.Valid);
        Assert.Equal(2, e.Threshold);
    }

    [Fact]
    public async Task Release_signed_by_both_keys_is_accepted()
    {
        var repo = new RepositorySimulator();
        repo.Keys[Roles.Targets].Add(SigningKey.Generate());
        repo.Thresholds[Roles.Targets] = 2;
        repo.PublishRoot();
        repo.AddRelease("m", "1.0", ("int8", Fixture.ModelA, 0));
        var set = await Fixture.Update(repo, new MemoryTrustStore());
        Assert.Single(set.Targets);
    }

    [Fact]
    public void Root_with_threshold_above_its_key_count_is_malformed()
    {
        var k = SigningKey.Generate();
        Assert.Throws<MalformedMetadataException>(() => RootMetadata.Create(1, DateTimeOffset.UtcNow.AddDays(1),
            Roles.All.ToDictionary(r => r, r => ((IReadOnlyList<PublicKey>)[k.Public], r == Roles.Root ? 2 : 1))));
    }
}
