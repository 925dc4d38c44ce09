using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace OnDevice.Runtime.Simd;

/// <summary>Sum and maximum of a contiguous plane (global pooling), widest vectors first.</summary>
public static unsafe class PlaneReduce
{
    /// <summary>Σ x (float accumulation in vector lanes, then across lanes).</summary>
    public static float Sum(ReadOnlySpan<float> x)
    {
        fixed (float* p = x)
        {
            int n = x.Length, i = 0;
            float s = 0;
            if (Vector512.IsHardwareAccelerated && n >= 64)
            {
                Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
                for (; i + 64 <= n; i += 64)
                {
                    a0 += Vector512.Load(p + i);
                    a1 += Vector512.Load(p + i + 16);
                    a2 += Vector512.Load(p + i + 32);
                    a3 += Vector512.Load(p + i + 48);
                }
                s = Vector512.Sum((a0 + a1) + (a2 + a3));
            }
            else if (Vector256.IsHardwareAccelerated && n >= 32)
            {
                Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
                for (; i + 32 <= n; i += 32)
                {
                    a0 += Vector256.Load(p + i);
                    a1 += Vector256.Load(p + i + 8);
                    a2 += Vector256.Load(p + i + 16);
                    a3 += Vector256.Load(p + i + 24);
                }
                s = Vector256.Sum((a0 + a1) + (a2 + a3));
            }
            else if (Vector128.IsHardwareAccelerated && n >= 16)
            {
                Vector128<float> a0 = default, a1 = default, a2 = default, a3 = default;
                for (; i + 16 <= n; i += 16)
                {
                    a0 += Vector128.Load(p + i);
                    a1 += Vector128.Load(p + i + 4);
                    a2 += Vector128.Load(p + i + 8);
                    a3 += Vector128.Load(p + i + 12);
                }
                s = Vector128.Sum((a0 + a1) + (a2 + a3));
            }
            for (; i < n; i++) s += p[i];
            return s;
        }
    }

    /// <summary>max x (NaN handling as x86 maxps: not propagated). The plane must not be empty.</summary>
    public static float Max(ReadOnlySpan<float> x)
    {
        fixed (float* p = x)
        {
            int n = x.Length, i = 0;
            float m = float.NegativeInfinity;
            if (Vector512.IsHardwareAccelerated && n >= 16)
            {
                var a = Vector512.Create(float.NegativeInfinity);
                for (; i + 16 <= n; i += 16) a = Vector512.MaxNative(a, Vector512.Load(p + i));
                for (int l = 0; l < 16; l++) m = Math.Max(m, a.GetElement(l));
            }
            else if (Vector128.IsHardwareAccelerated && n >= 4)
            {
                var a = Vector128.Create(float.NegativeInfinity);
                for (; i + 4 <= n; i += 4) a = Vector128.MaxNative(a, Vector128.Load(p + i));
                for (int l = 0; l < 4; l++) m = Math.Max(m, a.GetElement(l));
            }
            for (; i < n; i++) if (p[i] > m) m = p[i];
            return m;
        }
    }
}

/// <summary>
/// 2-D max pooling of one float plane (any window, stride, dilation, padding) on a padded, column-phase-split copy, like
/// <see cref="DepthwiseConv"/>: out[oy, ox..] = max over taps of phase[(kx·dw) mod sw][row, ox + (kx·dw) div sw ..].
/// Padding is <see cref="float.MinValue"/>, so it never wins over a real element. Definition: <c>Reference.PoolReference</c>.
/// </summary>
public static unsafe class PoolingMax
{
    /// <summary>Geometry of one plane.</summary>
    /// <param name="H">Input height.</param>
    /// <param name="W">Input width.</param>
    /// <param name="KH">Window height.</param>
    /// <param name="KW">Window width.</param>
    /// <param name="SH">Vertical stride.</param>
    /// <param name="SW">Horizontal stride.</param>
    /// <param name="PadTop">Rows of padding above.</param>
    /// <param name="PadLeft">Columns of padding to the left.</param>
    /// <param name="DH">Vertical dilation.</param>
    /// <param name="DW">Horizontal dilation.</param>
    /// <param name="OH">Output height.</param>
    /// <param name="OW">Output width.</param>
    public readonly record struct Shape(int H, int W, int KH, int KW, int SH, int SW, int PadTop, int PadLeft, int DH, int DW, int OH, int OW)
    {
        /// <summary>Padded rows the outputs read.</summary>
        public int PaddedRows => (OH - 1) * SH + (KH - 1) * DH + 1;

        /// <summary>Floats per phase row.</summary>
        public int PhaseRow => Gemm.RoundUp(Gemm.RoundUp(OW, 16) + (KW - 1) * DW / SW + 1, 16);

        /// <summary>Scratch floats <see cref="Plane"/> needs.</summary>
        public int PlaneFloats => PaddedRows * SW * PhaseRow + KH * KW * 2;
    }

    /// <summary>y = max pooling of x (one plane).</summary>
    public static void Plane(in Shape s, float* x, float* y, float* scratch)
    {
        if (s.OH <= 0 || s.OW <= 0) return;
        int rows = s.PaddedRows, L = s.PhaseRow, sw = s.SW;
        float* plane = scratch;
        int* offsets = (int*)(scratch + rows * sw * L);
        const float pad = float.MinValue;
        for (int r = 0; r < rows; r++)
        {
            int iy = r - s.PadTop;
            bool inside = (uint)iy < (uint)s.H;
            float* src = x + (nint)iy * s.W;
            for (int p = 0; p < sw; p++)
            {
                float* dst = plane + ((nint)r * sw + p) * L;
                if (!inside)
                {
                    new Span<float>(dst, L).Fill(pad);
                    continue;
                }
                int first = p - s.PadLeft;
                int lo = first >= 0 ? 0 : Math.Min(L, (-first + sw - 1) / sw);
                int hi = s.W - first <= 0 ? 0 : Math.Min(L, (s.W - first + sw - 1) / sw);
                if (hi < lo) hi = lo;
                new Span<float>(dst, lo).Fill(pad);
                if (sw == 1) Gemm.Copy(src + first + lo, dst + lo, hi - lo);
                else if (sw == 2) Strided.Deinterleave2(src + first + 2 * lo, dst + lo, hi - lo);
                else
                    for (int c = lo; c < hi; c++) dst[c] = src[first + (nint)c * sw];
                new Span<float>(dst + hi, L - hi).Fill(pad);
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
        for (int oy = 0; oy < s.OH; oy++)
            Row(plane + oy * rowStep, offsets, taps, y + (nint)oy * s.OW, s.OW);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Row(float* src, int* offsets, int taps, float* y, int ow)
    {
        int ox = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; ox < ow; ox += 16)
            {
                var a = Vector512.Load(src + offsets[0] + ox);
                for (int t = 1; t < taps; t++) a = Vector512.MaxNative(a, Vector512.Load(src + offsets[t] + ox));
                if (ox + 16 <= ow) a.Store(y + ox);
                else for (int i = 0; i < ow - ox; i++) y[ox + i] = a.GetElement(i);
            }
            return;
        }
        if (Vector256.IsHardwareAccelerated)
        {
            for (; ox < ow; ox += 8)
            {
                var a = Vector256.Load(src + offsets[0] + ox);
                for (int t = 1; t < taps; t++) a = Vector256.MaxNative(a, Vector256.Load(src + offsets[t] + ox));
                if (ox + 8 <= ow) a.Store(y + ox);
                else for (int i = 0; i < ow - ox; i++) y[ox + i] = a.GetElement(i);
            }
            return;
        }
        if (Vector128.IsHardwareAccelerated)
        {
            for (; ox < ow; ox += 4)
            {
                var a = Vector128.Load(src + offsets[0] + ox);
                for (int t = 1; t < taps; t++) a = Vector128.MaxNative(a, Vector128.Load(src + offsets[t] + ox));
                if (ox + 4 <= ow) a.Store(y + ox);
                else for (int i = 0; i < ow - ox; i++) y[ox + i] = a.GetElement(i);
            }
            return;
        }
        for (; ox < ow; ox++)
        {
            float m = src[offsets[0] + ox];
            for (int t = 1; t < taps; t++) m = Math.Max(m, src[offsets[t] + ox]);
            y[ox] = m;
        }
    }
}
