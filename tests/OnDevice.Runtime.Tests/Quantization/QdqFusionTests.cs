using OnDevice.Core;
using Attr = OnDevice.Core.Attribute;

namespace OnDevice.Runtime.Tests.Quantization;

/// <summary>
/// The QDQ fusion pass: generated QDQ models run fused (integer kernels, weights kept quantized) and unfused
/// (Optimize = false: every DequantizeLinear/QuantizeLinear executed in float) and in ONNX Runtime; results agree within
/// one quantization step (activation QDQ) or float rounding (weight-only).
/// </summary>
[Trait("Category", "Agreement")]
public class QdqFusionTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static Tensor Q8(Random rng, DType t, params long[] dims) => QdqTestData.RandomBytes(rng, t, 40, 220, dims);

    /// <summary>x → Q → DQ → Conv(DQ(w per-channel), DQ(int32 bias)) → Relu → Q → DQ → Conv(depthwise) → Q → DQ → Flatten → Q → DQ → MatMul(DQ(w)) → Q → DQ.</summary>
    internal static Model ConvNet(int seed, long opset = 13)
    {
        var rng = new Random(seed);
        var b = new QOperatorOrtTests.Builder();
        b.G.Inputs.Add(ValueInfo.Tensor("x", DType.Float32, Shape.Of(1, 6, 10, 10)));
        string Qdq(string v, float s, int z)
        {
            var q = b.Op("QuantizeLinear", [v, b.F(s), b.U8(z)]);
            return b.Op("DequantizeLinear", [q, b.F(s), b.U8(z)]);
        }
        var x = Qdq("x", 0.02f, 128);
        var w1 = b.Op("DequantizeLinear", [b.C(Q8(rng, DType.Int8, 12, 6, 3, 3)), b.C(Tensor.FromArray<float>(Enumerable.Range(0, 12).Select(i => 0.003f + 0.0004f * i).ToArray(), [12])),
            b.C(Tensor.FromBytes(DType.Int8, [12], new byte[12]))], "", Attr.Of("axis", 0L));
        var bias = b.Op("DequantizeLinear", [b.C(Tensor.FromArray<int>(Enumerable.Range(0, 12).Select(_ => rng.Next(-2000, 2000)).ToArray(), [12])),
            b.C(Tensor.FromArray<float>(Enumerable.Range(0, 12).Select(i => 0.02f * (0.003f + 0.0004f * i)).ToArray(), [12])), b.C(Tensor.FromArray<int>(new int[12], [12]))], "", Attr.Of("axis", 0L));
        var c1 = b.Op("Conv", [x, w1, bias], "", Attr.Of("pads", new long[] { 1, 1, 1, 1 }));
        var r1 = Qdq(b.Op("Relu", [c1]), 0.03f, 0);
        var w2 = b.Op("DequantizeLinear", [b.C(Q8(rng, DType.UInt8, 12, 1, 3, 3)), b.F(0.005f), b.U8(128)]);
        var c2 = Qdq(b.Op("Conv", [r1, w2], "", Attr.Of("group", 12L), Attr.Of("strides", new long[] { 2, 2 }), Attr.Of("pads", new long[] { 1, 1, 1, 1 })), 0.04f, 120);
        var flat = Qdq(b.Op("Flatten", [c2]), 0.04f, 120);
        var wm = b.Op("DequantizeLinear", [b.C(Q8(rng, DType.Int8, 300, 16)), b.C(Tensor.FromArray<float>(Enumerable.Range(0, 16).Select(i => 0.001f + 0.0001f * i).ToArray(), [16])),
            b.C(Tensor.FromBytes(DType.Int8, [16], new byte[16]))], "", Attr.Of("axis", 1L));
        var y = b.Op("DequantizeLinear", [b.Op("QuantizeLinear", [b.Op("MatMul", [flat, wm]), b.F(0.1f), b.U8(128)]), b.F(0.1f), b.U8(128)]);
        var m = b.Model(y);
        m.OpsetImports[0] = new OpsetImport("", opset);
        return m;
    }

    [Fact]
    public void QdqConvNetwork_RunsFused_AndAgreesWithUnfusedAndOnnxRuntime()
    {
        var model = ConvNet(3);
        var x = Tensor.FromArray<float>(NodeRunner.Random(600, 9, -2f, 2f), [1, 6, 10, 10], "x");
        var inputs = new Dictionary<string, Tensor> { ["x"] = x };
        var fused = new InferenceSession(model, new SessionOptions { Threads = 1 });
        var ops = fused.OptimizedGraph.Nodes.Select(n => $"{n.Domain}.{n.OpType}").ToList();
        Assert.Equal(2, ops.Count(o => o == "com.ondevice.QLinearConv"));
        Assert.Contains("com.ondevice.QLinearMatMul", ops);
        Assert.Contains(fused.OptimizedGraph.Nodes, n => n.OpType == "QLinearMatMul" && n.GetInt("dequantize", 0) == 1); // the trailing DequantizeLinear folded in
        Assert.DoesNotContain(".Conv", ops);
        Assert.DoesNotContain(fused.OptimizedGraph.Initializers.Values, t => t.DType == DType.Float32 && t.ElementCount >= 300 * 16);
        var unfused = new InferenceSession(model, new SessionOptions { Threads = 1, Optimize = false });
        var yName = model.Graph.Outputs[0].Name;
        var yf = fused.Run(inputs)[yName].ToFloatArray();
        var yu = unfused.Run(inputs)[yName].ToFloatArray();
        Assert.True(yu.Distinct().Count() > 4, "the unfused output is nearly constant");
        QdqTestData.Within(yu, yf, 0.1f, "fused vs unfused");
        var ort = OrtPeer.Run(model, inputs, out var why);
        if (ort is null) { output.WriteLine($"SKIPPED ONNX Runtime comparison: {why}"); return; }
        QdqTestData.Within(ort[yName].ToFloatArray(), yf, 0.1f, "fused vs ONNX Runtime");
    }

    /// <summary>
    /// x → Q/DQ → Conv 1×1 → Q → DQ → BatchNormalization → HardSwish written out (x·clip(x+3, 0, 6)/6) → per-channel
    /// Mul/Add → Q → DQ → depthwise Conv → Q → DQ: the float island between the two convolutions is a function of one
    /// byte per channel, so it must run as a lookup table inside the first convolution's epilogue.
    /// </summary>
    internal static Model IslandNet(int seed, bool signedActivations)
    {
        var rng = new Random(seed);
        var b = new QOperatorOrtTests.Builder();
        b.G.Inputs.Add(ValueInfo.Tensor("x", DType.Float32, Shape.Of(1, 8, 6, 21)));
        var at = signedActivations ? DType.Int8 : DType.UInt8;
        string Z(int v) => b.C(Tensor.FromBytes(at, [], new byte[] { (byte)(signedActivations ? v - 128 : v) }));
        string Qdq(string v, float s, int z) => b.Op("DequantizeLinear", [b.Op("QuantizeLinear", [v, b.F(s), Z(z)]), b.F(s), Z(z)]);
        string PerChannel(int c, float lo, float hi, long[] dims) => b.C(Tensor.FromArray<float>(Enumerable.Range(0, c).Select(_ => lo + (float)rng.NextDouble() * (hi - lo)).ToArray(), dims));
        var x = Qdq("x", 0.02f, 128);
        var w1 = b.Op("DequantizeLinear", [b.C(Q8(rng, DType.Int8, 12, 8, 1, 1)), b.C(Tensor.FromArray<float>(Enumerable.Range(0, 12).Select(i => 0.004f + 0.0003f * i).ToArray(), [12])),
            b.C(Tensor.FromBytes(DType.Int8, [12], new byte[12]))], "", Attr.Of("axis", 0L));
        var c1 = Qdq(b.Op("Conv", [x, w1]), 0.05f, 128);
        var bn = b.Op("BatchNormalization", [c1, PerChannel(12, 0.5f, 1.5f, [12]), PerChannel(12, -0.5f, 0.5f, [12]), PerChannel(12, -0.2f, 0.2f, [12]), PerChannel(12, 0.5f, 2f, [12])]);
        var clip = b.Op("Clip", [b.Op("Add", [bn, b.F(3f)]), b.F(0f), b.F(6f)]);
        var hs = b.Op("Div", [b.Op("Mul", [bn, clip]), b.F(6f)]);
        var affine = b.Op("Add", [b.Op("Mul", [PerChannel(12, 0.8f, 1.2f, [1, 12, 1, 1]), hs]), PerChannel(12, -0.1f, 0.1f, [12, 1, 1])]);
        var island = Qdq(affine, 0.03f, 120);
        var w2 = b.Op("DequantizeLinear", [b.C(Q8(rng, DType.UInt8, 12, 1, 3, 3)), b.F(0.005f), b.U8(128)]);
        var y = Qdq(b.Op("Conv", [island, w2], "", Attr.Of("group", 12L), Attr.Of("pads", new long[] { 1, 1, 1, 1 })), 0.02f, 128);
        var m = b.Model(y);
        m.OpsetImports[0] = new OpsetImport("", 13);
        return m;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void FloatIslandBetweenConvs_RunsAsLookupInTheConvEpilogue(bool signedActivations)
    {
        var model = IslandNet(4, signedActivations);
        var x = Tensor.FromArray<float>(NodeRunner.Random(8 * 6 * 21, 5, -2f, 2f), [1, 8, 6, 21], "x");
        var inputs = new Dictionary<string, Tensor> { ["x"] = x };
        var fused = new InferenceSession(model, new SessionOptions { Threads = 1 });
        var ops = fused.OptimizedGraph.Nodes.Select(n => $"{n.Domain}.{n.OpType}").ToList();
        output.WriteLine(string.Join(", ", ops));
        Assert.Equal(2, ops.Count(o => o == "com.ondevice.QLinearConv"));
        Assert.DoesNotContain(ops, o => o.EndsWith(".BatchNormalization") || o.EndsWith(".Clip") || o.EndsWith("FusedElementwise") || o.EndsWith(".Mul"));
        Assert.Contains(fused.OptimizedGraph.Nodes, n => n.OpType == "QLinearConv" && n.Inputs.Count == 10);
        var unfused = new InferenceSession(model, new SessionOptions { Threads = 1, Optimize = false });
        var yName = model.Graph.Outputs[0].Name;
        var yf = fused.Run(inputs)[yName].ToFloatArray();
        var yu = unfused.Run(inputs)[yName].ToFloatArray();
        Assert.True(yu.Distinct().Count() > 8, "the unfused output is nearly constant");
        QdqTestData.Within(yu, yf, 0.02f, "fused vs unfused");
        var ort = OrtPeer.Run(model, inputs, out var why);
        if (ort is null) { output.WriteLine($"SKIPPED ONNX Runtime comparison: {why}"); return; }
        QdqTestData.Within(ort[yName].ToFloatArray(), yf, 0.02f, "fused vs ONNX Runtime");
    }

    [Fact]
    public void Lookup_IsRefused_WhenAConstantBroadcastsAlongPositions()
    {
        // Mul by a [21] constant varies along the width: not a per-channel function, so the island stays float.
        var b = new QOperatorOrtTests.Builder();
        b.G.Inputs.Add(ValueInfo.Tensor("x", DType.Float32, Shape.Of(1, 4, 3, 21)));
        var dq = b.Op("DequantizeLinear", [b.Op("QuantizeLinear", ["x", b.F(0.02f), b.U8(128)]), b.F(0.02f), b.U8(128)]);
        var mul = b.Op("Mul", [dq, b.C(Tensor.FromArray<float>(Enumerable.Range(0, 21).Select(i => 0.5f + 0.05f * i).ToArray(), [21]))]);
        var y = b.Op("DequantizeLinear", [b.Op("QuantizeLinear", [mul, b.F(0.03f), b.U8(128)]), b.F(0.03f), b.U8(128)]);
        var model = b.Model(y);
        var s = new InferenceSession(model, new SessionOptions { Threads = 1 });
        Assert.DoesNotContain(s.OptimizedGraph.Nodes, n => n.OpType == "QLinearLookup");
        var x = Tensor.FromArray<float>(NodeRunner.Random(4 * 3 * 21, 2, -2f, 2f), [1, 4, 3, 21], "x");
        var expected = new InferenceSession(model, new SessionOptions { Threads = 1, Optimize = false }).Run(new Dictionary<string, Tensor> { ["x"] = x })[y].ToFloatArray();
        Assert.Equal(expected, s.Run(new Dictionary<string, Tensor> { ["x"] = x })[y].ToFloatArray());
    }

    public static TheoryData<string> WeightKinds() => new() { "int8 per-column", "uint8 per-tensor", "int4 block 32", "uint4 block 16" };

    [Theory]
    [MemberData(nameof(WeightKinds))]
    public void WeightOnlyMatMul_RunsAsMatMulNBits(string kind)
    {
        var rng = new Random(kind.Length);
        int k = 72, n = 40;
        var b = new QOperatorOrtTests.Builder();
        b.G.Inputs.Add(ValueInfo.Tensor("x", DType.Float32, Shape.Of(3, k)));
        string dq;
        long opset = 13;
        switch (kind)
        {
            case "int8 per-column":
                dq = b.Op("DequantizeLinear", [b.C(Q8(rng, DType.Int8, k, n)), b.C(Tensor.FromArray<float>(NodeRunner.Random(n, 1, 0.001f, 0.01f), [n])),
                    b.C(Tensor.FromBytes(DType.Int8, [n], Enumerable.Range(0, n).Select(i => (byte)(sbyte)(i % 5 - 2)).ToArray()))], "", Attr.Of("axis", 1L));
                break;
            case "uint8 per-tensor":
                dq = b.Op("DequantizeLinear", [b.C(Q8(rng, DType.UInt8, k, n)), b.F(0.004f), b.U8(131)]);
                break;
            default:
            {
                opset = 21;
                bool signed = kind.StartsWith("int4");
                int bs = kind.EndsWith("32") ? 32 : 16, blocks = (k + bs - 1) / bs;
                var t = signed ? DType.Int4 : DType.UInt4;
                var q = Int4.Pack(Enumerable.Range(0, k * n).Select(_ => signed ? rng.Next(-8, 8) : rng.Next(16)).ToArray());
                var zp = Int4.Pack(Enumerable.Range(0, blocks * n).Select(_ => signed ? rng.Next(-2, 2) : rng.Next(6, 10)).ToArray());
                dq = b.Op("DequantizeLinear", [b.C(Tensor.FromBytes(t, [k, n], q)), b.C(Tensor.FromArray<float>(NodeRunner.Random(blocks * n, 2, 0.01f, 0.05f), [blocks, n])),
                    b.C(Tensor.FromBytes(t, [blocks, n], zp))], "", Attr.Of("axis", 0L), Attr.Of("block_size", (long)bs));
                break;
            }
        }
        var y = b.Op("MatMul", ["x", dq]);
        var model = b.Model(y);
        model.OpsetImports[0] = new OpsetImport("", opset);
        var inputs = new Dictionary<string, Tensor> { ["x"] = Tensor.FromArray<float>(NodeRunner.Random(3 * k, 4), [3, k], "x") };
        var fused = new InferenceSession(model, new SessionOptions { Threads = 1 });
        Assert.Contains(fused.OptimizedGraph.Nodes, nd => nd.OpType == "MatMulNBits");
        Assert.DoesNotContain(fused.OptimizedGraph.Initializers.Values, t => t.DType == DType.Float32 && t.ElementCount >= k * n);
        var yf = fused.Run(inputs)[y].ToFloatArray();
        var yu = new InferenceSession(model, new SessionOptions { Threads = 1, Optimize = false }).Run(inputs)[y].ToFloatArray();
        NodeRunner.Close(yu, yf, 1e-4f, 1e-5f);
        // ONNX Runtime's own optimizations turn DequantizeLinear → MatMul into MatMulNBits with int8 activations
        // (accuracy level 4 by default), about 0.5% off; its unoptimized graph is the exact float definition.
        var ort = OrtPeer.Run(model, inputs, out var why, "disabled");
        if (ort is null) { output.WriteLine($"SKIPPED ONNX Runtime comparison: {why}"); return; }
        NodeRunner.Close(ort[y].ToFloatArray(), yf, 1e-4f, 1e-5f);
    }
}
