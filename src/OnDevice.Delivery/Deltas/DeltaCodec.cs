using System.Buffers;
using System.IO.Compression;

namespace OnDevice.Delivery.Deltas;

/// <summary>Random access to the bytes of the old file a patch applies to.</summary>
public interface IDeltaSource
{
    /// <summary>Length of the old file.</summary>
    long Length { get; }

    /// <summary>Fills <paramref name="destination"/> with the old bytes starting at <paramref name="offset"/> (throws when it cannot).</summary>
    void Read(long offset, Span<byte> destination);
}

/// <summary>An old file held in memory.</summary>
public sealed class MemoryDeltaSource(ReadOnlyMemory<byte> bytes) : IDeltaSource
{
    /// <inheritdoc/>
    public long Length => bytes.Length;

    /// <inheritdoc/>
    public void Read(long offset, Span<byte> destination) => bytes.Span.Slice(checked((int)offset), destination.Length).CopyTo(destination);
}

/// <summary>The transforms of the patch format: byte-plane shuffle, XOR/ADD against old bytes, bounded Brotli, copy/add diff operations.</summary>
internal static class DeltaCodec
{
    /// <summary>Byte-plane shuffle: byte k of element i goes to plane k (so the similar high bytes of floats sit together).</summary>
    public static void Shuffle(ReadOnlySpan<byte> src, Span<byte> dst, int width)
    {
        if (width == 1) { src.CopyTo(dst); return; }
        int n = src.Length / width;
        for (int k = 0; k < width; k++)
        {
            var plane = dst.Slice(k * n, n);
            for (int i = 0; i < n; i++) plane[i] = src[i * width + k];
        }
    }

    /// <summary>Inverse of <see cref="Shuffle"/>.</summary>
    public static void Unshuffle(ReadOnlySpan<byte> src, Span<byte> dst, int width)
    {
        if (width == 1) { src.CopyTo(dst); return; }
        int n = src.Length / width;
        for (int k = 0; k < width; k++)
        {
            var plane = src.Slice(k * n, n);
            for (int i = 0; i < n; i++) dst[i * width + k] = plane[i];
        }
    }

    /// <summary>dst = a XOR b.</summary>
    public static void Xor(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, Span<byte> dst)
    {
        int i = 0;
        var va = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(a);
        var vb = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(b);
        var vd = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(dst);
        int words = Math.Min(va.Length, Math.Min(vb.Length, vd.Length));
        for (; i < words; i++) vd[i] = va[i] ^ vb[i];
        for (i *= 8; i < dst.Length; i++) dst[i] = (byte)(a[i] ^ b[i]);
    }

    /// <summary>dst = a − b bytewise modulo 256 (<paramref name="subtract"/>) or a + b.</summary>
    public static void AddBytes(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, Span<byte> dst, bool subtract)
    {
        if (subtract) for (int i = 0; i < dst.Length; i++) dst[i] = (byte)(a[i] - b[i]);
        else for (int i = 0; i < dst.Length; i++) dst[i] = (byte)(a[i] + b[i]);
    }

    /// <summary>Brotli-compresses <paramref name="data"/> at <paramref name="quality"/> (window 4 MiB).</summary>
    public static byte[] Compress(ReadOnlySpan<byte> data, int quality)
    {
        var dst = new byte[BrotliEncoder.GetMaxCompressedLength(data.Length)];
        if (!BrotliEncoder.TryCompress(data, dst, out int written, quality, 22)) throw new InvalidOperationException("Brotli compression failed");
        return dst.AsSpan(0, written).ToArray();
    }

    /// <summary>
    /// Decompresses a Brotli payload that must expand to exactly <paramref name="exactLength"/> bytes (or, when
    /// <paramref name="exact"/> is false, at most that many); a larger expansion stops at the limit.
    /// </summary>
    public static byte[] Decompress(ReadOnlySpan<byte> payload, int exactLength, bool exact, string at)
    {
        var dst = new byte[exactLength];
        using var dec = new BrotliDecoder();
        var status = dec.Decompress(payload, dst, out int consumed, out int written);
        switch (status)
        {
            case OperationStatus.Done:
                if (consumed != payload.Length) throw new DeltaPatchException($"{at}: {payload.Length - consumed} bytes follow the end of its compressed payload");
                if (exact && written != exactLength) throw new DeltaPatchException($"{at}: payload expands to {written} bytes, expected {exactLength}");
                return exact ? dst : dst.AsSpan(0, written).ToArray();
            case OperationStatus.DestinationTooSmall:
                throw new DeltaPatchException($"{at}: payload expands past {exactLength} bytes");
            case OperationStatus.NeedMoreData:
                throw new DeltaPatchException($"{at}: compressed payload is truncated");
            default:
                throw new DeltaPatchException($"{at}: compressed payload is corrupt");
        }
    }

    /// <summary>Most bytes a diff's operation stream may expand to for a piece of <paramref name="targetLength"/> bytes.</summary>
    public static int MaxOpsBytes(long targetLength) => (int)Math.Min(int.MaxValue, 2 * targetLength + 64);

    // ---------------------------------------------------------------- diff operations
    // A stream of operations, each a varint header (length << 1 | kind): kind 0 = COPY followed by a zigzag varint
    // of the old position relative to the end of the previous copy; kind 1 = ADD followed by that many literal bytes.

    /// <summary>Appends a COPY operation.</summary>
    public static void WriteCopy(List<byte> ops, long length, long oldPos, ref long expected)
    {
        WriteVarint(ops, (ulong)length << 1);
        long d = oldPos - expected;
        WriteVarint(ops, (ulong)((d << 1) ^ (d >> 63)));
        expected = oldPos + length;
    }

    /// <summary>Appends an ADD operation with its bytes.</summary>
    public static void WriteAdd(List<byte> ops, ReadOnlySpan<byte> literal)
    {
        if (literal.Length == 0) return;
        WriteVarint(ops, ((ulong)literal.Length << 1) | 1);
        foreach (var b in literal) ops.Add(b);
    }

    private static void WriteVarint(List<byte> o, ulong v)
    {
        while (v >= 0x80) { o.Add((byte)(v | 0x80)); v >>= 7; }
        o.Add((byte)v);
    }

    /// <summary>Runs an operation stream into <paramref name="output"/> (exactly filled), reading old bytes within [oldOffset, oldOffset + oldLength).</summary>
    public static void RunOps(ReadOnlySpan<byte> ops, IDeltaSource old, long oldOffset, long oldLength, Span<byte> output, string at)
    {
        int p = 0, pos = 0;
        long expected = 0;
        while (p < ops.Length)
        {
            ulong h = ReadVarint(ops, ref p, at);
            ulong len = h >> 1;
            if (len == 0 || len > (ulong)(output.Length - pos)) throw new DeltaPatchException($"{at}: an operation of {len} bytes does not fit the {output.Length - pos} bytes left");
            int n = (int)len;
            if ((h & 1) == 0)
            {
                ulong z = ReadVarint(ops, ref p, at);
                long d = (long)(z >> 1) ^ -(long)(z & 1);
                long src = expected + d;
                if (src < 0 || src > oldLength - n) throw new DeltaPatchException($"{at}: copy of {n} bytes from old position {src} is outside the {oldLength}-byte old range");
                old.Read(oldOffset + src, output.Slice(pos, n));
                expected = src + n;
            }
            else
            {
                if (n > ops.Length - p) throw new DeltaPatchException($"{at}: an add of {n} bytes runs past the end of the operations");
                ops.Slice(p, n).CopyTo(output[pos..]);
                p += n;
            }
            pos += n;
        }
        if (pos != output.Length) throw new DeltaPatchException($"{at}: operations produce {pos} bytes, the piece has {output.Length}");
    }

    private static ulong ReadVarint(ReadOnlySpan<byte> s, ref int p, string at)
    {
        ulong v = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (p >= s.Length) throw new DeltaPatchException($"{at}: truncated operation");
            byte b = s[p++];
            v |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return v;
        }
        throw new DeltaPatchException($"{at}: operation varint longer than 64 bits");
    }
}
