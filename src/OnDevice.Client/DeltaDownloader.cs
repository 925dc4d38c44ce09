using System.Net;
using System.Net.Http.Headers;
using Microsoft.Win32.SafeHandles;
using OnDevice.Delivery;
using OnDevice.Delivery.Deltas;

namespace OnDevice.Client;

/// <summary>An old file on disk as the base of a patch (positioned reads, nothing buffered).</summary>
public sealed class FileDeltaSource : IDeltaSource, IDisposable
{
    private readonly SafeFileHandle _handle;

    /// <summary>Opens <paramref name="path"/> for reading.</summary>
    public FileDeltaSource(string path)
    {
        _handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        Length = RandomAccess.GetLength(_handle);
    }

    /// <inheritdoc/>
    public long Length { get; }

    /// <inheritdoc/>
    public void Read(long offset, Span<byte> destination)
    {
        while (destination.Length > 0)
        {
            int n = RandomAccess.Read(_handle, destination, offset);
            if (n <= 0) throw new IOException($"old file ended at byte {offset} while reading a patch base");
            destination = destination[n..];
            offset += n;
        }
    }

    /// <inheritdoc/>
    public void Dispose() => _handle.Dispose();
}

/// <summary>What happened to a delta attempt.</summary>
public sealed class DeltaEventArgs(string targetPath, string fromSha256, string toSha256, long patchBytes, long targetBytes, Exception? error) : EventArgs
{
    /// <summary>The target path being updated.</summary>
    public string TargetPath { get; } = targetPath;
    /// <summary>SHA-256 of the installed file the patch applied to.</summary>
    public string FromSha256 { get; } = fromSha256;
    /// <summary>SHA-256 of the target.</summary>
    public string ToSha256 { get; } = toSha256;
    /// <summary>Length of the patch (0 when none was offered).</summary>
    public long PatchBytes { get; } = patchBytes;
    /// <summary>Length of the target.</summary>
    public long TargetBytes { get; } = targetBytes;
    /// <summary>Why the full download is used instead (null when the patch was applied, or when none was offered).</summary>
    public Exception? Error { get; } = error;
}

/// <summary>
/// Updates an installed model through a patch when the server offers one: downloads it resumably (HTTP ranges from the
/// start of the next missing piece), rebuilds each piece against the installed file and checks the piece's SHA-256
/// before writing it, then checks the whole rebuilt file against the length and SHA-256 of the TUF-signed target.
/// Any fault in the patch (or no patch) answers null, and the caller downloads the full file; nothing unverified is
/// ever returned. State lives in <c>CACHE/tmp/delta-FROM-TO/</c> so an interrupted update resumes where it stopped.
/// </summary>
public sealed class DeltaDownloader
{
    private readonly HttpClient _http;
    private readonly Uri _server;
    private readonly string _tmp;
    private readonly int _maxAttempts;
    private readonly TimeSpan _initialBackoff;

    /// <summary>Creates a downloader using <paramref name="cacheDirectory"/>/tmp for its state.</summary>
    public DeltaDownloader(HttpClient http, Uri server, string cacheDirectory, int maxAttempts, TimeSpan initialBackoff)
    {
        _http = http;
        _server = server;
        _tmp = Path.Combine(cacheDirectory, "tmp");
        _maxAttempts = Math.Max(1, maxAttempts);
        _initialBackoff = initialBackoff;
    }

    /// <summary>Raised when a patch was applied and the rebuilt file verified.</summary>
    public event EventHandler<DeltaEventArgs>? Applied;

    /// <summary>Raised when a patch was offered but could not be used (the full download follows).</summary>
    public event EventHandler<DeltaEventArgs>? FellBack;

    /// <summary>Raised when a patch download starts or resumes; <see cref="DownloadEventArgs.Received"/> is the patch offset.</summary>
    public event EventHandler<DownloadEventArgs>? Started;

    /// <summary>Raised after each verified piece; <see cref="DownloadEventArgs.Received"/> counts target bytes rebuilt.</summary>
    public event EventHandler<DownloadEventArgs>? PieceVerified;

    /// <summary>
    /// Tries to rebuild <paramref name="choice"/> from <paramref name="installed"/> through a patch. Returns the path
    /// of the verified file (ready to install), or null when there is no usable patch. Cancellation throws.
    /// </summary>
    public async Task<string?> TryAsync(VariantChoice choice, InstalledModel? installed, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        if (installed is null || installed.Sha256 == choice.File.Sha256 || !File.Exists(installed.Path)) return null;
        var from = installed.Sha256;
        var to = choice.File.Sha256;
        var dir = Path.Combine(_tmp, $"delta-{from[..16]}-{to[..16]}");
        RemoveStale(dir);
        Exception? last = null;
        long patchBytes = 0;
        try
        {
            using var old = new FileDeltaSource(installed.Path);
            for (int attempt = 0; attempt < _maxAttempts; attempt++)
            {
                if (attempt > 0)
                {
                    var delay = _initialBackoff * Math.Pow(2, attempt - 1) * (0.75 + Random.Shared.NextDouble() / 2);
                    await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
                }
                try
                {
                    var (result, length) = await OnceAsync(choice, old, from, to, dir, progress, cancellationToken).ConfigureAwait(false);
                    patchBytes = length;
                    if (result is null) return null; // not offered
                    Applied?.Invoke(this, new DeltaEventArgs(choice.Path, from, to, patchBytes, choice.File.Length, null));
                    return result;
                }
                catch (Exception e) when (e is HttpRequestException or IOException && e is not CacheWriteException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
                {
                    last = e; // resume on the next attempt from the last verified piece
                }
            }
        }
        catch (Exception e) when (e is DeltaPatchException or TargetMismatchException or CacheWriteException or UnauthorizedAccessException)
        {
            last = e;
            DeleteState(dir);
        }
        catch (IOException e)
        {
            last = e; // the installed file itself could not be read
        }
        FellBack?.Invoke(this, new DeltaEventArgs(choice.Path, from, to, patchBytes, choice.File.Length, last));
        return null;
    }

    private async Task<(string? Path, long PatchLength)> OnceAsync(VariantChoice c, IDeltaSource old, string from, string to, string dir, IProgress<DownloadProgress>? progress, CancellationToken ct)
    {
        Directory.CreateDirectory(dir);
        var headerFile = Path.Combine(dir, "header.bin");
        var partFile = Path.Combine(dir, "target.part");
        DeltaHeader? header = null;
        if (File.Exists(headerFile))
        {
            try
            {
                header = DeltaHeader.Parse(await File.ReadAllBytesAsync(headerFile, ct).ConfigureAwait(false));
                DeltaApplier.CheckLinks(header, old.Length, from, c.File.Length, to);
            }
            catch (DeltaPatchException)
            {
                DeleteState(dir);
                Directory.CreateDirectory(dir);
                header = null;
            }
        }

        // Whole verified pieces already rebuilt; a piece cut short by a crash is dropped.
        int done = 0;
        if (header is not null && File.Exists(partFile))
        {
            long have = new FileInfo(partFile).Length;
            while (done < header.Pieces.Count && header.TargetOffsetOf(done + 1) <= have) done++;
            if (have != header.TargetOffsetOf(done))
                using (var fs = new FileStream(partFile, FileMode.Open, FileAccess.Write)) fs.SetLength(header.TargetOffsetOf(done));
        }
        else if (File.Exists(partFile)) File.Delete(partFile);

        if (header is null || done < header.Pieces.Count)
        {
            long offset = header?.PayloadOffsetOf(done) ?? 0;
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(_server, $"v1/deltas/{from}/{to}"));
            if (offset > 0) request.Headers.Range = new RangeHeaderValue(offset, null);
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.NotFound) { DeleteState(dir); return (null, 0); }
            if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable) { DeleteState(dir); throw new IOException("server refused the patch range; starting over"); }
            if (!response.IsSuccessStatusCode) throw new HttpRequestException($"GET delta {from[..12]}→{to[..12]}: {(int)response.StatusCode} {response.ReasonPhrase}", null, response.StatusCode);
            await using var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            Started?.Invoke(this, new DownloadEventArgs(c.Path, offset, header?.PatchLength ?? response.Content.Headers.ContentLength ?? 0));
            if (offset > 0 && response.StatusCode != HttpStatusCode.PartialContent)
                await SkipAsync(body, offset, ct).ConfigureAwait(false); // the server sent the whole patch: skip what is done
            else if (offset > 0 && response.Content.Headers.ContentRange?.From != offset)
                throw new IOException("server answered a different range of the patch");

            if (header is null)
            {
                var pre = new byte[12];
                await ReadExactlyAsync(body, pre, ct).ConfigureAwait(false);
                var hb = new byte[DeltaHeader.ReadHeaderLength(pre)];
                pre.CopyTo(hb, 0);
                await ReadExactlyAsync(body, hb.AsMemory(12), ct).ConfigureAwait(false);
                header = DeltaHeader.Parse(hb);
                DeltaApplier.CheckLinks(header, old.Length, from, c.File.Length, to);
                FileUtil.WriteAtomic(headerFile, hb);
            }

            FileStream part;
            try { part = new FileStream(partFile, FileMode.Append, FileAccess.Write, FileShare.None, bufferSize: 0); }
            catch (IOException e) { throw new CacheWriteException($"cannot write to the cache: {e.Message}", e); }
            await using (part.ConfigureAwait(false))
            {
                for (int i = done; i < header.Pieces.Count; i++)
                {
                    var payload = new byte[header.Pieces[i].PayloadLength];
                    await ReadExactlyAsync(body, payload, ct).ConfigureAwait(false);
                    var bytes = DeltaApplier.RebuildPiece(header, i, payload, old);
                    try
                    {
                        await part.WriteAsync(bytes, ct).ConfigureAwait(false);
                        part.Flush(flushToDisk: true);
                    }
                    catch (IOException e) { throw new CacheWriteException($"cannot write to the cache (disk full?): {e.Message}", e); }
                    long rebuilt = header.TargetOffsetOf(i + 1);
                    progress?.Report(new DownloadProgress(c.Path, rebuilt, c.File.Length));
                    PieceVerified?.Invoke(this, new DownloadEventArgs(c.Path, rebuilt, c.File.Length));
                }
            }
        }

        // The rebuilt file must be exactly the signed target.
        await using (var rebuiltFile = new FileStream(partFile, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true))
            await TargetVerifier.VerifyAsync(c.Path, c.File, rebuiltFile, ct).ConfigureAwait(false);
        var result = Path.Combine(_tmp, $"{to}.delta");
        File.Move(partFile, result, overwrite: true);
        DeleteState(dir);
        return (result, header.PatchLength);
    }

    private static async Task ReadExactlyAsync(Stream s, Memory<byte> buffer, CancellationToken ct)
    {
        int got = await s.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, ct).ConfigureAwait(false);
        if (got < buffer.Length) throw new IOException($"connection ended inside a patch piece ({got} of {buffer.Length} bytes)");
    }

    private static async Task SkipAsync(Stream s, long count, CancellationToken ct)
    {
        var buffer = new byte[1 << 16];
        while (count > 0)
        {
            int n = await s.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, count)), ct).ConfigureAwait(false);
            if (n == 0) throw new IOException("connection ended before the resume point of the patch");
            count -= n;
        }
    }

    /// <summary>Drops state of other pairs (an update that went another way) and rebuilt files never installed.</summary>
    private void RemoveStale(string keep)
    {
        if (!Directory.Exists(_tmp)) return;
        foreach (var d in Directory.GetDirectories(_tmp, "delta-*"))
            if (!string.Equals(Path.GetFullPath(d), Path.GetFullPath(keep), StringComparison.Ordinal)) DeleteState(d);
        foreach (var f in Directory.GetFiles(_tmp, "*.delta"))
        {
            try { File.Delete(f); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
    }

    private static void DeleteState(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
