using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace OnDevice.Runtime.Llm.Kernels;

/// <summary>
/// Definitions of the dot products of block-quantized weight rows with int8-quantized activations (blocks of 32
/// elements, one float scale per block on each side), and the activation quantizer. Int8 weights (Q8: value = q·d) and
/// int4 weights (Q4: 16 bytes per block, byte j holds element j in its low nibble and element j+16 in its high nibble,
/// value = (q − 8)·d), both in plain block order. The engine's kernels (<see cref="GroupDot"/>) run the same sums on an
/// interleaved layout; its scalar twins equal these definitions exactly.
/// </summary>
public static unsafe class QuantDot
{
    /// <summary>Elements per block.</summary>
    public const int Block = 32;

    /// <summary>Which instruction path <see cref="GroupDot.DotQ8"/> and <see cref="GroupDot.DotQ4"/> take on this machine.</summary>
    public static string Path => GroupDot.Path;

    internal static bool UseVnni = AvxVnni.IsSupported && Fma.IsSupported;
    internal static bool UseAvx2 = Avx2.IsSupported && Fma.IsSupported;

    /// <summary>
    /// Σ_b d_w[b]·d_x[b]·Σ_j w[b,j]·x[b,j] over <paramref name="blocks"/> blocks of int8 weights and int8 activations in
    /// block order (the definition; the engine runs <see cref="GroupDot.DotQ8"/> on the interleaved layout).
    /// </summary>
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
    /// engine runs <see cref="GroupDot.DotQ4"/> on the interleaved layout).
    /// </summary>
    public static float DotQ4Scalar(byte* w, float* ws, sbyte* x, float* xs, int blocks)
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

    /// <summary>
    /// Quantizes <paramref name="n"/> floats to int8 blocks of 32 (the last block zero-padded): per block d = max|x|/127,
    /// q = round(x/d) (to nearest, ties to even). <paramref name="q"/> holds ceil(n/32)·32 bytes. Whole blocks take an
    /// AVX2 path that gives exactly <see cref="QuantizeActivationsScalar"/>'s bytes and scales.
    /// </summary>
    public static void QuantizeActivations(float* x, int n, sbyte* q, float* scales)
    {
        int whole = UseAvx2 ? n / Block : 0;
        for (int b = 0; b < whole; b++)
        {
            float* xb = x + b * Block;
            var v0 = Vector256.Load(xb);
            var v1 = Vector256.Load(xb + 8);
            var v2 = Vector256.Load(xb + 16);
            var v3 = Vector256.Load(xb + 24);
            var m = Vector256.Max(Vector256.Max(Vector256.Abs(v0), Vector256.Abs(v1)), Vector256.Max(Vector256.Abs(v2), Vector256.Abs(v3)));
            var m4 = Vector128.Max(m.GetLower(), m.GetUpper());
            var m2 = Vector128.Max(m4, Sse.Shuffle(m4, m4, 0b_01_00_11_10));
            float amax = MathF.Max(m2.GetElement(0), m2.GetElement(1));
            float d = amax / 127f, id = d > 0 ? 1f / d : 0f;
            var vid = Vector256.Create(id);
            var i0 = Avx.ConvertToVector256Int32(Avx.RoundToNearestInteger(v0 * vid));
            var i1 = Avx.ConvertToVector256Int32(Avx.RoundToNearestInteger(v1 * vid));
            var i2 = Avx.ConvertToVector256Int32(Avx.RoundToNearestInteger(v2 * vid));
            var i3 = Avx.ConvertToVector256Int32(Avx.RoundToNearestInteger(v3 * vid));
            Vector256.Narrow(Vector256.Narrow(i0, i1), Vector256.Narrow(i2, i3)).Store(q + b * Block);
            scales[b] = d;
        }
        if (whole * Block < n || n == 0) QuantizeActivationsScalar(x + whole * Block, n - whole * Block, q + whole * Block, scales + whole);
    }

    /// <summary>Scalar definition of <see cref="QuantizeActivations"/>.</summary>
    public static void QuantizeActivationsScalar(float* x, int n, sbyte* q, float* scales)
    {
        int blocks = (n + Block - 1) / Block;
        for (int b = 0; b < blocks; b++)
        {
            int start = b * Block, len = Math.Min(Block, n - start);
            float amax = 0;
            for (int j = 0; j < len; j++) amax = MathF.Max(amax, MathF.Abs(x[start + j]));
            float d = amax / 127f, id = d > 0 ? 1f / d : 0f;
            for (int j = 0; j < Block; j++) q[start + j] = (sbyte)(j < len ? (int)MathF.Round(x[start + j] * id) : 0);
            scales[b] = d;
        }
    }
}
