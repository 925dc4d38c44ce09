using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.InteropServices;
using OnDevice.Runtime.Simd;

namespace OnDevice.Compression.Gptq;

/// <summary>The dense linear algebra GPTQ needs: XᵀX accumulation, a Cholesky-based inverse factor, a GEMM update.</summary>
internal static unsafe class Linalg
{
    /// <summary>d·A·dᵀ for a symmetric n×n A (row-major), skipping zero entries of d.</summary>
    public static double Quadratic(ReadOnlySpan<double> d, ReadOnlySpan<double> a)
    {
        int n = d.Length;
        double s = 0;
        for (int i = 0; i < n; i++)
            if (d[i] != 0) s += d[i] * Dot(a.Slice(i * n, n), d);
        return s;
    }

    /// <summary>Dot product of two double spans (vectorized, four independent accumulators).</summary>
    public static double Dot(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        int n = a.Length, i = 0;
        b = b[..n];
        double s = 0;
        ref double pa = ref MemoryMarshal.GetReference(a);
        ref double pb = ref MemoryMarshal.GetReference(b);
        if (Vector512.IsHardwareAccelerated && n >= 32)
        {
            Vector512<double> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; i <= n - 32; i += 32)
            {
                a0 += Vector512.LoadUnsafe(ref pa, (nuint)i) * Vector512.LoadUnsafe(ref pb, (nuint)i);
                a1 += Vector512.LoadUnsafe(ref pa, (nuint)(i + 8)) * Vector512.LoadUnsafe(ref pb, (nuint)(i + 8));
                a2 += Vector512.LoadUnsafe(ref pa, (nuint)(i + 16)) * Vector512.LoadUnsafe(ref pb, (nuint)(i + 16));
                a3 += Vector512.LoadUnsafe(ref pa, (nuint)(i + 24)) * Vector512.LoadUnsafe(ref pb, (nuint)(i + 24));
            }
            for (; i <= n - 8; i += 8) a0 += Vector512.LoadUnsafe(ref pa, (nuint)i) * Vector512.LoadUnsafe(ref pb, (nuint)i);
            s = Vector512.Sum(a0 + a1 + (a2 + a3));
        }
        else if (Vector256.IsHardwareAccelerated && n >= 16)
        {
            Vector256<double> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; i <= n - 16; i += 16)
            {
                a0 += Vector256.LoadUnsafe(ref pa, (nuint)i) * Vector256.LoadUnsafe(ref pb, (nuint)i);
                a1 += Vector256.LoadUnsafe(ref pa, (nuint)(i + 4)) * Vector256.LoadUnsafe(ref pb, (nuint)(i + 4));
                a2 += Vector256.LoadUnsafe(ref pa, (nuint)(i + 8)) * Vector256.LoadUnsafe(ref pb, (nuint)(i + 8));
                a3 += Vector256.LoadUnsafe(ref pa, (nuint)(i + 12)) * Vector256.LoadUnsafe(ref pb, (nuint)(i + 12));
            }
            for (; i <= n - 4; i += 4) a0 += Vector256.LoadUnsafe(ref pa, (nuint)i) * Vector256.LoadUnsafe(ref pb, (nuint)i);
            s = Vector256.Sum(a0 + a1 + (a2 + a3));
        }
        for (; i < n; i++) s += a[i] * b[i];
        return s;
    }

    /// <summary>Scalar twin of <see cref="Dot"/> (the definition; tests check they agree).</summary>
    public static double DotReference(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }

    /// <summary>y −= alpha·x for floats (vectorized).</summary>
    public static void SubScaled(float alpha, ReadOnlySpan<float> x, Span<float> y)
    {
        var vx = MemoryMarshal.Cast<float, Vector<float>>(x);
        var vy = MemoryMarshal.Cast<float, Vector<float>>(y[..x.Length]);
        var va = new Vector<float>(alpha);
        for (int v = 0; v < vx.Length; v++) vy[v] -= va * vx[v];
        for (int i = vx.Length * Vector<float>.Count; i < x.Length; i++) y[i] -= alpha * x[i];
    }

    /// <summary>Rows handled together by the blocked factorizations (each earlier row is read once per block).</summary>
    private const int RowBlock = 16;

    /// <summary>In-place lower Cholesky factor of the symmetric n×n matrix <paramref name="a"/> (row-major; only the
    /// lower triangle is read and the upper is zeroed). False when the matrix is not numerically positive definite.
    /// Rows are factored in blocks: every finished row j is streamed once per block and dotted with each row of the
    /// block while it is in L1 (L[i, j] = (A[i, j] − L[i, 0..j)·L[j, 0..j)) / L[j, j]).</summary>
    public static bool CholeskyLower(double[] a, int n)
    {
        for (int i0 = 0; i0 < n; i0 += RowBlock)
        {
            int i1 = Math.Min(i0 + RowBlock, n);
            for (int j = 0; j < i0; j++)
            {
                var rj = a.AsSpan(j * n, j);
                double djj = a[j * n + j];
                for (int i = i0; i < i1; i++) a[i * n + j] = (a[i * n + j] - Dot(a.AsSpan(i * n, j), rj)) / djj;
            }
            for (int i = i0; i < i1; i++)
            {
                var ri = a.AsSpan(i * n, n);
                for (int j = i0; j <= i; j++)
                {
                    double s = ri[j] - Dot(ri[..j], a.AsSpan(j * n, j));
                    if (i == j)
                    {
                        if (!(s > 0) || !double.IsFinite(s)) return false;
                        ri[i] = Math.Sqrt(s);
                    }
                    else ri[j] = s / a[j * n + j];
                }
                ri[(i + 1)..].Clear();
            }
        }
        return true;
    }

    /// <summary>Unblocked twin of <see cref="CholeskyLower"/> (the definition; tests check they agree).</summary>
    public static bool CholeskyLowerReference(double[] a, int n)
    {
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j <= i; j++)
            {
                double s = a[i * n + j];
                for (int k = 0; k < j; k++) s -= a[i * n + k] * a[j * n + k];
                if (i == j)
                {
                    if (!(s > 0) || !double.IsFinite(s)) return false;
                    a[i * n + i] = Math.Sqrt(s);
                }
                else a[i * n + j] = s / a[j * n + j];
            }
            for (int j = i + 1; j < n; j++) a[i * n + j] = 0;
        }
        return true;
    }

    /// <summary>
    /// (L⁻¹)ᵀ for the lower-triangular n×n matrix <paramref name="l"/> (row-major): an upper-triangular Y whose row j
    /// holds column j of L⁻¹. Each entry is a dot product of two contiguous runs: Y[j, i] = −L[i, j..i)·Y[j, j..i) / L[i, i].
    /// Rows of Y are independent; they are computed in blocks (each row of L read once per block) on up to
    /// <paramref name="threads"/> threads.
    /// </summary>
    public static double[] InvertLowerTransposed(double[] l, int n, int threads = 1)
    {
        var y = new double[(long)n * n];
        int blocks = (n + RowBlock - 1) / RowBlock;
        void Block(int b)
        {
            int j0 = b * RowBlock, j1 = Math.Min(j0 + RowBlock, n);
            for (int j = j0; j < j1; j++) y[j * n + j] = 1 / l[j * n + j];
            for (int i = j0 + 1; i < n; i++)
            {
                double inv = 1 / l[i * n + i];
                for (int j = j0; j < Math.Min(j1, i); j++)
                    y[j * n + i] = -Dot(l.AsSpan(i * n + j, i - j), y.AsSpan(j * n + j, i - j)) * inv;
            }
        }
        if (threads > 1 && n >= 256) Parallel.For(0, blocks, new ParallelOptions { MaxDegreeOfParallelism = threads }, Block);
        else for (int b = 0; b < blocks; b++) Block(b);
        return y;
    }

    /// <summary>
    /// The upper-triangular U with Uᵀ·U = H⁻¹ (the upper Cholesky factor of the inverse, which GPTQ reads row by row),
    /// computed without forming H⁻¹: the Cholesky factor L′ of H with rows and columns reversed gives H = R·Rᵀ with
    /// R = J·L′·J upper, so U = R⁻¹ = J·L′⁻¹·J. Null when H is not numerically positive definite.
    /// </summary>
    public static float[]? UpperInverseFactor(double[] h, int n, int threads = 1)
    {
        var rev = new double[(long)n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++) rev[i * n + j] = h[(n - 1 - i) * n + (n - 1 - j)];
        if (!CholeskyLower(rev, n)) return null;
        var y = InvertLowerTransposed(rev, n, threads); // y[a, b] = (L′⁻¹)[b, a]
        var u = new float[(long)n * n];
        for (int i = 0; i < n; i++)
            for (int j = i; j < n; j++) u[i * n + j] = (float)y[(n - 1 - j) * n + (n - 1 - i)];
        return u;
    }

    /// <summary>C[m, n] (row stride ldc) −= A[m, k] (row stride lda) · B[k, n] (row stride ldb), single precision.</summary>
    public static void SubtractProduct(float* a, int lda, float* b, int ldb, float* c, int ldc, int m, int k, int n)
    {
        if (m == 0 || k == 0 || n == 0) return;
        var packed = (float*)NativeMemory.AlignedAlloc((nuint)Gemm.PackedASize(m, k) * sizeof(float), 64);
        var scratch = (float*)NativeMemory.AlignedAlloc((nuint)Math.Max(16, Gemm.ScratchFloats(k, n, 1)) * sizeof(float), 64);
        try
        {
            Gemm.PackA(a, m, k, lda, 1, -1f, packed);
            Gemm.Multiply(new StridedB(b, ldb, 1, n), packed, m, n, k, c, ldc, accumulate: true, GemmEpilogue.None, null, 1, scratch);
        }
        finally
        {
            NativeMemory.AlignedFree(packed);
            NativeMemory.AlignedFree(scratch);
        }
    }

    /// <summary>XtX[K, K] += Xᵀ·X for X[rows, K] row-major (float product, double accumulation).</summary>
    public static void AccumulateXtX(float* x, int rows, int k, double[] xtx, float[] tmp, int threads)
    {
        if (rows == 0) return;
        if (k <= 24)
        {
            for (int t = 0; t < rows; t++)
            {
                float* r = x + (long)t * k;
                for (int i = 0; i < k; i++)
                {
                    double xi = r[i];
                    if (xi == 0) continue;
                    int o = i * k;
                    for (int j = 0; j < k; j++) xtx[o + j] += xi * r[j];
                }
            }
            return;
        }
        GemmAccumulate(x, x, rows, k, xtx, tmp, threads);
    }

    /// <summary>XtY[K, K] += Xᵀ·Y for X[rows, K] and Y[rows, K] row-major (float product, double accumulation).</summary>
    public static void AccumulateXtY(float* x, float* y, int rows, int k, double[] xty, float[] tmp, int threads)
    {
        if (rows == 0) return;
        if (k <= 24)
        {
            AccumulateXtYReference(x, y, rows, k, xty);
            return;
        }
        GemmAccumulate(x, y, rows, k, xty, tmp, threads);
    }

    /// <summary>acc[K, K] += Xᵀ·Y through the float GEMM (product in <paramref name="tmp"/>, accumulated in double).</summary>
    private static void GemmAccumulate(float* x, float* y, int rows, int k, double[] acc, float[] tmp, int threads)
    {
        var packed = (float*)NativeMemory.AlignedAlloc((nuint)Gemm.PackedASize(k, rows) * sizeof(float), 64);
        var scratch = (float*)NativeMemory.AlignedAlloc((nuint)Math.Max(16, Gemm.ScratchFloats(rows, k, threads)) * sizeof(float), 64);
        try
        {
            Gemm.PackA(x, k, rows, 1, k, 1f, packed);
            fixed (float* c = tmp)
                Gemm.Multiply(new StridedB(y, k, 1, k), packed, k, k, rows, c, k, accumulate: false, GemmEpilogue.None, null, threads, scratch);
        }
        finally
        {
            NativeMemory.AlignedFree(packed);
            NativeMemory.AlignedFree(scratch);
        }
        for (int i = 0; i < k * k; i++) acc[i] += tmp[i];
    }

    /// <summary>Scalar twin of <see cref="AccumulateXtY"/> (double products).</summary>
    public static void AccumulateXtYReference(float* x, float* y, int rows, int k, double[] xty)
    {
        for (int t = 0; t < rows; t++)
        {
            float* a = x + (long)t * k, b = y + (long)t * k;
            for (int i = 0; i < k; i++)
            {
                double xi = a[i];
                if (xi == 0) continue;
                int o = i * k;
                for (int j = 0; j < k; j++) xty[o + j] += xi * b[j];
            }
        }
    }

    /// <summary>
    /// X·A⁻¹ for the symmetric positive definite n×n <paramref name="a"/> and X[m, n] (row-major), by Cholesky
    /// (A = L·Lᵀ, two triangular solves per row); null when A is not numerically positive definite. A is not modified.
    /// </summary>
    public static double[]? SolveRight(double[] x, int m, double[] a, int n, int threads = 1)
    {
        var l = (double[])a.Clone();
        if (!CholeskyLower(l, n)) return null;
        var r = (double[])x.Clone();
        void Row(int row)
        {
            var v = r.AsSpan(row * n, n);
            // z·A = v, i.e. A·zᵀ = vᵀ: L·u = vᵀ (row by row), then Lᵀ·zᵀ = u (column by column, rows of L contiguous).
            for (int i = 0; i < n; i++) v[i] = (v[i] - Dot(l.AsSpan(i * n, i), v[..i])) / l[i * n + i];
            for (int i = n - 1; i >= 0; i--)
            {
                double zi = v[i] / l[i * n + i];
                v[i] = zi;
                var li = l.AsSpan(i * n, i);
                for (int j = 0; j < i; j++) v[j] -= li[j] * zi;
            }
        }
        if (threads > 1 && m > 1) Parallel.For(0, m, new ParallelOptions { MaxDegreeOfParallelism = threads }, Row);
        else for (int row = 0; row < m; row++) Row(row);
        return r;
    }
}
