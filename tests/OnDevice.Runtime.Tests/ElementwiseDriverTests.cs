using OnDevice.Core;
using OnDevice.Runtime.Kernels.Elementwise;
using OnDevice.Runtime.Reference;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Tests;

/// <summary>The SIMD ladder agrees with the scalar definitions on every length from 0 to past three 512-bit vectors.
/// CI reruns these with AVX-512, AVX2 and all hardware intrinsics disabled so every rung runs.</summary>
[Trait("Category", "Kernels")]
public class ElementwiseDriverTests
{
    public static TheoryData<int> Lengths()
    {
        var d = new TheoryData<int>();
        for (int n = 0; n <= 3 * 16 + 3; n++) d.Add(n);
        return d;
    }

    [Theory]
    [MemberData(nameof(Lengths))]
    public void Relu_MatchesReference(int n)
    {
        var x = NodeRunner.Random(n, n);
        if (n > 2) { x[1] = float.NaN; x[2] = -0f; }
        var y = new float[n];
        ElementwiseDriver.Unary<ActivationKernels.ReluOp>(x, y);
        var expected = ElementwiseReference.Map(x, v => float.IsNaN(v) ? v : ElementwiseReference.Relu(v));
        NodeRunner.Close(expected, y, 0, 0);
    }

    [Theory]
    [MemberData(nameof(Lengths))]
    public void Add_AllOperandForms_MatchReference(int n)
    {
        var a = NodeRunner.Random(n, 1 + n);
        var b = NodeRunner.Random(n, 2 + n);
        var z = new float[n];
        ElementwiseDriver.Binary<ArithmeticKernels.AddOp>(a, b, z);
        NodeRunner.Close(ElementwiseReference.Broadcast(a, [n], b, [n], (p, q) => p + q).Values, z, 0, 0);
        ElementwiseDriver.BinaryScalarRight<ArithmeticKernels.AddOp>(a, 0.5f, z);
        NodeRunner.Close(ElementwiseReference.Map(a, p => p + 0.5f), z, 0, 0);
        ElementwiseDriver.BinaryScalarLeft<ArithmeticKernels.AddOp>(0.25f, b, z);
        NodeRunner.Close(ElementwiseReference.Map(b, q => 0.25f + q), z, 0, 0);
    }

    [Theory]
    [InlineData(new[] { 2, 3, 4 }, new[] { 4 })]
    [InlineData(new[] { 2, 3, 4 }, new[] { 3, 1 })]
    [InlineData(new[] { 2, 1, 4 }, new[] { 1, 3, 1 })]
    [InlineData(new[] { 1 }, new[] { 5, 2 })]
    [InlineData(new[] { 3, 0, 2 }, new[] { 2 })]
    [InlineData(new int[0], new[] { 7 })]
    public void AddNode_Broadcasts_LikeTheReference(int[] aShape, int[] bShape)
    {
        int na = aShape.Aggregate(1, (p, d) => p * d), nb = bShape.Aggregate(1, (p, d) => p * d);
        var a = NodeRunner.Random(na, 3);
        var b = NodeRunner.Random(nb, 4);
        var y = NodeRunner.Run(new Node("Add", ["a", "b"], ["y"]),
            [Tensor.FromArray<float>(a, aShape.Select(d => (long)d).ToArray()), Tensor.FromArray<float>(b, bShape.Select(d => (long)d).ToArray())])[0];
        var (values, shape) = ElementwiseReference.Broadcast(a, aShape, b, bShape, (p, q) => p + q);
        Assert.Equal(shape.Select(d => (long)d), y.Dims);
        NodeRunner.Close(values, y.ToFloatArray(), 0, 0);
    }
}
