using OnDevice.Core;
using OnDevice.Runtime.Kernels.LinearAlgebra;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Kernels.Nn;

/// <summary>ConvTranspose (1-D, 2-D, 3-D; groups, strides, dilations, pads, output_padding, output_shape, auto_pad, bias) on float32.</summary>
internal static class ConvTransposeKernels
{
    public static void Register(KernelRegistry r)
    {
        r.Add("ConvTranspose", 1, TypeSets.Float, ctx => new ConvTransposeKernel(ctx), supports: ConvTransposeKernel.Supports);
    }
}

/// <summary>
/// Per image and group: col[(m, k), i] = Σ_c W[c, m, k]·X[c, i] (one GEMM with Wᵀ packed, prepacked when W is constant),
/// then col2im adds every column into the output at o = i·stride − padBegin + k·dilation, on top of the bias. Input
/// positions are processed in blocks so the column buffer stays bounded.
/// </summary>
internal sealed unsafe class ConvTransposeKernel : IKernel
{
    private readonly WindowGeometry _geometry;
    private readonly int _group;
    private readonly int[]? _outputPadding;
    private readonly int[]? _outputShape;
    private readonly int[]? _wShape;
    private readonly float[][]? _packedWt; // per group, Wᵀ as GEMM A panels

    /// <summary>Largest column block, in floats.</summary>
    private const int ColumnBlockFloats = 1 << 20;

    public static string? Supports(KernelBuildContext ctx)
    {
        var g = WindowGeometry.Read(ctx.Node);
        int? spatial = ctx.InputShape(1) is { } ws ? ws.Rank - 2 : ctx.InputShape(0) is { } xs ? xs.Rank - 2 : null;
        if (spatial is int r && (r < 1 || r > 3)) return $"ConvTranspose over {r} spatial dimensions is not supported (1 to 3 are)";
        if (ctx.Node.GetInt("group", 1) < 1) return "group must be positive";
        if (ctx.Node.GetInts("output_padding")?.Any(v => v < 0) == true) return "negative output_padding";
        return g.Check(spatial);
    }

    public ConvTransposeKernel(KernelBuildContext ctx)
    {
        _geometry = WindowGeometry.Read(ctx.Node);
        _group = checked((int)ctx.Node.GetInt("group", 1));
        _outputPadding = ctx.Node.GetInts("output_padding")?.Select(v => checked((int)v)).ToArray();
        _outputShape = ctx.Node.GetInts("output_shape")?.Select(v => checked((int)v)).ToArray();
        if (PackedWeights.FloatConstant(ctx, 1) is { } w && w.Dims.Length >= 3 && w.Dims[0] % _group == 0)
        {
            _wShape = PackedWeights.Dims(w);
            int cg = _wShape[0] / _group, rows = _wShape[1..].Aggregate(1, (p, d) => p * d);
            var values = w.AsSpan<float>();
            _packedWt = new float[_group][];
            for (int g = 0; g < _group; g++)
                _packedWt[g] = PackedWeights.PackA(values.Slice(g * cg * rows, cg * rows), rows, cg, true, 1f);
        }
    }

    /// <summary>Output sizes and leading pads for input sizes <paramref name="input"/> and window <paramref name="kernel"/>.</summary>
    private (int[] Output, int[] PadBegin) Resolve(int[] input, int[] kernel)
    {
        int r = input.Length;
        var output = new int[r];
        var padBegin = new int[r];
        int[]? explicitShape = _outputShape is { } os ? (os.Length == r + 2 ? os[2..] : os) : null;
        if (explicitShape is not null && explicitShape.Length != r)
            throw new InvalidOperationException($"ConvTranspose: output_shape has {explicitShape.Length} values for {r} spatial dimensions");
        for (int i = 0; i < r; i++)
        {
            int s = _geometry.Strides?[i] ?? 1, d = _geometry.Dilations?[i] ?? 1, op = _outputPadding?[i] ?? 0;
            int eff = (kernel[i] - 1) * d + 1;
            int full = s * (input[i] - 1) + op + eff;
            string autoPad = _geometry.AutoPad;
            if (explicitShape is not null || autoPad is "SAME_UPPER" or "SAME_LOWER")
            {
                int o = explicitShape?[i] ?? input[i] * s;
                // A requested size beyond the natural one pads at the end (as ONNX Runtime does): no negative padding.
                int total = Math.Max(0, full - o);
                padBegin[i] = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2;
                output[i] = o;
            }
            else if (autoPad == "VALID")
            {
                padBegin[i] = 0;
                output[i] = full;
            }
            else
            {
                int pb = _geometry.Pads?[i] ?? 0, pe = _geometry.Pads?[i + r] ?? 0;
                padBegin[i] = pb;
                output[i] = full - pb - pe;
            }
            if (output[i] < 0) throw new InvalidOperationException($"ConvTranspose: negative output size along spatial axis {i}");
        }
        return (output, padBegin);
    }

    public void Execute(KernelContext ctx)
    {
        var x = ctx.Required(0);
        var w = ctx.Required(1);
        var b = ctx.Input(2);
        int r = x.Rank - 2;
        if (r < 1 || r > 3 || w.Rank != x.Rank) throw new InvalidOperationException($"ConvTranspose: input {x} and weight {w} ranks do not fit 1-3 spatial dimensions");
        int n = x.Shape[0], c = x.Shape[1];
        if (w.Shape[0] != c || c % _group != 0)
            throw new InvalidOperationException($"ConvTranspose: input {TensorBuffer.Format(x.Shape)} and weight {TensorBuffer.Format(w.Shape)} do not match group {_group}");
        int cg = c / _group, mg = w.Shape[1], m = mg * _group;
        var kernel = w.Shape[2..];
        if (_geometry.KernelShape is { } ks && !ks.AsSpan().SequenceEqual(kernel))
            throw new InvalidOperationException($"ConvTranspose: kernel_shape [{string.Join(",", ks)}] differs from the weight {TensorBuffer.Format(w.Shape)}");
        if (b is not null && b.Length != m) throw new InvalidOperationException($"ConvTranspose: bias has {b.Length} values for {m} output channels");
        var (outDims, padBegin) = Resolve(x.Shape[2..], kernel);
        var y = ctx.Output(0, DType.Float32, [n, m, .. outDims]);
        if (y.Length == 0) return;

        int lead = 3 - r;
        int[] in3 = [.. Enumerable.Repeat(1, lead), .. x.Shape[2..]];
        int[] out3 = [.. Enumerable.Repeat(1, lead), .. outDims];
        int[] k3 = [.. Enumerable.Repeat(1, lead), .. kernel];
        int[] s3 = [.. Enumerable.Repeat(1, lead), .. Enumerable.Range(0, r).Select(i => _geometry.Strides?[i] ?? 1)];
        int[] d3 = [.. Enumerable.Repeat(1, lead), .. Enumerable.Range(0, r).Select(i => _geometry.Dilations?[i] ?? 1)];
        int[] p3 = [.. Enumerable.Repeat(0, lead), .. padBegin];
        int inSize = in3[0] * in3[1] * in3[2], outSize = out3[0] * out3[1] * out3[2];
        int kSize = k3[0] * k3[1] * k3[2], rows = mg * kSize;
        bool prepacked = _packedWt is not null && w.Shape.AsSpan().SequenceEqual(_wShape);

        // Input positions per block (a whole number of input rows when possible, at least one GEMM panel).
        int block = Math.Max(Gemm.NR, Math.Min(inSize, ColumnBlockFloats / Math.Max(1, rows)));
        block = Math.Min(inSize, Gemm.RoundUp(block, Gemm.NR));
        long groupA = PackedWeights.Lines(Gemm.PackedASize(rows, cg));
        long packA = prepacked ? 0 : groupA * _group;
        long colFloats = PackedWeights.Lines((long)rows * block);
        int threads = ctx.Threads;
        long gemmScratch = PackedWeights.Lines(Gemm.RowMajorScratchFloats(cg, block, threads));
        var scratch = ctx.Scratch(PackedWeights.ScratchBytes(packA + colFloats + gemmScratch));

        fixed (float* px = x.Span<float>())
        fixed (float* pw = w.Span<float>())
        fixed (float* pb = b is null ? default : b.Span<float>())
        fixed (float* py = y.Span<float>())
        fixed (byte* ps = scratch.Span)
        {
            float* packed = PackedWeights.Align(ps);
            float* col = packed + packA;
            float* gs = col + colFloats;
            if (!prepacked)
                for (int g = 0; g < _group; g++)
                    Gemm.PackA(pw + (nint)g * cg * rows, rows, cg, 1, rows, 1f, packed + g * groupA);
            // Bias first; col2im accumulates on top.
            for (int img = 0; img < n; img++)
                for (int oc = 0; oc < m; oc++)
                    new Span<float>(py + ((nint)img * m + oc) * outSize, outSize).Fill(b is null ? 0f : pb[oc]);
            var geo = new Col2Im(in3, out3, k3, s3, d3, p3);
            nint ny = (nint)py, ncol = (nint)col;
            for (int img = 0; img < n; img++)
                for (int g = 0; g < _group; g++)
                {
                    float* xg = px + ((nint)img * c + (nint)g * cg) * inSize;
                    nint yg = ny + ((nint)img * m + (nint)g * mg) * outSize * sizeof(float);
                    for (int i0 = 0; i0 < inSize; i0 += block)
                    {
                        int nb = Math.Min(block, inSize - i0);
                        fixed (float* a = prepacked ? _packedWt![g] : default)
                        {
                            float* pa = prepacked ? a : packed + g * groupA;
                            Gemm.MultiplyRowMajorB(xg + i0, inSize, pa, rows, nb, cg, col, nb, false, GemmEpilogue.None, null, threads, gs);
                        }
                        int start = i0;
                        PackedWeights.ForWorkers(ctx, mg, PackedWeights.ChunkFor((long)kSize * nb), (worker, m0, m1) =>
                        {
                            for (int om = m0; om < m1; om++)
                                geo.Add((float*)ncol + (nint)om * kSize * nb, nb, start, (float*)yg + (nint)om * outSize);
                        });
                    }
                }
        }
    }

    /// <summary>Adds column blocks back into an output channel (3 spatial dimensions; 1-D/2-D use leading sizes of 1).</summary>
    private sealed class Col2Im(int[] input, int[] output, int[] kernel, int[] strides, int[] dilations, int[] padBegin)
    {
        /// <summary>y[o(i, k)] += col[k, i − i0] for window offsets k and input positions i in [i0, i0 + count).</summary>
        public void Add(float* col, int count, int i0, float* y)
        {
            int kd = kernel[0], kh = kernel[1], kw = kernel[2];
            int ih = input[1], iw = input[2];
            int od = output[0], oh = output[1], ow = output[2];
            int k = 0;
            for (int kz = 0; kz < kd; kz++)
                for (int ky = 0; ky < kh; ky++)
                    for (int kx = 0; kx < kw; kx++, k++)
                    {
                        float* src = col + (nint)k * count;
                        int zOff = kz * dilations[0] - padBegin[0], yOff = ky * dilations[1] - padBegin[1], xOff = kx * dilations[2] - padBegin[2];
                        int i = i0, end = i0 + count;
                        int iz = i / (ih * iw), iy = i / iw % ih, ix = i % iw;
                        while (i < end)
                        {
                            int len = Math.Min(iw - ix, end - i);
                            int oz = iz * strides[0] + zOff, oy = iy * strides[1] + yOff;
                            if ((uint)oz < (uint)od && (uint)oy < (uint)oh)
                            {
                                float* row = y + ((nint)oz * oh + oy) * ow;
                                float* s = src + (i - i0);
                                int sx = strides[2], ox0 = ix * sx + xOff;
                                // t with 0 <= ox0 + t·sx < ow.
                                int t0 = ox0 >= 0 ? 0 : (-ox0 + sx - 1) / sx;
                                int t1 = ow - ox0 <= 0 ? 0 : Math.Min(len, (ow - ox0 + sx - 1) / sx);
                                float* o = row + ox0;
                                if (sx == 1)
                                    for (int t = t0; t < t1; t++) o[t] += s[t];
                                else
                                    for (int t = t0; t < t1; t++) o[(nint)t * sx] += s[t];
                            }
                            i += len;
                            ix += len;
                            if (ix == iw)
                            {
                                ix = 0;
                                if (++iy == ih)
                                {
                                    iy = 0;
                                    iz++;
                                }
                            }
                        }
                    }
        }
    }
}
