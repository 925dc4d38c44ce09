using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace OnDevice.Runtime.Llm.Kernels;

/// <summary>
/// Dot products of block-quantized weight rows with int8-quantized activations (blocks of 32 elements, one float
/// scale per block on each side). Int8 weights (Q8: value = q·d) and int4 weights (Q4: 16 bytes per block, byte j holds
/// element j in its low nibble and element j+16 in its high nibble, value = (q − 8)·d). Each has a scalar twin
/// (<see cref="DotQ8Scalar"/>, <see cref="DotQ4Scalar"/>) that defines it; the AVX-VNNI (vpdpbusd) and AVX2
/// (pmaddubsw + pmaddwd) paths compute the same integer block sums exactly and differ only in float summation order.
/// </summary>
public static unsafe class QuantDot
{
    /// <summary>Elements per block.</summary>
    public const int Block = 32;

    /// <summary>Which instruction path <see cref="DotQ8"/> and <see cref="DotQ4"/> take on this machine.</summary>
    public static string Path => AvxVnni.IsSupported && Fma.IsSupported ? "avx-vnni" : Avx2.IsSupported && Fma.IsSupported ? "avx2" : "scalar";

    internal static bool UseVnni = AvxVnni.IsSupported && Fma.IsSupported;
    internal static bool UseAvx2 = Avx2.IsSupported && Fma.IsSupported;

    /// <summary>Σ_b d_w[b]·d_x[b]·Σ_j w[b,j]·x[b,j] over <paramref name="blocks"/> blocks of int8 weights and int8 activations.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float DotQ8(sbyte* w, float* ws, sbyte* x, float* xs, int blocks) =>
        UseVnni ? DotQ8Vnni(w, ws, x, xs, blocks) : UseAvx2 ? DotQ8Avx2(w, ws, x, xs, blocks) : DotQ8Scalar(w, ws, x, xs, blocks);

    /// <summary>Σ_b d_w[b]·d_x[b]·Σ_j (q[b,j] − 8)·x[b,j] over blocks of packed int4 weights; <paramref name="xsum"/>[b] = Σ_j x[b,j].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float DotQ4(byte* w, float* ws, sbyte* x, float* xs, int* xsum, int blocks) =>
        UseVnni ? DotQ4Vnni(w, ws, x, xs, xsum, blocks) : UseAvx2 ? DotQ4Avx2(w, ws, x, xs, xsum, blocks) : DotQ4Scalar(w, ws, x, xs, xsum, blocks);

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

    /// <summary>Scalar definition of <see cref="DotQ4"/>.</summary>
    public static float DotQ4Scalar(byte* w, float* ws, sbyte* x, float* xs, int* xsum, int blocks)
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

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotQ8Vnni(sbyte* w, float* ws, sbyte* x, float* xs, int blocks)
    {
        var acc0 = Vector256<float>.Zero;
        var acc1 = Vector256<float>.Zero;
        int b = 0;
        for (; b + 2 <= blocks; b += 2)
        {
            var w0 = Avx.LoadVector256(w + b * Block);
            var w1 = Avx.LoadVector256(w + b * Block + Block);
            var p0 = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Avx2.Abs(w0), Avx2.Sign(Avx.LoadVector256(x + b * Block), w0));
            var p1 = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Avx2.Abs(w1), Avx2.Sign(Avx.LoadVector256(x + b * Block + Block), w1));
            acc0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(p0), Vector256.Create(ws[b] * xs[b]), acc0);
            acc1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(p1), Vector256.Create(ws[b + 1] * xs[b + 1]), acc1);
        }
        if (b < blocks)
        {
            var w0 = Avx.LoadVector256(w + b * Block);
            var p0 = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Avx2.Abs(w0), Avx2.Sign(Avx.LoadVector256(x + b * Block), w0));
            acc0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(p0), Vector256.Create(ws[b] * xs[b]), acc0);
        }
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

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Nibbles(byte* p)
    {
        var v = Sse2.LoadVector128(p);
        var m = Vector128.Create((byte)15);
        return Vector256.Create(v & m, Sse2.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & m);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotQ4Vnni(byte* w, float* ws, sbyte* x, float* xs, int* xsum, int blocks)
    {
        var acc0 = Vector256<float>.Zero;
        var acc1 = Vector256<float>.Zero;
        float corr = 0;
        int b = 0;
        for (; b + 2 <= blocks; b += 2)
        {
            var p0 = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Nibbles(w + b * 16), Avx.LoadVector256(x + b * Block));
            var p1 = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Nibbles(w + b * 16 + 16), Avx.LoadVector256(x + b * Block + Block));
            float s0 = ws[b] * xs[b], s1 = ws[b + 1] * xs[b + 1];
            acc0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(p0), Vector256.Create(s0), acc0);
            acc1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(p1), Vector256.Create(s1), acc1);
            corr += 8 * (xsum[b] * s0 + xsum[b + 1] * s1);
        }
        if (b < blocks)
        {
            var p0 = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Nibbles(w + b * 16), Avx.LoadVector256(x + b * Block));
            float s0 = ws[b] * xs[b];
            acc0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(p0), Vector256.Create(s0), acc0);
            corr += 8 * xsum[b] * s0;
        }
        return Vector256.Sum(acc0 + acc1) - corr;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotQ4Avx2(byte* w, float* ws, sbyte* x, float* xs, int* xsum, int blocks)
    {
        var ones = Vector256.Create((short)1);
        var acc0 = Vector256<float>.Zero;
        float corr = 0;
        for (int b = 0; b < blocks; b++)
        {
            var p0 = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Nibbles(w + b * 16), Avx.LoadVector256(x + b * Block)), ones);
            float s0 = ws[b] * xs[b];
            acc0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(p0), Vector256.Create(s0), acc0);
            corr += 8 * xsum[b] * s0;
        }
        return Vector256.Sum(acc0) - corr;
    }

    /// <summary>
    /// Quantizes <paramref name="n"/> floats to int8 blocks of 32 (the last block zero-padded): per block d = max|x|/127,
    /// q = round(x/d); also the per-block sums of q. <paramref name="q"/> holds ceil(n/32)·32 bytes.
    /// </summary>
    public static void QuantizeActivations(float* x, int n, sbyte* q, float* scales, int* sums)
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
            sums[b] = s;
        }
    }
}
