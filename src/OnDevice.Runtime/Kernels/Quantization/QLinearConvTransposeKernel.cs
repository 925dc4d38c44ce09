using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using OnDevice.Core;
using OnDevice.Runtime.Kernels.LinearAlgebra;
using OnDevice.Runtime.Kernels.Nn;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Kernels.Quantization;

/// <summary>
/// <c>com.ondevice.QLinearConvTranspose(x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point
/// [, bias int32] [, lookup])</c>: the optimizer's replacement of DequantizeLinear → ConvTranspose → QuantizeLinear
/// (see <c>FuseQdqNeck</c>). 2-D, one group, weights [C, M, kh, kw] with one scale (and zero point) per output channel
/// M or one for all, attributes strides/pads/dilations/kernel_shape as ConvTranspose (no output_padding, output_shape or
/// SAME auto_pad). y = saturate(round-half-even((Σ (x − zx)(w − zw[m]) + bias[m])·x_scale·w_scale[m]/y_scale) + zy),
/// in float as QLinearConv does, then the optional per-channel (or shared) 256-entry lookup.
/// <para>When the kernel equals the stride (no overlap: every input pixel writes its own kh×kw output block), no
/// padding and no dilation, it is one int8 GEMM: rows (m, ky, kx) of Wᵀ times the NCHW input on
/// <see cref="Int8Pointwise"/> (requantized in its epilogue), a band of input rows at a time, then the kh·kw row planes
/// are interleaved into the output. Every other geometry runs <see cref="Reference"/>, the direct definition (also the
/// twin the fast path is tested against: the int32 sums are exact, so both give identical bytes).</para>
/// <para>With attribute <c>float_epilogue</c> = 1 (DequantizeLinear → ConvTranspose → [BatchNormalization] → element-wise
/// chain → QuantizeLinear, see <c>FuseQdqConvChain</c>), input 8 is a float32 bias and each output channel's values
/// are y = Σ·x_scale·w_scale[m] + bias[m], then the chain (<c>body</c>) and the quantization of
/// <see cref="ConvFloatEpilogue"/> (no lookup).</para>
/// </summary>
internal sealed unsafe class QLinearConvTransposeKernel : IKernel
{
    public static void Register(KernelRegistry r) =>
        r.Add("QLinearConvTranspose", 1, [DType.UInt8, DType.Int8], ctx => new QLinearConvTransposeKernel(ctx),
            domain: Elementwise.FusedElementwiseKernels.Domain, supports: Supports);

    private readonly WindowGeometry _geometry;
    private readonly bool _floatEpilogue;
    private readonly ConvEpilogueCache _epilogues;
    private readonly Int8PointwiseWeights? _gemm;
    private readonly int[]? _gemmShape;

    /// <summary>Input positions per GEMM band (whole input rows, at least one).</summary>
    private const int BandPositions = 1024;

    public static string? Supports(KernelBuildContext ctx)
    {
        if (ctx.Node.GetInt("group", 1) != 1) return "QLinearConvTranspose supports one group";
        if (ctx.Node.GetInts("output_shape") is not null) return "QLinearConvTranspose does not take output_shape";
        if (ctx.Node.GetInts("output_padding")?.Any(v => v != 0) == true) return "QLinearConvTranspose does not take output_padding";
        var g = WindowGeometry.Read(ctx.Node);
        if (g.AutoPad is not ("NOTSET" or "VALID")) return $"QLinearConvTranspose does not take auto_pad {g.AutoPad}";
        int? spatial = ctx.InputShape(3) is { } ws ? ws.Rank - 2 : ctx.InputShape(0) is { } xs ? xs.Rank - 2 : null;
        if (spatial is int r && r != 2) return $"QLinearConvTranspose over {r} spatial dimensions is not supported (2 is)";
        return g.Check(2);
    }

    public QLinearConvTransposeKernel(KernelBuildContext ctx)
    {
        _geometry = WindowGeometry.Read(ctx.Node);
        _floatEpilogue = ctx.Node.GetInt("float_epilogue", 0) != 0;
        _epilogues = new ConvEpilogueCache(ctx.Node);
        var w = ctx.Constant(3);
        var zp = ctx.Constant(5);
        if (w is not { DType: DType.UInt8 or DType.Int8, Dims.Length: 4 } || (ctx.HasInput(5) && zp is null) || !Int8Pointwise.IsSupported(Int8GemmPath.AvxVnni)) return;
        var dims = PackedWeights.Dims(w);
        int c = dims[0], m = dims[1], kh = dims[2], kw = dims[3];
        if (!Blockwise(dims[2..])) return;
        // Rows (m, ky, kx) of Wᵀ: row r reads w[ci, m, ky, kx] for every input channel ci.
        int rows = m * kh * kw, win = kh * kw;
        var wt = new byte[(long)rows * c];
        var src = w.Bytes;
        for (int ci = 0; ci < c; ci++)
            for (int j = 0; j < m; j++)
                for (int t = 0; t < win; t++) wt[((long)j * win + t) * c + ci] = src[((ci * m) + j) * win + t];
        int[] zw = zp is null ? [] : QuantValues.Ints(TensorBuffer.Wrap(zp));
        if (zw.Length is not (0 or 1) && zw.Length != m) return;
        int[] rowZp = zw.Length <= 1 ? zw : Enumerable.Range(0, rows).Select(r => zw[r / win]).ToArray();
        _gemm = new Int8PointwiseWeights(wt, w.DType == DType.Int8, rows, c, rowZp);
        _gemmShape = dims;
    }

    /// <summary>True when the geometry is non-overlapping blocks: kernel = stride, no padding, no dilation.</summary>
    private bool Blockwise(ReadOnlySpan<int> kernel)
    {
        for (int i = 0; i < 2; i++)
        {
            int s = _geometry.Strides?[i] ?? 1, d = _geometry.Dilations?[i] ?? 1;
            if (kernel[i] != s || d != 1 || (_geometry.Pads?[i] ?? 0) != 0 || (_geometry.Pads?[i + 2] ?? 0) != 0) return false;
        }
        return true;
    }

    public void Execute(KernelContext ctx)
    {
        var x = ctx.Required(0);
        var w = ctx.Required(3);
        if (x.Rank != 4 || w.Rank != 4) throw new InvalidOperationException($"QLinearConvTranspose: input {x} and weight {w} must both be 4-D");
        if (x.DType is not (DType.UInt8 or DType.Int8) || w.DType is not (DType.UInt8 or DType.Int8))
            throw new InvalidOperationException($"QLinearConvTranspose: x and w must be uint8/int8, got {x.DType.Name()} and {w.DType.Name()}");
        int n = x.Shape[0], c = x.Shape[1], h = x.Shape[2], wi = x.Shape[3];
        if (w.Shape[0] != c) throw new InvalidOperationException($"QLinearConvTranspose: input {TensorBuffer.Format(x.Shape)} and weight {TensorBuffer.Format(w.Shape)} channels differ");
        int m = w.Shape[1], kh = w.Shape[2], kw = w.Shape[3];
        if (_geometry.KernelShape is { } ks && !ks.AsSpan().SequenceEqual(w.Shape.AsSpan(2)))
            throw new InvalidOperationException($"QLinearConvTranspose: kernel_shape [{string.Join(",", ks)}] differs from the weight {TensorBuffer.Format(w.Shape)}");
        int sh = _geometry.Strides?[0] ?? 1, sw = _geometry.Strides?[1] ?? 1, dh = _geometry.Dilations?[0] ?? 1, dw = _geometry.Dilations?[1] ?? 1;
        int pt = _geometry.Pads?[0] ?? 0, pl = _geometry.Pads?[1] ?? 0, pb = _geometry.Pads?[2] ?? 0, pr = _geometry.Pads?[3] ?? 0;
        int oh = sh * (h - 1) + (kh - 1) * dh + 1 - pt - pb, ow = sw * (wi - 1) + (kw - 1) * dw + 1 - pl - pr;
        if (oh < 0 || ow < 0) throw new InvalidOperationException($"QLinearConvTranspose: negative output size for input {TensorBuffer.Format(x.Shape)}");

        float sx = QuantValues.ScalarScale(ctx.Required(1), "x_scale");
        int zx = QuantValues.ScalarZeroPoint(ctx.Required(2), "x_zero_point");
        var ws = QuantValues.ScaleVector(ctx.Required(4), m, "w_scale");
        var zw = QuantValues.ZeroPointVector(ctx.Input(5), m, "w_zero_point");
        float sy = QuantValues.ScalarScale(ctx.Required(6), "y_scale");
        var yzp = ctx.Required(7);
        int zy = QuantValues.ScalarZeroPoint(yzp, "y_zero_point");
        float[]? floatBias = null;
        if (_floatEpilogue)
            floatBias = ctx.Input(8) is { } fb ? fb.DType == DType.Float32 && fb.Length == m ? fb.Span<float>().ToArray()
                : throw new InvalidOperationException($"QLinearConvTranspose (float epilogue) bias must be float32[{m}], got {fb}") : new float[m];
        var bias = _floatEpilogue ? new int[m] : ctx.Input(8) is { } bb ? bb.DType == DType.Int32 && bb.Length == m ? bb.Span<int>().ToArray()
            : throw new InvalidOperationException($"QLinearConvTranspose bias must be int32[{m}], got {bb}") : new int[m];
        var multipliers = new float[m];
        for (int j = 0; j < m; j++) multipliers[j] = sx * ws[j] / sy;
        var (min, max) = QuantValues.Range(yzp.DType);
        int[] shape = [n, m, oh, ow];
        var table = ctx.Input(9);
        int tableRows = table is null ? 0 : ChannelLookupKernel.Channels(shape, table, "QLinearConvTranspose");
        if (table is not null && table.DType != yzp.DType) throw new InvalidOperationException($"QLinearConvTranspose: lookup table is {table.DType.Name()} but y is {yzp.DType.Name()}");
        var y = ctx.Output(0, yzp.DType, shape);
        if (y.Length == 0) return;

        var req = new Requant(bias, multipliers, zy, min, max);
        if (_floatEpilogue)
        {
            if (table is not null) throw new InvalidOperationException("QLinearConvTranspose: a float epilogue takes no lookup table");
            var scales = new float[m];
            for (int j = 0; j < m; j++) scales[j] = sx * ws[j];
            var epi = _epilogues.Quantizing(sy, zy, min, max);
            if (epi.CheckChannels(m) is { } bad) throw new InvalidOperationException($"node {ctx.Node.Label}: {bad}");
            req = req with { Float = new FloatEpilogue(scales, floatBias!, epi) };
        }
        fixed (byte* px = x.Memory.Span)
        fixed (byte* pw = w.Memory.Span)
        fixed (byte* py = y.Memory.Span)
        fixed (byte* ptab = table is null ? default : table.Memory.Span)
        {
            if (_gemm is not null && _gemmShape is not null && w.Shape.AsSpan().SequenceEqual(_gemmShape) && Blockwise(w.Shape.AsSpan(2)))
                RunBlockwise(ctx, _gemm, px, x.DType == DType.Int8, n, c, h, wi, zx, m, kh, kw, req, ptab, tableRows, py);
            else
                Reference(px, x.DType == DType.Int8, n, c, h, wi, zx, pw, w.DType == DType.Int8, m, kh, kw, zw, [sh, sw], [dh, dw], [pt, pl], oh, ow, req, ptab, tableRows, py);
        }
    }

    /// <summary>Requantization of one call: int32 bias and float multiplier per output channel, output zero point and range.</summary>
    internal sealed record Requant(int[] Bias, float[] Multipliers, int Zy, int Min, int Max)
    {
        /// <summary>The float-epilogue form (then Bias and Multipliers are unused), or null.</summary>
        public FloatEpilogue? Float { get; init; }
    }

    /// <summary>Per output channel x_scale·w_scale and float bias, then the epilogue's chain and quantization.</summary>
    internal sealed record FloatEpilogue(float[] Scales, float[] Bias, ConvFloatEpilogue Epilogue);

    /// <summary>
    /// The definition, for any 2-D geometry: per output channel an int32 plane starting at the bias, every input pixel
    /// adds (x − zx)(w − zw) at o = i·stride − padBegin + k·dilation, then each sum is requantized with
    /// <see cref="Requantize.OneFloat"/> and looked up. The scalar twin of <see cref="RunBlockwise"/>.
    /// </summary>
    internal static void Reference(byte* x, bool signedX, int n, int c, int h, int wi, int zx, byte* w, bool signedW, int m, int kh, int kw,
        int[] zw, int[] strides, int[] dilations, int[] padBegin, int oh, int ow, Requant q, byte* table, int tableRows, byte* y)
    {
        var acc = new int[(long)oh * ow];
        for (int img = 0; img < n; img++)
            for (int j = 0; j < m; j++)
            {
                Array.Fill(acc, q.Bias[j]);
                for (int ci = 0; ci < c; ci++)
                {
                    byte* xp = x + ((long)img * c + ci) * h * wi;
                    byte* wp = w + ((long)ci * m + j) * kh * kw;
                    for (int iy = 0; iy < h; iy++)
                        for (int ix = 0; ix < wi; ix++)
                        {
                            int xv = (signedX ? (sbyte)xp[iy * wi + ix] : xp[iy * wi + ix]) - zx;
                            if (xv == 0) continue;
                            for (int ky = 0; ky < kh; ky++)
                            {
                                int oy = iy * strides[0] - padBegin[0] + ky * dilations[0];
                                if ((uint)oy >= (uint)oh) continue;
                                for (int kx = 0; kx < kw; kx++)
                                {
                                    int ox = ix * strides[1] - padBegin[1] + kx * dilations[1];
                                    if ((uint)ox >= (uint)ow) continue;
                                    int wv = (signedW ? (sbyte)wp[ky * kw + kx] : wp[ky * kw + kx]) - zw[j];
                                    acc[oy * ow + ox] += xv * wv;
                                }
                            }
                        }
                }
                byte* dst = y + ((long)img * m + j) * oh * ow;
                if (q.Float is { } fe)
                {
                    var plane = new float[acc.Length];
                    for (int p = 0; p < acc.Length; p++) plane[p] = MathF.FusedMultiplyAdd(acc[p], fe.Scales[j], fe.Bias[j]);
                    fixed (float* pp = plane) fe.Epilogue.Row(pp, plane.Length, j, dst, vector: false);
                    continue;
                }
                byte* t = tableRows == 0 ? null : table + (tableRows == 1 ? 0 : j * 256);
                for (int p = 0; p < acc.Length; p++)
                {
                    byte v = (byte)Requantize.OneFloat(acc[p], q.Multipliers[j], q.Zy, q.Min, q.Max);
                    dst[p] = t is null ? v : t[v];
                }
            }
    }

    /// <summary>
    /// Kernel = stride, no padding: for each band of input rows, S[(m, ky, kx), p] = Wᵀ·X on <see cref="Int8Pointwise"/>
    /// (requantized, looked up), then row plane (m, ky, kx) goes to output rows iy·kh + ky, columns ix·kw + kx.
    /// </summary>
    private static void RunBlockwise(KernelContext ctx, Int8PointwiseWeights gemm, byte* x, bool signedX, int n, int c, int h, int wi, int zx,
        int m, int kh, int kw, Requant q, byte* table, int tableRows, byte* y)
    {
        int win = kh * kw, rows = m * win, oh = h * kh, ow = wi * kw;
        var bias = new int[rows];
        var mul = new float[rows];
        var fe = q.Float;
        var outScales = fe is null ? null : new float[rows];
        var outBias = fe is null ? null : new float[rows];
        for (int r = 0; r < rows; r++)
        {
            bias[r] = q.Bias[r / win];
            mul[r] = q.Multipliers[r / win];
            if (fe is not null)
            {
                outScales![r] = fe.Scales[r / win];
                outBias![r] = fe.Bias[r / win];
            }
        }
        byte[]? rowTables = null;
        if (tableRows > 1)
        {
            rowTables = new byte[rows * 256];
            for (int r = 0; r < rows; r++) new ReadOnlySpan<byte>(table + r / win * 256, 256).CopyTo(rowTables.AsSpan(r * 256));
        }
        int bandRows = Math.Clamp(BandPositions / Math.Max(1, wi), 1, h);
        int bands = (h + bandRows - 1) / bandRows, jobs = n * bands;
        int bandCap = bandRows * wi;
        int gemmBytes = Int8Pointwise.ScratchBytes(gemm.KPadded);
        int floatBytes = fe is null ? 0 : checked(rows * bandCap * sizeof(float) + 64); // the float rows before the epilogue
        int perWorker = checked(rows * bandCap + 64 + gemmBytes + floatBytes);
        int minChunk = PackedWeights.ChunkFor((long)bandCap * rows * c);
        int workers = PackedWeights.Workers(ctx, jobs, minChunk);
        var scratch = ctx.Scratch(checked(perWorker * workers));
        fixed (int* pbias = bias)
        fixed (float* pmul = mul)
        fixed (byte* prt = rowTables)
        fixed (float* pos = outScales)
        fixed (float* pob = outBias)
        fixed (byte* ps0 = scratch.Span)
        {
            var rq = new Int8Pointwise.Requant
            {
                Bias = pbias, Multipliers = pmul, Zy = q.Zy, Min = q.Min, Max = q.Max,
                Lookup = tableRows > 1 ? prt : table, LookupRows = tableRows > 1 ? rows : tableRows,
                OutScales = pos, OutBias = pob,
            };
            nint px = (nint)x, py = (nint)y, ps = (nint)ps0;
            PackedWeights.ForWorkers(ctx, jobs, minChunk, (worker, j0, j1) =>
            {
                byte* temp = (byte*)ps + (nint)worker * perWorker;
                byte* gs = temp + rows * bandCap + 64;
                float* ft = (float*)(((nint)(gs + gemmBytes) + 63) & ~(nint)63);
                for (int job = j0; job < j1; job++)
                {
                    int img = job / bands, band = job % bands;
                    int row0 = band * bandRows, nrows = Math.Min(bandRows, h - row0), count = nrows * wi;
                    byte* xi = (byte*)px + ((nint)img * c * h + row0) * wi;
                    int panels = (count + Int8Pointwise.Panel - 1) / Int8Pointwise.Panel;
                    if (fe is null) Int8Pointwise.Run(Int8GemmPath.AvxVnni, gemm, xi, (nint)h * wi, count, signedX, zx, rq, temp, count, 0, panels, gs);
                    else
                    {
                        // Float rows (m, ky, kx), then each through the epilogue into the byte rows the interleave reads.
                        Int8Pointwise.Run(Int8GemmPath.AvxVnni, gemm, xi, (nint)h * wi, count, signedX, zx, rq, (byte*)ft, count, 0, panels, gs);
                        for (int r = 0; r < rows; r++) fe.Epilogue.Row(ft + (nint)r * count, count, r / win, temp + (nint)r * count);
                    }
                    byte* yi = (byte*)py + (nint)img * m * oh * ow;
                    for (int j = 0; j < m; j++)
                        for (int ky = 0; ky < kh; ky++)
                            for (int iy = 0; iy < nrows; iy++)
                            {
                                byte* dst = yi + ((nint)j * oh + (row0 + iy) * kh + ky) * ow;
                                byte* src = temp + (nint)((j * kh + ky) * kw) * count + iy * wi;
                                Interleave(src, count, kw, wi, dst);
                            }
                }
            });
        }
    }

    /// <summary>dst[ix·kw + kx] = src[kx·stride + ix] for ix &lt; <paramref name="wi"/>, kx &lt; <paramref name="kw"/>
    /// (the planes of one output row's kw offsets, interleaved); AVX2 byte unpacks for kw = 2.</summary>
    internal static void Interleave(byte* src, nint stride, int kw, int wi, byte* dst)
    {
        int ix = 0;
        if (kw == 2 && Avx2.IsSupported)
        {
            for (; ix + 32 <= wi; ix += 32)
            {
                var a = Vector256.Load(src + ix);
                var b = Vector256.Load(src + stride + ix);
                var lo = Avx2.UnpackLow(a, b);   // lanes: a0..7|b0..7 interleaved, a16..23|b16..23
                var hi = Avx2.UnpackHigh(a, b);  // a8..15|b8..15, a24..31|b24..31
                Avx2.Permute2x128(lo, hi, 0x20).Store(dst + 2 * ix);
                Avx2.Permute2x128(lo, hi, 0x31).Store(dst + 2 * ix + 32);
            }
        }
        for (; ix < wi; ix++)
            for (int kx = 0; kx < kw; kx++) dst[ix * kw + kx] = src[kx * stride + ix];
    }
}
