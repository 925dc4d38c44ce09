using OnDevice.Core;
using OnDevice.Runtime.Kernels.LinearAlgebra;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Kernels.Nn;

/// <summary>Conv (1-D, 2-D, 3-D; groups, strides, dilations, pads, auto_pad, bias) on float32, and com.microsoft FusedConv
/// (the same plus an activation in the epilogue).</summary>
internal static class ConvKernels
{
    public static void Register(KernelRegistry r)
    {
        r.Add("Conv", 1, TypeSets.Float, ctx => new ConvKernel(ctx, default), supports: ConvKernel.Supports);
        r.Add("FusedConv", 1, TypeSets.Float, ctx => new ConvKernel(ctx, FusedActivations.Parse(ctx.Node)), domain: "com.microsoft",
            supports: ctx => ConvKernel.Supports(ctx) ?? FusedActivations.Check(ctx.Node) ?? (ctx.HasInput(3) ? "FusedConv with a summand input Z is not supported" : null));
        // Conv followed by a chain of element-wise ops (the optimizer's fusion): the chain runs on each block of output
        // while it is still in cache.
        r.Add("FusedConv", 1, TypeSets.Float, ctx => new ConvKernel(ctx, default, Epilogue(ctx, out _)), domain: Elementwise.FusedElementwiseKernels.Domain,
            supports: ctx => ConvKernel.Supports(ctx) ?? (Epilogue(ctx, out var why) is null ? why : null));
        // Weight-only int4 Conv with its weights kept packed (Optimizer.FuseBlockQuantConv), optionally with a fused chain.
        r.Add(Optimizer.FuseBlockQuantConv.OpType, 1, TypeSets.Float,
            ctx => new ConvKernel(ctx, default, ctx.Node.Attributes.ContainsKey("body") ? Epilogue(ctx, out _) : null), domain: Elementwise.FusedElementwiseKernels.Domain,
            supports: ctx => ConvKernel.SupportsBlockQuant(ctx) ?? (ctx.Node.Attributes.ContainsKey("body") && Epilogue(ctx, out var why) is null ? why : null));
    }

    private static Elementwise.ElementwiseProgram? Epilogue(KernelBuildContext ctx, out string why)
    {
        var body = ctx.Node.Attr("body")?.AsGraph();
        int rank = (int)ctx.Node.GetInt("rank", -1);
        if (body is null || rank < 0) { why = "FusedConv needs a body graph and the output rank"; return null; }
        return Elementwise.ElementwiseProgram.Compile(body, rank, ctx.Node.GetInt("opset", 17), out why);
    }
}

/// <summary>
/// Convolution with four strategies: depthwise (group = C, one input channel per group; 1-D/2-D) runs
/// <see cref="DepthwiseConv"/> per channel; pointwise (1×…×1, stride 1, no padding) multiplies W[M/g, C/g] by the
/// input as it lies; other stride-1 1-D/2-D convolutions pad blocks of input rows once and pack GEMM panels from them
/// with plain copies (<see cref="ImplicitConv"/>, <see cref="PackedIndirectB"/>), blocks in parallel; everything else
/// packs im2col blocks (<see cref="Im2ColB"/>) straight into the GEMM. Constant
/// weights are packed per group when the session is built; bias and activation are fused into the GEMM epilogue.
/// <c>com.ondevice.BlockQuantConv</c> runs the same strategies on 4-bit weights kept packed as
/// <see cref="NBitsWeights"/> columns (input 1; scales and zero points inputs 3 and 4; a column per output channel, or
/// per kernel tap and output channel, see <c>Optimizer.FuseBlockQuantConv</c>): each run dequantizes a group's weights
/// straight into the GEMM's A panels (or the depthwise taps) in scratch (<see cref="NBitsPanels"/>), so no float copy
/// of the weights stays resident.
/// </summary>
internal sealed unsafe class ConvKernel : IKernel
{
    private readonly WindowGeometry _geometry;
    private readonly int _group;
    private readonly FusedActivation _activation;
    private readonly Elementwise.ElementwiseProgram? _epilogue; // applied to output rows after bias and activation
    private readonly int[]? _wShape;
    private readonly float[][]? _packedW; // per group, GEMM A panels
    private readonly int _quantBlock; // BlockQuantConv: block size of the packed 4-bit weights (0: float weights)
    private readonly int _quantColumnTaps; // BlockQuantConv: 1 (a column per output channel over cg·taps) or taps (a column per tap and output channel over cg)

    public static string? Supports(KernelBuildContext ctx)
    {
        var g = WindowGeometry.Read(ctx.Node);
        int? spatial = ctx.InputShape(1) is { } ws ? ws.Rank - 2 : ctx.InputShape(0) is { } xs ? xs.Rank - 2 : null;
        if (spatial is int r && (r < 1 || r > 3)) return $"Conv over {r} spatial dimensions is not supported (1 to 3 are)";
        if (ctx.Node.GetInt("group", 1) < 1) return "group must be positive";
        return g.Check(spatial);
    }

    /// <summary>Why a BlockQuantConv node cannot run here, or null.</summary>
    public static string? SupportsBlockQuant(KernelBuildContext ctx)
    {
        var n = ctx.Node;
        if (n.GetInts("weight_shape") is not { Length: >= 3 and <= 5 } ws || ws.Any(d => d < 1)) return "BlockQuantConv needs a weight_shape of rank 3 to 5";
        if (n.GetInt("bits", 0) != 4) return "BlockQuantConv supports bits = 4";
        long bs = n.GetInt("block_size", 0);
        if (bs < 16 || bs > 1024 || (bs & (bs - 1)) != 0) return $"BlockQuantConv block_size must be a power of two in 16..1024, got {bs}";
        if (!ctx.HasInput(1) || !ctx.HasInput(3) || !ctx.HasInput(4)) return "BlockQuantConv needs packed weights, scales and zero points (inputs 1, 3, 4)";
        if (ctx.InputType(1) is { } t && t != DType.UInt8) return $"BlockQuantConv packed weights must be uint8, got {t.Name()}";
        var g = WindowGeometry.Read(n);
        if (n.GetInt("group", 1) < 1) return "group must be positive";
        return g.Check(ws.Length - 2);
    }

    public ConvKernel(KernelBuildContext ctx, FusedActivation activation, Elementwise.ElementwiseProgram? epilogue = null)
    {
        _geometry = WindowGeometry.Read(ctx.Node);
        _group = checked((int)ctx.Node.GetInt("group", 1));
        _activation = activation;
        _epilogue = epilogue;
        if (ctx.Node.OpType == Optimizer.FuseBlockQuantConv.OpType)
        {
            _wShape = ctx.Node.GetInts("weight_shape")!.Select(d => checked((int)d)).ToArray();
            _quantBlock = checked((int)ctx.Node.GetInt("block_size", 0));
            _quantColumnTaps = checked((int)ctx.Node.GetInt("column_taps", 1));
        }
        else if (PackedWeights.FloatConstant(ctx, 1) is { } w && w.Dims.Length >= 3 && w.Dims[0] % _group == 0)
        {
            _wShape = PackedWeights.Dims(w);
            int mg = _wShape[0] / _group, kg = _wShape[1..].Aggregate(1, (p, d) => p * d);
            var values = w.AsSpan<float>();
            bool depthwise = _wShape[1] == 1 && _group > 1 && _wShape.Length <= 4;
            if (!depthwise)
            {
                _packedW = new float[_group][];
                for (int g = 0; g < _group; g++)
                    _packedW[g] = PackedWeights.PackA(values.Slice(g * mg * kg, mg * kg), mg, kg, false, 1f);
            }
        }
    }

    public void Execute(KernelContext ctx)
    {
        var x = ctx.Required(0);
        var w = ctx.Required(1);
        var b = ctx.Input(2);
        bool quant = _quantBlock > 0;
        int[] wShape = quant ? _wShape! : w.Shape;
        int r = x.Rank - 2;
        if (r < 1 || r > 3 || wShape.Length != x.Rank) throw new InvalidOperationException($"Conv: input {x} and weight {TensorBuffer.Format(wShape)} ranks do not fit 1-3 spatial dimensions");
        int n = x.Shape[0], c = x.Shape[1], m = wShape[0], cg = wShape[1];
        if (cg * _group != c || m % _group != 0)
            throw new InvalidOperationException($"Conv: input {TensorBuffer.Format(x.Shape)} and weight {TensorBuffer.Format(wShape)} do not match group {_group}");
        var kernel = wShape[2..];
        if (_geometry.KernelShape is { } ks && !ks.AsSpan().SequenceEqual(kernel))
            throw new InvalidOperationException($"Conv: kernel_shape [{string.Join(",", ks)}] differs from the weight {TensorBuffer.Format(wShape)}");
        TensorBuffer? qScales = null, qZeros = null;
        int taps = kernel.Aggregate(1, (p, d) => p * d);
        int colTaps = quant ? _quantColumnTaps : 1, colK = cg * taps / colTaps;
        if (quant)
        {
            if (colTaps != 1 && colTaps != taps) throw new InvalidOperationException($"BlockQuantConv: column_taps {colTaps} must be 1 or the kernel's {taps} taps");
            int blocks = (colK + _quantBlock - 1) / _quantBlock;
            long columns = (long)colTaps * m;
            qScales = ctx.Required(3);
            qZeros = ctx.Required(4);
            if (w.DType != DType.UInt8 || w.Length != columns * blocks * (_quantBlock / 2))
                throw new InvalidOperationException($"BlockQuantConv: packed weights {w} must be uint8 with column_taps·M·blocks·bs/2 = {columns * blocks * (_quantBlock / 2)} bytes");
            if (qScales.DType != DType.Float32 || qScales.Length != columns * blocks || qZeros.DType != DType.Float32 || qZeros.Length != columns * blocks)
                throw new InvalidOperationException($"BlockQuantConv: scales {qScales} and zero points {qZeros} must be float32 with column_taps·M·blocks = {columns * blocks} values");
        }
        if (b is not null && b.Length != m) throw new InvalidOperationException($"Conv: bias has {b.Length} values for {m} output channels");
        var win = _geometry.Resolve(x.Shape.AsSpan(2), kernel);
        var y = ctx.Output(0, DType.Float32, [n, m, .. win.Output]);
        if (y.Length == 0) return;
        if (_epilogue?.CheckChannels(m) is { } bad) throw new InvalidOperationException($"node {ctx.Node.Label}: {bad}");
        var w3 = win.To3D();
        int[] in3 = [.. Enumerable.Repeat(1, 3 - r), .. x.Shape[2..]];
        int inSize = in3[0] * in3[1] * in3[2], outSize = w3.Output[0] * w3.Output[1] * w3.Output[2];
        int kSize = kernel.Aggregate(1, (p, d) => p * d);
        int mg = m / _group, kg = cg * kSize;

        fixed (float* px = x.Span<float>())
        fixed (float* pw = quant ? default : w.Span<float>())
        fixed (byte* pq = quant ? w.Span<byte>() : default)
        fixed (float* pqs = quant ? qScales!.Span<float>() : default)
        fixed (float* pqz = quant ? qZeros!.Span<float>() : default)
        fixed (float* pb = b is null ? default : b.Span<float>())
        fixed (float* py = y.Span<float>())
        {
            float* bias = b is null ? null : pb;
            // BlockQuantConv: column t·M + o of the packed weights is output channel o's tap t over the cg input channels
            // (column_taps = taps), or column o is output channel o over all cg·taps in the weight's order (column_taps = 1).
            var qw = quant ? new NBitsWeights(pq, pqs, pqz, colK, colTaps * m, 4, _quantBlock) : default;
            if ((!quant || colTaps == 1) && cg == 1 && _group == c && _group > 1 && r <= 2)
            {
                Depthwise(ctx, px, pw, quant ? &qw : null, bias, py, n, c, m, in3, w3);
                return;
            }
            if ((long)outSize * kg <= SmallOutputColumnFloats && outSize <= SmallOutputPositions)
            {
                SmallOutput(ctx, px, pw, quant ? &qw : null, bias, py, n, c, m, cg, mg, kg, inSize, outSize, in3, w3);
                return;
            }
            bool stride1 = w3.Strides.All(s => s == 1);
            bool pointwise = kSize == 1 && stride1 && w3.PadBegin.All(p => p == 0) && w3.PadEnd.All(p => p == 0);
            bool implicitGemm = !pointwise && stride1 && r <= 2;
            var layout = new ImplicitConv.Layout(cg, in3[1], in3[2], w3.Kernel[1], w3.Kernel[2], w3.Dilations[1], w3.Dilations[2],
                w3.PadBegin[1], w3.PadBegin[2], w3.Output[1], w3.Output[2]);
            bool prepacked = _packedW is not null && w.Shape.AsSpan().SequenceEqual(_wShape);
            NBitsWeights* pqw = quant ? &qw : null;
            int threads = ctx.Threads;
            long packA = prepacked ? 0 : PackedWeights.Lines(Gemm.PackedASize(mg, kg)) * _group;
            int blockChunk = PackedWeights.ChunkFor((long)mg * kg * layout.BlockColumns);
            int blockWorkers = implicitGemm ? PackedWeights.Workers(ctx, layout.Blocks, blockChunk) : 1;
            long perBlockWorker = PackedWeights.Lines(layout.PaddedFloats) + PackedWeights.Lines((long)mg * layout.BlockColumns)
                + PackedWeights.Lines(Gemm.ScratchFloats(kg, layout.BlockColumns, 1));
            long bFloats = implicitGemm
                ? perBlockWorker * blockWorkers + PackedWeights.Lines(kg)
                : pointwise ? PackedWeights.Lines(Gemm.RowMajorScratchFloats(kg, outSize, threads))
                : PackedWeights.Lines(Gemm.ScratchFloats(kg, outSize, threads));
            var scratch = ctx.Scratch(PackedWeights.ScratchBytes(packA + bFloats));
            fixed (byte* ps = scratch.Span)
            {
                float* packedW = PackedWeights.Align(ps);
                float* bScratch = packedW + packA;
                if (implicitGemm)
                {
                    int* offsets = (int*)bScratch;
                    float* work = bScratch + PackedWeights.Lines(kg);
                    ImplicitConv.Offsets(layout, offsets);
                    long groupStride = PackedWeights.Lines(Gemm.PackedASize(mg, kg));
                    if (!prepacked)
                        for (int g = 0; g < _group; g++)
                            PackGroup(pw, pqw, g, m, mg, kg, colTaps, packedW + g * groupStride);
                    var epi = new GemmEpilogue(bias is null ? GemmBias.None : GemmBias.PerRow, _activation);
                    nint nOffsets = (nint)offsets, nWork = (nint)work, nx = (nint)px, ny = (nint)py, nBias = (nint)bias, nPacked = (nint)packedW;
                    for (int img = 0; img < n; img++)
                        for (int g = 0; g < _group; g++)
                        {
                            float* pa = prepacked ? PackedWeights.Address(_packedW![g]) : packedW + g * groupStride;
                            nint na = (nint)pa;
                            nint xg = nx + (((nint)img * c + (nint)g * cg) * inSize) * sizeof(float);
                            nint yg = ny + (((nint)img * m + (nint)g * mg) * outSize) * sizeof(float);
                            nint bg = nBias == 0 ? 0 : nBias + g * mg * sizeof(float);
                            PackedWeights.ForWorkers(ctx, layout.Blocks, blockChunk, (worker, b0, b1) =>
                            {
                                float* padded = (float*)nWork + worker * perBlockWorker;
                                float* virtualY = padded + PackedWeights.Lines(layout.PaddedFloats);
                                float* panels = virtualY + PackedWeights.Lines((long)mg * layout.BlockColumns);
                                for (int blk = b0; blk < b1; blk++)
                                {
                                    ImplicitConv.PadBlock((float*)xg, layout, blk, padded);
                                    int nv = ImplicitConv.RowsOf(layout, blk) * layout.Wp;
                                    Gemm.Multiply(new PackedIndirectB(padded, (int*)nOffsets), (float*)na, mg, nv, kg, virtualY, nv, false, epi, (float*)bg, 1, panels);
                                    ImplicitConv.CompactBlock(virtualY, mg, layout, blk, (float*)yg);
                                    if (_epilogue is not null)
                                    {
                                        int rowStart = blk * layout.BlockRows * w3.Output[2], rowLen = ImplicitConv.RowsOf(layout, blk) * w3.Output[2];
                                        for (int ch = 0; ch < mg; ch++)
                                            ApplyEpilogue((float*)yg + (nint)ch * outSize + rowStart, rowLen, g * mg + ch);
                                    }
                                }
                            });
                        }
                    return;
                }
                long groupA = PackedWeights.Lines(Gemm.PackedASize(mg, kg));
                if (!prepacked)
                    for (int g = 0; g < _group; g++)
                        PackGroup(pw, pqw, g, m, mg, kg, colTaps, packedW + g * groupA);
                var ep = new GemmEpilogue(bias is null ? GemmBias.None : GemmBias.PerRow, _activation);
                for (int img = 0; img < n; img++)
                    for (int g = 0; g < _group; g++)
                    {
                        float* xg = px + ((nint)img * c + (nint)g * cg) * inSize;
                        float* yg = py + ((nint)img * m + (nint)g * mg) * outSize;
                        float* bg = bias is null ? null : bias + g * mg;
                        if (prepacked)
                        {
                            fixed (float* a = _packedW![g])
                                Multiply(pointwise, xg, a, yg, bg, ep, mg, kg, outSize, inSize, cg, in3, w3, threads, bScratch);
                        }
                        else
                            Multiply(pointwise, xg, packedW + g * groupA, yg, bg, ep, mg, kg, outSize, inSize, cg, in3, w3, threads, bScratch);
                        if (_epilogue is not null) ApplyEpilogueRows(ctx, yg, mg, outSize, g * mg);
                    }
            }
        }
    }

    // Few output positions (a 1-D signal of a handful of frames, a 1×1 map): GEMM panels would be mostly padding, so
    // gather each position's receptive field once and take dot products with the weight rows as they lie.
    private const int SmallOutputPositions = 8;
    private const long SmallOutputColumnFloats = 1 << 16;

    private void SmallOutput(KernelContext ctx, float* px, float* pw, NBitsWeights* qw, float* bias, float* py, int n, int c, int m, int cg, int mg, int kg,
        int inSize, int outSize, int[] in3, Window w3)
    {
        long colFloats = PackedWeights.Lines((long)outSize * kg);
        var scratch = ctx.Scratch(PackedWeights.ScratchBytes(colFloats + (qw is null ? 0 : PackedWeights.Lines((long)m * kg))));
        fixed (byte* ps = scratch.Span)
        {
            float* cols = PackedWeights.Align(ps);
            if (qw is not null)
            {
                // Packed 4-bit weights: dequantized row-major [M, kg] into scratch for this run.
                pw = cols + colFloats;
                int colTaps = qw->N / m, colK = qw->K;
                for (int t = 0; t < colTaps; t++)
                    NBitsPanels.Dequantize(NBitsPanels.Best, *qw, 0, colK, t * m, m, 1, pw + t, colTaps, kg);
            }
            int k0n = w3.Kernel[0], k1n = w3.Kernel[1], k2n = w3.Kernel[2];
            for (int img = 0; img < n; img++)
                for (int g = 0; g < _group; g++)
                {
                    float* xg = px + ((nint)img * c + (nint)g * cg) * inSize;
                    // cols[pos, (ch, k0, k1, k2)] in the weight's own order.
                    int pos = 0;
                    for (int o0 = 0; o0 < w3.Output[0]; o0++)
                        for (int o1 = 0; o1 < w3.Output[1]; o1++)
                            for (int o2 = 0; o2 < w3.Output[2]; o2++, pos++)
                            {
                                float* col = cols + (nint)pos * kg;
                                int q = 0;
                                for (int ch = 0; ch < cg; ch++)
                                    for (int a = 0; a < k0n; a++)
                                    {
                                        int i0 = o0 * w3.Strides[0] - w3.PadBegin[0] + a * w3.Dilations[0];
                                        for (int b2 = 0; b2 < k1n; b2++)
                                        {
                                            int i1 = o1 * w3.Strides[1] - w3.PadBegin[1] + b2 * w3.Dilations[1];
                                            for (int d = 0; d < k2n; d++, q++)
                                            {
                                                int i2 = o2 * w3.Strides[2] - w3.PadBegin[2] + d * w3.Dilations[2];
                                                col[q] = (uint)i0 < (uint)in3[0] && (uint)i1 < (uint)in3[1] && (uint)i2 < (uint)in3[2]
                                                    ? xg[(nint)ch * inSize + ((nint)i0 * in3[1] + i1) * in3[2] + i2] : 0f;
                                            }
                                        }
                                    }
                            }
                    float* yg = py + ((nint)img * m + (nint)g * mg) * outSize;
                    DotRows.Multiply(pw + (nint)g * mg * kg, mg, kg, kg, cols, outSize, kg, yg, outSize, false);
                    for (int row = 0; row < mg; row++)
                    {
                        var values = new Span<float>(yg + (nint)row * outSize, outSize);
                        if (bias is not null) { float bv = bias[g * mg + row]; foreach (ref float v in values) v += bv; }
                        _activation.Apply(values);
                        if (_epilogue is not null) ApplyEpilogue(yg + (nint)row * outSize, outSize, g * mg + row);
                    }
                }
        }
    }

    /// <summary>Runs the fused element-wise chain in place over <paramref name="length"/> outputs of channel <paramref name="channel"/>.</summary>
    [System.Runtime.CompilerServices.SkipLocalsInit]
    private void ApplyEpilogue(float* row, int length, int channel)
    {
        Span<float> scratch = stackalloc float[Elementwise.ElementwiseProgram.MaxSlots * Elementwise.ElementwiseProgram.BlockElements];
        var span = new Span<float>(row, length);
        _epilogue!.Run(span, span, channel, -1, scratch);
    }

    /// <summary>The epilogue over whole output rows of one group, rows spread over threads.</summary>
    private void ApplyEpilogueRows(KernelContext ctx, float* yg, int rows, int outSize, int firstChannel)
    {
        nint ny = (nint)yg;
        ctx.ParallelFor(rows, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++) ApplyEpilogue((float*)ny + (nint)r * outSize, outSize, firstChannel + r);
        }, Math.Max(1, 65536 / Math.Max(1, outSize)));
    }

    /// <summary>
    /// Group <paramref name="g"/>'s weights [mg, kg] as GEMM A panels (<see cref="Gemm.PackA"/> layout): from float weights,
    /// or dequantized from the packed 4-bit columns, tap by tap when there is a column per tap (reduction index
    /// c·taps + t), panels MR rows wide.
    /// </summary>
    private static void PackGroup(float* pw, NBitsWeights* qw, int g, int m, int mg, int kg, int taps, float* dst)
    {
        if (qw is null)
        {
            Gemm.PackA(pw + (nint)g * mg * kg, mg, kg, kg, 1, 1f, dst);
            return;
        }
        int mr = Gemm.MR, cg = kg / taps;
        for (int t = 0; t < taps; t++)
            NBitsPanels.Dequantize(NBitsPanels.Best, *qw, 0, cg, t * m + g * mg, mg, mr, dst + (nint)t * mr, (nint)taps * mr, (nint)kg * mr);
    }

    private static void Multiply(bool pointwise, float* xg, float* packedA, float* yg, float* bias, GemmEpilogue ep,
        int mg, int kg, int outSize, int inSize, int cg, int[] in3, Window w3, int threads, float* scratch)
    {
        if (pointwise)
            Gemm.MultiplyRowMajorB(xg, inSize, packedA, mg, outSize, kg, yg, outSize, false, ep, bias, threads, scratch);
        else
            Gemm.Multiply(new Im2ColB(xg, cg, in3, w3.Kernel, w3.Strides, w3.PadBegin, w3.Dilations, w3.Output),
                packedA, mg, outSize, kg, yg, outSize, false, ep, bias, threads, scratch);
    }

    private void Depthwise(KernelContext ctx, float* px, float* pw, NBitsWeights* qw, float* bias, float* py, int n, int c, int m, int[] in3, Window w3)
    {
        var shape = new DepthwiseConv.Shape(in3[1], in3[2], w3.Kernel[1], w3.Kernel[2], w3.Strides[1], w3.Strides[2],
            w3.PadBegin[1], w3.PadBegin[2], w3.Dilations[1], w3.Dilations[2], w3.Output[1], w3.Output[2]);
        int planes = n * m, mult = m / c, taps = shape.KH * shape.KW;
        int inSize = in3[1] * in3[2], outSize = shape.OH * shape.OW;
        long per = PackedWeights.Lines(shape.PlaneFloats);
        int chunk = PackedWeights.ChunkFor((long)outSize * taps);
        int workers = PackedWeights.Workers(ctx, planes, chunk);
        long dequantized = qw is null ? 0 : PackedWeights.Lines((long)m * taps);
        var scratch = ctx.Scratch(PackedWeights.ScratchBytes(per * workers + dequantized));
        var act = _activation;
        fixed (byte* ps = scratch.Span)
        {
            if (qw is not null)
            {
                // Packed 4-bit taps (one column per channel): all channels' taps as floats in scratch for this run.
                pw = PackedWeights.Align(ps) + per * workers;
                NBitsPanels.Dequantize(NBitsPanels.Best, *qw, 0, taps, 0, m, 1, pw, 1, taps);
            }
            nint nx = (nint)px, nw = (nint)pw, nb = (nint)bias, ny = (nint)py, ns = (nint)PackedWeights.Align(ps);
            PackedWeights.ForWorkers(ctx, planes, chunk, (worker, begin, end) =>
            {
                float* work = (float*)ns + worker * per;
                for (int p = begin; p < end; p++)
                {
                    int img = p / m, oc = p % m, ic = oc / mult;
                    DepthwiseConv.Channel(shape, (float*)nx + ((nint)img * c + ic) * inSize, (float*)nw + (nint)oc * taps,
                        nb == 0 ? 0f : ((float*)nb)[oc], act, (float*)ny + (nint)p * outSize, work);
                    if (_epilogue is not null) ApplyEpilogue((float*)ny + (nint)p * outSize, outSize, oc);
                }
            });
        }
    }
}
