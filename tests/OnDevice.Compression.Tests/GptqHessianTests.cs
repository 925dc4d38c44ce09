using OnDevice.Compression.Calibration;
using OnDevice.Compression.Gptq;
using OnDevice.Core;
using OnDevice.Runtime;
using Attribute = OnDevice.Core.Attribute;

namespace OnDevice.Compression.Tests;

/// <summary>
/// The statistics must describe exactly the rows the weight multiplies: for every output channel m,
/// w_m·XᵀX·w_mᵀ = Σ y_m² where y is the layer's output as the runtime computes it (no bias). A wrong im2col order,
/// padding, stride, dilation or group would break the identity for random weights.
/// </summary>
public class GptqHessianTests
{
    private static Model Single(Node node, ValueInfo input, Tensor weight, bool reluFirst = false)
    {
        var g = new Graph { Name = "one" };
        g.Inputs.Add(input);
        g.AddInitializer(weight);
        if (reluFirst)
        {
            g.Nodes.Add(new Node("Relu", [input.Name], ["act"], "relu"));
            node.Inputs[0] = "act";
        }
        g.Nodes.Add(node);
        g.Outputs.Add(ValueInfo.Tensor(node.Outputs[0], DType.Float32, null));
        var m = new Model(g);
        m.OpsetImports.Add(new OpsetImport("", 17));
        return m;
    }

    private static void AssertQuadraticFormsMatchOutputs(Model model, string weightName, Tensor input, Func<float[], int, int, int, double> outputSquares)
    {
        var feed = new Dictionary<string, Tensor> { [model.Graph.Inputs[0].Name] = input };
        var set = CalibrationSet.FromFeeds(model.Graph, [feed, feed]);
        var hs = HessianCollector.Collect(model, set, new HessianOptions { Threads = 1 });
        var h = hs.Layers[weightName];
        var (sites, _) = LayerSites.Find(model.Graph);
        var site = sites.Single();
        var y = new InferenceSession(model, new SessionOptions { Threads = 1 }).Run(feed)[model.Graph.Outputs[0].Name];
        var yv = y.ToFloatArray();
        int perGroup = site.Rows / h.Groups, k = h.Columns;
        for (int m = 0; m < site.Rows; m++)
        {
            var xtx = h.XtX(m / perGroup);
            double q = 0;
            for (int i = 0; i < k; i++)
                for (int j = 0; j < k; j++) q += (double)site.Matrix[m * k + i] * xtx[i * k + j] * site.Matrix[m * k + j];
            double expected = 2 * outputSquares(yv, m, site.Rows, (int)(yv.Length / site.Rows)); // the feed was given twice
            Assert.True(Math.Abs(q - expected) <= 1e-3 * (1 + expected), $"channel {m}: {q} vs {expected}");
        }
    }

    /// <summary>Σ over positions of y² for channel m of an NC... output.</summary>
    private static double ChannelSquares(float[] y, int m, int channels, int perChannelTotal, int batch)
    {
        int spatial = y.Length / batch / channels;
        double s = 0;
        for (int n = 0; n < batch; n++)
            for (int p = 0; p < spatial; p++)
            {
                double v = y[(n * channels + m) * spatial + p];
                s += v * v;
            }
        return s;
    }

    /// <summary>Σ of y² over the last-axis column m (MatMul/Gemm outputs).</summary>
    private static double ColumnSquares(float[] y, int m, int columns)
    {
        double s = 0;
        for (int i = m; i < y.Length; i += columns) s += (double)y[i] * y[i];
        return s;
    }

    [Theory]
    [InlineData("NOTSET", 2, 1)]
    [InlineData("SAME_UPPER", 1, 2)]
    [InlineData("SAME_LOWER", 2, 1)]
    [InlineData("VALID", 1, 1)]
    public void Conv2d_Im2colStatistics_WithStridesPadsDilationsAndGroups(string autoPad, int groups, int dilation)
    {
        int c = 4, m = 6, kh = 3, kw = 2;
        var w = Tensor.FromArray<float>(GptqRounderTests.Random(m * (c / groups) * kh * kw, 5), [m, c / groups, kh, kw], "W");
        var node = new Node("Conv", ["x", "W"], ["y"], "conv")
            .With(Attribute.Of("group", (long)groups))
            .With(Attribute.Of("strides", new long[] { 2, 1 }))
            .With(Attribute.Of("dilations", new long[] { dilation, 1 }));
        if (autoPad == "NOTSET") node.With(Attribute.Of("pads", new long[] { 1, 0, 2, 1 }));
        else node.With(Attribute.Of("auto_pad", autoPad));
        var model = Single(node, ValueInfo.Tensor("x", DType.Float32, null), w);
        var x = Tensor.FromArray<float>(GptqRounderTests.Random(2 * c * 9 * 11, 6), [2, c, 9, 11]);
        AssertQuadraticFormsMatchOutputs(model, "W", x, (y, ch, rows, _) => ChannelSquares(y, ch, rows, 0, 2));
    }

    [Fact]
    public void Conv1d_AndDepthwise_Statistics()
    {
        var w = Tensor.FromArray<float>(GptqRounderTests.Random(3 * 1 * 5, 8), [3, 1, 5], "W");
        var node = new Node("Conv", ["x", "W"], ["y"], "dw").With(Attribute.Of("group", 3L)).With(Attribute.Of("pads", new long[] { 2, 2 }));
        var model = Single(node, ValueInfo.Tensor("x", DType.Float32, null), w, reluFirst: true);
        var x = Tensor.FromArray<float>(GptqRounderTests.Random(1 * 3 * 17, 9), [1, 3, 17]);
        AssertQuadraticFormsMatchOutputs(model, "W", x, (y, ch, rows, _) => ChannelSquares(y, ch, rows, 0, 1));
    }

    [Fact]
    public void MatMul_WithBatchDimensions_FlattensThem()
    {
        int k = 30, n = 7;
        var w = Tensor.FromArray<float>(GptqRounderTests.Random(k * n, 10), [k, n], "W");
        var model = Single(new Node("MatMul", ["x", "W"], ["y"], "mm"), ValueInfo.Tensor("x", DType.Float32, null), w, reluFirst: true);
        var x = Tensor.FromArray<float>(GptqRounderTests.Random(2 * 3 * k, 11), [2, 3, k]);
        AssertQuadraticFormsMatchOutputs(model, "W", x, (y, col, rows, _) => ColumnSquares(y, col, n));
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, true)]
    public void Gemm_WithTransposes(bool transA, bool transB)
    {
        int k = 26, n = 5, rows = 9;
        var w = Tensor.FromArray<float>(GptqRounderTests.Random(k * n, 12), transB ? [n, k] : [k, n], "W");
        var node = new Node("Gemm", ["x", "W"], ["y"], "gemm").With(Attribute.Of("transA", transA ? 1L : 0L)).With(Attribute.Of("transB", transB ? 1L : 0L));
        var model = Single(node, ValueInfo.Tensor("x", DType.Float32, null), w);
        var x = Tensor.FromArray<float>(GptqRounderTests.Random(rows * k, 13), transA ? [k, rows] : [rows, k]);
        AssertQuadraticFormsMatchOutputs(model, "W", x, (y, col, _, _) => ColumnSquares(y, col, n));
    }

    [Fact]
    public void MemoryBudget_SplitsLayersIntoPasses_WithTheSameStatistics()
    {
        var g = new Graph { Name = "two" };
        g.Inputs.Add(ValueInfo.Tensor("x", DType.Float32, null));
        g.AddInitializer(Tensor.FromArray<float>(GptqRounderTests.Random(40 * 40, 1), [40, 40], "W1"));
        g.AddInitializer(Tensor.FromArray<float>(GptqRounderTests.Random(40 * 40, 2), [40, 40], "W2"));
        g.Nodes.Add(new Node("MatMul", ["x", "W1"], ["h"], "mm1"));
        g.Nodes.Add(new Node("MatMul", ["h", "W2"], ["y"], "mm2"));
        g.Outputs.Add(ValueInfo.Tensor("y", DType.Float32, null));
        var m = new Model(g);
        m.OpsetImports.Add(new OpsetImport("", 17));
        var set = CalibrationSet.FromFeeds(g, Enumerable.Range(0, 3).Select(i => (IReadOnlyDictionary<string, Tensor>)new Dictionary<string, Tensor> { ["x"] = Tensor.FromArray<float>(GptqRounderTests.Random(5 * 40, 20 + i), [5, 40]) }).ToList());
        var progress = new List<StageProgress>();
        var one = HessianCollector.Collect(m, set, new HessianOptions { Threads = 1 });
        var two = HessianCollector.Collect(m, set, new HessianOptions { Threads = 1, MaxBytes = 20_000, Progress = new SyncProgress<StageProgress>(progress.Add) });
        Assert.Equal(1, one.Passes);
        Assert.Equal(2, two.Passes);
        Assert.Equal(6, progress.Count);
        Assert.Equal(new StageProgress("hessian", 6, 6), progress[^1]);
        foreach (var w in new[] { "W1", "W2" })
        {
            Assert.Equal(one.Layers[w].XtX(0).ToArray(), two.Layers[w].XtX(0).ToArray());
            Assert.Equal(15, one.Layers[w].Samples);
        }
        Assert.Throws<ArgumentException>(() => HessianCollector.Collect(m, set, new HessianOptions { Weights = ["nope"] }));
    }
}
