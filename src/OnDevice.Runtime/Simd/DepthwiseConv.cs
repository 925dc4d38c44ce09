using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace OnDevice.Runtime.Simd;

/// <summary>
/// Depthwise 2-D convolution of one channel plane (any window, stride, dilation, padding). The plane is first copied
/// into scratch with its zero padding and split by column phase (column x lands in phase x mod stride_w), so every tap
/// of every output row reads one contiguous run: out[oy, ox..] += w[ky, kx] · phase[(kx·dw) mod sw][row, ox + (kx·dw) div sw ..].
/// Four vectors of outputs, each with even and odd taps summed separately, give eight independent FMA chains; the
/// vectors left over after whole 64-wide blocks are done for four rows at once, again eight chains. The definition is <c>Reference.ConvReference</c>.
/// </summary>
public static unsafe class DepthwiseConv
{
    /// <summary>Geometry of one depthwise channel.</summary>
    /// <param name="H">Input height.</param>
    /// <param name="W">Input width.</param>
    /// <param name="KH">Window height.</param>
    /// <param name="KW">Window width.</param>
    /// <param name="SH">Vertical stride.</param>
    /// <param name="SW">Horizontal stride.</param>
    /// <param name="PadTop">Rows of zero padding above.</param>
    /// <param name="PadLeft">Columns of zero padding to the left.</param>
    /// <param name="DH">Vertical dilation.</param>
    /// <param name="DW">Horizontal dilation.</param>
    /// <param name="OH">Output height.</param>
    /// <param name="OW">Output width.</param>
    public readonly record struct Shape(int H, int W, int KH, int KW, int SH, int SW, int PadTop, int PadLeft, int DH, int DW, int OH, int OW)
    {
        /// <summary>Padded rows the outputs read.</summary>
        public int PaddedRows => (OH - 1) * SH + (KH - 1) * DH + 1;

        /// <summary>Floats per phase row (outputs rounded up to whole vectors, plus the window's reach, rounded to 16).</summary>
        public int PhaseRow => Gemm.RoundUp(Gemm.RoundUp(OW, 16) + (KW - 1) * DW / SW + 1, 16);

        /// <summary>Scratch floats <see cref="Channel"/> needs.</summary>
        public int PlaneFloats => PaddedRows * SW * PhaseRow + KH * KW * 2;
    }

    /// <summary>y[oy, ox] = act(bias + Σ w[ky, kx]·x[oy·sh − pt + ky·dh, ox·sw − pl + kx·dw]) for one channel.</summary>
    public static void Channel(in Shape s, float* x, float* w, float bias, FusedActivation act, float* y, float* scratch) =>
        Compute(s, x, null, false, 0, w, bias, act, y, scratch);

    /// <summary>
    /// <see cref="Channel"/> on 8-bit inputs: x − <paramref name="zx"/> (exact in float) is converted while the padded
    /// plane is built, so the integer path needs no separate dequantized copy of the channel.
    /// </summary>
    public static void ChannelFromBytes(in Shape s, byte* x, bool signedX, int zx, float* w, float bias, FusedActivation act, float* y, float* scratch) =>
        Compute(s, null, x, signedX, zx, w, bias, act, y, scratch);

    private static void Compute(in Shape s, float* x, byte* xb, bool signedX, int zx, float* w, float bias, FusedActivation act, float* y, float* scratch)
    {
        if (s.OH <= 0 || s.OW <= 0) return;
        int rows = s.PaddedRows, L = s.PhaseRow, sw = s.SW;
        float* plane = scratch;
        int* offsets = (int*)(scratch + rows * sw * L);
        // A phase row's bytes for the strided byte path (the scalar conversion cost more than the convolution itself).
        byte* gathered = null;
        if (xb != null && sw > 1 && L <= 4096)
        {
            byte* buffer = stackalloc byte[L];
            gathered = buffer;
        }
        // Padded, phase-split copy of the plane.
        for (int r = 0; r < rows; r++)
        {
            int iy = r - s.PadTop;
            bool inside = (uint)iy < (uint)s.H;
            float* src = x + (nint)iy * s.W;
            byte* srcb = xb + (nint)iy * s.W;
            for (int p = 0; p < sw; p++)
            {
                float* dst = plane + ((nint)r * sw + p) * L;
                if (!inside)
                {
                    new Span<float>(dst, L).Clear();
                    continue;
                }
                // dst[c] = x[iy, c·sw + p − pl] where inside the row.
                int first = p - s.PadLeft;
                int lo = first >= 0 ? 0 : Math.Min(L, (-first + sw - 1) / sw);
                int hi = s.W - first <= 0 ? 0 : Math.Min(L, (s.W - first + sw - 1) / sw);
                if (hi < lo) hi = lo;
                new Span<float>(dst, lo).Clear();
                if (xb != null)
                {
                    if (sw == 1) QuantizeVectors.Dequantize(new ReadOnlySpan<byte>(srcb + first + lo, hi - lo), signedX, 1f, zx, new Span<float>(dst + lo, hi - lo));
                    else if (gathered != null)
                    {
                        // Strided: the phase's bytes gathered first (vector even-byte gathers for stride 2), then the same
                        // vector conversion as stride 1 (x − zx is exact in float: identical values to the scalar loop).
                        Kernels.Quantization.IntegerConvCore.CopyStrided(srcb + first + (nint)lo * sw, sw, gathered, hi - lo);
                        QuantizeVectors.Dequantize(new ReadOnlySpan<byte>(gathered, hi - lo), signedX, 1f, zx, new Span<float>(dst + lo, hi - lo));
                    }
                    else
                        for (int c = lo; c < hi; c++)
                        {
                            byte v = srcb[first + (nint)c * sw];
                            dst[c] = (signedX ? (sbyte)v : v) - zx;
                        }
                }
                else if (sw == 1) Gemm.Copy(src + first + lo, dst + lo, hi - lo);
                else if (sw == 2) Strided.Deinterleave2(src + first + 2 * lo, dst + lo, hi - lo);
                else
                    for (int c = lo; c < hi; c++) dst[c] = src[first + (nint)c * sw];
                new Span<float>(dst + hi, L - hi).Clear();
            }
        }
        int taps = s.KH * s.KW;
        for (int ky = 0; ky < s.KH; ky++)
            for (int kx = 0; kx < s.KW; kx++)
            {
                int off = kx * s.DW;
                offsets[ky * s.KW + kx] = (ky * s.DH * sw + off % sw) * L + off / sw;
            }
        nint rowStep = (nint)s.SH * sw * L;
        if (Vector512.IsHardwareAccelerated && s.OW % 64 != 0)
        {
            // Whole 64-wide blocks row by row (eight FMA chains each); the last one to three vectors of every row are
            // done four rows at a time, so they also run eight independent chains instead of two.
            int wide = s.OW / 64 * 64;
            if (wide > 0)
                for (int oy = 0; oy < s.OH; oy++)
                    Row(plane + oy * rowStep, offsets, taps, w, bias, act, y + (nint)oy * s.OW, wide);
            for (int ox = wide; ox < s.OW; ox += 16)
            {
                int count = Math.Min(16, s.OW - ox);
                int oy = 0;
                for (; oy + 4 <= s.OH; oy += 4)
                    Tail4(plane + oy * rowStep + ox, rowStep, offsets, taps, w, bias, act, y + (nint)oy * s.OW + ox, s.OW, count);
                for (; oy < s.OH; oy++)
                    Tail1(plane + oy * rowStep + ox, offsets, taps, w, bias, act, y + (nint)oy * s.OW + ox, count);
            }
            return;
        }
        for (int oy = 0; oy < s.OH; oy++)
            Row(plane + oy * rowStep, offsets, taps, w, bias, act, y + (nint)oy * s.OW, s.OW);
    }

    /// <summary>
    /// One 16-wide output vector (of which <paramref name="count"/> are stored) in four consecutive output rows, with the
    /// same arithmetic as <see cref="Row"/>'s single-vector loop (bias and even taps in one chain, odd taps in another).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tail4(float* src, nint rowStep, int* offsets, int taps, float* w, float bias, FusedActivation act, float* y, int ow, int count)
    {
        var vb = Vector512.Create(bias);
        Vector512<float> a0 = vb, a1 = vb, a2 = vb, a3 = vb;
        Vector512<float> e0 = default, e1 = default, e2 = default, e3 = default;
        float* s1 = src + rowStep, s2 = src + 2 * rowStep, s3 = src + 3 * rowStep;
        int t = 0;
        for (; t + 2 <= taps; t += 2)
        {
            nint o = offsets[t], u = offsets[t + 1];
            var wt = Vector512.Create(w[t]);
            var wu = Vector512.Create(w[t + 1]);
            a0 = Vector512.FusedMultiplyAdd(wt, Vector512.Load(src + o), a0);
            a1 = Vector512.FusedMultiplyAdd(wt, Vector512.Load(s1 + o), a1);
            a2 = Vector512.FusedMultiplyAdd(wt, Vector512.Load(s2 + o), a2);
            a3 = Vector512.FusedMultiplyAdd(wt, Vector512.Load(s3 + o), a3);
            e0 = Vector512.FusedMultiplyAdd(wu, Vector512.Load(src + u), e0);
            e1 = Vector512.FusedMultiplyAdd(wu, Vector512.Load(s1 + u), e1);
            e2 = Vector512.FusedMultiplyAdd(wu, Vector512.Load(s2 + u), e2);
            e3 = Vector512.FusedMultiplyAdd(wu, Vector512.Load(s3 + u), e3);
        }
        if (t < taps)
        {
            nint o = offsets[t];
            var wt = Vector512.Create(w[t]);
            a0 = Vector512.FusedMultiplyAdd(wt, Vector512.Load(src + o), a0);
            a1 = Vector512.FusedMultiplyAdd(wt, Vector512.Load(s1 + o), a1);
            a2 = Vector512.FusedMultiplyAdd(wt, Vector512.Load(s2 + o), a2);
            a3 = Vector512.FusedMultiplyAdd(wt, Vector512.Load(s3 + o), a3);
        }
        Store(act.Apply(a0 + e0), y, count);
        Store(act.Apply(a1 + e1), y + ow, count);
        Store(act.Apply(a2 + e2), y + 2 * (nint)ow, count);
        Store(act.Apply(a3 + e3), y + 3 * (nint)ow, count);
    }

    /// <summary>One 16-wide output vector of one row (the rows <see cref="Tail4"/> leaves over); same arithmetic.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tail1(float* src, int* offsets, int taps, float* w, float bias, FusedActivation act, float* y, int count)
    {
        Vector512<float> a0 = Vector512.Create(bias), e0 = default;
        int t = 0;
        for (; t + 2 <= taps; t += 2)
        {
            a0 = Vector512.FusedMultiplyAdd(Vector512.Create(w[t]), Vector512.Load(src + offsets[t]), a0);
            e0 = Vector512.FusedMultiplyAdd(Vector512.Create(w[t + 1]), Vector512.Load(src + offsets[t + 1]), e0);
        }
        if (t < taps) a0 = Vector512.FusedMultiplyAdd(Vector512.Create(w[t]), Vector512.Load(src + offsets[t]), a0);
        Store(act.Apply(a0 + e0), y, count);
    }

    private static void Store(Vector512<float> v, float* dst, int count)
    {
        if (count == 16) v.Store(dst);
        else StorePartial(v, dst, count);
    }

    /// <summary>One output row: out[ox] = act(bias + Σ_t w[t]·src[offsets[t] + ox]).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Row(float* src, int* offsets, int taps, float* w, float bias, FusedActivation act, float* y, int ow)
    {
        int ox = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var vb = Vector512.Create(bias);
            for (; ox + 64 <= ow; ox += 64)
            {
                Vector512<float> a0 = vb, a1 = vb, a2 = vb, a3 = vb;
                Vector512<float> e0 = default, e1 = default, e2 = default, e3 = default;
                int t = 0;
                for (; t + 2 <= taps; t += 2)
                {
                    float* p = src + offsets[t] + ox;
                    float* q = src + offsets[t + 1] + ox;
                    var wt = Vector512.Create(w[t]);
                    var wu = Vector512.Create(w[t + 1]);
                    a0 = Vector512.FusedMultiplyAdd(wt, Vector512.Load(p), a0);
                    a1 = Vector512.FusedMultiplyAdd(wt, Vector512.Load(p + 16), a1);
                    a2 = Vector512.FusedMultiplyAdd(wt, Vector512.Load(p + 32), a2);
                    a3 = Vector512.FusedMultiplyAdd(wt, Vector512.Load(p + 48), a3);
                    e0 = Vector512.FusedMultiplyAdd(wu, Vector512.Load(q), e0);
                    e1 = Vector512.FusedMultiplyAdd(wu, Vector512.Load(q + 16), e1);
                    e2 = Vector512.FusedMultiplyAdd(wu, Vector512.Load(q + 32), e2);
                    e3 = Vector512.FusedMultiplyAdd(wu, Vector512.Load(q + 48), e3);
                }
                if (t < taps)
                {
                    float* p = src + offsets[t] + ox;
                    var wt = Vector512.Create(w[t]);
                    a0 = Vector512.FusedMultiplyAdd(wt, Vector512.Load(p), a0);
                    a1 = Vector512.FusedMultiplyAdd(wt, Vector512.Load(p + 16), a1);
                    a2 = Vector512.FusedMultiplyAdd(wt, Vector512.Load(p + 32), a2);
                    a3 = Vector512.FusedMultiplyAdd(wt, Vector512.Load(p + 48), a3);
                }
                act.Apply(a0 + e0).Store(y + ox);
                act.Apply(a1 + e1).Store(y + ox + 16);
                act.Apply(a2 + e2).Store(y + ox + 32);
                act.Apply(a3 + e3).Store(y + ox + 48);
            }
            for (; ox < ow; ox += 16)
            {
                Vector512<float> a0 = vb, e0 = default;
                int t = 0;
                for (; t + 2 <= taps; t += 2)
                {
                    a0 = Vector512.FusedMultiplyAdd(Vector512.Create(w[t]), Vector512.Load(src + offsets[t] + ox), a0);
                    e0 = Vector512.FusedMultiplyAdd(Vector512.Create(w[t + 1]), Vector512.Load(src + offsets[t + 1] + ox), e0);
                }
                if (t < taps) a0 = Vector512.FusedMultiplyAdd(Vector512.Create(w[t]), Vector512.Load(src + offsets[t] + ox), a0);
                a0 = act.Apply(a0 + e0);
                if (ox + 16 <= ow) a0.Store(y + ox);
                else StorePartial(a0, y + ox, ow - ox);
            }
            return;
        }
        if (Vector256.IsHardwareAccelerated)
        {
            var vb = Vector256.Create(bias);
            for (; ox + 32 <= ow; ox += 32)
            {
                Vector256<float> a0 = vb, a1 = vb, a2 = vb, a3 = vb;
                Vector256<float> e0 = default, e1 = default, e2 = default, e3 = default;
                int t = 0;
                for (; t + 2 <= taps; t += 2)
                {
                    float* p = src + offsets[t] + ox;
                    float* q = src + offsets[t + 1] + ox;
                    var wt = Vector256.Create(w[t]);
                    var wu = Vector256.Create(w[t + 1]);
                    a0 = Vector256.MultiplyAddEstimate(wt, Vector256.Load(p), a0);
                    a1 = Vector256.MultiplyAddEstimate(wt, Vector256.Load(p + 8), a1);
                    a2 = Vector256.MultiplyAddEstimate(wt, Vector256.Load(p + 16), a2);
                    a3 = Vector256.MultiplyAddEstimate(wt, Vector256.Load(p + 24), a3);
                    e0 = Vector256.MultiplyAddEstimate(wu, Vector256.Load(q), e0);
                    e1 = Vector256.MultiplyAddEstimate(wu, Vector256.Load(q + 8), e1);
                    e2 = Vector256.MultiplyAddEstimate(wu, Vector256.Load(q + 16), e2);
                    e3 = Vector256.MultiplyAddEstimate(wu, Vector256.Load(q + 24), e3);
                }
                if (t < taps)
                {
                    float* p = src + offsets[t] + ox;
                    var wt = Vector256.Create(w[t]);
                    a0 = Vector256.MultiplyAddEstimate(wt, Vector256.Load(p), a0);
                    a1 = Vector256.MultiplyAddEstimate(wt, Vector256.Load(p + 8), a1);
                    a2 = Vector256.MultiplyAddEstimate(wt, Vector256.Load(p + 16), a2);
                    a3 = Vector256.MultiplyAddEstimate(wt, Vector256.Load(p + 24), a3);
                }
                act.Apply(a0 + e0).Store(y + ox);
                act.Apply(a1 + e1).Store(y + ox + 8);
                act.Apply(a2 + e2).Store(y + ox + 16);
                act.Apply(a3 + e3).Store(y + ox + 24);
            }
            for (; ox < ow; ox += 8)
            {
                Vector256<float> a0 = vb, e0 = default;
                int t = 0;
                for (; t + 2 <= taps; t += 2)
                {
                    a0 = Vector256.MultiplyAddEstimate(Vector256.Create(w[t]), Vector256.Load(src + offsets[t] + ox), a0);
                    e0 = Vector256.MultiplyAddEstimate(Vector256.Create(w[t + 1]), Vector256.Load(src + offsets[t + 1] + ox), e0);
                }
                if (t < taps) a0 = Vector256.MultiplyAddEstimate(Vector256.Create(w[t]), Vector256.Load(src + offsets[t] + ox), a0);
                a0 = act.Apply(a0 + e0);
                if (ox + 8 <= ow) a0.Store(y + ox);
                else StorePartial(a0, y + ox, ow - ox);
            }
            return;
        }
        if (Vector128.IsHardwareAccelerated)
        {
            var vb = Vector128.Create(bias);
            for (; ox + 16 <= ow; ox += 16)
            {
                Vector128<float> a0 = vb, a1 = vb, a2 = vb, a3 = vb;
                Vector128<float> e0 = default, e1 = default, e2 = default, e3 = default;
                int t = 0;
                for (; t + 2 <= taps; t += 2)
                {
                    float* p = src + offsets[t] + ox;
                    float* q = src + offsets[t + 1] + ox;
                    var wt = Vector128.Create(w[t]);
                    var wu = Vector128.Create(w[t + 1]);
                    a0 = Vector128.MultiplyAddEstimate(wt, Vector128.Load(p), a0);
                    a1 = Vector128.MultiplyAddEstimate(wt, Vector128.Load(p + 4), a1);
                    a2 = Vector128.MultiplyAddEstimate(wt, Vector128.Load(p + 8), a2);
                    a3 = Vector128.MultiplyAddEstimate(wt, Vector128.Load(p + 12), a3);
                    e0 = Vector128.MultiplyAddEstimate(wu, Vector128.Load(q), e0);
                    e1 = Vector128.MultiplyAddEstimate(wu, Vector128.Load(q + 4), e1);
                    e2 = Vector128.MultiplyAddEstimate(wu, Vector128.Load(q + 8), e2);
                    e3 = Vector128.MultiplyAddEstimate(wu, Vector128.Load(q + 12), e3);
                }
                if (t < taps)
                {
                    float* p = src + offsets[t] + ox;
                    var wt = Vector128.Create(w[t]);
                    a0 = Vector128.MultiplyAddEstimate(wt, Vector128.Load(p), a0);
                    a1 = Vector128.MultiplyAddEstimate(wt, Vector128.Load(p + 4), a1);
                    a2 = Vector128.MultiplyAddEstimate(wt, Vector128.Load(p + 8), a2);
                    a3 = Vector128.MultiplyAddEstimate(wt, Vector128.Load(p + 12), a3);
                }
                act.Apply(a0 + e0).Store(y + ox);
                act.Apply(a1 + e1).Store(y + ox + 4);
                act.Apply(a2 + e2).Store(y + ox + 8);
                act.Apply(a3 + e3).Store(y + ox + 12);
            }
            for (; ox < ow; ox += 4)
            {
                Vector128<float> a0 = vb, e0 = default;
                int t = 0;
                for (; t + 2 <= taps; t += 2)
                {
                    a0 = Vector128.MultiplyAddEstimate(Vector128.Create(w[t]), Vector128.Load(src + offsets[t] + ox), a0);
                    e0 = Vector128.MultiplyAddEstimate(Vector128.Create(w[t + 1]), Vector128.Load(src + offsets[t + 1] + ox), e0);
                }
                if (t < taps) a0 = Vector128.MultiplyAddEstimate(Vector128.Create(w[t]), Vector128.Load(src + offsets[t] + ox), a0);
                a0 = act.Apply(a0 + e0);
                if (ox + 4 <= ow) a0.Store(y + ox);
                else StorePartial(a0, y + ox, ow - ox);
            }
            return;
        }
        for (; ox < ow; ox++)
        {
            float acc = bias;
            for (int t = 0; t < taps; t++) acc += w[t] * src[offsets[t] + ox];
            y[ox] = act.Apply(acc);
        }
    }

    private static void StorePartial(Vector512<float> v, float* dst, int count)
    {
        float* tmp = stackalloc float[16];
        v.Store(tmp);
        for (int i = 0; i < count; i++) dst[i] = tmp[i];
    }

    private static void StorePartial(Vector256<float> v, float* dst, int count)
    {
        float* tmp = stackalloc float[8];
        v.Store(tmp);
        for (int i = 0; i < count; i++) dst[i] = tmp[i];
    }

    private static void StorePartial(Vector128<float> v, float* dst, int count)
    {
        float* tmp = stackalloc float[4];
        v.Store(tmp);
        for (int i = 0; i < count; i++) dst[i] = tmp[i];
    }
}
