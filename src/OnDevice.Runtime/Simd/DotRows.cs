using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace OnDevice.Runtime.Simd;

/// <summary>
/// C[M, N] (+)= A[M, K]·B[N, K]ᵀ as dot products of rows, reading both operands in place (no packing). For few rows of A
/// (a recurrent step with batch 1, a GEMV) with weights that change between runs, this beats packing B: every weight is
/// read once. Up to four rows of A share each load of a B row. Definition: <c>Reference.GemmReference.Multiply</c>.
/// </summary>
public static unsafe class DotRows
{
    /// <summary>C[i, j] = (accumulate ? C[i, j] : 0) + Σ_p A[i, p]·B[j, p].</summary>
    public static void Multiply(float* a, int m, int k, nint lda, float* b, int n, nint ldb, float* c, nint ldc, bool accumulate)
    {
        for (int j = 0; j < n; j++)
        {
            float* bj = b + j * ldb;
            int i = 0;
            for (; i + 4 <= m; i += 4)
            {
                Dot4(a + i * lda, lda, bj, k, out float s0, out float s1, out float s2, out float s3);
                Store(c + i * ldc + j, s0, accumulate);
                Store(c + (i + 1) * ldc + j, s1, accumulate);
                Store(c + (i + 2) * ldc + j, s2, accumulate);
                Store(c + (i + 3) * ldc + j, s3, accumulate);
            }
            for (; i < m; i++) Store(c + i * ldc + j, Dot(a + i * lda, bj, k), accumulate);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, float v, bool accumulate) => *c = accumulate ? *c + v : v;

    /// <summary>Σ x[p]·y[p] with four independent vector accumulators.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot(float* x, float* y, int k)
    {
        int p = 0;
        float s = 0;
        if (Vector512.IsHardwareAccelerated && k >= 16)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; p + 64 <= k; p += 64)
            {
                a0 = Vector512.FusedMultiplyAdd(Vector512.Load(x + p), Vector512.Load(y + p), a0);
                a1 = Vector512.FusedMultiplyAdd(Vector512.Load(x + p + 16), Vector512.Load(y + p + 16), a1);
                a2 = Vector512.FusedMultiplyAdd(Vector512.Load(x + p + 32), Vector512.Load(y + p + 32), a2);
                a3 = Vector512.FusedMultiplyAdd(Vector512.Load(x + p + 48), Vector512.Load(y + p + 48), a3);
            }
            for (; p + 16 <= k; p += 16) a0 = Vector512.FusedMultiplyAdd(Vector512.Load(x + p), Vector512.Load(y + p), a0);
            s = Vector512.Sum((a0 + a1) + (a2 + a3));
        }
        else if (Vector256.IsHardwareAccelerated && k >= 8)
        {
            Vector256<float> a0 = default, a1 = default;
            for (; p + 16 <= k; p += 16)
            {
                a0 = Vector256.MultiplyAddEstimate(Vector256.Load(x + p), Vector256.Load(y + p), a0);
                a1 = Vector256.MultiplyAddEstimate(Vector256.Load(x + p + 8), Vector256.Load(y + p + 8), a1);
            }
            for (; p + 8 <= k; p += 8) a0 = Vector256.MultiplyAddEstimate(Vector256.Load(x + p), Vector256.Load(y + p), a0);
            s = Vector256.Sum(a0 + a1);
        }
        else if (Vector128.IsHardwareAccelerated && k >= 4)
        {
            Vector128<float> a0 = default, a1 = default;
            for (; p + 8 <= k; p += 8)
            {
                a0 = Vector128.MultiplyAddEstimate(Vector128.Load(x + p), Vector128.Load(y + p), a0);
                a1 = Vector128.MultiplyAddEstimate(Vector128.Load(x + p + 4), Vector128.Load(y + p + 4), a1);
            }
            for (; p + 4 <= k; p += 4) a0 = Vector128.MultiplyAddEstimate(Vector128.Load(x + p), Vector128.Load(y + p), a0);
            s = Vector128.Sum(a0 + a1);
        }
        for (; p < k; p++) s += x[p] * y[p];
        return s;
    }

    /// <summary>Four rows of A (<paramref name="lda"/> apart) dotted with one row y.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4(float* x, nint lda, float* y, int k, out float s0, out float s1, out float s2, out float s3)
    {
        int p = 0;
        s0 = s1 = s2 = s3 = 0;
        float* x1 = x + lda, x2 = x + 2 * lda, x3 = x + 3 * lda;
        if (Vector512.IsHardwareAccelerated && k >= 16)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; p + 16 <= k; p += 16)
            {
                var v = Vector512.Load(y + p);
                a0 = Vector512.FusedMultiplyAdd(Vector512.Load(x + p), v, a0);
                a1 = Vector512.FusedMultiplyAdd(Vector512.Load(x1 + p), v, a1);
                a2 = Vector512.FusedMultiplyAdd(Vector512.Load(x2 + p), v, a2);
                a3 = Vector512.FusedMultiplyAdd(Vector512.Load(x3 + p), v, a3);
            }
            (s0, s1, s2, s3) = (Vector512.Sum(a0), Vector512.Sum(a1), Vector512.Sum(a2), Vector512.Sum(a3));
        }
        else if (Vector256.IsHardwareAccelerated && k >= 8)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; p + 8 <= k; p += 8)
            {
                var v = Vector256.Load(y + p);
                a0 = Vector256.MultiplyAddEstimate(Vector256.Load(x + p), v, a0);
                a1 = Vector256.MultiplyAddEstimate(Vector256.Load(x1 + p), v, a1);
                a2 = Vector256.MultiplyAddEstimate(Vector256.Load(x2 + p), v, a2);
                a3 = Vector256.MultiplyAddEstimate(Vector256.Load(x3 + p), v, a3);
            }
            (s0, s1, s2, s3) = (Vector256.Sum(a0), Vector256.Sum(a1), Vector256.Sum(a2), Vector256.Sum(a3));
        }
        else if (Vector128.IsHardwareAccelerated && k >= 4)
        {
            Vector128<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; p + 4 <= k; p += 4)
            {
                var v = Vector128.Load(y + p);
                a0 = Vector128.MultiplyAddEstimate(Vector128.Load(x + p), v, a0);
                a1 = Vector128.MultiplyAddEstimate(Vector128.Load(x1 + p), v, a1);
                a2 = Vector128.MultiplyAddEstimate(Vector128.Load(x2 + p), v, a2);
                a3 = Vector128.MultiplyAddEstimate(Vector128.Load(x3 + p), v, a3);
            }
            (s0, s1, s2, s3) = (Vector128.Sum(a0), Vector128.Sum(a1), Vector128.Sum(a2), Vector128.Sum(a3));
        }
        for (; p < k; p++)
        {
            float v = y[p];
            s0 += x[p] * v;
            s1 += x1[p] * v;
            s2 += x2[p] * v;
            s3 += x3[p] * v;
        }
    }
}
