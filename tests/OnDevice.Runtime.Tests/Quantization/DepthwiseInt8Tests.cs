using OnDevice.Core;
using OnDevice.Runtime.Kernels.Quantization;
using OnDevice.Runtime.Reference;
using OnDevice.Runtime.Simd;
using Attr = OnDevice.Core.Attribute;

namespace OnDevice.Runtime.Tests.Quantization;

/// <summary>
/// <see cref="DepthwiseInt8"/> (integer depthwise sums) on every instruction path against the definition
/// Σ (x − zx)(w − zw) computed here with plain loops, bit for bit (the sums are exact); against the float kernel it
/// replaced (<see cref="DepthwiseConv.ChannelFromBytes"/>, also exact); weights that do not fit a signed byte are
/// refused; and QLinearConv depthwise nodes with such weights still equal the definition (the float fallback).
/// </summary>
[Trait("Category", "Kernels")]
public class DepthwiseInt8Tests
{
    public sealed record Geometry(string Name, int H, int W, int KH, int KW, int SH, int SW, int PT, int PL, int PB, int PR, int DH = 1, int DW = 1)
    {
        public DepthwiseConv.Shape Shape()
        {
            int oh = (H + PT + PB - ((KH - 1) * DH + 1)) / SH + 1, ow = (W + PL + PR - ((KW - 1) * DW + 1)) / SW + 1;
            return new DepthwiseConv.Shape(H, W, KH, KW, SH, SW, PT, PL, DH, DW, oh, ow);
        }

        public override string ToString() => Name;
    }

    private static readonly Geometry[] Geometries =
    [
        new("rec 3x3 s1 24x160", 24, 160, 3, 3, 1, 1, 1, 1, 1, 1),
        new("rec 3x3 s[2,1]", 24, 160, 3, 3, 2, 1, 1, 1, 1, 1),
        new("rec 3x3 s[1,2]", 12, 160, 3, 3, 1, 2, 1, 1, 1, 1),
        new("rec 5x5 s1 12x80 (full tile + leftovers across rows)", 12, 80, 5, 5, 1, 1, 2, 2, 2, 2),
        new("rec 5x5 s[2,1] 6x80", 6, 80, 5, 5, 2, 1, 2, 2, 2, 2),
        new("det 5x5 s2 40x40", 40, 40, 5, 5, 2, 2, 2, 2, 2, 2),
        new("det 5x5 20x20 (partial vectors)", 20, 20, 5, 5, 1, 1, 2, 2, 2, 2),
        new("60 wide (partial last vector of a full tile)", 5, 60, 3, 3, 1, 1, 1, 1, 1, 1),
        new("narrower than a vector", 3, 5, 3, 3, 1, 2, 1, 1, 1, 1),
        new("one output row, 200 wide", 1, 200, 1, 3, 1, 1, 0, 1, 0, 1),
        new("7x7 two quads, asymmetric pads", 11, 37, 7, 7, 1, 1, 3, 2, 1, 4),
        new("1x9 three quads, dilated", 4, 70, 1, 9, 1, 1, 0, 4, 0, 4, 1, 2),
        new("3x2 s[2,3] dilated rows", 17, 53, 3, 2, 2, 3, 1, 0, 2, 1, 2, 1),
        new("5x5 stride 4 (reach over 64 bytes: scalar expansion)", 20, 131, 5, 5, 4, 4, 2, 2, 2, 2),
        new("tall: several bands", 300, 96, 3, 3, 1, 1, 1, 1, 1, 1),
        new("padding wider than the row", 4, 3, 3, 9, 1, 1, 1, 6, 1, 6),
        new("16x16 window (256 taps)", 18, 24, 16, 16, 1, 1, 7, 7, 8, 8),
        new("9x5: three groups of column quads", 15, 70, 9, 5, 1, 1, 4, 2, 4, 2),
        new("5x1: column quads only, dilated rows", 16, 45, 5, 1, 1, 1, 4, 0, 4, 0, 2, 1),
        new("5x5 s[2,1] dilated (column rows 2 apart)", 14, 90, 5, 5, 2, 1, 4, 4, 4, 4, 2, 2),
    ];

    public static TheoryData<Int8GemmPath, Geometry> PathsAndGeometries()
    {
        var d = new TheoryData<Int8GemmPath, Geometry>();
        foreach (var p in Enum.GetValues<Int8GemmPath>())
            foreach (var g in Geometries) d.Add(p, g);
        return d;
    }

    /// <summary>Σ (x − zx)(w − zw) with plain loops (outside the image x − zx = 0).</summary>
    private static float[] Definition(DepthwiseConv.Shape s, byte[] x, bool signedX, int zx, byte[] w, bool signedW, int zw)
    {
        var y = new float[s.OH * s.OW];
        for (int oy = 0; oy < s.OH; oy++)
            for (int ox = 0; ox < s.OW; ox++)
            {
                long acc = 0;
                for (int ky = 0; ky < s.KH; ky++)
                    for (int kx = 0; kx < s.KW; kx++)
                    {
                        int iy = oy * s.SH - s.PadTop + ky * s.DH, ix = ox * s.SW - s.PadLeft + kx * s.DW;
                        if ((uint)iy >= (uint)s.H || (uint)ix >= (uint)s.W) continue;
                        byte xb = x[iy * s.W + ix], wb = w[ky * s.KW + kx];
                        acc += (long)((signedX ? (sbyte)xb : xb) - zx) * ((signedW ? (sbyte)wb : wb) - zw);
                    }
                y[oy * s.OW + ox] = acc;
            }
        return y;
    }

    private static unsafe float[] Run(Int8GemmPath path, DepthwiseConv.Shape s, byte[] x, bool signedX, int zx, DepthwiseInt8.Weights w, int channel, bool allowVbmi = true)
    {
        var plan = new DepthwiseInt8.Plan(s, allowVbmi);
        var y = new float[s.OH * s.OW];
        Array.Fill(y, float.NaN);
        var scratch = new byte[plan.ScratchBytes + 64];
        fixed (byte* px = x)
        fixed (byte* ps = scratch)
        fixed (float* py = y)
            DepthwiseInt8.Channel(path, plan, px, signedX, zx, w, channel, py, ps);
        return y;
    }

    [Theory]
    [MemberData(nameof(PathsAndGeometries))]
    public void EveryPath_EqualsTheDefinition(Int8GemmPath path, Geometry g)
    {
        if (!Int8Gemm.IsSupported(path)) return; // the ladder reruns of ./test.sh cover the lower rungs
        var s = g.Shape();
        var rng = new Random(g.Name.Length * 7 + g.W);
        foreach (var (signedX, signedW) in new[] { (false, true), (true, true), (false, false), (true, false) })
        {
            int channels = 3, taps = s.KH * s.KW;
            var x = new byte[s.H * s.W];
            rng.NextBytes(x);
            var w = new byte[channels * taps];
            // uint8 weights with zero point 128 (w − zw fits a signed byte); int8 weights with a small zero point.
            var zw = Enumerable.Range(0, channels).Select(_ => signedW ? rng.Next(-1, 2) : 128).ToArray();
            for (int i = 0; i < w.Length; i++)
            {
                int z = zw[i / taps];
                w[i] = (byte)(signedW ? rng.Next(Math.Max(-128, z - 128), Math.Min(128, z + 128)) : rng.Next(0, 256));
            }
            int zx = signedX ? rng.Next(-128, 128) : rng.Next(0, 256);
            var prepared = DepthwiseInt8.Prepare(w, signedW, zw, channels, s.KH, s.KW);
            Assert.NotNull(prepared);
            for (int c = 0; c < channels; c++)
            {
                var expected = Definition(s, x, signedX, zx, w.AsSpan(c * taps, taps).ToArray(), signedW, zw[c]);
                // With VBMI where the machine has it (vpermb expansion), and without (vpshufb or scalar expansion).
                foreach (bool vbmi in new[] { true, false })
                {
                    var actual = Run(path, s, x, signedX, zx, prepared, c, vbmi);
                    if (!expected.AsSpan().SequenceEqual(actual))
                    {
                        int i = Enumerable.Range(0, expected.Length).First(j => expected[j] != actual[j]);
                        Assert.Fail($"{path} {g.Name} vbmi={vbmi} signedX={signedX} signedW={signedW} channel {c}: [{i}] {actual[i]} vs {expected[i]}");
                    }
                }
            }
        }
    }

    [Theory]
    [InlineData(Int8GemmPath.Scalar)]
    [InlineData(Int8GemmPath.Avx2)]
    [InlineData(Int8GemmPath.Avx512BW)]
    [InlineData(Int8GemmPath.AvxVnni)]
    public void ExtremeValues_DoNotSaturate(Int8GemmPath path)
    {
        if (!Int8Gemm.IsSupported(path)) return;
        // 5x5 of 255 against −128 (and 0 against 127 with zx = 255): the largest sums the kernel can meet.
        var s = new Geometry("5x5", 9, 40, 5, 5, 1, 1, 2, 2, 2, 2).Shape();
        foreach (var (xv, zx, wv) in new[] { ((byte)255, 0, (byte)0x80), ((byte)0, 255, (byte)127), ((byte)255, 0, (byte)127) })
        {
            var x = Enumerable.Repeat(xv, s.H * s.W).ToArray();
            var w = Enumerable.Repeat(wv, 25).ToArray();
            var prepared = DepthwiseInt8.Prepare(w, true, [], 1, 5, 5)!;
            Assert.Equal(Definition(s, x, false, zx, w, true, 0), Run(path, s, x, false, zx, prepared, 0));
        }
    }

    [Theory]
    [InlineData(24, 160, 3, 1, 1, false)]
    [InlineData(12, 80, 5, 1, 1, true)]
    [InlineData(12, 80, 5, 2, 1, false)]
    [InlineData(12, 160, 3, 1, 2, true)]
    [InlineData(40, 40, 5, 2, 2, false)]
    public unsafe void BestPath_EqualsTheFloatKernelItReplaced(int h, int wd, int k, int sh, int sw, bool signedX)
    {
        var s = new Geometry("", h, wd, k, k, sh, sw, k / 2, k / 2, k / 2, k / 2).Shape();
        var rng = new Random(h * wd + k);
        var x = new byte[h * wd];
        rng.NextBytes(x);
        var w = new byte[k * k];
        rng.NextBytes(w);
        int zx = signedX ? -3 : 119;
        var wf = w.Select(b => (float)(sbyte)b).ToArray();
        var floatSums = new float[s.OH * s.OW];
        var scratch = new float[s.PlaneFloats + 64];
        fixed (byte* px = x)
        fixed (float* pw = wf, py = floatSums, ps = scratch)
            DepthwiseConv.ChannelFromBytes(s, px, signedX, zx, pw, 0f, default, py, ps);
        var prepared = DepthwiseInt8.Prepare(w, true, [], 1, k, k)!;
        Assert.Equal(floatSums, Run(DepthwiseInt8.Best, s, x, signedX, zx, prepared, 0));
        Assert.True(floatSums.Distinct().Count() > 100);
    }

    [Fact]
    public void Prepare_RefusesWeightsOutsideASignedByte()
    {
        // uint8 weights with zero point 0: 200 − 0 does not fit; with zero point 128 everything does.
        var w = new byte[] { 1, 2, 3, 200, 5, 6, 7, 8, 9 };
        Assert.Null(DepthwiseInt8.Prepare(w, false, [0], 1, 3, 3));
        Assert.NotNull(DepthwiseInt8.Prepare(w, false, [128], 1, 3, 3));
        // int8 weights: −128 − 1 does not fit.
        Assert.Null(DepthwiseInt8.Prepare([0x80, 0, 0, 0], true, [1], 1, 2, 2));
        Assert.NotNull(DepthwiseInt8.Prepare([0x80, 0, 0, 0], true, [0], 1, 2, 2));
        // Over 256 taps, or a length that does not match.
        Assert.Null(DepthwiseInt8.Prepare(new byte[17 * 17], true, [], 1, 17, 17));
        Assert.Null(DepthwiseInt8.Prepare(new byte[8], true, [], 1, 3, 3));
    }

    [Theory]
    [InlineData(128)] // uint8 weights − 128: the integer kernel
    [InlineData(0)]   // uint8 weights − 0 reach 255: refused, the float kernel on exact integers
    public void QLinearConvDepthwise_WithUnsignedWeights_EqualsTheDefinition(int zwValue)
    {
        int[] xShape = [1, 6, 13, 41], wShape = [6, 1, 5, 5];
        int[] strides = [2, 1], pads = [2, 2, 2, 2], dilations = [1, 1];
        var rng = new Random(zwValue + 3);
        var xr = new byte[xShape.Aggregate(1, (p, d) => p * d)];
        var wr = new byte[wShape.Aggregate(1, (p, d) => p * d)];
        rng.NextBytes(xr);
        rng.NextBytes(wr);
        int m = wShape[0], zx = 77, zy = 128;
        var zw = Enumerable.Repeat(zwValue, m).ToArray();
        var sums = QuantizationReference.ConvInteger2D(xr.Select(b => (int)b).ToArray(), xShape, zx, wr.Select(b => (int)b).ToArray(), wShape, zw,
            m, strides, pads, dilations, out var yShape);
        float sx = 0.02f, sy = 0.5f, swv = 0.004f;
        var expected = sums.Select((v, i) => (byte)(int)Math.Clamp(Math.Round((double)v * (sx * swv / sy)) + zy, 0, 255)).ToArray();
        var node = new Node("QLinearConv", ["x", "sx", "zx", "w", "sw", "zw", "sy", "zy"], ["y"]);
        node.With(Attr.Of("group", (long)m)).With(Attr.Of("strides", strides.Select(v => (long)v).ToArray()))
            .With(Attr.Of("pads", pads.Select(v => (long)v).ToArray()));
        Tensor[] inputs =
        [
            Tensor.FromBytes(DType.UInt8, xShape.Select(d => (long)d).ToArray(), xr, "x"), Tensor.Scalar(sx, "sx"), Tensor.FromBytes(DType.UInt8, [], new byte[] { (byte)zx }, "zx"),
            Tensor.FromBytes(DType.UInt8, wShape.Select(d => (long)d).ToArray(), wr, "w"), Tensor.Scalar(swv, "sw"), Tensor.FromBytes(DType.UInt8, [], new byte[] { (byte)zwValue }, "zw"),
            Tensor.Scalar(sy, "sy"), Tensor.FromBytes(DType.UInt8, [], new byte[] { (byte)zy }, "zy"),
        ];
        var inits = new Dictionary<string, Tensor> { ["w"] = inputs[3], ["sw"] = inputs[4], ["zw"] = inputs[5] };
        foreach (var constant in new[] { true, false })
        {
            var y = NodeRunner.Run(node, inputs, opset: 10, threads: 2, initializers: constant ? inits : null)[0];
            Assert.Equal(yShape.Select(d => (long)d), y.Dims);
            Assert.True(expected.AsSpan().SequenceEqual(y.AsSpan<byte>()), $"zw={zwValue} constant={constant}");
        }
    }
}
