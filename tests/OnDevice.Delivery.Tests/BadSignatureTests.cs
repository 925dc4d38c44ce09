using System.Text;
using System.Text.Json.Nodes;

namespace OnDevice.Delivery.Tests;

/// <summary>Attack: unsigned metadata, tampered content, signatures by the wrong role's key, garbage signatures.</summary>
public class BadSignatureTests
{
    private static byte[] Tamper(byte[] envelope, Action<JsonObject> change)
    {
        var root = (JsonObject)JsonNode.Parse(envelope)!;
        change((JsonObject)root["signed"]!);
        return Encoding.UTF8.GetBytes(root.ToJsonString());
    }

    [Fact]
    public async Task Tampered_release_is_rejected()
    {
        var repo = new RepositorySimulator { SnapshotHashes = false };
        var name = repo.AddRelease("m", "1.0", ("int8", Fixture.ModelA, 0));
        var (meta, bytes) = repo.Releases[name];
        var tampered = Tamper(bytes, s => s["targets"]!.AsObject().First().Value!["length"] = 5);
        repo.Overrides[TrustUpdater.ConsistentPath(name, 1)] = tampered;
        var e = await Assert.ThrowsAsync<SignatureThresholdException>(() => Fixture.Update(repo, new MemoryTrustStore()));
        Assert.Contains(e.Problems, p => p.Contains("does not verify"));
        _ = meta;
    }

    [Fact]
    public async Task Unsigned_timestamp_is_rejected()
    {
        var repo = new RepositorySimulator();
        var ts = new TimestampMetadata { Version = 9, Expires = repo.Time.Now.AddDays(1), Snapshot = new MetaFile(1) };
        repo.Overrides["timestamp.json"] = ts.Sign();
        var e = await Assert.ThrowsAsync<SignatureThresholdException>(() => Fixture.Update(repo, new MemoryTrustStore()));
        Assert.Equal(0, e.Valid);
        Assert.Contains("unsigned", e.Problems);
    }

    [Fact]
    public async Task Snapshot_signed_by_the_timestamp_key_is_rejected()
    {
        var repo = new RepositorySimulator { SnapshotHashes = false };
        repo.AddRelease("m", "1.0", ("int8", Fixture.ModelA, 0));
        var snap = new SnapshotMetadata { Version = repo.SnapshotVersion, Expires = repo.Time.Now.AddDays(1) };
        repo.Overrides[$"{repo.SnapshotVersion}.snapshot.json"] = snap.Sign(repo.Keys[Roles.Timestamp]);
        var e = await Assert.ThrowsAsync<SignatureThresholdException>(() => Fixture.Update(repo, new MemoryTrustStore()));
        Assert.Equal(Roles.Snapshot, e.Role);
        Assert.Contains(e.Problems, p => p.Contains("is not a snapshot key"));
    }

    [Fact]
    public void Garbage_signature_bytes_do_not_verify()
    {
        var repo = new RepositorySimulator();
        var ts = new TimestampMetadata { Version = 1, Expires = repo.Time.Now.AddDays(1), Snapshot = new MetaFile(1) };
        var bytes = ts.Sign(repo.Keys[Roles.Timestamp]);
        var root = (JsonObject)JsonNode.Parse(bytes)!;
        root["signatures"]![0]!["sig"] = "30440220" + new string('a', 136);
        var env = Envelope.Parse(Encoding.UTF8.GetBytes(root.ToJsonString()));
        Assert.Throws<SignatureThresholdException>(() => env.VerifyThreshold(repo.CurrentRoot, Roles.Timestamp));
    }

    [Fact]
    public void Trusted_root_that_is_not_self_signed_is_refused()
    {
        var repo = new RepositorySimulator();
        var root = repo.CurrentRoot;
        var bytes = root.Sign(SigningKey.Generate());
        Assert.Throws<SignatureThresholdException>(() => new TrustedMetadataSet(bytes, repo.Time.Now));
    }
}
