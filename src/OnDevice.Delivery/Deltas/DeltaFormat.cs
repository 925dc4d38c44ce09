using System.Buffers.Binary;
using System.Security.Cryptography;

namespace OnDevice.Delivery.Deltas;

/// <summary>A patch that is malformed, hostile or does not produce what it claims: nothing built from it may be installed.</summary>
public class DeltaPatchException(string message) : Exception(message);

/// <summary>A piece whose rebuilt bytes do not hash to the SHA-256 the patch header gives for it.</summary>
public sealed class DeltaPieceHashException(int piece, string expected, string actual)
    : DeltaPatchException($"patch piece {piece} rebuilt to SHA-256 {actual}, the header says {expected}")
{
    /// <summary>Index of the piece.</summary>
    public int Piece { get; } = piece;
}

/// <summary>How one piece of the target is rebuilt.</summary>
public enum DeltaPieceKind : byte
{
    /// <summary>The bytes are a range of the old file; no payload.</summary>
    Copy = 0,
    /// <summary>The payload is the bytes, stored as is.</summary>
    Literal = 1,
    /// <summary>The payload is the bytes (byte-plane shuffled by the piece's width), Brotli-compressed.</summary>
    LiteralBrotli = 2,
    /// <summary>The payload is Brotli(shuffle(target XOR old range)).</summary>
    XorBrotli = 3,
    /// <summary>The payload is Brotli(shuffle(target − old range, bytewise modulo 256)).</summary>
    AddBrotli = 4,
    /// <summary>The payload is Brotli of copy/add operations against the old range (a generic binary diff).</summary>
    DiffBrotli = 5,
}

/// <summary>One piece of the target: a contiguous range of it, how it is rebuilt, and the SHA-256 of its bytes.</summary>
/// <param name="Kind">How the bytes are rebuilt.</param>
/// <param name="Width">Element width of the byte-plane shuffle (1 = none; 2, 4 or 8).</param>
/// <param name="TargetLength">Bytes of target this piece produces.</param>
/// <param name="OldOffset">Start of the old range it reads (0 when it reads none).</param>
/// <param name="OldLength">Length of the old range it reads (0 when it reads none).</param>
/// <param name="PayloadLength">Bytes of payload in the patch.</param>
/// <param name="Sha256">SHA-256 of the rebuilt bytes (32 bytes).</param>
public sealed record DeltaPiece(DeltaPieceKind Kind, byte Width, long TargetLength, long OldOffset, long OldLength, long PayloadLength, byte[] Sha256)
{
    /// <summary>The hash as lowercase hex.</summary>
    public string Sha256Hex => Convert.ToHexStringLower(Sha256);
}

/// <summary>
/// A parsed, validated patch header: the old and target files it links (length and SHA-256), and the pieces that
/// rebuild the target in order. Target offsets and payload offsets are the running sums of the pieces' lengths.
/// </summary>
public sealed class DeltaHeader
{
    /// <summary>The eight magic bytes that start every patch (<c>ODDELTA</c> and format version 1).</summary>
    public static ReadOnlySpan<byte> Magic => "ODDELTA\u0001"u8;

    /// <summary>Bytes before the piece table: magic, header length, old length and hash, target length and hash, piece count.</summary>
    public const int FixedBytes = 8 + 4 + 8 + 32 + 8 + 32 + 4;

    /// <summary>Bytes of one piece entry: kind, width, four 64-bit lengths, SHA-256.</summary>
    public const int PieceBytes = 1 + 1 + 8 + 8 + 8 + 8 + 32;

    /// <summary>Largest header accepted (8 MiB, about 129,000 pieces).</summary>
    public const int MaxHeaderBytes = 8 << 20;

    /// <summary>Most pieces one header can hold.</summary>
    public const int MaxPieces = (MaxHeaderBytes - FixedBytes - 32) / PieceBytes;

    /// <summary>Largest target range one piece may produce, and largest payload (8 MiB): bounds the memory of applying a piece.</summary>
    public const int MaxPieceBytes = 8 << 20;

    private readonly long[] _targetOffsets;
    private readonly long[] _payloadOffsets;

    private DeltaHeader(long oldLength, byte[] oldSha, long targetLength, byte[] targetSha, IReadOnlyList<DeltaPiece> pieces, int headerLength)
    {
        OldLength = oldLength;
        OldSha256 = Convert.ToHexStringLower(oldSha);
        TargetLength = targetLength;
        TargetSha256 = Convert.ToHexStringLower(targetSha);
        Pieces = pieces;
        HeaderLength = headerLength;
        _targetOffsets = new long[pieces.Count + 1];
        _payloadOffsets = new long[pieces.Count + 1];
        _payloadOffsets[0] = headerLength;
        for (int i = 0; i < pieces.Count; i++)
        {
            _targetOffsets[i + 1] = _targetOffsets[i] + pieces[i].TargetLength;
            _payloadOffsets[i + 1] = _payloadOffsets[i] + pieces[i].PayloadLength;
        }
    }

    /// <summary>Length of the file the patch applies to.</summary>
    public long OldLength { get; }
    /// <summary>SHA-256 of the file the patch applies to (lowercase hex).</summary>
    public string OldSha256 { get; }
    /// <summary>Length of the file the patch rebuilds.</summary>
    public long TargetLength { get; }
    /// <summary>SHA-256 of the file the patch rebuilds (lowercase hex).</summary>
    public string TargetSha256 { get; }
    /// <summary>The pieces, in target order.</summary>
    public IReadOnlyList<DeltaPiece> Pieces { get; }
    /// <summary>Bytes of the header (the first payload starts here).</summary>
    public int HeaderLength { get; }
    /// <summary>Length of the whole patch: header plus every payload.</summary>
    public long PatchLength => _payloadOffsets[^1];

    /// <summary>Where piece <paramref name="index"/> starts in the target (index == count gives the target length).</summary>
    public long TargetOffsetOf(int index) => _targetOffsets[index];

    /// <summary>Where piece <paramref name="index"/>'s payload starts in the patch (index == count gives the patch length).</summary>
    public long PayloadOffsetOf(int index) => _payloadOffsets[index];

    /// <summary>Reads the header length from the first 12 bytes of a patch, checked against <see cref="MaxHeaderBytes"/>.</summary>
    /// <exception cref="DeltaPatchException">Not a patch, or a header length out of bounds.</exception>
    public static int ReadHeaderLength(ReadOnlySpan<byte> first12)
    {
        if (first12.Length < 12) throw new DeltaPatchException($"patch is {first12.Length} bytes, shorter than its 12-byte preamble");
        if (!first12[..8].SequenceEqual(Magic)) throw new DeltaPatchException("not an OnDevice patch (bad magic bytes or unknown format version)");
        uint n = BinaryPrimitives.ReadUInt32LittleEndian(first12[8..]);
        if (n < FixedBytes + 32 || n > MaxHeaderBytes) throw new DeltaPatchException($"patch header length {n} is outside [{FixedBytes + 32}, {MaxHeaderBytes}] (MaxHeaderBytes)");
        return (int)n;
    }

    /// <summary>
    /// Parses and validates a whole header: every length bounded, every old range inside the old file, piece lengths
    /// summing to the target length, payloads present only where the kind has one, and the header's own SHA-256.
    /// </summary>
    /// <exception cref="DeltaPatchException">Any fault, with what is wrong.</exception>
    public static DeltaHeader Parse(ReadOnlySpan<byte> header)
    {
        int length = ReadHeaderLength(header);
        if (header.Length != length) throw new DeltaPatchException($"patch header is {header.Length} bytes, it declares {length}");
        var expectedHash = SHA256.HashData(header[..^32]);
        if (!expectedHash.AsSpan().SequenceEqual(header[^32..])) throw new DeltaPatchException("patch header checksum does not match (corrupted header)");
        int p = 12;
        long oldLength = I64(header, ref p, "old length");
        var oldSha = header.Slice(p, 32).ToArray(); p += 32;
        long targetLength = I64(header, ref p, "target length");
        var targetSha = header.Slice(p, 32).ToArray(); p += 32;
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(header[p..]); p += 4;
        if ((long)FixedBytes + (long)count * PieceBytes + 32 != length)
            throw new DeltaPatchException($"patch header of {length} bytes cannot hold {count} pieces");
        if (targetLength > 0 && count == 0) throw new DeltaPatchException($"patch has no pieces for a {targetLength}-byte target");
        var pieces = new DeltaPiece[count];
        long sum = 0;
        for (int i = 0; i < count; i++)
        {
            var kind = (DeltaPieceKind)header[p];
            byte width = header[p + 1];
            p += 2;
            long tl = I64(header, ref p, $"piece {i} target length");
            long oo = I64(header, ref p, $"piece {i} old offset");
            long ol = I64(header, ref p, $"piece {i} old length");
            long pl = I64(header, ref p, $"piece {i} payload length");
            var sha = header.Slice(p, 32).ToArray(); p += 32;
            var piece = new DeltaPiece(kind, width, tl, oo, ol, pl, sha);
            Check(piece, i, oldLength);
            sum += tl;
            if (sum > targetLength) throw new DeltaPatchException($"patch pieces produce more than the {targetLength}-byte target (at piece {i})");
            pieces[i] = piece;
        }
        if (sum != targetLength) throw new DeltaPatchException($"patch pieces produce {sum} bytes, the target is {targetLength}");
        return new DeltaHeader(oldLength, oldSha, targetLength, targetSha, pieces, length);
    }

    /// <summary>Serializes a header (with its checksum) for the given pieces.</summary>
    public static byte[] Write(long oldLength, ReadOnlySpan<byte> oldSha256, long targetLength, ReadOnlySpan<byte> targetSha256, IReadOnlyList<DeltaPiece> pieces)
    {
        long total = (long)FixedBytes + (long)pieces.Count * PieceBytes + 32;
        if (total > MaxHeaderBytes) throw new ArgumentException($"{pieces.Count} pieces need a {total}-byte header, more than MaxHeaderBytes", nameof(pieces));
        var b = new byte[total];
        Magic.CopyTo(b);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(8), (uint)total);
        int p = 12;
        BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(p), oldLength); p += 8;
        oldSha256.CopyTo(b.AsSpan(p)); p += 32;
        BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(p), targetLength); p += 8;
        targetSha256.CopyTo(b.AsSpan(p)); p += 32;
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(p), (uint)pieces.Count); p += 4;
        foreach (var x in pieces)
        {
            b[p] = (byte)x.Kind;
            b[p + 1] = x.Width;
            p += 2;
            foreach (var v in (ReadOnlySpan<long>)[x.TargetLength, x.OldOffset, x.OldLength, x.PayloadLength]) { BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(p), v); p += 8; }
            x.Sha256.CopyTo(b.AsSpan(p)); p += 32;
        }
        SHA256.HashData(b.AsSpan(0, p), b.AsSpan(p));
        return b;
    }

    private static long I64(ReadOnlySpan<byte> b, ref int p, string what)
    {
        long v = BinaryPrimitives.ReadInt64LittleEndian(b[p..]);
        p += 8;
        if (v < 0) throw new DeltaPatchException($"patch {what} is negative ({v})");
        return v;
    }

    private static void Check(DeltaPiece x, int i, long oldLength)
    {
        string at = $"patch piece {i} ({x.Kind})";
        if (x.TargetLength < 1 || x.TargetLength > MaxPieceBytes) throw new DeltaPatchException($"{at} produces {x.TargetLength} bytes, outside [1, {MaxPieceBytes}] (MaxPieceBytes)");
        if (x.PayloadLength > MaxPieceBytes) throw new DeltaPatchException($"{at} has a {x.PayloadLength}-byte payload, more than {MaxPieceBytes} (MaxPieceBytes)");
        if (x.Width is not (1 or 2 or 4 or 8)) throw new DeltaPatchException($"{at} has shuffle width {x.Width}, not 1, 2, 4 or 8");
        if (x.TargetLength % x.Width != 0) throw new DeltaPatchException($"{at}: {x.TargetLength} bytes is not a multiple of the shuffle width {x.Width}");
        if (x.OldOffset > oldLength || x.OldLength > oldLength - x.OldOffset)
            throw new DeltaPatchException($"{at} reads old bytes [{x.OldOffset}, +{x.OldLength}) outside the {oldLength}-byte old file");
        bool readsOld = x.Kind is DeltaPieceKind.Copy or DeltaPieceKind.XorBrotli or DeltaPieceKind.AddBrotli or DeltaPieceKind.DiffBrotli;
        switch (x.Kind)
        {
            case DeltaPieceKind.Copy:
                if (x.PayloadLength != 0) throw new DeltaPatchException($"{at} has a payload");
                if (x.OldLength != x.TargetLength) throw new DeltaPatchException($"{at} copies {x.OldLength} old bytes into {x.TargetLength}");
                break;
            case DeltaPieceKind.Literal:
                if (x.PayloadLength != x.TargetLength) throw new DeltaPatchException($"{at} has {x.PayloadLength} payload bytes for {x.TargetLength} target bytes");
                break;
            case DeltaPieceKind.LiteralBrotli:
            case DeltaPieceKind.DiffBrotli:
                if (x.PayloadLength < 1) throw new DeltaPatchException($"{at} has no payload");
                break;
            case DeltaPieceKind.XorBrotli:
            case DeltaPieceKind.AddBrotli:
                if (x.PayloadLength < 1) throw new DeltaPatchException($"{at} has no payload");
                if (x.OldLength != x.TargetLength) throw new DeltaPatchException($"{at} combines {x.OldLength} old bytes with {x.TargetLength} target bytes");
                break;
            default:
                throw new DeltaPatchException($"patch piece {i} has unknown kind {(byte)x.Kind}");
        }
        if (!readsOld && (x.OldOffset != 0 || x.OldLength != 0)) throw new DeltaPatchException($"{at} names an old range it does not read");
        if (x.Kind is not (DeltaPieceKind.LiteralBrotli or DeltaPieceKind.XorBrotli or DeltaPieceKind.AddBrotli) && x.Width != 1)
            throw new DeltaPatchException($"{at} has a shuffle width but its kind does not shuffle");
    }
}
