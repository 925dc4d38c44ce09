using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace OnDevice.Runtime.Llm.Kernels;

/// <summary>
/// Int4 weight rows dotted with int8 activations in an interleaved layout that puts one block in each 32-bit lane, so
/// a group of 8 blocks needs no horizontal sum and no per-block scale broadcast: 8 vpdpbusd build the 8 blocks' integer
/// sums side by side, one vector subtract removes the int4 offset, one convert and one FMA apply the 8 scale products.
/// <para>
/// Layout of a row of <c>blocks</c> blocks (16 bytes each, as in Q4_0: byte o holds element o in its low nibble and
/// element o + 16 in its high nibble): each whole group of 8 blocks is a 4 × 8 transpose of 32-bit words — word
/// <c>j·8 + i</c> of the group is word j of block i — so a 32-byte load j holds elements 4j..4j+3 of every block in its low
/// nibbles and elements 16+4j..16+4j+3 in its high nibbles; the blocks after the last whole group stay as they are. The
/// activations of a group (8 × 32 int8) are the 8 × 8 transpose of 32-bit words (<see cref="InterleaveActivations"/>), so
/// 32-byte vector k holds elements 4k..4k+3 of every block. Scales stay one float per block in block order.
/// </para>
/// <para>
/// Definition (<see cref="DotQ4Scalar"/>, equal to <see cref="QuantDot.DotQ4Scalar"/> on the un-interleaved row):
/// Σ_b s_b·(d_w[b]·d_x[b]) in block order, s_b = Σ_j (q[b,j] − 8)·x[b,j] exactly. The SIMD paths compute every s_b
/// exactly and sum the scaled block sums lane-wise over groups, then the tail blocks in order: they differ from the
/// definition only in float summation order, and the single-row and four-token kernels are bit-identical to each other.
/// </para>
/// </summary>
public static unsafe class GroupDot
{
    /// <summary>Blocks per interleaved group.</summary>
    public const int Group = 8;

    /// <summary>Elements per block.</summary>
    public const int Block = QuantDot.Block;

    /// <summary>Which instruction path <see cref="DotQ4"/> takes on this machine.</summary>
    public static string Path => QuantDot.UseVnni ? "avx-vnni" : QuantDot.UseAvx2 ? "avx2" : "scalar";

    /// <summary>Rearranges one int4 row (<paramref name="blocks"/> × 16 bytes, Q4_0 order) into the interleaved layout.</summary>
    public static void InterleaveQ4(byte* src, int blocks, byte* dst)
    {
        int groups = blocks / Group;
        uint* s = (uint*)src, d = (uint*)dst;
        for (int g = 0; g < groups; g++)
            for (int i = 0; i < Group; i++)
                for (int j = 0; j < 4; j++)
                    d[g * 32 + j * 8 + i] = s[(g * Group + i) * 4 + j];
        Buffer.MemoryCopy(src + groups * Group * 16, dst + groups * Group * 16, (blocks - groups * Group) * 16, (blocks - groups * Group) * 16);
    }

    /// <summary>
    /// Byte <paramref name="o"/> (0..15) of block <paramref name="b"/> in an interleaved int4 row whose whole groups
    /// (128 bytes each) start <paramref name="groupStride"/> bytes apart (128: contiguous; 512: the four-row layout).
    /// </summary>
    public static int Q4ByteOffset(int b, int o, int blocks, int groupStride = 128)
    {
        int groups = blocks / Group;
        return b < groups * Group ? (b / Group) * groupStride + (o >> 2) * 32 + (b % Group) * 4 + (o & 3) : groups * groupStride + (b - groups * Group) * 16 + o;
    }

    /// <summary>Byte <paramref name="e"/> (0..31) of block <paramref name="b"/> in an interleaved int8 row whose whole groups (256 bytes) start <paramref name="groupStride"/> bytes apart.</summary>
    public static int Q8ByteOffset(int b, int e, int blocks, int groupStride = 256)
    {
        int groups = blocks / Group;
        return b < groups * Group ? (b / Group) * groupStride + (e >> 2) * 32 + (b % Group) * 4 + (e & 3) : groups * groupStride + (b - groups * Group) * Block + e;
    }

    /// <summary>Index of block <paramref name="b"/>'s scale when each whole group's 8 scales start <paramref name="scaleStride"/> floats apart.</summary>
    public static int ScaleIndex(int b, int blocks, int scaleStride = Group)
    {
        int groups = blocks / Group;
        return b < groups * Group ? (b / Group) * scaleStride + b % Group : groups * scaleStride + b - groups * Group;
    }

    /// <summary>
    /// Rearranges one row of int8 activations (<paramref name="blocks"/> × 32) into the interleaved layout and writes each
    /// block's offset term <paramref name="c8"/>[b] = 8·Σ_j x[b,j] (what the +8 of the int4 code adds).
    /// </summary>
    public static void InterleaveActivations(sbyte* src, int blocks, sbyte* dst, int* c8)
    {
        InterleaveWords((uint*)src, blocks, (uint*)dst);
        for (int b = 0; b < blocks; b++)
        {
            int sum = 0;
            for (int j = 0; j < Block; j++) sum += src[b * Block + j];
            c8[b] = 8 * sum;
        }
    }

    /// <summary>Element <paramref name="e"/> (0..31) of block <paramref name="b"/> in an interleaved activation row.</summary>
    public static int ActivationOffset(int b, int e, int blocks) =>
        b < blocks / Group * Group ? (b / Group) * 256 + (e >> 2) * 32 + (b % Group) * 4 + (e & 3) : b * Block + e;

    /// <summary>
    /// Σ_b d_w[b]·d_x[b]·Σ_j (q[b,j] − 8)·x[b,j] of an interleaved int4 row <paramref name="w"/> and an interleaved int8
    /// activation row <paramref name="x"/> (<paramref name="c8"/> from <see cref="InterleaveActivations"/>).
    /// </summary>
    /// <remarks>
    /// Whole groups of the weight row start <paramref name="wStride"/> bytes apart and their scales
    /// <paramref name="sStride"/> floats apart (defaults: a contiguous row; the four-row layout of <see cref="DotQ4Rows4"/>
    /// uses 512 and 32); the tail blocks follow the last group's slot.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float DotQ4(byte* w, float* ws, sbyte* x, float* xs, int* c8, int blocks, int wStride = 128, int sStride = Group) =>
        QuantDot.UseVnni ? DotQ4Vnni(w, ws, x, xs, c8, blocks, wStride, sStride)
        : QuantDot.UseAvx2 ? DotQ4Avx2(w, ws, x, xs, c8, blocks, wStride, sStride)
        : DotQ4Scalar(w, ws, x, xs, c8, blocks, wStride, sStride);

    /// <summary>Scalar definition of <see cref="DotQ4"/>: blocks in order, each block's sum exact.</summary>
    public static float DotQ4Scalar(byte* w, float* ws, sbyte* x, float* xs, int* c8, int blocks, int wStride = 128, int sStride = Group)
    {
        float sum = 0;
        for (int b = 0; b < blocks; b++)
        {
            int s = 0;
            for (int o = 0; o < 16; o++)
            {
                byte packed = w[Q4ByteOffset(b, o, blocks, wStride)];
                s += (packed & 15) * x[ActivationOffset(b, o, blocks)] + (packed >> 4) * x[ActivationOffset(b, o + 16, blocks)];
            }
            s -= c8[b];
            sum += s * (ws[ScaleIndex(b, blocks, sStride)] * xs[b]);
        }
        return sum;
    }

    /// <summary>The exact block sum Σ_j (q − 8)·x of one un-interleaved (tail) block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int TailBlock(byte* w, sbyte* x, int c8)
    {
        if (QuantDot.UseVnni)
        {
            var v = Sse2.LoadVector128(w);
            var m = Vector128.Create((byte)15);
            var nib = Vector256.Create(v & m, Sse2.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & m);
            return Vector256.Sum(AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, nib, Avx.LoadVector256(x))) - c8;
        }
        int s = 0;
        for (int o = 0; o < 16; o++) s += (w[o] & 15) * x[o] + (w[o] >> 4) * x[o + 16];
        return s - c8;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> GroupVnni(byte* wg, sbyte* xg, Vector256<byte> m)
    {
        var v0 = Avx.LoadVector256(wg);
        var v1 = Avx.LoadVector256(wg + 32);
        var v2 = Avx.LoadVector256(wg + 64);
        var v3 = Avx.LoadVector256(wg + 96);
        var p = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, v0 & m, Avx.LoadVector256(xg));
        var q = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Avx2.AndNot(m, v0), Avx.LoadVector256(xg + 128));
        p = AvxVnni.MultiplyWideningAndAdd(p, v1 & m, Avx.LoadVector256(xg + 32));
        q = AvxVnni.MultiplyWideningAndAdd(q, Avx2.AndNot(m, v1), Avx.LoadVector256(xg + 160));
        p = AvxVnni.MultiplyWideningAndAdd(p, v2 & m, Avx.LoadVector256(xg + 64));
        q = AvxVnni.MultiplyWideningAndAdd(q, Avx2.AndNot(m, v2), Avx.LoadVector256(xg + 192));
        p = AvxVnni.MultiplyWideningAndAdd(p, v3 & m, Avx.LoadVector256(xg + 96));
        q = AvxVnni.MultiplyWideningAndAdd(q, Avx2.AndNot(m, v3), Avx.LoadVector256(xg + 224));
        return p + Avx2.ShiftRightArithmetic(q, 4);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotQ4Vnni(byte* w, float* ws, sbyte* x, float* xs, int* c8, int blocks, int wStride, int sStride)
    {
        var m = Vector256.Create((byte)15);
        var acc = Vector256<float>.Zero;
        int groups = blocks / Group;
        for (int g = 0; g < groups; g++)
        {
            var s = GroupVnni(w + g * wStride, x + g * 256, m) - Avx.LoadVector256(c8 + g * Group);
            acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(s), Avx.LoadVector256(ws + g * sStride) * Avx.LoadVector256(xs + g * Group), acc);
        }
        float sum = Vector256.Sum(acc);
        byte* wt = w + groups * wStride - groups * Group * 16;
        float* st = ws + groups * sStride - groups * Group;
        for (int b = groups * Group; b < blocks; b++) sum += TailBlock(wt + b * 16, x + b * Block, c8[b]) * (st[b] * xs[b]);
        return sum;
    }

    /// <summary>
    /// <see cref="DotQ4"/> of four weight rows stored interleaved (the four-row layout: group g of row i at byte
    /// (4g + i)·128 of <paramref name="w"/>, its 8 scales at float (4g + i)·8 of <paramref name="ws"/>; whole groups only)
    /// with one activation row, so a decode product reads one sequential stream while each activation load serves four
    /// rows. result[i] is bit-identical to <c>DotQ4(w + 128·i, ws + 8·i, …, wStride: 512, sStride: 32)</c>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotQ4Rows4(byte* w, float* ws, sbyte* x, float* xs, int* c8, int blocks, float* result)
    {
        if (blocks % Group != 0) throw new ArgumentException($"the four-row layout needs whole groups of {Group} blocks, not {blocks} blocks", nameof(blocks));
        if (!QuantDot.UseVnni)
        {
            for (int i = 0; i < 4; i++) result[i] = DotQ4(w + 128 * i, ws + Group * i, x, xs, c8, blocks, 512, 4 * Group);
            return;
        }
        var m = Vector256.Create((byte)15);
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int groups = blocks / Group;
        for (int g = 0; g < groups; g++)
        {
            byte* wg = w + g * 512;
            sbyte* xg = x + g * 256;
            float* sg = ws + g * 32;
            // Two halves: the half's four activation vectors once, then the half's 64 bytes (one cache line) of each of
            // the four rows in address order — lines 0, 2, 4, 6 then 1, 3, 5, 7 of the 512-byte block. (Holding all eight
            // activation vectors to read each row's 128 bytes straight through measured 57–60 GB/s cache-resident against
            // 75 for this order: the JIT spilled the accumulators.)
            var z = Vector256<int>.Zero;
            var xl0 = Avx.LoadVector256(xg); var xl1 = Avx.LoadVector256(xg + 32);
            var xh0 = Avx.LoadVector256(xg + 128); var xh1 = Avx.LoadVector256(xg + 160);
            var v0 = Avx.LoadVector256(wg); var v1 = Avx.LoadVector256(wg + 32);
            var p0 = AvxVnni.MultiplyWideningAndAdd(AvxVnni.MultiplyWideningAndAdd(z, v0 & m, xl0), v1 & m, xl1);
            var q0 = AvxVnni.MultiplyWideningAndAdd(AvxVnni.MultiplyWideningAndAdd(z, Avx2.AndNot(m, v0), xh0), Avx2.AndNot(m, v1), xh1);
            v0 = Avx.LoadVector256(wg + 128); v1 = Avx.LoadVector256(wg + 160);
            var p1 = AvxVnni.MultiplyWideningAndAdd(AvxVnni.MultiplyWideningAndAdd(z, v0 & m, xl0), v1 & m, xl1);
            var q1 = AvxVnni.MultiplyWideningAndAdd(AvxVnni.MultiplyWideningAndAdd(z, Avx2.AndNot(m, v0), xh0), Avx2.AndNot(m, v1), xh1);
            v0 = Avx.LoadVector256(wg + 256); v1 = Avx.LoadVector256(wg + 288);
            var p2 = AvxVnni.MultiplyWideningAndAdd(AvxVnni.MultiplyWideningAndAdd(z, v0 & m, xl0), v1 & m, xl1);
            var q2 = AvxVnni.MultiplyWideningAndAdd(AvxVnni.MultiplyWideningAndAdd(z, Avx2.AndNot(m, v0), xh0), Avx2.AndNot(m, v1), xh1);
            v0 = Avx.LoadVector256(wg + 384); v1 = Avx.LoadVector256(wg + 416);
            var p3 = AvxVnni.MultiplyWideningAndAdd(AvxVnni.MultiplyWideningAndAdd(z, v0 & m, xl0), v1 & m, xl1);
            var q3 = AvxVnni.MultiplyWideningAndAdd(AvxVnni.MultiplyWideningAndAdd(z, Avx2.AndNot(m, v0), xh0), Avx2.AndNot(m, v1), xh1);
            xl0 = Avx.LoadVector256(xg + 64); xl1 = Avx.LoadVector256(xg + 96);
            xh0 = Avx.LoadVector256(xg + 192); xh1 = Avx.LoadVector256(xg + 224);
            v0 = Avx.LoadVector256(wg + 64); v1 = Avx.LoadVector256(wg + 96);
            p0 = AvxVnni.MultiplyWideningAndAdd(AvxVnni.MultiplyWideningAndAdd(p0, v0 & m, xl0), v1 & m, xl1);
            q0 = AvxVnni.MultiplyWideningAndAdd(AvxVnni.MultiplyWideningAndAdd(q0, Avx2.AndNot(m, v0), xh0), Avx2.AndNot(m, v1), xh1);
            v0 = Avx.LoadVector256(wg + 192); v1 = Avx.LoadVector256(wg + 224);
            p1 = AvxVnni.MultiplyWideningAndAdd(AvxVnni.MultiplyWideningAndAdd(p1, v0 & m, xl0), v1 & m, xl1);
            q1 = AvxVnni.MultiplyWideningAndAdd(AvxVnni.MultiplyWideningAndAdd(q1, Avx2.AndNot(m, v0), xh0), Avx2.AndNot(m, v1), xh1);
            v0 = Avx.LoadVector256(wg + 320); v1 = Avx.LoadVector256(wg + 352);
            p2 = AvxVnni.MultiplyWideningAndAdd(AvxVnni.MultiplyWideningAndAdd(p2, v0 & m, xl0), v1 & m, xl1);
            q2 = AvxVnni.MultiplyWideningAndAdd(AvxVnni.MultiplyWideningAndAdd(q2, Avx2.AndNot(m, v0), xh0), Avx2.AndNot(m, v1), xh1);
            v0 = Avx.LoadVector256(wg + 448); v1 = Avx.LoadVector256(wg + 480);
            p3 = AvxVnni.MultiplyWideningAndAdd(AvxVnni.MultiplyWideningAndAdd(p3, v0 & m, xl0), v1 & m, xl1);
            q3 = AvxVnni.MultiplyWideningAndAdd(AvxVnni.MultiplyWideningAndAdd(q3, Avx2.AndNot(m, v0), xh0), Avx2.AndNot(m, v1), xh1);
            var c = Avx.LoadVector256(c8 + g * Group);
            var xsv = Avx.LoadVector256(xs + g * Group);
            a0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(p0 + Avx2.ShiftRightArithmetic(q0, 4) - c), Avx.LoadVector256(sg) * xsv, a0);
            a1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(p1 + Avx2.ShiftRightArithmetic(q1, 4) - c), Avx.LoadVector256(sg + 8) * xsv, a1);
            a2 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(p2 + Avx2.ShiftRightArithmetic(q2, 4) - c), Avx.LoadVector256(sg + 16) * xsv, a2);
            a3 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(p3 + Avx2.ShiftRightArithmetic(q3, 4) - c), Avx.LoadVector256(sg + 24) * xsv, a3);
        }
        result[0] = Vector256.Sum(a0); result[1] = Vector256.Sum(a1); result[2] = Vector256.Sum(a2); result[3] = Vector256.Sum(a3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> PairsAvx2(Vector256<byte> nib, sbyte* x) =>
        Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(nib, Avx.LoadVector256(x)), Vector256.Create((short)1));

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotQ4Avx2(byte* w, float* ws, sbyte* x, float* xs, int* c8, int blocks, int wStride, int sStride)
    {
        var m = Vector256.Create((byte)15);
        var acc = Vector256<float>.Zero;
        int groups = blocks / Group;
        for (int g = 0; g < groups; g++)
        {
            byte* wg = w + g * wStride;
            sbyte* xg = x + g * 256;
            var s = Vector256<int>.Zero - Avx.LoadVector256(c8 + g * Group);
            for (int j = 0; j < 4; j++)
            {
                var v = Avx.LoadVector256(wg + 32 * j);
                // pmaddubsw cannot saturate here: 15·127·2 < 32767.
                s += PairsAvx2(v & m, xg + 32 * j) + PairsAvx2(Avx2.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & m, xg + 128 + 32 * j);
            }
            acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(s), Avx.LoadVector256(ws + g * sStride) * Avx.LoadVector256(xs + g * Group), acc);
        }
        float sum = Vector256.Sum(acc);
        byte* wt = w + groups * wStride - groups * Group * 16;
        float* st = ws + groups * sStride - groups * Group;
        for (int b = groups * Group; b < blocks; b++) sum += TailBlock(wt + b * 16, x + b * Block, c8[b]) * (st[b] * xs[b]);
        return sum;
    }


    /// <summary>
    /// <see cref="DotQ4"/> of one weight row with four activation rows (prefill, batched decoding), unpacking the weights
    /// once; every result is bit-identical to the single-row call.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotQ4x4(byte* w, float* ws, sbyte** x, float** xs, int** c8, int blocks, float* result, int wStride = 128, int sStride = Group)
    {
        if (!QuantDot.UseVnni)
        {
            for (int t = 0; t < 4; t++) result[t] = DotQ4(w, ws, x[t], xs[t], c8[t], blocks, wStride, sStride);
            return;
        }
        var m = Vector256.Create((byte)15);
        sbyte* x0 = x[0], x1 = x[1], x2 = x[2], x3 = x[3];
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int groups = blocks / Group;
        for (int g = 0; g < groups; g++)
        {
            byte* wg = w + g * wStride;
            int o = g * 256, so = g * Group;
            var wsv = Avx.LoadVector256(ws + g * sStride);
            Vector256<int> p0 = default, p1 = default, p2 = default, p3 = default, q0 = default, q1 = default, q2 = default, q3 = default;
            for (int j = 0; j < 4; j++)
            {
                var v = Avx.LoadVector256(wg + 32 * j);
                var lo = v & m;
                var hi = Avx2.AndNot(m, v);
                int ol = o + 32 * j, oh = o + 128 + 32 * j;
                p0 = AvxVnni.MultiplyWideningAndAdd(p0, lo, Avx.LoadVector256(x0 + ol)); q0 = AvxVnni.MultiplyWideningAndAdd(q0, hi, Avx.LoadVector256(x0 + oh));
                p1 = AvxVnni.MultiplyWideningAndAdd(p1, lo, Avx.LoadVector256(x1 + ol)); q1 = AvxVnni.MultiplyWideningAndAdd(q1, hi, Avx.LoadVector256(x1 + oh));
                p2 = AvxVnni.MultiplyWideningAndAdd(p2, lo, Avx.LoadVector256(x2 + ol)); q2 = AvxVnni.MultiplyWideningAndAdd(q2, hi, Avx.LoadVector256(x2 + oh));
                p3 = AvxVnni.MultiplyWideningAndAdd(p3, lo, Avx.LoadVector256(x3 + ol)); q3 = AvxVnni.MultiplyWideningAndAdd(q3, hi, Avx.LoadVector256(x3 + oh));
            }
            a0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(p0 + Avx2.ShiftRightArithmetic(q0, 4) - Avx.LoadVector256(c8[0] + so)), wsv * Avx.LoadVector256(xs[0] + so), a0);
            a1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(p1 + Avx2.ShiftRightArithmetic(q1, 4) - Avx.LoadVector256(c8[1] + so)), wsv * Avx.LoadVector256(xs[1] + so), a1);
            a2 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(p2 + Avx2.ShiftRightArithmetic(q2, 4) - Avx.LoadVector256(c8[2] + so)), wsv * Avx.LoadVector256(xs[2] + so), a2);
            a3 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(p3 + Avx2.ShiftRightArithmetic(q3, 4) - Avx.LoadVector256(c8[3] + so)), wsv * Avx.LoadVector256(xs[3] + so), a3);
        }
        float r0 = Vector256.Sum(a0), r1 = Vector256.Sum(a1), r2 = Vector256.Sum(a2), r3 = Vector256.Sum(a3);
        byte* wt = w + groups * wStride - groups * Group * 16;
        float* st = ws + groups * sStride - groups * Group;
        for (int b = groups * Group; b < blocks; b++)
        {
            byte* wb = wt + b * 16;
            int o = b * Block;
            float d = st[b];
            r0 += TailBlock(wb, x0 + o, c8[0][b]) * (d * xs[0][b]);
            r1 += TailBlock(wb, x1 + o, c8[1][b]) * (d * xs[1][b]);
            r2 += TailBlock(wb, x2 + o, c8[2][b]) * (d * xs[2][b]);
            r3 += TailBlock(wb, x3 + o, c8[3][b]) * (d * xs[3][b]);
        }
        result[0] = r0; result[1] = r1; result[2] = r2; result[3] = r3;
    }

    // ---- int8 weights -------------------------------------------------------------------------------------------

    /// <summary>
    /// Rearranges one int8 row (<paramref name="blocks"/> × 32) into the interleaved layout of the activations (the 8 × 8
    /// transpose of 32-bit words per whole group) and stores each weight offset by +128 as an unsigned byte, so vpdpbusd
    /// can take it as its unsigned operand: Σ (q + 128)·x − 128·Σ x = Σ q·x exactly (128·Σx = 16·<c>c8</c>).
    /// </summary>
    public static void InterleaveQ8(sbyte* src, int blocks, byte* dst)
    {
        int n = blocks * Block;
        InterleaveWords((uint*)src, blocks, (uint*)dst);
        for (int i = 0; i < n; i++) dst[i] ^= 0x80;
    }

    private static void InterleaveWords(uint* s, int blocks, uint* d)
    {
        int groups = blocks / Group;
        for (int g = 0; g < groups; g++)
            for (int i = 0; i < Group; i++)
                for (int k = 0; k < 8; k++)
                    d[g * 64 + k * 8 + i] = s[(g * Group + i) * 8 + k];
        for (int w = groups * 64; w < blocks * 8; w++) d[w] = s[w];
    }

    /// <summary>Σ_b d_w[b]·d_x[b]·Σ_j q[b,j]·x[b,j] of an interleaved int8 row (<see cref="InterleaveQ8"/>) and an interleaved activation row.</summary>
    /// <remarks>Group strides as in <see cref="DotQ4"/> (256 bytes and 8 floats for a contiguous row; 1024 and 32 in the four-row layout).</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float DotQ8(byte* w, float* ws, sbyte* x, float* xs, int* c8, int blocks, int wStride = 256, int sStride = Group) =>
        QuantDot.UseVnni ? DotQ8Vnni(w, ws, x, xs, c8, blocks, wStride, sStride)
        : QuantDot.UseAvx2 ? DotQ8Avx2(w, ws, x, xs, c8, blocks, wStride, sStride)
        : DotQ8Scalar(w, ws, x, xs, blocks, wStride, sStride);

    /// <summary>Scalar definition of <see cref="DotQ8"/> (equal to <see cref="QuantDot.DotQ8Scalar"/> on the un-interleaved row).</summary>
    public static float DotQ8Scalar(byte* w, float* ws, sbyte* x, float* xs, int blocks, int wStride = 256, int sStride = Group)
    {
        float sum = 0;
        for (int b = 0; b < blocks; b++)
        {
            int s = 0;
            for (int e = 0; e < Block; e++)
                s += (sbyte)(w[Q8ByteOffset(b, e, blocks, wStride)] ^ 0x80) * x[ActivationOffset(b, e, blocks)];
            sum += s * (ws[ScaleIndex(b, blocks, sStride)] * xs[b]);
        }
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int TailBlockQ8(byte* w, sbyte* x, int c8)
    {
        // c8 = 8·Σx, so 16·c8 = 128·Σx, what the +128 offset of the weights adds.
        if (QuantDot.UseVnni) return Vector256.Sum(AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Avx.LoadVector256(w), Avx.LoadVector256(x))) - 16 * c8;
        int s = 0;
        for (int e = 0; e < Block; e++) s += (sbyte)(w[e] ^ 0x80) * x[e];
        return s;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotQ8Vnni(byte* w, float* ws, sbyte* x, float* xs, int* c8, int blocks, int wStride, int sStride)
    {
        var acc = Vector256<float>.Zero;
        int groups = blocks / Group;
        for (int g = 0; g < groups; g++)
        {
            byte* wg = w + g * wStride;
            sbyte* xg = x + g * 256;
            var p = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Avx.LoadVector256(wg), Avx.LoadVector256(xg));
            var q = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Avx.LoadVector256(wg + 32), Avx.LoadVector256(xg + 32));
            for (int k = 2; k < 8; k += 2)
            {
                p = AvxVnni.MultiplyWideningAndAdd(p, Avx.LoadVector256(wg + 32 * k), Avx.LoadVector256(xg + 32 * k));
                q = AvxVnni.MultiplyWideningAndAdd(q, Avx.LoadVector256(wg + 32 * k + 32), Avx.LoadVector256(xg + 32 * k + 32));
            }
            var s = p + q - Avx2.ShiftLeftLogical(Avx.LoadVector256(c8 + g * Group), 4);
            acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(s), Avx.LoadVector256(ws + g * sStride) * Avx.LoadVector256(xs + g * Group), acc);
        }
        float sum = Vector256.Sum(acc);
        byte* wt = w + groups * wStride - groups * Group * Block;
        float* st = ws + groups * sStride - groups * Group;
        for (int b = groups * Group; b < blocks; b++) sum += TailBlockQ8(wt + b * Block, x + b * Block, c8[b]) * (st[b] * xs[b]);
        return sum;
    }

    /// <summary>
    /// <see cref="DotQ8"/> of four weight rows in the four-row layout (group g of row i at byte (4g + i)·256, its scales at
    /// float (4g + i)·8; whole groups only) with one activation row; result[i] is bit-identical to
    /// <c>DotQ8(w + 256·i, ws + 8·i, …, wStride: 1024, sStride: 32)</c>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotQ8Rows4(byte* w, float* ws, sbyte* x, float* xs, int* c8, int blocks, float* result)
    {
        if (blocks % Group != 0) throw new ArgumentException($"the four-row layout needs whole groups of {Group} blocks, not {blocks} blocks", nameof(blocks));
        if (!QuantDot.UseVnni)
        {
            for (int i = 0; i < 4; i++) result[i] = DotQ8(w + 256 * i, ws + Group * i, x, xs, c8, blocks, 1024, 4 * Group);
            return;
        }
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int groups = blocks / Group;
        for (int g = 0; g < groups; g++)
        {
            byte* wg = w + g * 1024;
            sbyte* xg = x + g * 256;
            float* sg = ws + g * 32;
            // The group's activations once, then each row's 256 bytes in address order (one ascending stream).
            var x0 = Avx.LoadVector256(xg); var x1 = Avx.LoadVector256(xg + 32); var x2 = Avx.LoadVector256(xg + 64); var x3 = Avx.LoadVector256(xg + 96);
            var x4 = Avx.LoadVector256(xg + 128); var x5 = Avx.LoadVector256(xg + 160); var x6 = Avx.LoadVector256(xg + 192); var x7 = Avx.LoadVector256(xg + 224);
            var c = Avx2.ShiftLeftLogical(Avx.LoadVector256(c8 + g * Group), 4);
            var xsv = Avx.LoadVector256(xs + g * Group);
            a0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Row8(wg, x0, x1, x2, x3, x4, x5, x6, x7) - c), Avx.LoadVector256(sg) * xsv, a0);
            a1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Row8(wg + 256, x0, x1, x2, x3, x4, x5, x6, x7) - c), Avx.LoadVector256(sg + 8) * xsv, a1);
            a2 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Row8(wg + 512, x0, x1, x2, x3, x4, x5, x6, x7) - c), Avx.LoadVector256(sg + 16) * xsv, a2);
            a3 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Row8(wg + 768, x0, x1, x2, x3, x4, x5, x6, x7) - c), Avx.LoadVector256(sg + 24) * xsv, a3);
        }
        result[0] = Vector256.Sum(a0); result[1] = Vector256.Sum(a1); result[2] = Vector256.Sum(a2); result[3] = Vector256.Sum(a3);
    }

    // One int8 row's group (256 bytes) against activations in registers; the same chains as DotQ8Vnni (even / odd vectors).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Row8(byte* wg, Vector256<sbyte> x0, Vector256<sbyte> x1, Vector256<sbyte> x2, Vector256<sbyte> x3,
        Vector256<sbyte> x4, Vector256<sbyte> x5, Vector256<sbyte> x6, Vector256<sbyte> x7)
    {
        var p = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Avx.LoadVector256(wg), x0);
        var q = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Avx.LoadVector256(wg + 32), x1);
        p = AvxVnni.MultiplyWideningAndAdd(p, Avx.LoadVector256(wg + 64), x2);
        q = AvxVnni.MultiplyWideningAndAdd(q, Avx.LoadVector256(wg + 96), x3);
        p = AvxVnni.MultiplyWideningAndAdd(p, Avx.LoadVector256(wg + 128), x4);
        q = AvxVnni.MultiplyWideningAndAdd(q, Avx.LoadVector256(wg + 160), x5);
        p = AvxVnni.MultiplyWideningAndAdd(p, Avx.LoadVector256(wg + 192), x6);
        q = AvxVnni.MultiplyWideningAndAdd(q, Avx.LoadVector256(wg + 224), x7);
        return p + q;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotQ8Avx2(byte* w, float* ws, sbyte* x, float* xs, int* c8, int blocks, int wStride, int sStride)
    {
        var acc = Vector256<float>.Zero;
        var flip = Vector256.Create((byte)0x80);
        var ones = Vector256.Create((short)1);
        int groups = blocks / Group;
        for (int g = 0; g < groups; g++)
        {
            var s = Vector256<int>.Zero;
            for (int k = 0; k < 8; k++)
            {
                // Back to signed q, then |q| · (x with q's sign): pmaddubsw cannot saturate (128·127·2 < 32767).
                var q = (Avx.LoadVector256(w + g * wStride + 32 * k) ^ flip).AsSByte();
                var xv = Avx.LoadVector256(x + g * 256 + 32 * k);
                s += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Avx2.Abs(q), Avx2.Sign(xv, q)), ones);
            }
            acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(s), Avx.LoadVector256(ws + g * sStride) * Avx.LoadVector256(xs + g * Group), acc);
        }
        float sum = Vector256.Sum(acc);
        byte* wt = w + groups * wStride - groups * Group * Block;
        float* st = ws + groups * sStride - groups * Group;
        for (int b = groups * Group; b < blocks; b++) sum += TailBlockQ8(wt + b * Block, x + b * Block, c8[b]) * (st[b] * xs[b]);
        return sum;
    }


    /// <summary><see cref="DotQ8"/> of one weight row with four activation rows; bit-identical to single-row calls.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotQ8x4(byte* w, float* ws, sbyte** x, float** xs, int** c8, int blocks, float* result, int wStride = 256, int sStride = Group)
    {
        if (!QuantDot.UseVnni)
        {
            for (int t = 0; t < 4; t++) result[t] = DotQ8(w, ws, x[t], xs[t], c8[t], blocks, wStride, sStride);
            return;
        }
        sbyte* x0 = x[0], x1 = x[1], x2 = x[2], x3 = x[3];
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int groups = blocks / Group;
        for (int g = 0; g < groups; g++)
        {
            int o = g * 256, so = g * Group;
            byte* wg = w + g * wStride;
            Vector256<int> p0 = default, p1 = default, p2 = default, p3 = default, q0 = default, q1 = default, q2 = default, q3 = default;
            for (int k = 0; k < 8; k += 2)
            {
                var wa = Avx.LoadVector256(wg + 32 * k);
                var wb = Avx.LoadVector256(wg + 32 * k + 32);
                int oa = o + 32 * k, ob = oa + 32;
                p0 = AvxVnni.MultiplyWideningAndAdd(p0, wa, Avx.LoadVector256(x0 + oa)); q0 = AvxVnni.MultiplyWideningAndAdd(q0, wb, Avx.LoadVector256(x0 + ob));
                p1 = AvxVnni.MultiplyWideningAndAdd(p1, wa, Avx.LoadVector256(x1 + oa)); q1 = AvxVnni.MultiplyWideningAndAdd(q1, wb, Avx.LoadVector256(x1 + ob));
                p2 = AvxVnni.MultiplyWideningAndAdd(p2, wa, Avx.LoadVector256(x2 + oa)); q2 = AvxVnni.MultiplyWideningAndAdd(q2, wb, Avx.LoadVector256(x2 + ob));
                p3 = AvxVnni.MultiplyWideningAndAdd(p3, wa, Avx.LoadVector256(x3 + oa)); q3 = AvxVnni.MultiplyWideningAndAdd(q3, wb, Avx.LoadVector256(x3 + ob));
            }
            var wsv = Avx.LoadVector256(ws + g * sStride);
            a0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(p0 + q0 - Avx2.ShiftLeftLogical(Avx.LoadVector256(c8[0] + so), 4)), wsv * Avx.LoadVector256(xs[0] + so), a0);
            a1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(p1 + q1 - Avx2.ShiftLeftLogical(Avx.LoadVector256(c8[1] + so), 4)), wsv * Avx.LoadVector256(xs[1] + so), a1);
            a2 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(p2 + q2 - Avx2.ShiftLeftLogical(Avx.LoadVector256(c8[2] + so), 4)), wsv * Avx.LoadVector256(xs[2] + so), a2);
            a3 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(p3 + q3 - Avx2.ShiftLeftLogical(Avx.LoadVector256(c8[3] + so), 4)), wsv * Avx.LoadVector256(xs[3] + so), a3);
        }
        float r0 = Vector256.Sum(a0), r1 = Vector256.Sum(a1), r2 = Vector256.Sum(a2), r3 = Vector256.Sum(a3);
        byte* wt = w + groups * wStride - groups * Group * Block;
        float* st = ws + groups * sStride - groups * Group;
        for (int b = groups * Group; b < blocks; b++)
        {
            byte* wb = wt + b * Block;
            int o = b * Block;
            float d = st[b];
            r0 += TailBlockQ8(wb, x0 + o, c8[0][b]) * (d * xs[0][b]);
            r1 += TailBlockQ8(wb, x1 + o, c8[1][b]) * (d * xs[1][b]);
            r2 += TailBlockQ8(wb, x2 + o, c8[2][b]) * (d * xs[2][b]);
            r3 += TailBlockQ8(wb, x3 + o, c8[3][b]) * (d * xs[3][b]);
        }
        result[0] = r0; result[1] = r1; result[2] = r2; result[3] = r3;
    }
}
