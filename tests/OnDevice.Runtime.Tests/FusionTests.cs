using OnDevice.Core;

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
