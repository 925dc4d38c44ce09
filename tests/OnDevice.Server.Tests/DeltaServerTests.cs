using System.Net;
using OnDevice.Client;
using OnDevice.DeltaSamples;
using OnDevice.Delivery.Deltas;
using OnDevice.TestSupport;
using Xunit.Abstractions;

namespace OnDevice.Server.Tests;

/// <summary>Records the client's requests and can cut the first patch response short (a dropped connection).</summary>
public sealed class DeltaRecordingHandler() : DelegatingHandler(new SocketsHttpHandler())
{
    public List<(string Path, long? RangeFrom, HttpStatusCode Status)> Requests { get; } = [];
    public long CutFirstDeltaAfterBytes { get; set; } = -1;
    public bool FailBlobs { get; set; }
    private int _deltaResponses;

    public IEnumerable<(string Path, long? RangeFrom, HttpStatusCode Status)> Deltas() { lock (Requests) return Requests.Where(r => r.Path.StartsWith("/v1/deltas/")).ToList(); }
    public bool Fetched(string path) { lock (Requests) return Requests.Any(r => r.Path == path); }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var path = request.RequestUri!.AbsolutePath;
        if (FailBlobs && path.StartsWith("/v1/blobs/"))
        {
            lock (Requests) Requests.Add((path, null, HttpStatusCode.ServiceUnavailable));
            return new HttpResponseMessage(HttpStatusCode.ServiceUnavailable) { RequestMessage = request };
        }
        var response = await base.SendAsync(request, cancellationToken);
        lock (Requests) Requests.Add((path, request.Headers.Range?.Ranges.First().From, response.StatusCode));
        if (path.StartsWith("/v1/deltas/") && response.IsSuccessStatusCode && Interlocked.Increment(ref _deltaResponses) == 1 && CutFirstDeltaAfterBytes >= 0)
        {
            var body = await response.Content.ReadAsStreamAsync(cancellationToken);
            var cut = new HttpResponseMessage(response.StatusCode) { Content = new StreamContent(new CutStream(body, CutFirstDeltaAfterBytes)), RequestMessage = request };
            foreach (var h in response.Content.Headers) cut.Content.Headers.TryAddWithoutValidation(h.Key, h.Value);
            return cut;
        }
        return response;
    }

    /// <summary>Ends (as a closed connection would) after a number of bytes.</summary>
    private sealed class CutStream(Stream inner, long limit) : Stream
    {
        private long _read;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _read; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_read >= limit) return 0;
            int n = await inner.ReadAsync(buffer[..(int)Math.Min(buffer.Length, limit - _read)], cancellationToken);
            _read += n;
            return n;
        }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        protected override void Dispose(bool disposing) { if (disposing) inner.Dispose(); base.Dispose(disposing); }
    }
}

/// <summary>Deltas end to end: a real server builds and serves the patch, the client rebuilds, verifies and installs.</summary>
[Trait("Category", "Delivery")]
public class DeltaServerTests(DeltaPairs pairs, ITestOutputHelper output) : IClassFixture<DeltaPairs>
{
    private sealed record Setup(DeliveryWorld World, ServerProcess Server, ModelUpdater Updater, DeltaRecordingHandler Handler, string Sha1, string Sha2,
        List<DeltaEventArgs> Applied, List<DeltaEventArgs> FellBack) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            Updater.Dispose();
            await Server.DisposeAsync();
            World.Dispose();
        }
    }

    /// <summary>v1 published and installed in full; v2 published; the next update is the one under test.</summary>
    private async Task<Setup> StartAsync(string v1, string v2, string name)
    {
        var world = await DeliveryWorld.CreateAsync();
        var server = await ServerProcess.StartAsync(world.Store(), world.Keys);
        await world.PublishAsync(server, await world.PackAsync("ocr", "1.0", $"rec={v1}"));
        var handler = new DeltaRecordingHandler();
        var u = Clients.Updater(world, server.BaseUrl, "ocr", Clients.Device(4 * Clients.GiB), name, handler: handler);
        var applied = new List<DeltaEventArgs>();
        var fellBack = new List<DeltaEventArgs>();
        u.Deltas.Applied += (_, e) => applied.Add(e);
        u.Deltas.FellBack += (_, e) => fellBack.Add(e);
        var first = await u.UpdateAsync();
        Assert.Equal(UpdateStatus.Installed, first.Status);
        Assert.Empty(handler.Deltas()); // nothing installed yet: no patch asked for
        await world.PublishAsync(server, await world.PackAsync("ocr", "2.0", $"rec={v2}"));
        return new Setup(world, server, u, handler, DeliveryWorld.Sha256(v1), DeliveryWorld.Sha256(v2), applied, fellBack);
    }

    [Fact]
    public async Task Client_on_v1_gets_v2_through_a_patch_and_verifies_it()
    {
        var (v1, v2) = pairs.Head;
        await using var s = await StartAsync(v1, v2, "delta-ok");
        var r = await s.Updater.UpdateAsync();
        Assert.Equal(UpdateStatus.Installed, r.Status);
        Assert.Equal("2.0", r.Current!.Version);
        Assert.Equal(s.Sha2, DeliveryWorld.Sha256(r.Current.Path));
        var applied = Assert.Single(s.Applied);
        Assert.Empty(s.FellBack);
        Assert.True(applied.PatchBytes < applied.TargetBytes / 3, $"patch {applied.PatchBytes} of {applied.TargetBytes}");
        Assert.False(s.Handler.Fetched($"/v1/blobs/{s.Sha2}"), "the full file was downloaded");
        Assert.Contains(s.Handler.Deltas(), d => d.Path == $"/v1/deltas/{s.Sha1}/{s.Sha2}" && d.Status == HttpStatusCode.OK);
        Clients.AssertInvariant(s.Updater, [s.Sha1, s.Sha2]);
        Assert.Equal(["2.0", "1.0"], s.Updater.ListInstalled().Select(m => m.Version));
        Assert.Empty(Directory.GetDirectories(Path.Combine(s.World.File("cache-delta-ok"), "tmp"), "delta-*"));
        output.WriteLine($"patch {applied.PatchBytes:N0} bytes for a {applied.TargetBytes:N0}-byte target");
    }

    [Fact]
    public async Task A_tampered_patch_falls_back_to_the_full_download_and_still_installs_v2()
    {
        var (v1, v2) = pairs.Head;
        await using var s = await StartAsync(v1, v2, "delta-tamper");
        // Have the server build and cache the patch, then corrupt one payload byte in its store (a hostile mirror).
        using (var http = s.Server.Http())
        using (var resp = await http.GetAsync($"/v1/deltas/{s.Sha1}/{s.Sha2}"))
            Assert.Equal(HttpStatusCode.OK, resp.StatusCode);
        var patchFile = Path.Combine(s.World.Store(), "deltas", s.Sha1[..2], $"{s.Sha1}-{s.Sha2}.patch");
        var bytes = await File.ReadAllBytesAsync(patchFile);
        var header = DeltaHeader.Parse(bytes.AsSpan(0, DeltaHeader.ReadHeaderLength(bytes)));
        int sent = header.Pieces.ToList().FindIndex(p => p.PayloadLength > 0);
        bytes[header.PayloadOffsetOf(sent) + header.Pieces[sent].PayloadLength / 2] ^= 0x10;
        await File.WriteAllBytesAsync(patchFile, bytes);

        var r = await s.Updater.UpdateAsync();
        Assert.Equal(UpdateStatus.Installed, r.Status);
        Assert.Equal(s.Sha2, DeliveryWorld.Sha256(r.Current!.Path));
        Assert.Empty(s.Applied);
        var fell = Assert.Single(s.FellBack);
        Assert.IsAssignableFrom<DeltaPatchException>(fell.Error);
        Assert.True(s.Handler.Fetched($"/v1/blobs/{s.Sha2}"), "expected the full download after the bad patch");
        Clients.AssertInvariant(s.Updater, [s.Sha1, s.Sha2]);
        output.WriteLine($"fell back: {fell.Error!.Message}");
    }

    [Fact]
    public async Task An_interrupted_patch_download_resumes_from_the_last_verified_piece()
    {
        var (v1, v2) = pairs.Requantized;
        await using var s = await StartAsync(v1, v2, "delta-resume");
        // Learn the patch layout from the server, then cut the client's first patch response in the middle of it.
        using (var http = s.Server.Http())
        {
            var patch = await http.GetByteArrayAsync($"/v1/deltas/{s.Sha1}/{s.Sha2}");
            var header = DeltaHeader.Parse(patch.AsSpan(0, DeltaHeader.ReadHeaderLength(patch)));
            Assert.True(header.Pieces.Count(p => p.PayloadLength > 0) >= 2, "the patch should have several sent pieces");
            s.Handler.CutFirstDeltaAfterBytes = patch.Length / 2;
            output.WriteLine($"patch {patch.Length:N0} bytes, {header.Pieces.Count} pieces; cut after {patch.Length / 2:N0}");
        }
        var starts = new List<long>();
        int verifiedPieces = 0;
        s.Updater.Deltas.Started += (_, e) => starts.Add(e.Received);
        s.Updater.Deltas.PieceVerified += (_, _) => verifiedPieces++;

        var r = await s.Updater.UpdateAsync();
        Assert.Equal(UpdateStatus.Installed, r.Status);
        Assert.Equal(s.Sha2, DeliveryWorld.Sha256(r.Current!.Path));
        Assert.Single(s.Applied);
        Assert.False(s.Handler.Fetched($"/v1/blobs/{s.Sha2}"), "the full file was downloaded");
        var deltas = s.Handler.Deltas().ToList();
        Assert.Equal(2, deltas.Count);
        Assert.Null(deltas[0].RangeFrom);
        Assert.True(deltas[1].RangeFrom > 0, "the second request should resume with a range");
        Assert.Equal(HttpStatusCode.PartialContent, deltas[1].Status);
        Assert.Equal([0, deltas[1].RangeFrom!.Value], starts);
        output.WriteLine($"resumed from patch byte {deltas[1].RangeFrom:N0}; {verifiedPieces} pieces verified in all");
    }

    [Fact]
    public async Task A_patch_download_cut_off_in_one_update_resumes_in_the_next()
    {
        var (v1, v2) = pairs.Requantized;
        await using var s = await StartAsync(v1, v2, "delta-later");
        var cache = s.World.File("cache-delta-later");
        long patchLength, firstPayload;
        using (var http = s.Server.Http())
        {
            var patch = await http.GetByteArrayAsync($"/v1/deltas/{s.Sha1}/{s.Sha2}");
            patchLength = patch.Length;
            firstPayload = DeltaHeader.ReadHeaderLength(patch);
        }
        // The device loses the network for good after 70 % of the patch (the full file is unreachable too).
        var offline = new DeltaRecordingHandler { CutFirstDeltaAfterBytes = patchLength * 7 / 10, FailBlobs = true };
        using (var u1 = Clients.Updater(s.World, s.Server.BaseUrl, "ocr", Clients.Device(4 * Clients.GiB), "x", handler: offline, cacheDir: cache, maxAttempts: 1))
        {
            var failed = await u1.UpdateAsync();
            Assert.Equal(UpdateStatus.Failed, failed.Status);
            Assert.Equal(s.Sha1, DeliveryWorld.Sha256(u1.GetInstalledModelPath()!));
        }
        var state = Assert.Single(Directory.GetDirectories(Path.Combine(cache, "tmp"), "delta-*"));
        long kept = new FileInfo(Path.Combine(state, "target.part")).Length;
        Assert.True(kept > 0, "verified pieces should be kept on disk");

        // Later (a new updater, as after an app restart): the patch resumes after the verified pieces.
        var online = new DeltaRecordingHandler();
        using var u2 = Clients.Updater(s.World, s.Server.BaseUrl, "ocr", Clients.Device(4 * Clients.GiB), "x", handler: online, cacheDir: cache);
        var r = await u2.UpdateAsync();
        Assert.Equal(UpdateStatus.Installed, r.Status);
        Assert.Equal(s.Sha2, DeliveryWorld.Sha256(r.Current!.Path));
        var resumed = Assert.Single(online.Deltas());
        Assert.True(resumed.RangeFrom > firstPayload, $"resumed from {resumed.RangeFrom}, the first payload starts at {firstPayload}");
        Assert.False(online.Fetched($"/v1/blobs/{s.Sha2}"));
        Assert.Empty(Directory.GetDirectories(Path.Combine(cache, "tmp"), "delta-*"));
        output.WriteLine($"{kept:N0} target bytes kept; resumed the {patchLength:N0}-byte patch from byte {resumed.RangeFrom:N0}");
    }

    [Fact]
    public async Task An_unrelated_model_is_downloaded_in_full()
    {
        await using var s = await StartAsync(pairs.Det, pairs.Rec, "delta-unrelated");
        var r = await s.Updater.UpdateAsync();
        Assert.Equal(UpdateStatus.Installed, r.Status);
        Assert.Equal(s.Sha2, DeliveryWorld.Sha256(r.Current!.Path));
        Assert.Contains(s.Handler.Deltas(), d => d.Status == HttpStatusCode.NotFound);
        Assert.True(s.Handler.Fetched($"/v1/blobs/{s.Sha2}"));
        Assert.Empty(s.Applied);
        Assert.Empty(s.FellBack); // not offered is not a failure
    }
}
