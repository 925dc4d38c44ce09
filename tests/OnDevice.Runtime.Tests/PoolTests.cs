using OnDevice.Core;
using OnDevice.Runtime.Reference;
using Attr = OnDevice.Core.Attribute;

namespace OnDevice.Runtime.Tests;

/// <summary>Pooling kernels (the SIMD max path and the general scalar path) against <see cref="PoolReference"/>.</summary>
[Trait("Category", "Kernels")]
public class PoolTests
{
    public sealed record Case(string Name, int[] X, int[] Kernel, int[] Strides, int[] Pads, int[] Dilations, bool Ceil)
    {
        public override string ToString() => Name;
    }

    public static TheoryData<Case> Cases() => new()
    {
        new Case("2x2 s2", [1, 3, 8, 10], [2, 2], [2, 2], [0, 0, 0, 0], [1, 1], false),
        new Case("3x3 s2 pad 1", [2, 4, 17, 40], [3, 3], [2, 2], [1, 1, 1, 1], [1, 1], false),
        new Case("3x3 s1 pad 1 wide", [1, 2, 5, 70], [3, 3], [1, 1], [1, 1, 1, 1], [1, 1], false),
        new Case("3x2 ceil asym", [1, 2, 9, 11], [3, 2], [2, 3], [1, 0, 0, 1], [1, 1], true),
        new Case("dilated ceil", [1, 2, 10, 12], [2, 3], [2, 2], [0, 1, 1, 0], [2, 2], true),
        new Case("1-D", [2, 3, 19], [4], [3], [1, 2], [1], true),
        new Case("3-D", [1, 2, 5, 6, 7], [2, 3, 2], [1, 2, 2], [0, 1, 1, 1, 0, 0], [1, 1, 2], false),
        new Case("window larger than input", [1, 1, 2, 3], [3, 3], [1, 1], [1, 1, 1, 1], [1, 1], false),
        new Case("3x2 s3x2 no pad (PP-OCR rec neck)", [1, 5, 3, 80], [3, 2], [3, 2], [0, 0, 0, 0], [1, 1], false),
        new Case("2x3 s1 dilated no pad, ragged right", [2, 3, 7, 37], [2, 3], [1, 2], [0, 0, 0, 0], [2, 1], false),
    };

    internal static Tensor T(float[] v, int[] shape) => Tensor.FromArray<float>(v, shape.Select(d => (long)d).ToArray());

    private static int[] OutDims(Case k)
    {
        int r = k.Kernel.Length;
        var o = new int[r];
        for (int i = 0; i < r; i++)
        {
            int span = k.X[2 + i] + k.Pads[i] + k.Pads[i + r] - ((k.Kernel[i] - 1) * k.Dilations[i] + 1);
            o[i] = k.Ceil ? (span + k.Strides[i] - 1) / k.Strides[i] + 1 : span / k.Strides[i] + 1;
            if (k.Ceil && (o[i] - 1) * k.Strides[i] >= k.X[2 + i] + k.Pads[i]) o[i]--;
        }
        return o;
    }

    private static Node PoolNode(string op, Case k, int outputs = 1) =>
        new Node(op, ["x"], outputs == 1 ? ["y"] : ["y", "i"])
            .With(Attr.Of("kernel_shape", k.Kernel.Select(v => (long)v).ToArray()))
            .With(Attr.Of("strides", k.Strides.Select(v => (long)v).ToArray()))
            .With(Attr.Of("pads", k.Pads.Select(v => (long)v).ToArray()))
            .With(Attr.Of("ceil_mode", k.Ceil ? 1L : 0L));

    [Theory]
    [MemberData(nameof(Cases))]
    public void MaxPool_MatchesReference(Case k)
    {
        int r = k.Kernel.Length;
        var x = NodeRunner.Random(k.X.Aggregate(1, (p, d) => p * d), 1);
        var outDims = OutDims(k);
        foreach (bool columnMajor in new[] { false, true })
        {
            var (expected, idx) = PoolReference.Pool(x.Select(v => (double)v).ToArray(), k.X, PoolReference.Kind.Max, k.Kernel, k.Strides,
                k.Pads[..r], k.Pads[r..], k.Dilations, outDims, columnMajor: columnMajor);
            foreach (int threads in new[] { 1, 2 })
            {
                var node = PoolNode("MaxPool", k).With(Attr.Of("dilations", k.Dilations.Select(v => (long)v).ToArray()));
                var y = NodeRunner.Run(node, [T(x, k.X)], threads: threads)[0];
                Assert.Equal(k.X[..2].Concat(outDims).Select(d => (long)d), y.Dims);
                NodeRunner.Close(expected.Select(v => (float)v).ToArray(), y.ToFloatArray(), 0, 0);
                var both = NodeRunner.Run(PoolNode("MaxPool", k, 2).With(Attr.Of("dilations", k.Dilations.Select(v => (long)v).ToArray()))
                    .With(Attr.Of("storage_order", columnMajor ? 1L : 0L)), [T(x, k.X)], threads: threads);
                NodeRunner.Close(expected.Select(v => (float)v).ToArray(), both[0].ToFloatArray(), 0, 0);
                Assert.Equal(idx, both[1].ToInt64Array());
            }
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void AverageAndLpPool_MatchReference(Case k)
    {
        int r = k.Kernel.Length;
        var x = NodeRunner.Random(k.X.Aggregate(1, (p, d) => p * d), 2);
        var xd = x.Select(v => (double)v).ToArray();
        var outDims = OutDims(k);
        bool dilated = k.Dilations.Any(d => d != 1);
        foreach (bool include in new[] { false, true })
        {
            var (expected, _) = PoolReference.Pool(xd, k.X, include ? PoolReference.Kind.AverageIncludePad : PoolReference.Kind.AverageExcludePad,
                k.Kernel, k.Strides, k.Pads[..r], k.Pads[r..], k.Dilations, outDims);
            var node = PoolNode("AveragePool", k).With(Attr.Of("count_include_pad", include ? 1L : 0L));
            if (dilated) node.With(Attr.Of("dilations", k.Dilations.Select(v => (long)v).ToArray()));
            var y = NodeRunner.Run(node, [T(x, k.X)], opset: 19)[0];
            NodeRunner.Close(expected.Select(v => (float)v).ToArray(), y.ToFloatArray(), 1e-5f, 1e-6f);
        }
        foreach (int p in new[] { 1, 2, 3 })
        {
            var (expected, _) = PoolReference.Pool(xd, k.X, PoolReference.Kind.Lp, k.Kernel, k.Strides, k.Pads[..r], k.Pads[r..], k.Dilations, outDims, p);
            var node = PoolNode("LpPool", k).With(Attr.Of("p", (long)p)).With(Attr.Of("dilations", k.Dilations.Select(v => (long)v).ToArray()));
            var y = NodeRunner.Run(node, [T(x, k.X)], opset: 18)[0];
            NodeRunner.Close(expected.Select(v => (float)v).ToArray(), y.ToFloatArray(), 1e-5f, 1e-6f);
        }
    }

    [Theory]
    [InlineData(3, 80, 3, 2, 3, 2, 1, 1)]
    [InlineData(7, 37, 2, 3, 1, 2, 2, 1)]
    [InlineData(5, 70, 1, 1, 1, 1, 1, 1)]
    [InlineData(9, 33, 3, 3, 2, 2, 1, 2)]
    public unsafe void AveragePlane_VectorMatchesScalarTwin_AndDefinition(int h, int w, int kh, int kw, int sh, int sw, int dh, int dw)
    {
        int oh = (h - ((kh - 1) * dh + 1)) / sh + 1, ow = (w - ((kw - 1) * dw + 1)) / sw + 1;
        var s = new Simd.PoolingAverage.Shape(h, w, kh, kw, sh, sw, dh, dw, oh, ow);
        Assert.True(s.Inside);
        var x = NodeRunner.Random(h * w, 9);
        var vec = new float[oh * ow];
        var sca = new float[oh * ow];
        var scratch = new float[s.ScratchFloats];
        fixed (float* px = x)
        fixed (float* pv = vec)
        fixed (float* ps = sca)
        fixed (float* pt = scratch)
        {
            Simd.PoolingAverage.Plane(s, px, pv, pt);
            Simd.PoolingAverage.PlaneScalar(s, px, ps);
        }
        Assert.Equal(sca, vec); // same summation order: bit-identical
        var (expected, _) = PoolReference.Pool(x.Select(v => (double)v).ToArray(), [1, 1, h, w], PoolReference.Kind.AverageExcludePad,
            [kh, kw], [sh, sw], [0, 0], [0, 0], [dh, dw], [oh, ow]);
        NodeRunner.Close(expected.Select(v => (float)v).ToArray(), vec, 1e-5f, 1e-6f);
        // A window reaching past the input is refused, not computed wrongly.
        Assert.False((s with { OH = oh + 1 }).Inside);
    }

    [Theory]
    [InlineData(new[] { 2, 3, 5, 7 })]
    [InlineData(new[] { 1, 4, 100 })]
    [InlineData(new[] { 1, 2, 3, 4, 5 })]
    [InlineData(new[] { 2, 3 })]
    public void GlobalPools_MatchReference(int[] shape)
    {
        var x = NodeRunner.Random(shape.Aggregate(1, (p, d) => p * d), 3);
        int planes = shape[0] * shape[1], size = x.Length / planes;
        var outShape = shape.Select((d, i) => (long)(i < 2 ? d : 1)).ToArray();
        var max = new float[planes];
        var avg = new float[planes];
        var lp = new float[planes];
        for (int i = 0; i < planes; i++)
        {
            var plane = x.AsSpan(i * size, size).ToArray();
            max[i] = plane.Max();
            avg[i] = (float)(plane.Sum(v => (double)v) / size);
            lp[i] = (float)Math.Sqrt(plane.Sum(v => (double)v * v));
        }
        foreach (var (op, expected) in new[] { ("GlobalMaxPool", max), ("GlobalAveragePool", avg), ("GlobalLpPool", lp) })
        {
            var y = NodeRunner.Run(new Node(op, ["x"], ["y"]), [T(x, shape)])[0];
            Assert.Equal(outShape, y.Dims);
            NodeRunner.Close(expected, y.ToFloatArray(), 1e-5f, 1e-6f);
        }
    }

    [Fact]
    public void MaxUnpool_InvertsMaxPoolIndices()
    {
        int[] shape = [1, 2, 4, 6];
        var x = NodeRunner.Random(48, 4);
        var k = new Case("", shape, [2, 2], [2, 2], [0, 0, 0, 0], [1, 1], false);
        var pooled = NodeRunner.Run(PoolNode("MaxPool", k, 2), [T(x, shape)]);
        var node = new Node("MaxUnpool", ["y", "i"], ["z"]).With(Attr.Of("kernel_shape", new long[] { 2, 2 })).With(Attr.Of("strides", new long[] { 2, 2 }));
        var z = NodeRunner.Run(node, [pooled[0], pooled[1]])[0].ToFloatArray();
        var idx = pooled[1].ToInt64Array();
        var vals = pooled[0].ToFloatArray();
        var expected = new float[48];
        for (int i = 0; i < idx.Length; i++) expected[idx[i]] = vals[i];
        NodeRunner.Close(expected, z, 0, 0);
    }
}
