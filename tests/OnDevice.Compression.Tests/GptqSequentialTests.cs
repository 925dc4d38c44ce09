using OnDevice.Compression.Calibration;
using OnDevice.Compression.Gptq;
using OnDevice.Compression.Quantization;
using OnDevice.Core;

namespace OnDevice.Compression.Tests;

public class GptqClipSearchTests
{
    [Fact]
    public void SearchScale_IsNeverWorseThanTheFullRange_AndShrinksAroundAnOutlier()
    {
        var scheme = GptqRounderTests.Int4Block32;
        var w = GptqRounderTests.Random(32, 5, 0.1);
        w[7] = 0.9f; // one large weight sets a coarse step for the whole block
        var imp = Enumerable.Range(0, 32).Select(i => 1.0 + i % 3).ToArray();
        var full = RtnReference.ScaleAndZeroPoint(w.Min(), w.Max(), scheme);
        var found = GptqRounder.SearchScale(w, imp, scheme, new GptqOptions().ClipFactors);
        double Err((float S, int Z) g) => w.Select((v, i) => imp[i] * Math.Pow(v - (RtnReference.Round(v, g.S, g.Z, scheme) - g.Z) * g.S, 2)).Sum();
        Assert.True(Err(found) <= Err(full));
        Assert.True(found.Scale < full.Scale, $"{found.Scale} vs {full.Scale}");
        // Exhaustive over the same factors: the search returns the best of them.
        foreach (var f in new GptqOptions().ClipFactors)
            Assert.True(Err(found) <= Err(RtnReference.ScaleAndZeroPoint((float)(w.Min() * f), (float)(w.Max() * f), scheme)) + 1e-12);
        // Only 1.0 on offer: exactly round-to-nearest's grid.
        Assert.Equal(full, GptqRounder.SearchScale(w, imp, scheme, [1.0]));
    }

    [Theory]
    [InlineData("block:32", false)]
    [InlineData("block:32", true)]
    [InlineData("channel", false)]
    public void ClipSearch_LowersTheOutputError_AndStaysNeverWorseThanRtn(string granularity, bool actOrder)
    {
        var scheme = GptqRounderTests.Scheme(4, true, true, granularity);
        int n = 24, k = 160, rows = 600;
        var x = GptqRounderTests.CorrelatedInputs(rows, k, 51);
        var w = GptqRounderTests.Random(n * k, 52);
        var rng = new Random(53);
        for (int i = 0; i < 40; i++) w[rng.Next(w.Length)] *= 6; // heavy-tailed weights, as trained layers have
        var wm = new WeightMatrix("w", w, n, k);
        var hs = new Dictionary<string, LayerHessian> { ["w"] = LayerHessian.FromInputs("w", x, rows, k) };
        double Error(GptqOptions o) => GptqRounderTests.OutputError(x, rows, w, new GptqRounder(hs, o).Quantize(wm, scheme).Dequantize(), n, k);
        double rtn = GptqRounderTests.OutputError(x, rows, w, RtnReference.Instance.Quantize(wm, scheme).Dequantize(), n, k);
        double plain = Error(new GptqOptions { ActOrder = actOrder });
        double clip = Error(new GptqOptions { ActOrder = actOrder, ClipSearch = true });
        Assert.True(clip < plain, $"clip search {clip:E3} vs plain GPTQ {plain:E3}");
        Assert.True(clip <= rtn, $"clip search {clip:E3} vs RTN {rtn:E3}");
    }
}

public class GptqSequentialTests
{
    private static CalibrationSet Set(Model m, int count) => CalibrationSet.FromFeeds(m.Graph, TestModels.SmallFeeds(count));

    [Fact]
    public void EachLayer_IsGptqOnTheInputsOfTheAlreadyQuantizedPrefix()
    {
        var model = TestModels.Small(3);
        var set = Set(model, 12);
        var scheme = new QuantScheme(4, true, true, Granularity.Blocked, Axis: 1, BlockSize: 16);
        var options = new GptqOptions { Threads = 1 };
        var seq = new SequentialGptqRounder(model, set, options, new HessianOptions { Threads = 1 }, RtnRounder.Instance);
        var result = Quantizer.Quantize(model, new QuantizeOptions { Scheme = scheme, RounderFactory = (_, _) => seq, MeasureSensitivity = false });
        Assert.Equal(["w1", "w2", "w4", "w5", "w6"], seq.Stats.Keys.Order());
        Assert.Contains(seq.Skipped, s => s.Weight == "w3"); // ConvTranspose: round-to-nearest

        // Rebuild by hand: quantize layers in order, each with GPTQ on statistics of the model whose earlier layers
        // hold their reconstructions; the sequential rounder must give exactly these values.
        var work = Quantizer.CopyModel(model);
        ConstantLifting.Lift(work.Graph);
        var (sites, _) = LayerSites.Find(work.Graph);
        foreach (var site in sites)
        {
            var hs = HessianCollector.Collect(work, set, new HessianOptions { Threads = 1, Weights = [site.Weight] });
            var wm = new WeightMatrix(site.Weight, site.Matrix, site.Rows, site.Columns);
            var expected = GptqRounder.Run(wm, scheme, hs.Layers[site.Weight], options, out _);
            var again = seq.Stats[site.Weight];
            Assert.Equal(expected.Values.Length, site.Rows * site.Columns);
            var deq = expected.Dequantize();
            var t = work.Graph.Initializers[site.Weight];
            bool transposed = site.OpType == "MatMul" || site.OpType == "Gemm" && t.Dims[0] != site.Rows;
            work.Graph.Initializers[site.Weight] = Tensor.FromArray<float>(transposed ? LayerSites.Transpose(deq, site.Rows, site.Columns) : deq, t.Dims, site.Weight);
            // The written model's weight is the same reconstruction.
            var written = result.Simulated!.Graph.Initializers[site.Weight].ToFloatArray();
            Assert.Equal(work.Graph.Initializers[site.Weight].ToFloatArray(), written);
            Assert.True(again.GptqError <= again.RtnError * (1 + 1e-9));
        }
    }

    [Fact]
    public void LaterLayers_SeeTheQuantizedPrefix_NotTheFloatModel()
    {
        var model = TestModels.Small(4);
        var set = Set(model, 8);
        var scheme = new QuantScheme(4, true, true, Granularity.PerChannel, Axis: 0);
        var seq = new SequentialGptqRounder(model, set, new GptqOptions { Threads = 1 }, new HessianOptions { Threads = 1 }, RtnRounder.Instance);
        var oneShot = GptqRounder.Calibrate(model, set, new GptqOptions { Threads = 1 }, new HessianOptions { Threads = 1 }, RtnRounder.Instance);
        var a = Quantizer.Quantize(model, new QuantizeOptions { Scheme = scheme, RounderFactory = (_, _) => seq, MeasureSensitivity = false });
        var b = Quantizer.Quantize(model, new QuantizeOptions { Scheme = scheme, RounderFactory = (_, _) => oneShot, MeasureSensitivity = false });
        // The first layer's input is the model input: the same statistics, the same result.
        Assert.Equal(b.Simulated!.Graph.Initializers["w1"].ToFloatArray(), a.Simulated!.Graph.Initializers["w1"].ToFloatArray());
        // Later layers' statistics come from the quantized prefix, so at least one of them differs.
        Assert.Contains(new[] { "w2", "w4", "w5", "w6" }, w =>
            !a.Simulated.Graph.Initializers[w].ToFloatArray().SequenceEqual(b.Simulated.Graph.Initializers[w].ToFloatArray()));
    }

    [Fact]
    public void AWeightItCannotHandle_WithoutFallback_IsATypedError()
    {
        var model = TestModels.Small(1);
        var seq = new SequentialGptqRounder(model, Set(model, 2), new GptqOptions { Threads = 1 }, new HessianOptions { Threads = 1 });
        var e = Assert.Throws<ArgumentException>(() => seq.Quantize(new WeightMatrix("nope", new float[8], 2, 4), GptqRounderTests.Int4Block32));
        Assert.Contains("'nope'", e.Message);
    }
}
