using OnDevice.Compression.Quantization;
using OnDevice.Core;
using OnDevice.Runtime;

namespace OnDevice.Compression.Tests;

public class SensitivityPolicyTests
{
    private static QuantScheme S(int bits, Granularity g, int block = 0) => new(bits, true, true, g, g == Granularity.Blocked ? 1 : 0, block);

    private static double OutputError(Model reference, Model quantized, IReadOnlyList<IReadOnlyDictionary<string, Tensor>> feeds)
    {
        var a = new InferenceSession(reference, new SessionOptions { Threads = 1 });
        var b = new InferenceSession(quantized, new SessionOptions { Threads = 1 });
        return feeds.Max(f => TestModels.RelativeError(b.Run(f)["out"], a.Run(f)["out"]));
    }

    private static int QuantizeLinearOn(Model m, string value) => m.Graph.Nodes.Count(n => n.OpType == "QuantizeLinear" && n.Inputs[0] == value);

    [Fact]
    public void ActivationErrors_RankAClippedRangeFirst()
    {
        var m = TestModels.Small();
        var feeds = TestModels.SmallFeeds(4);
        var ranges = TestModels.MinMax(m, feeds);
        var values = SensitivityPolicy.QuantizedActivations(m, []);
        Assert.Contains("x", values);
        Assert.Contains("g1", values);
        // A range that clips most of g1 must make g1 the most sensitive value by far.
        var clipped = new Dictionary<string, ActivationRange>(ranges) { ["g1"] = new(ranges["g1"].Min / 20, ranges["g1"].Max / 20) };
        var errors = SensitivityPolicy.ActivationErrors(m, values, clipped, DType.UInt8, TestModels.Calibration(m, feeds));
        // Graph outputs ("out", "up") have no consumer to re-point, so a Q/DQ pair there changes nothing: not measured.
        Assert.Equal(values.Count(v => ranges.ContainsKey(v) && m.Graph.Nodes.Any(n => n.Inputs.Contains(v))), errors.Count);
        Assert.DoesNotContain("out", errors.Keys);
        var ranked = errors.OrderByDescending(e => e.Value).ToList();
        Assert.Equal("g1", ranked[0].Key);
        Assert.True(ranked[0].Value > 5 * ranked[1].Value, $"g1 {ranked[0].Value:F4} vs next {ranked[1].Key} {ranked[1].Value:F4}");
        Assert.All(errors.Values, e => Assert.True(e > 0 && double.IsFinite(e)));
    }

    [Fact]
    public void KeepSensitive_LeavesTheWorstActivationsFloat_AndLowersTheError()
    {
        var m = TestModels.Small();
        var feeds = TestModels.SmallFeeds(6);
        var ranges = TestModels.MinMax(m, feeds);
        // Make two activations badly calibrated so that keeping them float must show.
        var bad = new Dictionary<string, ActivationRange>(ranges)
        {
            ["g1"] = new(ranges["g1"].Min / 10, ranges["g1"].Max / 10),
            ["m1"] = new(ranges["m1"].Min / 10, ranges["m1"].Max / 10),
        };
        var baseOptions = new QuantizeOptions { Scheme = S(8, Granularity.PerChannel), ActivationRanges = bad, Calibration = TestModels.Calibration(m, feeds), MeasureSensitivity = false };
        var all = Quantizer.Quantize(m, baseOptions);
        var kept = Quantizer.Quantize(m, baseOptions with { KeepSensitive = 2 });

        Assert.Empty(all.Report.KeptAtHigherPrecision);
        Assert.Equal(2, kept.Report.KeptAtHigherPrecision.Count);
        Assert.All(kept.Report.KeptAtHigherPrecision, k => Assert.Equal("activation", k.Kind));
        Assert.Equal(["g1", "m1"], kept.Report.KeptAtHigherPrecision.Select(k => k.Name).Order(StringComparer.Ordinal));
        Assert.Equal([1, 2], kept.Report.KeptAtHigherPrecision.Select(k => k.Rank));
        Assert.True(kept.Report.KeptAtHigherPrecision[0].ModelErrorAlone >= kept.Report.KeptAtHigherPrecision[1].ModelErrorAlone);
        var ranking = kept.Report.SensitivityRanking;
        Assert.True(ranking.Count > 2);
        Assert.Equal(kept.Report.KeptAtHigherPrecision, ranking.Take(2));
        Assert.True(ranking.Zip(ranking.Skip(1)).All(p => p.First.ModelErrorAlone >= p.Second.ModelErrorAlone));
        Assert.Equal(1, QuantizeLinearOn(all.Model, "g1"));
        Assert.Equal(0, QuantizeLinearOn(kept.Model, "g1"));
        Assert.Equal(0, QuantizeLinearOn(kept.Model, "m1"));
        Assert.Equal(1, QuantizeLinearOn(kept.Model, "x"));
        double eAll = OutputError(m, all.Model, feeds), eKept = OutputError(m, kept.Model, feeds);
        Assert.True(eKept < eAll / 3, $"keeping the two clipped activations float should cut the error: {eKept:F4} vs {eAll:F4}");
        // Weights are all still int8: nothing grew.
        Assert.Equal(all.Report.Layers.Select(l => l.Scheme), kept.Report.Layers.Select(l => l.Scheme));
    }

    [Fact]
    public void KeepSensitive_RaisesTheMostSensitive4BitWeightsToInt8()
    {
        var m = TestModels.Small();
        var feeds = TestModels.SmallFeeds(4);
        var options = new QuantizeOptions { Scheme = S(4, Granularity.Blocked, 16), Calibration = TestModels.Calibration(m, feeds) };
        var plain = Quantizer.Quantize(m, options);
        var kept = Quantizer.Quantize(m, options with { KeepSensitive = 2 });
        Assert.Equal(2, kept.Report.KeptAtHigherPrecision.Count);
        Assert.All(kept.Report.KeptAtHigherPrecision, k => Assert.Equal("weight", k.Kind));
        // The two kept are the two plain int4 layers with the largest model error alone.
        var top = plain.Report.Layers.OrderByDescending(l => l.ModelErrorAlone).Take(2).Select(l => l.Layer).Order(StringComparer.Ordinal);
        Assert.Equal(top, kept.Report.KeptAtHigherPrecision.Select(k => k.Name).Order(StringComparer.Ordinal));
        foreach (var k in kept.Report.KeptAtHigherPrecision)
            Assert.StartsWith("int8 channel", kept.Report.Layers.Single(l => l.Layer == k.Name).Scheme);
        Assert.Equal(plain.Report.Layers.Count - 2, kept.Report.Layers.Count(l => l.Scheme.StartsWith("int4", StringComparison.Ordinal)));
        Assert.True(kept.Report.LayerBytesAfter > plain.Report.LayerBytesAfter);
        Assert.True(OutputError(m, kept.Simulated!, feeds) < OutputError(m, plain.Simulated!, feeds));
    }

    [Fact]
    public void KeepSensitive_MaxParameters_RaisesOnlySmallLayers()
    {
        var m = TestModels.Small();
        var feeds = TestModels.SmallFeeds(4);
        var options = new QuantizeOptions { Scheme = S(4, Granularity.Blocked, 16), Calibration = TestModels.Calibration(m, feeds) };
        var plain = Quantizer.Quantize(m, options);
        var kept = Quantizer.Quantize(m, options with { KeepSensitive = 2, KeepSensitiveMaxParameters = 600 });
        // Only layers of at most 600 weights compete: the most sensitive two of them are raised.
        var top = plain.Report.Layers.Where(l => l.Parameters <= 600).OrderByDescending(l => l.ModelErrorAlone).Take(2).Select(l => l.Layer).Order(StringComparer.Ordinal);
        Assert.Equal(top, kept.Report.KeptAtHigherPrecision.Select(k => k.Name).Order(StringComparer.Ordinal));
        Assert.All(kept.Report.SensitivityRanking, k => Assert.True(plain.Report.Layers.Single(l => l.Layer == k.Name).Parameters <= 600));
        Assert.Contains(plain.Report.Layers, l => l.Parameters > 600);
        Assert.Throws<CompressionException>(() => Quantizer.Quantize(m, options with { KeepSensitive = 1, KeepSensitiveMaxParameters = -1 }));
    }

    [Fact]
    public void KeepSensitive_MaxParameters_KeepsOnlyActivationsReadByCheapLayers()
    {
        var m = TestModels.Small();
        var feeds = TestModels.SmallFeeds(6);
        var ranges = TestModels.MinMax(m, feeds);
        var bad = new Dictionary<string, ActivationRange>(ranges)
        {
            ["g1"] = new(ranges["g1"].Min / 10, ranges["g1"].Max / 10), // read by Relu only
            ["m1"] = new(ranges["m1"].Min / 10, ranges["m1"].Max / 10), // read by gemm2 (16 × 32 = 512 weights)
        };
        var options = new QuantizeOptions { Scheme = S(8, Granularity.PerChannel), ActivationRanges = bad, Calibration = TestModels.Calibration(m, feeds), MeasureSensitivity = false };
        var readers = SensitivityPolicy.ReaderWeightElements(m, []);
        Assert.Equal(512, readers["m1"]);
        Assert.Equal(16 * 32 * 64, readers["f"]);
        Assert.False(readers.ContainsKey("g1"));

        var any = Quantizer.Quantize(m, options with { KeepSensitive = 2 });
        Assert.Equal(["g1", "m1"], any.Report.KeptAtHigherPrecision.Select(k => k.Name).Order(StringComparer.Ordinal));
        var cheap = Quantizer.Quantize(m, options with { KeepSensitive = 2, KeepSensitiveMaxParameters = 500 });
        Assert.Contains(cheap.Report.KeptAtHigherPrecision, k => k.Name == "g1");
        Assert.DoesNotContain(cheap.Report.SensitivityRanking, k => readers.GetValueOrDefault(k.Name) > 500);
        Assert.Equal(1, QuantizeLinearOn(cheap.Model, "m1"));
    }

    [Fact]
    public void KeepSensitive_BadInput_FailsBeforeWork()
    {
        var m = TestModels.Small();
        Assert.Throws<CompressionException>(() => Quantizer.Quantize(m, new QuantizeOptions { KeepSensitive = 1 }));
        Assert.Throws<CompressionException>(() => Quantizer.Quantize(m, new QuantizeOptions { KeepSensitive = -1, Calibration = TestModels.Calibration(m, TestModels.SmallFeeds(1)) }));
    }

    [Fact]
    public void KeepSensitive_MoreThanCandidates_KeepsAllAndSaysSo()
    {
        var m = TestModels.Small();
        var feeds = TestModels.SmallFeeds(2);
        // 8-bit weight-only: no candidates at all.
        var r = Quantizer.Quantize(m, new QuantizeOptions { Calibration = TestModels.Calibration(m, feeds), KeepSensitive = 3, MeasureSensitivity = false });
        Assert.Empty(r.Report.KeptAtHigherPrecision);
        Assert.Contains(r.Report.Notes, n => n.Contains("only 0 candidate", StringComparison.Ordinal));
    }
}
