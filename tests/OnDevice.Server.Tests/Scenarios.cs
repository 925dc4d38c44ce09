using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using OnDevice.Client;
using OnDevice.TestSupport;

namespace OnDevice.Server.Tests;

/// <summary>The end-to-end path run against each database: CLI publish, resolve per device class, client install.</summary>
public static class Scenarios
{
    public static string Vad => SampleModels.Path("silero-vad");
    public static string VadHalf => SampleModels.Path("silero-vad-half");
    public static string VadOp15 => SampleModels.Path("silero-vad-16k-op15");

    public static async Task PublishResolveInstallAsync(DeliveryWorld world, ServerProcess server)
    {
        var v1 = await world.PackAsync("vad", "1.0.0", $"op15={VadOp15}:precision=fp32");
        var v2 = await world.PackAsync("vad", "2.0.0", $"full={Vad}:precision=fp32:min_ram=4G", $"half={VadHalf}:precision=fp16:min_ram=1G");
        var publisher = await server.CreateTokenAsync("ci-publisher", "publisher");
        await world.PublishAsync(server, v1, publisher);
        await world.PublishAsync(server, v2, publisher);

        using var http = server.Http();
        async Task<string?> Resolve(long ram)
        {
            using var r = await http.PostAsJsonAsync("/v1/resolve/vad", new { ram_bytes = ram, os = "android" });
            if (r.StatusCode == HttpStatusCode.UnprocessableEntity) return null;
            r.EnsureSuccessStatusCode();
            var j = await r.Content.ReadFromJsonAsync<JsonElement>();
            return j.GetProperty("chosen").GetProperty("version").GetString() + "/" + j.GetProperty("chosen").GetProperty("variant").GetString();
        }
        Assert.Equal("2.0.0/full", await Resolve(8 * Clients.GiB));
        Assert.Equal("2.0.0/half", await Resolve(2 * Clients.GiB));
        Assert.Equal("1.0.0/op15", await Resolve(512L << 20));

        var expected = new Dictionary<long, string> { [8 * Clients.GiB] = Vad, [2 * Clients.GiB] = VadHalf, [512L << 20] = VadOp15 };
        var shas = new[] { Vad, VadHalf, VadOp15 }.Select(DeliveryWorld.Sha256).ToList();
        foreach (var (ram, file) in expected)
        {
            using var u = Clients.Updater(world, server.BaseUrl, "vad", Clients.Device(ram), $"{server.Pid}-{ram}");
            var result = await u.UpdateAsync();
            Assert.True(result.Status == UpdateStatus.Installed, $"{ram}: {result.Status} {result.Error}");
            Assert.Equal(DeliveryWorld.Sha256(file), DeliveryWorld.Sha256(u.GetInstalledModelPath()!));
            Assert.Equal(UpdateStatus.UpToDate, (await u.UpdateAsync()).Status);
            Clients.AssertInvariant(u, shas);
        }

        var reader = await server.CreateTokenAsync("dashboard", "reader");
        using var rh = server.Http(reader);
        var releases = await rh.GetFromJsonAsync<JsonElement>("/api/v1/releases?model=vad");
        Assert.Equal(2, releases.GetArrayLength());
        var audit = await rh.GetFromJsonAsync<JsonElement>("/api/v1/audit");
        var publishes = audit.EnumerateArray().Where(a => a.GetProperty("action").GetString() == "release.publish").ToList();
        Assert.Equal(2, publishes.Count);
        Assert.All(publishes, p => Assert.Equal("ci-publisher (publisher)", p.GetProperty("actor").GetString()));
        Assert.Contains(audit.EnumerateArray(), a => a.GetProperty("action").GetString() == "token.create" && a.GetProperty("subject").GetString() == "dashboard");
    }
}
