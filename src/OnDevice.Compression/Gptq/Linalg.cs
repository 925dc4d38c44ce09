using System.Numerics;
using System.Runtime.InteropServices;
using OnDevice.Runtime.Simd;

namespace OnDevice.Compression.Gptq;

/// <summary>The dense linear algebra GPTQ needs: XᵀX accumulation, a Cholesky-based inverse factor, a GEMM update.</summary>
internal static unsafe class Linalg
{
    /// <summary>Dot product of two double spans (vectorized).</summary>
    public static double Dot(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        int n = a.Length, i = 0;
        var acc = Vector<double>.Zero;
        var va = MemoryMarshal.Cast<double, Vector<double>>(a);
        var vb = MemoryMarshal.Cast<double, Vector<double>>(b[..n]);
        for (int v = 0; v < va.Length; v++) acc += va[v] * vb[v];
        i = va.Length * Vector<double>.Count;
        double s = Vector.Sum(acc);
        for (; i < n; i++) s += a[i] * b[i];
        return s;
    }

    /// <summary>y += alpha·x (vectorized).</summary>
    public static void Axpy(double alpha, ReadOnlySpan<double> x, Span<double> y)
    {
        var vx = MemoryMarshal.Cast<double, Vector<double>>(x);
        var vy = MemoryMarshal.Cast<double, Vector<double>>(y[..x.Length]);
        var va = new Vector<double>(alpha);
        for (int v = 0; v < vx.Length; v++) vy[v] += va * vx[v];
        for (int i = vx.Length * Vector<double>.Count; i < x.Length; i++) y[i] += alpha * x[i];
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

    /// <summary>In-place lower Cholesky factor of the symmetric n×n matrix <paramref name="a"/> (row-major; only the
    /// lower triangle is read and the upper is zeroed). False when the matrix is not numerically positive definite.</summary>
    public static bool CholeskyLower(double[] a, int n)
    {
        for (int i = 0; i < n; i++)
        {
            var ri = a.AsSpan(i * n, n);
            for (int j = 0; j <= i; j++)
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
        return true;
    }

    /// <summary>Inverse of the lower-triangular n×n matrix <paramref name="l"/> (row-major), lower-triangular.</summary>
    public static double[] InvertLower(double[] l, int n)
    {
        var x = new double[(long)n * n];
        for (int i = 0; i < n; i++)
        {
            var xi = x.AsSpan(i * n, n);
            for (int k = 0; k < i; k++)
            {
                double c = l[i * n + k];
                if (c != 0) Axpy(c, x.AsSpan(k * n, k + 1), xi);
            }
            double inv = 1 / l[i * n + i];
            for (int j = 0; j < i; j++) xi[j] *= -inv;
            xi[i] = inv;
        }
        return x;
    }

    /// <summary>
    /// The upper-triangular U with Uᵀ·U = H⁻¹ (the upper Cholesky factor of the inverse, which GPTQ reads row by row),
    /// computed without forming H⁻¹: the Cholesky factor L′ of H with rows and columns reversed gives H = R·Rᵀ with
    /// R = J·L′·J upper, so U = R⁻¹ = J·L′⁻¹·J. Null when H is not numerically positive definite.
    /// </summary>
    public static float[]? UpperInverseFactor(double[] h, int n)
    {
        var rev = new double[(long)n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++) rev[i * n + j] = h[(n - 1 - i) * n + (n - 1 - j)];
        if (!CholeskyLower(rev, n)) return null;
        var x = InvertLower(rev, n);
        var u = new float[(long)n * n];
        for (int i = 0; i < n; i++)
            for (int j = i; j < n; j++) u[i * n + j] = (float)x[(n - 1 - i) * n + (n - 1 - j)];
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
        var packed = (float*)NativeMemory.AlignedAlloc((nuint)Gemm.PackedASize(k, rows) * sizeof(float), 64);
        var scratch = (float*)NativeMemory.AlignedAlloc((nuint)Math.Max(16, Gemm.ScratchFloats(rows, k, threads)) * sizeof(float), 64);
        try
        {
            Gemm.PackA(x, k, rows, 1, k, 1f, packed);
            fixed (float* c = tmp)
                Gemm.Multiply(new StridedB(x, k, 1, k), packed, k, k, rows, c, k, accumulate: false, GemmEpilogue.None, null, threads, scratch);
        }
        finally
        {
            NativeMemory.AlignedFree(packed);
            NativeMemory.AlignedFree(scratch);
        }
        for (int i = 0; i < k * k; i++) xtx[i] += tmp[i];
    }
}
