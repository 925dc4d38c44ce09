using OnDevice.Core;
using OnDevice.Runtime.Kernels.LinearAlgebra;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Kernels.Quantization;

/// <summary>
/// com.microsoft MatMulNBits: Y = A·dequant(B)ᵀ (+ bias) with B block-quantized along K (bits 4 or 8, block_size a
/// power of two ≥ 16), packed (N, ceil(K/bs), bs·bits/8) low nibble first; scales (N, blocks); optional zero points
/// packed uint8 (N, ceil(blocks·bits/8)) or float (N, blocks), default 2^(bits−1). The packed weights are used as
/// they are: few rows of A run <see cref="Int4Gemv"/> (unpacking in registers; accuracy_level 4 quantizes A to int8
/// per block and uses integer dot products), more rows run the float GEMM with B dequantized block by block into its
/// panel scratch (<see cref="NBitsGemmB"/>).
/// </summary>
internal sealed unsafe class MatMulNBitsKernel : IKernel
{
    /// <summary>Up to this many rows of A take the GEMV path.</summary>
    internal static int GemvRows = 4;

    private readonly int _k, _n, _bits, _bs, _blocks, _accuracy;
    private readonly float[]? _scales, _zeroPoints; // cached when constant

    public static void Register(KernelRegistry r) =>
        r.Add("MatMulNBits", 1, TypeSets.Float, ctx => new MatMulNBitsKernel(ctx), domain: "com.microsoft", supports: Supports);

    public static string? Supports(KernelBuildContext ctx)
    {
        var n = ctx.Node;
        long k = n.GetInt("K", -1), cols = n.GetInt("N", -1), bits = n.GetInt("bits", 4), bs = n.GetInt("block_size", -1);
        if (k < 1 || cols < 1) return "MatMulNBits needs positive K and N attributes";
        if (bits is not (4 or 8)) return $"MatMulNBits with bits={bits} is not supported (4 and 8 are)";
        if (bs < 16 || (bs & (bs - 1)) != 0) return $"block_size must be a power of two >= 16, got {bs}";
        if (ctx.HasInput(4)) return "MatMulNBits with g_idx (act-order) is not supported";
        if (ctx.InputType(1) is { } bt && bt != DType.UInt8) return $"B must be uint8, got {bt.Name()}";
        return null;
    }

    public MatMulNBitsKernel(KernelBuildContext ctx)
    {
        var node = ctx.Node;
        _k = checked((int)node.GetInt("K", 0));
        _n = checked((int)node.GetInt("N", 0));
        _bits = (int)node.GetInt("bits", 4);
        _bs = (int)node.GetInt("block_size", 0);
        _accuracy = (int)node.GetInt("accuracy_level", 0);
        _blocks = (_k + _bs - 1) / _bs;
        if (ctx.Constant(2) is { } s && (!ctx.HasInput(3) || ctx.Constant(3) is not null))
        {
            _scales = Scales(TensorBuffer.Wrap(s));
            _zeroPoints = ZeroPoints(ctx.Constant(3) is { } z ? TensorBuffer.Wrap(z) : null);
        }
    }

    /// <summary>Bytes this kernel keeps besides the model's own tensors (scales and zero points as floats).</summary>
    public long ExtraBytes => (_scales?.Length ?? 0) * 4L + (_zeroPoints?.Length ?? 0) * 4L;

    private float[] Scales(TensorBuffer s)
    {
        if (s.Length != _n * _blocks) throw new InvalidOperationException($"MatMulNBits: scales have {s.Length} values; expected N·blocks = {_n}·{_blocks}");
        return QuantValues.Floats(s);
    }

    private float[] ZeroPoints(TensorBuffer? z)
    {
        var r = new float[_n * _blocks];
        if (z is null)
        {
            Array.Fill(r, 1 << (_bits - 1));
            return r;
        }
        if (z.DType == DType.UInt8)
        {
            int perRow = (_blocks * _bits + 7) / 8;
            if (z.Length != _n * perRow) throw new InvalidOperationException($"MatMulNBits: packed zero points have {z.Length} bytes; expected N·ceil(blocks·bits/8) = {_n}·{perRow}");
            var bytes = z.Span<byte>();
            for (int j = 0; j < _n; j++)
                for (int b = 0; b < _blocks; b++)
                    r[j * _blocks + b] = _bits == 8 ? bytes[j * perRow + b] : (bytes[j * perRow + b / 2] >> ((b & 1) * 4)) & 0xF;
            return r;
        }
        if (z.Length != _n * _blocks) throw new InvalidOperationException($"MatMulNBits: float zero points have {z.Length} values; expected N·blocks = {_n}·{_blocks}");
        return QuantValues.Floats(z);
    }

    public void Execute(KernelContext ctx)
    {
        var a = ctx.Required(0);
        var b = ctx.Required(1);
        if (a.DType != DType.Float32) throw new InvalidOperationException($"MatMulNBits: A must be float32, got {a.DType.Name()}");
        if (a.Rank < 1 || a.Shape[^1] != _k) throw new InvalidOperationException($"MatMulNBits: A {a} does not end in K = {_k}");
        int blockBytes = _bs * _bits / 8;
        if (b.DType != DType.UInt8 || b.Length != _n * _blocks * blockBytes)
            throw new InvalidOperationException($"MatMulNBits: B {b} must be uint8 with N·blocks·bs·bits/8 = {_n * _blocks * blockBytes} bytes");
        var scales = _scales ?? Scales(ctx.Required(2));
        var zps = _zeroPoints ?? ZeroPoints(ctx.Input(3));
        var bias = ctx.Input(5) is { } bb ? QuantValues.ScaleVector(bb, _n, "bias") : null;
        int m = a.Length / _k;
        var y = ctx.Output(0, DType.Float32, [.. a.Shape[..^1], _n]);
        if (m == 0) return;

        fixed (byte* pb = b.Span<byte>())
        fixed (float* ps = scales)
        fixed (float* pz = zps)
        fixed (float* pa = a.Span<float>())
        fixed (float* py = y.Span<float>())
        fixed (float* pbias = bias)
        {
            var w = new NBitsWeights(pb, ps, pz, _k, _n, _bits, _bs);
            if (m <= GemvRows) Gemv(ctx, w, pa, m, py);
            else
            {
                long packA = PackedWeights.Lines(Gemm.PackedASize(m, _k));
                long bScratch = PackedWeights.Lines(Gemm.ScratchFloats(_k, _n, ctx.Threads));
                var scratch = ctx.Scratch(PackedWeights.ScratchBytes(packA + bScratch));
                fixed (byte* sp = scratch.Span)
                {
                    float* packedA = PackedWeights.Align(sp);
                    Gemm.PackA(pa, m, _k, _k, 1, 1f, packedA);
                    var ep = new GemmEpilogue(bias is null ? GemmBias.None : GemmBias.PerColumn, default);
                    Gemm.Multiply(new NBitsGemmB(w), packedA, m, _n, _k, py, _n, false, ep, pbias, ctx.Threads, packedA + packA);
                }
                return;
            }
            if (bias is not null)
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < _n; j++) py[i * _n + j] += bias[j];
        }
    }

    private void Gemv(KernelContext ctx, NBitsWeights w, float* a, int m, float* y)
    {
        int padded = _blocks * _bs;
        bool int8 = _accuracy == 4;
        // Per row: A padded to whole blocks (floats), block sums; or int8 blocks, their scales and sums.
        long floats = PackedWeights.Lines((long)m * padded) + PackedWeights.Lines((long)m * _blocks) * 3;
        var scratch = ctx.Scratch(PackedWeights.ScratchBytes(floats));
        fixed (byte* sp = scratch.Span)
        {
            float* ap = PackedWeights.Align(sp);
            float* sums = ap + PackedWeights.Lines((long)m * padded);
            float* aScales = sums + PackedWeights.Lines((long)m * _blocks);
            int* aSums = (int*)(aScales + PackedWeights.Lines((long)m * _blocks));
            for (int r = 0; r < m; r++)
            {
                float* dst = ap + (nint)r * padded;
                new ReadOnlySpan<float>(a + (nint)r * _k, _k).CopyTo(new Span<float>(dst, _k));
                new Span<float>(dst + _k, padded - _k).Clear();
                for (int blk = 0; blk < _blocks; blk++)
                {
                    float s = 0;
                    for (int i = 0; i < _bs; i++) s += dst[blk * _bs + i];
                    sums[r * _blocks + blk] = s;
                }
                if (int8) Int4Gemv.QuantizeBlocks(dst, _blocks, _bs, (sbyte*)dst, aScales + r * _blocks, aSums + r * _blocks); // in place: bytes trail the floats read
            }
            nint pap = (nint)ap, psums = (nint)sums, pasc = (nint)aScales, pasu = (nint)aSums, py = (nint)y;
            var path = int8 ? Int4Gemv.BestInt8 : Int4Gemv.BestFloat;
            int minCols = PackedWeights.ChunkFor((long)m * _k);
            PackedWeights.ForWorkers(ctx, _n, minCols, (_, j0, j1) =>
            {
                if (int8) Int4Gemv.MultiplyInt8(path, (sbyte*)pap, m, padded * 4, (float*)pasc, (int*)pasu, w, j0, j1, (float*)py, _n);
                else Int4Gemv.MultiplyFloat(path, (float*)pap, m, padded, (float*)psums, w, j0, j1, (float*)py, _n);
            });
        }
    }
}
