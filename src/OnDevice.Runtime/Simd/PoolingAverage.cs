using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace OnDevice.Runtime.Simd;

/// <summary>
/// 2-D average pooling of one float plane whose windows all lie inside the input (no padding reached, so every
/// window has KH·KW elements and count_include_pad does not matter): per output row the KH input rows are summed
/// column by column with vectors (in window-row order), then each output sums its KW columns of that row sum and
/// divides by the count. Same sums as the definition (<c>Reference.PoolReference</c>), summed in a different order
/// (float rounding only). <see cref="PlaneScalar"/> is the scalar twin with the same order.
/// </summary>
public static unsafe class PoolingAverage
{
    /// <summary>Geometry of one plane.</summary>
    /// <param name="H">Input height.</param>
    /// <param name="W">Input width.</param>
    /// <param name="KH">Window height.</param>
    /// <param name="KW">Window width.</param>
    /// <param name="SH">Vertical stride.</param>
    /// <param name="SW">Horizontal stride.</param>
    /// <param name="DH">Vertical dilation.</param>
    /// <param name="DW">Horizontal dilation.</param>
    /// <param name="OH">Output height.</param>
    /// <param name="OW">Output width.</param>
    public readonly record struct Shape(int H, int W, int KH, int KW, int SH, int SW, int DH, int DW, int OH, int OW)
    {
        /// <summary>True when every window lies inside the input (the only case this class handles).</summary>
        public bool Inside => OH > 0 && OW > 0 && KH > 0 && KW > 0 && (OH - 1) * SH + (KH - 1) * DH < H && (OW - 1) * SW + (KW - 1) * DW < W;

        /// <summary>Scratch floats <see cref="Plane"/> needs (one row of column sums).</summary>
        public int ScratchFloats => W;
    }

    /// <summary>y = average pooling of x (one plane); <paramref name="scratch"/> holds <see cref="Shape.ScratchFloats"/> floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Plane(in Shape s, float* x, float* y, float* scratch)
    {
        if (!s.Inside) throw new ArgumentException("every pooling window must lie inside the input");
        int ow = s.OW, kw = s.KW, kh = s.KH;
        nint sw = s.SW, dw = s.DW;
        float count = kh * kw;
        // Columns the outputs read: [0, last].
        int cols = (ow - 1) * s.SW + (kw - 1) * s.DW + 1;
        for (int oy = 0; oy < s.OH; oy++)
        {
            float* first = x + (nint)oy * s.SH * s.W;
            SumRows(first, (nint)s.DH * s.W, kh, scratch, cols);
            float* yr = y + (nint)oy * ow;
            if (kw == 1 && sw == 1) DivideInto(scratch, count, yr, ow);
            else if (kw == 2 && sw == 2 && dw == 1) PairSums(scratch, count, yr, ow);
            else
                for (int ox = 0; ox < ow; ox++)
                {
                    float* c = scratch + ox * sw;
                    float sum = c[0];
                    for (int kx = 1; kx < kw; kx++) sum += c[kx * dw];
                    yr[ox] = sum / count;
                }
        }
    }

    /// <summary>The scalar twin of <see cref="Plane"/> (same summation order).</summary>
    public static void PlaneScalar(in Shape s, float* x, float* y)
    {
        if (!s.Inside) throw new ArgumentException("every pooling window must lie inside the input");
        float count = s.KH * s.KW;
        for (int oy = 0; oy < s.OH; oy++)
            for (int ox = 0; ox < s.OW; ox++)
            {
                float sum = 0;
                for (int kx = 0; kx < s.KW; kx++)
                {
                    float* col = x + (nint)oy * s.SH * s.W + (nint)ox * s.SW + (nint)kx * s.DW;
                    float c = col[0];
                    for (int ky = 1; ky < s.KH; ky++) c += col[(nint)ky * s.DH * s.W];
                    sum = kx == 0 ? c : sum + c;
                }
                y[(nint)oy * s.OW + ox] = sum / count;
            }
    }

    /// <summary>dst[c] = Σ_k src[k·stride + c] for c &lt; n, summed in k order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SumRows(float* src, nint stride, int rows, float* dst, int n)
    {
        int c = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; c + 16 <= n; c += 16)
            {
                var a = Vector512.Load(src + c);
                for (int k = 1; k < rows; k++) a += Vector512.Load(src + k * stride + c);
                a.Store(dst + c);
            }
        if (Vector256.IsHardwareAccelerated)
            for (; c + 8 <= n; c += 8)
            {
                var a = Vector256.Load(src + c);
                for (int k = 1; k < rows; k++) a += Vector256.Load(src + k * stride + c);
                a.Store(dst + c);
            }
        for (; c < n; c++)
        {
            float a = src[c];
            for (int k = 1; k < rows; k++) a += src[k * stride + c];
            dst[c] = a;
        }
    }

    /// <summary>dst[i] = (src[2i] + src[2i + 1]) / count (2-wide windows at stride 2).</summary>
    private static void PairSums(float* src, float count, float* dst, int n)
    {
        int i = 0;
        if (Avx512F.IsSupported)
        {
            var d = Vector512.Create(count);
            var evens = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            var odds = evens + Vector512<int>.One;
            for (; i + 16 <= n; i += 16)
            {
                Vector512<float> lo = Vector512.Load(src + 2 * i), hi = Vector512.Load(src + 2 * i + 16);
                ((Avx512F.PermuteVar16x32x2(lo, evens, hi) + Avx512F.PermuteVar16x32x2(lo, odds, hi)) / d).Store(dst + i);
            }
        }
        for (; i < n; i++) dst[i] = (src[2 * i] + src[2 * i + 1]) / count;
    }

    private static void DivideInto(float* src, float count, float* dst, int n)
    {
        int c = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var d = Vector512.Create(count);
            for (; c + 16 <= n; c += 16) (Vector512.Load(src + c) / d).Store(dst + c);
        }
        for (; c < n; c++) dst[c] = src[c] / count;
    }
}
