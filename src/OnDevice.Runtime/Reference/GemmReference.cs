using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Reference;

/// <summary>Scalar definitions of matrix multiplication and the fused epilogue: what the GEMM kernels must reproduce.</summary>
public static class GemmReference
{
    /// <summary>The activation definitions used by fused epilogues.</summary>
    public static float Activate(float x, FusedActivation a) => a.Kind switch
    {
        ActivationKind.None => x,
        ActivationKind.Relu => x > 0 ? x : 0,
        ActivationKind.Clip => Math.Min(Math.Max(x, a.Alpha), a.Beta),
        ActivationKind.HardSigmoid => Math.Max(0, Math.Min(1, a.Alpha * x + a.Beta)),
        ActivationKind.HardSwish => x * Math.Max(0, Math.Min(1, x / 6 + 0.5f)),
        ActivationKind.LeakyRelu => x >= 0 ? x : a.Alpha * x,
        _ => throw new ArgumentOutOfRangeException(nameof(a)),
    };

    /// <summary>
    /// C[M, N] = (accumulate ? C : 0) + Σ_k A[i, k]·B[k, j], then + bias (per row or column), then the activation.
    /// A[i, k] is <c>a[i·aRow + k·aCol]</c> and B[k, j] is <c>b[k·bRow + j·bCol]</c>; C is row-major with leading dimension <paramref name="ldc"/>.
    /// </summary>
    public static void Multiply(ReadOnlySpan<float> a, int aRow, int aCol, ReadOnlySpan<float> b, int bRow, int bCol,
        Span<float> c, int ldc, int m, int n, int k, bool accumulate = false, GemmEpilogue epilogue = default, ReadOnlySpan<float> bias = default)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++) s += (double)a[i * aRow + p * aCol] * b[p * bRow + j * bCol];
                float x = (float)s;
                if (accumulate) x += c[i * ldc + j];
                if (epilogue.Bias == GemmBias.PerRow) x += bias[i];
                else if (epilogue.Bias == GemmBias.PerColumn) x += bias[j];
                c[i * ldc + j] = Activate(x, epilogue.Activation);
            }
    }

    /// <summary>Row-major C[M, N] = A[M, K]·B[K, N].</summary>
    public static float[] Multiply(ReadOnlySpan<float> a, ReadOnlySpan<float> b, int m, int n, int k)
    {
        var c = new float[m * n];
        Multiply(a, k, 1, b, n, 1, c, n, m, n, k);
        return c;
    }
}
