using System.Collections.Concurrent;
using OnDevice.Delivery.Deltas;

namespace OnDevice.Server.Deltas;

/// <summary>
/// Patches between stored blobs, built on first request and kept on disk (<c>STORE/deltas/ab/FROM-TO.patch</c>,
/// written via temp file and rename). A pair not worth a patch (it would not save <see cref="ServerOptions.DeltaMinSaving"/>
/// against the full file and against the target compressed alone) is remembered with an empty <c>.none</c> marker.
/// One patch is built at a time; concurrent requests for the same pair share the work.
/// </summary>
public sealed class DeltaCache
{
    private readonly BlobStore _blobs;
    private readonly ServerOptions _options;
    private readonly ILogger<DeltaCache> _log;
    private readonly ConcurrentDictionary<string, Lazy<Task<string?>>> _inFlight = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _buildGate = new(1, 1);

    /// <summary>Uses STORE/deltas next to the blobs.</summary>
    public DeltaCache(BlobStore blobs, ServerOptions options, ILogger<DeltaCache> log)
    {
        _blobs = blobs;
        _options = options;
        _log = log;
        Root = Path.Combine(Path.GetFullPath(options.Store), "deltas");
        Directory.CreateDirectory(Path.Combine(Root, "tmp"));
    }

    /// <summary>The deltas directory.</summary>
    public string Root { get; }

    /// <summary>Path of the cached patch file of a pair (which may not exist).</summary>
    public string PatchPath(string from, string to) => Path.Combine(Root, from[..2], $"{from}-{to}.patch");

    private string NonePath(string from, string to) => Path.Combine(Root, from[..2], $"{from}-{to}.none");

    /// <summary>The patch file from blob <paramref name="from"/> to blob <paramref name="to"/>, building it if needed; null when not offered.</summary>
    public async Task<string?> GetAsync(string from, string to, CancellationToken cancellationToken)
    {
        if (!BlobStore.IsHash(from) || !BlobStore.IsHash(to) || from == to) return null;
        var patch = PatchPath(from, to);
        if (File.Exists(patch)) return patch;
        if (File.Exists(NonePath(from, to))) return null;
        if (_blobs.LengthOf(from) is not { } fromLength || _blobs.LengthOf(to) is not { } toLength) return null;
        if (fromLength > _options.DeltaMaxFileBytes || toLength > _options.DeltaMaxFileBytes || toLength == 0) return null;
        var key = from + "-" + to;
        var work = _inFlight.GetOrAdd(key, _ => new Lazy<Task<string?>>(() => Task.Run(() => BuildAsync(from, to))));
        try { return await work.Value.WaitAsync(cancellationToken).ConfigureAwait(false); }
        finally { if (work.Value.IsCompleted) _inFlight.TryRemove(new KeyValuePair<string, Lazy<Task<string?>>>(key, work)); }
    }

    private async Task<string?> BuildAsync(string from, string to)
    {
        await _buildGate.WaitAsync().ConfigureAwait(false);
        try
        {
            var patch = PatchPath(from, to);
            if (File.Exists(patch)) return patch;
            var old = await File.ReadAllBytesAsync(_blobs.PathOf(from)).ConfigureAwait(false);
            var target = await File.ReadAllBytesAsync(_blobs.PathOf(to)).ConfigureAwait(false);
            var built = DeltaFactory.Build(old, target);
            if (built.Header.OldSha256 != from || built.Header.TargetSha256 != to)
            {
                _log.LogWarning("blob {From} or {To} does not hash to its name; no patch offered", from, to);
                return null;
            }
            bool worth = built.WorthOffering(_options.DeltaMinSaving);
            _log.LogInformation("delta {From}->{To}: {Patch} of {Full} bytes ({Ratio:0.000}), tensor-aware {Aware}, built in {Ms} ms, {Offered}",
                from[..12], to[..12], built.Patch.Length, target.Length, built.Ratio, built.TensorAware, (long)built.Elapsed.TotalMilliseconds, worth ? "offered" : "not offered");
            if (!worth)
            {
                WriteAtomic(NonePath(from, to), []);
                return null;
            }
            WriteAtomic(patch, built.Patch);
            return patch;
        }
        finally
        {
            _buildGate.Release();
        }
    }

    private void WriteAtomic(string path, byte[] bytes)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = Path.Combine(Root, "tmp", $"{Path.GetFileName(path)}.{Guid.NewGuid():N}");
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            {
                fs.Write(bytes);
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}
