using OnDevice.Core;
using OnDevice.Runtime.Kernels.Quantization;
using Attr = OnDevice.Core.Attribute;

namespace OnDevice.Runtime.Tests.Quantization;

/// <summary>
/// The QDQ fusions of <c>FuseQdqNeck</c> (ConvTranspose, FPN neck): generated QDQ models run fused and unfused
/// (Optimize = false: every DequantizeLinear/QuantizeLinear in float) and in ONNX Runtime; the integer kernels are
/// also checked byte for byte against their scalar reference twins.
/// </summary>
[Trait("Category", "Agreement")]
public class QdqNeckFusionTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static Tensor Bytes(Random rng, DType t, params long[] dims) => QdqTestData.RandomBytes(rng, t, 30, 230, dims);

    /// <summary>
    /// x → Q/DQ → ConvTranspose(DQ(w [8, 5, k, k] per output channel on axis 1 or per tensor), bias) → Q → DQ →
    /// BatchNormalization → Relu → Q → DQ: the ConvTranspose must run as QLinearConvTranspose with the island after it
    /// as its lookup.
    /// </summary>
    internal static Model ConvTransposeNet(int seed, bool signedActivations, int kernel, int stride, int pad, bool perChannel)
    {
        var rng = new Random(seed);
        var b = new QOperatorOrtTests.Builder();
        b.G.Inputs.Add(ValueInfo.Tensor("x", DType.Float32, Shape.Of(2, 8, 5, 37)));
        var at = signedActivations ? DType.Int8 : DType.UInt8;
        string Z(int v) => b.C(Tensor.FromBytes(at, [], new byte[] { (byte)(signedActivations ? v - 128 : v) }));
        string Qdq(string v, float s, int z) => b.Op("DequantizeLinear", [b.Op("QuantizeLinear", [v, b.F(s), Z(z)]), b.F(s), Z(z)]);
        string PerChannel(int c, float lo, float hi) => b.C(Tensor.FromArray<float>(Enumerable.Range(0, c).Select(_ => lo + (float)rng.NextDouble() * (hi - lo)).ToArray(), [c]));
        var x = Qdq("x", 0.02f, 128);
        string w = perChannel
            ? b.Op("DequantizeLinear", [b.C(Bytes(rng, DType.Int8, 8, 5, kernel, kernel)), b.C(Tensor.FromArray<float>(Enumerable.Range(0, 5).Select(i => 0.004f + 0.001f * i).ToArray(), [5])),
                b.C(Tensor.FromBytes(DType.Int8, [5], new byte[5]))], "", Attr.Of("axis", 1L))
            : b.Op("DequantizeLinear", [b.C(Bytes(rng, DType.UInt8, 8, 5, kernel, kernel)), b.F(0.005f), b.U8(128)]);
        var ct = b.Op("ConvTranspose", [x, w, PerChannel(5, -0.3f, 0.3f)], "", Attr.Of("kernel_shape", new long[] { kernel, kernel }),
            Attr.Of("strides", new long[] { stride, stride }), Attr.Of("pads", new long[] { pad, pad, pad, pad }));
        var c1 = Qdq(ct, 0.04f, 128);
        // Scale/√var ≤ 0.6: one step of the ConvTranspose's output (0.04) moves the island's output by less than one of its steps (0.03).
        var bn = b.Op("BatchNormalization", [c1, PerChannel(5, 0.3f, 0.6f), PerChannel(5, -0.5f, 0.5f), PerChannel(5, -0.2f, 0.2f), PerChannel(5, 1f, 2f)]);
        var y = Qdq(b.Op("Relu", [bn]), 0.03f, 10);
        var m = b.Model(y);
        m.OpsetImports[0] = new OpsetImport("", 13);
        return m;
    }

    [Theory]
    [InlineData(false, 2, 2, 0, true)]
    [InlineData(true, 2, 2, 0, true)]
    [InlineData(false, 3, 3, 0, false)]
    [InlineData(true, 3, 2, 1, true)]
    public void ConvTransposeQdq_RunsAsQLinearConvTranspose_AndAgreesWithUnfusedAndOnnxRuntime(bool signedActivations, int kernel, int stride, int pad, bool perChannel)
    {
        var model = ConvTransposeNet(7, signedActivations, kernel, stride, pad, perChannel);
        var x = Tensor.FromArray<float>(NodeRunner.Random(2 * 8 * 5 * 37, 11, -2f, 2f), [2, 8, 5, 37], "x");
        var inputs = new Dictionary<string, Tensor> { ["x"] = x };
        var fused = new InferenceSession(model, new SessionOptions { Threads = 2 });
        var ops = fused.OptimizedGraph.Nodes.Select(n => $"{n.Domain}.{n.OpType}").ToList();
        output.WriteLine(string.Join(", ", ops));
        Assert.Contains("com.ondevice.QLinearConvTranspose", ops);
        Assert.DoesNotContain(".ConvTranspose", ops);
        Assert.DoesNotContain(ops, o => o.EndsWith(".BatchNormalization") || o.EndsWith("QLinearLookup")); // the island is the kernel's lookup
        var unfused = new InferenceSession(model, new SessionOptions { Threads = 1, Optimize = false });
        var yName = model.Graph.Outputs[0].Name;
        var yf = fused.Run(inputs)[yName].ToFloatArray();
        var yu = unfused.Run(inputs)[yName].ToFloatArray();
        Assert.True(yu.Distinct().Count() > 8, "the unfused output is nearly constant");
        // Integer sums requantized in float vs the float ConvTranspose's rounding: one step of its output at most, which
        // the island maps to at most one output step.
        QdqTestData.Within(yu, yf, 0.03f, "fused vs unfused");
        var ort = OrtPeer.Run(model, inputs, out var why);
        if (ort is null) { output.WriteLine($"SKIPPED ONNX Runtime comparison: {why}"); return; }
        QdqTestData.Within(ort[yName].ToFloatArray(), yf, 0.03f, "fused vs ONNX Runtime");
    }

    public static TheoryData<int, int, int, int, int, int, bool, int> KernelCases() => new()
    {
        // c, m, kernel (= stride), h, w, images, signed x, lookup rows (0, 1 or m)
        { 24, 24, 2, 7, 70, 1, false, 24 },
        { 24, 1, 2, 9, 33, 2, false, 0 },
        { 5, 3, 2, 3, 17, 1, true, 1 },
        { 13, 7, 3, 4, 50, 2, true, 7 },
        { 16, 16, 2, 40, 40, 1, false, 0 }, // several GEMM bands
    };

    /// <summary>The GEMM + interleave path (kernel = stride) gives exactly the bytes of the direct definition.</summary>
    [Theory]
    [MemberData(nameof(KernelCases))]
    public unsafe void QLinearConvTranspose_Blockwise_MatchesReferenceTwin(int c, int m, int k, int h, int w, int images, bool signedX, int lookupRows)
    {
        var rng = new Random(c * 31 + m * 7 + k + h + w);
        var xt = signedX ? DType.Int8 : DType.UInt8;
        var x = Bytes(rng, xt, images, c, h, w);
        var wq = Bytes(rng, DType.Int8, c, m, k, k);
        var ws = Enumerable.Range(0, m).Select(i => 0.002f + 0.0005f * i).ToArray();
        var zw = new byte[m];
        var bias = Enumerable.Range(0, m).Select(_ => rng.Next(-3000, 3000)).ToArray();
        float sx = 0.03f, sy = 0.05f;
        byte zx = signedX ? (byte)0xFD : (byte)120, zy = 118; // int8 −3 or uint8 120
        var table = new byte[Math.Max(1, lookupRows) * 256];
        rng.NextBytes(table);
        var inits = new Dictionary<string, Tensor>
        {
            ["sx"] = Tensor.Scalar(sx), ["zx"] = Tensor.FromBytes(xt, [], new[] { zx }), ["w"] = wq, ["sw"] = Tensor.FromArray<float>(ws, [m]),
            ["zw"] = Tensor.FromBytes(DType.Int8, [m], zw), ["sy"] = Tensor.Scalar(sy), ["zy"] = Tensor.FromBytes(DType.UInt8, [], new[] { zy }),
            ["b"] = Tensor.FromArray<int>(bias, [m]),
        };
        var inputs = new List<string> { "x", "sx", "zx", "w", "sw", "zw", "sy", "zy", "b" };
        if (lookupRows > 0)
        {
            inits["t"] = Tensor.FromBytes(DType.UInt8, lookupRows == 1 ? [256] : [lookupRows, 256], table);
            inputs.Add("t");
        }
        var g = new Graph { Name = "ct" };
        g.Inputs.Add(ValueInfo.Tensor("x", xt, null));
        foreach (var (name, t) in inits) g.AddInitializer(t.Clone(name));
        var node = new Node("QLinearConvTranspose", inputs, ["y"], "ct", "com.ondevice")
            .With(Attr.Of("kernel_shape", new long[] { k, k })).With(Attr.Of("strides", new long[] { k, k }));
        g.Nodes.Add(node);
        g.Outputs.Add(new ValueInfo("y"));
        var model = new Model(g);
        model.OpsetImports.Add(new OpsetImport("", 17));
        model.OpsetImports.Add(new OpsetImport("com.ondevice", 1));
        var y = new InferenceSession(model, new SessionOptions { Threads = 2 }).Run(new Dictionary<string, Tensor> { ["x"] = x })["y"];
        Assert.Equal(new long[] { images, m, h * k, w * k }, y.Dims);

        var multipliers = ws.Select(s => sx * s / sy).ToArray();
        var expected = new byte[y.ElementCount];
        fixed (byte* px = x.Bytes)
        fixed (byte* pw = wq.Bytes)
        fixed (byte* pt = table)
        fixed (byte* pe = expected)
            QLinearConvTransposeKernel.Reference(px, signedX, images, c, h, w, signedX ? -3 : 120, pw, true, m, k, k, new int[m], [k, k], [1, 1], [0, 0],
                h * k, w * k, new QLinearConvTransposeKernel.Requant(bias, multipliers, zy, 0, 255), pt, lookupRows, pe);
        Assert.Equal(expected, y.Bytes.ToArray());
        Assert.True(expected.Distinct().Count() > 16, "the expected output is nearly constant");
    }

    /// <summary>The vector interleave (kw = 2) against its scalar loop on lengths around the 32-byte step.</summary>
    [Theory]
    [InlineData(31)]
    [InlineData(32)]
    [InlineData(70)]
    [InlineData(160)]
    public unsafe void Interleave_Vector_MatchesScalar(int width)
    {
        var src = new byte[2 * width];
        new Random(width).NextBytes(src);
        var got = new byte[2 * width];
        fixed (byte* ps = src)
        fixed (byte* pg = got)
            QLinearConvTransposeKernel.Interleave(ps, width, 2, width, pg);
        for (int i = 0; i < width; i++)
        {
            Assert.Equal(src[i], got[2 * i]);
            Assert.Equal(src[width + i], got[2 * i + 1]);
        }
    }

    /// <summary>
    /// An FPN neck as in PP-OCR det, batch 2: two levels with squeeze-excitation (x + x·HardSigmoid(GlobalAveragePool(x))),
    /// the coarse level quantized, upsampled (nearest, ×2) and added to the fine one, and a Concat of an upsampled and a
    /// full-size branch quantized at the end.
    /// </summary>
    internal static Model NeckNet(bool signedActivations)
    {
        var b = new QOperatorOrtTests.Builder();
        b.G.Inputs.Add(ValueInfo.Tensor("x0", DType.Float32, Shape.Of(2, 8, 8, 40)));
        b.G.Inputs.Add(ValueInfo.Tensor("x1", DType.Float32, Shape.Of(2, 8, 4, 20)));
        var at = signedActivations ? DType.Int8 : DType.UInt8;
        string Z(int v) => b.C(Tensor.FromBytes(at, [], new byte[] { (byte)(signedActivations ? v - 128 : v) }));
        string Q(string v, float s, int z) => b.Op("QuantizeLinear", [v, b.F(s), Z(z)]);
        string Dq(string v, float s, int z) => b.Op("DequantizeLinear", [v, b.F(s), Z(z)]);
        string Se(string x, string gate) => b.Op("Add", [x, b.Op("Mul", [x, b.Op(gate, [b.Op("GlobalAveragePool", [x])])])]);
        string Up(string v) => b.Op("Resize", [v, b.C(Tensor.FromArray<float>([], [0])), b.C(Tensor.FromArray<float>([1, 1, 2, 2], [4]))], "",
            Attr.Of("mode", "nearest"), Attr.Of("coordinate_transformation_mode", "asymmetric"), Attr.Of("nearest_mode", "floor"));
        var dq0 = Dq(Q("x0", 0.05f, 128), 0.05f, 128);
        var dq1 = Dq(Q("x1", 0.04f, 120), 0.04f, 120);
        var a0 = Se(dq0, "HardSigmoid");
        var a1 = Se(dq1, "HardSigmoid");
        var up = Up(Dq(Q(a1, 0.06f, 128), 0.06f, 128));
        var dp0 = Dq(Q(b.Op("Add", [a0, up]), 0.07f, 128), 0.07f, 128);
        var b0 = Se(dp0, "HardSigmoid");
        var b1 = Se(dq1, "Sigmoid");
        var y = Dq(Q(b.Op("Concat", [Up(b1), b0], "", Attr.Of("axis", 1L)), 0.05f, 128), 0.05f, 128);
        var m = b.Model(y);
        m.OpsetImports[0] = new OpsetImport("", 13);
        return m;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void FpnNeck_RunsAsTables_BitExactWithUnfused_AndAgreesWithOnnxRuntime(bool signedActivations)
    {
        var model = NeckNet(signedActivations);
        var inputs = new Dictionary<string, Tensor>
        {
            ["x0"] = Tensor.FromArray<float>(NodeRunner.Random(2 * 8 * 8 * 40, 21, -3f, 3f), [2, 8, 8, 40], "x0"),
            ["x1"] = Tensor.FromArray<float>(NodeRunner.Random(2 * 8 * 4 * 20, 22, -2f, 2.5f), [2, 8, 4, 20], "x1"),
        };
        var fused = new InferenceSession(model, new SessionOptions { Threads = 2 });
        var ops = fused.OptimizedGraph.Nodes.Select(n => $"{n.Domain}.{n.OpType}").ToList();
        output.WriteLine(string.Join(", ", ops));
        Assert.Equal(3, ops.Count(o => o == "com.ondevice.QLinearTableLookup")); // Q(a1), and b1, b0 after the Concat
        Assert.Equal(1, ops.Count(o => o == "com.ondevice.QLinearTableAdd"));   // Q(a0 + up(DQ(Q(a1))))
        Assert.Contains(fused.OptimizedGraph.Nodes, n => n.OpType == "QLinearTableAdd" && n.GetInts("upsample") is [2, 2]);
        // The SE pooling of a dequantized tensor read by nothing else runs on the bytes (x1's DQ has two readers: stays).
        Assert.Equal(2, ops.Count(o => o == "com.ondevice.DequantizeGlobalAveragePool"));
        // Left in float: only the per-channel gates and the islands' copies on the [1, C, 1, 256] probes.
        var shapes = fused.OptimizedGraph.Nodes.Where(n => n.OpType is "Mul" or "Add").Select(n => n.Outputs[0]).ToList();
        Assert.All(shapes, o => Assert.Contains("_probe", o));
        var unfused = new InferenceSession(model, new SessionOptions { Threads = 1, Optimize = false });
        var yName = model.Graph.Outputs[0].Name;
        var yf = fused.Run(inputs)[yName].ToFloatArray();
        var yu = unfused.Run(inputs)[yName].ToFloatArray();
        Assert.True(yu.Distinct().Count() > 16, "the unfused output is nearly constant");
        // Every rewrite computes the same float operations on the same values: identical bytes.
        Assert.Equal(yu, yf);
        var ort = OrtPeer.Run(model, inputs, out var why);
        if (ort is null) { output.WriteLine($"SKIPPED ONNX Runtime comparison: {why}"); return; }
        // ONNX Runtime's own QuantizeLinear/float kernels may round a value the other way: one step, rarely.
        QdqTestData.Within(ort[yName].ToFloatArray(), yf, 0.05f, "fused vs ONNX Runtime", 0.95);
    }

    /// <summary>The 256-entry float lookup (AVX-512 permute tree) and the float row widening (×2 permutes) against their scalar twins.</summary>
    [Theory]
    [InlineData(15)]
    [InlineData(16)]
    [InlineData(77)]
    [InlineData(300)]
    public unsafe void TableLookupAndWiden_Vector_MatchScalar(int count)
    {
        var rng = new Random(count);
        var table = Enumerable.Range(0, 256).Select(_ => (float)rng.NextDouble() * 10 - 5).ToArray();
        var idx = new byte[count];
        rng.NextBytes(idx);
        var start = Enumerable.Range(0, count).Select(i => i * 0.25f).ToArray();
        foreach (bool accumulate in new[] { false, true })
        {
            var vec = start.ToArray();
            var sca = start.ToArray();
            fixed (byte* pi = idx)
            fixed (float* pt = table)
            fixed (float* pv = vec)
            fixed (float* ps = sca)
            {
                TableAddKernel.Lookup(pi, count, pt, pv, accumulate);
                TableAddKernel.Lookup(pi, count, pt, ps, accumulate, vector: false);
            }
            Assert.Equal(sca, vec);
            for (int i = 0; i < count; i++) Assert.Equal(accumulate ? start[i] + table[idx[i]] : table[idx[i]], sca[i]);
        }
        foreach (int f in new[] { 2, 3 })
        {
            var wideF = new float[count];
            var wideS = new float[count];
            fixed (float* pt = table)
            fixed (float* pf = wideF)
            fixed (float* ps = wideS)
            {
                TableAddKernel.Widen(pt, f, Math.Min(count, 256 * f), pf);
                TableAddKernel.Widen(pt, f, Math.Min(count, 256 * f), ps, vector: false);
            }
            for (int j = 0; j < Math.Min(count, 256 * f); j++) Assert.Equal(table[j / f], wideF[j]);
            Assert.Equal(wideS, wideF);
        }
    }

    /// <summary>A float graph output computed from DequantizeLinear by constant element-wise ops (det's probability map):
    /// one float lookup per byte, identical values.</summary>
    [Fact]
    public void DequantizedOutputIsland_RunsAsFloatTable_BitExact()
    {
        var b = new QOperatorOrtTests.Builder();
        b.G.Inputs.Add(ValueInfo.Tensor("x", DType.Float32, Shape.Of(2, 3, 5, 40)));
        var dq = b.Op("DequantizeLinear", [b.Op("QuantizeLinear", ["x", b.F(0.03f), b.U8(100)]), b.F(0.03f), b.U8(100)]);
        var bias = b.C(Tensor.FromArray<float>([0.1f, -0.2f, 0.3f], [1, 3, 1, 1]));
        var y = b.Op("Sigmoid", [b.Op("Add", [dq, bias])]);
        var model = b.Model(y);
        model.OpsetImports[0] = new OpsetImport("", 13);
        var inputs = new Dictionary<string, Tensor> { ["x"] = Tensor.FromArray<float>(NodeRunner.Random(2 * 3 * 5 * 40, 5, -4f, 4f), [2, 3, 5, 40], "x") };
        var fused = new InferenceSession(model, new SessionOptions { Threads = 2 });
        Assert.Contains(fused.OptimizedGraph.Nodes, n => n.OpType == "QLinearTableLookup");
        Assert.DoesNotContain(fused.OptimizedGraph.Nodes, n => n.OpType is "Sigmoid" or "DequantizeLinear" && !n.Outputs[0].Contains("_probe"));
        var yf = fused.Run(inputs)[y].ToFloatArray();
        var yu = new InferenceSession(model, new SessionOptions { Threads = 1, Optimize = false }).Run(inputs)[y].ToFloatArray();
        Assert.True(yu.Distinct().Count() > 50);
        Assert.Equal(yu, yf);
    }

    private static Model OneNode(Node node, Dictionary<string, Tensor> inits, params (string Name, DType Type)[] inputs)
    {
        var g = new Graph { Name = "one" };
        foreach (var (name, type) in inputs) g.Inputs.Add(ValueInfo.Tensor(name, type, null));
        foreach (var (name, t) in inits) g.AddInitializer(t.Clone(name));
        g.Nodes.Add(node);
        g.Outputs.Add(new ValueInfo(node.Outputs[0]));
        var m = new Model(g);
        m.OpsetImports.Add(new OpsetImport("", 17));
        m.OpsetImports.Add(new OpsetImport("com.ondevice", 1));
        return m;
    }

    /// <summary>Tables and inputs that do not fit fail with a message naming the op, before any output is written.</summary>
    [Fact]
    public void TableKernels_RejectMismatchedInputs()
    {
        var a = Tensor.FromBytes(DType.UInt8, [1, 4, 6, 8], new byte[4 * 6 * 8]);
        var inits = new Dictionary<string, Tensor>
        {
            ["ta"] = Tensor.FromArray<float>(new float[4 * 256], [1, 4, 1, 256]),
            ["tb3"] = Tensor.FromArray<float>(new float[3 * 256], [1, 3, 1, 256]), // 3 channels for 4
            ["sy"] = Tensor.Scalar(0.1f), ["zy"] = Tensor.FromBytes(DType.UInt8, [], new byte[] { 128 }),
        };
        var wrongTable = OneNode(new Node("QLinearTableAdd", ["a", "ta", "b", "tb3", "sy", "zy"], ["y"], "add", "com.ondevice"), inits, ("a", DType.UInt8), ("b", DType.UInt8));
        var e1 = Assert.Throws<InvalidOperationException>(() => new InferenceSession(wrongTable, new SessionOptions { Threads = 1 }).Run(new Dictionary<string, Tensor> { ["a"] = a, ["b"] = a }));
        Assert.Contains("QLinearTableAdd", e1.Message);
        var up = OneNode(new Node("QLinearTableAdd", ["a", "ta", "b", "ta", "sy", "zy"], ["y"], "add", "com.ondevice").With(Attr.Of("upsample", new long[] { 2, 2 })),
            inits, ("a", DType.UInt8), ("b", DType.UInt8));
        var e2 = Assert.Throws<InvalidOperationException>(() => new InferenceSession(up, new SessionOptions { Threads = 1 }).Run(new Dictionary<string, Tensor> { ["a"] = a, ["b"] = a }));
        Assert.Contains("upsampled", e2.Message);
        var lookup = OneNode(new Node("QLinearTableLookup", ["a", "t"], ["y"], "lut", "com.ondevice"),
            new Dictionary<string, Tensor> { ["t"] = Tensor.FromBytes(DType.UInt8, [5, 256], new byte[5 * 256]) }, ("a", DType.UInt8));
        var e3 = Assert.Throws<InvalidOperationException>(() => new InferenceSession(lookup, new SessionOptions { Threads = 1 }).Run(new Dictionary<string, Tensor> { ["a"] = a }));
        Assert.Contains("does not fit", e3.Message);
    }

    /// <summary>A grouped or output_padding ConvTranspose is not fused (it stays float and still runs).</summary>
    [Fact]
    public void ConvTranspose_WithGroups_StaysFloat()
    {
        var rng = new Random(3);
        var b = new QOperatorOrtTests.Builder();
        b.G.Inputs.Add(ValueInfo.Tensor("x", DType.Float32, Shape.Of(1, 4, 3, 5)));
        var x = b.Op("DequantizeLinear", [b.Op("QuantizeLinear", ["x", b.F(0.02f), b.U8(128)]), b.F(0.02f), b.U8(128)]);
        var w = b.Op("DequantizeLinear", [b.C(Bytes(rng, DType.UInt8, 4, 2, 2, 2)), b.F(0.01f), b.U8(128)]);
        var ct = b.Op("ConvTranspose", [x, w], "", Attr.Of("strides", new long[] { 2, 2 }), Attr.Of("group", 2L));
        var y = b.Op("DequantizeLinear", [b.Op("QuantizeLinear", [ct, b.F(0.05f), b.U8(128)]), b.F(0.05f), b.U8(128)]);
        var model = b.Model(y);
        var s = new InferenceSession(model, new SessionOptions { Threads = 1 });
        Assert.DoesNotContain(s.OptimizedGraph.Nodes, n => n.OpType == "QLinearConvTranspose");
        var inputs = new Dictionary<string, Tensor> { ["x"] = Tensor.FromArray<float>(NodeRunner.Random(60, 4, -2f, 2f), [1, 4, 3, 5], "x") };
        var expected = new InferenceSession(model, new SessionOptions { Threads = 1, Optimize = false }).Run(inputs)[y].ToFloatArray();
        Assert.Equal(expected, s.Run(inputs)[y].ToFloatArray());
    }
}
