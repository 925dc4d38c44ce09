using OnDevice.Compression.Pruning;
using OnDevice.Compression.Quantization;
using OnDevice.Core;
using OnDevice.Formats.Onnx;
using OnDevice.Runtime;
using OnDevice.TestSupport;
using Xunit.Abstractions;

namespace OnDevice.Compression.Tests;

public class PruneBudgetTests(ITestOutputHelper log)
{
    [Fact]
    public void Magnitude_And_TwoFour_ZeroTheSmallest()
    {
        float[] w = [1, -5, 0.5f, 3, -0.1f, 2, 7, -4];
        Assert.Equal(new float[] { 0, -5, 0, 3, 0, 0, 7, -4 }, Pruner.Magnitude(w, 0.5));
        // Rows of 4: keep the two largest magnitudes in each group of 4.
        Assert.Equal(new float[] { 0, -5, 0, 3, 0, 0, 7, -4 }, Pruner.TwoFour(w, 2, 4));
        var r = Pruner.TwoFour([1, 2, 3, 4, 5, 6], 1, 6);
        Assert.Equal(new float[] { 0, 0, 3, 4, 5, 6 }, r); // the tail that is not a full group is kept
    }

    [Fact]
    public void TwoFour_OnTheSmallGraph_IsHalfSparseAlongTheReduction_AndRunsTheSame()
    {
        var m = TestModels.Small();
        var feeds = TestModels.SmallFeeds(2);
        var result = Pruner.Prune(m, 0.5, PrunePattern.TwoFour, calibration: TestModels.Calibration(m, feeds));
        var (sites, _) = WeightSites.Find(result.Model.Graph);
        foreach (var s in sites)
        {
            var mat = s.Matrix();
            for (int row = 0; row < s.Rows; row++)
                for (int c = 0; c + 4 <= s.Columns; c += 4)
                    Assert.True(Enumerable.Range(c, 4).Count(j => mat[row * s.Columns + j] == 0) >= 2, $"{s.Layer} row {row} group {c}");
        }
        Assert.All(result.Report.Layers, l => Assert.NotNull(l.OutputError));
        var session = new InferenceSession(result.Model, new SessionOptions { Threads = 1 });
        Assert.Equal(2, session.Run(feeds[0]).Count);
    }

    [Fact]
    [Trait("Category", "Ort")]
    public void ChannelPruning_RemovesChannels_ThroughActivations_AndOrtAgrees()
    {
        // conv1 → Relu → conv3 is prunable; conv1 also feeding a graph output would not be.
        var m = TestModels.Small();
        var g = m.Graph;
        // Make a plain (group 1) consumer: replace the depthwise conv by a dense one.
        g.Initializers.Remove("w2");
        var rng = new Random(3);
        g.AddInitializer(Tensor.FromArray<float>(Enumerable.Range(0, 8 * 8 * 9).Select(_ => (float)TestModels.NextGaussian(rng) * 0.2f).ToArray(), [8, 8, 3, 3], "w2"));
        g.Nodes.Single(n => n.Name == "dwconv").Attributes.Remove("group");
        var feeds = TestModels.SmallFeeds(2);
        var result = Pruner.Prune(m, 0.25, PrunePattern.Channel);
        var conv1 = result.Report.Layers.Single(l => l.Layer == "conv1");
        Assert.Contains("8->6", conv1.Scheme);
        Assert.True(conv1.BytesAfter < conv1.BytesBefore);
        Assert.Equal([6, 4, 3, 3], result.Model.Graph.Initializers["w1"].Dims);
        Assert.Equal([8, 6, 3, 3], result.Model.Graph.Initializers["w2"].Dims);
        Assert.Equal([6], result.Model.Graph.Initializers["b1"].Dims);
        // dwconv's output feeds a ConvTranspose and a Flatten: not channel-wise, so it stays.
        Assert.Contains(result.Report.StayedFloat, s => s.Layer == "dwconv" && s.Reason.Contains("not channel-wise"));

        // The pruned model equals the float model with conv2's matching input channels zeroed.
        var kept = result.Model.Graph.Initializers["w1"].ToFloatArray();
        var orig = m.Graph.Nodes.Single(n => n.OpType == "Constant").Attr("value")!.AsTensor().ToFloatArray();
        var removed = Enumerable.Range(0, 8).Where(o => !Enumerable.Range(0, 6).Any(k => kept.AsSpan(k * 36, 36).SequenceEqual(orig.AsSpan(o * 36, 36)))).ToList();
        Assert.Equal(2, removed.Count);
        var zeroed = Quantizer.CopyModel(m);
        var w2 = m.Graph.Initializers["w2"].ToFloatArray();
        foreach (var o in Enumerable.Range(0, 8)) foreach (var c in removed) for (int j = 0; j < 9; j++) w2[(o * 8 + c) * 9 + j] = 0;
        zeroed.Graph.Initializers["w2"] = Tensor.FromArray<float>(w2, [8, 8, 3, 3], "w2");
        using var dir = new TempDir();
        OnnxWriter.Write(zeroed, dir.File("zeroed.onnx"));
        result.Save(dir.File("pruned.onnx"));
        var ort = OrtRunner.Run([(dir.File("zeroed.onnx"), feeds[0]), (dir.File("pruned.onnx"), feeds[0])]);
        Assert.Null(ort[1].Error);
        Assert.True(TestModels.RelativeError(ort[1].Outputs[0], ort[0].Outputs[0]) < 1e-5);
        var mine = new InferenceSession(result.Model, new SessionOptions { Threads = 1 }).Run(feeds[0]);
        Assert.True(TestModels.RelativeError(mine["out"], ort[1].Outputs[0]) < 1e-4);
    }

    [Theory]
    [Trait("Category", "Ort")]
    [InlineData("paddleocr-det", 0.25)]
    [InlineData("paddleocr-rec", 0.25)]
    public void ChannelPruning_OnSampleModels_ShrinksAndRunsInOrtAndOnDevice(string sample, double sparsity)
    {
        var m = TestModels.Sample(sample);
        var feeds = TestModels.ReferenceFeeds(sample).Take(1).ToList();
        var result = Pruner.Prune(m, sparsity, PrunePattern.Channel);
        using var dir = new TempDir();
        long size = result.Save(dir.File("p.onnx"));
        log.WriteLine($"{sample}: {result.Report.Layers.Count} convs pruned, {result.Report.StayedFloat.Count} kept, {result.Report.InputBytes:N0} -> {size:N0} bytes");
        Assert.NotEmpty(result.Report.Layers);
        Assert.True(size < result.Report.InputBytes);
        var ort = OrtRunner.Run([(dir.File("p.onnx"), feeds[0])]);
        Assert.Null(ort[0].Error);
        var mine = new InferenceSession(result.Model, new SessionOptions { Threads = 1 }).Run(feeds[0]);
        Assert.True(TestModels.RelativeError(mine.Values.First(), ort[0].Outputs[0]) < 1e-3);
    }

    [Fact]
    public void SizeBudget_MeetsTheTarget_WithLessErrorThanUniformInt4_AndFailsClearlyWhenImpossible()
    {
        var m = TestModels.Sample("paddleocr-rec");
        long input = new FileInfo(m.SourcePath!).Length;
        long target = input / 5;
        var plan = SizeBudget.Choose(m, target);
        var result = Quantizer.Quantize(m, new QuantizeOptions { PerLayer = plan.Plans });
        using var dir = new TempDir();
        long size = result.Save(dir.File("b.onnx"), target);
        Assert.True(size <= target);
        var kinds = plan.Plans.Values.GroupBy(p => p.Label).ToDictionary(g => g.Key, g => g.Count());
        log.WriteLine($"target {target:N0}: {size:N0} bytes, {string.Join(", ", kinds.Select(k => $"{k.Key} x{k.Value}"))}, total error {plan.TotalError:G4}");
        // Uniform int4 block-32 is about this size too; the budget's mix must not have more total weight error.
        var uniform = WeightSites.Find(Quantizer.CopyModel(m).Graph).Sites.Sum(s => SizeBudget.OptionsFor(s).First(o => o.Plan is IntPlan { Scheme.Bits: 4 } or PalettePlan).Error);
        Assert.True(plan.TotalError <= uniform, $"{plan.TotalError} vs {uniform}");
        var e = Assert.Throws<CompressionException>(() => SizeBudget.Choose(m, 100_000));
        Assert.Contains("cannot meet --max-size", e.Message);
        Assert.Equal(4_000_000, SizeBudget.ParseSize("4MB"));
        Assert.Equal(4L << 20, SizeBudget.ParseSize("4MiB"));
        Assert.Throws<CompressionException>(() => SizeBudget.ParseSize("four"));
    }

    [Fact]
    public void Save_OverTheLimit_OrToAnUnwritablePath_LeavesNoFile()
    {
        var m = TestModels.Small();
        var result = Quantizer.Quantize(m, new QuantizeOptions());
        using var dir = new TempDir();
        var path = dir.File("q.onnx");
        Assert.Throws<CompressionException>(() => result.Save(path, 1000));
        Assert.False(File.Exists(path));
        File.WriteAllText(dir.File("blocker"), "x");
        Assert.ThrowsAny<IOException>(() => result.Save(Path.Combine(dir.File("blocker"), "q.onnx")));
        Assert.Equal(["blocker"], Directory.GetFiles(dir.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void BadOptions_FailBeforeWork()
    {
        var m = TestModels.Small();
        Assert.Contains("block size", Assert.Throws<CompressionException>(() => Quantizer.Quantize(m, new QuantizeOptions { Scheme = new QuantScheme(4, true, true, Granularity.Blocked, 1, 48) })).Message);
        Assert.Contains("qoperator", Assert.Throws<CompressionException>(() => Quantizer.Quantize(m, new QuantizeOptions { Scheme = new QuantScheme(4, true, true, Granularity.PerChannel), Format = QuantFormat.QOperator })).Message);
        Assert.Contains("matmulnbits", Assert.Throws<CompressionException>(() => Quantizer.Quantize(m, new QuantizeOptions { Format = QuantFormat.MatMulNBits })).Message);
        var e = Assert.Throws<Calibration.CalibrationSetException>(() => TestModels.Calibration(m, []));
        Assert.Contains("empty", e.Message);
        var wrong = new Dictionary<string, Tensor> { ["x"] = Tensor.Zeros(DType.Float32, [1, 3, 8, 8]) };
        Assert.Throws<Calibration.CalibrationSetException>(() => TestModels.Calibration(m, [wrong]));
    }
}
