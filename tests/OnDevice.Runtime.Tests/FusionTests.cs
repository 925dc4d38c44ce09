using OnDevice.Core;
using Attribute = OnDevice.Core.Attribute;

namespace OnDevice.Runtime.Tests;

public class FusionTests
{
    /// <summary>PaddleOCR's block tail: y = hardswish-ish(s·x + b) then affine, with scalar and per-channel constants.</summary>
    private static Model PaddleTail(bool perChannel, int channels = 8)
    {
        var g = new Graph { Name = "tail" };
        g.Inputs.Add(ValueInfo.Tensor("x", DType.Float32, Shape.Of(1, channels, 5, 7)));
        long[] cdims = perChannel ? [channels, 1, 1] : [1];
        float[] Vals(int seed) => NodeRunner.Random(perChannel ? channels : 1, seed, 0.5f, 1.5f);
        g.AddInitializer(Tensor.FromArray<float>(Vals(1), cdims, "scale"));
        g.AddInitializer(Tensor.FromArray<float>(Vals(2), cdims, "shift"));
        g.AddInitializer(Tensor.Scalar(3f, "three"));
        g.AddInitializer(Tensor.Scalar(6f, "six"));
        g.AddInitializer(Tensor.Scalar(0f, "zero"));
        g.AddInitializer(Tensor.FromArray<float>(Vals(3), cdims, "scale2"));
        g.Nodes.Add(new Node("Mul", ["scale", "x"], ["m"], "mul"));
        g.Nodes.Add(new Node("Add", ["m", "shift"], ["a"], "add"));
        g.Nodes.Add(new Node("Add", ["a", "three"], ["a3"], "add3"));
        g.Nodes.Add(new Node("Clip", ["a3", "zero", "six"], ["c"], "clip"));
        g.Nodes.Add(new Node("Mul", ["a", "c"], ["ac"], "mul2"));
        g.Nodes.Add(new Node("Div", ["ac", "six"], ["hs"], "div"));
        g.Nodes.Add(new Node("Mul", ["scale2", "hs"], ["y"], "mul3"));
        g.Nodes.Add(new Node("Relu", ["a"], ["side"], "side_reader")); // 'a' is also read outside the tail
        g.Outputs.Add(ValueInfo.Tensor("y", DType.Float32, null));
        g.Outputs.Add(ValueInfo.Tensor("side", DType.Float32, null));
        var m = new Model(g);
        m.OpsetImports.Add(new OpsetImport("", 13));
        return m;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ElementwiseChains_FuseIntoOnePass_WithIdenticalResults(bool perChannel)
    {
        var m = PaddleTail(perChannel);
        var fused = new InferenceSession(m);
        var plain = new InferenceSession(m, new SessionOptions { Optimize = false });
        var ops = fused.OptimizedGraph.Nodes.Select(n => n.OpType).ToList();
        Assert.Contains("FusedElementwise", ops);
        Assert.True(ops.Count < m.Graph.Nodes.Count, string.Join(",", ops));
        var x = Tensor.FromArray<float>(NodeRunner.Random(8 * 35, 9, -5, 5), [1, 8, 5, 7]);
        var a = fused.Run("x", x);
        var b = plain.Run("x", x);
        foreach (var k in new[] { "y", "side" })
            Assert.Equal(b[k].ToFloatArray(), a[k].ToFloatArray()); // same ops, same order: bit-identical
        Assert.Equal(0, fused.LastRunPeakArenaBytes % 64);
    }

    [Fact]
    public void ChannelMismatch_IsNotFused()
    {
        // A per-channel constant of 8 values against an input whose channel count is symbolic must not fuse.
        var m = PaddleTail(true);
        m.Graph.Inputs[0] = ValueInfo.Tensor("x", DType.Float32, new Shape([Dim.Of(1), Dim.Sym("C"), Dim.Of(5), Dim.Of(7)]));
        var s = new InferenceSession(m);
        Assert.DoesNotContain(s.OptimizedGraph.Nodes, n => n.OpType == "FusedElementwise" && n.Attr("body")!.AsGraph().Initializers.ContainsKey("scale"));
    }
}

public class ConvEpilogueTests
{
    /// <summary>Conv then scale → shift → x·clip(x+3, 0, 6)/6, per-channel scale, on every conv strategy.</summary>
    [Theory]
    [InlineData(16, 8, 1, 1, 1, 12, 10)]   // pointwise
    [InlineData(8, 12, 3, 1, 1, 20, 18)]   // stride-1 3×3: implicit GEMM
    [InlineData(8, 12, 3, 2, 1, 21, 17)]   // stride 2: im2col
    [InlineData(12, 12, 3, 1, 12, 15, 13)] // depthwise
    [InlineData(24, 16, 3, 1, 1, 1, 2)]    // two output positions: dot products
    public void FusedConv_MatchesConvThenChain_BitForBit(int cin, int cout, int k, int stride, int group, int h, int w)
    {
        var g = new Graph { Name = "conv" };
        g.Inputs.Add(ValueInfo.Tensor("x", DType.Float32, Shape.Of(1, cin, h, w)));
        g.AddInitializer(Tensor.FromArray<float>(NodeRunner.Random(cout * (cin / group) * k * k, 1), [cout, cin / group, k, k], "w"));
        g.AddInitializer(Tensor.FromArray<float>(NodeRunner.Random(cout, 2), [cout], "b"));
        g.AddInitializer(Tensor.FromArray<float>(NodeRunner.Random(cout, 3, 0.5f, 2f), [1, cout, 1, 1], "scale"));
        g.AddInitializer(Tensor.Scalar(0.25f, "shift"));
        g.AddInitializer(Tensor.Scalar(3f, "three"));
        g.AddInitializer(Tensor.Scalar(0f, "zero"));
        g.AddInitializer(Tensor.Scalar(6f, "six"));
        var conv = new Node("Conv", ["x", "w", "b"], ["c"], "conv")
            .With(Attribute.Of("kernel_shape", new long[] { k, k })).With(Attribute.Of("strides", new long[] { stride, stride }))
            .With(Attribute.Of("pads", new long[] { k / 2, k / 2, k / 2, k / 2 })).With(Attribute.Of("group", (long)group));
        g.Nodes.Add(conv);
        g.Nodes.Add(new Node("Mul", ["c", "scale"], ["s"], "scale"));
        g.Nodes.Add(new Node("Add", ["s", "shift"], ["t"], "shift"));
        g.Nodes.Add(new Node("Add", ["t", "three"], ["t3"], "plus3"));
        g.Nodes.Add(new Node("Clip", ["t3", "zero", "six"], ["cl"], "clip"));
        g.Nodes.Add(new Node("Mul", ["t", "cl"], ["tc"], "times"));
        g.Nodes.Add(new Node("Div", ["tc", "six"], ["y"], "div6"));
        g.Outputs.Add(ValueInfo.Tensor("y", DType.Float32, null));
        var m = new Model(g);
        m.OpsetImports.Add(new OpsetImport("", 13));

        var fused = new InferenceSession(m);
        Assert.Equal(["FusedConv"], fused.OptimizedGraph.Nodes.Select(n => n.OpType));
        var plain = new InferenceSession(m, new SessionOptions { Optimize = false });
        var x = Tensor.FromArray<float>(NodeRunner.Random(cin * h * w, 4, -3, 3), [1, cin, h, w]);
        Assert.Equal(plain.Run("x", x)["y"].ToFloatArray(), fused.Run("x", x)["y"].ToFloatArray());
    }
}
