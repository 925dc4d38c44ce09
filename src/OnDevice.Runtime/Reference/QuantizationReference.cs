namespace OnDevice.Runtime.Reference;

/// <summary>Scalar definitions of the low-bit kernels: what the integer GEMM, integer convolution and 4-bit matmul must reproduce.</summary>
public static class QuantizationReference
{
    /// <summary>
    /// C[i, j] = Σ_k (a[i·k + kk] − za[i]) · (b[kk·n + j] − zb[j]) in 64-bit, returned wrapped to int32 (as the kernels
    /// produce it). <paramref name="za"/> has 1 or M values, <paramref name="zb"/> 1 or N.
    /// </summary>
    public static int[] IntegerMatMul(ReadOnlySpan<int> a, ReadOnlySpan<int> b, int m, int k, int n, ReadOnlySpan<int> za, ReadOnlySpan<int> zb)
    {
        var c = new int[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                long s = 0;
                int zai = za.Length == 0 ? 0 : za[za.Length == 1 ? 0 : i];
                int zbj = zb.Length == 0 ? 0 : zb[zb.Length == 1 ? 0 : j];
                for (int kk = 0; kk < k; kk++) s += (long)(a[i * k + kk] - zai) * (b[kk * n + j] - zbj);
                c[i * n + j] = unchecked((int)s);
            }
        return c;
    }

    /// <summary>
    /// Integer 2-D convolution (NCHW), int32 output: Σ (x − zx)·(w − zw[oc]) over the window, padding reading as zx
    /// (so contributing 0). x is [n, c, h, w], w is [m, c/group, kh, kw].
    /// </summary>
    public static int[] ConvInteger2D(ReadOnlySpan<int> x, int[] xShape, int zx, ReadOnlySpan<int> w, int[] wShape, ReadOnlySpan<int> zw,
        int group, int[] strides, int[] pads, int[] dilations, out int[] yShape)
    {
        int n = xShape[0], c = xShape[1], h = xShape[2], wd = xShape[3];
        int m = wShape[0], cg = wShape[1], kh = wShape[2], kw = wShape[3];
        int oh = (h + pads[0] + pads[2] - ((kh - 1) * dilations[0] + 1)) / strides[0] + 1;
        int ow = (wd + pads[1] + pads[3] - ((kw - 1) * dilations[1] + 1)) / strides[1] + 1;
        yShape = [n, m, oh, ow];
        var y = new int[n * m * oh * ow];
        int mg = m / group;
        for (int b = 0; b < n; b++)
            for (int oc = 0; oc < m; oc++)
            {
                int g = oc / mg;
                int z = zw.Length == 1 ? zw[0] : zw[oc];
                for (int oy = 0; oy < oh; oy++)
                    for (int ox = 0; ox < ow; ox++)
                    {
                        long s = 0;
                        for (int ci = 0; ci < cg; ci++)
                            for (int ky = 0; ky < kh; ky++)
                                for (int kx = 0; kx < kw; kx++)
                                {
                                    int iy = oy * strides[0] - pads[0] + ky * dilations[0], ix = ox * strides[1] - pads[1] + kx * dilations[1];
                                    int xv = iy < 0 || iy >= h || ix < 0 || ix >= wd ? zx : x[((b * c + g * cg + ci) * h + iy) * wd + ix];
                                    s += (long)(xv - zx) * (w[((oc * cg + ci) * kh + ky) * kw + kx] - z);
                                }
                        y[((b * m + oc) * oh + oy) * ow + ox] = unchecked((int)s);
                    }
            }
        return y;
    }

    /// <summary>
    /// MatMulNBits by definition: B dequantized to float, (q − zp)·scale per block of K, then Y = A·Bᵀ (+ bias), in
    /// double. <paramref name="q"/>[n, k] holds the unpacked quantized values, <paramref name="scales"/>[n, blocks],
    /// <paramref name="zeroPoints"/>[n, blocks] (float, so both integer and float zero points fit).
    /// </summary>
    public static float[] MatMulNBits(ReadOnlySpan<float> a, int m, int k, ReadOnlySpan<int> q, int n, int blockSize,
        ReadOnlySpan<float> scales, ReadOnlySpan<float> zeroPoints, ReadOnlySpan<float> bias)
    {
        int blocks = (k + blockSize - 1) / blockSize;
        var y = new float[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int kk = 0; kk < k; kk++)
                {
                    int bl = kk / blockSize;
                    double wv = (q[j * k + kk] - (double)zeroPoints[j * blocks + bl]) * scales[j * blocks + bl];
                    s += a[i * k + kk] * wv;
                }
                y[i * n + j] = (float)(s + (bias.Length > 0 ? bias[j] : 0));
            }
        return y;
    }
}
