using System.Text;
using System.Text.Json.Nodes;

namespace OnDevice.Delivery.Tests;

/// <summary>Attack: one key's signature repeated, or one key listed under two ids, to reach a threshold of two.</summary>
public class DuplicateKeyTests
{
    [Fact]
    public void Same_key_signing_twice_counts_once()
    {
        var repo = new RepositorySimulator();
        repo.Keys[Roles.Snapshot].Add(SigningKey.Generate());
        repo.Thresholds[Roles.Snapshot] = 2;
        repo.PublishRoot();
        var root = repo.CurrentRoot;
        var snap = new SnapshotMetadata { Version = 1, Expires = repo.Time.Now.AddDays(1) };
        var k = repo.Keys[Roles.Snapshot][0];
        var bytes = snap.Sign(k, k);
        var env = Envelope.Parse(bytes);
        Assert.Equal(2, env.Signatures.Count);
        var e = Assert.Throws<SignatureThresholdException>(() => env.VerifyThreshold(root, Roles.Snapshot));
        Assert.Equal(1, e.Valid);
        Assert.Contains(e.Problems, p => p.Contains("more than once"));
    }

    [Fact]
    public void Root_listing_one_key_under_a_second_id_is_malformed()
    {
        var repo = new RepositorySimulator();
        var signed = (JsonObject)repo.CurrentRoot.ToJson();
        var keys = (JsonObject)signed["keys"]!;
        var (id, key) = keys.First();
        keys["0000" + id[4..]] = key!.DeepClone();
        var root = new JsonObject { ["signed"] = signed, ["signatures"] = new JsonArray() };
        var e = Assert.Throws<MalformedMetadataException>(() => RootMetadata.FromJson((JsonObject)root["signed"]!));
        Assert.Contains("does not match its key", e.Message);
        _ = Encoding.UTF8;
    }
}
