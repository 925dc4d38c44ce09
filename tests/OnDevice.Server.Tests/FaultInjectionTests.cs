using System.Diagnostics;
using OnDevice.Client;
using OnDevice.Delivery;
using OnDevice.TestSupport;
using Xunit.Abstractions;

namespace OnDevice.Server.Tests;

/// <summary>
/// Faults against a real server process. After every step: no client reports a model path whose bytes fail
/// verification, and no verified version is lost.
/// </summary>
[Trait("Category", "Delivery")]
public class FaultInjectionTests(ITestOutputHelper output)
{
    private static string BlobOnServer(string store, string sha) => Path.Combine(store, "blobs", sha[..2], sha);

    [Fact]
    public async Task Server_killed_mid_download_then_the_client_resumes()
    {
        using var world = await DeliveryWorld.CreateAsync();
        var big = world.RandomFile("big.bin", 40 << 20, 7);
        var port = Ports.Free();
        var server = await ServerProcess.StartAsync(world.Store(), world.Keys, port: port);
        await world.PublishAsync(server, await world.PackAsync("m", "1.0", $"a={big}"));
        using var u = Clients.Updater(world, server.BaseUrl, "m", Clients.Device(Clients.GiB), "kill", maxAttempts: 2);
        long killedAt = -1;
        u.DownloadProgressChanged += (_, e) =>
        {
            if (killedAt < 0 && e.Received >= 8 << 20) { killedAt = e.Received; server.Kill(); }
        };
        var first = await u.UpdateAsync();
        Assert.Equal(UpdateStatus.Failed, first.Status);
        Assert.Null(u.GetInstalledModelPath());
        var part = Directory.GetFiles(Path.Combine(world.File("cache-kill"), "tmp"), "*.part").Single();
        var partial = new FileInfo(part).Length;
        Assert.InRange(partial, 8 << 20, (40 << 20) - 1);
        await server.DisposeAsync();

        await using var restarted = await ServerProcess.StartAsync(world.Store(), world.Keys, port: port);
        long resumedFrom = -1;
        u.DownloadStarted += (_, e) => resumedFrom = e.Received;
        var second = await u.UpdateAsync();
        Assert.Equal(UpdateStatus.Installed, second.Status);
        Assert.Equal(partial, resumedFrom);
        Assert.Equal(DeliveryWorld.Sha256(big), DeliveryWorld.Sha256(u.GetInstalledModelPath()!));
        output.WriteLine($"killed at {killedAt} bytes received, {partial} on disk, resumed from {resumedFrom}");
    }

    [Fact]
    public async Task Truncated_corrupted_and_swapped_blobs_are_never_installed()
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys);
        var v1 = world.RandomFile("v1.bin", 300_000, 1);
        var v2 = world.RandomFile("v2.bin", 500_000, 2);
        string[] shas = [DeliveryWorld.Sha256(v1), DeliveryWorld.Sha256(v2)];
        await world.PublishAsync(server, await world.PackAsync("m", "1.0", $"a={v1}"));
        using var u = Clients.Updater(world, server.BaseUrl, "m", Clients.Device(Clients.GiB), "blobs", maxAttempts: 2);
        Assert.Equal(UpdateStatus.Installed, (await u.UpdateAsync()).Status);
        await world.PublishAsync(server, await world.PackAsync("m", "2.0", $"a={v2}"));
        var onServer = BlobOnServer(world.Store(), shas[1]);
        var good = await File.ReadAllBytesAsync(onServer);

        // Truncated on the server: the download ends early; nothing is installed.
        await File.WriteAllBytesAsync(onServer, good[..200_000]);
        var truncated = await u.UpdateAsync();
        Assert.Equal(UpdateStatus.Failed, truncated.Status);
        Assert.Equal(shas[0], DeliveryWorld.Sha256(u.GetInstalledModelPath()!));
        Clients.AssertInvariant(u, shas);

        // Corrupted (same length, one byte flipped): hash mismatch, retried once from zero, then refused.
        var corrupt = (byte[])good.Clone();
        corrupt[123_456] ^= 0x55;
        await File.WriteAllBytesAsync(onServer, corrupt);
        var corrupted = await u.UpdateAsync();
        Assert.Equal(UpdateStatus.Failed, corrupted.Status);
        Assert.IsType<TargetHashException>(corrupted.Error);
        Assert.Empty(Directory.GetFiles(Path.Combine(world.File("cache-blobs"), "tmp"), "*.part"));
        Assert.Equal(shas[0], DeliveryWorld.Sha256(u.GetInstalledModelPath()!));
        Clients.AssertInvariant(u, shas);

        // Swapped for another (longer) file: the length bound stops it.
        await File.WriteAllBytesAsync(onServer, (await File.ReadAllBytesAsync(v1)).Concat(good).ToArray());
        var swapped = await u.UpdateAsync();
        Assert.Equal(UpdateStatus.Failed, swapped.Status);
        Assert.IsType<TargetLengthException>(swapped.Error);
        Assert.Equal(shas[0], DeliveryWorld.Sha256(u.GetInstalledModelPath()!));
        Clients.AssertInvariant(u, shas);

        // Repaired: installs.
        await File.WriteAllBytesAsync(onServer, good);
        Assert.Equal(UpdateStatus.Installed, (await u.UpdateAsync()).Status);
        Assert.Equal(shas[1], DeliveryWorld.Sha256(u.GetInstalledModelPath()!));
        Assert.Equal(["2.0", "1.0"], u.ListInstalled().Select(m => m.Version));
    }

    [Fact]
    public async Task Replayed_old_timestamp_is_rejected_and_the_installed_model_stays()
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys);
        var files = Enumerable.Range(1, 3).Select(i => world.RandomFile($"v{i}.bin", 20_000 * i, i)).ToList();
        var shas = files.Select(DeliveryWorld.Sha256).ToList();
        var mitm = new InterceptingHandler { Record = true };
        using var u = Clients.Updater(world, server.BaseUrl, "m", Clients.Device(Clients.GiB), "replay", handler: mitm);
        await world.PublishAsync(server, await world.PackAsync("m", "1.0", $"a={files[0]}"));
        Assert.Equal(UpdateStatus.Installed, (await u.UpdateAsync()).Status);
        var oldTimestamp = mitm.Seen.Last(s => s.Path.EndsWith("/timestamp.json")).Body;
        await world.PublishAsync(server, await world.PackAsync("m", "2.0", $"a={files[1]}"));
        Assert.Equal(UpdateStatus.Installed, (await u.UpdateAsync()).Status);
        await world.PublishAsync(server, await world.PackAsync("m", "3.0", $"a={files[2]}"));

        mitm.Intercept = r => r.RequestUri!.AbsolutePath.EndsWith("/v1/metadata/timestamp.json") ? InterceptingHandler.Json(oldTimestamp) : null;
        var replayed = await u.UpdateAsync();
        Assert.Equal(UpdateStatus.Failed, replayed.Status);
        var rollback = Assert.IsType<RollbackException>(replayed.Error);
        Assert.Equal(Roles.Timestamp, rollback.Role);
        Assert.Equal("2.0", u.GetInstalledModel()!.Version);
        Clients.AssertInvariant(u, shas);

        mitm.Intercept = null;
        Assert.Equal(UpdateStatus.Installed, (await u.UpdateAsync()).Status);
        Assert.Equal("3.0", u.GetInstalledModel()!.Version);
    }

    [Fact]
    public async Task Expired_snapshot_is_refused_and_the_installed_model_stays()
    {
        using var world = await DeliveryWorld.CreateAsync();
        var lifetime = TimeSpan.FromSeconds(10); // long enough for the first update on a loaded machine
        await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys, null, null, "--snapshot-lifetime", "10s");
        var v1 = world.RandomFile("v1.bin", 20_000, 1);
        var pkg = await world.PackAsync("m", "1.0", $"a={v1}");
        await world.PublishAsync(server, pkg);
        var afterPublish = DateTimeOffset.UtcNow; // the snapshot was signed before this, so it expires before afterPublish + lifetime
        using var u = Clients.Updater(world, server.BaseUrl, "m", Clients.Device(Clients.GiB), "snap");
        var first = await u.UpdateAsync();
        Assert.True(first.Status == UpdateStatus.Installed, $"{first.Status}: {first.Error}");
        var wait = afterPublish + lifetime + TimeSpan.FromSeconds(1) - DateTimeOffset.UtcNow;
        if (wait > TimeSpan.Zero) await Task.Delay(wait);
        var r = await u.UpdateAsync();
        Assert.Equal(UpdateStatus.Failed, r.Status);
        Assert.Equal(Roles.Snapshot, Assert.IsType<ExpiredMetadataException>(r.Error).Role);
        Assert.Equal(DeliveryWorld.Sha256(v1), DeliveryWorld.Sha256(u.GetInstalledModelPath()!));
        Clients.AssertInvariant(u, [DeliveryWorld.Sha256(v1)]);
    }

    [Fact]
    public async Task Full_disk_on_the_client_keeps_the_previous_model()
    {
        using var world = await DeliveryWorld.CreateAsync();
        var mount = world.File("tmpfs-cache");
        Directory.CreateDirectory(mount);
        if (!await TryRun("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mount))
        {
            var msg = "SKIPPED: a 2 MiB tmpfs cannot be mounted here (needs root or passwordless sudo)";
            if (RepoPaths.IsCi) Assert.Fail(msg);
            output.WriteLine(msg);
            return;
        }
        try
        {
            await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys);
            var small = SampleModels.Path("openwakeword-hello-deepa");
            await world.PublishAsync(server, await world.PackAsync("vad", "1.0", $"a={small}"));
            using var u = Clients.Updater(world, server.BaseUrl, "vad", Clients.Device(8 * Clients.GiB), "disk", cacheDir: Path.Combine(mount, "cache"));
            Assert.Equal(UpdateStatus.Installed, (await u.UpdateAsync()).Status);
            await world.PublishAsync(server, await world.PackAsync("vad", "2.0", $"a={Scenarios.Vad}")); // 2.3 MB > 2 MiB
            var failed = await u.UpdateAsync();
            Assert.Equal(UpdateStatus.Failed, failed.Status);
            Assert.True(failed.Error is CacheWriteException, $"expected a cache write failure, got {failed.Error}");
            Assert.Equal(DeliveryWorld.Sha256(small), DeliveryWorld.Sha256(u.GetInstalledModelPath()!));
            Assert.Empty(Directory.GetFiles(Path.Combine(mount, "cache", "tmp"), "*.part"));
            Clients.AssertInvariant(u, [DeliveryWorld.Sha256(small), DeliveryWorld.Sha256(Scenarios.Vad)]);
        }
        finally
        {
            await TryRun("umount", mount);
        }
    }

    [Fact]
    public async Task Concurrent_publishes_all_land_and_clients_see_the_newest()
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys);
        var files = Enumerable.Range(0, 8).Select(i => world.RandomFile($"c{i}.bin", 10_000 + i, 50 + i)).ToList();
        var pkgs = await Task.WhenAll(files.Select((f, i) => world.PackAsync("m", $"1.{i}", $"a={f}")));
        await Task.WhenAll(pkgs.Select(p => world.PublishAsync(server, p)));
        using var u = Clients.Updater(world, server.BaseUrl, "m", Clients.Device(Clients.GiB), "cp");
        var r = await u.UpdateAsync();
        Assert.Equal(UpdateStatus.Installed, r.Status);
        Assert.Equal("1.7", r.Current!.Version);
        Clients.AssertInvariant(u, files.Select(DeliveryWorld.Sha256).ToList());
    }

    [Fact]
    public async Task Oversized_metadata_and_an_endless_blob_over_http_are_cut_off()
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys);
        var f = world.RandomFile("v1.bin", 200_000, 3);
        await world.PublishAsync(server, await world.PackAsync("m", "1.0", $"a={f}"));
        var mitm = new InterceptingHandler();
        using var u = Clients.Updater(world, server.BaseUrl, "m", Clients.Device(Clients.GiB), "endless", handler: mitm, maxAttempts: 2);

        mitm.Intercept = r => r.RequestUri!.AbsolutePath.EndsWith("/timestamp.json") ? InterceptingHandler.Json(new byte[1_000_000]) : null;
        var big = await u.UpdateAsync();
        Assert.Equal(UpdateStatus.Failed, big.Status);
        Assert.Equal(Roles.Timestamp, Assert.IsType<MetadataTooLargeException>(big.Error).Role);

        var endless = new EndlessStream(7);
        mitm.Intercept = r => r.RequestUri!.AbsolutePath.Contains("/v1/blobs/")
            ? new System.Net.Http.HttpResponseMessage(System.Net.HttpStatusCode.OK) { Content = new StreamContent(endless) }
            : null;
        var r = await u.UpdateAsync();
        Assert.Equal(UpdateStatus.Failed, r.Status);
        Assert.True(Assert.IsType<TargetLengthException>(r.Error).TooLong);
        Assert.Equal(200_001, endless.Served);
        Assert.Empty(Directory.GetFiles(Path.Combine(world.File("cache-endless"), "tmp"), "*.part"));
        Assert.Null(u.GetInstalledModelPath());

        mitm.Intercept = null;
        Assert.Equal(UpdateStatus.Installed, (await u.UpdateAsync()).Status);
    }

    private static async Task<bool> TryRun(string file, params string[] args)
    {
        try
        {
            var psi = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (var a in args) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            await p.WaitForExitAsync();
            return p.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }
}
