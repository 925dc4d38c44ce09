using System.Security.Cryptography;

namespace OnDevice.Server;

/// <summary>A blob whose bytes did not match the hash it was uploaded under.</summary>
public sealed class BlobHashMismatchException(string expected, string actual)
    : Exception($"uploaded bytes have SHA-256 {actual}, not {expected}");

/// <summary>Content-addressed files on disk: <c>STORE/blobs/ab/abcdef…</c>, written via temp file and rename.</summary>
public sealed class BlobStore
{
    /// <summary>Uses <paramref name="root"/>/blobs.</summary>
    public BlobStore(string root)
    {
        Root = Path.Combine(Path.GetFullPath(root), "blobs");
        Directory.CreateDirectory(Root);
        Directory.CreateDirectory(Path.Combine(Root, "tmp"));
    }

    /// <summary>The blobs directory.</summary>
    public string Root { get; }

    /// <summary>True when <paramref name="sha256"/> is 64 lowercase hex digits.</summary>
    public static bool IsHash(string sha256) => sha256.Length == 64 && sha256.All(char.IsAsciiHexDigitLower);

    /// <summary>The file path of a blob (which may not exist).</summary>
    public string PathOf(string sha256)
    {
        if (!IsHash(sha256)) throw new ArgumentException($"'{sha256}' is not a lowercase SHA-256 hex string", nameof(sha256));
        return Path.Combine(Root, sha256[..2], sha256);
    }

    /// <summary>The blob's length, or null when absent.</summary>
    public long? LengthOf(string sha256)
    {
        var f = new FileInfo(PathOf(sha256));
        return f.Exists ? f.Length : null;
    }

    /// <summary>Streams <paramref name="content"/> to a temp file, checks its SHA-256, then renames it into place.</summary>
    /// <exception cref="BlobHashMismatchException">The bytes hash differently.</exception>
    public async Task<long> PutAsync(string sha256, Stream content, CancellationToken cancellationToken)
    {
        var dest = PathOf(sha256);
        var temp = Path.Combine(Root, "tmp", $"{sha256}.{Guid.NewGuid():N}");
        try
        {
            long length;
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            await using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
            {
                var buffer = new byte[1 << 16];
                int n;
                while ((n = await content.ReadAsync(buffer, cancellationToken)) > 0)
                {
                    hash.AppendData(buffer, 0, n);
                    await fs.WriteAsync(buffer.AsMemory(0, n), cancellationToken);
                }
                await fs.FlushAsync(cancellationToken);
                fs.Flush(flushToDisk: true);
                length = fs.Length;
            }
            var actual = Convert.ToHexStringLower(hash.GetHashAndReset());
            if (actual != sha256) throw new BlobHashMismatchException(sha256, actual);
            Directory.CreateDirectory(Path.GetDirectoryName(dest)!);
            File.Move(temp, dest, overwrite: true);
            return length;
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}
