using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace OnDevice.Runtime.Simd;

/// <summary>Instruction paths of the block-quantized (MatMulNBits) kernels.</summary>
public enum NBitsPath
{
    /// <summary>Portable scalar loops (the reference twin).</summary>
    Scalar,
    /// <summary>AVX2 + FMA: nibbles unpacked in registers, widened to float, fused multiply-add (float activations); for
    /// int8 activations, bytes widened to int16 and <c>vpmaddwd</c>.</summary>
    Avx2,
    /// <summary>AVX-VNNI (int8 activations only): unpacked nibbles as unsigned bytes, <c>vpdpbusd</c> against int8 activations.</summary>
    AvxVnni,
}

/// <summary>
/// Block-quantized weights as ONNX Runtime's <c>MatMulNBits</c> stores them: B[n] is ceil(K/bs) blocks of bs values,
/// each block bs·bits/8 bytes (4-bit: two per byte, low nibble first), with one float scale and zero point per
/// (column, block). Dequantized weight = (q − zp)·scale. The weights stay packed: kernels unpack a block at a time in
/// registers (<see cref="Int4Gemv"/>) or into a cache-sized GEMM panel (<see cref="NBitsGemmB"/>).
/// </summary>
public readonly unsafe struct NBitsWeights(byte* data, float* scales, float* zeroPoints, int k, int n, int bits, int blockSize)
{
    /// <summary>Packed bytes [N, blocks, blockBytes].</summary>
    public byte* Data { get; } = data;
    /// <summary>Scales [N, blocks].</summary>
    public float* Scales { get; } = scales;
    /// <summary>Zero points [N, blocks] as floats.</summary>
    public float* ZeroPoints { get; } = zeroPoints;
    /// <summary>Reduction length.</summary>
    public int K { get; } = k;
    /// <summary>Output columns.</summary>
    public int N { get; } = n;
    /// <summary>Bits per weight (4 or 8).</summary>
    public int Bits { get; } = bits;
    /// <summary>Values per block.</summary>
    public int BlockSize { get; } = blockSize;
    /// <summary>Blocks per column.</summary>
    public int Blocks => (K + BlockSize - 1) / BlockSize;
    /// <summary>Bytes per block.</summary>
    public int BlockBytes => BlockSize * Bits / 8;

    /// <summary>Quantized value of column <paramref name="j"/> at row <paramref name="kk"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Q(int j, int kk)
    {
        int blk = kk / BlockSize, o = kk % BlockSize;
        byte* p = Data + ((nint)j * Blocks + blk) * BlockBytes;
        return Bits == 8 ? p[o] : (p[o >> 1] >> ((o & 1) * 4)) & 0xF;
    }
}

/// <summary>
/// MatMulNBits products for few rows of A (decode: GEMV-like): for every column and block the packed weights are
/// unpacked in registers and dotted with A, never expanded in memory. Float activations (accuracy levels 0–3) use
/// Σ a·(q − zp)·s = s·(Σ a·q − zp·Σ a) per block; int8 activations (accuracy level 4) quantize each block of A
/// symmetrically (<see cref="QuantizeBlocks"/>) and use integer dot products: s·sa·(Σ q·a8 − zp·Σ a8).
/// </summary>
public static unsafe class Int4Gemv
{
    /// <summary>The fastest float-activation path here.</summary>
    public static NBitsPath BestFloat => Avx2.IsSupported && Fma.IsSupported ? NBitsPath.Avx2 : NBitsPath.Scalar;

    /// <summary>The fastest int8-activation path here.</summary>
    public static NBitsPath BestInt8 => AvxVnni.IsSupported ? NBitsPath.AvxVnni : Avx2.IsSupported ? NBitsPath.Avx2 : NBitsPath.Scalar;

    /// <summary>True when <paramref name="path"/> can run here.</summary>
    public static bool IsSupported(NBitsPath path) => path switch
    {
        NBitsPath.Scalar => true,
        NBitsPath.Avx2 => Avx2.IsSupported && Fma.IsSupported,
        NBitsPath.AvxVnni => AvxVnni.IsSupported,
        _ => false,
    };

    /// <summary>
    /// y[r, j] = Σ_k a[r, k]·w[k, j] for rows r &lt; <paramref name="rows"/> and columns [j0, j1). A rows are
    /// <paramref name="lda"/> floats apart and zero-padded to blocks·bs; <paramref name="blockSums"/>[r, blk] = Σ a over the block.
    /// </summary>
    public static void MultiplyFloat(NBitsPath path, float* a, int rows, int lda, float* blockSums, NBitsWeights w, int j0, int j1, float* y, int ldy)
    {
        if (path == NBitsPath.AvxVnni) throw new ArgumentException("AVX-VNNI applies to int8 activations only", nameof(path));
        if (!IsSupported(path)) throw new NotSupportedException($"MatMulNBits path {path} is not supported on this machine");
        int blocks = w.Blocks, bs = w.BlockSize, bb = w.BlockBytes;
        for (int j = j0; j < j1; j++)
        {
            byte* col = w.Data + (nint)j * blocks * bb;
            float* sc = w.Scales + (nint)j * blocks;
            float* zp = w.ZeroPoints + (nint)j * blocks;
            for (int r = 0; r < rows; r++)
            {
                float* ar = a + (nint)r * lda;
                float* bsum = blockSums + (nint)r * blocks;
                float total = path == NBitsPath.Avx2 ? DotFloatAvx2(ar, col, sc, zp, bsum, blocks, bs, w.Bits) : DotFloatScalar(ar, col, sc, zp, bsum, blocks, bs, w.Bits);
                y[(nint)r * ldy + j] = total;
            }
        }
    }

    private static float DotFloatScalar(float* a, byte* col, float* sc, float* zp, float* bsum, int blocks, int bs, int bits)
    {
        float total = 0;
        int bb = bs * bits / 8;
        for (int blk = 0; blk < blocks; blk++)
        {
            byte* p = col + (nint)blk * bb;
            float* ab = a + (nint)blk * bs;
            float s = 0;
            if (bits == 4)
                for (int i = 0; i < bb; i++)
                {
                    s += ab[2 * i] * (p[i] & 0xF);
                    s += ab[2 * i + 1] * (p[i] >> 4);
                }
            else
                for (int i = 0; i < bs; i++) s += ab[i] * p[i];
            total += sc[blk] * (s - zp[blk] * bsum[blk]);
        }
        return total;
    }

    /// <summary>Sixteen 4-bit values from 8 bytes, in order (low nibble first), as 16 bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<byte> Unpack16(byte* p)
    {
        var raw = Vector128.CreateScalar(*(ulong*)p).AsByte();
        var mask = Vector128.Create((byte)0x0F);
        var lo = raw & mask;
        var hi = Vector128.ShiftRightLogical(raw.AsUInt16(), 4).AsByte() & mask;
        return Sse2.UnpackLow(lo, hi);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float DotFloatAvx2(float* a, byte* col, float* sc, float* zp, float* bsum, int blocks, int bs, int bits)
    {
        var total = Vector256<float>.Zero;
        float zpTerm = 0;
        int bb = bs * bits / 8;
        for (int blk = 0; blk < blocks; blk++)
        {
            byte* p = col + (nint)blk * bb;
            float* ab = a + (nint)blk * bs;
            Vector256<float> acc0 = Vector256<float>.Zero, acc1 = Vector256<float>.Zero;
            for (int i = 0; i < bs; i += 16)
            {
                Vector128<byte> q = bits == 4 ? Unpack16(p + i / 2) : Vector128.Load(p + i);
                var w0 = Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(q));
                var w1 = Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Sse2.ShiftRightLogical128BitLane(q, 8)));
                acc0 = Fma.MultiplyAdd(Vector256.Load(ab + i), w0, acc0);
                acc1 = Fma.MultiplyAdd(Vector256.Load(ab + i + 8), w1, acc1);
            }
            total = Fma.MultiplyAdd(acc0 + acc1, Vector256.Create(sc[blk]), total);
            zpTerm += sc[blk] * zp[blk] * bsum[blk];
        }
        return Vector256.Sum(total) - zpTerm;
    }

    /// <summary>
    /// Quantizes each block of <paramref name="bs"/> floats of a row to int8 symmetrically: a8 = round(a / sa) with
    /// sa = max|a| / 127; writes a8, sa per block and Σ a8 per block.
    /// </summary>
    public static void QuantizeBlocks(float* a, int blocks, int bs, sbyte* a8, float* scales, int* sums)
    {
        for (int blk = 0; blk < blocks; blk++)
        {
            float* ab = a + (nint)blk * bs;
            float amax = 0;
            for (int i = 0; i < bs; i++) amax = Math.Max(amax, Math.Abs(ab[i]));
            float s = amax / 127f;
            float inv = s == 0 ? 0 : 1f / s;
            int sum = 0;
            for (int i = 0; i < bs; i++)
            {
                int v = (int)MathF.Round(ab[i] * inv);
                v = Math.Clamp(v, -127, 127);
                a8[(nint)blk * bs + i] = (sbyte)v;
                sum += v;
            }
            scales[blk] = s;
            sums[blk] = sum;
        }
    }

    /// <summary>
    /// y[r, j] = Σ_blk s[j, blk]·sa[r, blk]·(Σ q·a8 − zp[j, blk]·Σ a8) for int8 rows from <see cref="QuantizeBlocks"/>
    /// (each row blocks·bs bytes, <paramref name="lda"/> apart; per-row block scales and sums blocks apart).
    /// </summary>
    public static void MultiplyInt8(NBitsPath path, sbyte* a8, int rows, int lda, float* aScales, int* aSums, NBitsWeights w, int j0, int j1, float* y, int ldy)
    {
        if (!IsSupported(path)) throw new NotSupportedException($"MatMulNBits path {path} is not supported on this machine");
        int blocks = w.Blocks, bs = w.BlockSize, bb = w.BlockBytes;
        for (int j = j0; j < j1; j++)
        {
            byte* col = w.Data + (nint)j * blocks * bb;
            float* sc = w.Scales + (nint)j * blocks;
            float* zp = w.ZeroPoints + (nint)j * blocks;
            for (int r = 0; r < rows; r++)
            {
                sbyte* ar = a8 + (nint)r * lda;
                float* asc = aScales + (nint)r * blocks;
                int* asum = aSums + (nint)r * blocks;
                y[(nint)r * ldy + j] = path switch
                {
                    NBitsPath.AvxVnni => DotInt8Vnni(ar, col, sc, zp, asc, asum, blocks, bs, w.Bits),
                    NBitsPath.Avx2 => DotInt8Avx2(ar, col, sc, zp, asc, asum, blocks, bs, w.Bits),
                    _ => DotInt8Scalar(ar, col, sc, zp, asc, asum, blocks, bs, w.Bits),
                };
            }
        }
    }

    private static float DotInt8Scalar(sbyte* a, byte* col, float* sc, float* zp, float* asc, int* asum, int blocks, int bs, int bits)
    {
        float total = 0;
        int bb = bs * bits / 8;
        for (int blk = 0; blk < blocks; blk++)
        {
            byte* p = col + (nint)blk * bb;
            sbyte* ab = a + (nint)blk * bs;
            int s = 0;
            if (bits == 4)
                for (int i = 0; i < bb; i++) s += ab[2 * i] * (p[i] & 0xF) + ab[2 * i + 1] * (p[i] >> 4);
            else
                for (int i = 0; i < bs; i++) s += ab[i] * p[i];
            total += sc[blk] * asc[blk] * (s - zp[blk] * asum[blk]);
        }
        return total;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float DotInt8Vnni(sbyte* a, byte* col, float* sc, float* zp, float* asc, int* asum, int blocks, int bs, int bits)
    {
        var total = Vector256<float>.Zero;
        float zpTerm = 0;
        int bb = bs * bits / 8;
        for (int blk = 0; blk < blocks; blk++)
        {
            byte* p = col + (nint)blk * bb;
            sbyte* ab = a + (nint)blk * bs;
            var acc = Vector256<int>.Zero;
            int i = 0;
            for (; i + 32 <= bs; i += 32)
            {
                Vector256<byte> q = bits == 4
                    ? Vector256.Create(Unpack16(p + i / 2), Unpack16(p + i / 2 + 8))
                    : Vector256.Load(p + i);
                acc = AvxVnni.MultiplyWideningAndAdd(acc, q, Vector256.Load(ab + i));
            }
            if (i < bs) // bs = 16
            {
                Vector128<byte> q = bits == 4 ? Unpack16(p + i / 2) : Vector128.Load(p + i);
                acc = AvxVnni.MultiplyWideningAndAdd(acc, Vector256.Create(q, Vector128<byte>.Zero), Vector256.Create(Vector128.Load(ab + i), Vector128<sbyte>.Zero));
            }
            float f = sc[blk] * asc[blk];
            total = Fma.MultiplyAdd(Avx.ConvertToVector256Single(acc), Vector256.Create(f), total);
            zpTerm += f * zp[blk] * asum[blk];
        }
        return Vector256.Sum(total) - zpTerm;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float DotInt8Avx2(sbyte* a, byte* col, float* sc, float* zp, float* asc, int* asum, int blocks, int bs, int bits)
    {
        var total = Vector256<float>.Zero;
        float zpTerm = 0;
        int bb = bs * bits / 8;
        for (int blk = 0; blk < blocks; blk++)
        {
            byte* p = col + (nint)blk * bb;
            sbyte* ab = a + (nint)blk * bs;
            var acc = Vector256<int>.Zero;
            for (int i = 0; i < bs; i += 16)
            {
                Vector128<byte> q = bits == 4 ? Unpack16(p + i / 2) : Vector128.Load(p + i);
                var q16 = Avx2.ConvertToVector256Int16(q);
                var a16 = Avx2.ConvertToVector256Int16(Vector128.Load(ab + i));
                acc += Avx2.MultiplyAddAdjacent(q16, a16);
            }
            float f = sc[blk] * asc[blk];
            total = Fma.MultiplyAdd(Avx.ConvertToVector256Single(acc), Vector256.Create(f), total);
            zpTerm += f * zp[blk] * asum[blk];
        }
        return Vector256.Sum(total) - zpTerm;
    }
}

/// <summary>
/// MatMulNBits weights as the float GEMM's B operand for many rows of A (prefill): each requested block of
/// K×N is dequantized straight into GEMM panels in the GEMM's scratch (cache-sized), so the float weights never exist
/// as a whole.
/// </summary>
public readonly unsafe struct NBitsGemmB(NBitsWeights w) : IGemmB
{
    /// <inheritdoc/>
    public float* Block(int k0, int kc, int j0, int nc, float* scratch, out nint panelStride)
    {
        int nr = Gemm.NR;
        panelStride = (nint)kc * nr;
        NBitsPanels.Dequantize(NBitsPanels.Best, w, k0, kc, j0, nc, nr, scratch, nr, panelStride);
        return scratch;
    }

    /// <inheritdoc/>
    public bool UsesScratch => true;

    /// <inheritdoc/>
    public int* Offsets => null;
}

/// <summary>
/// Dequantizes block-quantized columns (<see cref="NBitsWeights"/>) into float GEMM panels: the one routine behind
/// <see cref="NBitsGemmB"/> (B panels of <see cref="Gemm.NR"/> columns) and the block-quantized convolution's A panels
/// (<see cref="Gemm.MR"/> rows, the reduction index interleaved with the kernel taps). Packed values are unpacked in
/// registers sixteen at a time; the float weights never exist beyond the panels being filled.
/// </summary>
public static unsafe class NBitsPanels
{
    /// <summary>The fastest path here (AVX2 or the scalar twin).</summary>
    public static NBitsPath Best => Avx2.IsSupported ? NBitsPath.Avx2 : NBitsPath.Scalar;

    /// <summary>
    /// For columns [j0, j0+nc) of <paramref name="w"/> in panels of <paramref name="width"/> and rows [k0, k0+kc):
    /// dst[(jr / width)·panelStride + kk·kStride + jr % width] = (q[j0+jr, k0+kk] − zp)·scale. Columns past
    /// <paramref name="nc"/> or past N in the last panel are written as zeros.
    /// </summary>
    public static void Dequantize(NBitsPath path, NBitsWeights w, int k0, int kc, int j0, int nc, int width, float* dst, nint kStride, nint panelStride)
    {
        if (path == NBitsPath.AvxVnni || !Int4Gemv.IsSupported(path)) throw new NotSupportedException($"NBits panel path {path} is not supported here");
        bool vector = path == NBitsPath.Avx2;
        for (int jr = 0; jr < nc; jr += width)
        {
            float* panel = dst + jr / width * panelStride;
            for (int c = 0; c < width;)
            {
                int j = j0 + jr + c;
                if (vector && c + 4 <= width && jr + c + 4 <= nc && j + 4 <= w.N)
                {
                    // Four adjacent panel columns at once: sixteen values of each unpacked in registers, transposed
                    // 4×8 in registers, stored four floats per reduction row (instead of one float at a time).
                    Quad(w, k0, kc, j, panel + c, kStride);
                    c += 4;
                    continue;
                }
                float* d = panel + c;
                if (j >= w.N || jr + c >= nc)
                    for (int kk = 0; kk < kc; kk++) d[(nint)kk * kStride] = 0;
                else
                    Column(vector, w, k0, kc, j, d, kStride);
                c++;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Column(bool vector, NBitsWeights w, int k0, int kc, int j, float* d, nint kStride)
    {
        int bs = w.BlockSize, bb = w.BlockBytes, blocks = w.Blocks;
        float* tmp = stackalloc float[16];
        byte* col = w.Data + (nint)j * blocks * bb;
        int kk2 = 0;
        while (kk2 < kc)
        {
            int k = k0 + kk2, blk = k / bs, o = k % bs;
            int run = Math.Min(bs - o, kc - kk2);
            float s = w.Scales[(nint)j * blocks + blk], z = w.ZeroPoints[(nint)j * blocks + blk];
            byte* p = col + (nint)blk * bb;
            if (vector)
            {
                // Sixteen values at a time unpacked in registers, dequantized, then dealt into the panel column.
                var vs = Vector256.Create(s);
                var vz = Vector256.Create(z);
                while (run >= 16 && (w.Bits == 8 || (o & 1) == 0))
                {
                    Vector128<byte> q = w.Bits == 4 ? Int4Gemv.Unpack16(p + o / 2) : Vector128.Load(p + o);
                    ((Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(q)) - vz) * vs).Store(tmp);
                    ((Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Sse2.ShiftRightLogical128BitLane(q, 8))) - vz) * vs).Store(tmp + 8);
                    float* dk = d + (nint)kk2 * kStride;
                    for (int t = 0; t < 16; t++) dk[t * kStride] = tmp[t];
                    kk2 += 16;
                    o += 16;
                    run -= 16;
                }
            }
            if (w.Bits == 4)
                for (int t = 0; t < run; t++, o++) d[(nint)(kk2 + t) * kStride] = (((p[o >> 1] >> ((o & 1) * 4)) & 0xF) - z) * s;
            else
                for (int t = 0; t < run; t++, o++) d[(nint)(kk2 + t) * kStride] = (p[o] - z) * s;
            kk2 += run;
        }
    }

    /// <summary>Columns j..j+3 into d[kk·kStride + 0..3] (AVX2).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Quad(NBitsWeights w, int k0, int kc, int j, float* d, nint kStride)
    {
        int bs = w.BlockSize, bb = w.BlockBytes, blocks = w.Blocks;
        nint colBytes = (nint)blocks * bb;
        byte* col = w.Data + (nint)j * colBytes;
        float* sc = w.Scales + (nint)j * blocks, zp = w.ZeroPoints + (nint)j * blocks;
        int kk2 = 0;
        while (kk2 < kc)
        {
            int k = k0 + kk2, blk = k / bs, o = k % bs;
            int run = Math.Min(bs - o, kc - kk2);
            byte* p = col + (nint)blk * bb;
            if (run >= 16 && (w.Bits == 8 || (o & 1) == 0))
            {
                Vector256<float> s0 = Vector256.Create(sc[blk]), s1 = Vector256.Create(sc[blocks + blk]),
                    s2 = Vector256.Create(sc[2 * blocks + blk]), s3 = Vector256.Create(sc[3 * blocks + blk]);
                Vector256<float> z0 = Vector256.Create(zp[blk]), z1 = Vector256.Create(zp[blocks + blk]),
                    z2 = Vector256.Create(zp[2 * blocks + blk]), z3 = Vector256.Create(zp[3 * blocks + blk]);
                while (run >= 16)
                {
                    int at = w.Bits == 4 ? o / 2 : o;
                    Vector128<byte> q0 = Load16(w.Bits, p + at), q1 = Load16(w.Bits, p + colBytes + at),
                        q2 = Load16(w.Bits, p + 2 * colBytes + at), q3 = Load16(w.Bits, p + 3 * colBytes + at);
                    float* dk = d + (nint)kk2 * kStride;
                    Transpose4x8Store((Low8(q0) - z0) * s0, (Low8(q1) - z1) * s1, (Low8(q2) - z2) * s2, (Low8(q3) - z3) * s3, dk, kStride);
                    Transpose4x8Store((High8(q0) - z0) * s0, (High8(q1) - z1) * s1, (High8(q2) - z2) * s2, (High8(q3) - z3) * s3, dk + 8 * kStride, kStride);
                    kk2 += 16;
                    o += 16;
                    run -= 16;
                }
            }
            for (int r = 0; r < 4; r++)
            {
                byte* pr = p + r * colBytes;
                float s = sc[r * blocks + blk], z = zp[r * blocks + blk];
                float* dr = d + r + (nint)kk2 * kStride;
                if (w.Bits == 4)
                    for (int t = 0, oo = o; t < run; t++, oo++) dr[t * kStride] = (((pr[oo >> 1] >> ((oo & 1) * 4)) & 0xF) - z) * s;
                else
                    for (int t = 0; t < run; t++) dr[t * kStride] = (pr[o + t] - z) * s;
            }
            kk2 += run;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<byte> Load16(int bits, byte* p) => bits == 4 ? Int4Gemv.Unpack16(p) : Vector128.Load(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Low8(Vector128<byte> q) => Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(q));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> High8(Vector128<byte> q) => Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Sse2.ShiftRightLogical128BitLane(q, 8)));

    /// <summary>Rows r0..r3 (eight reduction steps of four columns) stored as eight groups of four floats, kStride apart.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose4x8Store(Vector256<float> r0, Vector256<float> r1, Vector256<float> r2, Vector256<float> r3, float* d, nint kStride)
    {
        var t0 = Avx.UnpackLow(r0, r1);
        var t1 = Avx.UnpackLow(r2, r3);
        var t2 = Avx.UnpackHigh(r0, r1);
        var t3 = Avx.UnpackHigh(r2, r3);
        var o0 = Avx.Shuffle(t0, t1, 0x44);
        var o1 = Avx.Shuffle(t0, t1, 0xEE);
        var o2 = Avx.Shuffle(t2, t3, 0x44);
        var o3 = Avx.Shuffle(t2, t3, 0xEE);
        o0.GetLower().Store(d);
        o1.GetLower().Store(d + kStride);
        o2.GetLower().Store(d + 2 * kStride);
        o3.GetLower().Store(d + 3 * kStride);
        o0.GetUpper().Store(d + 4 * kStride);
        o1.GetUpper().Store(d + 5 * kStride);
        o2.GetUpper().Store(d + 6 * kStride);
        o3.GetUpper().Store(d + 7 * kStride);
    }
}
