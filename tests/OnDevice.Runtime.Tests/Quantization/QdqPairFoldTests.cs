using OnDevice.Core;
using Attr = OnDevice.Core.Attribute;

namespace OnDevice.Runtime.Tests.Quantization;

/// <summary>
/// Q→DQ pairs between float ops (what a mixed-precision QDQ model keeps around activations left float) fold into an
/// element-wise fake quantization that the neighbouring float convolution runs in its epilogue. The arithmetic is
/// the pair's own (x / s, round half to even, clamp, · s), so fused and unfused runs must agree bit for bit.
/// </summary>
[Trait("Category", "Agreement")]
public class QdqPairFoldTests
{
    private static Tensor Floats(Random rng, float scale, params long[] dims) =>
        Tensor.FromArray<float>(Enumerable.Range(0, (int)dims.Aggregate(1L, (p, d) => p * d)).Select(_ => (float)(rng.NextDouble() * 2 - 1) * scale).ToArray(), dims);

    /// <summary>
    /// x → Conv(float w, bias) → HardSwish → Q(s, zp) → DQ → Relu → 3×3 Conv(weight-only: DQ(int8 w)) → HardSwish → Q → DQ (two readers:
    /// Relu and Sigmoid) → Add, the quantized type and zero point chosen by the caller (no zero point input when
    /// <paramref name="zp"/> is null). The second convolution's output is not quantized right away (an activation kept
    /// float), so it stays a float convolution and both pairs sit between float ops.
    /// </summary>
    private static Model Net(DType type, int? zp, float s1, float s2)
    {
        var rng = new Random(5);
        var b = new QOperatorOrtTests.Builder();
        b.G.Inputs.Add(ValueInfo.Tensor("x", DType.Float32, Shape.Of(1, 4, 9, 70)));
        string Z() => type == DType.Int8 ? b.C(Tensor.FromBytes(DType.Int8, [], new[] { (byte)(sbyte)zp!.Value })) : b.U8(zp!.Value);
        string[] QArgs(string v, float s) => zp is null ? [v, b.F(s)] : [v, b.F(s), Z()];
        var c1 = b.Op("Conv", ["x", b.C(Floats(rng, 0.5f, 8, 4, 3, 3)), b.C(Floats(rng, 0.2f, 8))], "", Attr.Of("pads", new long[] { 1, 1, 1, 1 }));
        var h = b.Op("HardSwish", [c1]);
        var q1 = b.Op("QuantizeLinear", QArgs(h, s1));
        var d1 = b.Op("DequantizeLinear", QArgs(q1, s1));
        var wq = new byte[8 * 8 * 9];
        for (int i = 0; i < wq.Length; i++) wq[i] = (byte)(sbyte)rng.Next(-120, 120);
        var w2 = b.Op("DequantizeLinear", [b.C(Tensor.FromBytes(DType.Int8, [8, 8, 3, 3], wq)), b.C(Tensor.FromArray<float>(Enumerable.Range(0, 8).Select(i => 0.01f + 0.002f * i).ToArray(), [8])),
            b.C(Tensor.FromBytes(DType.Int8, [8], new byte[8]))], "", Attr.Of("axis", 0L));
        // Relu between the pair and the convolution: the convolution's input is not a DequantizeLinear, so no integer fusion takes it.
        var c2 = b.Op("HardSwish", [b.Op("Conv", [b.Op("Relu", [d1]), w2], "", Attr.Of("pads", new long[] { 1, 1, 1, 1 }))]);
        var q2 = b.Op("QuantizeLinear", QArgs(c2, s2));
        var d2 = b.Op("DequantizeLinear", QArgs(q2, s2));
        var d2b = b.Op("DequantizeLinear", QArgs(q2, s2));
        var y = b.Op("Add", [b.Op("Relu", [d2]), b.Op("Sigmoid", [d2b])]);
        return b.Model(y);
    }

    [Theory]
    [InlineData(DType.UInt8, 128, 0.02f, 0.05f)]
    [InlineData(DType.UInt8, 3, 0.01f, 0.03f)]     // clamps often at the top
    [InlineData(DType.Int8, -5, 0.015f, 0.04f)]
    [InlineData(DType.UInt8, null, 0.02f, 0.05f)]  // no zero point: uint8, 0 (negative values clamp to 0)
    public void FloatRegionPairs_FoldIntoTheConvolutions_BitExact(DType type, int? zp, float s1, float s2)
    {
        var model = Net(type, zp, s1, s2);
        var x = Tensor.FromArray<float>(NodeRunner.Random(4 * 9 * 70, 11, -3f, 3f), [1, 4, 9, 70], "x");
        var inputs = new Dictionary<string, Tensor> { ["x"] = x };
        var fused = new InferenceSession(model, new SessionOptions { Threads = 1 });
        var ops = fused.OptimizedGraph.Nodes.Select(n => n.OpType).ToList();
        Assert.DoesNotContain("QuantizeLinear", ops);
        Assert.DoesNotContain("DequantizeLinear", ops);
        Assert.Equal(2, ops.Count(o => o == "FusedConv")); // the fake quantization runs in each convolution's epilogue
        var unfused = new InferenceSession(model, new SessionOptions { Threads = 1, Optimize = false });
        var name = model.Graph.Outputs[0].Name;
        var yf = fused.Run(inputs)[name].ToFloatArray();
        var yu = unfused.Run(inputs)[name].ToFloatArray();
        Assert.True(yu.Distinct().Count() > 20, "the output is nearly constant: the test would not see a difference");
        Assert.Equal(yu, yf);
    }

    [Fact]
    public void Pair_IsKept_WhenTheQuantizedValueHasAnotherReader_OrTheScalesDiffer()
    {
        var b = new QOperatorOrtTests.Builder();
        b.G.Inputs.Add(ValueInfo.Tensor("x", DType.Float32, Shape.Of(1, 2, 3, 4)));
        // Quantized bytes also read as bytes (a graph output): the pair must stay.
        var q = b.Op("QuantizeLinear", ["x", b.F(0.1f), b.U8(10)]);
        var d = b.Op("DequantizeLinear", [q, b.F(0.1f), b.U8(10)]);
        // A DequantizeLinear with a different scale than its QuantizeLinear: not a fake quantization.
        var q2 = b.Op("QuantizeLinear", [d, b.F(0.1f), b.U8(10)]);
        var d2 = b.Op("DequantizeLinear", [q2, b.F(0.2f), b.U8(10)]);
        b.G.Outputs.Add(ValueInfo.Tensor(q, DType.UInt8, null));
        var m = b.Model(d2);
        var s = new InferenceSession(m, new SessionOptions { Threads = 1 });
        Assert.DoesNotContain(s.OptimizedGraph.Nodes, n => n.OpType == "Round"); // nothing became a fake quantization
        Assert.Contains(s.OptimizedGraph.Nodes, n => n.OpType == "QuantizeLinear" && n.Outputs[0] == q);
        var x = Tensor.FromArray<float>(NodeRunner.Random(24, 3, -2f, 2f), [1, 2, 3, 4], "x");
        var unfused = new InferenceSession(m, new SessionOptions { Threads = 1, Optimize = false });
        var inputs = new Dictionary<string, Tensor> { ["x"] = x };
        Assert.Equal(unfused.Run(inputs)[d2].ToFloatArray(), s.Run(inputs)[d2].ToFloatArray());
    }
}
