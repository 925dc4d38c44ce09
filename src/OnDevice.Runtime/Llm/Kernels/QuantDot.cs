using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace OnDevice.Runtime.Llm.Kernels;

/// <summary>
/// Dot products of block-quantized weight rows with int8-quantized activations (blocks of 32 elements, one float
/// scale per block on each side). Int8 weights (Q8: value = q·d) with a scalar twin (<see cref="DotQ8Scalar"/>) that
/// defines it; the AVX-VNNI (vpdpbusd) and AVX2 (pmaddubsw + pmaddwd) paths compute the same integer block sums exactly
/// and differ only in float summation order. Int4 weights (Q4: 16 bytes per block, byte j holds element j in its low
/// nibble and element j+16 in its high nibble, value = (q − 8)·d) are defined by <see cref="DotQ4Scalar"/> and run by
/// <see cref="GroupDot"/>.
/// </summary>
public static unsafe class QuantDot
{
    /// <summary>Elements per block.</summary>
    public const int Block = 32;

    /// <summary>Which instruction path <see cref="DotQ8"/> and <see cref="GroupDot.DotQ4"/> take on this machine.</summary>
    public static string Path => UseVnni ? "avx-vnni" : UseAvx512 ? "avx512bw" : UseAvx2 ? "avx2" : "scalar";

    internal static bool UseVnni = AvxVnni.IsSupported && Fma.IsSupported;
    internal static bool UseAvx512 = Avx512BW.IsSupported && Avx512F.IsSupported && Avx2.IsSupported;
    internal static bool UseAvx2 = Avx2.IsSupported && Fma.IsSupported;

    /// <summary>Σ_b d_w[b]·d_x[b]·Σ_j w[b,j]·x[b,j] over <paramref name="blocks"/> blocks of int8 weights and int8 activations.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float DotQ8(sbyte* w, float* ws, sbyte* x, float* xs, int blocks) =>
        UseVnni ? DotQ8Vnni(w, ws, x, xs, blocks) : UseAvx512 ? DotQ8Avx512(w, ws, x, xs, blocks) : UseAvx2 ? DotQ8Avx2(w, ws, x, xs, blocks) : DotQ8Scalar(w, ws, x, xs, blocks);

    /// <summary>Scalar definition of <see cref="DotQ8"/>.</summary>
    public static float DotQ8Scalar(sbyte* w, float* ws, sbyte* x, float* xs, int blocks)
    {
        float sum = 0;
        for (int b = 0; b < blocks; b++)
        {
            int s = 0;
            for (int j = 0; j < Block; j++) s += w[b * Block + j] * x[b * Block + j];
            sum += s * (ws[b] * xs[b]);
        }
        return sum;
    }

    /// <summary>
    /// Σ_b d_w[b]·d_x[b]·Σ_j (q[b,j] − 8)·x[b,j] over blocks of packed int4 weights in Q4_0 order (the definition; the
    /// engine runs <see cref="GroupDot.DotQ4"/> on the interleaved layout). <paramref name="xc"/> is unused by the
    /// integer sum and kept for the activation layout of <see cref="QuantizeActivations"/>.
    /// </summary>
    public static float DotQ4Scalar(byte* w, float* ws, sbyte* x, float* xs, float* xc, int blocks)
    {
        float sum = 0;
        for (int b = 0; b < blocks; b++)
        {
            int s = 0;
            byte* wb = w + b * 16;
            sbyte* xb = x + b * Block;
            for (int j = 0; j < 16; j++)
            {
                s += ((wb[j] & 15) - 8) * xb[j];
                s += ((wb[j] >> 4) - 8) * xb[j + 16];
            }
            sum += s * (ws[b] * xs[b]);
        }
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> BlockQ8Vnni(sbyte* w, sbyte* x, float scale, Vector256<float> acc)
    {
        var wv = Avx.LoadVector256(w);
        var p = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Avx2.Abs(wv), Avx2.Sign(Avx.LoadVector256(x), wv));
        return Fma.MultiplyAdd(Avx.ConvertToVector256Single(p), Vector256.Create(scale), acc);
    }

    // Blocks go in groups of 8 whose scale products come from one vector multiply; even and odd blocks feed two accumulators.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotQ8Vnni(sbyte* w, float* ws, sbyte* x, float* xs, int blocks)
    {
        float* sc = stackalloc float[8];
        var acc0 = Vector256<float>.Zero;
        var acc1 = Vector256<float>.Zero;
        int b = 0;
        for (; b + 8 <= blocks; b += 8)
        {
            Avx.Store(sc, Avx.LoadVector256(ws + b) * Avx.LoadVector256(xs + b));
            sbyte* wb = w + b * Block, xb = x + b * Block;
            acc0 = BlockQ8Vnni(wb, xb, sc[0], acc0);
            acc1 = BlockQ8Vnni(wb + Block, xb + Block, sc[1], acc1);
            acc0 = BlockQ8Vnni(wb + 2 * Block, xb + 2 * Block, sc[2], acc0);
            acc1 = BlockQ8Vnni(wb + 3 * Block, xb + 3 * Block, sc[3], acc1);
            acc0 = BlockQ8Vnni(wb + 4 * Block, xb + 4 * Block, sc[4], acc0);
            acc1 = BlockQ8Vnni(wb + 5 * Block, xb + 5 * Block, sc[5], acc1);
            acc0 = BlockQ8Vnni(wb + 6 * Block, xb + 6 * Block, sc[6], acc0);
            acc1 = BlockQ8Vnni(wb + 7 * Block, xb + 7 * Block, sc[7], acc1);
        }
        for (; b < blocks; b++) acc0 = BlockQ8Vnni(w + b * Block, x + b * Block, ws[b] * xs[b], acc0);
        return Vector256.Sum(acc0 + acc1);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotQ8Avx2(sbyte* w, float* ws, sbyte* x, float* xs, int blocks)
    {
        var ones = Vector256.Create((short)1);
        var acc0 = Vector256<float>.Zero;
        var acc1 = Vector256<float>.Zero;
        int b = 0;
        for (; b + 2 <= blocks; b += 2)
        {
            var w0 = Avx.LoadVector256(w + b * Block);
            var w1 = Avx.LoadVector256(w + b * Block + Block);
            var p0 = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Avx2.Abs(w0), Avx2.Sign(Avx.LoadVector256(x + b * Block), w0)), ones);
            var p1 = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Avx2.Abs(w1), Avx2.Sign(Avx.LoadVector256(x + b * Block + Block), w1)), ones);
            acc0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(p0), Vector256.Create(ws[b] * xs[b]), acc0);
            acc1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(p1), Vector256.Create(ws[b + 1] * xs[b + 1]), acc1);
        }
        if (b < blocks)
        {
            var w0 = Avx.LoadVector256(w + b * Block);
            var p0 = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Avx2.Abs(w0), Avx2.Sign(Avx.LoadVector256(x + b * Block), w0)), ones);
            acc0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(p0), Vector256.Create(ws[b] * xs[b]), acc0);
        }
        return Vector256.Sum(acc0 + acc1);
    }

    // AVX-512BW (no VNNI): two blocks per zmm; pmaddubsw needs an unsigned operand, so |w| meets x with w's sign
    // moved onto it, then pmaddwd sums pairs into 8 ints per block, scaled by that block's d_w·d_x.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotQ8Avx512(sbyte* w, float* ws, sbyte* x, float* xs, int blocks)
    {
        var ones = Vector512.Create((short)1);
        var acc = Vector512<float>.Zero;
        int b = 0;
        for (; b + 2 <= blocks; b += 2)
        {
            var wv = Avx512BW.LoadVector512(w + b * Block);
            var xv = Avx512BW.LoadVector512(x + b * Block);
            var sx = Vector512.ConditionalSelect(Vector512.LessThan(wv, Vector512<sbyte>.Zero), -xv, xv);
            var p = Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(Avx512BW.Abs(wv), sx), ones);
            var scale = Vector512.Create(Vector256.Create(ws[b] * xs[b]), Vector256.Create(ws[b + 1] * xs[b + 1]));
            acc = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(p), scale, acc);
        }
        float sum = Vector512.Sum(acc);
        for (; b < blocks; b++) sum += DotQ8Scalar(w + b * Block, ws + b, x + b * Block, xs + b, 1);
        return sum;
    }

    /// <summary>
    /// <see cref="DotQ8"/> of one weight row with four activation rows (prefill, batched decoding), sharing each weight
    /// load; every result is bit-identical to the single-row call. <paramref name="x"/>[t] / <paramref name="xs"/>[t] are
    /// the rows' quants and scales.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotQ8x4(sbyte* w, float* ws, sbyte** x, float** xs, int blocks, float* result)
    {
        if (!UseVnni)
        {
            for (int t = 0; t < 4; t++) result[t] = DotQ8(w, ws, x[t], xs[t], blocks);
            return;
        }
        float* sc = stackalloc float[32];
        sbyte* x0 = x[0], x1 = x[1], x2 = x[2], x3 = x[3];
        Vector256<float> a0 = default, b0 = default, a1 = default, b1 = default, a2 = default, b2 = default, a3 = default, b3 = default;
        int b = 0;
        for (; b + 8 <= blocks; b += 8)
        {
            var wsv = Avx.LoadVector256(ws + b);
            Avx.Store(sc, wsv * Avx.LoadVector256(xs[0] + b));
            Avx.Store(sc + 8, wsv * Avx.LoadVector256(xs[1] + b));
            Avx.Store(sc + 16, wsv * Avx.LoadVector256(xs[2] + b));
            Avx.Store(sc + 24, wsv * Avx.LoadVector256(xs[3] + b));
            for (int i = 0; i < 8; i += 2)
            {
                int o = (b + i) * Block;
                var wa = Avx.LoadVector256(w + o);
                var wb = Avx.LoadVector256(w + o + Block);
                var ua = Avx2.Abs(wa);
                var ub = Avx2.Abs(wb);
                a0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, ua, Avx2.Sign(Avx.LoadVector256(x0 + o), wa))), Vector256.Create(sc[i]), a0);
                b0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, ub, Avx2.Sign(Avx.LoadVector256(x0 + o + Block), wb))), Vector256.Create(sc[i + 1]), b0);
                a1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, ua, Avx2.Sign(Avx.LoadVector256(x1 + o), wa))), Vector256.Create(sc[8 + i]), a1);
                b1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, ub, Avx2.Sign(Avx.LoadVector256(x1 + o + Block), wb))), Vector256.Create(sc[8 + i + 1]), b1);
                a2 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, ua, Avx2.Sign(Avx.LoadVector256(x2 + o), wa))), Vector256.Create(sc[16 + i]), a2);
                b2 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, ub, Avx2.Sign(Avx.LoadVector256(x2 + o + Block), wb))), Vector256.Create(sc[16 + i + 1]), b2);
                a3 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, ua, Avx2.Sign(Avx.LoadVector256(x3 + o), wa))), Vector256.Create(sc[24 + i]), a3);
                b3 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, ub, Avx2.Sign(Avx.LoadVector256(x3 + o + Block), wb))), Vector256.Create(sc[24 + i + 1]), b3);
            }
        }
        for (; b < blocks; b++)
        {
            int o = b * Block;
            float d = ws[b];
            a0 = BlockQ8Vnni(w + o, x0 + o, d * xs[0][b], a0);
            a1 = BlockQ8Vnni(w + o, x1 + o, d * xs[1][b], a1);
            a2 = BlockQ8Vnni(w + o, x2 + o, d * xs[2][b], a2);
            a3 = BlockQ8Vnni(w + o, x3 + o, d * xs[3][b], a3);
        }
        result[0] = Vector256.Sum(a0 + b0);
        result[1] = Vector256.Sum(a1 + b1);
        result[2] = Vector256.Sum(a2 + b2);
        result[3] = Vector256.Sum(a3 + b3);
    }

    /// <summary>
    /// Quantizes <paramref name="n"/> floats to int8 blocks of 32 (the last block zero-padded): per block d = max|x|/127,
    /// q = round(x/d); also each block's int4 offset correction 8·d·Σq. <paramref name="q"/> holds ceil(n/32)·32 bytes.
    /// </summary>
    public static void QuantizeActivations(float* x, int n, sbyte* q, float* scales, float* corrections)
    {
        int blocks = (n + Block - 1) / Block;
        for (int b = 0; b < blocks; b++)
        {
            int start = b * Block, len = Math.Min(Block, n - start);
            float amax = 0;
            for (int j = 0; j < len; j++) amax = MathF.Max(amax, MathF.Abs(x[start + j]));
            float d = amax / 127f, id = d > 0 ? 1f / d : 0f;
            int s = 0;
            for (int j = 0; j < Block; j++)
            {
                int v = j < len ? (int)MathF.Round(x[start + j] * id) : 0;
                q[start + j] = (sbyte)v;
                s += v;
            }
            scales[b] = d;
            corrections[b] = 8f * d * s;
        }
    }
}
