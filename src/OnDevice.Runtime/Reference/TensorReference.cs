using System.Numerics;

namespace OnDevice.Runtime.Reference;

/// <summary>Scalar definitions of the generator and scan operators (Range, CumSum).</summary>
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
}
