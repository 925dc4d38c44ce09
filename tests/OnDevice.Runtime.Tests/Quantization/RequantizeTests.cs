using OnDevice.Runtime.Kernels.Quantization;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Tests.Quantization;

/// <summary>The vectorized 8-bit loops equal their scalar twins exactly.</summary>
[Trait("Category", "Kernels")]
public class RequantizeTests
{
    [Fact]
    public unsafe void RequantizeTile_EqualsTheScalarTwin()
    {
        var rng = new Random(2);
        foreach (var (count, channels) in new[] { (1, 1), (37, 1), (7, 8), (13, 21), (40, 64), (3, 5) })
        {
            var sums = Enumerable.Range(0, count * channels).Select(_ => rng.Next(-200000, 200000)).ToArray();
            var bias = Enumerable.Range(0, channels).Select(_ => rng.Next(-5000, 5000)).ToArray();
            var mul = Enumerable.Range(0, channels).Select(_ => (float)rng.NextDouble() * 0.002f).ToArray();
            foreach (var (zp, min, max) in new[] { (128, 0, 255), (-3, -128, 127), (100, 100, 255) })
            {
                var actual = new byte[channels * count];
                fixed (int* ps = sums) fixed (int* pb = bias) fixed (float* pm = mul) fixed (byte* pd = actual)
                    Requantize.Tile(ps, count, channels, pb, pm, zp, min, max, pd, count);
                for (int j = 0; j < channels; j++)
                    for (int p = 0; p < count; p++)
                        Assert.Equal((byte)Requantize.OneFloat(sums[p * channels + j] + bias[j], mul[j], zp, min, max), actual[j * count + p]);
            }
        }
    }

    [Fact]
    public void QuantizeAndDequantize_EqualTheScalarTwins()
    {
        var x = NodeRunner.Random(1003, 8, -3f, 3f);
        x[5] = 0.25f; x[6] = -0.75f; // ties at scale 0.5 (round half to even)
        foreach (var (scale, zp, min, max) in new[] { (0.5f, 0, -128, 127), (0.013f, 128, 0, 255), (0.02f, -7, -128, 127) })
        {
            var y = new byte[x.Length];
            QuantizeVectors.Quantize(x, scale, zp, min, max, y);
            for (int i = 0; i < x.Length; i++) Assert.Equal((byte)QuantizeVectors.QuantizeOne(x[i], scale, zp, min, max), y[i]);
            var back = new float[x.Length];
            QuantizeVectors.Dequantize(y, min < 0, scale, zp, back);
            for (int i = 0; i < x.Length; i++) Assert.Equal(((min < 0 ? (sbyte)y[i] : y[i]) - zp) * scale, back[i]);
        }
        var (lo, hi) = QuantizeVectors.MinMax(x);
        Assert.Equal(x.Min(), lo);
        Assert.Equal(x.Max(), hi);
    }
}
