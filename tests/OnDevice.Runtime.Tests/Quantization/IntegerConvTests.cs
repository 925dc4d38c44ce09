using OnDevice.Core;
using OnDevice.Runtime.Reference;
using Attr = OnDevice.Core.Attribute;

namespace OnDevice.Runtime.Tests.Quantization;

/// <summary>ConvInteger and QLinearConv (im2col on the int8 GEMM, depthwise direct) against the scalar definition, with
/// constant (prepacked) and run-time weights, uint8/int8 inputs and per-tensor/per-channel weight zero points.</summary>
[Trait("Category", "Kernels")]
public class IntegerConvTests
{
    public sealed record Case(string Name, int[] X, int[] W, int Group, int[] Strides, int[] Pads, int[] Dilations)
    {
        public override string ToString() => Name;
    }

    public static TheoryData<Case> Cases() => new()
    {
        new Case("pointwise", [1, 16, 9, 11], [24, 16, 1, 1], 1, [1, 1], [0, 0, 0, 0], [1, 1]),
        new Case("pointwise 7 channels batch 2 (NCHW GEMM tails)", [2, 7, 5, 41], [13, 7, 1, 1], 1, [1, 1], [0, 0, 0, 0], [1, 1]),
        new Case("pointwise 70 channels", [1, 70, 8, 24], [30, 70, 1, 1], 1, [1, 1], [0, 0, 0, 0], [1, 1]),
        new Case("pointwise stride 2 (im2col path)", [1, 12, 9, 10], [8, 12, 1, 1], 1, [2, 2], [0, 0, 0, 0], [1, 1]),
        new Case("stem 3->16 3x3 s2 (row im2col)", [2, 3, 21, 70], [16, 3, 3, 3], 1, [2, 2], [1, 1, 1, 1], [1, 1]),
        new Case("stem 4->7 5x3 s1 asym pad dilated", [1, 4, 12, 37], [7, 4, 5, 3], 1, [1, 1], [2, 0, 1, 3], [1, 2]),
        new Case("stem 2->5 3x3 s3", [1, 2, 17, 50], [5, 2, 3, 3], 1, [3, 3], [1, 1, 1, 1], [1, 1]),
        new Case("96->24 3x3 (row im2col, bands of rows)", [1, 96, 23, 19], [24, 96, 3, 3], 1, [1, 1], [1, 1, 1, 1], [1, 1]),
        new Case("3x3 pad 1 batch 2", [2, 7, 13, 35], [13, 7, 3, 3], 1, [1, 1], [1, 1, 1, 1], [1, 1]),
        new Case("3x3 stride 2 asym pad", [1, 5, 14, 15], [6, 5, 3, 3], 1, [2, 2], [1, 0, 2, 1], [1, 1]),
        new Case("5x3 grouped dilated", [1, 8, 19, 12], [12, 2, 5, 3], 4, [2, 1], [2, 1, 2, 1], [1, 2]),
        new Case("many positions", [1, 24, 40, 44], [20, 24, 3, 3], 1, [1, 1], [1, 1, 1, 1], [1, 1]),
        new Case("depthwise 3x3 s2", [2, 5, 16, 17], [5, 1, 3, 3], 5, [2, 2], [1, 1, 1, 1], [1, 1]),
        new Case("depthwise multiplier 2", [1, 3, 11, 12], [6, 1, 3, 3], 3, [1, 3], [2, 0, 1, 2], [2, 2]),
        new Case("depthwise 3x3 s1 wide (vector rows)", [2, 4, 9, 37], [4, 1, 3, 3], 4, [1, 1], [1, 1, 1, 1], [1, 1]),
        new Case("depthwise 5x5 s1 dilated asym pad", [1, 3, 14, 29], [6, 1, 5, 5], 3, [1, 1], [3, 2, 1, 4], [2, 1]),
        new Case("depthwise 17x17 (over 256 taps: integer loop)", [1, 2, 20, 21], [2, 1, 17, 17], 2, [1, 1], [8, 8, 8, 8], [1, 1]),
    };

    private static (byte[] Raw, int[] Values) Random(Random rng, int n, bool signed)
    {
        var raw = new byte[n];
        rng.NextBytes(raw);
        return (raw, raw.Select(b => signed ? (int)(sbyte)b : b).ToArray());
    }

    private static Node ConvNode(string op, string[] inputs, Case c)
    {
        var node = new Node(op, inputs, ["y"]);
        node.With(Attr.Of("group", (long)c.Group)).With(Attr.Of("strides", c.Strides.Select(v => (long)v).ToArray()))
            .With(Attr.Of("pads", c.Pads.Select(v => (long)v).ToArray())).With(Attr.Of("dilations", c.Dilations.Select(v => (long)v).ToArray()));
        return node;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ConvInteger_EqualsTheDefinition(Case c)
    {
        var rng = new Random(c.Name.Length * 31);
        foreach (var (sx, sw, perChannel, constant) in new[] { (false, true, false, true), (true, true, true, false), (false, false, true, true), (true, false, false, false) })
        {
            var (xr, xv) = Random(rng, c.X.Aggregate(1, (p, d) => p * d), sx);
            var (wr, wv) = Random(rng, c.W.Aggregate(1, (p, d) => p * d), sw);
            int zx = sx ? rng.Next(-20, 20) : rng.Next(100, 150);
            var zw = perChannel ? Enumerable.Range(0, c.W[0]).Select(_ => sw ? rng.Next(-5, 5) : rng.Next(120, 136)).ToArray() : [sw ? 3 : 128];
            var expected = QuantizationReference.ConvInteger2D(xv, c.X, zx, wv, c.W, zw, c.Group, c.Strides, c.Pads, c.Dilations, out var yShape);
            var xT = Tensor.FromBytes(sx ? DType.Int8 : DType.UInt8, c.X.Select(d => (long)d).ToArray(), xr, "x");
            var wT = Tensor.FromBytes(sw ? DType.Int8 : DType.UInt8, c.W.Select(d => (long)d).ToArray(), wr, "w");
            var zxT = Tensor.FromBytes(xT.DType, [], new byte[] { (byte)zx }, "zx");
            var zwT = Tensor.FromBytes(wT.DType, perChannel ? [zw.Length] : [], zw.Select(v => (byte)v).ToArray(), "zw");
            var inits = constant ? new Dictionary<string, Tensor> { ["w"] = wT, ["zw"] = zwT } : null;
            var y = NodeRunner.Run(ConvNode("ConvInteger", ["x", "w", "zx", "zw"], c), [xT, wT, zxT, zwT], opset: 10, threads: constant ? 2 : 1, initializers: inits)[0];
            Assert.Equal(yShape.Select(d => (long)d), y.Dims);
            Assert.True(expected.AsSpan().SequenceEqual(y.AsSpan<int>()), $"{c.Name} sx={sx} sw={sw} perChannel={perChannel} constant={constant}");
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void QLinearConv_RequantizesTheIntegerSums(Case c)
    {
        foreach (bool signedX in new[] { false, true })
        {
            var rng = new Random(c.Name.Length * 17);
            var (xr, xv) = Random(rng, c.X.Aggregate(1, (p, d) => p * d), signedX);
            var (wr, wv) = Random(rng, c.W.Aggregate(1, (p, d) => p * d), true);
            int m = c.W[0];
            var zw = new int[m];
            var sw = Enumerable.Range(0, m).Select(_ => 0.001f + (float)rng.NextDouble() * 0.01f).ToArray();
            var bias = Enumerable.Range(0, m).Select(_ => rng.Next(-5000, 5000)).ToArray();
            float sx = 0.02f, sy = 0.5f;
            int zx = signedX ? -7 : 128, zy = signedX ? -20 : 100, lo = signedX ? -128 : 0, hi = signedX ? 127 : 255;
            var sums = QuantizationReference.ConvInteger2D(xv, c.X, zx, wv, c.W, zw, c.Group, c.Strides, c.Pads, c.Dilations, out var yShape);
            int plane = sums.Length / (yShape[0] * m);
            var expected = new byte[sums.Length];
            for (int i = 0; i < sums.Length; i++)
            {
                int oc = i / plane % m;
                double v = Math.Round((double)(sums[i] + bias[oc]) * (sx * sw[oc] / sy)) + zy;
                expected[i] = (byte)(int)Math.Clamp(v, lo, hi);
            }
            var node = ConvNode("QLinearConv", ["x", "sx", "zx", "w", "sw", "zw", "sy", "zy", "b"], c);
            var xType = signedX ? DType.Int8 : DType.UInt8;
            Tensor[] inputs =
            [
                Tensor.FromBytes(xType, c.X.Select(d => (long)d).ToArray(), xr, "x"), Tensor.Scalar(sx, "sx"), Tensor.FromBytes(xType, [], new byte[] { (byte)zx }, "zx"),
                Tensor.FromBytes(DType.Int8, c.W.Select(d => (long)d).ToArray(), wr, "w"), Tensor.FromArray<float>(sw, [m], "sw"), Tensor.FromBytes(DType.Int8, [m], new byte[m], "zw"),
                Tensor.Scalar(sy, "sy"), Tensor.FromBytes(xType, [], new byte[] { (byte)zy }, "zy"), Tensor.FromArray<int>(bias, [m], "b"),
            ];
            var inits = new Dictionary<string, Tensor> { ["w"] = inputs[3], ["sw"] = inputs[4], ["zw"] = inputs[5], ["b"] = inputs[8] };
            var y = NodeRunner.Run(node, inputs, opset: 10, threads: 2, initializers: inits)[0];
            Assert.True(expected.AsSpan().SequenceEqual(y.AsSpan<byte>()), $"{c.Name} signedX={signedX}");
        }
    }

    [Fact]
    public void MatMulInteger_BroadcastsBatchesAndPerRowZeroPoints()
    {
        var rng = new Random(5);
        int batches = 3, m = 5, k = 37, n = 21;
        var (ar, av) = Random(rng, batches * m * k, true);
        var (br, bv) = Random(rng, k * n, false);
        var za = Enumerable.Range(0, m).Select(_ => rng.Next(-10, 10)).ToArray();
        var zb = Enumerable.Range(0, n).Select(_ => rng.Next(100, 150)).ToArray();
        var node = new Node("MatMulInteger", ["a", "b", "za", "zb"], ["y"]);
        Tensor[] inputs =
        [
            Tensor.FromBytes(DType.Int8, [batches, m, k], ar, "a"), Tensor.FromBytes(DType.UInt8, [k, n], br, "b"),
            Tensor.FromBytes(DType.Int8, [m], za.Select(v => (byte)v).ToArray(), "za"), Tensor.FromBytes(DType.UInt8, [n], zb.Select(v => (byte)v).ToArray(), "zb"),
        ];
        foreach (var constant in new[] { false, true })
        {
            var y = NodeRunner.Run(node, inputs, opset: 10, initializers: constant ? new Dictionary<string, Tensor> { ["b"] = inputs[1], ["zb"] = inputs[3] } : null)[0];
            Assert.Equal(new long[] { batches, m, n }, y.Dims);
            for (int b = 0; b < batches; b++)
            {
                var expected = QuantizationReference.IntegerMatMul(av.AsSpan(b * m * k, m * k), bv, m, k, n, za, zb);
                Assert.Equal(expected, y.AsSpan<int>().Slice(b * m * n, m * n).ToArray());
            }
        }
    }
}
