namespace OnDevice.Delivery.Tests;

/// <summary>Root key rotation 1→2→3 with threshold changes, and rotations that must fail.</summary>
public class RootRotationTests
{
    [Fact]
    public async Task Client_follows_root_1_to_2_to_3_with_changing_thresholds()
    {
        var repo = new RepositorySimulator();
        repo.AddRelease("m", "1.0", ("int8", Fixture.ModelA, 0));
        var store = new MemoryTrustStore();
        await Fixture.Update(repo, store);

        // v2: two new root keys, threshold 2 (signed by the old key and both new ones).
        repo.Keys[Roles.Root] = [SigningKey.Generate(), SigningKey.Generate()];
        repo.Thresholds[Roles.Root] = 2;
        repo.PublishRoot();
        // v3: three keys (one kept), threshold 2; new targets key too.
        repo.Keys[Roles.Root] = [repo.Keys[Roles.Root][0], SigningKey.Generate(), SigningKey.Generate()];
        repo.Keys[Roles.Targets] = [SigningKey.Generate()];
        repo.PublishRoot();
        repo.AddRelease("m", "2.0", ("int8", Fixture.ModelB, 0));

        // Release 1.0 is still signed by the rotated-out targets key: rejected until re-signed.
        await Assert.ThrowsAsync<SignatureThresholdException>(() => Fixture.Update(repo, store));
        repo.AddRelease("m", "1.0", ("int8", Fixture.ModelA, 0));

        var set = await Fixture.Update(repo, store);
        Assert.Equal(3, set.Root.Version);
        Assert.Equal(2, set.Root.GetRole(Roles.Root).Threshold);
        Assert.Equal(3, set.Root.GetRole(Roles.Root).KeyIds.Count);
        // The stored root is now v3: a fresh update starts there.
        Assert.Equal(3, MetadataReader.Read<RootMetadata>(store.Load(TrustUpdater.RootName)!).Signed.Version);
        Assert.Contains(TargetsNames.Release("m", "2.0"), set.Targets.Keys);
    }

    [Fact]
    public void New_root_not_signed_by_the_old_root_keys_is_rejected()
    {
        var repo = new RepositorySimulator();
        var set = new TrustedMetadataSet(repo.TrustedRoot, repo.Time.Now);
        repo.Keys[Roles.Root] = [SigningKey.Generate()];
        var v2 = repo.PublishRoot(onlySigners: repo.Keys[Roles.Root]);
        var e = Assert.Throws<SignatureThresholdException>(() => set.UpdateRoot(v2));
        Assert.Equal(Roles.Root, e.Role);
        Assert.Equal(1, set.Root.Version);
    }

    [Fact]
    public void New_root_not_meeting_its_own_threshold_is_rejected()
    {
        var repo = new RepositorySimulator();
        var set = new TrustedMetadataSet(repo.TrustedRoot, repo.Time.Now);
        var oldKey = repo.Keys[Roles.Root][0];
        var newKeys = new List<SigningKey> { SigningKey.Generate(), SigningKey.Generate() };
        repo.Keys[Roles.Root] = newKeys;
        repo.Thresholds[Roles.Root] = 2;
        var v2 = repo.PublishRoot(onlySigners: [oldKey, newKeys[0]]);
        var e = Assert.Throws<SignatureThresholdException>(() => set.UpdateRoot(v2));
        Assert.Equal(1, e.Valid);
        Assert.Equal(2, e.Threshold);
    }
}
