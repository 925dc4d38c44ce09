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
        ActivationKind.HardSwish => x * Math.Max(0, Math.Min(1, a.Alpha * x + a.Beta)),
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

    /// <summary>numpy matmul: 1-D operands promoted (and the added dimension dropped), batch dimensions broadcast.</summary>
    public static (float[] Values, int[] Shape) MatMul(ReadOnlySpan<float> a, int[] aShape, ReadOnlySpan<float> b, int[] bShape)
    {
        bool aVec = aShape.Length == 1, bVec = bShape.Length == 1;
        int m = aVec ? 1 : aShape[^2], k = aShape[^1], n = bVec ? 1 : bShape[^1];
        if ((bVec ? bShape[0] : bShape[^2]) != k) throw new InvalidOperationException("inner dimensions differ");
        int[] ab = aVec ? [] : aShape[..^2], bb = bVec ? [] : bShape[..^2];
        int rank = Math.Max(ab.Length, bb.Length);
        var batch = new int[rank];
        for (int d = 0; d < rank; d++)
        {
            int da = d - (rank - ab.Length) >= 0 ? ab[d - (rank - ab.Length)] : 1;
            int db = d - (rank - bb.Length) >= 0 ? bb[d - (rank - bb.Length)] : 1;
            if (da != db && da != 1 && db != 1) throw new InvalidOperationException("batch dimensions do not broadcast");
            batch[d] = da == 1 ? db : da;
        }
        int batches = batch.Aggregate(1, (p, d) => p * d);
        var y = new float[batches * m * n];
        var idx = new int[rank];
        for (int t = 0; t < batches; t++)
        {
            int rem = t;
            for (int d = rank - 1; d >= 0; d--) { idx[d] = rem % batch[d]; rem /= batch[d]; }
            int ai = Flat(ab, idx, rank), bi = Flat(bb, idx, rank);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double s = 0;
                    for (int p = 0; p < k; p++) s += (double)a[(ai * m + i) * k + p] * b[(bi * k + p) * n + j];
                    y[(t * m + i) * n + j] = (float)s;
                }
        }
        var shape = new List<int>(batch);
        if (!aVec) shape.Add(m);
        if (!bVec) shape.Add(n);
        return (y, [.. shape]);

        static int Flat(int[] own, int[] idx, int rank)
        {
            int off = 0;
            for (int d = 0; d < own.Length; d++) off = off * own[d] + (own[d] == 1 ? 0 : idx[d + rank - own.Length]);
            return off;
        }
    }
}
