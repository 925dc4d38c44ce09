using OnDevice.Compression.Quantization;

namespace OnDevice.Compression.Tests;

public class RtnRounderTests
{
    private static WeightMatrix Random(int rows, int cols, int seed)
    {
        var r = new Random(seed);
        return new WeightMatrix("w", Enumerable.Range(0, rows * cols).Select(_ => (float)TestModels.NextGaussian(r)).ToArray(), rows, cols);
    }

    [Theory]
    [InlineData(8, true, true)]
    [InlineData(8, false, false)]
    [InlineData(8, true, false)]
    [InlineData(4, true, true)]
    [InlineData(4, false, false)]
    [InlineData(4, false, true)]
    public void EveryValue_IsWithinHalfAStep_AndOnTheGrid(int bits, bool signed, bool symmetric)
    {
        var w = Random(6, 40, bits * 10 + (signed ? 1 : 0));
        foreach (var gran in new[] { Granularity.PerTensor, Granularity.PerChannel, Granularity.Blocked })
        {
            var scheme = new QuantScheme(bits, signed, symmetric, gran, gran == Granularity.Blocked ? 1 : 0, gran == Granularity.Blocked ? 16 : 0);
            var q = RtnRounder.Instance.Quantize(w, scheme);
            var d = q.Dequantize();
            for (int i = 0; i < d.Length; i++)
            {
                Assert.InRange(q.Values[i], scheme.QMin, scheme.QMax);
                Assert.True(Math.Abs(d[i] - w.Data[i]) <= q.Scales[q.GroupOf(i)] * 0.5001f, $"{gran} element {i}: {w.Data[i]} -> {d[i]}");
            }
            if (symmetric) Assert.All(q.ZeroPoints, z => Assert.Equal(signed ? 0 : 1 << (bits - 1), z));
        }
    }

    [Fact]
    public void FinerGranularity_GivesHigherSqnr()
    {
        // Rows with very different magnitudes: per-channel must beat per-tensor, and blocks must not lose to channels.
        var w = Random(8, 128, 3);
        for (int r = 0; r < 8; r++) for (int c = 0; c < 128; c++) w.Data[r * 128 + c] *= MathF.Pow(4, r - 4);
        // SQNR of the smallest row: one scale for the tensor wipes it out, one per channel keeps it.
        double Sqnr(Granularity g) => Quantizer.Sqnr(w.Data[..128], RtnRounder.Instance.Quantize(w, new QuantScheme(4, true, true, g, g == Granularity.Blocked ? 1 : 0, 32)).Dequantize()[..128]);
        Assert.True(Sqnr(Granularity.PerChannel) > Sqnr(Granularity.PerTensor) + 10, $"{Sqnr(Granularity.PerChannel)} vs {Sqnr(Granularity.PerTensor)}");
        Assert.True(Sqnr(Granularity.Blocked) >= Sqnr(Granularity.PerChannel));
    }

    [Fact]
    public void Fp16Scales_AreExactlyRepresentable()
    {
        var q = RtnRounder.Instance.Quantize(Random(4, 33, 5), new QuantScheme(8, true, false, Granularity.PerChannel, Fp16Scales: true));
        Assert.All(q.Scales, s => Assert.Equal(s, (float)(Half)s));
    }

    [Fact]
    public void AllZeroRow_DequantizesToZero_AndNonFiniteWeightsFail()
    {
        var w = new WeightMatrix("w", [0, 0, 0, 0, 1, -2, 3, 4], 2, 4);
        var q = RtnRounder.Instance.Quantize(w, new QuantScheme(8, false, false, Granularity.PerChannel));
        Assert.Equal(new float[] { 0, 0, 0, 0 }, q.Dequantize().Take(4));
        var bad = new WeightMatrix("bad", [1, float.NaN], 1, 2);
        var e = Assert.Throws<CompressionException>(() => RtnRounder.Instance.Quantize(bad, new QuantScheme(8, true, true, Granularity.PerTensor)));
        Assert.Contains("non-finite", e.Message);
    }

    [Fact]
    public void Rounding_IsHalfToEven_AsQuantizeLinear()
    {
        var s = new QuantScheme(8, true, true, Granularity.PerTensor);
        Assert.Equal(2, RtnRounder.Round(2.5f, 1, 0, s));
        Assert.Equal(4, RtnRounder.Round(3.5f, 1, 0, s));
        Assert.Equal(-128, RtnRounder.Round(-1000f, 1, 0, s));
    }
}

/// <summary>GPTQ keeps its own RTN grid (it recomputes block scales mid-matrix); it must stay the public RTN's grid.</summary>
public class RtnGridAgreementTests
{
    [Theory]
    [InlineData(8, true, true, Granularity.PerChannel, 0, false)]
    [InlineData(8, false, false, Granularity.PerTensor, 0, false)]
    [InlineData(4, true, true, Granularity.Blocked, 32, false)]
    [InlineData(4, false, false, Granularity.Blocked, 16, true)]
    [InlineData(8, true, false, Granularity.Blocked, 64, false)]
    [InlineData(4, true, false, Granularity.PerChannel, 0, true)]
    public void GptqReferenceRtn_EqualsThePublicRtnRounder(int bits, bool signed, bool symmetric, Granularity g, int block, bool fp16)
    {
        var rng = new Random(bits * 100 + block);
        const int rows = 24, cols = 96;
        var data = new float[rows * cols];
        for (int i = 0; i < data.Length; i++) data[i] = (float)(rng.NextDouble() * 2 - 1) * (1 + i % 7) + (i % 11 == 0 ? 3f : 0f);
        var w = new WeightMatrix("w", data, rows, cols);
        var scheme = new QuantScheme(bits, signed, symmetric, g, g == Granularity.Blocked ? 1 : 0, block, fp16);
        var mine = OnDevice.Compression.Gptq.RtnReference.Instance.Quantize(w, scheme);
        var pub = RtnRounder.Instance.Quantize(w, scheme);
        Assert.Equal(pub.Scales, mine.Scales);
        Assert.Equal(pub.ZeroPoints, mine.ZeroPoints);
        Assert.Equal(pub.Values, mine.Values);
    }
}
