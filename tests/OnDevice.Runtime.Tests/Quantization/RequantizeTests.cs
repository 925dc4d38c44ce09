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
    public unsafe void RequantizeFromFloat_EqualsTheScalarTwin()
    {
        var rng = new Random(3);
        foreach (int count in new[] { 1, 15, 16, 17, 100, 961 })
        {
            // Exact integer sums held as floats, as the depthwise kernel leaves them.
            var y = Enumerable.Range(0, count).Select(_ => (float)rng.Next(-1 << 20, 1 << 20)).ToArray();
            foreach (var (zp, min, max) in new[] { (128, 0, 255), (-3, -128, 127), (100, 100, 255) })
            {
                int bias = rng.Next(-5000, 5000);
                float mul = (float)rng.NextDouble() * 0.0005f;
                var a = new byte[count];
                var b = new byte[count];
                fixed (float* py = y) fixed (byte* pa = a) fixed (byte* pb = b)
                {
                    Requantize.FromFloat(py, count, bias, mul, zp, min, max, pa, vector: true);
                    Requantize.FromFloat(py, count, bias, mul, zp, min, max, pb, vector: false);
                }
                Assert.Equal(b, a);
                for (int i = 0; i < count; i++) Assert.Equal((byte)Requantize.OneFloat((int)y[i] + bias, mul, zp, min, max), a[i]);
            }
        }
    }

    [Fact]
    public void RequantizeRun_EqualsOne()
    {
        var rng = new Random(4);
        foreach (var (rows, n) in new[] { (1, 7), (3, 8), (5, 29), (2, 6625) })
        {
            var c = Enumerable.Range(0, rows * n).Select(_ => rng.Next(-300000, 300000)).ToArray();
            var mul = Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble() * 0.001f).ToArray();
            foreach (var bias in new[] { null, Enumerable.Range(0, n).Select(_ => rng.Next(-9000, 9000)).ToArray() })
                foreach (var (zp, min, max) in new[] { (128, 0, 255), (-3, -128, 127) })
                {
                    var y = new byte[c.Length];
                    Requantize.Run(c, bias, mul, n, zp, min, max, y);
                    for (int i = 0; i < c.Length; i++) Assert.Equal((byte)Requantize.One(c[i] + (bias?[i % n] ?? 0), mul[i % n], zp, min, max), y[i]);
                }
        }
    }

    [Fact]
    public void RequantizeDequantized_EqualsTheScalarTwin()
    {
        var rng = new Random(6);
        foreach (var (rows, n) in new[] { (1, 7), (3, 8), (5, 29), (2, 6625) })
        {
            var c = Enumerable.Range(0, rows * n).Select(_ => rng.Next(-300000, 300000)).ToArray();
            var mul = Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble() * 0.001f).ToArray();
            foreach (var bias in new[] { null, Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray() })
            {
                var a = new float[c.Length];
                var b = new float[c.Length];
                Requantize.RunDequantized(c, mul, n, -3, -128, 127, 0.07f, bias, a, vector: true);
                Requantize.RunDequantized(c, mul, n, -3, -128, 127, 0.07f, bias, b, vector: false);
                Assert.Equal(b, a);
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
