using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using OnDevice.Core;
using OnDevice.Delivery;

namespace OnDevice.Cli;

/// <summary>
/// A release package on disk: <c>PKG/release.json</c> (a targets metadata envelope, unsigned after <c>pack</c>,
/// signed by <c>sign</c>) and <c>PKG/blobs/SHA256</c>, one content-addressed file per variant.
/// </summary>
public sealed class ReleasePackage
{
    /// <summary>Name of the metadata file inside a package.</summary>
    public const string MetadataFile = "release.json";

    private ReleasePackage(string dir, byte[] bytes, Envelope envelope, TargetsMetadata targets)
    {
        Directory = dir;
        Bytes = bytes;
        Envelope = envelope;
        Targets = targets;
    }

    /// <summary>The package directory.</summary>
    public string Directory { get; }

    /// <summary>Raw bytes of release.json.</summary>
    public byte[] Bytes { get; }

    /// <summary>The parsed envelope.</summary>
    public Envelope Envelope { get; }

    /// <summary>The release's targets metadata.</summary>
    public TargetsMetadata Targets { get; }

    /// <summary>The model fields of the first target (every target of a package shares model and version).</summary>
    public ModelTarget Release => Targets.Targets.Values.First().Model!;

    /// <summary>The metadata name of this release in a repository (<c>releases/MODEL/VERSION.json</c>).</summary>
    public string Name => TargetsNames.Release(Release.Model, Release.Version);

    /// <summary>Path of a target's blob inside the package.</summary>
    public string BlobPath(TargetFile f) => Path.Combine(Directory, "blobs", f.Sha256);

    /// <summary>Reads and parses a package.</summary>
    /// <exception cref="CliException">Missing or malformed.</exception>
    public static ReleasePackage Open(string dir)
    {
        var file = Path.Combine(dir, MetadataFile);
        if (!File.Exists(file)) throw new CliException($"{dir} is not a release package (no {MetadataFile}; make one with 'ondevice pack')");
        var bytes = File.ReadAllBytes(file);
        try
        {
            var (env, targets) = MetadataReader.Read<TargetsMetadata>(bytes);
            if (targets.Targets.Count == 0 || targets.Targets.Values.Any(t => t.Model is null))
                throw new CliException($"{file}: every target of a release must carry model fields");
            return new ReleasePackage(dir, bytes, env, targets);
        }
        catch (TrustException e)
        {
            throw new CliException($"{file}: {e.Message}");
        }
    }

    /// <summary>Creates a package: copies each variant file into blobs/ and writes the unsigned release.json.</summary>
    public static ReleasePackage Create(string dir, TargetsMetadata targets, IReadOnlyDictionary<string, string> sourceFiles)
    {
        System.IO.Directory.CreateDirectory(Path.Combine(dir, "blobs"));
        foreach (var (path, f) in targets.Targets)
        {
            var dest = Path.Combine(dir, "blobs", f.Sha256);
            if (!File.Exists(dest)) AtomicFile.Write(dest, fs => { using var src = File.OpenRead(sourceFiles[path]); src.CopyTo(fs); });
        }
        AtomicFile.WriteAllBytes(Path.Combine(dir, MetadataFile), targets.Sign());
        return Open(dir);
    }

    /// <summary>SHA-256 (hex) and length of a file.</summary>
    public static (string Sha256, long Length) HashFile(string path)
    {
        using var s = File.OpenRead(path);
        return (Convert.ToHexStringLower(SHA256.HashData(s)), s.Length);
    }

    /// <summary>Parses a byte size: 123, 512K, 4M, 8G (binary units).</summary>
    public static long ParseBytes(string s)
    {
        s = s.Trim();
        long mult = 1;
        if (s.Length > 0 && char.IsAsciiLetter(s[^1]))
        {
            mult = char.ToUpperInvariant(s[^1]) switch { 'K' => 1L << 10, 'M' => 1L << 20, 'G' => 1L << 30, 'T' => 1L << 40, _ => throw new CliException($"unknown size unit in '{s}' (use K, M, G)") };
            s = s[..^1];
        }
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || v < 0) throw new CliException($"'{s}' is not a size");
        return (long)(v * mult);
    }

    /// <summary>Writes text to a new file readable only by its owner (private keys).</summary>
    public static void WritePrivate(string path, string text)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using var fs = new FileStream(path, options);
        fs.Write(Encoding.UTF8.GetBytes(text));
        fs.Flush(flushToDisk: true);
    }
}
