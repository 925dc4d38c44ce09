using System.Numerics;

namespace OnDevice.Runtime.Reference;

/// <summary>Scalar definitions of the generator, scan and selection operators (Range, CumSum, TopK).</summary>
public static class TensorReference
{
    /// <summary>Number of elements of Range: max(ceil((limit - start) / delta), 0); delta must not be zero.</summary>
    public static int RangeCount<T>(T start, T limit, T delta) where T : INumber<T>
    {
        if (T.IsZero(delta)) throw new InvalidOperationException("Range: delta is zero");
        double n = Math.Ceiling(double.CreateTruncating(limit - start) / double.CreateTruncating(delta));
        if (!(n > 0)) return 0;
        if (n > int.MaxValue) throw new InvalidOperationException($"Range of {n} elements is too large");
        return (int)n;
    }

    /// <summary>ONNX Range: start + i·delta for i in [0, count).</summary>
    public static T[] Range<T>(T start, T limit, T delta) where T : INumber<T>
    {
        var r = new T[RangeCount(start, limit, delta)];
        for (int i = 0; i < r.Length; i++) r[i] = start + T.CreateTruncating(i) * delta;
        return r;
    }

    /// <summary>ONNX CumSum along <paramref name="axis"/>: each output element sums the input elements before it
    /// (or after it, with <paramref name="reverse"/>), itself included unless <paramref name="exclusive"/>.</summary>
    public static T[] CumSum<T>(ReadOnlySpan<T> x, int[] shape, int axis, bool exclusive, bool reverse) where T : INumber<T>
    {
        int n = shape[axis];
        int inner = shape.Skip(axis + 1).Aggregate(1, (p, d) => p * d);
        var y = new T[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            int k = i / inner % n;
            T s = T.Zero;
            for (int j = 0; j < n; j++)
            {
                bool take = reverse ? (exclusive ? j > k : j >= k) : (exclusive ? j < k : j <= k);
                if (take) s += x[i + (j - k) * inner];
            }
            y[i] = s;
        }
        return y;
    }

    /// <summary>ONNX TopK along <paramref name="axis"/>: the k largest (or smallest) values with their indices, equal
    /// values in ascending index order, NaN ranked above every number.</summary>
    public static (double[] Values, long[] Indices) TopK(ReadOnlySpan<double> x, int[] shape, int axis, int k, bool largest)
    {
        int n = shape[axis];
        int outer = shape.Take(axis).Aggregate(1, (p, d) => p * d);
        int inner = shape.Skip(axis + 1).Aggregate(1, (p, d) => p * d);
        var values = new double[outer * k * inner];
        var indices = new long[outer * k * inner];
        var data = x.ToArray();
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++)
            {
                double Key(int t) => data[(o * n + t) * inner + i];
                var ranked = Enumerable.Range(0, n)
                    .OrderBy(t => largest ? (double.IsNaN(Key(t)) ? 0 : 1) : (double.IsNaN(Key(t)) ? 1 : 0))
                    .ThenBy(t => largest ? -Key(t) : Key(t))
                    .ThenBy(t => t)
                    .Take(k).ToArray();
                for (int t = 0; t < k; t++)
                {
                    values[(o * k + t) * inner + i] = Key(ranked[t]);
                    indices[(o * k + t) * inner + i] = ranked[t];
                }
            }
        return (values, indices);
    }
}
