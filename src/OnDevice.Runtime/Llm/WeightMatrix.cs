using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using OnDevice.Formats;
using OnDevice.Formats.Llm;
using OnDevice.Runtime.Llm.Kernels;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Llm;

/// <summary>Precision of the decoder's weight matrices at run time.</summary>
public enum LlmWeights
{
    /// <summary>IEEE binary32 (fp32 checkpoint weights are used in place from the mapping).</summary>
    Fp32,
    /// <summary>Int8, blocks of 32 with one float scale each (Q8_0-style).</summary>
    Int8,
    /// <summary>Int4, blocks of 32 with one float scale each (Q4_0-style).</summary>
    Int4,
}

/// <summary>A batch of activation rows (tokens) fed to weight matrices, quantized to int8 blocks on first use by a low-bit matrix.</summary>
public sealed unsafe class LlmActivations
{
    private sbyte[] _q = [];
    private float[] _scales = [];
    private sbyte[] _qi = [];
    private int[] _c8 = [];
    private bool _quantized, _interleaved;

    /// <summary>Rows (tokens).</summary>
    public int Count { get; private set; }

    /// <summary>Elements per row.</summary>
    public int Cols { get; private set; }

    /// <summary>First float of row 0; rows are <see cref="Stride"/> floats apart.</summary>
    public float* Data { get; private set; }

    /// <summary>Floats between rows.</summary>
    public int Stride { get; private set; }

    /// <summary>Points at new activations (invalidates the quantized copy).</summary>
    public void Set(float* data, int count, int cols, int stride)
    {
        Data = data; Count = count; Cols = cols; Stride = stride; _quantized = false; _interleaved = false;
    }

    /// <summary>Blocks of 32 per row.</summary>
    public int Blocks => (Cols + QuantDot.Block - 1) / QuantDot.Block;

    /// <summary>Quantizes the rows to int8 blocks (once per <see cref="Set"/>).</summary>
    public void EnsureQuantized()
    {
        if (_quantized) return;
        int padded = Blocks * QuantDot.Block;
        if (_q.Length < Count * padded) _q = GC.AllocateArray<sbyte>(Count * padded, pinned: true);
        if (_scales.Length < Count * Blocks) _scales = GC.AllocateArray<float>(Count * Blocks, pinned: true);
        fixed (sbyte* q = _q) fixed (float* s = _scales)
            for (int t = 0; t < Count; t++)
                QuantDot.QuantizeActivations(Data + (long)t * Stride, Cols, q + t * padded, s + t * Blocks);
        _quantized = true;
    }

    /// <summary>Quantizes (if needed) and rearranges the rows into <see cref="GroupDot"/>'s interleaved layout (once per <see cref="Set"/>).</summary>
    public void EnsureInterleaved()
    {
        if (_interleaved) return;
        EnsureQuantized();
        int padded = Blocks * QuantDot.Block;
        if (_qi.Length < Count * padded) _qi = GC.AllocateArray<sbyte>(Count * padded, pinned: true);
        if (_c8.Length < Count * Blocks) _c8 = GC.AllocateArray<int>(Count * Blocks, pinned: true);
        fixed (sbyte* q = _q, qi = _qi) fixed (int* c8 = _c8)
            for (int t = 0; t < Count; t++)
                GroupDot.InterleaveActivations(q + t * padded, Blocks, qi + t * padded, c8 + t * Blocks);
        _interleaved = true;
    }

    internal sbyte* Interleaved(int t) { fixed (sbyte* p = _qi) return p + t * Blocks * QuantDot.Block; }
    internal int* Offsets(int t) { fixed (int* p = _c8) return p + t * Blocks; }
    internal float* Scales(int t) { fixed (float* p = _scales) return p + t * Blocks; }
}

/// <summary>
/// A weight matrix W[rows, cols] of the decoder: y[t, r] = Σ_c W[r, c]·x[t, c]. Each output element is computed by the
/// same dot-product routine whatever the number of rows in the batch, so a batch of tokens gives bit-identical results
/// to the tokens one at a time. Low-bit matrices are dotted against int8-quantized activations without expanding the
/// weights to fp32.
/// </summary>
public abstract unsafe class WeightMatrix : IDisposable
{
    /// <summary>Output features.</summary>
    public int Rows { get; }

    /// <summary>Input features.</summary>
    public int Cols { get; }

    /// <summary>Precision.</summary>
    public abstract LlmWeights Format { get; }

    /// <summary>Bytes read to multiply by the whole matrix once.</summary>
    public abstract long Bytes { get; }

    /// <summary>Creates the shape.</summary>
    protected WeightMatrix(int rows, int cols) { Rows = rows; Cols = cols; }

    /// <summary>y[t·ldy + r] = W[r]·x[t] for weight rows r in [<paramref name="r0"/>, <paramref name="r1"/>) and every activation row t.</summary>
    public abstract void Multiply(LlmActivations x, float* y, int ldy, int r0, int r1);

    /// <summary>Row <paramref name="r"/> of W in fp32 (the embedding lookup).</summary>
    public abstract void ReadRow(int r, Span<float> dst);

    /// <summary>Frees native weight memory (low-bit matrices); products on a disposed matrix throw <see cref="ObjectDisposedException"/>.</summary>
    public virtual void Dispose() { }

    /// <summary>
    /// Converts a checkpoint tensor to <paramref name="format"/>. fp32 tensors used at fp32 stay in the memory mapping;
    /// everything else is converted once at load.
    /// </summary>
    public static WeightMatrix From(LlamaTensor t, LlmWeights format)
    {
        if (format == LlmWeights.Fp32 && t.Type == LlamaTensorType.F32) return new F32Matrix(t.Rows, t.Cols, t.Data);
        if (format == LlmWeights.Int8 && t.Type == LlamaTensorType.Q8_0) return Q8Matrix.FromGgufBlocks(t);
        if (format == LlmWeights.Int4 && t.Type == LlamaTensorType.Q4_0) return Q4Matrix.FromGgufBlocks(t);
        var f = ToFloats(t);
        return format switch
        {
            LlmWeights.Fp32 => new F32Matrix(t.Rows, t.Cols, f),
            LlmWeights.Int8 => Q8Matrix.Quantize(f, t.Rows, t.Cols),
            _ => Q4Matrix.Quantize(f, t.Rows, t.Cols),
        };
    }

    /// <summary>The tensor's values as fp32 (dequantized when stored in blocks).</summary>
    public static float[] ToFloats(LlamaTensor t)
    {
        var src = t.Data.Span;
        long n = (long)t.Rows * t.Cols;
        if (src.Length != LlamaTensor.ByteSize(t.Type, t.Rows, t.Cols))
            throw new ModelFormatException(null, $"tensor '{t.Name}' has {src.Length} bytes, expected {LlamaTensor.ByteSize(t.Type, t.Rows, t.Cols)} for {t.Type} {t.Rows}×{t.Cols}");
        var f = GC.AllocateUninitializedArray<float>(checked((int)n), pinned: true);
        switch (t.Type)
        {
            case LlamaTensorType.F32: MemoryMarshal.Cast<byte, float>(src).CopyTo(f); break;
            case LlamaTensorType.F16:
                var h = MemoryMarshal.Cast<byte, Half>(src);
                for (int i = 0; i < f.Length; i++) f[i] = (float)h[i];
                break;
            case LlamaTensorType.Q8_0:
                for (long b = 0; b < n / 32; b++)
                {
                    var blk = src.Slice((int)(b * 34), 34);
                    float d = (float)BitConverter.UInt16BitsToHalf((ushort)(blk[0] | blk[1] << 8));
                    for (int j = 0; j < 32; j++) f[b * 32 + j] = (sbyte)blk[2 + j] * d;
                }
                break;
            case LlamaTensorType.Q4_0:
                for (long b = 0; b < n / 32; b++)
                {
                    var blk = src.Slice((int)(b * 18), 18);
                    float d = (float)BitConverter.UInt16BitsToHalf((ushort)(blk[0] | blk[1] << 8));
                    for (int j = 0; j < 16; j++)
                    {
                        f[b * 32 + j] = ((blk[2 + j] & 15) - 8) * d;
                        f[b * 32 + j + 16] = ((blk[2 + j] >> 4) - 8) * d;
                    }
                }
                break;
        }
        return f;
    }
}

/// <summary>fp32 weights, in place in a memory mapping or in a pinned array.</summary>
public sealed unsafe class F32Matrix : WeightMatrix
{
    private readonly ReadOnlyMemory<byte> _keep;
    private readonly float[]? _array;
    private readonly MemoryHandle _pin;
    private readonly float* _w;

    /// <summary>Wraps <paramref name="data"/> (rows·cols little-endian floats) without copying.</summary>
    public F32Matrix(int rows, int cols, ReadOnlyMemory<byte> data) : base(rows, cols)
    {
        if (data.Length != 4L * rows * cols) throw new ArgumentException($"{data.Length} bytes for a {rows}×{cols} fp32 matrix");
        _keep = data;
        _pin = data.Pin();
        _w = (float*)_pin.Pointer;
    }

    /// <summary>Wraps a pinned array of rows·cols floats.</summary>
    public F32Matrix(int rows, int cols, float[] pinned) : base(rows, cols)
    {
        if (pinned.Length != (long)rows * cols) throw new ArgumentException($"{pinned.Length} floats for a {rows}×{cols} matrix");
        _array = pinned;
        _pin = pinned.AsMemory().Pin();
        _w = (float*)_pin.Pointer;
    }

    /// <inheritdoc/>
    public override LlmWeights Format => LlmWeights.Fp32;

    /// <inheritdoc/>
    public override long Bytes => 4L * Rows * Cols;

    /// <inheritdoc/>
    public override void Multiply(LlmActivations x, float* y, int ldy, int r0, int r1)
    {
        for (int r = r0; r < r1; r++)
        {
            float* wr = _w + (long)r * Cols;
            for (int t = 0; t < x.Count; t++) y[(long)t * ldy + r] = DotRows.Dot(x.Data + (long)t * x.Stride, wr, Cols);
        }
    }

    /// <inheritdoc/>
    public override void ReadRow(int r, Span<float> dst) => new ReadOnlySpan<float>(_w + (long)r * Cols, Cols).CopyTo(dst);
}

/// <summary>
/// Int8 weights in blocks of 32 along each row, one float scale per block (rows padded to whole blocks with zeros); each
/// row is stored in <see cref="GroupDot"/>'s interleaved layout as unsigned bytes q + 128.
/// </summary>
public sealed unsafe class Q8Matrix : WeightMatrix
{
    private readonly QuantRows _m;
    private readonly int _blocks;

    // q arrives row-major in block order and is rearranged row by row into GroupDot's interleaved layout (same size).
    private Q8Matrix(int rows, int cols, sbyte[] q, float[] s) : base(rows, cols)
    {
        _blocks = (cols + 31) / 32;
        _m = new QuantRows(rows, _blocks, _blocks * 32, s);
        fixed (sbyte* src = q)
            for (int r = 0; r < rows; r++) GroupDot.InterleaveQ8(src + (long)r * _blocks * 32, _blocks, _m.Quants(r));
    }

    /// <inheritdoc/>
    public override LlmWeights Format => LlmWeights.Int8;

    /// <inheritdoc/>
    public override long Bytes => _m.DataBytes;

    /// <summary>The native buffer holding the quants and scales.</summary>
    public WeightBuffer Buffer => _m.Buffer;

    /// <inheritdoc/>
    public override void Dispose() => _m.Buffer.Dispose();

    /// <summary>Round-to-nearest symmetric quantization: per block d = max|w|/127, q = round(w/d).</summary>
    public static Q8Matrix Quantize(ReadOnlySpan<float> w, int rows, int cols)
    {
        int blocks = (cols + 31) / 32;
        var q = new sbyte[rows * blocks * 32];
        var s = GC.AllocateArray<float>(rows * blocks, pinned: true);
        for (int r = 0; r < rows; r++)
            for (int b = 0; b < blocks; b++)
            {
                int c0 = b * 32, len = Math.Min(32, cols - c0);
                var src = w.Slice(r * cols + c0, len);
                float amax = 0;
                foreach (var v in src) amax = MathF.Max(amax, MathF.Abs(v));
                float d = amax / 127f, id = d > 0 ? 1 / d : 0;
                s[r * blocks + b] = d;
                for (int j = 0; j < len; j++) q[(r * blocks + b) * 32 + j] = (sbyte)Math.Clamp((int)MathF.Round(src[j] * id), -127, 127);
            }
        return new Q8Matrix(rows, cols, q, s);
    }

    /// <summary>Repacks GGUF Q8_0 blocks (fp16 scale + 32 int8) into separate quant and scale arrays.</summary>
    public static Q8Matrix FromGgufBlocks(LlamaTensor t)
    {
        if (t.Cols % 32 != 0) throw new ModelFormatException(null, $"Q8_0 tensor '{t.Name}' has {t.Cols} columns, not a multiple of 32");
        var src = t.Data.Span;
        int blocks = t.Cols / 32, n = t.Rows * blocks;
        if (src.Length != 34L * n) throw new ModelFormatException(null, $"Q8_0 tensor '{t.Name}' has {src.Length} bytes, expected {34L * n}");
        var q = new sbyte[n * 32];
        var s = GC.AllocateArray<float>(n, pinned: true);
        var qb = MemoryMarshal.AsBytes(q.AsSpan());
        for (int i = 0; i < n; i++)
        {
            s[i] = (float)BitConverter.UInt16BitsToHalf((ushort)(src[i * 34] | src[i * 34 + 1] << 8));
            src.Slice(i * 34 + 2, 32).CopyTo(qb.Slice(i * 32, 32));
        }
        return new Q8Matrix(t.Rows, t.Cols, q, s);
    }

    /// <inheritdoc/>
    public override void Multiply(LlmActivations x, float* y, int ldy, int r0, int r1)
    {
        using var lease = _m.Buffer.Acquire();
        x.EnsureInterleaved();
        sbyte** xq = stackalloc sbyte*[4];
        float** xsc = stackalloc float*[4];
        int** xc = stackalloc int*[4];
        float* res = stackalloc float[4];
        {
            int full = x.Count / 4 * 4;
            for (int r = r0; r < r1; r++)
                for (int t = 0; t < full; t += 4)
                {
                    for (int i = 0; i < 4; i++) { xq[i] = x.Interleaved(t + i); xsc[i] = x.Scales(t + i); xc[i] = x.Offsets(t + i); }
                    GroupDot.DotQ8x4(_m.Quants(r), _m.Scales(r), xq, xsc, xc, _blocks, res);
                    for (int i = 0; i < 4; i++) y[(long)(t + i) * ldy + r] = res[i];
                }
            // The remaining activation rows (all of them when decoding): one weight row at a time (one sequential stream).
            for (int t = full; t < x.Count; t++)
            {
                sbyte* xt = x.Interleaved(t);
                float* st = x.Scales(t);
                int* ct = x.Offsets(t);
                float* yt = y + (long)t * ldy;
                for (int r = r0; r < r1; r++) yt[r] = GroupDot.DotQ8(_m.Quants(r), _m.Scales(r), xt, st, ct, _blocks);
            }
        }
    }

    /// <inheritdoc/>
    public override void ReadRow(int r, Span<float> dst)
    {
        using var lease = _m.Buffer.Acquire();
        for (int c = 0; c < Cols; c++)
            dst[c] = (sbyte)(_m.Quants(r)[GroupDot.ActivationOffset(c / 32, c % 32, _blocks)] ^ 0x80) * _m.Scales(r)[c / 32];
    }
}

/// <summary>
/// Int4 weights in blocks of 32 along each row (16 bytes: element j low nibble, j+16 high nibble; value (q − 8)·d), one
/// float scale per block; each row's blocks are stored in <see cref="GroupDot"/>'s interleaved layout (groups of 8).
/// </summary>
public sealed unsafe class Q4Matrix : WeightMatrix
{
    private readonly QuantRows _m;
    private readonly int _blocks;

    // q arrives in Q4_0 order and is rearranged row by row into GroupDot's interleaved layout (same size).
    private Q4Matrix(int rows, int cols, byte[] q, float[] s) : base(rows, cols)
    {
        _blocks = (cols + 31) / 32;
        _m = new QuantRows(rows, _blocks, _blocks * 16, s);
        fixed (byte* src = q)
            for (int r = 0; r < rows; r++) GroupDot.InterleaveQ4(src + (long)r * _blocks * 16, _blocks, _m.Quants(r));
    }

    /// <inheritdoc/>
    public override LlmWeights Format => LlmWeights.Int4;

    /// <inheritdoc/>
    public override long Bytes => _m.DataBytes;

    /// <summary>The native buffer holding the quants and scales.</summary>
    public WeightBuffer Buffer => _m.Buffer;

    /// <inheritdoc/>
    public override void Dispose() => _m.Buffer.Dispose();

    /// <summary>Round-to-nearest quantization as in Q4_0: per block, m = the value of largest magnitude, d = m/−8, q = clamp(⌊w/d + 8.5⌋, 0, 15).</summary>
    public static Q4Matrix Quantize(ReadOnlySpan<float> w, int rows, int cols)
    {
        int blocks = (cols + 31) / 32;
        var q = new byte[rows * blocks * 16];
        var s = GC.AllocateArray<float>(rows * blocks, pinned: true);
        Span<float> v = stackalloc float[32];
        for (int r = 0; r < rows; r++)
            for (int b = 0; b < blocks; b++)
            {
                int c0 = b * 32, len = Math.Min(32, cols - c0);
                v.Clear();
                w.Slice(r * cols + c0, len).CopyTo(v);
                float amax = 0, max = 0;
                foreach (var e in v) if (MathF.Abs(e) > amax) { amax = MathF.Abs(e); max = e; }
                float d = max / -8f, id = d != 0 ? 1 / d : 0;
                s[r * blocks + b] = d;
                for (int j = 0; j < 16; j++)
                {
                    int lo = Math.Clamp((int)(v[j] * id + 8.5f), 0, 15), hi = Math.Clamp((int)(v[j + 16] * id + 8.5f), 0, 15);
                    q[(r * blocks + b) * 16 + j] = (byte)(lo | hi << 4);
                }
            }
        return new Q4Matrix(rows, cols, q, s);
    }

    /// <summary>Repacks GGUF Q4_0 blocks (fp16 scale + 16 bytes) into separate quant and scale arrays.</summary>
    public static Q4Matrix FromGgufBlocks(LlamaTensor t)
    {
        if (t.Cols % 32 != 0) throw new ModelFormatException(null, $"Q4_0 tensor '{t.Name}' has {t.Cols} columns, not a multiple of 32");
        var src = t.Data.Span;
        int blocks = t.Cols / 32, n = t.Rows * blocks;
        if (src.Length != 18L * n) throw new ModelFormatException(null, $"Q4_0 tensor '{t.Name}' has {src.Length} bytes, expected {18L * n}");
        var q = new byte[n * 16];
        var s = GC.AllocateArray<float>(n, pinned: true);
        for (int i = 0; i < n; i++)
        {
            s[i] = (float)BitConverter.UInt16BitsToHalf((ushort)(src[i * 18] | src[i * 18 + 1] << 8));
            src.Slice(i * 18 + 2, 16).CopyTo(q.AsSpan(i * 16, 16));
        }
        return new Q4Matrix(t.Rows, t.Cols, q, s);
    }

    /// <inheritdoc/>
    public override void Multiply(LlmActivations x, float* y, int ldy, int r0, int r1)
    {
        using var lease = _m.Buffer.Acquire();
        x.EnsureInterleaved();
        sbyte** xq = stackalloc sbyte*[4];
        float** xsc = stackalloc float*[4];
        int** xc = stackalloc int*[4];
        float* res = stackalloc float[4];
        {
            int full = x.Count / 4 * 4;
            for (int r = r0; r < r1; r++)
            {
                byte* wr = _m.Quants(r);
                float* sr = _m.Scales(r);
                for (int t = 0; t < full; t += 4)
                {
                    for (int i = 0; i < 4; i++) { xq[i] = x.Interleaved(t + i); xsc[i] = x.Scales(t + i); xc[i] = x.Offsets(t + i); }
                    GroupDot.DotQ4x4(wr, sr, xq, xsc, xc, _blocks, res);
                    for (int i = 0; i < 4; i++) y[(long)(t + i) * ldy + r] = res[i];
                }
            }
            // The remaining activation rows (all of them when decoding): one weight row at a time, a single sequential
            // stream (measured faster from memory than four rows side by side, whose four streams prefetch worse).
            for (int t = full; t < x.Count; t++)
            {
                sbyte* xt = x.Interleaved(t);
                float* st = x.Scales(t);
                int* ct = x.Offsets(t);
                float* yt = y + (long)t * ldy;
                for (int r = r0; r < r1; r++) yt[r] = GroupDot.DotQ4(_m.Quants(r), _m.Scales(r), xt, st, ct, _blocks);
            }
        }
    }

    /// <inheritdoc/>
    public override void ReadRow(int r, Span<float> dst)
    {
        using var lease = _m.Buffer.Acquire();
        for (int c = 0; c < Cols; c++)
        {
            int b = c / 32, j = c % 32;
            byte packed = _m.Quants(r)[GroupDot.Q4ByteOffset(b, j & 15, _blocks)];
            int qv = j < 16 ? packed & 15 : packed >> 4;
            dst[c] = (qv - 8) * _m.Scales(r)[b];
        }
    }
}

/// <summary>
/// Storage of a low-bit matrix in one <see cref="WeightBuffer"/>: all rows' quants (in <see cref="GroupDot"/>'s
/// interleaved layout), then all rows' float scales — two sequential streams per product. The alternative kept for the
/// benchmark's A/B (<see cref="InlineScales"/>: each row's scales right after its quants, rows 64-byte aligned) measured
/// ~40 % slower decode: the back-and-forth within each row defeats the hardware prefetchers, while two clean streams
/// read as fast as one (bench/results/llm-bw.md).
/// </summary>
internal sealed unsafe class QuantRows
{
    /// <summary>Layout of new matrices: scales after each row's quants (true) or after all quants (false, the default).</summary>
    internal static bool InlineScales;

    private readonly byte* _base;
    private readonly long _qStride, _sBase, _sStride;

    public WeightBuffer Buffer { get; }

    /// <summary>Bytes of quants and scales (without padding): what a product reads.</summary>
    public long DataBytes { get; }

    public QuantRows(int rows, int blocks, int quantBytesPerRow, float[] scales)
    {
        if (scales.Length != (long)rows * blocks) throw new ArgumentException($"{scales.Length} scales for {rows} rows of {blocks} blocks");
        long sRow = 4L * blocks;
        DataBytes = (long)rows * (quantBytesPerRow + sRow);
        if (InlineScales)
        {
            _qStride = _sStride = (quantBytesPerRow + sRow + 63) & ~63L;
            _sBase = quantBytesPerRow;
            Buffer = new WeightBuffer(rows * _qStride);
        }
        else
        {
            _qStride = quantBytesPerRow;
            _sBase = (long)rows * quantBytesPerRow;
            _sStride = sRow;
            Buffer = new WeightBuffer(DataBytes);
        }
        _base = Buffer.Pointer;
        for (int r = 0; r < rows; r++) scales.AsSpan(r * blocks, blocks).CopyTo(new Span<float>(Scales(r), blocks));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public byte* Quants(int r) => _base + r * _qStride;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float* Scales(int r) => (float*)(_base + _sBase + r * _sStride);
}
