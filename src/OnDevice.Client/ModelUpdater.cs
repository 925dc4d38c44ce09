using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using OnDevice.Delivery;

namespace OnDevice.Client;

/// <summary>A model file shipped inside the app, pinned by its SHA-256: the last resort when nothing verified is cached.</summary>
public sealed record BundledModel(string Path, string Sha256, string Version, string Variant = "bundled");

/// <summary>A verified model on the device.</summary>
public sealed record InstalledModel(string Model, string Version, string Variant, string Path, string Sha256, long Length, DateTimeOffset InstalledAt, bool Bundled = false);

/// <summary>Settings of a <see cref="ModelUpdater"/>.</summary>
public sealed record ModelUpdaterOptions
{
    /// <summary>Delivery server base URL (e.g. https://models.example.com/).</summary>
    public required Uri Server { get; init; }
    /// <summary>Model name.</summary>
    public required string Model { get; init; }
    /// <summary>Cache directory: trusted metadata, partial downloads, installed versions.</summary>
    public required string CacheDirectory { get; init; }
    /// <summary>The trusted root metadata shipped with the app.</summary>
    public required byte[] TrustedRoot { get; init; }
    /// <summary>This device, for variant selection.</summary>
    public required DeviceDescription Device { get; init; }
    /// <summary>The model bundled with the app, if any.</summary>
    public BundledModel? Bundled { get; init; }
    /// <summary>Verified versions kept on disk.</summary>
    public int KeepVersions { get; init; } = 3;
    /// <summary>Download attempts per update (each resumes where the last stopped).</summary>
    public int MaxAttempts { get; init; } = 5;
    /// <summary>Delay before the second attempt; doubled each time (with jitter).</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromMilliseconds(200);
    /// <summary>HTTP client to use (one is created when null).</summary>
    public HttpClient? Http { get; init; }
    /// <summary>Clock (the update's reference time is read once at its start).</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;
    /// <summary>Metadata size limits.</summary>
    public SizeLimits Limits { get; init; } = SizeLimits.Default;
    /// <summary>Follow the server's staged rollouts (<c>POST /v1/assign/{model}</c>); the choice is still verified through TUF.</summary>
    public bool FollowRollouts { get; init; } = true;
    /// <summary>Stable install id deciding the rollout cohort (null: a random one kept in the cache directory).</summary>
    public string? InstallId { get; init; }
    /// <summary>Rollout channel (null: the server's default, <c>stable</c>).</summary>
    public string? Channel { get; init; }
    /// <summary>Ask the server for a patch from the installed version before downloading a whole file.</summary>
    public bool UseDeltas { get; init; } = true;
}

/// <summary>What <see cref="ModelUpdater.CheckAsync"/> found.</summary>
public sealed record UpdateCheck(bool UpdateAvailable, InstalledModel? Installed, VariantChoice? Candidate);

/// <summary>Outcome of an update.</summary>
public enum UpdateStatus
{
    /// <summary>The best variant is already installed.</summary>
    UpToDate,
    /// <summary>A new version was downloaded, verified and installed.</summary>
    Installed,
    /// <summary>No released variant fits this device.</summary>
    NoCompatibleVariant,
    /// <summary>Something failed; the previous verified model stays in use.</summary>
    Failed,
    /// <summary>The rollout assigns no version to this device yet; the current model (if any) stays in use.</summary>
    NotAssigned,
    /// <summary>An already verified cached version became current without a download (e.g. returning to the last good version).</summary>
    Switched,
}

/// <summary>Result of <see cref="ModelUpdater.UpdateAsync"/>; on failure <see cref="Current"/> is what keeps being served.</summary>
public sealed record UpdateResult(UpdateStatus Status, InstalledModel? Current, VariantChoice? Candidate, Exception? Error);

/// <summary>Download progress.</summary>
public sealed record DownloadProgress(string TargetPath, long Received, long Total);

/// <summary>Event data of download events.</summary>
public sealed class DownloadEventArgs(string targetPath, long received, long total, Exception? error = null) : EventArgs
{
    /// <summary>Target path being downloaded.</summary>
    public string TargetPath { get; } = targetPath;
    /// <summary>Bytes verified so far.</summary>
    public long Received { get; } = received;
    /// <summary>Declared length.</summary>
    public long Total { get; } = total;
    /// <summary>The failure (DownloadFailed only).</summary>
    public Exception? Error { get; } = error;
}

/// <summary>The cache directory cannot take the download (disk full or unwritable).</summary>
public sealed class CacheWriteException(string message, Exception inner) : IOException(message, inner);

/// <summary>
/// Keeps a model up to date on a device: verifies the whole TUF chain, picks the best variant the device can run,
/// downloads it resumably (bounded by its declared length), verifies its hash, installs it atomically and keeps the
/// last N verified versions. Any failure leaves the newest verified local (or bundled) model in use.
/// </summary>
public sealed class ModelUpdater : IDisposable
{
    private const string ManifestFile = "installed.json";
    private readonly ModelUpdaterOptions _o;
    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly TrustUpdater _trust;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Dictionary<string, (long Length, DateTime Mtime, bool Ok)> _verified = new(StringComparer.Ordinal);

    /// <summary>Creates an updater (no I/O until the first call).</summary>
    /// <exception cref="ArgumentException">Invalid options.</exception>
    public ModelUpdater(ModelUpdaterOptions options)
    {
        if (options.KeepVersions < 1) throw new ArgumentException("KeepVersions must be at least 1", nameof(options));
        if (options.MaxAttempts < 1) throw new ArgumentException("MaxAttempts must be at least 1", nameof(options));
        try { TargetsNames.ValidateSegment("model name", options.Model); }
        catch (MalformedMetadataException e) { throw new ArgumentException(e.Message, nameof(options)); }
        if (options.Bundled is { } b && !BlobLike(b.Sha256)) throw new ArgumentException("Bundled.Sha256 must be 64 lowercase hex digits", nameof(options));
        if (options.InstallId is { } id && (id.Length is < 8 or > 128 || id.Any(ch => ch <= ' ' || ch > '~')))
            throw new ArgumentException("InstallId must be 8-128 printable ASCII characters", nameof(options));
        _o = options;
        _ownsHttp = options.Http is null;
        _http = options.Http ?? new HttpClient { Timeout = TimeSpan.FromMinutes(10) };
        var baseUri = options.Server.AbsoluteUri.EndsWith('/') ? options.Server : new Uri(options.Server.AbsoluteUri + "/");
        Server = baseUri;
        Directory.CreateDirectory(options.CacheDirectory);
        _trust = new TrustUpdater(new HttpMetadataSource(_http, baseUri), new FileTrustStore(Path.Combine(options.CacheDirectory, "trust")), options.TrustedRoot, options.Limits, options.Time);
        Deltas = new DeltaDownloader(_http, baseUri, options.CacheDirectory, options.MaxAttempts, options.InitialBackoff);
    }

    /// <summary>Patch downloads (used before a full download when <see cref="ModelUpdaterOptions.UseDeltas"/> is on).</summary>
    public DeltaDownloader Deltas { get; }

    /// <summary>The server base URL.</summary>
    public Uri Server { get; }

    /// <summary>Raised when a download starts (or resumes).</summary>
    public event EventHandler<DownloadEventArgs>? DownloadStarted;
    /// <summary>Raised as verified bytes arrive.</summary>
    public event EventHandler<DownloadEventArgs>? DownloadProgressChanged;
    /// <summary>Raised when a download verified and installed.</summary>
    public event EventHandler<DownloadEventArgs>? DownloadFinished;
    /// <summary>Raised when a download failed (the previous model stays in use).</summary>
    public event EventHandler<DownloadEventArgs>? DownloadFailed;

    /// <summary>Refreshes trusted metadata and reports whether a better variant than the installed one exists.</summary>
    public async Task<UpdateCheck> CheckAsync(CancellationToken cancellationToken = default)
    {
        var (choice, _) = await ResolveAsync(cancellationToken).ConfigureAwait(false);
        var installed = GetInstalledModel();
        // Also true when the choice is cached but another version is in use (a pending return to the last good version).
        bool available = choice is not null && (!IsInstalled(choice) || installed?.Sha256 != choice.File.Sha256);
        return new UpdateCheck(available, installed, choice);
    }

    /// <summary>
    /// Checks, downloads, verifies and installs the best variant. Never throws for network, server, verification
    /// or disk failures: the result says what happened and which verified model is in use. Cancellation throws.
    /// </summary>
    public async Task<UpdateResult> UpdateAsync(IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        VariantChoice? choice = null;
        try
        {
            var before = GetInstalledModel();
            (choice, var assignment) = await ResolveAsync(cancellationToken).ConfigureAwait(false);
            if (assignment is not null) RolloutAssignments.Save(_o.CacheDirectory, assignment); // the version to prefer from now on
            if (choice is null)
                return new UpdateResult(assignment is { Unrestricted: false, Version: null } ? UpdateStatus.NotAssigned : UpdateStatus.NoCompatibleVariant, GetInstalledModel(), null, null);
            if (IsInstalled(choice))
            {
                var current = GetInstalledModel();
                return new UpdateResult(current?.Path != before?.Path ? UpdateStatus.Switched : UpdateStatus.UpToDate, current, choice, null);
            }
            var part = CopyLocal(choice)
                ?? (_o.UseDeltas ? await Deltas.TryAsync(choice, GetInstalledModel(), progress, cancellationToken).ConfigureAwait(false) : null)
                ?? await DownloadAsync(choice, progress, cancellationToken).ConfigureAwait(false);
            var installed = Install(choice, part);
            DownloadFinished?.Invoke(this, new DownloadEventArgs(choice.Path, choice.File.Length, choice.File.Length));
            return new UpdateResult(UpdateStatus.Installed, installed, choice, null);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            // Any failure (network, server, verification, disk, a bug): report it, keep serving what verified.
            if (choice is not null) DownloadFailed?.Invoke(this, new DownloadEventArgs(choice.Path, 0, choice.File.Length, e));
            return new UpdateResult(UpdateStatus.Failed, GetInstalledModel(), choice, e);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Path of the newest local model whose bytes verify (installed or bundled), or null.</summary>
    public string? GetInstalledModelPath() => GetInstalledModel()?.Path;

    /// <summary>
    /// The local model in use: the version the rollout last assigned if a verified copy is here, else the newest local
    /// model whose bytes verify against its pinned hash, or null.
    /// </summary>
    public InstalledModel? GetInstalledModel()
    {
        var all = ReadManifest().ToList();
        if (_o.Bundled is { } b) all.Add(new InstalledModel(_o.Model, b.Version, b.Variant, b.Path, b.Sha256, -1, DateTimeOffset.MinValue, Bundled: true));
        var assigned = _o.FollowRollouts && RolloutAssignments.Load(_o.CacheDirectory) is { Unrestricted: false, Version: { } v } ? v : null;
        foreach (var m in all.OrderByDescending(m => m.Version == assigned).ThenByDescending(m => m.Version, ModelVersion.Comparer).ThenByDescending(m => m.InstalledAt))
            if (Verifies(m)) return m;
        return null;
    }

    /// <summary>Every installed (non-bundled) version, newest first, as recorded (not re-verified).</summary>
    public IReadOnlyList<InstalledModel> ListInstalled() =>
        ReadManifest().OrderByDescending(m => m.Version, ModelVersion.Comparer).ThenByDescending(m => m.InstalledAt).ToList();

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_ownsHttp) _http.Dispose();
        _gate.Dispose();
    }

    private async Task<(VariantChoice? Choice, RolloutAssignment? Assignment)> ResolveAsync(CancellationToken ct)
    {
        var set = await _trust.RefreshAsync(ct).ConfigureAwait(false);
        var releases = await _trust.LoadReleasesAsync(set, _o.Model, ct).ConfigureAwait(false);
        if (!_o.FollowRollouts) return (VariantSelector.Select(releases, _o.Model, _o.Device), null);
        var request = new AssignmentRequest
        {
            InstallId = RolloutAssignments.InstallId(_o.CacheDirectory, _o.InstallId), Channel = _o.Channel,
            InstalledVersion = GetInstalledModel()?.Version, Device = _o.Device,
        };
        var assignment = await RolloutAssignments.FetchAsync(_http, Server, _o.Model, request, _o.CacheDirectory, ct).ConfigureAwait(false);
        return (RolloutAssignments.Select(releases, _o.Model, _o.Device, assignment), assignment);
    }

    private bool IsInstalled(VariantChoice c) =>
        ReadManifest().Any(m => m.Sha256 == c.File.Sha256 && m.Version == c.Target.Version && Verifies(m));

    /// <summary>
    /// The same bytes already verified on the device (another version or the bundled file with the signed hash, e.g. a
    /// release that changed another variant only): copied into a part file and re-hashed, no download. Null when none.
    /// </summary>
    private string? CopyLocal(VariantChoice c)
    {
        var candidates = ReadManifest().AsEnumerable();
        if (_o.Bundled is { } b) candidates = candidates.Append(new InstalledModel(_o.Model, b.Version, b.Variant, b.Path, b.Sha256, -1, DateTimeOffset.MinValue, Bundled: true));
        var source = candidates.FirstOrDefault(m => m.Sha256 == c.File.Sha256 && Verifies(m));
        if (source is null) return null;
        var part = PartPath(c);
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(part)!);
            File.Copy(source.Path, part, overwrite: true);
            using var s = new FileStream(part, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
            if (s.Length == c.File.Length && Convert.ToHexStringLower(SHA256.HashData(s)) == c.File.Sha256) return part;
        }
        catch (IOException) { } // copying failed (e.g. disk full): the download path reports cache errors properly
        try { File.Delete(part); } catch (IOException) { }
        return null;
    }

    private string PartPath(VariantChoice c) => Path.Combine(_o.CacheDirectory, "tmp", c.File.Sha256 + ".part");

    private async Task<string> DownloadAsync(VariantChoice c, IProgress<DownloadProgress>? progress, CancellationToken ct)
    {
        var part = PartPath(c);
        Directory.CreateDirectory(Path.GetDirectoryName(part)!);
        Exception? last = null;
        bool restartedAfterMismatch = false;
        for (int attempt = 0; attempt < _o.MaxAttempts; attempt++)
        {
            if (attempt > 0)
            {
                var delay = _o.InitialBackoff * Math.Pow(2, attempt - 1) * (0.75 + Random.Shared.NextDouble() / 2);
                await Task.Delay(delay, ct).ConfigureAwait(false);
            }
            try
            {
                await DownloadOnceAsync(c, part, progress, ct).ConfigureAwait(false);
                return part;
            }
            catch (TargetHashException e) when (!restartedAfterMismatch)
            {
                // The bytes kept from an earlier attempt may be what was wrong: start over once from zero.
                restartedAfterMismatch = true;
                last = e;
                File.Delete(part);
            }
            catch (TargetMismatchException)
            {
                File.Delete(part);
                throw;
            }
            catch (CacheWriteException)
            {
                if (File.Exists(part)) File.Delete(part);
                throw;
            }
            catch (Exception e) when (e is HttpRequestException or IOException || (e is OperationCanceledException && !ct.IsCancellationRequested))
            {
                last = e; // resume on the next attempt from what is on disk
            }
        }
        throw last ?? new IOException("download failed");
    }

    private async Task DownloadOnceAsync(VariantChoice c, string part, IProgress<DownloadProgress>? progress, CancellationToken ct)
    {
        using var verifier = new TargetVerifier(c.Path, c.File);
        long have = File.Exists(part) ? new FileInfo(part).Length : 0;
        if (have > c.File.Length) { File.Delete(part); have = 0; }
        if (have > 0)
        {
            // Re-hash what is already on disk so the final hash covers every byte.
            await using var existing = new FileStream(part, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
            var buf = new byte[1 << 16];
            long left = have;
            while (left > 0)
            {
                int n = await existing.ReadAsync(buf.AsMemory(0, (int)Math.Min(buf.Length, left)), ct).ConfigureAwait(false);
                if (n == 0) break;
                verifier.Append(buf.AsSpan(0, n));
                left -= n;
            }
        }
        DownloadStarted?.Invoke(this, new DownloadEventArgs(c.Path, have, c.File.Length));
        if (have == c.File.Length)
        {
            verifier.Complete();
            return;
        }

        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(Server, $"v1/blobs/{c.File.Sha256}"));
        if (have > 0) request.Headers.Range = new RangeHeaderValue(have, null);
        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable) { File.Delete(part); throw new IOException("server refused the range; restarting"); }
        if (!response.IsSuccessStatusCode) throw new HttpRequestException($"GET blob {c.File.Sha256[..12]}: {(int)response.StatusCode} {response.ReasonPhrase}", null, response.StatusCode);
        FileMode mode = FileMode.Append;
        if (have > 0 && response.StatusCode != HttpStatusCode.PartialContent)
        {
            // The server sent the whole file: start over.
            verifier.Dispose();
            File.Delete(part);
            await DownloadBodyAsync(c, part, response, new TargetVerifier(c.Path, c.File), FileMode.Create, progress, ct).ConfigureAwait(false);
            return;
        }
        if (have > 0 && response.Content.Headers.ContentRange?.From != have) throw new IOException("server answered a different range");
        await DownloadBodyAsync(c, part, response, verifier, mode, progress, ct).ConfigureAwait(false);
    }

    private async Task DownloadBodyAsync(VariantChoice c, string part, HttpResponseMessage response, TargetVerifier verifier, FileMode mode, IProgress<DownloadProgress>? progress, CancellationToken ct)
    {
        await using var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        FileStream file;
        // Unbuffered, so a full disk surfaces on the write that hits it, not later in a flush.
        try { file = new FileStream(part, mode, FileAccess.Write, FileShare.None, bufferSize: 0, useAsync: true); }
        catch (IOException e) { throw new CacheWriteException($"cannot write to the cache: {e.Message}", e); }
        try
        {
            var buffer = new byte[1 << 16];
            long lastReport = 0;
            while (true)
            {
                int want = (int)Math.Min(buffer.Length, verifier.Remaining + 1);
                int n = await body.ReadAsync(buffer.AsMemory(0, want), ct).ConfigureAwait(false);
                if (n == 0) break;
                verifier.Append(buffer.AsSpan(0, n)); // throws past the declared length: nothing beyond it is written
                try { await file.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false); }
                catch (IOException e) { throw new CacheWriteException($"cannot write to the cache (disk full?): {e.Message}", e); }
                if (verifier.Received - lastReport >= (1 << 20) || verifier.Remaining == 0)
                {
                    lastReport = verifier.Received;
                    progress?.Report(new DownloadProgress(c.Path, verifier.Received, c.File.Length));
                    DownloadProgressChanged?.Invoke(this, new DownloadEventArgs(c.Path, verifier.Received, c.File.Length));
                }
            }
            try { file.Flush(flushToDisk: true); }
            catch (IOException e) { throw new CacheWriteException($"cannot write to the cache (disk full?): {e.Message}", e); }
        }
        finally
        {
            try { await file.DisposeAsync().ConfigureAwait(false); }
            catch (IOException) { /* the write or flush above already reported it */ }
        }
        if (verifier.Received < c.File.Length) throw new IOException($"connection ended after {verifier.Received} of {c.File.Length} bytes");
        verifier.Complete();
    }

    private InstalledModel Install(VariantChoice c, string part)
    {
        var fileName = c.Path[(c.Path.LastIndexOf('/') + 1)..];
        var dir = Path.Combine(_o.CacheDirectory, "models", c.Target.Version, c.Target.Variant);
        Directory.CreateDirectory(dir);
        var final = Path.Combine(dir, fileName);
        try { File.Move(part, final, overwrite: true); }
        catch (IOException e) { throw new CacheWriteException($"cannot install into the cache: {e.Message}", e); }
        var entry = new InstalledModel(_o.Model, c.Target.Version, c.Target.Variant, final, c.File.Sha256, c.File.Length, _o.Time.GetUtcNow());
        var list = ReadManifest().Where(m => m.Path != final).Append(entry)
            .OrderByDescending(m => m.Version, ModelVersion.Comparer).ThenByDescending(m => m.InstalledAt).ToList();
        // The entry just installed is always kept, also when it is older than the others (a return to the last good version).
        var keep = list.Where(m => m.Path == final).Concat(list.Where(m => m.Path != final).Take(_o.KeepVersions - 1))
            .OrderByDescending(m => m.Version, ModelVersion.Comparer).ThenByDescending(m => m.InstalledAt).ToList();
        try { FileUtil.WriteAtomic(Path.Combine(_o.CacheDirectory, ManifestFile), JsonSerializer.SerializeToUtf8Bytes(keep)); }
        catch (IOException e) { throw new CacheWriteException($"cannot record the installed model: {e.Message}", e); }
        foreach (var old in list)
        {
            if (keep.Any(k => k.Path == old.Path)) continue;
            try { File.Delete(old.Path); } catch (IOException) { }
        }
        lock (_verified) _verified[final] = (c.File.Length, File.GetLastWriteTimeUtc(final), true);
        return entry;
    }

    private IReadOnlyList<InstalledModel> ReadManifest()
    {
        var p = Path.Combine(_o.CacheDirectory, ManifestFile);
        if (!File.Exists(p)) return [];
        try { return JsonSerializer.Deserialize<List<InstalledModel>>(File.ReadAllBytes(p)) ?? []; }
        catch (JsonException) { return []; }
    }

    /// <summary>True when the file exists and hashes to its pinned SHA-256 (cached by length and modification time).</summary>
    private bool Verifies(InstalledModel m)
    {
        var fi = new FileInfo(m.Path);
        if (!fi.Exists || (m.Length >= 0 && fi.Length != m.Length)) return false;
        lock (_verified)
            if (_verified.TryGetValue(m.Path, out var v) && v.Length == fi.Length && v.Mtime == fi.LastWriteTimeUtc) return v.Ok;
        bool ok;
        try
        {
            using var s = new FileStream(m.Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
            ok = Convert.ToHexStringLower(SHA256.HashData(s)) == m.Sha256;
        }
        catch (IOException) { ok = false; }
        lock (_verified) _verified[m.Path] = (fi.Length, fi.LastWriteTimeUtc, ok);
        return ok;
    }

    private static bool BlobLike(string s) => s.Length == 64 && s.All(char.IsAsciiHexDigitLower);
}
