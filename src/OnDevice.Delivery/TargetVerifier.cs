using System.Security.Cryptography;

namespace OnDevice.Delivery;

/// <summary>
/// Streams a target's bytes while hashing them, never accepting more than the declared length: a server that keeps
/// sending is cut off one byte past the length. Supports resuming: feed the bytes already on disk first.
/// </summary>
public sealed class TargetVerifier : IDisposable
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

    /// <summary>Starts verifying <paramref name="file"/> at <paramref name="path"/>.</summary>
    public TargetVerifier(string path, TargetFile file)
    {
        Path = path;
        File = file;
    }

    /// <summary>The target path (for messages).</summary>
    public string Path { get; }

    /// <summary>The trusted description.</summary>
    public TargetFile File { get; }

    /// <summary>Bytes accepted so far.</summary>
    public long Received { get; private set; }

    /// <summary>Bytes still expected.</summary>
    public long Remaining => File.Length - Received;

    /// <summary>Accepts the next bytes; throws when they run past the declared length.</summary>
    /// <exception cref="TargetLengthException">More bytes than declared.</exception>
    public void Append(ReadOnlySpan<byte> chunk)
    {
        if (chunk.Length > Remaining) throw new TargetLengthException(Path, File.Length, Received + chunk.Length, tooLong: true);
        _hash.AppendData(chunk);
        Received += chunk.Length;
    }

    /// <summary>Checks the total length and the SHA-256.</summary>
    /// <exception cref="TargetMismatchException">Length or hash differ.</exception>
    public void Complete()
    {
        if (Received != File.Length) throw new TargetLengthException(Path, File.Length, Received, tooLong: false);
        var actual = Convert.ToHexStringLower(_hash.GetHashAndReset());
        if (actual != File.Sha256) throw new TargetHashException(Path, File.Sha256, actual);
    }

    /// <summary>
    /// Copies <paramref name="source"/> to <paramref name="destination"/> (may be null to only verify), reading at
    /// most one byte past the remaining declared length, then checks length and hash.
    /// </summary>
    public async Task CopyAsync(Stream source, Stream? destination, IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        var buffer = new byte[1 << 20];
        while (true)
        {
            int want = (int)Math.Min(buffer.Length, Remaining + 1);
            int n = await source.ReadAsync(buffer.AsMemory(0, want), cancellationToken).ConfigureAwait(false);
            if (n == 0) break;
            Append(buffer.AsSpan(0, n));
            if (destination is not null) await destination.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
            progress?.Report(Received);
        }
        Complete();
    }

    /// <summary>Verifies a whole stream against <paramref name="file"/>.</summary>
    public static async Task VerifyAsync(string path, TargetFile file, Stream source, CancellationToken cancellationToken = default)
    {
        using var v = new TargetVerifier(path, file);
        await v.CopyAsync(source, null, null, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public void Dispose() => _hash.Dispose();
}
