using OnDevice.Client;
using OnDevice.Delivery;

namespace OnDevice.Server.Tests;

/// <summary>ModelUpdater against a real server process: versions kept, events, offline and expired metadata, bundled fallback.</summary>
[Trait("Category", "Delivery")]
public class ClientUpdateTests
{
    [Fact]
    public async Task Keeps_the_last_three_verified_versions_and_reports_events()
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys);
        using var u = Clients.Updater(world, server.BaseUrl, "m", Clients.Device(4 * Clients.GiB), "keep");
        var events = new List<string>();
        u.DownloadStarted += (_, e) => events.Add($"start {e.TargetPath}");
        u.DownloadProgressChanged += (_, e) => events.Add($"progress {e.Received}/{e.Total}");
        u.DownloadFinished += (_, e) => events.Add($"finished {e.TargetPath}");
        var files = new List<string>();
        for (int i = 1; i <= 5; i++)
        {
            var f = world.RandomFile($"v{i}.bin", 30_000 + i, i);
            files.Add(f);
            await world.PublishAsync(server, await world.PackAsync("m", $"1.{i}", $"a={f}"));
            var progress = new List<DownloadProgress>();
            var r = await u.UpdateAsync(new SyncProgress<DownloadProgress>(progress.Add));
            Assert.Equal(UpdateStatus.Installed, r.Status);
            Assert.Equal($"1.{i}", r.Current!.Version);
            Assert.Equal(30_000 + i, progress[^1].Received);
            Clients.AssertInvariant(u, files.Select(DeliveryWorld.Sha256).ToList());
        }
        var installed = u.ListInstalled();
        Assert.Equal(["1.5", "1.4", "1.3"], installed.Select(m => m.Version));
        Assert.False(File.Exists(Path.Combine(world.File("cache-keep"), "models", "1.1", "a", "v1.bin")));
        Assert.Equal(5, events.Count(e => e.StartsWith("finished")));
        Assert.Equal(5, events.Count(e => e.StartsWith("start")));

        var check = await u.CheckAsync();
        Assert.False(check.UpdateAvailable);
        Assert.Equal("1.5", check.Installed!.Version);
    }

    [Fact]
    public async Task Offline_or_with_expired_metadata_the_last_verified_model_keeps_working()
    {
        using var world = await DeliveryWorld.CreateAsync();
        var v1 = world.RandomFile("v1.bin", 40_000, 1);
        var shas = new[] { DeliveryWorld.Sha256(v1) };
        var clock = new ShiftedTime();
        string cache = world.File("cache-offline");
        await using (var server = await ServerProcess.StartAsync(world.Store(), world.Keys))
        {
            await world.PublishAsync(server, await world.PackAsync("m", "1.0", $"a={v1}"));
            using var u = Clients.Updater(world, server.BaseUrl, "m", Clients.Device(Clients.GiB), "x", time: clock, cacheDir: cache);
            Assert.Equal(UpdateStatus.Installed, (await u.UpdateAsync()).Status);

            // Thirty days later the server's timestamp (1 day) has expired from the device's point of view.
            clock.Offset = TimeSpan.FromDays(30);
            var expired = await u.UpdateAsync();
            Assert.Equal(UpdateStatus.Failed, expired.Status);
            Assert.IsType<ExpiredMetadataException>(expired.Error);
            Assert.Equal(DeliveryWorld.Sha256(v1), DeliveryWorld.Sha256(u.GetInstalledModelPath()!));
            Clients.AssertInvariant(u, shas);
            server.Kill();

            // Offline (server gone) and expired: still the same verified model.
            var offline = await u.UpdateAsync();
            Assert.Equal(UpdateStatus.Failed, offline.Status);
            Assert.Equal(DeliveryWorld.Sha256(v1), DeliveryWorld.Sha256(u.GetInstalledModelPath()!));
        }
        // A fresh process (new updater on the same cache) also serves it without the network.
        using var again = Clients.Updater(world, "http://127.0.0.1:9/", "m", Clients.Device(Clients.GiB), "x", cacheDir: cache);
        Assert.Equal(DeliveryWorld.Sha256(v1), DeliveryWorld.Sha256(again.GetInstalledModelPath()!));
    }

    [Fact]
    public async Task Bundled_model_is_the_fallback_only_when_its_pinned_hash_matches()
    {
        using var world = await DeliveryWorld.CreateAsync();
        var bundledFile = Scenarios.VadOp15;
        var good = new BundledModel(bundledFile, DeliveryWorld.Sha256(bundledFile), "0.9");
        using var u = Clients.Updater(world, "http://127.0.0.1:9/", "vad", Clients.Device(Clients.GiB), "bundled", bundled: good);
        var r = await u.UpdateAsync();
        Assert.Equal(UpdateStatus.Failed, r.Status);
        Assert.True(r.Current!.Bundled);
        Assert.Equal(bundledFile, u.GetInstalledModelPath());

        var bad = good with { Sha256 = new string('0', 64) };
        using var u2 = Clients.Updater(world, "http://127.0.0.1:9/", "vad", Clients.Device(Clients.GiB), "bundled2", bundled: bad);
        Assert.Null(u2.GetInstalledModelPath());
    }

    [Fact]
    public async Task A_release_with_an_unchanged_file_installs_from_the_local_copy_without_downloading()
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys);
        using var u = Clients.Updater(world, server.BaseUrl, "m", Clients.Device(4 * Clients.GiB), "same");
        int started = 0;
        u.DownloadStarted += (_, _) => Interlocked.Increment(ref started);
        var a = world.RandomFile("a.bin", 50_000, 1);
        await world.PublishAsync(server, await world.PackAsync("m", "1.0", $"a={a}"));
        Assert.Equal(UpdateStatus.Installed, (await u.UpdateAsync()).Status);
        Assert.Equal(1, started);

        // 1.1 ships the same bytes (a release that changed another variant, or only metadata).
        await world.PublishAsync(server, await world.PackAsync("m", "1.1", $"a={a}"));
        var r = await u.UpdateAsync();
        Assert.Equal(UpdateStatus.Installed, r.Status);
        Assert.Equal("1.1", r.Current!.Version);
        Assert.Equal(1, started); // no second download
        Assert.Equal(DeliveryWorld.Sha256(a), DeliveryWorld.Sha256(r.Current.Path));
        Assert.Equal(["1.1", "1.0"], u.ListInstalled().Select(m => m.Version));
        Clients.AssertInvariant(u, [DeliveryWorld.Sha256(a)]);

        // A corrupted local copy is never reused: 1.2 (same bytes again) is downloaded.
        foreach (var m in u.ListInstalled()) File.WriteAllBytes(m.Path, new byte[50_000]);
        await world.PublishAsync(server, await world.PackAsync("m", "1.2", $"a={a}"));
        var again = await u.UpdateAsync();
        Assert.Equal(UpdateStatus.Installed, again.Status);
        Assert.Equal(2, started);
        Assert.Equal(DeliveryWorld.Sha256(a), DeliveryWorld.Sha256(again.Current!.Path));
    }

    [Fact]
    public async Task Many_clients_update_concurrently()
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys);
        await world.PublishAsync(server, await world.PackAsync("vad", "2.0.0", $"full={Scenarios.Vad}:precision=fp32:min_ram=4G", $"half={Scenarios.VadHalf}:precision=fp16:min_ram=1G"));
        var shas = new[] { DeliveryWorld.Sha256(Scenarios.Vad), DeliveryWorld.Sha256(Scenarios.VadHalf) };
        var updaters = Enumerable.Range(0, 24).Select(i => Clients.Updater(world, server.BaseUrl, "vad", Clients.Device(i % 2 == 0 ? 8 * Clients.GiB : 2 * Clients.GiB), $"many{i}")).ToList();
        try
        {
            var results = await Task.WhenAll(updaters.Select(u => u.UpdateAsync()));
            Assert.All(results, r => Assert.Equal(UpdateStatus.Installed, r.Status));
            for (int i = 0; i < updaters.Count; i++)
            {
                Assert.Equal(shas[i % 2], DeliveryWorld.Sha256(updaters[i].GetInstalledModelPath()!));
                Clients.AssertInvariant(updaters[i], shas);
            }
        }
        finally
        {
            foreach (var u in updaters) u.Dispose();
        }
    }
}

/// <summary>A clock shifted by a settable offset (the device's clock moving on).</summary>
public sealed class ShiftedTime : TimeProvider
{
    public TimeSpan Offset { get; set; }
    public override DateTimeOffset GetUtcNow() => DateTimeOffset.UtcNow + Offset;
}

/// <summary>IProgress that reports synchronously (Progress&lt;T&gt; posts to the thread pool).</summary>
public sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
