using System.Net;
using System.Net.Http.Headers;
using OnDevice.Client;
using OnDevice.Delivery;

namespace OnDevice.Server.Tests;

/// <summary>Root rotation published through the operator API (1→2→3, thresholds 1→2→1) and followed by a client.</summary>
[Trait("Category", "Delivery")]
public class RootRotationServerTests
{
    private static List<SigningKey> Keys(string dir, string sub, string role) =>
        Directory.GetFiles(Path.Combine(dir, sub), $"{role}-*.pem").Order().Select(f => SigningKey.FromPem(File.ReadAllText(f))).ToList();

    private static byte[] Root(long version, List<SigningKey> rootKeys, int threshold, string keysDir, IEnumerable<SigningKey> signers)
    {
        var roles = new Dictionary<string, (IReadOnlyList<PublicKey>, int)>
        {
            [Roles.Root] = (rootKeys.Select(k => k.Public).ToList(), threshold),
            [Roles.Targets] = (Keys(keysDir, "private", Roles.Targets).Select(k => k.Public).ToList(), 1),
            [Roles.Snapshot] = (Keys(keysDir, "online", Roles.Snapshot).Select(k => k.Public).ToList(), 1),
            [Roles.Timestamp] = (Keys(keysDir, "online", Roles.Timestamp).Select(k => k.Public).ToList(), 1),
        };
        return RootMetadata.Create(version, DateTimeOffset.UtcNow.AddDays(30), roles).Sign(signers);
    }

    [Fact]
    public async Task Operator_rotates_the_root_twice_and_the_client_follows()
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys);
        var f1 = world.RandomFile("v1.bin", 10_000, 1);
        await world.PublishAsync(server, await world.PackAsync("m", "1.0", $"a={f1}"));
        var cache = world.File("cache-rot");
        using var u = Clients.Updater(world, server.BaseUrl, "m", Clients.Device(Clients.GiB), "rot", cacheDir: cache);
        Assert.Equal(UpdateStatus.Installed, (await u.UpdateAsync()).Status);

        var k1 = Keys(world.Keys, "private", Roles.Root);
        var v2Keys = new List<SigningKey> { SigningKey.Generate(), SigningKey.Generate() };
        var v3Keys = new List<SigningKey> { SigningKey.Generate() };
        using var http = server.Http(server.Token);
        async Task<HttpStatusCode> Post(byte[] root)
        {
            using var content = new ByteArrayContent(root);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            using var r = await http.PostAsync("/api/v1/roots", content);
            return r.StatusCode;
        }

        // v2 signed only by the new keys (not by root v1's key): refused.
        Assert.Equal(HttpStatusCode.UnprocessableEntity, await Post(Root(2, v2Keys, 2, world.Keys, v2Keys)));
        // v2 signed by one of its two keys only (threshold 2): refused.
        Assert.Equal(HttpStatusCode.UnprocessableEntity, await Post(Root(2, v2Keys, 2, world.Keys, [k1[0], v2Keys[0]])));
        Assert.Equal(HttpStatusCode.Created, await Post(Root(2, v2Keys, 2, world.Keys, [k1[0], .. v2Keys])));
        // v3: back to one key, signed by both v2 keys and the v3 key.
        Assert.Equal(HttpStatusCode.Created, await Post(Root(3, v3Keys, 1, world.Keys, [.. v2Keys, .. v3Keys])));
        // A reader cannot rotate.
        var reader = await server.CreateTokenAsync("r", "reader");
        using (var rh = server.Http(reader))
            Assert.Equal(HttpStatusCode.Forbidden, (await rh.PostAsync("/api/v1/roots", new ByteArrayContent([1]))).StatusCode);

        var f2 = world.RandomFile("v2.bin", 12_000, 2);
        await world.PublishAsync(server, await world.PackAsync("m", "2.0", $"a={f2}"));
        var r2 = await u.UpdateAsync();
        Assert.Equal(UpdateStatus.Installed, r2.Status);
        var trusted = MetadataReader.Read<RootMetadata>(await File.ReadAllBytesAsync(Path.Combine(cache, "trust", "root.json"))).Signed;
        Assert.Equal(3, trusted.Version);
        Assert.Equal(v3Keys[0].KeyId, Assert.Single(trusted.GetRole(Roles.Root).KeyIds));
    }
}
