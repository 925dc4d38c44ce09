using System.Runtime.Intrinsics;
using OnDevice.Core;
using OnDevice.Runtime.Kernels.Elementwise;
using OnDevice.Runtime.Kernels.LinearAlgebra;
using OnDevice.Runtime.Kernels.Nn;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Kernels.Quantization;

/// <summary>ConvInteger and QLinearConv (1-D to 3-D, groups, depthwise, per-tensor or per-channel weights, int32 bias).</summary>
internal static class IntegerConvKernels
{
    private static readonly DType[] Bytes = [DType.UInt8, DType.Int8];

    public static void Register(KernelRegistry r)
    {
        r.Add("ConvInteger", 10, Bytes, ctx => new ConvIntegerKernel(ctx), supports: ctx => IntegerConvCore.Supports(ctx, 1));
        r.Add("QLinearConv", 10, Bytes, ctx => new QLinearConvKernel(ctx), supports: ctx => IntegerConvCore.Supports(ctx, 3));
        r.Add("QLinearConv", 1, Bytes, ctx => new QLinearConvKernel(ctx), domain: "com.microsoft", supports: ctx =>
            ctx.Node.GetInt("channels_last", 0) != 0 ? "channels_last QLinearConv is not supported" : IntegerConvCore.Supports(ctx, 3));
        // The optimizer's fusion of DequantizeLinear → Conv (→ Relu) → QuantizeLinear: QLinearConv with an optional fused Relu.
        r.Add("QLinearConv", 1, Bytes, ctx => new QLinearConvKernel(ctx), domain: Elementwise.FusedElementwiseKernels.Domain, supports: ctx => IntegerConvCore.Supports(ctx, 3));
        ChannelLookupKernel.Register(r);
    }
}

/// <summary>
/// Integer convolution on <see cref="Int8Gemm"/>: per image and group, blocks of output positions are gathered as
/// rows of A (im2col, the window of one position per row; padding reads as the input zero point, i.e. contributes 0)
/// and multiplied with the group's weights packed as B[window, out-channel] (packed once when constant). Depthwise
/// convolutions (one input channel per group) run a direct loop instead. The epilogue turns each block's int32 sums
/// into the output layout (NCHW) as int32 or requantized bytes.
/// </summary>
internal sealed unsafe class IntegerConvCore
{
    /// <summary>
    /// Float output rows [c0, c1) × positions [p0, p0 + count) of image img are final: row c is at
    /// src + (c − c0)·srcStride floats (in y, or in the worker's scratch; valid during the call, may be changed).
    /// </summary>
    public delegate void FloatRows(int img, int c0, int c1, int p0, int count, float* src, nint srcStride);

    private readonly WindowGeometry _geometry;
    private readonly int _group;
    private readonly int _wInput, _wZpInput;
    private readonly Int8PackedB[]? _packed;
    private readonly int[]? _wShape;
    private readonly Int8PointwiseWeights? _pointwise;
    private readonly bool _wConstant;
    private float[]? _depthwiseFloats;

    public static string? Supports(KernelBuildContext ctx, int wInput)
    {
        var g = WindowGeometry.Read(ctx.Node);
        int? spatial = ctx.InputShape(wInput) is { } ws ? ws.Rank - 2 : ctx.InputShape(0) is { } xs ? xs.Rank - 2 : null;
        if (spatial is int r && (r < 1 || r > 3)) return $"integer convolution over {r} spatial dimensions is not supported (1 to 3 are)";
        if (ctx.Node.GetInt("group", 1) < 1) return "group must be positive";
        return g.Check(spatial);
    }

    public IntegerConvCore(KernelBuildContext ctx, int wInput, int wZpInput)
    {
        _geometry = WindowGeometry.Read(ctx.Node);
        _group = checked((int)ctx.Node.GetInt("group", 1));
        _wInput = wInput;
        _wZpInput = wZpInput;
        var w = ctx.Constant(wInput);
        var zp = ctx.Constant(wZpInput);
        if (w is { DType: DType.UInt8 or DType.Int8, Dims.Length: >= 3 } && w.Dims[0] % _group == 0 && (!ctx.HasInput(wZpInput) || zp is not null))
        {
            _wShape = PackedWeights.Dims(w);
            _wConstant = true;
            if (!(_wShape[1] == 1 && _group > 1))
                _packed = Pack(w.Bytes, w.DType == DType.Int8, _wShape, zp is null ? [] : QuantValues.Ints(TensorBuffer.Wrap(zp)));
            // 1×1 kernels over all channels: also as the left operand of the NCHW pointwise GEMM (used when stride 1, no padding).
            // Small-channel 2-D convolutions (stems): the same GEMM over im2col rows built one output row at a time.
            bool pointwise = _wShape.Skip(2).All(d => d == 1);
            bool stem = _wShape.Length == 4 && (_wShape[1] <= MaxRowIm2ColChannels || _wShape[0] <= MaxRowIm2ColOutputs);
            if (_group == 1 && (pointwise || stem) && Int8Pointwise.IsSupported(Int8GemmPath.AvxVnni))
                _pointwise = new Int8PointwiseWeights(w.Bytes, w.DType == DType.Int8, _wShape[0], _wShape.Skip(1).Aggregate(1, (p, d) => p * d),
                    zp is null ? [] : QuantValues.Ints(TensorBuffer.Wrap(zp)));
        }
    }

    /// <summary>Packs each group's weights as B[k, oc] with k = (window position, input channel): the order in which
    /// <see cref="Gather"/> lays out a row (a pixel's channels are contiguous once the input is channels-last).</summary>
    private Int8PackedB[] Pack(ReadOnlySpan<byte> w, bool signed, int[] wShape, int[] zps)
    {
        int m = wShape[0], mg = m / _group, cg = wShape[1], win = wShape[2..].Aggregate(1, (p, d) => p * d), kg = cg * win;
        if (zps.Length is not (0 or 1) && zps.Length != m) throw new InvalidOperationException($"weight zero point has {zps.Length} values for {m} output channels");
        var packed = new Int8PackedB[_group];
        var reordered = new byte[mg * kg];
        for (int g = 0; g < _group; g++)
        {
            var src = w.Slice(g * mg * kg, mg * kg);
            for (int j = 0; j < mg; j++)
                for (int ci = 0; ci < cg; ci++)
                    for (int t = 0; t < win; t++) reordered[j * kg + t * cg + ci] = src[j * kg + ci * win + t];
            ReadOnlySpan<int> z = zps.Length <= 1 ? zps : zps.AsSpan(g * mg, mg);
            packed[g] = new Int8PackedB(reordered, signed, kg, mg, 1, kg, z);
        }
        return packed;
    }

    /// <summary>Bytes held by prepacked weights.</summary>
    public long PackedBytes => (_packed?.Sum(p => p.Bytes) ?? 0) + (_pointwise?.Bytes ?? 0);

    /// <summary>
    /// Runs a pointwise convolution (constant 1×1 weights, stride 1, no padding, one group) on <see cref="Int8Pointwise"/>
    /// straight from and into NCHW, requantizing in the GEMM's epilogue; false (nothing done) when the call does not fit.
    /// With float output, <paramref name="done"/>, when given, is called once each block of output has been written
    /// (the place for a further per-row epilogue while it is in cache); with <paramref name="floatsInScratch"/> the
    /// block's floats go only to the worker's scratch (y is not written: done must store the result).
    /// </summary>
    public bool TryPointwise(KernelContext ctx, TensorBuffer x, int zx, TensorBuffer w, Window win, Int8Pointwise.Requant q, TensorBuffer y,
        FloatRows? done = null, bool floatsInScratch = false)
    {
        if (_pointwise is null || _wShape is null || !w.Shape.AsSpan().SequenceEqual(_wShape) || x.DType is not (DType.UInt8 or DType.Int8)) return false;
        for (int i = 0; i < win.Rank; i++)
            if (win.Kernel[i] != 1 || win.Strides[i] != 1 || win.PadBegin[i] != 0 || win.PadEnd[i] != 0 || win.Output[i] != x.Shape[2 + i]) return false;
        var pw = _pointwise;
        int n = x.Shape[0], k = x.Shape[1], m = pw.M;
        if (k != pw.K) return false;
        int positions = 1;
        for (int i = 2; i < x.Rank; i++) positions *= x.Shape[i];
        if ((long)n * positions == 0) return true;
        int panels = (positions + Int8Pointwise.Panel - 1) / Int8Pointwise.Panel;
        // With a per-row epilogue after each job, jobs of about 256 positions: the epilogue's per-row overhead is
        // paid on longer rows, and M rows of 256 floats still stay in L2 between the GEMM and the epilogue.
        int panelsPerJob = done is null ? Int8Pointwise.PanelsPerBlock : Math.Max(Int8Pointwise.PanelsPerBlock, 256 / Int8Pointwise.Panel);
        int blocks = (panels + panelsPerJob - 1) / panelsPerJob;
        int jobs = n * blocks;
        int minChunk = PackedWeights.ChunkFor((long)panelsPerJob * Int8Pointwise.Panel * k * m);
        int workers = PackedWeights.Workers(ctx, jobs, minChunk);
        int es = q.OutScales != null ? sizeof(float) : 1; // float output (dequantize) or bytes
        floatsInScratch &= done is not null && es == sizeof(float);
        int jobCols = panelsPerJob * Int8Pointwise.Panel;
        int gemmBytes = (Int8Pointwise.ScratchBytes(pw.KPadded) + 63) / 64 * 64;
        int perWorker = gemmBytes + (floatsInScratch ? checked(m * jobCols * sizeof(float) + 64) : 0);
        var scratch = ctx.Scratch(checked(perWorker * workers + 64));
        bool signedX = x.DType == DType.Int8;
        fixed (byte* px0 = x.Memory.Span)
        fixed (byte* py0 = y.Memory.Span)
        fixed (byte* ps0 = scratch.Span)
        {
            nint px = (nint)px0, py = (nint)py0, ps = ((nint)ps0 + 63) & ~(nint)63;
            PackedWeights.ForWorkers(ctx, jobs, minChunk, (worker, j0, j1) =>
            {
                byte* mine = (byte*)ps + (nint)worker * perWorker;
                float* tmp = (float*)(mine + gemmBytes);
                for (int job = j0; job < j1; job++)
                {
                    int img = job / blocks, blk = job % blocks;
                    int p0 = blk * panelsPerJob, p1 = Math.Min(panels, p0 + panelsPerJob);
                    int c0 = p0 * Int8Pointwise.Panel, count = Math.Min(positions, p1 * Int8Pointwise.Panel) - c0;
                    byte* xi = (byte*)px + (nint)img * k * positions;
                    if (floatsInScratch)
                    {
                        // Column c of this job lands at tmp + (c − c0): the GEMM addresses columns from the row start.
                        Int8Pointwise.Run(Int8GemmPath.AvxVnni, pw, xi, positions, positions, signedX, zx, q, (byte*)(tmp - c0), jobCols, p0, p1, mine);
                        done!(img, 0, m, c0, count, tmp, jobCols);
                        continue;
                    }
                    float* yi = (float*)((byte*)py + (nint)img * m * positions * es);
                    Int8Pointwise.Run(Int8GemmPath.AvxVnni, pw, xi, positions, signedX, zx, q, (byte*)yi, p0, p1, mine);
                    done?.Invoke(img, 0, m, c0, count, yi + c0, positions);
                }
            });
        }
        return true;
    }

    /// <summary>The output shape for input <paramref name="x"/> and weight <paramref name="w"/>; throws on mismatches.</summary>
    public int[] OutputShape(TensorBuffer x, TensorBuffer w, out Window win)
    {
        int r = x.Rank - 2;
        if (r < 1 || r > 3 || w.Rank != x.Rank) throw new InvalidOperationException($"integer convolution: input {x} and weight {w} ranks do not fit 1-3 spatial dimensions");
        int c = x.Shape[1], m = w.Shape[0], cg = w.Shape[1];
        if (cg * _group != c || m % _group != 0)
            throw new InvalidOperationException($"integer convolution: input {TensorBuffer.Format(x.Shape)} and weight {TensorBuffer.Format(w.Shape)} do not match group {_group}");
        var kernel = w.Shape[2..];
        if (_geometry.KernelShape is { } ks && !ks.AsSpan().SequenceEqual(kernel))
            throw new InvalidOperationException($"integer convolution: kernel_shape [{string.Join(",", ks)}] differs from the weight {TensorBuffer.Format(w.Shape)}");
        win = _geometry.Resolve(x.Shape.AsSpan(2), kernel);
        return [x.Shape[0], m, .. win.Output];
    }

    /// <summary>A 2-D convolution runs on <see cref="TryRowIm2Col"/> with at most this many input channels (stems), or
    /// with at most <see cref="MaxRowIm2ColOutputs"/> output channels (where the channels-last path's 16-wide output
    /// panels would waste lanes; measured: 96→24 3×3 ≈ 1.8× faster this way, 128→128 3×3 ≈ 1.4× slower).</summary>
    internal const int MaxRowIm2ColChannels = 8;

    /// <summary>See <see cref="MaxRowIm2ColChannels"/>.</summary>
    internal const int MaxRowIm2ColOutputs = 64;

    /// <summary>
    /// A 2-D convolution over few input channels (a stem: 3→16 3×3 stride 2) or to few output channels on
    /// <see cref="Int8Pointwise"/>: for each band of output rows, the im2col rows in the weights' own order (channel, ky, kx) × output columns are built from NCHW
    /// (copies for stride 1, even-byte gathers for stride 2, the zero point outside the image) and multiplied with the
    /// weights, requantizing in the epilogue (or writing floats when <see cref="Int8Pointwise.Requant.OutScales"/> is set).
    /// False when the call does not fit. <paramref name="done"/> as for <see cref="TryPointwise"/>.
    /// </summary>
    public bool TryRowIm2Col(KernelContext ctx, TensorBuffer x, int zx, TensorBuffer w, Window win, Int8Pointwise.Requant q, TensorBuffer y,
        FloatRows? done = null, bool floatsInScratch = false)
    {
        if (_pointwise is null || _wShape is null || _group != 1 || x.Rank != 4 || !w.Shape.AsSpan().SequenceEqual(_wShape) || x.DType is not (DType.UInt8 or DType.Int8)) return false;
        var pw = _pointwise;
        int n = x.Shape[0], c = x.Shape[1], h = x.Shape[2], wd = x.Shape[3], kh = win.Kernel[0], kw = win.Kernel[1];
        if ((c > MaxRowIm2ColChannels && pw.M > MaxRowIm2ColOutputs) || c * kh * kw != pw.K) return false;
        int oh = win.Output[0], ow = win.Output[1], m = pw.M, k = pw.K;
        int sh = win.Strides[0], sw = win.Strides[1], dh = win.Dilations[0], dw = win.Dilations[1], pt = win.PadBegin[0], pl = win.PadBegin[1];
        if ((long)n * oh * ow == 0) return true;
        // Several output rows per GEMM call (≈ 256 positions) so the weights' trip through the cache is shared.
        int rowsPerJob = Math.Clamp((256 + ow - 1) / ow, 1, oh);
        while (rowsPerJob > 1 && (long)k * rowsPerJob * ow > 512 * 1024) rowsPerJob--;
        int bands = (oh + rowsPerJob - 1) / rowsPerJob;
        int jobs = n * bands, outSize = oh * ow;
        int minChunk = PackedWeights.ChunkFor((long)rowsPerJob * ow * k * m);
        int workers = PackedWeights.Workers(ctx, jobs, minChunk);
        int rowBytes = checked((k * rowsPerJob * ow + 63) / 64 * 64);
        int es = q.OutScales != null ? sizeof(float) : 1; // float output (dequantize) or bytes
        floatsInScratch &= done is not null && es == sizeof(float);
        int jobCols = rowsPerJob * ow;
        int gemmBytes = (Int8Pointwise.ScratchBytes(pw.KPadded) + 63) / 64 * 64;
        int perWorker = rowBytes + gemmBytes + (floatsInScratch ? checked(m * jobCols * sizeof(float) + 64) : 0);
        var scratch = ctx.Scratch(checked(perWorker * workers + 64));
        bool signedX = x.DType == DType.Int8;
        byte pad = (byte)zx;
        fixed (byte* px0 = x.Memory.Span)
        fixed (byte* py0 = y.Memory.Span)
        fixed (byte* ps0 = scratch.Span)
        {
            nint px = (nint)px0, py = (nint)py0, ps = ((nint)ps0 + 63) & ~(nint)63;
            PackedWeights.ForWorkers(ctx, jobs, minChunk, (worker, j0, j1) =>
            {
                byte* rows = (byte*)ps + (nint)worker * perWorker;
                byte* gemm = rows + rowBytes;
                float* tmp = (float*)(gemm + gemmBytes);
                for (int job = j0; job < j1; job++)
                {
                    int img = job / bands, oy0 = job % bands * rowsPerJob, nRows = Math.Min(rowsPerJob, oh - oy0), cols = nRows * ow;
                    for (int ci = 0; ci < c; ci++)
                        for (int ky = 0; ky < kh; ky++)
                            for (int kx = 0; kx < kw; kx++)
                                for (int r = 0; r < nRows; r++)
                                {
                                    int oy = oy0 + r;
                                    int iy = oy * sh - pt + ky * dh;
                                    byte* src = (byte*)px + (((nint)img * c + ci) * h + iy) * wd;
                                    byte* dst = rows + (nint)((ci * kh + ky) * kw + kx) * cols + (nint)r * ow;
                                    if ((uint)iy >= (uint)h) { new Span<byte>(dst, ow).Fill(pad); continue; }
                                    int off = kx * dw - pl;
                                    // Output columns whose input column ox·sw + off lies inside [0, wd).
                                    int lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
                                    int hi = wd - 1 - off < 0 ? 0 : Math.Min(ow, (wd - 1 - off) / sw + 1);
                                    lo = Math.Min(lo, hi);
                                    new Span<byte>(dst, lo).Fill(pad);
                                    new Span<byte>(dst + hi, ow - hi).Fill(pad);
                                    CopyStrided(src + lo * sw + off, sw, dst + lo, hi - lo);
                                }
                    int colPanels = (cols + Int8Pointwise.Panel - 1) / Int8Pointwise.Panel;
                    if (floatsInScratch)
                    {
                        Int8Pointwise.Run(Int8GemmPath.AvxVnni, pw, rows, cols, cols, signedX, zx, q, (byte*)tmp, jobCols, 0, colPanels, gemm);
                        done!(img, 0, m, oy0 * ow, cols, tmp, jobCols);
                        continue;
                    }
                    byte* yj = (byte*)py + ((nint)img * m * outSize + (nint)oy0 * ow) * es;
                    Int8Pointwise.Run(Int8GemmPath.AvxVnni, pw, rows, cols, cols, signedX, zx, q, yj, outSize, 0, colPanels, gemm);
                    done?.Invoke(img, 0, m, oy0 * ow, cols, (float*)yj, outSize);
                }
            });
        }
        return true;
    }

    /// <summary>dst[i] = src[i·stride] for i &lt; count (stride 1: a copy; stride 2: even bytes, 16 at a time).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    internal static void CopyStrided(byte* src, int stride, byte* dst, int count)
    {
        if (count <= 0) return;
        if (stride == 1) { Buffer.MemoryCopy(src, dst, count, count); return; }
        int i = 0;
        if (stride == 2 && System.Runtime.Intrinsics.X86.Sse2.IsSupported)
        {
            var mask = System.Runtime.Intrinsics.Vector128.Create((short)0xFF);
            // 32 source bytes per step; the last byte read is src[2i + 31] ≤ src[2(count − 1)] while i + 17 ≤ count.
            for (; i + 17 <= count; i += 16)
            {
                var v0 = System.Runtime.Intrinsics.Vector128.Load(src + 2 * i).AsInt16() & mask;
                var v1 = System.Runtime.Intrinsics.Vector128.Load(src + 2 * i + 16).AsInt16() & mask;
                System.Runtime.Intrinsics.X86.Sse2.PackUnsignedSaturate(v0, v1).Store(dst + i);
            }
        }
        for (; i < count; i++) dst[i] = src[(nint)i * stride];
    }

    /// <summary>
    /// Depthwise QLinearConv (2-D windows of at most 256 taps) straight to requantized bytes: per channel the float
    /// depthwise kernel on x − zx and w − zw (exact: every partial sum stays below 2^24), then one vectorized pass
    /// from those exact sums to output bytes (bias, multiplier, zero point, clamp, optional lookup), or to floats
    /// fma(sum, OutScales[c], OutBias[c]) when <see cref="Int8Pointwise.Requant.OutScales"/> is set. False when the
    /// call does not fit (then <see cref="Compute"/> runs). <paramref name="done"/> as for <see cref="TryPointwise"/>,
    /// once per output channel. With float output and <paramref name="rowDone"/> the channel's exact sums (as floats,
    /// not yet scaled: the callee applies OutScales/OutBias) are handed over in the worker's scratch instead of being
    /// written to y (valid during the call; may be changed).
    /// </summary>
    public bool TryDepthwise(KernelContext ctx, TensorBuffer x, int zx, TensorBuffer w, Window win, Int8Pointwise.Requant q, TensorBuffer y,
        FloatRows? done = null, FloatRows? rowDone = null)
    {
        if (_group <= 1 || w.Rank < 3 || w.Shape[1] != 1 || x.DType is not (DType.UInt8 or DType.Int8) || w.DType is not (DType.UInt8 or DType.Int8)) return false;
        var w3 = win.To3D();
        int r = x.Rank - 2;
        int[] in3 = [.. Enumerable.Repeat(1, 3 - r), .. x.Shape[2..]];
        int taps = w3.Kernel[0] * w3.Kernel[1] * w3.Kernel[2];
        if (in3[0] != 1 || w3.Kernel[0] != 1 || w3.Output[0] != 1 || taps > 256) return false;
        int n = x.Shape[0], c = x.Shape[1], m = w.Shape[0], mg = m / _group;
        int inSize = in3[1] * in3[2], outSize = w3.Output[1] * w3.Output[2];
        if ((long)n * m * outSize == 0) return true;
        bool sx = x.DType == DType.Int8, sw = w.DType == DType.Int8;
        // w − zw as floats: computed once when the weights and their zero points are constants.
        var wf = _depthwiseFloats is { } cached && w.Shape.AsSpan().SequenceEqual(_wShape) && cached.Length == m * taps ? cached : null;
        if (wf is null)
        {
            var zwb = ctx.Input(_wZpInput);
            var zw = zwb is null ? new int[m] : QuantValues.ZeroPointVector(zwb, m, "weight zero point");
            wf = new float[m * taps];
            var ws = w.Memory.Span;
            for (int oc = 0; oc < m; oc++)
                for (int t = 0; t < taps; t++) wf[oc * taps + t] = (sw ? (sbyte)ws[oc * taps + t] : ws[oc * taps + t]) - zw[oc];
            if (_wConstant) _depthwiseFloats = wf;
        }
        var shape = new DepthwiseConv.Shape(in3[1], in3[2], w3.Kernel[1], w3.Kernel[2], w3.Strides[1], w3.Strides[2], w3.PadBegin[1], w3.PadBegin[2],
            w3.Dilations[1], w3.Dilations[2], w3.Output[1], w3.Output[2]);
        // The integer sums (DepthwiseInt8) when every w − zw fits a signed byte; otherwise the float kernel on exact integers.
        var (dwi, plan) = DepthwiseInt8Weights(ctx, w, m, shape);
        int jobs = n * _group;
        int chunkJobs = PackedWeights.ChunkFor((long)outSize * taps * mg);
        int workers = PackedWeights.Workers(ctx, jobs, chunkJobs);
        long perWorker = PackedWeights.Lines(inSize) + PackedWeights.Lines(outSize) + PackedWeights.Lines(Math.Max(shape.PlaneFloats, (plan?.ScratchBytes ?? 0) / 4 + 16)) + 16;
        var scratch = ctx.Scratch(checked((int)(perWorker * workers * sizeof(float) + 64)));
        var xm = x.Memory;
        fixed (byte* px0 = xm.Span)
        fixed (byte* py0 = y.Memory.Span)
        fixed (byte* ps0 = scratch.Span)
        fixed (float* pw0 = wf)
        {
            nint px = (nint)px0, py = (nint)py0, pw = (nint)pw0;
            float* baseF = PackedWeights.Align(ps0);
            nint pbase = (nint)baseF;
            PackedWeights.ForWorkers(ctx, jobs, chunkJobs, (worker, j0, j1) =>
            {
                float* xf = (float*)pbase + worker * perWorker;
                float* yf = xf + PackedWeights.Lines(inSize);
                float* planeScratch = yf + PackedWeights.Lines(outSize);
                for (int job = j0; job < j1; job++)
                {
                    int img = job / _group, g = job % _group;
                    byte* xc = (byte*)px + ((nint)img * c + g) * inSize;
                    for (int j = 0; j < mg; j++)
                    {
                        int oc = g * mg + j;
                        // x − zx goes straight into the kernel's padded plane (no dequantized copy of the channel).
                        if (plan is not null) DepthwiseInt8.Channel(DepthwiseInt8.Best, plan, xc, sx, zx, dwi!, oc, yf, (byte*)planeScratch);
                        else DepthwiseConv.ChannelFromBytes(shape, xc, sx, zx, (float*)pw + (nint)oc * taps, 0f, default, yf, planeScratch);
                        if (q.OutScales != null && rowDone is not null)
                        {
                            rowDone(img, oc, oc + 1, 0, outSize, yf, outSize); // the exact sums: rowDone scales them
                            continue;
                        }
                        if (q.OutScales != null)
                        {
                            float* row = (float*)py + ((nint)img * m + oc) * outSize;
                            ConvFloatEpilogue.Affine(yf, outSize, q.OutScales[oc], q.OutBias[oc], row);
                            done?.Invoke(img, oc, oc + 1, 0, outSize, row, outSize);
                            continue;
                        }
                        byte* dst = (byte*)py + ((nint)img * m + oc) * outSize;
                        Requantize.FromFloat(yf, outSize, q.Bias[oc], q.Multipliers[oc], q.Zy, q.Min, q.Max, dst);
                        if (q.LookupRows > 0) ByteLookup.Apply(dst, dst, outSize, q.Lookup + (q.LookupRows == 1 ? 0 : oc * 256));
                    }
                }
            });
        }
        return true;
    }

    private DepthwiseInt8.Weights? _depthwiseInt8;
    private DepthwiseInt8.Plan? _depthwisePlan;
    private bool _depthwiseInt8Refused;

    /// <summary>The weights prepared for <see cref="DepthwiseInt8"/> (cached when constant) and a plan for this geometry;
    /// (null, null) when some w − zw does not fit a signed byte or the rows cannot be expanded with vector permutes.</summary>
    private (DepthwiseInt8.Weights?, DepthwiseInt8.Plan?) DepthwiseInt8Weights(KernelContext ctx, TensorBuffer w, int m, DepthwiseConv.Shape shape)
    {
        var prepared = _depthwiseInt8 is { } cached && _wConstant && w.Shape.AsSpan().SequenceEqual(_wShape) && cached.Channels == m ? cached : null;
        if (prepared is null)
        {
            if (_depthwiseInt8Refused) return (null, null);
            var zwb = ctx.Input(_wZpInput);
            var zw = zwb is null ? [] : QuantValues.ZeroPointVector(zwb, m, "weight zero point");
            prepared = DepthwiseInt8.Prepare(w.Memory.Span, w.DType == DType.Int8, zw, m, shape.KH, shape.KW);
            if (prepared is null)
            {
                _depthwiseInt8Refused = _wConstant;
                return (null, null);
            }
            if (_wConstant) _depthwiseInt8 = prepared;
        }
        var plan = _depthwisePlan is { } p && p.Shape == shape ? p : _depthwisePlan = new DepthwiseInt8.Plan(shape);
        // Scalar row expansion (no VBMI/AVX2, or a window reach they cannot shuffle) is slower than the float kernel.
        return plan.VectorExpansion && DepthwiseInt8.Best != Int8GemmPath.Scalar ? (prepared, plan) : (null, null);
    }

    /// <summary>
    /// Computes the int32 sums Σ (x − zx)(w − zw[oc]) and hands each block to <paramref name="store"/>(image, group,
    /// firstPosition, positions, sums) where sums is [positions, M/group] row-major (valid during the call).
    /// </summary>
    public void Compute(KernelContext ctx, TensorBuffer x, int zx, TensorBuffer w, Window win, Action<int, int, int, int, nint> store)
    {
        if (x.DType is not (DType.UInt8 or DType.Int8) || w.DType is not (DType.UInt8 or DType.Int8))
            throw new InvalidOperationException($"integer convolution needs uint8/int8 operands, got {x.DType.Name()} and {w.DType.Name()}");
        int n = x.Shape[0], c = x.Shape[1], m = w.Shape[0], cg = w.Shape[1], mg = m / _group;
        var zwb = ctx.Input(_wZpInput);
        var zw = zwb is null ? new int[m] : QuantValues.ZeroPointVector(zwb, m, "weight zero point");
        var w3 = win.To3D();
        int r = x.Rank - 2;
        int[] in3 = [.. Enumerable.Repeat(1, 3 - r), .. x.Shape[2..]];
        int inSize = in3[0] * in3[1] * in3[2], outSize = w3.Output[0] * w3.Output[1] * w3.Output[2];
        if ((long)n * m * outSize == 0) return;
        bool signedX = x.DType == DType.Int8;
        if (cg == 1 && _group > 1)
        {
            Depthwise(ctx, x, zx, w, zw, n, c, m, in3, w3, inSize, outSize, store);
            return;
        }
        Int8PackedB[] packed = _packed is not null && w.Shape.AsSpan().SequenceEqual(_wShape)
            ? _packed
            : Pack(w.Memory.Span, w.DType == DType.Int8, w.Shape, zwb is null ? [] : QuantValues.Ints(zwb));
        int kg = packed[0].K, kp = packed[0].KPadded;
        // Blocks of output positions: about 64 KiB of gathered rows each.
        int chunk = Math.Clamp(65536 / Math.Max(1, kp), Int8Gemm.MR, 2048) / Int8Gemm.MR * Int8Gemm.MR;
        int chunksPerImage = (outSize + chunk - 1) / chunk;
        int jobs = n * _group * chunksPerImage;
        long perWorker = ((long)chunk * kp + 63) / 64 * 64 + (long)chunk * 4 * 2 + (long)chunk * mg * 4 + 64;
        int minJobs = PackedWeights.ChunkFor((long)chunk * kp * mg);
        int workers = PackedWeights.Workers(ctx, jobs, minJobs);
        long hwcBytes = ((long)n * c * inSize + 63) / 64 * 64;
        var scratch = ctx.Scratch(checked((int)(hwcBytes + perWorker * workers + 128)));
        byte flip = signedX ? (byte)0x80 : (byte)0;
        int zaEff = zx + (signedX ? 128 : 0);
        byte padByte = (byte)((signedX ? (sbyte)zx : zx) ^ flip);
        var path = Int8Gemm.Best;
        fixed (byte* px0 = x.Memory.Span)
        fixed (byte* ps0 = scratch.Span)
        {
            nint px = (nint)px0;
            nint hwc = ((nint)ps0 + 63) & ~(nint)63, ps = hwc + (nint)hwcBytes;
            // The input once in channels-last order per image and group ([.., D, H, W, C/g]), bytes made unsigned.
            PackedWeights.ForWorkers(ctx, n * _group, PackedWeights.ChunkFor((long)cg * inSize), (_, t0, t1) =>
            {
                for (int t = t0; t < t1; t++)
                {
                    byte* src = (byte*)px + (nint)t * cg * inSize;
                    byte* dst = (byte*)hwc + (nint)t * cg * inSize;
                    // Tiles of 64 pixels keep the scattered writes inside 64·C bytes (L1).
                    for (int i0 = 0; i0 < inSize; i0 += 64)
                    {
                        int len = Math.Min(64, inSize - i0);
                        for (int ci = 0; ci < cg; ci++)
                        {
                            byte* s = src + (nint)ci * inSize + i0;
                            byte* d = dst + (nint)i0 * cg + ci;
                            for (int i = 0; i < len; i++) d[(nint)i * cg] = (byte)(s[i] ^ flip);
                        }
                    }
                }
            });
            PackedWeights.ForWorkers(ctx, jobs, minJobs, (worker, j0, j1) =>
            {
                byte* baseP = (byte*)(((ps + worker * (nint)perWorker) + 63) & ~(nint)63);
                byte* rows = baseP;
                int* rowSums = (int*)(baseP + ((long)chunk * kp + 63) / 64 * 64);
                int* za = rowSums + chunk;
                int* sums = za + chunk;
                for (int i = 0; i < chunk; i++) za[i] = zaEff;
                for (int job = j0; job < j1; job++)
                {
                    int img = job / (_group * chunksPerImage), rest = job % (_group * chunksPerImage);
                    int g = rest / chunksPerImage, p0 = rest % chunksPerImage * chunk;
                    int count = Math.Min(chunk, outSize - p0);
                    byte* xg = (byte*)hwc + ((nint)img * _group + g) * cg * inSize;
                    Gather(xg, cg, in3, w3, p0, count, padByte, rows, kp, rowSums);
                    Int8Gemm.Multiply(path, rows, count, rowSums, za, packed[g], sums, mg, 1);
                    store(img, g, p0, count, (nint)sums);
                }
            });
        }
    }

    /// <summary>Rows of A' for output positions [p0, p0+count) from the channels-last input: for each window position
    /// the pixel's channels (one copy), or <paramref name="padByte"/> outside the image; zero-padded to kp; row sums.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static void Gather(byte* x, int channels, int[] in3, Window w3, int p0, int count, byte padByte, byte* dst, int kp, int* rowSums)
    {
        int d = in3[0], h = in3[1], wd = in3[2];
        int kd = w3.Kernel[0], kh = w3.Kernel[1], kw = w3.Kernel[2];
        int oh = w3.Output[1], ow = w3.Output[2];
        for (int r = 0; r < count; r++)
        {
            int p = p0 + r;
            int ox = p % ow, oy = p / ow % oh, oz = p / (ow * oh);
            int bz = oz * w3.Strides[0] - w3.PadBegin[0], by = oy * w3.Strides[1] - w3.PadBegin[1], bx = ox * w3.Strides[2] - w3.PadBegin[2];
            byte* row = dst + (nint)r * kp;
            byte* o = row;
            for (int a = 0; a < kd; a++)
            {
                int iz = bz + a * w3.Dilations[0];
                bool zin = (uint)iz < (uint)d;
                for (int b = 0; b < kh; b++)
                {
                    int iy = by + b * w3.Dilations[1];
                    bool yin = zin && (uint)iy < (uint)h;
                    byte* xr = x + ((nint)iz * h + iy) * wd * channels;
                    for (int e = 0; e < kw; e++, o += channels)
                    {
                        int ix = bx + e * w3.Dilations[2];
                        if (yin && (uint)ix < (uint)wd) Buffer.MemoryCopy(xr + (nint)ix * channels, o, channels, channels);
                        else new Span<byte>(o, channels).Fill(padByte);
                    }
                }
            }
            int used = (int)(o - row);
            new Span<byte>(o, kp - used).Clear();
            rowSums[r] = SumBytes(row, used);
        }
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static int SumBytes(byte* p, int n)
    {
        int i = 0;
        uint sum = 0;
        if (System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated)
        {
            var acc = System.Runtime.Intrinsics.Vector256<uint>.Zero;
            for (; i + 32 <= n; i += 32)
            {
                var v = System.Runtime.Intrinsics.Vector256.Load(p + i);
                var (lo, hi) = System.Runtime.Intrinsics.Vector256.Widen(v);
                var (l0, l1) = System.Runtime.Intrinsics.Vector256.Widen(lo + hi);
                acc += l0 + l1;
            }
            sum = System.Runtime.Intrinsics.Vector256.Sum(acc);
        }
        for (; i < n; i++) sum += p[i];
        return (int)sum;
    }

    /// <summary>Depthwise: every output channel reads one input channel; direct sums over the window.</summary>
    private void Depthwise(KernelContext ctx, TensorBuffer x, int zx, TensorBuffer w, int[] zw, int n, int c, int m, int[] in3, Window w3,
        int inSize, int outSize, Action<int, int, int, int, nint> store)
    {
        int mg = m / _group; // output channels per group (a depth multiplier)
        int win = w3.Kernel[0] * w3.Kernel[1] * w3.Kernel[2];
        bool sx = x.DType == DType.Int8, sw = w.DType == DType.Int8;
        var xm = x.Memory;
        var wm = w.Memory;
        int jobs = n * _group;
        int chunkJobs = PackedWeights.ChunkFor((long)outSize * win * mg);
        int workers = PackedWeights.Workers(ctx, jobs, chunkJobs);
        bool floatPath = in3[0] == 1 && w3.Kernel[0] == 1 && w3.Output[0] == 1 && win <= 256;
        var shape = new DepthwiseConv.Shape(in3[1], in3[2], w3.Kernel[1], w3.Kernel[2], w3.Strides[1], w3.Strides[2], w3.PadBegin[1], w3.PadBegin[2],
            w3.Dilations[1], w3.Dilations[2], w3.Output[1], w3.Output[2]);
        PackedWeights.ForWorkers(ctx, jobs, chunkJobs, (worker, j0, j1) =>
        {
            var sums = new int[outSize * mg];
            var plane = new int[floatPath ? 0 : inSize];
            var wv = new int[win * mg];
            var xf = floatPath ? GC.AllocateUninitializedArray<float>(inSize, pinned: true) : [];
            var wf = new float[floatPath ? win * mg : 0];
            var yf = floatPath ? GC.AllocateUninitializedArray<float>(outSize, pinned: true) : [];
            var scratch = floatPath ? GC.AllocateUninitializedArray<float>(shape.PlaneFloats + 64, pinned: true) : [];
            for (int job = j0; job < j1; job++)
            {
                int img = job / _group, g = job % _group;
                var xs = xm.Span.Slice((img * c + g) * inSize, inSize);
                var ws = wm.Span.Slice(g * mg * win, mg * win);
                for (int j = 0; j < mg; j++)
                    for (int t = 0; t < win; t++) wv[j * win + t] = (sw ? (sbyte)ws[j * win + t] : ws[j * win + t]) - zw[g * mg + j];
                if (floatPath)
                {
                    // x − zx and w − zw as floats: every product (|·| ≤ 255²) and every partial sum of up to 256 taps
                    // stays below 2^24, so the float depthwise kernel (vectorized for every stride) is exact.
                    QuantizeVectors.Dequantize(xs, sx, 1f, zx, xf);
                    for (int i = 0; i < wv.Length; i++) wf[i] = wv[i];
                    fixed (float* px = xf) fixed (float* pw = wf) fixed (float* py = yf) fixed (float* ps = scratch)
                    {
                        float* aligned = (float*)(((nint)ps + 63) & ~(nint)63);
                        for (int j = 0; j < mg; j++)
                        {
                            DepthwiseConv.Channel(shape, px, pw + j * win, 0f, default, py, aligned);
                            if (mg == 1) for (int p = 0; p < outSize; p++) sums[p] = (int)py[p];
                            else for (int p = 0; p < outSize; p++) sums[p * mg + j] = (int)py[p];
                        }
                    }
                }
                else
                {
                    for (int i = 0; i < inSize; i++) plane[i] = (sx ? (sbyte)xs[i] : xs[i]) - zx;
                    DepthwisePlane(plane, in3, w3, wv, mg, win, sums);
                }
                fixed (int* ps = sums) store(img, g, 0, outSize, (nint)ps);
            }
        });
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static void DepthwisePlane(int[] plane, int[] in3, Window w3, int[] wv, int mg, int win, int[] sums)
    {
        int d = in3[0], h = in3[1], wd = in3[2];
        int kd = w3.Kernel[0], kh = w3.Kernel[1], kw = w3.Kernel[2];
        int od = w3.Output[0], oh = w3.Output[1], ow = w3.Output[2];
        int p = 0;
        for (int oz = 0; oz < od; oz++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++, p++)
                {
                    int bz = oz * w3.Strides[0] - w3.PadBegin[0], by = oy * w3.Strides[1] - w3.PadBegin[1], bx = ox * w3.Strides[2] - w3.PadBegin[2];
                    for (int j = 0; j < mg; j++)
                    {
                        int s = 0, t = j * win;
                        for (int a = 0; a < kd; a++)
                        {
                            int iz = bz + a * w3.Dilations[0];
                            for (int b = 0; b < kh; b++)
                            {
                                int iy = by + b * w3.Dilations[1];
                                bool inside = (uint)iz < (uint)d && (uint)iy < (uint)h;
                                int rowBase = (iz * h + iy) * wd;
                                for (int e = 0; e < kw; e++, t++)
                                {
                                    int ix = bx + e * w3.Dilations[2];
                                    if (inside && (uint)ix < (uint)wd) s += plane[rowBase + ix] * wv[t];
                                }
                            }
                        }
                        sums[p * mg + j] = s;
                    }
                }
    }
}

/// <summary>ConvInteger: y (int32) = Σ (x − x_zero_point)·(w − w_zero_point[oc]).</summary>
internal sealed unsafe class ConvIntegerKernel(KernelBuildContext build) : IKernel
{
    private readonly IntegerConvCore _core = new(build, 1, 3);
    private readonly int _group = checked((int)build.Node.GetInt("group", 1));

    public void Execute(KernelContext ctx)
    {
        var x = ctx.Required(0);
        var w = ctx.Required(1);
        int zx = QuantValues.ScalarZeroPoint(ctx.Input(2), "x_zero_point");
        var shape = _core.OutputShape(x, w, out var win);
        var y = ctx.Output(0, DType.Int32, shape);
        int m = shape[1], mg = m / _group, outSize = y.Length / Math.Max(1, shape[0] * m);
        var ym = y.Memory;
        _core.Compute(ctx, x, zx, w, win, (img, g, p0, count, sums) =>
        {
            var ys = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, int>(ym.Span);
            int* s = (int*)sums;
            for (int j = 0; j < mg; j++)
            {
                int oc = g * mg + j;
                var dst = ys.Slice((img * m + oc) * outSize + p0, count);
                for (int p = 0; p < count; p++) dst[p] = s[p * mg + j];
            }
        });
    }
}

/// <summary>QLinearConv: y = saturate(round((Σ (x − zx)(w − zw[oc]) + bias[oc]) · x_scale·w_scale[oc] / y_scale) + y_zero_point).</summary>
internal sealed unsafe class QLinearConvKernel(KernelBuildContext build) : IKernel
{
    private readonly IntegerConvCore _core = new(build, 3, 5);
    private readonly int _group = checked((int)build.Node.GetInt("group", 1));
    private readonly bool _relu = build.Node.GetInt("relu", 0) != 0;
    private readonly bool _dequantize = build.Node.GetInt("dequantize", 0) != 0;
    private readonly bool _floatEpilogue = build.Node.GetInt("float_epilogue", 0) != 0;
    private readonly ConvEpilogueCache _epilogues = new(build.Node);

    public void Execute(KernelContext ctx)
    {
        if (_dequantize || _floatEpilogue)
        {
            ExecuteFloat(ctx);
            return;
        }
        var x = ctx.Required(0);
        var w = ctx.Required(3);
        float sx = QuantValues.ScalarScale(ctx.Required(1), "x_scale");
        int zx = QuantValues.ScalarZeroPoint(ctx.Required(2), "x_zero_point");
        float sy = QuantValues.ScalarScale(ctx.Required(6), "y_scale");
        var yzp = ctx.Required(7);
        int zy = QuantValues.ScalarZeroPoint(yzp, "y_zero_point");
        var shape = _core.OutputShape(x, w, out var win);
        int m = shape[1], mg = m / _group;
        var sw = QuantValues.ScaleVector(ctx.Required(4), m, "w_scale");
        var bias = ctx.Input(8) is { } bb ? bb.DType == DType.Int32 && bb.Length == m ? bb.Span<int>().ToArray()
            : throw new InvalidOperationException($"QLinearConv bias must be int32[{m}], got {bb}") : new int[m];
        var multipliers = new float[m];
        for (int j = 0; j < m; j++) multipliers[j] = sx * sw[j] / sy;
        var (min, max) = QuantValues.Range(yzp.DType);
        if (_relu) min = Math.Max(min, zy); // Relu before quantization: nothing below the real value 0
        // The optimizer's fused lookup (input 9): an element-wise function of the requantized value, per channel or shared.
        var table = ctx.Input(9);
        int tableChannels = table is null ? 0 : ChannelLookupKernel.Channels(shape, table, "QLinearConv");
        if (table is not null && table.DType != yzp.DType) throw new InvalidOperationException($"QLinearConv: lookup table is {table.DType.Name()} but y is {yzp.DType.Name()}");
        var y = ctx.Output(0, yzp.DType, shape);
        int outSize = y.Length / Math.Max(1, shape[0] * m);
        var ym = y.Memory;
        var tm = table?.Memory ?? default;
        fixed (int* pbias = bias)
        fixed (float* pmul = multipliers)
        fixed (byte* pt = tm.Span)
        {
            var q = new Int8Pointwise.Requant { Bias = pbias, Multipliers = pmul, Zy = zy, Min = min, Max = max, Lookup = pt, LookupRows = tableChannels };
            if (_group == 1 && (_core.TryPointwise(ctx, x, zx, w, win, q, y) || _core.TryRowIm2Col(ctx, x, zx, w, win, q, y))) return;
            if (_group > 1 && _core.TryDepthwise(ctx, x, zx, w, win, q, y)) return;
        }
        _core.Compute(ctx, x, zx, w, win, (img, g, p0, count, sums) =>
        {
            fixed (byte* py = ym.Span)
            fixed (int* pbias = bias)
            fixed (float* pmul = multipliers)
            fixed (byte* pt = tm.Span)
            {
                byte* dst = py + ((nint)img * m + g * mg) * outSize + p0;
                Requantize.Tile((int*)sums, count, mg, pbias + g * mg, pmul + g * mg, zy, min, max, dst, outSize);
                if (tableChannels > 0)
                    for (int j = 0; j < mg; j++)
                        ByteLookup.Apply(dst + (nint)j * outSize, dst + (nint)j * outSize, count, pt + (tableChannels == 1 ? 0 : (g * mg + j) * 256));
            }
        });
    }

    /// <summary>
    /// The optimizer's float-epilogue forms. Attribute <c>dequantize</c> = 1 (from DequantizeLinear(x) →
    /// Conv(DequantizeLinear(w)) whose result stays float): y = fma(Σ (x − zx)(w − zw[oc]), x_scale·w_scale[oc], bias[oc])
    /// with input 8 an optional float32 bias; inputs 6 and 7 (y_scale, y_zero_point) are unused. Attribute
    /// <c>float_epilogue</c> = 1 (from DequantizeLinear → Conv → [BatchNormalization] → element-wise chain →
    /// QuantizeLinear): the same float value, then the chain, then quantization with inputs 6 and 7, written as bytes.
    /// Either may carry the chain as a <c>body</c> graph (with <c>rank</c> and <c>opset</c>, as FusedElementwise),
    /// applied to each output channel's row right after the convolution wrote it.
    /// </summary>
    private void ExecuteFloat(KernelContext ctx)
    {
        var x = ctx.Required(0);
        var w = ctx.Required(3);
        float sx = QuantValues.ScalarScale(ctx.Required(1), "x_scale");
        int zx = QuantValues.ScalarZeroPoint(ctx.Required(2), "x_zero_point");
        var shape = _core.OutputShape(x, w, out var win);
        int m = shape[1], mg = m / _group;
        var sw = QuantValues.ScaleVector(ctx.Required(4), m, "w_scale");
        var bias = ctx.Input(8) is { } bb ? bb.DType == DType.Float32 && bb.Length == m ? bb.Span<float>().ToArray()
            : throw new InvalidOperationException($"QLinearConv (float epilogue) bias must be float32[{m}], got {bb}") : new float[m];
        var scales = new float[m];
        for (int j = 0; j < m; j++) scales[j] = sx * sw[j];
        ConvFloatEpilogue? epi;
        TensorBuffer y;
        if (_floatEpilogue)
        {
            float sy = QuantValues.ScalarScale(ctx.Required(6), "y_scale");
            var yzp = ctx.Required(7);
            int zy = QuantValues.ScalarZeroPoint(yzp, "y_zero_point");
            var (min, max) = QuantValues.Range(yzp.DType);
            epi = _epilogues.Quantizing(sy, zy, min, max);
            y = ctx.Output(0, yzp.DType, shape);
        }
        else
        {
            epi = _epilogues.FloatOutput();
            y = ctx.Output(0, DType.Float32, shape);
        }
        if (epi?.CheckChannels(m) is { } bad) throw new InvalidOperationException($"node {ctx.Node.Label}: {bad}");
        int outSize = y.Length / Math.Max(1, shape[0] * m);
        bool quantize = epi is { Quantize: true };
        var zeros = new int[m];
        fixed (int* pz = zeros)
        fixed (float* ps = scales)
        fixed (float* pb = bias)
        fixed (byte* py0 = y.Memory.Span)
        {
            nint py = (nint)py0;
            // Rows [c0, c1) × positions [p0, p0 + count) are final floats at src: chain and quantize them now
            // (byte output), or run the chain in place (float output, src inside y).
            IntegerConvCore.FloatRows? done = epi is null ? null : (img, c0, c1, p0, count, src, stride) =>
            {
                for (int c = c0; c < c1; c++)
                    epi.Row(src + (c - c0) * stride, count, c, (byte*)py + ((nint)img * m + c) * outSize + p0);
            };
            var q = new Int8Pointwise.Requant { Bias = pz, Multipliers = ps, OutScales = ps, OutBias = pb };
            if (_group == 1 && (_core.TryPointwise(ctx, x, zx, w, win, q, y, done, quantize) || _core.TryRowIm2Col(ctx, x, zx, w, win, q, y, done, quantize))) return;
            // Depthwise with byte output: each channel's sums go from the worker's scratch straight into the epilogue.
            IntegerConvCore.FloatRows? fromSums = !quantize ? null : (img, c0, c1, p0, count, src, stride) =>
                epi!.RowFromSums(src, count, c0, scales[c0], bias[c0], (byte*)py + ((nint)img * m + c0) * outSize + p0);
            if (_group > 1 && _core.TryDepthwise(ctx, x, zx, w, win, q, y, quantize ? null : done, fromSums)) return;
        }
        // Everything else: the generic integer convolution into floats, then the epilogue per block.
        byte[]? rented = quantize ? System.Buffers.ArrayPool<byte>.Shared.Rent(checked(y.Length * sizeof(float))) : null;
        try
        {
            var yf = rented is null ? y : new TensorBuffer(DType.Float32, shape, rented);
            var yfm = yf.Memory;
            var ym = y.Memory;
            _core.Compute(ctx, x, zx, w, win, (img, g, p0, count, sums) =>
            {
                var ys = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(yfm.Span);
                int* s = (int*)sums;
                for (int j = 0; j < mg; j++)
                {
                    int oc = g * mg + j;
                    var dst = ys.Slice((img * m + oc) * outSize + p0, count);
                    for (int p = 0; p < count; p++) dst[p] = MathF.FusedMultiplyAdd(s[p * mg + j], scales[oc], bias[oc]);
                }
                if (epi is null) return;
                fixed (byte* pf = yfm.Span)
                fixed (byte* pq = ym.Span)
                {
                    for (int j = 0; j < mg; j++)
                    {
                        nint at = ((nint)img * m + g * mg + j) * outSize + p0;
                        epi.Row((float*)pf + at, count, g * mg + j, pq + at);
                    }
                }
            });
        }
        finally
        {
            if (rented is not null) System.Buffers.ArrayPool<byte>.Shared.Return(rented);
        }
    }
}
