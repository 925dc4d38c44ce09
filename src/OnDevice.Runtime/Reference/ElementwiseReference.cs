namespace OnDevice.Runtime.Reference;

/// <summary>Scalar definitions of element-wise operators: the behaviour the fast kernels must reproduce.</summary>
public static class ElementwiseReference
{
    /// <summary>Applies <paramref name="f"/> to each element.</summary>
    public static float[] Map(ReadOnlySpan<float> x, Func<float, float> f)
    {
        var r = new float[x.Length];
        for (int i = 0; i < r.Length; i++) r[i] = f(x[i]);
        return r;
    }

    /// <summary>Numpy-style broadcast of a binary function, by explicit index arithmetic (no blocking).</summary>
    public static (float[] Values, int[] Shape) Broadcast(ReadOnlySpan<float> a, int[] aShape, ReadOnlySpan<float> b, int[] bShape, Func<float, float, float> f)
    {
        int rank = Math.Max(aShape.Length, bShape.Length);
        var outShape = new int[rank];
        for (int d = 0; d < rank; d++)
        {
            int da = d - (rank - aShape.Length) is var ka && ka >= 0 ? aShape[ka] : 1;
            int db = d - (rank - bShape.Length) is var kb && kb >= 0 ? bShape[kb] : 1;
            if (da != db && da != 1 && db != 1) throw new InvalidOperationException("incompatible shapes");
            outShape[d] = Math.Max(da, db) == 1 ? Math.Min(da, db) == 0 ? 0 : 1 : (da == 1 ? db : da);
        }
        int n = outShape.Aggregate(1, (p, d) => p * d);
        var r = new float[n];
        var idx = new int[rank];
        for (int i = 0; i < n; i++)
        {
            int rem = i;
            for (int d = rank - 1; d >= 0; d--) { idx[d] = rem % outShape[d]; rem /= outShape[d]; }
            r[i] = f(a[Flat(aShape, idx, rank)], b[Flat(bShape, idx, rank)]);
        }
        return (r, outShape);

        static int Flat(int[] shape, int[] idx, int rank)
        {
            int off = 0;
            for (int d = 0; d < shape.Length; d++)
            {
                int k = d + rank - shape.Length;
                off = off * shape[d] + (shape[d] == 1 ? 0 : idx[k]);
            }
            return off;
        }
    }

    /// <summary>ONNX Relu.</summary>
    public static float Relu(float x) => x > 0 ? x : 0;
}
