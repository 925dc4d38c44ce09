using OnDevice.Core;
using OnDevice.Runtime.Kernels.Elementwise;
using OnDevice.Runtime.Kernels.Quantization;
using Attr = OnDevice.Core.Attribute;

namespace OnDevice.Runtime.Tests.Quantization;

/// <summary>
/// QDQ graphs quantized after the element-wise chain that follows each convolution (one rounding point per layer):
/// DequantizeLinear(x) → Conv(DequantizeLinear(w)) → [BatchNormalization] → chain → QuantizeLinear runs as one
/// QLinearConv with a float epilogue for every convolution geometry. Against the unfused graph (Optimize = false:
/// float convolution on dequantized values, then each node) the results are within one quantization step and almost
/// all equal, not bit-exact: the fused convolution sums exactly in integers and applies x_scale·w_scale once, the float
/// convolution rounds every partial sum (and BatchNormalization is folded into scale and bias in a different order), so
/// a value within float rounding of a rounding midpoint of QuantizeLinear can land on the neighbouring byte.
/// </summary>
[Trait("Category", "Agreement")]
public class QdqConvChainTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private sealed record Geometry(int C, int M, int H, int W, int K, long[] Strides, int Pad, int Group);

    private static readonly Dictionary<string, Geometry> Geometries = new()
    {
        ["pointwise"] = new(16, 24, 9, 37, 1, [1, 1], 0, 1),
        ["depthwise s1"] = new(16, 16, 10, 21, 3, [1, 1], 1, 16),
        ["depthwise s2"] = new(16, 16, 10, 21, 3, [2, 2], 1, 16),
        ["depthwise s2x1"] = new(16, 16, 10, 21, 3, [2, 1], 1, 16),
        ["stem 3x3 s2"] = new(3, 16, 24, 40, 3, [2, 2], 1, 1),
        ["grouped"] = new(16, 16, 8, 13, 3, [1, 1], 1, 4),
        ["3x3 wide"] = new(24, 96, 7, 11, 3, [1, 1], 1, 1),
        ["transpose 2x2 s2"] = new(16, 12, 9, 21, 2, [2, 2], 0, 1),
        ["transpose 3x3 s2 pad1"] = new(8, 12, 6, 7, 3, [2, 2], 1, 1),
    };

    private static readonly string[] Chains =
        ["bn+hardswish", "affine+relu", "decomposed hardswish", "x*sigmoid(x)", "bn+clip6", "hardsigmoid-sub", "bn only"];

    public static TheoryData<string, string, DType> Cases()
    {
        var d = new TheoryData<string, string, DType>();
        int i = 0;
        foreach (var g in Geometries.Keys)
            foreach (var c in Chains)
                if (!g.StartsWith("transpose") || c is "bn+hardswish" or "decomposed hardswish" or "affine+relu" or "bn only")
                    d.Add(g, c, i++ % 3 == 0 ? DType.Int8 : DType.UInt8);
        return d;
    }

    private static string BatchNorm(QOperatorOrtTests.Builder b, Random rng, string c, int m)
    {
        float[] V(double lo, double hi) => Enumerable.Range(0, m).Select(_ => (float)(lo + rng.NextDouble() * (hi - lo))).ToArray();
        return b.Op("BatchNormalization", [c, b.C(Tensor.FromArray<float>(V(-1.5, 1.5), [m])), b.C(Tensor.FromArray<float>(V(-0.5, 0.5), [m])),
            b.C(Tensor.FromArray<float>(V(-0.2, 0.2), [m])), b.C(Tensor.FromArray<float>(V(0.5, 2), [m]))]);
    }

    /// <summary>x → Q → DQ → Conv(DQ(w), bias) → chain → (Q → DQ unless <paramref name="floatOutput"/>).</summary>
    private static Model Net(string geometry, string chain, DType yType, bool floatOutput = false, int seed = 5)
    {
        var geo = Geometries[geometry];
        var rng = new Random(seed + geometry.Length * 31 + chain.Length);
        var b = new QOperatorOrtTests.Builder();
        b.G.Inputs.Add(ValueInfo.Tensor("x", DType.Float32, Shape.Of(1, geo.C, geo.H, geo.W)));
        bool signedX = chain.Length % 2 == 0;
        string zx = signedX ? b.C(Tensor.FromBytes(DType.Int8, [], new[] { unchecked((byte)(sbyte)-3) })) : b.U8(128);
        var xd = b.Op("DequantizeLinear", [b.Op("QuantizeLinear", ["x", b.F(0.03f), zx]), b.F(0.03f), zx]);
        int m = geo.M, cg = geo.C / geo.Group, k = cg * geo.K * geo.K;
        string wd;
        bool transpose = geometry.StartsWith("transpose");
        if (transpose)
        {
            // ConvTranspose weights [C, M, k, k], one scale per output channel on axis 1.
            var wq = new byte[geo.C * m * geo.K * geo.K];
            for (int i = 0; i < wq.Length; i++) wq[i] = (byte)(sbyte)rng.Next(-127, 128);
            var ws = Enumerable.Range(0, m).Select(i => 0.03f / MathF.Sqrt(geo.C) * (1 + 0.02f * i)).ToArray();
            wd = b.Op("DequantizeLinear", [b.C(Tensor.FromBytes(DType.Int8, [geo.C, m, geo.K, geo.K], wq)), b.C(Tensor.FromArray<float>(ws, [m])),
                b.C(Tensor.FromBytes(DType.Int8, [m], new byte[m]))], "", Attr.Of("axis", 1L));
        }
        else if (geometry == "grouped")
        {
            // uint8 weights, one scale and zero point for the whole tensor.
            var wq = QdqTestData.RandomBytes(rng, DType.UInt8, 0, 256, m, cg, geo.K, geo.K);
            wd = b.Op("DequantizeLinear", [b.C(wq), b.F(0.015f / MathF.Sqrt(k)), b.U8(120)]);
        }
        else
        {
            var wq = new byte[m * k];
            for (int i = 0; i < wq.Length; i++) wq[i] = (byte)(sbyte)rng.Next(-127, 128);
            var ws = Enumerable.Range(0, m).Select(i => 0.015f / MathF.Sqrt(k) * (1 + 0.02f * i)).ToArray();
            wd = b.Op("DequantizeLinear", [b.C(Tensor.FromBytes(DType.Int8, [m, cg, geo.K, geo.K], wq)), b.C(Tensor.FromArray<float>(ws, [m])),
                b.C(Tensor.FromBytes(DType.Int8, [m], new byte[m]))], "", Attr.Of("axis", 0L));
        }
        var bias = b.C(Tensor.FromArray<float>(Enumerable.Range(0, m).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray(), [m]));
        var c = b.Op(transpose ? "ConvTranspose" : "Conv", [xd, wd, bias], "", Attr.Of("kernel_shape", new long[] { geo.K, geo.K }), Attr.Of("strides", geo.Strides),
            Attr.Of("pads", new long[] { geo.Pad, geo.Pad, geo.Pad, geo.Pad }), Attr.Of("group", (long)geo.Group));
        string PerChannel(double lo, double hi, params long[] dims) =>
            b.C(Tensor.FromArray<float>(Enumerable.Range(0, m).Select(_ => (float)(lo + rng.NextDouble() * (hi - lo))).ToArray(), dims));
        string y = chain switch
        {
            "bn+hardswish" => b.Op("HardSwish", [BatchNorm(b, rng, c, m)]),
            "affine+relu" => b.Op("Relu", [b.Op("Add", [b.Op("Mul", [c, PerChannel(0.5, 1.5, 1, m, 1, 1)]), PerChannel(-0.5, 0.5, m, 1, 1)])]),
            "decomposed hardswish" => b.Op("Div", [b.Op("Mul", [c, b.Op("Clip", [b.Op("Add", [c, b.F(3f)]), b.F(0f), b.F(6f)])]), b.F(6f)]),
            "x*sigmoid(x)" => b.Op("Mul", [c, b.Op("Sigmoid", [c])]),
            "bn+clip6" => b.Op("Clip", [BatchNorm(b, rng, c, m), b.F(0f), b.F(6f)]),
            "hardsigmoid-sub" => b.Op("Sub", [b.Op("HardSigmoid", [c], "", Attr.Of("alpha", 0.3f), Attr.Of("beta", 0.4f)), b.F(0.25f)]),
            "bn only" => BatchNorm(b, rng, c, m),
            _ => throw new ArgumentException(chain),
        };
        if (floatOutput) return b.Model(y);
        string zy = yType == DType.Int8 ? b.C(Tensor.FromBytes(DType.Int8, [], new[] { unchecked((byte)(sbyte)-10) })) : b.U8(100);
        float sy = chain is "hardsigmoid-sub" ? 0.004f : 0.03f;
        return b.Model(b.Op("DequantizeLinear", [b.Op("QuantizeLinear", [y, b.F(sy), zy]), b.F(sy), zy]));
    }

    private static Tensor Input(string geometry, int seed)
    {
        var g = Geometries[geometry];
        return Tensor.FromArray<float>(NodeRunner.Random(g.C * g.H * g.W, seed, -3f, 3f), [1, g.C, g.H, g.W], "x");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ConvChainQuantize_RunsAsOneIntegerConv_WithinOneStepOfTheUnfusedGraph(string geometry, string chain, DType yType)
    {
        var model = Net(geometry, chain, yType);
        var fused = new InferenceSession(model, new SessionOptions { Threads = 1 });
        var nodes = fused.OptimizedGraph.Nodes;
        Assert.Single(nodes, n => n.OpType is "QLinearConv" or "QLinearConvTranspose" && n.GetInt("float_epilogue", 0) == 1);
        Assert.DoesNotContain(nodes, n => n.OpType is "Conv" or "ConvTranspose" or "FusedConv" or "BatchNormalization" or "FusedElementwise" or "HardSwish" or "Sigmoid" or "Mul");
        Assert.Single(nodes, n => n.OpType == "QuantizeLinear"); // the input's own
        var inputs = new Dictionary<string, Tensor> { ["x"] = Input(geometry, 8) };
        var name = model.Graph.Outputs[0].Name;
        var yf = fused.Run(inputs)[name].ToFloatArray();
        var yu = new InferenceSession(model, new SessionOptions { Threads = 1, Optimize = false }).Run(inputs)[name].ToFloatArray();
        float step = chain is "hardsigmoid-sub" ? 0.004f : 0.03f;
        Assert.True(yu.Distinct().Count() > 20, $"the output is nearly constant ({yu.Distinct().Count()} values)");
        QdqTestData.Within(yu, yf, step, $"{geometry} {chain}", minEqual: 0.97);
        // Several threads split the work differently (blocks, channels): same bytes.
        var y2 = new InferenceSession(model, new SessionOptions { Threads = 2 }).Run(inputs)[name].ToFloatArray();
        Assert.Equal(yf, y2);
    }

    [Theory]
    [InlineData("depthwise s2", "bn+hardswish")]
    [InlineData("pointwise", "affine+relu")]
    [InlineData("stem 3x3 s2", "x*sigmoid(x)")]
    [InlineData("3x3 wide", "decomposed hardswish")]
    public void ConvChainQuantize_AgreesWithOnnxRuntime(string geometry, string chain)
    {
        var model = Net(geometry, chain, DType.UInt8);
        var inputs = new Dictionary<string, Tensor> { ["x"] = Input(geometry, 9) };
        var ort = OrtPeer.Run(model, inputs, out var why);
        if (ort is null) { output.WriteLine($"SKIPPED ONNX Runtime comparison: {why}"); return; }
        var name = model.Graph.Outputs[0].Name;
        var yf = new InferenceSession(model, new SessionOptions { Threads = 1 }).Run(inputs)[name].ToFloatArray();
        QdqTestData.Within(ort[name].ToFloatArray(), yf, 0.03f, $"ORT {geometry} {chain}", minEqual: 0.97);
    }

    [Theory]
    [InlineData("depthwise s2", "bn+hardswish")]
    [InlineData("depthwise s2x1", "affine+relu")]
    [InlineData("stem 3x3 s2", "x*sigmoid(x)")]
    [InlineData("grouped", "bn+clip6")]
    [InlineData("pointwise", "decomposed hardswish")]
    [InlineData("3x3 wide", "hardsigmoid-sub")]
    public void ConvChainWithFloatResult_RunsAsIntegerConvWithTheChainInItsEpilogue(string geometry, string chain)
    {
        var model = Net(geometry, chain, DType.UInt8, floatOutput: true);
        var fused = new InferenceSession(model, new SessionOptions { Threads = 1 });
        var nodes = fused.OptimizedGraph.Nodes;
        Assert.Single(nodes, n => n.OpType == "QLinearConv" && n.GetInt("dequantize", 0) == 1 && n.Attr("body") is not null);
        Assert.DoesNotContain(nodes, n => n.OpType is "Conv" or "FusedConv" or "BatchNormalization" or "FusedElementwise" or "DequantizeLinear");
        var inputs = new Dictionary<string, Tensor> { ["x"] = Input(geometry, 10) };
        FloatResultMatchesUnfused(model, fused, inputs);
    }

    /// <summary>A float-result fusion against the unfused graph: float rounding only (exact integer sums vs rounded float
    /// partial sums), a few ulps of the output's magnitude, on an output that is not nearly constant.</summary>
    private static void FloatResultMatchesUnfused(Model model, InferenceSession fused, Dictionary<string, Tensor> inputs)
    {
        var name = model.Graph.Outputs[0].Name;
        var yf = fused.Run(inputs)[name].ToFloatArray();
        var yu = new InferenceSession(model, new SessionOptions { Threads = 1, Optimize = false }).Run(inputs)[name].ToFloatArray();
        float scale = yu.Max(MathF.Abs);
        Assert.True(yu.Distinct().Count() > 100 && scale > 0.1f, "the output is nearly constant");
        for (int i = 0; i < yu.Length; i++)
            Assert.True(MathF.Abs(yf[i] - yu[i]) <= 1e-5f * scale + 1e-6f, $"[{i}] {yf[i]} vs {yu[i]}");
    }

    [Theory]
    [InlineData(DType.UInt8, true)]
    [InlineData(DType.Int8, false)]
    public void MatMulWithFloatResult_RunsAsIntegerGemmWithFloatEpilogue(DType xType, bool withBias)
    {
        // DQ(x) → MatMul(DQ(int8 w, per column)) → [Add(bias)] → HardSwish: the MatMul's result is only quantized after its chain.
        var rng = new Random(17);
        var b = new QOperatorOrtTests.Builder();
        b.G.Inputs.Add(ValueInfo.Tensor("x", DType.Float32, Shape.Of(1, 40, 48)));
        string zx = xType == DType.Int8 ? b.C(Tensor.FromBytes(DType.Int8, [], new[] { unchecked((byte)(sbyte)4) })) : b.U8(120);
        var xd = b.Op("DequantizeLinear", [b.Op("QuantizeLinear", ["x", b.F(0.03f), zx]), b.F(0.03f), zx]);
        var wd = b.Op("DequantizeLinear", [b.C(QdqTestData.RandomBytes(rng, DType.Int8, 0, 0, 48, 36)),
            b.C(Tensor.FromArray<float>(Enumerable.Range(0, 36).Select(i => 0.002f + 0.0001f * i).ToArray(), [36])),
            b.C(Tensor.FromBytes(DType.Int8, [36], new byte[36]))], "", Attr.Of("axis", 1L));
        var y = b.Op("MatMul", [xd, wd]);
        if (withBias) y = b.Op("Add", [y, b.C(Tensor.FromArray<float>(Enumerable.Range(0, 36).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray(), [36]))]);
        var model = b.Model(b.Op("HardSwish", [y]));
        var fused = new InferenceSession(model, new SessionOptions { Threads = 1 });
        Assert.Single(fused.OptimizedGraph.Nodes, n => n.OpType == "QLinearMatMul" && n.GetInt("float_output", 0) == 1 && n.Inputs.Count == (withBias ? 9 : 8));
        Assert.DoesNotContain(fused.OptimizedGraph.Nodes, n => n.OpType is "MatMul" or "MatMulNBits" or "DequantizeLinear" or "Add");
        var inputs = new Dictionary<string, Tensor> { ["x"] = Tensor.FromArray<float>(NodeRunner.Random(40 * 48, 12, -3f, 3f), [1, 40, 48], "x") };
        FloatResultMatchesUnfused(model, fused, inputs);
    }

    [Theory]
    [InlineData(36, true)]
    [InlineData(7, false)]
    [InlineData(100, true)]
    public void IntegerMatMulToFloat_VectorMatchesItsScalarTwin(int n, bool withBias)
    {
        var rng = new Random(n);
        int rows = 5;
        var c = Enumerable.Range(0, rows * n).Select(_ => rng.Next(-2_000_000, 2_000_000)).ToArray();
        var sb = Enumerable.Range(0, n).Select(j => 0.001f + 0.0003f * j).ToArray();
        float[]? bias = withBias ? Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray() : null;
        float[] v = new float[rows * n], s = new float[rows * n];
        MatMulIntegerToFloatKernel.ToFloat(c, 0.031f, sb, bias, n, v, vector: true);
        MatMulIntegerToFloatKernel.ToFloat(c, 0.031f, sb, bias, n, s, vector: false);
        Assert.Equal(s, v);
    }

    [Fact]
    public void ClassicPlacement_ConvReluQuantize_StaysTheFullyIntegerQLinearConv()
    {
        var model = QdqFusionTests.ConvNet(3);
        var s = new InferenceSession(model, new SessionOptions { Threads = 1 });
        Assert.DoesNotContain(s.OptimizedGraph.Nodes, n => n.GetInt("float_epilogue", 0) == 1);
        Assert.Contains(s.OptimizedGraph.Nodes, n => n.OpType == "QLinearConv" && n.GetInt("relu", 0) == 1);
    }

    [Theory]
    [InlineData("pointwise")]
    [InlineData("transpose 2x2 s2")]
    public void FloatEpilogueConv_FollowedByAFloatIsland_KeepsTheIslandAsItsOwnLookup(string geometry)
    {
        // conv → chain → Q → DQ → Sigmoid → Q → DQ: the island becomes a byte lookup; it must not be folded into the
        // float-epilogue convolution (which has no lookup stage), and the result stays within a step of the unfused graph.
        var inner = Net(geometry, "bn+hardswish", DType.UInt8);
        var g = inner.Graph;
        var last = g.Outputs[0].Name;
        g.Outputs.Clear();
        string F(string name, float v) { g.AddInitializer(Tensor.FromArray<float>([v], [], name)); return name; }
        g.AddInitializer(Tensor.FromBytes(DType.UInt8, [], new byte[] { 0 }, "island_zp"));
        g.Nodes.Add(new Node("Sigmoid", [last], ["island_sig"]));
        g.Nodes.Add(new Node("QuantizeLinear", ["island_sig", F("island_s", 0.004f), "island_zp"], ["island_q"]));
        g.Nodes.Add(new Node("DequantizeLinear", ["island_q", "island_s", "island_zp"], ["island_y"]));
        g.Outputs.Add(ValueInfo.Tensor("island_y", DType.Float32, null));
        var fused = new InferenceSession(inner, new SessionOptions { Threads = 1 });
        Assert.Single(fused.OptimizedGraph.Nodes, n => n.GetInt("float_epilogue", 0) == 1 && n.Inputs.Count == 9);
        Assert.Contains(fused.OptimizedGraph.Nodes, n => n.OpType == "QLinearLookup");
        var inputs = new Dictionary<string, Tensor> { ["x"] = Input(geometry, 21) };
        var yf = fused.Run(inputs)["island_y"].ToFloatArray();
        var yu = new InferenceSession(inner, new SessionOptions { Threads = 1, Optimize = false }).Run(inputs)["island_y"].ToFloatArray();
        // One step of the first quantization (0.03) moves sigmoid by at most 0.03/4, under two steps of 0.004.
        QdqTestData.Within(yu, yf, 0.008f, $"{geometry} island", minEqual: 0.95);
    }

    [Fact]
    public void ChainReadingASecondRunTimeValue_IsNotFused()
    {
        // Conv → Add(·, another dequantized input) → Q: the chain has two roots; it stays as written (and runs correctly).
        var b = new QOperatorOrtTests.Builder();
        b.G.Inputs.Add(ValueInfo.Tensor("x", DType.Float32, Shape.Of(1, 4, 6, 6)));
        var xd = b.Op("DequantizeLinear", [b.Op("QuantizeLinear", ["x", b.F(0.03f), b.U8(128)]), b.F(0.03f), b.U8(128)]);
        var wd = b.Op("DequantizeLinear", [b.C(QdqTestData.RandomBytes(new Random(1), DType.Int8, 0, 0, 4, 4, 1, 1)), b.F(0.01f)]);
        var sum = b.Op("Add", [b.Op("Conv", [xd, wd]), xd]);
        var model = b.Model(b.Op("DequantizeLinear", [b.Op("QuantizeLinear", [sum, b.F(0.05f), b.U8(128)]), b.F(0.05f), b.U8(128)]));
        var s = new InferenceSession(model, new SessionOptions { Threads = 1 });
        Assert.DoesNotContain(s.OptimizedGraph.Nodes, n => n.GetInt("float_epilogue", 0) == 1);
        var inputs = new Dictionary<string, Tensor> { ["x"] = Tensor.FromArray<float>(NodeRunner.Random(144, 3, -3f, 3f), [1, 4, 6, 6], "x") };
        var name = model.Graph.Outputs[0].Name;
        QdqTestData.Within(new InferenceSession(model, new SessionOptions { Threads = 1, Optimize = false }).Run(inputs)[name].ToFloatArray(),
            s.Run(inputs)[name].ToFloatArray(), 0.05f, "two-root chain");
    }

    /// <summary>Chains for the twin tests: one the epilogue runs as a program, three it recognises and runs fused with the quantization.</summary>
    private static Graph TwinBody(string kind)
    {
        var body = new Graph { Name = "chain" };
        body.Inputs.Add(ValueInfo.Tensor("v", DType.Float32, null));
        body.AddInitializer(Tensor.FromArray<float>([0.5f, 1.5f, -2f], [1, 3, 1, 1], "s"));
        body.AddInitializer(Tensor.FromArray<float>([0.1f, -0.3f, 0.25f], [3, 1, 1], "t"));
        foreach (var (n, v) in new[] { ("three", 3f), ("zero", 0f), ("six", 6f) }) body.AddInitializer(Tensor.FromArray<float>([v], [], n));
        string last;
        switch (kind)
        {
            case "affine then hardswish (program)":
                body.Nodes.Add(new Node("Mul", ["v", "s"], ["a"]));
                body.Nodes.Add(new Node("Add", ["a", "t"], ["b"]));
                body.Nodes.Add(new Node("HardSwish", ["b"], ["y"]));
                last = "y";
                break;
            case "decomposed hardswish, Mul, Add":
                body.Nodes.Add(new Node("Add", ["v", "three"], ["a"]));
                body.Nodes.Add(new Node("Clip", ["a", "zero", "six"], ["b"]));
                body.Nodes.Add(new Node("Mul", ["v", "b"], ["c"]));
                body.Nodes.Add(new Node("Div", ["c", "six"], ["d"]));
                body.Nodes.Add(new Node("Mul", ["s", "d"], ["e"])); // constant first, as PaddleOCR exports it
                body.Nodes.Add(new Node("Add", ["e", "t"], ["y"]));
                last = "y";
                break;
            case "hardswish, Mul":
                body.Nodes.Add(new Node("HardSwish", ["v"], ["a"]));
                body.Nodes.Add(new Node("Mul", ["a", "s"], ["y"]));
                last = "y";
                break;
            case "clip":
                body.Nodes.Add(new Node("Clip", ["v", "zero", "six"], ["y"]));
                last = "y";
                break;
            default: throw new ArgumentException(kind);
        }
        body.Outputs.Add(ValueInfo.Tensor(last, DType.Float32, null));
        return body;
    }

    [Theory]
    [InlineData("affine then hardswish (program)", DType.UInt8, 7)]
    [InlineData("affine then hardswish (program)", DType.Int8, 1000)]
    [InlineData("decomposed hardswish, Mul, Add", DType.UInt8, 4099)]
    [InlineData("decomposed hardswish, Mul, Add", DType.Int8, 37)]
    [InlineData("hardswish, Mul", DType.UInt8, 1000)]
    [InlineData("clip", DType.Int8, 1000)]
    public unsafe void Epilogue_VectorRowMatchesItsScalarTwin_AndTheFusedChainIsWithinOneStepOfTheProgram(string kind, DType yType, int count)
    {
        var (min, max) = yType == DType.Int8 ? (-128, 127) : (0, 255);
        var epi = new ConvFloatEpilogue(TwinBody(kind), 4, 17, true, 0.02f, yType == DType.Int8 ? -5 : 130, min, max);
        Assert.Equal(!kind.EndsWith("(program)"), epi.Fused);
        var src = NodeRunner.Random(count, count, -4000f, 4000f).Select(v => MathF.Round(v)).ToArray();
        for (int channel = 0; channel < 3; channel++)
        {
            float[] a = new float[count], b = new float[count], c = new float[count];
            byte[] qa = new byte[count], qb = new byte[count], qc = new byte[count];
            fixed (float* ps = src) fixed (float* pa = a) fixed (float* pb = b) fixed (float* pc = c)
            fixed (byte* pqa = qa) fixed (byte* pqb = qb) fixed (byte* pqc = qc)
            {
                ConvFloatEpilogue.Affine(ps, count, 0.0007f * (channel + 1), 0.3f - channel, pa, vector: true);
                ConvFloatEpilogue.Affine(ps, count, 0.0007f * (channel + 1), 0.3f - channel, pb, vector: false);
                Assert.Equal(b, a);
                Array.Copy(a, c, count);
                epi.Row(pa, count, channel, pqa, vector: true);
                epi.Row(pb, count, channel, pqb, vector: false);
                epi.Row(pc, count, channel, pqc, vector: true, generic: true); // the program, then quantization
            }
            // From the raw sums (the depthwise path): the affine step inside the loop gives the same bytes.
            foreach (bool vec in new[] { true, false })
            {
                var sums = (float[])src.Clone();
                var qs = new byte[count];
                fixed (float* pss = sums) fixed (byte* pq = qs) epi.RowFromSums(pss, count, channel, 0.0007f * (channel + 1), 0.3f - channel, pq, vector: vec);
                Assert.Equal(qa, qs);
            }
            Assert.Equal(qb, qa);
            // The recognised chain folds its divisions into one multiplier: at most one step from the program, rarely.
            int differ = 0;
            for (int i = 0; i < count; i++)
            {
                int d = yType == DType.Int8 ? Math.Abs((sbyte)qa[i] - (sbyte)qc[i]) : Math.Abs(qa[i] - qc[i]);
                Assert.True(d <= 1, $"[{i}] fused {qa[i]} vs program {qc[i]}");
                if (d != 0) differ++;
            }
            Assert.True(differ <= Math.Max(1, count / 100), $"{differ} of {count} bytes differ from the program");
            if (count > 500) Assert.True(qa.Distinct().Count() > 20, "the row is nearly constant");
        }
    }
}
