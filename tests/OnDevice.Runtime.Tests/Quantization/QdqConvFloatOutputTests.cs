using OnDevice.Core;
using Attr = OnDevice.Core.Attribute;

namespace OnDevice.Runtime.Tests.Quantization;

/// <summary>
/// DequantizeLinear(x) → Conv(DequantizeLinear(int8 w)) whose result stays float (the activation after it is
/// kept float in a mixed-precision model) runs as the int8 GEMM with a float epilogue, with a following
/// BatchNormalization folded into its per-channel scale and bias. Against the unfused graph (float convolution on
/// dequantized values) the only difference is float rounding: the integer sum is exact where the float one rounds
/// every partial sum, so the tolerance is a few float ulps of the output's magnitude — far below one quantization step.
/// </summary>
[Trait("Category", "Agreement")]
public class QdqConvFloatOutputTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static Model Net(bool withBatchNorm, bool dqBias, DType xType)
    {
        var rng = new Random(21);
        var b = new QOperatorOrtTests.Builder();
        b.G.Inputs.Add(ValueInfo.Tensor("x", DType.Float32, Shape.Of(1, 16, 9, 37)));
        string zx = xType == DType.Int8 ? b.C(Tensor.FromBytes(DType.Int8, [], new[] { unchecked((byte)(sbyte)-3) })) : b.U8(128);
        var xq = b.Op("QuantizeLinear", ["x", b.F(0.03f), zx]);
        var xd = b.Op("DequantizeLinear", [xq, b.F(0.03f), zx]);
        var wq = new byte[24 * 16];
        for (int i = 0; i < wq.Length; i++) wq[i] = (byte)(sbyte)rng.Next(-127, 128);
        var ws = Enumerable.Range(0, 24).Select(i => 0.004f + 0.0003f * i).ToArray();
        var wd = b.Op("DequantizeLinear", [b.C(Tensor.FromBytes(DType.Int8, [24, 16, 1, 1], wq)), b.C(Tensor.FromArray<float>(ws, [24])),
            b.C(Tensor.FromBytes(DType.Int8, [24], new byte[24]))], "", Attr.Of("axis", 0L));
        string bias = dqBias
            ? b.Op("DequantizeLinear", [b.C(Tensor.FromArray<int>(Enumerable.Range(0, 24).Select(_ => rng.Next(-3000, 3000)).ToArray(), [24])),
                b.C(Tensor.FromArray<float>(ws.Select(s => s * 0.03f).ToArray(), [24])), b.C(Tensor.FromArray<int>(new int[24], [24]))], "", Attr.Of("axis", 0L))
            : b.C(Tensor.FromArray<float>(Enumerable.Range(0, 24).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray(), [24]));
        var c = b.Op("Conv", [xd, wd, bias]);
        if (withBatchNorm)
        {
            float[] V(double lo, double hi) => Enumerable.Range(0, 24).Select(_ => (float)(lo + rng.NextDouble() * (hi - lo))).ToArray();
            c = b.Op("BatchNormalization", [c, b.C(Tensor.FromArray<float>(V(-1.5, 1.5), [24])), b.C(Tensor.FromArray<float>(V(-0.5, 0.5), [24])),
                b.C(Tensor.FromArray<float>(V(-0.2, 0.2), [24])), b.C(Tensor.FromArray<float>(V(0.5, 2), [24]))]);
        }
        return b.Model(b.Op("HardSwish", [c]));
    }

    [Theory]
    [InlineData(true, false, DType.UInt8)]
    [InlineData(false, true, DType.UInt8)]
    [InlineData(true, true, DType.Int8)]
    public void PointwiseConvWithFloatResult_RunsAsInt8Gemm_AndMatchesTheFloatConvolution(bool withBatchNorm, bool dqBias, DType xType)
    {
        var model = Net(withBatchNorm, dqBias, xType);
        var fused = new InferenceSession(model, new SessionOptions { Threads = 1 });
        var nodes = fused.OptimizedGraph.Nodes;
        Assert.Contains(nodes, n => n.OpType == "QLinearConv" && n.GetInt("dequantize", 0) == 1);
        Assert.DoesNotContain(nodes, n => n.OpType is "Conv" or "FusedConv" or "BatchNormalization" or "DequantizeLinear");
        var x = Tensor.FromArray<float>(NodeRunner.Random(16 * 9 * 37, 4, -3f, 3f), [1, 16, 9, 37], "x");
        var inputs = new Dictionary<string, Tensor> { ["x"] = x };
        var unfused = new InferenceSession(model, new SessionOptions { Threads = 1, Optimize = false });
        var name = model.Graph.Outputs[0].Name;
        var yf = fused.Run(inputs)[name].ToFloatArray();
        var yu = unfused.Run(inputs)[name].ToFloatArray();
        float scale = yu.Max(MathF.Abs);
        Assert.True(yu.Distinct().Count() > 100 && scale > 0.1f, "the output is nearly constant");
        for (int i = 0; i < yu.Length; i++)
            Assert.True(MathF.Abs(yf[i] - yu[i]) <= 2e-6f * scale + 1e-6f, $"[{i}] {yf[i]} vs {yu[i]}");
        var ort = OrtPeer.Run(model, inputs, out var why);
        if (ort is null) { output.WriteLine($"SKIPPED ONNX Runtime comparison: {why}"); return; }
        var yo = ort[name].ToFloatArray();
        for (int i = 0; i < yo.Length; i++)
            Assert.True(MathF.Abs(yf[i] - yo[i]) <= 2e-6f * scale + 1e-6f, $"ONNX Runtime [{i}] {yf[i]} vs {yo[i]}");
    }

    [Theory]
    [InlineData(1L)]
    [InlineData(4L)]
    public void ConvWithPaddingOrGroups_AlsoRunsAsIntegerConv_AndMatchesTheFloatConvolution(long group)
    {
        var b = new QOperatorOrtTests.Builder();
        b.G.Inputs.Add(ValueInfo.Tensor("x", DType.Float32, Shape.Of(1, 4, 5, 5)));
        var xd = b.Op("DequantizeLinear", [b.Op("QuantizeLinear", ["x", b.F(0.05f), b.U8(128)]), b.F(0.05f), b.U8(128)]);
        int cg = (int)(4 / group);
        var wd = b.Op("DequantizeLinear", [b.C(Tensor.FromBytes(DType.Int8, [4, cg, 3, 3], Enumerable.Range(0, 36 * cg).Select(i => (byte)(i * 7)).ToArray())), b.F(0.01f),
            b.C(Tensor.FromBytes(DType.Int8, [], new byte[1]))]);
        var m = b.Model(b.Op("Relu", [b.Op("Conv", [xd, wd], "", Attr.Of("pads", new long[] { 1, 1, 1, 1 }), Attr.Of("group", group))]));
        var s = new InferenceSession(m, new SessionOptions { Threads = 1 });
        Assert.Contains(s.OptimizedGraph.Nodes, n => n.OpType == "QLinearConv" && n.GetInt("dequantize", 0) == 1);
        Assert.DoesNotContain(s.OptimizedGraph.Nodes, n => n.OpType is "Conv" or "FusedConv");
        var inputs = new Dictionary<string, Tensor> { ["x"] = Tensor.FromArray<float>(NodeRunner.Random(100, 6, -3f, 3f), [1, 4, 5, 5], "x") };
        var name = m.Graph.Outputs[0].Name;
        var yf = s.Run(inputs)[name].ToFloatArray();
        var yu = new InferenceSession(m, new SessionOptions { Threads = 1, Optimize = false }).Run(inputs)[name].ToFloatArray();
        float scale = yu.Max(MathF.Abs);
        Assert.True(scale > 0.1f, "the output is nearly zero");
        for (int i = 0; i < yu.Length; i++)
            Assert.True(MathF.Abs(yf[i] - yu[i]) <= 2e-6f * scale + 1e-6f, $"[{i}] {yf[i]} vs {yu[i]}");
    }
}
