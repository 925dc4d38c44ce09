using System.Security.Cryptography;

namespace OnDevice.Delivery.Deltas;

/// <summary>
/// Rebuilds a target from an old file and a patch, piece by piece: every piece is rebuilt in memory (at most
/// <see cref="DeltaHeader.MaxPieceBytes"/>), checked against its SHA-256, and only then handed out. Any fault is a
/// <see cref="DeltaPatchException"/>; a caller must still verify the whole target against trusted metadata.
/// </summary>
public static class DeltaApplier
{
    /// <summary>Checks that <paramref name="header"/> links the expected files (the installed one and the trusted target).</summary>
    /// <exception cref="DeltaPatchException">The patch is for other files.</exception>
    public static void CheckLinks(DeltaHeader header, long oldLength, string oldSha256, long targetLength, string targetSha256)
    {
        if (header.OldLength != oldLength || header.OldSha256 != oldSha256)
            throw new DeltaPatchException($"patch applies to {header.OldSha256[..12]} ({header.OldLength} bytes), not to the installed {oldSha256[..Math.Min(12, oldSha256.Length)]} ({oldLength} bytes)");
        if (header.TargetLength != targetLength || header.TargetSha256 != targetSha256)
            throw new DeltaPatchException($"patch builds {header.TargetSha256[..12]} ({header.TargetLength} bytes), not the trusted target {targetSha256[..Math.Min(12, targetSha256.Length)]} ({targetLength} bytes)");
    }

    /// <summary>Rebuilds piece <paramref name="index"/> from its payload and the old file, verified against its SHA-256.</summary>
    /// <exception cref="DeltaPatchException">Bad payload, out-of-range reads, or a hash mismatch.</exception>
    public static byte[] RebuildPiece(DeltaHeader header, int index, ReadOnlySpan<byte> payload, IDeltaSource old)
    {
        var x = header.Pieces[index];
        if (payload.Length != x.PayloadLength) throw new DeltaPatchException($"patch piece {index}: {payload.Length} payload bytes given, header says {x.PayloadLength}");
        if (old.Length != header.OldLength) throw new DeltaPatchException($"patch applies to a {header.OldLength}-byte file, the old file has {old.Length}");
        string at = $"patch piece {index} ({x.Kind})";
        int n = (int)x.TargetLength;
        byte[] result;
        switch (x.Kind)
        {
            case DeltaPieceKind.Copy:
                result = new byte[n];
                old.Read(x.OldOffset, result);
                break;
            case DeltaPieceKind.Literal:
                result = payload.ToArray();
                break;
            case DeltaPieceKind.LiteralBrotli:
            {
                var plain = DeltaCodec.Decompress(payload, n, exact: true, at);
                result = new byte[n];
                DeltaCodec.Unshuffle(plain, result, x.Width);
                break;
            }
            case DeltaPieceKind.XorBrotli:
            case DeltaPieceKind.AddBrotli:
            {
                var plain = DeltaCodec.Decompress(payload, n, exact: true, at);
                var d = new byte[n];
                DeltaCodec.Unshuffle(plain, d, x.Width);
                var o = new byte[n];
                old.Read(x.OldOffset, o);
                result = new byte[n];
                if (x.Kind == DeltaPieceKind.XorBrotli) DeltaCodec.Xor(d, o, result);
                else DeltaCodec.AddBytes(o, d, result, subtract: false);
                break;
            }
            case DeltaPieceKind.DiffBrotli:
            {
                var ops = DeltaCodec.Decompress(payload, DeltaCodec.MaxOpsBytes(n), exact: false, at);
                result = new byte[n];
                DeltaCodec.RunOps(ops, old, x.OldOffset, x.OldLength, result, at);
                break;
            }
            default:
                throw new DeltaPatchException($"{at}: unknown kind");
        }
        var actual = SHA256.HashData(result);
        if (!actual.AsSpan().SequenceEqual(x.Sha256)) throw new DeltaPieceHashException(index, x.Sha256Hex, Convert.ToHexStringLower(actual));
        return result;
    }

    /// <summary>
    /// Applies a whole patch read from <paramref name="patch"/> to <paramref name="old"/>, writing the target to
    /// <paramref name="output"/>, then checks the target's length and SHA-256 against the header. Reads at most the
    /// declared patch length plus one byte (to detect trailing data).
    /// </summary>
    /// <exception cref="DeltaPatchException">Any fault in the patch.</exception>
    public static async Task<DeltaHeader> ApplyAsync(Stream patch, IDeltaSource old, Stream output, CancellationToken cancellationToken = default)
    {
        var pre = new byte[12];
        await ReadExactlyAsync(patch, pre, "preamble", cancellationToken).ConfigureAwait(false);
        int headerLength = DeltaHeader.ReadHeaderLength(pre);
        var hb = new byte[headerLength];
        pre.CopyTo(hb, 0);
        await ReadExactlyAsync(patch, hb.AsMemory(12), "header", cancellationToken).ConfigureAwait(false);
        var header = DeltaHeader.Parse(hb);
        using var whole = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        for (int i = 0; i < header.Pieces.Count; i++)
        {
            var payload = new byte[header.Pieces[i].PayloadLength];
            await ReadExactlyAsync(patch, payload, $"piece {i} payload", cancellationToken).ConfigureAwait(false);
            var bytes = RebuildPiece(header, i, payload, old);
            whole.AppendData(bytes);
            await output.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
        }
        if (await patch.ReadAsync(new byte[1], cancellationToken).ConfigureAwait(false) != 0) throw new DeltaPatchException("data follows the last piece of the patch");
        var sha = Convert.ToHexStringLower(whole.GetHashAndReset());
        if (sha != header.TargetSha256) throw new DeltaPatchException($"patch rebuilt a target with SHA-256 {sha}, the header says {header.TargetSha256}");
        return header;
    }

    /// <summary>Applies an in-memory patch to an in-memory old file; returns the verified target.</summary>
    /// <exception cref="DeltaPatchException">Any fault in the patch.</exception>
    public static byte[] Apply(ReadOnlyMemory<byte> old, byte[] patch)
    {
        using var input = new MemoryStream(patch, writable: false);
        using var output = new MemoryStream();
        ApplyAsync(input, new MemoryDeltaSource(old), output).GetAwaiter().GetResult();
        return output.ToArray();
    }

    private static async Task ReadExactlyAsync(Stream s, Memory<byte> buffer, string what, CancellationToken ct)
    {
        int got = await s.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, ct).ConfigureAwait(false);
        if (got < buffer.Length) throw new DeltaPatchException($"patch ends inside its {what} ({got} of {buffer.Length} bytes)");
    }
}
