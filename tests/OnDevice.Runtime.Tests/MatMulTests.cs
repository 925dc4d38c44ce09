using OnDevice.Core;
using OnDevice.Runtime.Reference;

namespace OnDevice.Runtime.Tests;

/// <summary>MatMul and Gemm nodes (runtime and prepacked constant weights, one and two threads) against the references.</summary>
[Trait("Category", "Kernels")]
public class MatMulTests
{
    internal static Tensor T(float[] v, int[] shape) => Tensor.FromArray<float>(v, shape.Select(d => (long)d).ToArray());

    [Theory]
    [InlineData(new[] { 3, 4 }, new[] { 4, 5 })]
    [InlineData(new[] { 4 }, new[] { 4, 5 })]
    [InlineData(new[] { 3, 4 }, new[] { 4 })]
    [InlineData(new[] { 4 }, new[] { 4 })]
    [InlineData(new[] { 2, 3, 7, 40 }, new[] { 40, 33 })]
    [InlineData(new[] { 2, 1, 7, 40 }, new[] { 3, 40, 33 })]
    [InlineData(new[] { 5, 13, 9 }, new[] { 5, 9, 70 })]
    [InlineData(new[] { 1, 6, 9 }, new[] { 4, 1, 9, 2 })]
    [InlineData(new[] { 0, 3, 4 }, new[] { 4, 5 })]
    [InlineData(new[] { 3, 0 }, new[] { 0, 5 })]
    [InlineData(new[] { 130, 300 }, new[] { 300, 90 })]
    public void MatMul_MatchesReference(int[] aShape, int[] bShape)
    {
        var a = NodeRunner.Random(aShape.Aggregate(1, (p, d) => p * d), 1);
        var b = NodeRunner.Random(bShape.Aggregate(1, (p, d) => p * d), 2);
        var (expected, shape) = GemmReference.MatMul(a, aShape, b, bShape);
        foreach (int threads in new[] { 1, 2 })
            foreach (bool constant in new[] { false, true })
            {
                var node = new Node("MatMul", ["a", "b"], ["y"]);
                var init = constant ? new Dictionary<string, Tensor> { ["b"] = T(b, bShape) } : null;
                var y = NodeRunner.Run(node, [T(a, aShape), T(b, bShape)], threads: threads, initializers: init)[0];
                Assert.Equal(shape.Select(d => (long)d), y.Dims);
                NodeRunner.Close(expected, y.ToFloatArray(), 1e-4f, 1e-5f);
            }
    }

    [Theory]
    [InlineData(7, 9, 5, 0, 0, new int[0])]
    [InlineData(7, 9, 5, 1, 0, new[] { 5 })]
    [InlineData(7, 9, 5, 0, 1, new[] { 7, 1 })]
    [InlineData(7, 9, 5, 1, 1, new[] { 7, 5 })]
    [InlineData(70, 129, 45, 1, 1, new[] { 1, 45 })]
    [InlineData(1, 64, 33, 0, 1, new[] { 1 })]
    [InlineData(3, 40, 20, 0, 1, new[] { 3, 20 })]
    [InlineData(8, 40, 20, 0, 1, new[] { 20 })]
    public void Gemm_MatchesReference(int m, int k, int n, int transA, int transB, int[] cShape)
    {
        var a = NodeRunner.Random(m * k, 3);
        var b = NodeRunner.Random(k * n, 4);
        var c = NodeRunner.Random(cShape.Aggregate(1, (p, d) => p * d), 5);
        float alpha = 0.75f, beta = -1.25f;
        var expected = new float[m * n];
        GemmReference.Multiply(a, transA == 1 ? 1 : k, transA == 1 ? m : 1, b, transB == 1 ? 1 : n, transB == 1 ? k : 1, expected, n, m, n, k);
        int cm = cShape.Length == 2 ? cShape[0] : 1, cn = cShape.Length >= 1 ? cShape[^1] : 1;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                expected[i * n + j] = alpha * expected[i * n + j] + beta * c[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
        int[] aShape = transA == 1 ? [k, m] : [m, k], bShape = transB == 1 ? [n, k] : [k, n];
        foreach (int threads in new[] { 1, 2 })
            foreach (bool constant in new[] { false, true })
            {
                var node = new Node("Gemm", ["a", "b", "c"], ["y"])
                    .With(Core.Attribute.Of("alpha", alpha)).With(Core.Attribute.Of("beta", beta))
                    .With(Core.Attribute.Of("transA", (long)transA)).With(Core.Attribute.Of("transB", (long)transB));
                var init = constant ? new Dictionary<string, Tensor> { ["b"] = T(b, bShape), ["c"] = T(c, cShape) } : null;
                var y = NodeRunner.Run(node, [T(a, aShape), T(b, bShape), T(c, cShape)], threads: threads, initializers: init)[0];
                Assert.Equal(new long[] { m, n }, y.Dims);
                NodeRunner.Close(expected, y.ToFloatArray(), 1e-4f, 1e-5f);
            }
    }
}
