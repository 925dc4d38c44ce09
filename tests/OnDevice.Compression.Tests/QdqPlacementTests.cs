using OnDevice.Compression.Calibration;
using OnDevice.Compression.Quantization;
using OnDevice.Core;
using OnDevice.Runtime;

namespace OnDevice.Compression.Tests;

/// <summary>Conv affine folding, the activations Q/DQ placement and cross-layer equalization.</summary>
public class QdqPlacementTests
{
    private static float[] R(Random rng, int n, float scale) => Enumerable.Range(0, n).Select(_ => (float)(TestModels.NextGaussian(rng) * scale)).ToArray();

    /// <summary>
    /// x[1,3,12,12] → Conv 3×3 → BatchNormalization → Mul [1,C,1,1] → Add scalar → Sub [C,1,1] → Div scalar →
    /// decomposed hardswish (Add 3 → Clip 0..6 → Mul x → Div 6) → Mul scalar → Add scalar → "a" → pointwise Conv →
    /// swish (x·sigmoid(x)) → "s"; "s" → GlobalAveragePool → Conv → HardSigmoid → Mul with "s" (squeeze-excitation) → out.
    /// </summary>
    public static Model Chain(int seed = 3, int c = 8)
    {
        var rng = new Random(seed);
        var g = new Graph { Name = "chain" };
        g.Inputs.Add(new ValueInfo("x", new TensorTypeInfo(DType.Float32, Shape.Of(1, 3, 12, 12))));
        g.Outputs.Add(new ValueInfo("out", new TensorTypeInfo(DType.Float32, Shape.Of(1, c, 12, 12))));
        void Init(string name, float[] v, params long[] dims) => g.AddInitializer(Tensor.FromArray<float>(v, dims, name));
        Init("w1", R(rng, c * 27, 0.4f), c, 3, 3, 3);
        Init("b1", R(rng, c, 0.1f), c);
        Init("bn_scale", Enumerable.Range(0, c).Select(i => 0.5f + i * 0.3f).ToArray(), c);
        Init("bn_bias", R(rng, c, 0.3f), c);
        Init("bn_mean", R(rng, c, 0.2f), c);
        Init("bn_var", Enumerable.Range(0, c).Select(i => 0.5f + (float)rng.NextDouble()).ToArray(), c);
        Init("mul_c", Enumerable.Range(0, c).Select(i => 0.7f + 0.1f * i).ToArray(), 1, c, 1, 1);
        Init("add_s", [0.25f], 1);
        Init("sub_c", R(rng, c, 0.2f), c, 1, 1);
        Init("div_s", [1.5f]);
        Init("three", [3f]);
        Init("six", [6f]);
        Init("zero", [0f]);
        Init("lab_w", [1.1f], 1);
        Init("lab_b", [-0.05f], 1);
        Init("w2", R(rng, c * c, 0.3f), c, c, 1, 1);
        Init("b2", R(rng, c, 0.1f), c);
        Init("w3", R(rng, c * c, 0.3f), c, c, 1, 1);
        g.Nodes.Add(new Node("Conv", ["x", "w1", "b1"], ["y1"], "conv1").With(Core.Attribute.Of("pads", new long[] { 1, 1, 1, 1 })));
        g.Nodes.Add(new Node("BatchNormalization", ["y1", "bn_scale", "bn_bias", "bn_mean", "bn_var"], ["bn"], "bn").With(Core.Attribute.Of("epsilon", 1e-3f)));
        g.Nodes.Add(new Node("Mul", ["mul_c", "bn"], ["m1"], "mul1"));
        g.Nodes.Add(new Node("Add", ["m1", "add_s"], ["a1"], "add1"));
        g.Nodes.Add(new Node("Sub", ["a1", "sub_c"], ["s1"], "sub1"));
        g.Nodes.Add(new Node("Div", ["s1", "div_s"], ["d1"], "div1"));
        g.Nodes.Add(new Node("Add", ["d1", "three"], ["h1"], "hs_add"));
        g.Nodes.Add(new Node("Clip", ["h1", "zero", "six"], ["h2"], "hs_clip"));
        g.Nodes.Add(new Node("Mul", ["d1", "h2"], ["h3"], "hs_mul"));
        g.Nodes.Add(new Node("Div", ["h3", "six"], ["h4"], "hs_div"));
        g.Nodes.Add(new Node("Mul", ["lab_w", "h4"], ["l1"], "lab_mul"));
        g.Nodes.Add(new Node("Add", ["l1", "lab_b"], ["a"], "lab_add"));
        g.Nodes.Add(new Node("Conv", ["a", "w2", "b2"], ["y2"], "conv2"));
        g.Nodes.Add(new Node("Sigmoid", ["y2"], ["sg"], "swish_sigmoid"));
        g.Nodes.Add(new Node("Mul", ["y2", "sg"], ["s"], "swish_mul"));
        g.Nodes.Add(new Node("GlobalAveragePool", ["s"], ["p"], "gap"));
        g.Nodes.Add(new Node("Conv", ["p", "w3"], ["y3"], "se_conv"));
        g.Nodes.Add(new Node("HardSigmoid", ["y3"], ["gate"], "se_gate"));
        g.Nodes.Add(new Node("Mul", ["s", "gate"], ["out"], "se_mul"));
        var m = new Model(g) { IrVersion = 8 };
        m.OpsetImports.Add(new OpsetImport("", 13));
        return m;
    }

    private static List<IReadOnlyDictionary<string, Tensor>> Feeds(int count, int seed = 5, long[]? dims = null)
    {
        var rng = new Random(seed);
        dims ??= [1, 3, 12, 12];
        long n = Tensor.CountElements(dims);
        return Enumerable.Range(0, count).Select(_ => (IReadOnlyDictionary<string, Tensor>)new Dictionary<string, Tensor>
        {
            ["x"] = Tensor.FromArray<float>(R(rng, (int)n, 1f), dims, "x"),
        }).ToList();
    }

    private static double MaxError(Model a, Model b, IReadOnlyList<IReadOnlyDictionary<string, Tensor>> feeds, string output = "out")
    {
        var sa = new InferenceSession(a, new SessionOptions { Threads = 1, Optimize = false });
        var sb = new InferenceSession(b, new SessionOptions { Threads = 1, Optimize = false });
        return feeds.Max(f => TestModels.RelativeError(sb.Run(f)[output], sa.Run(f)[output]));
    }

    [Fact]
    public void Fold_BatchNormAndConstantAffines_IntoTheConv_Exactly()
    {
        var m = Chain();
        var w1 = m.Graph.Initializers["w1"];
        var w1Values = w1.ToFloatArray();
        var folded = Quantizer.CopyModel(m);
        int n = ConvFolding.Fold(folded.Graph);
        Assert.Equal(5, n); // BatchNormalization, Mul, Add, Sub, Div after conv1
        Assert.DoesNotContain(folded.Graph.Nodes, x => x.OpType == "BatchNormalization");
        var conv1 = folded.Graph.Nodes.Single(x => x.Name == "conv1");
        Assert.Equal("d1", conv1.Outputs[0]); // the folded conv writes the last folded value: its name (and range) are kept
        Assert.Equal(m.Graph.Nodes.Count - 5, folded.Graph.Nodes.Count);
        // The folded ops' constants are gone; the shared scalars of the hardswish stay.
        foreach (var gone in new[] { "bn_scale", "bn_bias", "bn_mean", "bn_var", "mul_c", "add_s", "sub_c", "div_s" })
            Assert.False(folded.Graph.Initializers.ContainsKey(gone), gone);
        Assert.True(folded.Graph.Initializers.ContainsKey("six"));
        // The input model's tensors are untouched (folding writes new ones).
        Assert.Same(w1, m.Graph.Initializers["w1"]);
        Assert.Equal(w1Values, w1.ToFloatArray());
        Assert.NotSame(w1, folded.Graph.Initializers["w1"]);
        var err = MaxError(m, folded, Feeds(3));
        Assert.True(err < 1e-5, $"folding changed the output by {err:E2}");
        // Idempotent: nothing left to fold.
        Assert.Equal(0, ConvFolding.Fold(folded.Graph));
    }

    [Fact]
    public void Fold_LeavesBranchingAndNonConstantReadersAlone()
    {
        var m = Chain();
        // conv1's output read twice: no fold.
        m.Graph.Nodes.Add(new Node("Relu", ["y1"], ["extra"], "extra_reader"));
        m.Graph.Outputs.Add(new ValueInfo("extra", new TensorTypeInfo(DType.Float32, Shape.Of(1, 8, 12, 12))));
        Assert.Equal(0, ConvFolding.Fold(m.Graph));
        // A Mul whose other input is computed (squeeze-excitation) is not an affine.
        var c = Chain();
        ConvFolding.Fold(c.Graph);
        Assert.Contains(c.Graph.Nodes, x => x.Name == "se_mul");
        Assert.Contains(c.Graph.Nodes, x => x.Name == "hs_add");
        // A weight shared by two convs is not folded.
        var s = Chain();
        s.Graph.Nodes.Add(new Node("Conv", ["x", "w1"], ["y1b"], "conv1b").With(Core.Attribute.Of("pads", new long[] { 1, 1, 1, 1 })));
        s.Graph.Outputs.Add(new ValueInfo("y1b", new TensorTypeInfo(DType.Float32, Shape.Of(1, 8, 12, 12))));
        Assert.Equal(0, ConvFolding.Fold(s.Graph));
        Assert.Contains(s.Graph.Nodes, x => x.OpType == "BatchNormalization");
        // A bias computed at run time (here a graph input) cannot take the affine: no fold, no error.
        var cb = Chain();
        cb.Graph.Inputs.Add(new ValueInfo("bias_in", new TensorTypeInfo(DType.Float32, Shape.Of(8))));
        cb.Graph.Nodes.Single(x => x.Name == "conv1").Inputs[2] = "bias_in";
        cb.Graph.Initializers.Remove("b1");
        Assert.Equal(0, ConvFolding.Fold(cb.Graph));
        Assert.Contains(cb.Graph.Nodes, x => x.OpType == "BatchNormalization");
    }

    [Fact]
    public void ChainEnds_FollowAffinesHardswishSwish_StopAtSqueezeExcitation()
    {
        var m = Chain();
        ConvFolding.Fold(m.Graph);
        var index = new GraphIndex(m.Graph);
        Assert.Equal("a", ActivationChains.End(index, "d1"));  // hardswish + learnable affine after the folded conv
        Assert.Equal("s", ActivationChains.End(index, "y2"));  // swish: s has two readers (pool and the SE Mul): stop there
        Assert.Equal("gate", ActivationChains.End(index, "y3"));
        Assert.Equal("out", ActivationChains.End(index, "out"));
        var values = ActivationCalibrator.LayerValues(m.Graph, QdqPlacement.Activations);
        Assert.Equal(["x", "a", "s", "p", "gate"], values);
        Assert.Equal(["x", "d1", "a", "y2", "p", "y3"], ActivationCalibrator.LayerValues(m.Graph, QdqPlacement.Ops));
    }

    [Fact]
    public void ActivationsPlacement_OneRoundingPointPerLayer_AndCloseToFloat()
    {
        var m = Chain();
        var feeds = Feeds(6);
        var ranges = TestModels.MinMax(m, feeds); // taken on the unfolded model: folding keeps the names
        var baseOptions = new QuantizeOptions { ActivationRanges = ranges, ActivationType = DType.UInt8, Calibration = TestModels.Calibration(m, feeds), MeasureSensitivity = false, FoldConvAffine = true };
        var ops = Quantizer.Quantize(m, baseOptions);
        var act = Quantizer.Quantize(m, baseOptions with { Placement = QdqPlacement.Activations });
        string[] Quantized(Model q) => q.Graph.Nodes.Where(n => n.OpType == "QuantizeLinear" && !q.Graph.Initializers.ContainsKey(n.Inputs[0])).Select(n => n.Inputs[0]).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(["a", "d1", "p", "x", "y2", "y3"], Quantized(ops.Model));
        Assert.Equal(["a", "gate", "p", "s", "x"], Quantized(act.Model));
        Assert.Contains(act.Report.Notes, n => n.Contains("folded 5", StringComparison.Ordinal));
        double eOps = MaxError(m, ops.Model, feeds), eAct = MaxError(m, act.Model, feeds);
        Assert.True(eAct < 0.05, $"activations placement error {eAct:F4}");
        Assert.True(eOps < 0.05, $"ops placement error {eOps:F4}");
    }

    [Fact]
    public void Folding_DefaultsOnForTheActivationsPlacementAndEqualization_OnlyThere()
    {
        Assert.False(new QuantizeOptions().Folds);
        Assert.True(new QuantizeOptions { Placement = QdqPlacement.Activations }.Folds);
        Assert.True(new QuantizeOptions { Equalize = true }.Folds);
        Assert.False(new QuantizeOptions { Placement = QdqPlacement.Activations, FoldConvAffine = false }.Folds);
        Assert.True(new QuantizeOptions { FoldConvAffine = true }.Folds);
        // The ops placement leaves the graph as it was: the written model still has its BatchNormalization.
        var m = Chain();
        var r = Quantizer.Quantize(m, new QuantizeOptions());
        Assert.Contains(r.Model.Graph.Nodes, n => n.OpType == "BatchNormalization");
        Assert.DoesNotContain(r.Report.Notes, n => n.StartsWith("folded", StringComparison.Ordinal));
    }

    [Fact]
    public void ActivationsPlacement_KeepSensitive_RanksAndKeepsChainEnds()
    {
        var m = Chain();
        var feeds = Feeds(6);
        var ranges = TestModels.MinMax(m, feeds);
        // A badly clipped range on the hardswish chain's end must be the one kept float.
        var bad = new Dictionary<string, ActivationRange>(ranges) { ["a"] = new(ranges["a"].Min / 20, ranges["a"].Max / 20) };
        var options = new QuantizeOptions
        {
            ActivationRanges = bad, Calibration = TestModels.Calibration(m, feeds), MeasureSensitivity = false, Placement = QdqPlacement.Activations, KeepSensitive = 1,
        };
        var r = Quantizer.Quantize(m, options);
        Assert.Equal("a", Assert.Single(r.Report.KeptAtHigherPrecision).Name);
        Assert.DoesNotContain(r.Report.SensitivityRanking, k => k.Name is "d1" or "y2"); // raw conv outputs are no rounding points here
        Assert.DoesNotContain(r.Model.Graph.Nodes, n => n.OpType == "QuantizeLinear" && n.Inputs[0] == "a");
        Assert.Contains(r.Model.Graph.Nodes, n => n.OpType == "QuantizeLinear" && n.Inputs[0] == "s");
        // The writing conv counts toward what keeping a chain end costs.
        var prepared = Quantizer.Prepare(m, options).Model;
        var cost = SensitivityPolicy.ReaderWeightElements(prepared, [], QdqPlacement.Activations);
        Assert.Equal(8 * 27, cost["a"]); // conv1 (8x3x3x3) writes it, conv2 (8x8x1x1) reads it
        Assert.Equal(64, SensitivityPolicy.ReaderWeightElements(prepared, [])["a"]);
    }

    /// <summary>x → Conv 3×3 s2 (channels of very different scale) → BatchNormalization → depthwise Conv 3×3 → out: the PP-OCR stem.</summary>
    private static Model Stem(bool relu = false, int c = 8)
    {
        var rng = new Random(11);
        var g = new Graph { Name = "stem" };
        g.Inputs.Add(new ValueInfo("x", new TensorTypeInfo(DType.Float32, Shape.Of(1, 3, 16, 16))));
        g.Outputs.Add(new ValueInfo("out", new TensorTypeInfo(DType.Float32, Shape.Of(1, c, 8, 8))));
        var w1 = R(rng, c * 27, 0.3f);
        for (int o = 0; o < c; o++) for (int i = 0; i < 27; i++) w1[o * 27 + i] *= MathF.Pow(3, o % 4); // spreads 1..27
        g.AddInitializer(Tensor.FromArray<float>(w1, [c, 3, 3, 3], "w1"));
        g.AddInitializer(Tensor.FromArray<float>(Enumerable.Range(0, c).Select(i => 1f + 0.2f * i).ToArray(), [c], "s"));
        g.AddInitializer(Tensor.FromArray<float>(R(rng, c, 0.5f), [c], "b"));
        g.AddInitializer(Tensor.FromArray<float>(R(rng, c, 0.1f), [c], "mean"));
        g.AddInitializer(Tensor.FromArray<float>(Enumerable.Range(0, c).Select(i => 1f).ToArray(), [c], "var"));
        g.AddInitializer(Tensor.FromArray<float>(R(rng, c * 9, 0.3f), [c, 1, 3, 3], "w2"));
        g.AddInitializer(Tensor.FromArray<float>(R(rng, c, 0.1f), [c], "b2"));
        g.Nodes.Add(new Node("Conv", ["x", "w1"], ["y1"], "stem_conv").With(Core.Attribute.Of("pads", new long[] { 1, 1, 1, 1 })).With(Core.Attribute.Of("strides", new long[] { 2, 2 })));
        g.Nodes.Add(new Node("BatchNormalization", ["y1", "s", "b", "mean", "var"], ["bn"], "bn"));
        string mid = "bn";
        if (relu) { g.Nodes.Add(new Node("Relu", ["bn"], ["r"], "relu")); mid = "r"; }
        g.Nodes.Add(new Node("Conv", [mid, "w2", "b2"], ["out"], "dw").With(Core.Attribute.Of("pads", new long[] { 1, 1, 1, 1 })).With(Core.Attribute.Of("group", (long)c)));
        var m = new Model(g) { IrVersion = 8 };
        m.OpsetImports.Add(new OpsetImport("", 13));
        return m;
    }

    private static double[] ChannelMaxima(Model m, string value, IEnumerable<IReadOnlyDictionary<string, Tensor>> feeds)
    {
        var s = new InferenceSession(m, new SessionOptions { Threads = 1, Optimize = false });
        double[]? mx = null;
        foreach (var f in feeds)
            s.Run(f, (name, buf) =>
            {
                if (name != value) return;
                var x = buf.Span<float>();
                int c = buf.Shape[1], inner = x.Length / c;
                mx ??= new double[c];
                for (int i = 0; i < x.Length; i++) mx[i / inner % c] = Math.Max(mx[i / inner % c], Math.Abs(x[i]));
            });
        return mx!;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Equalize_IsExactInFloat_AndEqualizesTheIntermediateChannels(bool relu)
    {
        var m = Stem(relu);
        var feeds = Feeds(8, 21, [1, 3, 16, 16]);
        var cal = TestModels.Calibration(m, feeds);
        var (prepared, notes) = Quantizer.Prepare(m, new QuantizeOptions { Equalize = true, Calibration = cal });
        Assert.Contains(notes, n => n.StartsWith("equalized stem_conv -> dw", StringComparison.Ordinal));
        var err = MaxError(m, prepared, feeds);
        Assert.True(err < 1e-5, $"equalization changed the output by {err:E2}");
        string mid = relu ? "r" : "bn";
        var before = ChannelMaxima(m, mid, feeds);
        var after = ChannelMaxima(prepared, mid, feeds);
        Assert.True(before.Max() / before.Where(x => x > 0).Min() > 5, "the test model should have unequal channels");
        Assert.True(after.Max() / after.Where(x => x > 0).Min() < 1.001, $"spread after: {after.Max() / after.Where(x => x > 0).Min():F4}");
    }

    [Fact]
    public void Equalize_LowersStaticInt8Error_OnTheStem()
    {
        var m = Stem();
        var feeds = Feeds(8, 21, [1, 3, 16, 16]);
        var cal = TestModels.Calibration(m, feeds);
        double Error(bool equalize)
        {
            var (p, _) = Quantizer.Prepare(m, new QuantizeOptions { Equalize = equalize, Calibration = cal });
            var q = Quantizer.Quantize(p, new QuantizeOptions { ActivationRanges = TestModels.MinMax(p, feeds), Calibration = cal, MeasureSensitivity = false, Placement = QdqPlacement.Activations });
            // Relative error on the output channels whose intermediate channel was the narrowest (0 and 4): the ones a
            // shared per-tensor grid serves worst, and equalization best.
            var sa = new InferenceSession(m, new SessionOptions { Threads = 1 });
            var sb = new InferenceSession(q.Model, new SessionOptions { Threads = 1 });
            double num = 0, den = 0;
            foreach (var f in feeds)
            {
                var y = sa.Run(f)["out"].ToFloatArray();
                var yq = sb.Run(f)["out"].ToFloatArray();
                for (int i = 0; i < y.Length; i++)
                    if (i / 64 % 4 == 0) { num += (yq[i] - y[i]) * (double)(yq[i] - y[i]); den += (double)y[i] * y[i]; }
            }
            return Math.Sqrt(num / den);
        }
        double plain = Error(false), eq = Error(true);
        Assert.True(eq < 0.5 * plain, $"equalized {eq:F4} vs plain {plain:F4} (narrow channels)");
    }

    [Fact]
    public void Equalize_NeedsCalibration()
    {
        var ex = Assert.Throws<CompressionException>(() => Quantizer.Quantize(Stem(), new QuantizeOptions { Equalize = true }));
        Assert.Contains("--equalize needs --calibration", ex.Message, StringComparison.Ordinal);
    }
}
