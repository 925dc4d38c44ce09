using OnDevice.Core;

namespace OnDevice.Runtime.Tests.Quantization;

/// <summary>Random quantized tensors and the fused-vs-unfused comparison shared by the QDQ fusion tests.</summary>
internal static class QdqTestData
{
    /// <summary>A random 8-bit tensor: int8 values in [−100, 100), uint8 values in [lo, hi).</summary>
    public static Tensor RandomBytes(Random rng, DType t, int lo, int hi, params long[] dims)
    {
        var b = new byte[dims.Aggregate(1L, (p, d) => p * d)];
        for (int i = 0; i < b.Length; i++) b[i] = t == DType.Int8 ? (byte)(sbyte)rng.Next(-100, 100) : (byte)rng.Next(lo, hi);
        return Tensor.FromBytes(t, dims, b);
    }

    /// <summary>Every value within one output step of <paramref name="expected"/>, and at least <paramref name="minEqual"/> of them equal.</summary>
    public static void Within(float[] expected, float[] actual, float step, string what, double minEqual = 0.9)
    {
        Assert.Equal(expected.Length, actual.Length);
        int exact = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            float d = Math.Abs(expected[i] - actual[i]);
            Assert.True(d <= step * 1.01f + 1e-5f, $"{what}[{i}]: {actual[i]} vs {expected[i]} (step {step})");
            if (d < 1e-6f) exact++;
        }
        Assert.True(exact >= expected.Length * minEqual, $"{what}: only {exact} of {expected.Length} equal");
    }
}
