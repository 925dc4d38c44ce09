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
/// Shared storage of the block-quantized matrices (<see cref="Q8Matrix"/>, <see cref="Q4Matrix"/>): 32-value blocks with
/// one fp32 scale each, the quants and scales of every row in one <see cref="WeightBuffer"/> (<see cref="QuantRows"/>).
/// </summary>
public abstract unsafe class BlockQuantMatrix : WeightMatrix
{
    private protected readonly QuantRows _m;
    private protected readonly int _blocks;

    private protected BlockQuantMatrix(int rows, int cols, int rowQuantBytesPerBlock, float[] scales, QuantLayout? layout) : base(rows, cols)
    {
        _blocks = (cols + 31) / 32;
        _m = new QuantRows(rows, _blocks, _blocks * rowQuantBytesPerBlock, scales, layout);
    }

    /// <inheritdoc/>
    public override long Bytes => _m.DataBytes;

    /// <summary>The native buffer holding the quants and scales.</summary>
    public WeightBuffer Buffer => _m.Buffer;

    internal QuantLayout Layout => _m.Layout;

    /// <inheritdoc/>
    public override void Dispose() => _m.Buffer.Dispose();
}

/// <summary>
/// Int8 weights in blocks of 32 along each row, one float scale per block (rows padded to whole blocks with zeros); each
/// row is stored in <see cref="GroupDot"/>'s interleaved layout as unsigned bytes q + 128, in a <see cref="WeightBuffer"/>
/// (huge pages), groups of four rows interleaved when rows % 4 == 0 and cols % 256 == 0 (see <see cref="GroupDot.DotQ8Rows4"/>).
/// </summary>
public sealed unsafe class Q8Matrix : BlockQuantMatrix
{
    // q arrives row-major in block order and is rearranged row by row into GroupDot's interleaved layout (same size).
    private Q8Matrix(int rows, int cols, sbyte[] q, float[] s, QuantLayout? layout = null) : base(rows, cols, 32, s, layout)
    {
        var row = new byte[_blocks * 32];
        fixed (sbyte* src = q) fixed (byte* tmp = row)
            for (int r = 0; r < rows; r++)
            {
                GroupDot.InterleaveQ8(src + (long)r * _blocks * 32, _blocks, tmp);
                _m.Store(r, tmp);
            }
    }

    /// <inheritdoc/>
    public override LlmWeights Format => LlmWeights.Int8;

    /// <summary>Round-to-nearest symmetric quantization: per block d = max|w|/127, q = round(w/d).</summary>
    public static Q8Matrix Quantize(ReadOnlySpan<float> w, int rows, int cols) => Quantize(w, rows, cols, null);

    internal static Q8Matrix Quantize(ReadOnlySpan<float> w, int rows, int cols, QuantLayout? layout)
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
        return new Q8Matrix(rows, cols, q, s, layout);
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
                    GroupDot.DotQ8x4(_m.Quants(r), _m.Scales(r), xq, xsc, xc, _blocks, res, _m.WStride, _m.SStride);
                    for (int i = 0; i < 4; i++) y[(long)(t + i) * ldy + r] = res[i];
                }
            // The remaining activation rows (all of them when decoding): four weight rows at a time in the four-row layout,
            // otherwise one (either way one sequential stream of weights).
            for (int t = full; t < x.Count; t++)
            {
                sbyte* xt = x.Interleaved(t);
                float* st = x.Scales(t);
                int* ct = x.Offsets(t);
                float* yt = y + (long)t * ldy;
                int r = r0;
                if (_m.Layout == QuantLayout.FourRows)
                {
                    // Whole fours: one sequential stream, each activation load shared by four rows.
                    for (; r < r1 && (r & 3) != 0; r++) yt[r] = GroupDot.DotQ8(_m.Quants(r), _m.Scales(r), xt, st, ct, _blocks, _m.WStride, _m.SStride);
                    for (; r + 4 <= r1; r += 4) GroupDot.DotQ8Rows4(_m.Quants(r), _m.Scales(r), xt, st, ct, _blocks, yt + r);
                }
                for (; r < r1; r++) yt[r] = GroupDot.DotQ8(_m.Quants(r), _m.Scales(r), xt, st, ct, _blocks, _m.WStride, _m.SStride);
            }
        }
    }

    /// <inheritdoc/>
    public override void ReadRow(int r, Span<float> dst)
    {
        using var lease = _m.Buffer.Acquire();
        for (int c = 0; c < Cols; c++)
            dst[c] = (sbyte)(_m.Quants(r)[GroupDot.Q8ByteOffset(c / 32, c % 32, _blocks, _m.WStride)] ^ 0x80) * _m.Scales(r)[GroupDot.ScaleIndex(c / 32, _blocks, _m.SStride)];
    }
}

/// <summary>
/// Int4 weights in blocks of 32 along each row (16 bytes: element j low nibble, j+16 high nibble; value (q − 8)·d), one
/// float scale per block; each row's blocks are stored in <see cref="GroupDot"/>'s interleaved layout (groups of 8), in a
/// <see cref="WeightBuffer"/> (huge pages), groups of four rows interleaved when rows % 4 == 0 and cols % 256 == 0 (see
/// <see cref="GroupDot.DotQ4Rows4"/>).
/// </summary>
public sealed unsafe class Q4Matrix : BlockQuantMatrix
{
    // q arrives in Q4_0 order and is rearranged row by row into GroupDot's interleaved layout (same size).
    private Q4Matrix(int rows, int cols, byte[] q, float[] s, QuantLayout? layout = null) : base(rows, cols, 16, s, layout)
    {
        var row = new byte[_blocks * 16];
        fixed (byte* src = q, tmp = row)
            for (int r = 0; r < rows; r++)
            {
                GroupDot.InterleaveQ4(src + (long)r * _blocks * 16, _blocks, tmp);
                _m.Store(r, tmp);
            }
    }

    /// <inheritdoc/>
    public override LlmWeights Format => LlmWeights.Int4;

    /// <summary>Round-to-nearest quantization as in Q4_0: per block, m = the value of largest magnitude, d = m/−8, q = clamp(⌊w/d + 8.5⌋, 0, 15).</summary>
    public static Q4Matrix Quantize(ReadOnlySpan<float> w, int rows, int cols) => Quantize(w, rows, cols, null);

    internal static Q4Matrix Quantize(ReadOnlySpan<float> w, int rows, int cols, QuantLayout? layout)
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
        return new Q4Matrix(rows, cols, q, s, layout);
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
                    GroupDot.DotQ4x4(wr, sr, xq, xsc, xc, _blocks, res, _m.WStride, _m.SStride);
                    for (int i = 0; i < 4; i++) y[(long)(t + i) * ldy + r] = res[i];
                }
            }
            // The remaining activation rows (all of them when decoding): four weight rows at a time in the four-row layout
            // (one sequential stream; four separately stored rows side by side were four streams and prefetched worse),
            // otherwise one row at a time.
            for (int t = full; t < x.Count; t++)
            {
                sbyte* xt = x.Interleaved(t);
                float* st = x.Scales(t);
                int* ct = x.Offsets(t);
                float* yt = y + (long)t * ldy;
                int r = r0;
                if (_m.Layout == QuantLayout.FourRows)
                {
                    // Whole fours: one sequential stream, each activation load shared by four rows.
                    for (; r < r1 && (r & 3) != 0; r++) yt[r] = GroupDot.DotQ4(_m.Quants(r), _m.Scales(r), xt, st, ct, _blocks, _m.WStride, _m.SStride);
                    for (; r + 4 <= r1; r += 4) GroupDot.DotQ4Rows4(_m.Quants(r), _m.Scales(r), xt, st, ct, _blocks, yt + r);
                }
                for (; r < r1; r++) yt[r] = GroupDot.DotQ4(_m.Quants(r), _m.Scales(r), xt, st, ct, _blocks, _m.WStride, _m.SStride);
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
            byte packed = _m.Quants(r)[GroupDot.Q4ByteOffset(b, j & 15, _blocks, _m.WStride)];
            int qv = j < 16 ? packed & 15 : packed >> 4;
            dst[c] = (qv - 8) * _m.Scales(r)[GroupDot.ScaleIndex(b, _blocks, _m.SStride)];
        }
    }
}

/// <summary>How a low-bit matrix's interleaved rows are placed in its buffer.</summary>
internal enum QuantLayout
{
    /// <summary>Row after row (each row's whole groups contiguous), then every row's scales: two sequential streams.</summary>
    Rows,
    /// <summary>
    /// Rows in fours, their groups interleaved: group g of rows 4k..4k+3 side by side, then group g + 1; scales likewise
    /// (8 per row per group). A four-row decode kernel then reads one sequential stream and loads each activation vector
    /// once for four rows. Needs rows % 4 == 0 and whole groups (blocks % 8 == 0).
    /// </summary>
    FourRows,
    /// <summary>Each row's quants followed by its scales, rows 64-byte aligned (kept for the benchmark's A/B: slower).</summary>
    InlineScales,
}

/// <summary>
/// Storage of a low-bit matrix in one <see cref="WeightBuffer"/> (huge pages), in one of the <see cref="QuantLayout"/>s:
/// <see cref="QuantLayout.FourRows"/> when the shape allows, otherwise <see cref="QuantLayout.Rows"/>. Measured
/// (bench/results/llm-bw.md): per-row inline scales were ~40 % slower than two clean streams — going back and forth within
/// each row defeats the hardware prefetchers.
/// </summary>
internal sealed unsafe class QuantRows
{
    /// <summary>Forces the layout of new matrices (benchmark A/B; <see cref="QuantLayout.FourRows"/> still needs a fitting shape).</summary>
    internal static QuantLayout? Force;

    private readonly byte* _base;
    private readonly long _qRow, _sBase;
    private readonly int _blocks, _groupBytes;

    public WeightBuffer Buffer { get; }

    public QuantLayout Layout { get; }

    /// <summary>Bytes between consecutive whole groups of one row.</summary>
    public int WStride { get; }

    /// <summary>Floats between consecutive groups' scales of one row.</summary>
    public int SStride { get; }

    /// <summary>Bytes of quants and scales (without padding): what a product reads.</summary>
    public long DataBytes { get; }

    /// <summary>Allocates the layout (<paramref name="layout"/>, else <see cref="Force"/>, else the best that fits) and stores the scales.</summary>
    public QuantRows(int rows, int blocks, int quantBytesPerRow, float[] scales, QuantLayout? layout = null)
    {
        if (scales.Length != (long)rows * blocks) throw new ArgumentException($"{scales.Length} scales for {rows} rows of {blocks} blocks");
        _blocks = blocks;
        _qRow = quantBytesPerRow;
        _groupBytes = quantBytesPerRow / blocks * GroupDot.Group;
        long sRow = 4L * blocks;
        DataBytes = (long)rows * (quantBytesPerRow + sRow);
        bool fits = rows % 4 == 0 && blocks % GroupDot.Group == 0;
        Layout = (layout ?? Force) switch
        {
            QuantLayout.FourRows or null when fits => QuantLayout.FourRows,
            QuantLayout.InlineScales => QuantLayout.InlineScales,
            _ => QuantLayout.Rows,
        };
        WStride = Layout == QuantLayout.FourRows ? 4 * _groupBytes : _groupBytes;
        SStride = Layout == QuantLayout.FourRows ? 4 * GroupDot.Group : GroupDot.Group;
        if (Layout == QuantLayout.InlineScales)
        {
            _qRow = (quantBytesPerRow + sRow + 63) & ~63L;
            _sBase = quantBytesPerRow;
            Buffer = new WeightBuffer(rows * _qRow);
        }
        else
        {
            _sBase = (long)rows * quantBytesPerRow;
            Buffer = new WeightBuffer(DataBytes);
        }
        _base = Buffer.Pointer;
        for (int r = 0; r < rows; r++)
        {
            float* sr = Scales(r);
            for (int b = 0; b < blocks; b++) sr[GroupDot.ScaleIndex(b, blocks, SStride)] = scales[(long)r * blocks + b];
        }
    }

    /// <summary>Row <paramref name="r"/>'s first whole group (its groups are <see cref="WStride"/> bytes apart).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public byte* Quants(int r) => Layout == QuantLayout.FourRows
        ? _base + (r >> 2) * 4 * _qRow + (r & 3) * _groupBytes
        : _base + r * _qRow;

    /// <summary>Row <paramref name="r"/>'s first group's scales (groups <see cref="SStride"/> floats apart).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float* Scales(int r) => Layout switch
    {
        QuantLayout.FourRows => (float*)(_base + _sBase) + (r >> 2) * 4L * _blocks + (r & 3) * GroupDot.Group,
        QuantLayout.InlineScales => (float*)(_base + r * _qRow + _sBase),
        _ => (float*)(_base + _sBase) + (long)r * _blocks,
    };

    /// <summary>Stores row <paramref name="r"/> from its contiguous interleaved form (whole groups, then tail blocks).</summary>
    public void Store(int r, byte* row)
    {
        byte* dst = Quants(r);
        int groups = _blocks / GroupDot.Group;
        for (int g = 0; g < groups; g++) System.Buffer.MemoryCopy(row + (long)g * _groupBytes, dst + (long)g * WStride, _groupBytes, _groupBytes);
        long tail = _qRow - (long)groups * _groupBytes;
        if (Layout == QuantLayout.InlineScales) tail = _sBase - (long)groups * _groupBytes;
        if (tail > 0) System.Buffer.MemoryCopy(row + (long)groups * _groupBytes, dst + (long)groups * WStride, tail, tail);
    }
}
