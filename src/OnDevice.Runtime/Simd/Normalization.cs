using System.Runtime.Intrinsics;

namespace OnDevice.Runtime.Simd;

/// <summary>Vector loops for the normalization kernels: statistics of a contiguous run and the affine maps that apply them.</summary>
public static unsafe class Normalization
{
    /// <summary>Mean and (population) variance of x[0..n), two passes: mean, then the mean squared deviation.</summary>
    public static (float Mean, float Variance) MeanVariance(float* x, int n)
    {
        if (n <= 0) return (0, 0);
        float mean = PlaneReduce.Sum(new ReadOnlySpan<float>(x, n)) / n;
        int i = 0;
        float s = 0;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            var m = Vector512.Create(mean);
            Vector512<float> a0 = default, a1 = default;
            for (; i + 32 <= n; i += 32)
            {
                var d0 = Vector512.Load(x + i) - m;
                var d1 = Vector512.Load(x + i + 16) - m;
                a0 = Vector512.FusedMultiplyAdd(d0, d0, a0);
                a1 = Vector512.FusedMultiplyAdd(d1, d1, a1);
            }
            for (; i + 16 <= n; i += 16)
            {
                var d0 = Vector512.Load(x + i) - m;
                a0 = Vector512.FusedMultiplyAdd(d0, d0, a0);
            }
            s = Vector512.Sum(a0 + a1);
        }
        else if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var m = Vector256.Create(mean);
            Vector256<float> a0 = default;
            for (; i + 8 <= n; i += 8)
            {
                var d0 = Vector256.Load(x + i) - m;
                a0 += d0 * d0;
            }
            s = Vector256.Sum(a0);
        }
        else if (Vector128.IsHardwareAccelerated && n >= 4)
        {
            var m = Vector128.Create(mean);
            Vector128<float> a0 = default;
            for (; i + 4 <= n; i += 4)
            {
                var d0 = Vector128.Load(x + i) - m;
                a0 += d0 * d0;
            }
            s = Vector128.Sum(a0);
        }
        for (; i < n; i++)
        {
            float d = x[i] - mean;
            s += d * d;
        }
        return (mean, s / n);
    }

    /// <summary>y[i] = a·x[i] + b (y may be x).</summary>
    public static void Affine(float* x, float* y, int n, float a, float b)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var va = Vector512.Create(a);
            var vb = Vector512.Create(b);
            for (; i + 16 <= n; i += 16) Vector512.FusedMultiplyAdd(Vector512.Load(x + i), va, vb).Store(y + i);
        }
        if (Vector256.IsHardwareAccelerated)
        {
            var va = Vector256.Create(a);
            var vb = Vector256.Create(b);
            for (; i + 8 <= n; i += 8) Vector256.MultiplyAddEstimate(Vector256.Load(x + i), va, vb).Store(y + i);
        }
        if (Vector128.IsHardwareAccelerated)
        {
            var va = Vector128.Create(a);
            var vb = Vector128.Create(b);
            for (; i + 4 <= n; i += 4) Vector128.MultiplyAddEstimate(Vector128.Load(x + i), va, vb).Store(y + i);
        }
        for (; i < n; i++) y[i] = x[i] * a + b;
    }

    /// <summary>y[i] = (x[i] − mean)·invStd·scale[i] + bias[i] (bias may be null).</summary>
    public static void ScaleShift(float* x, float* y, int n, float mean, float invStd, float* scale, float* bias)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var vm = Vector512.Create(mean);
            var vs = Vector512.Create(invStd);
            for (; i + 16 <= n; i += 16)
            {
                var v = (Vector512.Load(x + i) - vm) * vs * Vector512.Load(scale + i);
                if (bias != null) v += Vector512.Load(bias + i);
                v.Store(y + i);
            }
        }
        if (Vector256.IsHardwareAccelerated)
        {
            var vm = Vector256.Create(mean);
            var vs = Vector256.Create(invStd);
            for (; i + 8 <= n; i += 8)
            {
                var v = (Vector256.Load(x + i) - vm) * vs * Vector256.Load(scale + i);
                if (bias != null) v += Vector256.Load(bias + i);
                v.Store(y + i);
            }
        }
        if (Vector128.IsHardwareAccelerated)
        {
            var vm = Vector128.Create(mean);
            var vs = Vector128.Create(invStd);
            for (; i + 4 <= n; i += 4)
            {
                var v = (Vector128.Load(x + i) - vm) * vs * Vector128.Load(scale + i);
                if (bias != null) v += Vector128.Load(bias + i);
                v.Store(y + i);
            }
        }
        for (; i < n; i++) y[i] = (x[i] - mean) * invStd * scale[i] + (bias != null ? bias[i] : 0);
    }
}
