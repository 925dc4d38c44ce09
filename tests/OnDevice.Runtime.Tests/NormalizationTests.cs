using OnDevice.Core;
using OnDevice.Runtime.Reference;
using OnDevice.Runtime.Simd;
using Attr = OnDevice.Core.Attribute;

namespace OnDevice.Runtime.Tests;

/// <summary>Normalization kernels (SIMD statistics and affine maps) against <see cref="NormalizationReference"/>.</summary>
[Trait("Category", "Kernels")]
public unsafe class NormalizationTests
{
    internal static Tensor T(float[] v, params int[] shape) => Tensor.FromArray<float>(v, shape.Select(d => (long)d).ToArray());

    private static double[] D(float[] v) => v.Select(x => (double)x).ToArray();

    private static float[] F(double[] v) => v.Select(x => (float)x).ToArray();

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(15)]
    [InlineData(16)]
    [InlineData(33)]
    [InlineData(1000)]
    public void MeanVariance_MatchesTwoPassDefinition(int n)
    {
        var x = NodeRunner.Random(n, n, 2, 5);
        double mean = n == 0 ? 0 : x.Average(v => (double)v);
        double variance = n == 0 ? 0 : x.Sum(v => (v - mean) * (v - mean)) / n;
        fixed (float* p = x)
        {
            var (m, v) = Normalization.MeanVariance(p, n);
            Assert.Equal(mean, m, 1e-5);
            Assert.Equal(variance, v, 1e-5);
        }
    }

    [Theory]
    [InlineData(new[] { 2, 3, 5, 7 })]
    [InlineData(new[] { 1, 4, 37 })]
    [InlineData(new[] { 3, 5 })]
    public void BatchNorm_MatchesReference(int[] shape)
    {
        var x = NodeRunner.Random(shape.Aggregate(1, (p, d) => p * d), 1);
        int c = shape[1];
        var scale = NodeRunner.Random(c, 2);
        var bias = NodeRunner.Random(c, 3);
        var mean = NodeRunner.Random(c, 4);
        var variance = NodeRunner.Random(c, 5, 0.1f, 2);
        var expected = NormalizationReference.BatchNorm(D(x), shape, D(scale), D(bias), D(mean), D(variance), 1e-3);
        foreach (int threads in new[] { 1, 2 })
        {
            var node = new Node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"]).With(Attr.Of("epsilon", 1e-3f));
            var y = NodeRunner.Run(node, [T(x, shape), T(scale, c), T(bias, c), T(mean, c), T(variance, c)], threads: threads)[0];
            NodeRunner.Close(F(expected), y.ToFloatArray(), 1e-5f, 1e-6f);
        }
    }

    [Fact]
    public void BatchNorm_TrainingMode_IsUnsupported()
    {
        var node = new Node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y", "rm", "rv"]).With(Attr.Of("training_mode", 1L));
        var e = Assert.ThrowsAny<NotSupportedException>(() => NodeRunner.Run(node, [T([1f], 1, 1), T([1f], 1), T([0f], 1), T([0f], 1), T([1f], 1)]));
        Assert.Contains("training_mode", e.Message);
    }

    [Theory]
    [InlineData(new[] { 2, 3, 5, 7 })]
    [InlineData(new[] { 1, 2, 300 })]
    public void InstanceNorm_MatchesReference(int[] shape)
    {
        var x = NodeRunner.Random(shape.Aggregate(1, (p, d) => p * d), 6, -3, 4);
        int c = shape[1];
        var scale = NodeRunner.Random(c, 7);
        var bias = NodeRunner.Random(c, 8);
        var expected = NormalizationReference.InstanceNorm(D(x), shape, D(scale), D(bias), 1e-5);
        foreach (int threads in new[] { 1, 2 })
        {
            var y = NodeRunner.Run(new Node("InstanceNormalization", ["x", "s", "b"], ["y"]), [T(x, shape), T(scale, c), T(bias, c)], threads: threads)[0];
            NodeRunner.Close(F(expected), y.ToFloatArray(), 1e-4f, 1e-5f);
        }
    }

    [Theory]
    [InlineData(new[] { 2, 3, 5 }, -1, true)]
    [InlineData(new[] { 4, 96 }, 1, true)]
    [InlineData(new[] { 2, 3, 4, 5 }, 1, false)]
    [InlineData(new[] { 3, 17 }, 0, true)]
    public void LayerNorm_MatchesReference(int[] shape, int axis, bool withBias)
    {
        var x = NodeRunner.Random(shape.Aggregate(1, (p, d) => p * d), 9, -2, 3);
        int a = axis < 0 ? axis + shape.Length : axis;
        var normShape = shape[a..];
        int size = normShape.Aggregate(1, (p, d) => p * d);
        var scale = NodeRunner.Random(size, 10);
        var bias = withBias ? NodeRunner.Random(size, 11) : [];
        var (expected, mean, inv) = NormalizationReference.LayerNorm(D(x), shape, axis, D(scale), D(bias), 1e-5);
        var node = new Node("LayerNormalization", withBias ? ["x", "s", "b"] : ["x", "s"], ["y", "mean", "inv"]).With(Attr.Of("axis", (long)axis));
        foreach (int threads in new[] { 1, 2 })
        {
            var r = NodeRunner.Run(node, [T(x, shape), T(scale, normShape), withBias ? T(bias, normShape) : null], threads: threads);
            NodeRunner.Close(F(expected), r[0].ToFloatArray(), 1e-4f, 1e-5f);
            NodeRunner.Close(F(mean), r[1].ToFloatArray(), 1e-5f, 1e-6f);
            NodeRunner.Close(F(inv), r[2].ToFloatArray(), 1e-4f, 1e-6f);
            Assert.Equal(shape.Select((d, i) => (long)(i < a ? d : 1)), r[1].Dims);
        }
    }

    [Theory]
    [InlineData(3)]
    [InlineData(4)]
    public void Lrn_MatchesReference(int size)
    {
        int[] shape = [2, 5, 3, 4];
        var x = NodeRunner.Random(120, 12);
        var expected = NormalizationReference.Lrn(D(x), shape, size, 2e-4, 0.75, 2);
        var node = new Node("LRN", ["x"], ["y"]).With(Attr.Of("size", (long)size)).With(Attr.Of("alpha", 2e-4f)).With(Attr.Of("bias", 2f));
        NodeRunner.Close(F(expected), NodeRunner.Run(node, [T(x, shape)])[0].ToFloatArray(), 1e-5f, 1e-6f);
    }
}
