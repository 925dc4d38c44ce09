using System.Runtime.Intrinsics;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Llm;

/// <summary>Element type of a KV cache.</summary>
public enum KvElement
{
    /// <summary>IEEE binary32.</summary>
    Fp32,
    /// <summary>IEEE binary16.</summary>
    Fp16,
    /// <summary>Int8 with one float scale per position and KV head.</summary>
    Int8,
}

/// <summary>The cache is out of room: a sequence reached the context limit or no free block is left.</summary>
public sealed class LlmCapacityException(string message) : Exception(message);

/// <summary>
/// Keys and values of every layer for several sequences. A "row" holds one position of one layer (kv_dim keys and
/// kv_dim values); subclasses decide where a (sequence, layer, position) row lives — contiguously per sequence, or in
/// fixed-size blocks through a block table. Attention is computed here so each element type has one loop.
/// </summary>
public abstract unsafe class KvCache
{
    private readonly float[]? _f32;
    private readonly Half[]? _f16;
    private readonly sbyte[]? _i8;
    private readonly float[]? _scales;

    /// <summary>Layers.</summary>
    public int Layers { get; }

    /// <summary>KV heads.</summary>
    public int KvHeads { get; }

    /// <summary>Head width.</summary>
    public int HeadSize { get; }

    /// <summary>Positions a sequence may hold.</summary>
    public int MaxPositions { get; }

    /// <summary>Element type.</summary>
    public KvElement Element { get; }

    /// <summary>kv_dim = KvHeads × HeadSize.</summary>
    public int KvDim => KvHeads * HeadSize;

    /// <summary>Allocates <paramref name="rows"/> rows of keys and values.</summary>
    protected KvCache(int layers, int kvHeads, int headSize, int maxPositions, KvElement element, long rows)
    {
        Layers = layers; KvHeads = kvHeads; HeadSize = headSize; MaxPositions = maxPositions; Element = element;
        long n = checked(rows * 2 * kvHeads * headSize);
        switch (element)
        {
            case KvElement.Fp32: _f32 = GC.AllocateArray<float>(checked((int)n), pinned: true); break;
            case KvElement.Fp16: _f16 = GC.AllocateArray<Half>(checked((int)n), pinned: true); break;
            default:
                _i8 = GC.AllocateArray<sbyte>(checked((int)n), pinned: true);
                _scales = GC.AllocateArray<float>(checked((int)(rows * 2 * kvHeads)), pinned: true);
                break;
        }
    }

    /// <summary>Bytes allocated for keys and values.</summary>
    public long AllocatedBytes => (_f32?.LongLength * 4 ?? 0) + (_f16?.LongLength * 2 ?? 0) + (_i8?.LongLength ?? 0) + (_scales?.LongLength * 4 ?? 0);

    /// <summary>Bytes of keys and values read by attention for one token of one sequence at <paramref name="positions"/> positions.</summary>
    public long BytesRead(int positions) => (long)positions * Layers * 2 * KvDim * (Element switch { KvElement.Fp32 => 4, KvElement.Fp16 => 2, _ => 1 })
        + (Element == KvElement.Int8 ? (long)positions * Layers * 2 * KvHeads * 4 : 0);

    /// <summary>The row of (sequence, layer, position); with <paramref name="write"/> the storage is claimed if needed.</summary>
    protected abstract long Row(int seq, int layer, int pos, bool write);

    /// <summary>Forgets positions ≥ <paramref name="length"/> of sequence <paramref name="seq"/> (paged caches free their blocks).</summary>
    public abstract void Truncate(int seq, int length);

    /// <summary>Copies positions [0, <paramref name="length"/>) of every layer from sequence <paramref name="src"/> to <paramref name="dst"/>.</summary>
    public void Copy(int src, int dst, int length)
    {
        if (src == dst) return;
        int w = 2 * KvDim;
        for (int l = 0; l < Layers; l++)
            for (int p = 0; p < length; p++)
            {
                long a = Row(src, l, p, false), b = Row(dst, l, p, true);
                if (_f32 is not null) Array.Copy(_f32, a * w, _f32, b * w, w);
                else if (_f16 is not null) Array.Copy(_f16, a * w, _f16, b * w, w);
                else { Array.Copy(_i8!, a * w, _i8!, b * w, w); Array.Copy(_scales!, a * 2 * KvHeads, _scales!, b * 2 * KvHeads, 2 * KvHeads); }
            }
    }

    /// <summary>Stores the keys and values of one position.</summary>
    public void Write(int seq, int layer, int pos, float* k, float* v)
    {
        if ((uint)pos >= (uint)MaxPositions)
            throw new LlmCapacityException($"position {pos} is beyond the context limit of {MaxPositions} positions");
        long row = Row(seq, layer, pos, true);
        int kd = KvDim;
        long o = row * 2 * kd;
        switch (Element)
        {
            case KvElement.Fp32:
                new ReadOnlySpan<float>(k, kd).CopyTo(_f32.AsSpan((int)o, kd));
                new ReadOnlySpan<float>(v, kd).CopyTo(_f32.AsSpan((int)(o + kd), kd));
                break;
            case KvElement.Fp16:
                for (int i = 0; i < kd; i++) { _f16![o + i] = (Half)k[i]; _f16[o + kd + i] = (Half)v[i]; }
                break;
            default:
                for (int part = 0; part < 2; part++)
                {
                    float* src = part == 0 ? k : v;
                    for (int h = 0; h < KvHeads; h++)
                    {
                        float amax = 0;
                        for (int i = 0; i < HeadSize; i++) amax = MathF.Max(amax, MathF.Abs(src[h * HeadSize + i]));
                        float d = amax / 127f, id = d > 0 ? 1 / d : 0;
                        _scales![row * 2 * KvHeads + part * KvHeads + h] = d;
                        for (int i = 0; i < HeadSize; i++)
                            _i8![o + part * kd + h * HeadSize + i] = (sbyte)Math.Clamp((int)MathF.Round(src[h * HeadSize + i] * id), -127, 127);
                    }
                }
                break;
        }
    }

    // o[i] += a·v[i], each element rounded as the scalar loop does (a multiply, then an add; no fused multiply-add).
    private static void AddScaled(float* o, float* v, float a, int n)
    {
        int i = 0;
        var va = Vector256.Create(a);
        for (; i + 8 <= n; i += 8)
            Vector256.Store(Vector256.Load(o + i) + va * Vector256.Load(v + i), o + i);
        for (; i < n; i++) o[i] += a * v[i];
    }

    /// <summary>
    /// Causal attention of one query position: for each of <paramref name="heads"/> query heads (sharing KV heads in
    /// groups), softmax(q·k/√d) over positions 0..<paramref name="pos"/>, times the values, into <paramref name="output"/>.
    /// <paramref name="scratch"/> holds at least pos+1 floats.
    /// </summary>
    public void Attend(int seq, int layer, int pos, int heads, float* q, float* output, float* scratch)
    {
        int hs = HeadSize, group = heads / KvHeads, kd = KvDim;
        float scale = 1f / MathF.Sqrt(hs);
        float* tmp = stackalloc float[hs];
        for (int h = 0; h < heads; h++)
        {
            int kvh = h / group;
            float* qh = q + h * hs;
            float max = float.NegativeInfinity;
            for (int t = 0; t <= pos; t++)
            {
                long row = Row(seq, layer, t, false);
                long o = row * 2 * kd + kvh * hs;
                float s;
                switch (Element)
                {
                    case KvElement.Fp32:
                        fixed (float* kp = &_f32![o]) s = DotRows.Dot(qh, kp, hs);
                        break;
                    case KvElement.Fp16:
                        for (int i = 0; i < hs; i++) tmp[i] = (float)_f16![o + i];
                        s = DotRows.Dot(qh, tmp, hs);
                        break;
                    default:
                        for (int i = 0; i < hs; i++) tmp[i] = _i8![o + i];
                        s = DotRows.Dot(qh, tmp, hs) * _scales![row * 2 * KvHeads + kvh];
                        break;
                }
                s *= scale;
                scratch[t] = s;
                if (s > max) max = s;
            }
            float sum = 0;
            for (int t = 0; t <= pos; t++) { scratch[t] = MathF.Exp(scratch[t] - max); sum += scratch[t]; }
            float inv = 1f / sum;
            float* oh = output + h * hs;
            new Span<float>(oh, hs).Clear();
            for (int t = 0; t <= pos; t++)
            {
                float a = scratch[t] * inv;
                long row = Row(seq, layer, t, false);
                long o = row * 2 * kd + kd + kvh * hs;
                switch (Element)
                {
                    case KvElement.Fp32:
                        fixed (float* vp = &_f32![o]) AddScaled(oh, vp, a, hs);
                        break;
                    case KvElement.Fp16:
                        for (int i = 0; i < hs; i++) oh[i] += a * (float)_f16![o + i];
                        break;
                    default:
                        float av = a * _scales![row * 2 * KvHeads + KvHeads + kvh];
                        for (int i = 0; i < hs; i++) oh[i] += av * _i8![o + i];
                        break;
                }
            }
        }
    }
}

/// <summary>A preallocated cache: every sequence slot owns MaxPositions rows per layer, contiguous.</summary>
public sealed class ContiguousKvCache : KvCache
{
    /// <summary>Sequence slots.</summary>
    public int Sequences { get; }

    /// <summary>Allocates <paramref name="sequences"/> slots of <paramref name="maxPositions"/> positions.</summary>
    public ContiguousKvCache(int layers, int kvHeads, int headSize, int maxPositions, int sequences, KvElement element)
        : base(layers, kvHeads, headSize, maxPositions, element, (long)sequences * layers * maxPositions)
    {
        Sequences = sequences;
    }

    /// <inheritdoc/>
    protected override long Row(int seq, int layer, int pos, bool write)
    {
        if ((uint)seq >= (uint)Sequences) throw new LlmCapacityException($"sequence {seq} is outside the cache's {Sequences} slots");
        return ((long)seq * Layers + layer) * MaxPositions + pos;
    }

    /// <inheritdoc/>
    public override void Truncate(int seq, int length) { }
}

/// <summary>
/// A paged cache: positions live in blocks of <see cref="BlockSize"/> positions (all layers), found through each
/// sequence's block table; blocks come from a shared pool and return to its free list when a sequence is truncated or
/// released, to be reused by any sequence.
/// </summary>
public sealed class PagedKvCache : KvCache
{
    private readonly Stack<int> _free;
    private readonly Dictionary<int, List<int>> _tables = [];

    /// <summary>Positions per block.</summary>
    public int BlockSize { get; }

    /// <summary>Blocks in the pool.</summary>
    public int BlockCount { get; }

    /// <summary>Blocks on the free list.</summary>
    public int FreeBlocks => _free.Count;

    /// <summary>Allocates a pool of <paramref name="blocks"/> blocks of <paramref name="blockSize"/> positions.</summary>
    public PagedKvCache(int layers, int kvHeads, int headSize, int maxPositions, int blockSize, int blocks, KvElement element)
        : base(layers, kvHeads, headSize, maxPositions, element, (long)blocks * layers * blockSize)
    {
        if (blockSize < 1 || blocks < 1) throw new ArgumentOutOfRangeException(nameof(blockSize), "block size and block count must be positive");
        BlockSize = blockSize; BlockCount = blocks;
        _free = new Stack<int>(Enumerable.Range(0, blocks).Reverse());
    }

    /// <summary>The block table of <paramref name="seq"/> (block ids in position order).</summary>
    public IReadOnlyList<int> BlockTable(int seq) => _tables.TryGetValue(seq, out var t) ? t : [];

    /// <inheritdoc/>
    protected override long Row(int seq, int layer, int pos, bool write)
    {
        if (!_tables.TryGetValue(seq, out var table))
        {
            if (!write) throw new InvalidOperationException($"sequence {seq} has no cached positions");
            _tables[seq] = table = [];
        }
        int bi = pos / BlockSize;
        while (write && table.Count <= bi)
        {
            if (_free.Count == 0) throw new LlmCapacityException($"the paged KV cache is full ({BlockCount} blocks of {BlockSize} positions)");
            table.Add(_free.Pop());
        }
        if (bi >= table.Count) throw new InvalidOperationException($"position {pos} of sequence {seq} is not cached");
        return ((long)table[bi] * Layers + layer) * BlockSize + pos % BlockSize;
    }

    /// <inheritdoc/>
    public override void Truncate(int seq, int length)
    {
        if (!_tables.TryGetValue(seq, out var table)) return;
        int keep = (length + BlockSize - 1) / BlockSize;
        while (table.Count > keep) { _free.Push(table[^1]); table.RemoveAt(table.Count - 1); }
        if (table.Count == 0) _tables.Remove(seq);
    }
}
