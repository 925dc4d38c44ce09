using OnDevice.Core;

namespace OnDevice.Core.Tests;

public class ShapeInferenceTests
{
    private static Model Model(Shape input, params Node[] nodes)
    {
        var g = new Graph { Name = "g" };
        g.Inputs.Add(ValueInfo.Tensor("x", DType.Float32, input));
        g.Nodes.AddRange(nodes);
        g.Outputs.Add(new ValueInfo(nodes[^1].Outputs[0]));
        var m = new Model(g);
        m.OpsetImports.Add(new OpsetImport("", 17));
        return m;
    }

    [Fact]
    public void Conv_WithPadsStridesAndDilations()
    {
        var m = Model(Shape.Of(1, 3, 224, 224),
            new Node("Conv", ["x", "w"], ["y"]).With(Attribute.Of("strides", new long[] { 2, 2 })).With(Attribute.Of("pads", new long[] { 1, 1, 1, 1 })));
        m.Graph.AddInitializer(Tensor.Zeros(DType.Float32, [16, 3, 3, 3], "w"));
        var r = ShapeInference.Infer(m);
        Assert.Equal(Shape.Of(1, 16, 112, 112), r.ShapeOf("y"));
        // MACs = N·M·H·W·(C/g)·kh·kw
        Assert.Equal(1L * 16 * 112 * 112 * 3 * 3 * 3, MacCounter.Count(m.Graph.Nodes[0], r.ShapeOf));
    }

    [Theory]
    [InlineData(0L, new long[] { 5, 2 }, new long[] { 5, 5 })]         // rows index data axes 0-1: slices [5]
    [InlineData(1L, new long[] { 3, 7, 1 }, new long[] { 3, 7, 5 })]   // batch axis 0, then axis 1: slices [5]
    [InlineData(1L, new long[] { 3, 7, 2 }, new long[] { 3, 7 })]      // batch axis 0, then axes 1-2: elements
    public void GatherND_KeepsIndexRowsAndTheUnindexedTail(long batchDims, long[] indices, long[] expected)
    {
        var m = Model(Shape.Of(3, 4, 5), new Node("GatherND", ["x", "i"], ["y"]).With(Attribute.Of("batch_dims", batchDims)));
        m.Graph.Inputs.Add(ValueInfo.Tensor("i", DType.Int64, Shape.Of(indices)));
        var r = ShapeInference.Infer(m);
        Assert.Equal(Shape.Of(expected), r.ShapeOf("y"));
    }

    [Fact]
    public void ShapeGatherConcatReshape_ChainResolvesOnceInputsAreFixed()
    {
        // y = Reshape(x, Concat(Shape(x)[0], [-1])) : flatten everything but the batch.
        var m = Model(new Shape([Dim.Sym("N"), Dim.Of(3), Dim.Of(4), Dim.Of(5)]),
            new Node("Shape", ["x"], ["s"]),
            new Node("Gather", ["s", "zero"], ["n"]).With(Attribute.Of("axis", 0L)),
            new Node("Unsqueeze", ["n", "axes0"], ["n1"]),
            new Node("Concat", ["n1", "minus1"], ["target"]).With(Attribute.Of("axis", 0L)),
            new Node("Reshape", ["x", "target"], ["y"]));
        m.Graph.AddInitializer(Tensor.Scalar(0L, "zero"));
        m.Graph.AddInitializer(Tensor.FromArray<long>([0], [1], "axes0"));
        m.Graph.AddInitializer(Tensor.FromArray<long>([-1], [1], "minus1"));

        var symbolic = ShapeInference.Infer(m);
        Assert.Equal(new Shape([Dim.Sym("N"), Dim.Of(60)]), symbolic.ShapeOf("y")); // the symbol flows through

        var fixedShape = ShapeInference.Infer(m, new Dictionary<string, long[]> { ["x"] = [7, 3, 4, 5] });
        Assert.Equal(Shape.Of(7, 60), fixedShape.ShapeOf("y"));
    }

    [Fact]
    public void Broadcasting_FollowsNumpyRules()
    {
        Assert.Equal(Shape.Of(2, 3, 4), ShapeInference.Broadcast(Shape.Of(3, 1), Shape.Of(2, 1, 4)));
        Assert.Equal(new Shape([Dim.Sym("B"), Dim.Of(4)]), ShapeInference.Broadcast(new Shape([Dim.Sym("B"), Dim.Of(1)]), Shape.Of(4)));
        Assert.Throws<ArgumentException>(() => ShapeInference.Broadcast(Shape.Of(3), Shape.Of(4)));
    }

    [Fact]
    public void MatMul_BroadcastsBatch_AndCountsMacs()
    {
        var m = Model(Shape.Of(2, 1, 5, 8), new Node("MatMul", ["x", "b"], ["y"]));
        m.Graph.AddInitializer(Tensor.Zeros(DType.Float32, [3, 8, 6], "b"));
        var r = ShapeInference.Infer(m);
        Assert.Equal(Shape.Of(2, 3, 5, 6), r.ShapeOf("y"));
        Assert.Equal(2L * 3 * 5 * 8 * 6, MacCounter.Count(m.Graph.Nodes[0], r.ShapeOf));
    }

    [Fact]
    public void Gemm_WithTransB()
    {
        var m = Model(Shape.Of(4, 10), new Node("Gemm", ["x", "w"], ["y"]).With(Attribute.Of("transB", 1L)));
        m.Graph.AddInitializer(Tensor.Zeros(DType.Float32, [7, 10], "w"));
        var r = ShapeInference.Infer(m);
        Assert.Equal(Shape.Of(4, 7), r.ShapeOf("y"));
        Assert.Equal(4L * 10 * 7, MacCounter.Count(m.Graph.Nodes[0], r.ShapeOf));
    }

    [Fact]
    public void Pooling_ConvTranspose_Slice_And_Transpose()
    {
        var m = Model(Shape.Of(1, 8, 15, 15),
            new Node("MaxPool", ["x"], ["p"]).With(Attribute.Of("kernel_shape", new long[] { 3, 3 })).With(Attribute.Of("strides", new long[] { 2, 2 })).With(Attribute.Of("ceil_mode", 1L)),
            new Node("ConvTranspose", ["p", "w"], ["u"]).With(Attribute.Of("strides", new long[] { 2, 2 })),
            new Node("Slice", ["u", "st", "en", "ax"], ["s"]),
            new Node("Transpose", ["s"], ["t"]).With(Attribute.Of("perm", new long[] { 0, 2, 3, 1 })));
        m.Graph.AddInitializer(Tensor.Zeros(DType.Float32, [8, 4, 2, 2], "w"));
        m.Graph.AddInitializer(Tensor.FromArray<long>([1, -3], [2], "st"));
        m.Graph.AddInitializer(Tensor.FromArray<long>([long.MaxValue, -1], [2], "en"));
        m.Graph.AddInitializer(Tensor.FromArray<long>([2, 3], [2], "ax"));
        var r = ShapeInference.Infer(m);
        Assert.Equal(Shape.Of(1, 8, 7, 7), r.ShapeOf("p"));   // ceil((15-3)/2)+1 = 7
        Assert.Equal(Shape.Of(1, 4, 14, 14), r.ShapeOf("u")); // 2·(7−1)+2 = 14
        Assert.Equal(Shape.Of(1, 4, 13, 2), r.ShapeOf("s"));
        Assert.Equal(Shape.Of(1, 13, 2, 4), r.ShapeOf("t"));
    }
}
