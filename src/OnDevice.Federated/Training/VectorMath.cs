using System.Numerics;
using System.Runtime.InteropServices;

namespace OnDevice.Federated.Training;

/// <summary>SIMD dot product and axpy (with scalar twins used by the tests).</summary>
internal static class VectorMath
{
    public static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length) throw new ArgumentException("length mismatch");
        int i = 0;
        var acc = Vector<float>.Zero;
        var va = MemoryMarshal.Cast<float, Vector<float>>(a);
        var vb = MemoryMarshal.Cast<float, Vector<float>>(b);
        for (int k = 0; k < va.Length; k++) acc += va[k] * vb[k];
        i = va.Length * Vector<float>.Count;
        float s = Vector.Sum(acc);
        for (; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }

    /// <summary>y += c·x.</summary>
    public static void Axpy(ReadOnlySpan<float> x, float c, Span<float> y)
    {
        if (x.Length != y.Length) throw new ArgumentException("length mismatch");
        var vx = MemoryMarshal.Cast<float, Vector<float>>(x);
        var vy = MemoryMarshal.Cast<float, Vector<float>>(y);
        var vc = new Vector<float>(c);
        for (int k = 0; k < vx.Length; k++) vy[k] += vc * vx[k];
        for (int i = vx.Length * Vector<float>.Count; i < x.Length; i++) y[i] += c * x[i];
    }

    public static float DotScalar(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        float s = 0;
        for (int i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }

    public static void AxpyScalar(ReadOnlySpan<float> x, float c, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++) y[i] += c * x[i];
    }

    public static double Norm(ReadOnlySpan<float> v)
    {
        double s = 0;
        foreach (var x in v) s += x * (double)x;
        return Math.Sqrt(s);
    }
}
