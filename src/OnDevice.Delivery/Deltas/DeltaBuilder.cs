using System.Diagnostics;
using System.Security.Cryptography;

namespace OnDevice.Delivery.Deltas;

/// <summary>A named byte range of a file, usually one tensor's payload (from <c>OnDevice.Formats.TensorLayout</c>).</summary>
/// <param name="Key">Name, stable across versions of a model (e.g. <c>init:conv1.weight</c>).</param>
/// <param name="Offset">First byte.</param>
/// <param name="Length">Bytes.</param>
public sealed record DeltaRegion(string Key, long Offset, long Length);

/// <summary>Settings of <see cref="DeltaBuilder"/>.</summary>
public sealed record DeltaBuildOptions
{
    /// <summary>Brotli quality of the payloads that are sent (0–11).</summary>
    public int Quality { get; init; } = 9;

    /// <summary>Brotli quality used to compare encodings of a piece on a sample before compressing the winner.</summary>
    public int TrialQuality { get; init; } = 5;

    /// <summary>Bytes of a piece the trial encodings look at.</summary>
    public int TrialBytes { get; init; } = 256 << 10;

    /// <summary>Tensors smaller than this travel with the surrounding file structure rather than as pieces of their own.</summary>
    public int MinTensorBytes { get; init; } = 4096;

    /// <summary>Largest target range of an encoded (non-copy) piece; larger tensors are split (a multiple of 8).</summary>
    public int ChunkBytes { get; init; } = 1 << 20;

    /// <summary>Threads encoding pieces.</summary>
    public int MaxParallelism { get; init; } = Environment.ProcessorCount;

    /// <summary>Also measure the target compressed on its own (the baseline a patch must beat to be worth offering).</summary>
    public bool MeasureCompressedTarget { get; init; } = true;

    /// <summary>Default settings.</summary>
    public static DeltaBuildOptions Default { get; } = new();
}

/// <summary>What one piece of a built patch is (for reports).</summary>
/// <param name="Key">The tensor it belongs to, or null for file structure.</param>
/// <param name="Kind">Encoding.</param>
/// <param name="Width">Shuffle width.</param>
/// <param name="TargetLength">Target bytes.</param>
/// <param name="PayloadLength">Patch bytes.</param>
public sealed record DeltaPieceReport(string? Key, DeltaPieceKind Kind, byte Width, long TargetLength, long PayloadLength);

/// <summary>A built patch and its figures.</summary>
public sealed record DeltaBuildResult
{
    /// <summary>The patch bytes.</summary>
    public required byte[] Patch { get; init; }
    /// <summary>Its parsed header.</summary>
    public required DeltaHeader Header { get; init; }
    /// <summary>One entry per piece.</summary>
    public required IReadOnlyList<DeltaPieceReport> Pieces { get; init; }
    /// <summary>True when both files had tensor layouts and pieces follow tensors.</summary>
    public required bool TensorAware { get; init; }
    /// <summary>The target compressed on its own, chunk by chunk, as literal pieces would be (0 when not measured).</summary>
    public required long CompressedTargetBytes { get; init; }
    /// <summary>Time to build.</summary>
    public required TimeSpan Elapsed { get; init; }

    /// <summary>Patch length / target length.</summary>
    public double Ratio => Header.TargetLength == 0 ? 0 : (double)Patch.Length / Header.TargetLength;

    /// <summary>
    /// True when the patch saves at least <paramref name="margin"/> (a fraction) against both the full download and
    /// the target compressed on its own: a patch that only compresses (an unrelated model) is not worth a code path.
    /// </summary>
    public bool WorthOffering(double margin = 0.1)
    {
        double limit = 1 - margin;
        if (Patch.Length > limit * Header.TargetLength) return false;
        return CompressedTargetBytes <= 0 || Patch.Length <= limit * CompressedTargetBytes;
    }
}

/// <summary>
/// Builds a patch that turns an old file into a target. With tensor layouts for both files the target is cut at its
/// tensors: a tensor whose bytes exist in the old file is copied (never resent), a changed tensor of the same name
/// and size is sent as XOR or bytewise difference against its old bytes (byte-plane shuffled, Brotli), the file
/// structure between tensors is copied when unchanged, otherwise sent as a generic binary diff (copy/add operations
/// found with a rolling hash over the old file). Without layouts the whole file is diffed generically. Every piece
/// picks the smallest encoding, and carries the SHA-256 of its bytes.
/// </summary>
public static class DeltaBuilder
{
    private const int MinCopyPiece = 64;

    private enum SegKind { Copy, Tensor, Fresh }

    private sealed record Seg(long TOff, long TLen, SegKind Kind, long OldOff, string? Key);

    /// <summary>Builds a patch from <paramref name="old"/> to <paramref name="target"/>; the regions are each file's tensors (null = unknown format).</summary>
    public static DeltaBuildResult Build(ReadOnlyMemory<byte> old, IReadOnlyList<DeltaRegion>? oldRegions, ReadOnlyMemory<byte> target, IReadOnlyList<DeltaRegion>? targetRegions, DeltaBuildOptions? options = null)
    {
        var o = options ?? DeltaBuildOptions.Default;
        if (o.ChunkBytes < 4096 || o.ChunkBytes > DeltaHeader.MaxPieceBytes || o.ChunkBytes % 8 != 0) throw new ArgumentException($"ChunkBytes must be a multiple of 8 in [4096, {DeltaHeader.MaxPieceBytes}]", nameof(options));
        var sw = Stopwatch.StartNew();
        bool aware = oldRegions is { Count: > 0 } && targetRegions is { Count: > 0 };
        var segs = aware ? PlanTensors(old.Span, oldRegions!, target.Span, targetRegions!, o) : [new Seg(0, target.Length, SegKind.Fresh, 0, null)];
        segs = Normalize(segs);

        var jobs = Cut(segs, o);
        if (jobs.Count > DeltaHeader.MaxPieces)
        {
            // Too many small tensors alternating changed and unchanged for one header: diff the file as a whole.
            aware = false;
            jobs = Cut([new Seg(0, target.Length, SegKind.Fresh, 0, null)], o);
        }
        BlockIndex? index = jobs.Any(j => j.Kind == SegKind.Fresh) && old.Length > 0 ? new BlockIndex(old) : null;
        var encoded = new (DeltaPiece Piece, byte[] Payload, string? Key)[jobs.Count];
        Parallel.For(0, jobs.Count, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, o.MaxParallelism) }, i =>
        {
            var j = jobs[i];
            var t = target.Span.Slice((int)j.TOff, (int)j.TLen);
            var (piece, payload) = j.Kind switch
            {
                SegKind.Copy => (Piece(DeltaPieceKind.Copy, 1, t, j.OldOff, j.TLen, 0), Array.Empty<byte>()),
                SegKind.Tensor => EncodeTensor(t, old.Span.Slice((int)j.OldOff, (int)j.TLen), j.OldOff, o),
                _ => EncodeFresh(t, old.Span, index, o),
            };
            encoded[i] = (piece, payload, j.Key);
        });
        long compressed = 0;
        if (o.MeasureCompressedTarget)
        {
            var parts = new long[(target.Length + o.ChunkBytes - 1) / o.ChunkBytes];
            Parallel.For(0, parts.Length, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, o.MaxParallelism) }, i =>
            {
                var t = target.Span.Slice(i * o.ChunkBytes, Math.Min(o.ChunkBytes, target.Length - i * o.ChunkBytes));
                parts[i] = Math.Min(t.Length, CompressLiteral(t, o).Payload.Length);
            });
            compressed = parts.Sum();
        }

        var pieces = encoded.Select(e => e.Piece).ToList();
        var headerBytes = DeltaHeader.Write(old.Length, SHA256.HashData(old.Span), target.Length, SHA256.HashData(target.Span), pieces);
        var patch = new byte[headerBytes.Length + encoded.Sum(e => (long)e.Payload.Length)];
        headerBytes.CopyTo(patch, 0);
        long p = headerBytes.Length;
        foreach (var e in encoded) { e.Payload.CopyTo(patch, p); p += e.Payload.Length; }
        return new DeltaBuildResult
        {
            Patch = patch,
            Header = DeltaHeader.Parse(headerBytes),
            Pieces = encoded.Select(e => new DeltaPieceReport(e.Key, e.Piece.Kind, e.Piece.Width, e.Piece.TargetLength, e.Piece.PayloadLength)).ToList(),
            TensorAware = aware,
            CompressedTargetBytes = compressed,
            Elapsed = sw.Elapsed,
        };
    }

    /// <summary>Cuts segments into pieces no larger than a chunk (copies up to the piece limit).</summary>
    private static List<Seg> Cut(List<Seg> segs, DeltaBuildOptions o)
    {
        var jobs = new List<Seg>();
        foreach (var s in segs)
        {
            long max = s.Kind == SegKind.Copy ? DeltaHeader.MaxPieceBytes : o.ChunkBytes;
            for (long at = 0; at < s.TLen; at += max)
            {
                long len = Math.Min(max, s.TLen - at);
                jobs.Add(s with { TOff = s.TOff + at, TLen = len, OldOff = s.Kind == SegKind.Fresh ? 0 : s.OldOff + at });
            }
        }
        return jobs;
    }

    private static List<Seg> PlanTensors(ReadOnlySpan<byte> old, IReadOnlyList<DeltaRegion> oldRegions, ReadOnlySpan<byte> target, IReadOnlyList<DeltaRegion> targetRegions, DeltaBuildOptions o)
    {
        var oldByKey = new Dictionary<string, DeltaRegion>(StringComparer.Ordinal);
        foreach (var r in oldRegions)
            if (r.Offset >= 0 && r.Length >= 0 && r.Offset + r.Length <= old.Length) oldByKey.TryAdd(r.Key, r);
        Dictionary<string, long>? oldByHash = null;
        var segs = new List<Seg>();
        long cursor = 0;
        string? prevKey = null;
        foreach (var r in targetRegions.Where(r => r.Length >= o.MinTensorBytes).OrderBy(r => r.Offset))
        {
            if (r.Offset < cursor || r.Offset + r.Length > target.Length) continue; // overlapping or out of range: part of the structure
            if (r.Offset > cursor) segs.Add(Gap(old, oldByKey, target, cursor, r.Offset, prevKey, r.Key));
            var t = target.Slice((int)r.Offset, (int)r.Length);
            if (oldByKey.TryGetValue(r.Key, out var or) && or.Length == r.Length)
            {
                var ob = old.Slice((int)or.Offset, (int)or.Length);
                segs.Add(new Seg(r.Offset, r.Length, t.SequenceEqual(ob) ? SegKind.Copy : SegKind.Tensor, or.Offset, r.Key));
            }
            else
            {
                // Renamed or moved: the same bytes may still be in the old file.
                oldByHash ??= HashRegions(old, oldRegions, o.MinTensorBytes);
                segs.Add(oldByHash.TryGetValue(Convert.ToHexStringLower(SHA256.HashData(t)), out var at)
                    ? new Seg(r.Offset, r.Length, SegKind.Copy, at, r.Key)
                    : new Seg(r.Offset, r.Length, SegKind.Fresh, 0, r.Key));
            }
            cursor = r.Offset + r.Length;
            prevKey = r.Key;
        }
        if (cursor < target.Length) segs.Add(Gap(old, oldByKey, target, cursor, target.Length, prevKey, null));
        return segs;
    }

    /// <summary>File structure between two tensors: copied when the old file has the same bytes between the same tensors.</summary>
    private static Seg Gap(ReadOnlySpan<byte> old, Dictionary<string, DeltaRegion> oldByKey, ReadOnlySpan<byte> target, long from, long to, string? prevKey, string? nextKey)
    {
        long? oldFrom = prevKey is null ? 0 : oldByKey.TryGetValue(prevKey, out var p) ? p.Offset + p.Length : null;
        long? oldTo = nextKey is null ? old.Length : oldByKey.TryGetValue(nextKey, out var n) ? n.Offset : null;
        if (oldFrom is { } a && oldTo is { } b && b - a == to - from && target[(int)from..(int)to].SequenceEqual(old[(int)a..(int)b]))
            return new Seg(from, to - from, SegKind.Copy, a, null);
        return new Seg(from, to - from, SegKind.Fresh, 0, null);
    }

    private static Dictionary<string, long> HashRegions(ReadOnlySpan<byte> old, IReadOnlyList<DeltaRegion> regions, int minBytes)
    {
        var d = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var r in regions)
            if (r.Length >= minBytes && r.Offset >= 0 && r.Offset + r.Length <= old.Length)
                d.TryAdd(Convert.ToHexStringLower(SHA256.HashData(old.Slice((int)r.Offset, (int)r.Length))), r.Offset);
        return d;
    }

    /// <summary>Tiny copies between fresh bytes join them (an entry costs more than a copy operation); neighbours merge.</summary>
    private static List<Seg> Normalize(List<Seg> segs)
    {
        for (int i = 0; i < segs.Count; i++)
        {
            var s = segs[i];
            if (s.Kind == SegKind.Copy && s.TLen < MinCopyPiece) segs[i] = s with { Kind = SegKind.Fresh, OldOff = 0 };
        }
        var r = new List<Seg>();
        foreach (var s in segs)
        {
            if (s.TLen == 0) continue;
            if (r.Count > 0)
            {
                var last = r[^1];
                if (last.Kind == SegKind.Fresh && s.Kind == SegKind.Fresh) { r[^1] = last with { TLen = last.TLen + s.TLen, Key = null }; continue; }
                if (last.Kind == SegKind.Copy && s.Kind == SegKind.Copy && last.OldOff + last.TLen == s.OldOff) { r[^1] = last with { TLen = last.TLen + s.TLen, Key = null }; continue; }
            }
            r.Add(s);
        }
        return r;
    }

    private static DeltaPiece Piece(DeltaPieceKind kind, byte width, ReadOnlySpan<byte> target, long oldOff, long oldLen, long payload) =>
        new(kind, width, target.Length, oldOff, oldLen, payload, SHA256.HashData(target));

    private static (DeltaPiece, byte[]) EncodeTensor(ReadOnlySpan<byte> t, ReadOnlySpan<byte> old, long oldOff, DeltaBuildOptions o)
    {
        if (t.SequenceEqual(old)) return (Piece(DeltaPieceKind.Copy, 1, t, oldOff, t.Length, 0), []);
        // Try every transform on a sample at a fast quality, then compress the winner at full quality.
        var best = (Kind: DeltaPieceKind.Literal, Width: (byte)1, Size: long.MaxValue);
        int sample = Math.Min(t.Length, o.TrialBytes) & ~7;
        foreach (byte w in (ReadOnlySpan<byte>)[1, 2, 4])
        {
            if (t.Length % w != 0) continue;
            int n = sample > 0 ? sample : t.Length - t.Length % w;
            foreach (var kind in (ReadOnlySpan<DeltaPieceKind>)[DeltaPieceKind.XorBrotli, DeltaPieceKind.AddBrotli, DeltaPieceKind.LiteralBrotli])
            {
                var size = DeltaCodec.Compress(Transform(kind, t[..n], old[..n], w), o.TrialQuality).Length;
                if (size < best.Size) best = (kind, w, size);
            }
        }
        var payload = DeltaCodec.Compress(Transform(best.Kind, t, old, best.Width), o.Quality);
        if (payload.Length >= t.Length) return (Piece(DeltaPieceKind.Literal, 1, t, 0, 0, t.Length), t.ToArray());
        bool readsOld = best.Kind != DeltaPieceKind.LiteralBrotli;
        return (Piece(best.Kind, best.Width, t, readsOld ? oldOff : 0, readsOld ? t.Length : 0, payload.Length), payload);
    }

    private static byte[] Transform(DeltaPieceKind kind, ReadOnlySpan<byte> t, ReadOnlySpan<byte> old, int width)
    {
        var d = new byte[t.Length];
        switch (kind)
        {
            case DeltaPieceKind.XorBrotli: DeltaCodec.Xor(t, old, d); break;
            case DeltaPieceKind.AddBrotli: DeltaCodec.AddBytes(t, old, d, subtract: true); break;
            default: t.CopyTo(d); break;
        }
        if (width == 1) return d;
        var s = new byte[d.Length];
        DeltaCodec.Shuffle(d, s, width);
        return s;
    }

    private static (DeltaPiece, byte[]) EncodeFresh(ReadOnlySpan<byte> t, ReadOnlySpan<byte> old, BlockIndex? index, DeltaBuildOptions o)
    {
        byte[]? diff = null;
        if (index is not null)
        {
            var (ops, single) = index.Diff(t, old);
            if (single is { } at) return (Piece(DeltaPieceKind.Copy, 1, t, at, t.Length, 0), []);
            if (ops.Count <= DeltaCodec.MaxOpsBytes(t.Length)) diff = DeltaCodec.Compress(ops.ToArray(), o.Quality);
        }
        var (w, literal) = CompressLiteral(t, o);
        if (diff is not null && diff.Length < literal.Length && diff.Length < t.Length)
            return (Piece(DeltaPieceKind.DiffBrotli, 1, t, 0, old.Length, diff.Length), diff);
        if (literal.Length < t.Length) return (Piece(DeltaPieceKind.LiteralBrotli, w, t, 0, 0, literal.Length), literal);
        return (Piece(DeltaPieceKind.Literal, 1, t, 0, 0, t.Length), t.ToArray());
    }

    /// <summary>The bytes compressed on their own, shuffled by 4 when a sample says that compresses better (float tensors).</summary>
    private static (byte Width, byte[] Payload) CompressLiteral(ReadOnlySpan<byte> t, DeltaBuildOptions o)
    {
        byte w = 1;
        int sample = Math.Min(t.Length, o.TrialBytes) & ~3;
        if (t.Length % 4 == 0 && sample > 0 && DeltaCodec.Compress(Transform(DeltaPieceKind.LiteralBrotli, t[..sample], default, 4), o.TrialQuality).Length
            < DeltaCodec.Compress(t[..sample], o.TrialQuality).Length) w = 4;
        return (w, DeltaCodec.Compress(Transform(DeltaPieceKind.LiteralBrotli, t, default, w), o.Quality));
    }

    /// <summary>Hashes of the old file's aligned blocks, for finding target bytes anywhere in it (rsync/xdelta style).</summary>
    private sealed class BlockIndex
    {
        private const ulong Prime = 0x100000001B3;
        private readonly int _block;
        private readonly ulong _top;
        private readonly Dictionary<ulong, int> _blocks;

        public BlockIndex(ReadOnlyMemory<byte> old)
        {
            _block = old.Length <= 64 << 20 ? 16 : old.Length <= 256 << 20 ? 32 : 64;
            _top = 1;
            for (int i = 1; i < _block; i++) _top *= Prime;
            var s = old.Span;
            _blocks = new Dictionary<ulong, int>(s.Length / _block + 1);
            for (int at = 0; at + _block <= s.Length; at += _block) _blocks.TryAdd(Hash(s.Slice(at, _block)), at);
        }

        private ulong Hash(ReadOnlySpan<byte> b)
        {
            ulong h = 0;
            for (int i = 0; i < _block; i++) h = h * Prime + b[i];
            return h;
        }

        /// <summary>Copy/add operations rebuilding <paramref name="t"/> from <paramref name="old"/>; the old position when it is one single copy.</summary>
        public (List<byte> Ops, long? SingleCopy) Diff(ReadOnlySpan<byte> t, ReadOnlySpan<byte> old)
        {
            var ops = new List<byte>(Math.Min(t.Length, 1 << 16));
            long expected = 0;
            int lit = 0, i = 0, copies = 0;
            long firstCopy = -1;
            int b = _block;
            ulong h = t.Length >= b ? Hash(t[..b]) : 0;
            while (i + b <= t.Length)
            {
                if (_blocks.TryGetValue(h, out int o) && old.Slice(o, b).SequenceEqual(t.Slice(i, b)))
                {
                    int s = i, so = o;
                    while (s > lit && so > 0 && t[s - 1] == old[so - 1]) { s--; so--; }
                    int e = i + b, eo = o + b;
                    e += t[e..].CommonPrefixLength(old[eo..]);
                    DeltaCodec.WriteAdd(ops, t[lit..s]);
                    DeltaCodec.WriteCopy(ops, e - s, so, ref expected);
                    if (copies++ == 0 && s == 0) firstCopy = so;
                    i = e;
                    lit = e;
                    if (i + b <= t.Length) h = Hash(t.Slice(i, b));
                    continue;
                }
                if (i + b >= t.Length) break;
                h = (h - t[i] * _top) * Prime + t[i + b];
                i++;
            }
            DeltaCodec.WriteAdd(ops, t[lit..]);
            bool single = copies == 1 && firstCopy >= 0 && lit == t.Length;
            return (ops, single ? firstCopy : null);
        }
    }
}
