using OnDevice.Core;
using Attr = OnDevice.Core.Attribute;

namespace OnDevice.Runtime.Tests;

/// <summary>Flatten(axis = rank − 1) → Softmax → Reshape(Shape(x)) runs as one last-axis Softmax with the same values.</summary>
[Trait("Category", "Kernels")]
public class FlattenSoftmaxFusionTests
{
    private static Model Net(long opset, bool shapeFromNode, long flattenAxis)
    {
        var g = new Graph { Name = "fs" };
        g.Inputs.Add(ValueInfo.Tensor("x", DType.Float32, Shape.Of(1, 5, 37)));
        g.Nodes.Add(new Node("Flatten", ["x"], ["flat"]).With(Attr.Of("axis", flattenAxis)));
        g.Nodes.Add(new Node("Softmax", ["flat"], ["sm"]).With(Attr.Of("axis", 1L)));
        if (shapeFromNode) g.Nodes.Add(new Node("Shape", ["x"], ["shape"]));
        else g.AddInitializer(Tensor.FromArray<long>([1, 5, 37], [3], "shape"));
        g.Nodes.Add(new Node("Reshape", ["sm", "shape"], ["y"]));
        g.Outputs.Add(new ValueInfo("y"));
        var m = new Model(g);
        m.OpsetImports.Add(new OpsetImport("", opset));
        return m;
    }

    [Theory]
    [InlineData(11, true, 2L)]
    [InlineData(13, true, -1L)]
    [InlineData(13, false, 2L)]
    public void FlattenSoftmaxReshape_IsOneSoftmax_SameValues(long opset, bool shapeFromNode, long axis)
    {
        var m = Net(opset, shapeFromNode, axis);
        var fused = new InferenceSession(m, new SessionOptions { Threads = 1 });
        Assert.Equal(["Softmax"], fused.OptimizedGraph.Nodes.Select(n => n.OpType));
        var x = Tensor.FromArray<float>(NodeRunner.Random(5 * 37, 3, -4f, 4f), [1, 5, 37], "x");
        var inputs = new Dictionary<string, Tensor> { ["x"] = x };
        var plain = new InferenceSession(m, new SessionOptions { Threads = 1, Optimize = false });
        Assert.Equal(plain.Run(inputs)["y"].ToFloatArray(), fused.Run(inputs)["y"].ToFloatArray());
        Assert.Equal(new long[] { 1, 5, 37 }, fused.Run(inputs)["y"].Dims);
    }

    [Fact]
    public void FlattenOverOtherAxes_IsKept()
    {
        var m = Net(13, true, 1L); // [1, 185]: the softmax runs over two original axes
        var fused = new InferenceSession(m, new SessionOptions { Threads = 1 });
        Assert.Contains(fused.OptimizedGraph.Nodes, n => n.OpType == "Flatten");
    }
}
