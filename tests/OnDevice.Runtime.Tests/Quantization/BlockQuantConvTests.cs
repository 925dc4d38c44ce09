using OnDevice.Core;
using OnDevice.Runtime.Simd;
using Attr = OnDevice.Core.Attribute;

namespace OnDevice.Runtime.Tests.Quantization;

/// <summary>
/// Weight-only int4 QDQ convolutions (<c>com.ondevice.BlockQuantConv</c>, packed weights dequantized into GEMM panels
/// per run) against the same graph run unoptimized (DequantizeLinear to float, then the float convolution), over the
/// convolution strategies (pointwise, implicit GEMM, im2col, grouped, few output positions, 1-D and 3-D), blocked /
/// per-channel / per-tensor scales, with and without zero points, K not a multiple of the block.
/// </summary>
public class BlockQuantConvTests
{
    /// <summary>One convolution geometry and quantization layout.</summary>
    public sealed record Case(string Name, int N, int C, int[] Spatial, int M, int[] Kernel, int Group = 1, int Stride = 1, int Pad = 0,
        string Scales = "block", int Block = 32, bool Signed = true, bool ZeroPoints = true, bool Bias = true, string? After = null, int Threads = 1, bool Flat = false)
    {
        public override string ToString() => Name;
    }

    public static readonly Case[] Cases =
    [
        new("pointwise int4 block32 zp", 2, 64, [5, 7], 48, [1, 1]),
        new("pointwise uint4 block16 K=40 no zp", 1, 40, [6, 6], 64, [1, 1], Block: 16, Signed: false, ZeroPoints: false),
        new("pointwise int4 K=72 (block tail) no bias, 2 threads", 1, 72, [4, 9], 33, [1, 1], Bias: false, Threads: 2),
        new("3x3 pad1 stride1 (implicit GEMM) uint4 zp", 1, 48, [9, 11], 16, [3, 3], Pad: 1, Signed: false),
        new("3x3 pad1 stride1 K=40 int4 no zp, 2 threads", 2, 40, [8, 8], 30, [3, 3], Pad: 1, ZeroPoints: false, Threads: 2),
        new("3x3 stride2 pad1 (im2col) int4 zp", 1, 32, [12, 10], 24, [3, 3], Stride: 2, Pad: 1),
        new("5x5 stride2 K=20 block16 uint4", 1, 20, [11, 13], 12, [5, 5], Stride: 2, Pad: 2, Block: 16, Signed: false),
        new("grouped g=4 3x3 int4 zp", 1, 64, [7, 7], 32, [3, 3], Group: 4, Pad: 1),
        new("grouped g=2 pointwise uint4", 1, 64, [5, 5], 96, [1, 1], Group: 2, Signed: false),
        new("few output positions (1x1 map, 3x3 pad 1)", 2, 64, [1, 1], 40, [3, 3], Pad: 1),
        new("1-D k=3", 2, 48, [17], 20, [3], Pad: 1),
        new("3-D 1x3x3", 1, 32, [3, 6, 6], 16, [1, 3, 3], Pad: 1),
        new("per-channel int4 3x3", 1, 36, [6, 6], 20, [3, 3], Pad: 1, Scales: "channel"),
        new("per-tensor uint4 pointwise", 1, 50, [4, 4], 48, [1, 1], Scales: "tensor", Signed: false),
        new("pointwise + Relu (fused epilogue)", 1, 64, [6, 5], 32, [1, 1], After: "Relu"),
        new("3x3 + HardSwish chain (fused epilogue)", 1, 32, [6, 6], 24, [3, 3], Pad: 1, After: "HardSwish"),
        new("pointwise + BatchNormalization (folded)", 1, 64, [5, 5], 40, [1, 1], After: "BN"),
        // The quantizer's form for several taps: DequantizeLinear of [M, cg·taps] blocked along axis 1, then Reshape.
        new("flat 1x3 K=2880-like (cg 96) + BN, int4 zp", 1, 96, [1, 40], 20, [1, 3], Pad: 1, After: "BN", Flat: true),
        new("flat 3x3 stride2 K=9·20 (block tail) uint4", 1, 20, [9, 9], 24, [3, 3], Stride: 2, Pad: 1, Signed: false, Flat: true),
        new("flat 3x3 implicit, grouped g=2, no zp, 2 threads", 2, 32, [7, 8], 32, [3, 3], Group: 2, Pad: 1, ZeroPoints: false, Threads: 2, Flat: true),
        new("flat per-channel 3x3", 1, 24, [6, 6], 16, [3, 3], Pad: 1, Scales: "channel", Flat: true),
        new("flat 1x3 few positions (1x4 map)", 1, 64, [1, 4], 48, [1, 3], Pad: 1, Flat: true),
        new("flat depthwise 5x5 (one block per channel, K=25 < 32) + HardSwish", 1, 128, [8, 10], 128, [5, 5], Group: 128, Pad: 2, After: "HardSwish", Flat: true),
        new("flat depthwise 3x3 stride 2 uint4 no zp, 2 threads", 2, 256, [9, 9], 256, [3, 3], Group: 256, Stride: 2, Pad: 1, Block: 16, Signed: false, ZeroPoints: false, Threads: 2, Flat: true),
    ];

    // Every case has at least FuseBlockQuantConv.MinWeights (2048) weights, so it is kept packed.
    public static TheoryData<Case> All() { var d = new TheoryData<Case>(); foreach (var c in Cases) d.Add(c); return d; }

    /// <summary>The graph x → Conv(x, DequantizeLinear(w int4)) (→ Relu / HardSwish / BatchNormalization) and the weight count.</summary>
    internal static (Model Model, string Y, long Weights) Build(Case c, int seed)
    {
        var rng = new Random(seed);
        var b = new QOperatorOrtTests.Builder();
        b.G.Inputs.Add(ValueInfo.Tensor("x", DType.Float32, Shape.Of([c.N, c.C, .. c.Spatial])));
        int cg = c.C / c.Group, taps = c.Kernel.Aggregate(1, (p, d) => p * d);
        long[] wDims = [c.M, cg, .. c.Kernel.Select(k => (long)k)];
        long count = (long)c.M * cg * taps;
        long[] qDims = c.Flat ? [c.M, cg * taps] : wDims;
        var t = c.Signed ? DType.Int4 : DType.UInt4;
        var q = Int4.Pack(Enumerable.Range(0, (int)count).Select(_ => c.Signed ? rng.Next(-8, 8) : rng.Next(16)).ToArray());
        long[] sDims;
        var attrs = new List<Attr>();
        switch (c.Scales)
        {
            case "block":
                sDims = c.Flat ? [c.M, (cg * taps + c.Block - 1) / c.Block] : [c.M, (cg + c.Block - 1) / c.Block, .. c.Kernel.Select(k => (long)k)];
                attrs.Add(Attr.Of("axis", 1L));
                attrs.Add(Attr.Of("block_size", (long)c.Block));
                break;
            case "channel":
                sDims = [c.M];
                attrs.Add(Attr.Of("axis", 0L));
                break;
            default:
                sDims = [];
                break;
        }
        int sCount = (int)sDims.Aggregate(1L, (p, d) => p * d);
        var inputs = new List<string> { b.C(Tensor.FromBytes(t, qDims, q)), b.C(Tensor.FromArray<float>(NodeRunner.Random(sCount, seed + 1, 0.01f, 0.05f), sDims)) };
        if (c.ZeroPoints)
            inputs.Add(b.C(Tensor.FromBytes(t, sDims, Int4.Pack(Enumerable.Range(0, sCount).Select(_ => c.Signed ? rng.Next(-2, 3) : rng.Next(6, 10)).ToArray()))));
        var w = b.Op("DequantizeLinear", [.. inputs], "", [.. attrs]);
        if (c.Flat) w = b.Op("Reshape", [w, b.C(Tensor.FromArray<long>(wDims.Select((d, i) => i == 1 ? -1 : d).ToArray(), [wDims.Length]))]);
        var convInputs = new List<string> { "x", w };
        if (c.Bias) convInputs.Add(b.C(Tensor.FromArray<float>(NodeRunner.Random(c.M, seed + 2, -0.5f, 0.5f), [c.M])));
        var convAttrs = new List<Attr> { Attr.Of("group", (long)c.Group), Attr.Of("strides", Enumerable.Repeat((long)c.Stride, c.Kernel.Length).ToArray()),
            Attr.Of("pads", Enumerable.Repeat((long)c.Pad, 2 * c.Kernel.Length).ToArray()) };
        if (c.Kernel.Length == 2) convAttrs.Add(Attr.Of("kernel_shape", c.Kernel.Select(k => (long)k).ToArray()));
        var y = b.Op("Conv", [.. convInputs], "", [.. convAttrs]);
        switch (c.After)
        {
            case "Relu": y = b.Op("Relu", [y]); break;
            case "HardSwish": y = b.Op("Add", [b.Op("HardSwish", [y]), b.F(0.25f)]); break;
            case "BN":
                y = b.Op("BatchNormalization", [y, b.C(Tensor.FromArray<float>(NodeRunner.Random(c.M, seed + 3, 0.5f, 1.5f), [c.M])),
                    b.C(Tensor.FromArray<float>(NodeRunner.Random(c.M, seed + 4), [c.M])), b.C(Tensor.FromArray<float>(NodeRunner.Random(c.M, seed + 5), [c.M])),
                    b.C(Tensor.FromArray<float>(NodeRunner.Random(c.M, seed + 6, 0.2f, 2f), [c.M]))]);
                break;
        }
        var model = b.Model(y);
        model.OpsetImports[0] = new OpsetImport("", 21);
        return (model, y, count);
    }

    [Theory]
    [MemberData(nameof(All))]
    public void BlockQuantConv_AgreesWithDequantizeThenFloatConv(Case c)
    {
        var (model, y, weights) = Build(c, c.Name.Length);
        var x = Tensor.FromArray<float>(NodeRunner.Random((int)(c.N * c.C * c.Spatial.Aggregate(1L, (p, d) => p * d)), 7), [c.N, c.C, .. c.Spatial.Select(d => (long)d)], "x");
        var feeds = new Dictionary<string, Tensor> { ["x"] = x };
        var fused = new InferenceSession(model, new SessionOptions { Threads = c.Threads });
        var nodes = fused.OptimizedGraph.Nodes;
        Assert.Contains(nodes, n => n.OpType == "BlockQuantConv");
        Assert.DoesNotContain(nodes, n => n.OpType is "DequantizeLinear" or "Conv" or "FusedConv" or "Reshape");
        if (c.After is "Relu" or "HardSwish") Assert.Single(nodes); // the chain runs in the convolution's epilogue
        if (c.After == "BN") Assert.DoesNotContain(nodes, n => n.OpType == "BatchNormalization");
        // No float copy of the weight anywhere in the optimized graph.
        Assert.DoesNotContain(fused.OptimizedGraph.Initializers.Values, t => t.DType == DType.Float32 && t.ElementCount >= weights);
        var actual = fused.Run(feeds)[y].ToFloatArray();
        var reference = new InferenceSession(model, new SessionOptions { Threads = 1, Optimize = false });
        var expected = reference.Run(feeds)[y].ToFloatArray();
        Assert.Equal(expected.Length, actual.Length);
        NodeRunner.Close(expected, actual, 1e-4f, 1e-4f);
        // A second run reuses the scratch (dequantized panels are rebuilt, not cached).
        NodeRunner.Close(expected, fused.Run(feeds)[y].ToFloatArray(), 1e-4f, 1e-4f);
    }

    [Fact]
    public void PerChannelBlockedDepthwise_AndTinyConvolutions_StayFloat()
    {
        // Depthwise 3×3 blocked along its single input channel: every weight would need a block of its own (16 nibbles,
        // a float scale and zero point), more than the float weight.
        var dw = Build(new Case("depthwise", 1, 256, [6, 6], 256, [3, 3], Group: 256, Pad: 1, Block: 16), 3);
        var s = new InferenceSession(dw.Model, new SessionOptions { Threads = 1 });
        Assert.DoesNotContain(s.OptimizedGraph.Nodes, n => n.OpType == "BlockQuantConv");
        // 16×16 pointwise: 256 weights, below the packed threshold.
        var tiny = Build(new Case("tiny", 1, 16, [4, 4], 16, [1, 1], Block: 16), 4);
        s = new InferenceSession(tiny.Model, new SessionOptions { Threads = 1 });
        Assert.DoesNotContain(s.OptimizedGraph.Nodes, n => n.OpType == "BlockQuantConv");
        var x = Tensor.FromArray<float>(NodeRunner.Random(16 * 16, 5), [1, 16, 4, 4], "x");
        var expected = new InferenceSession(tiny.Model, new SessionOptions { Threads = 1, Optimize = false }).Run(new Dictionary<string, Tensor> { ["x"] = x })[tiny.Y].ToFloatArray();
        NodeRunner.Close(expected, s.Run(new Dictionary<string, Tensor> { ["x"] = x })[tiny.Y].ToFloatArray(), 1e-4f, 1e-4f);
    }

    [Fact]
    public void Float16Scales_StayOnTheFoldedPath()
    {
        // DequantizeLinear with float16 scales rounds each weight to float16 (a Cast to float32 follows); the packed
        // path would not, so such a convolution keeps the exact folded semantics.
        var b = new QOperatorOrtTests.Builder();
        b.G.Inputs.Add(ValueInfo.Tensor("x", DType.Float32, Shape.Of(1, 64, 4, 4)));
        var rng = new Random(5);
        var q = Int4.Pack(Enumerable.Range(0, 48 * 64).Select(_ => rng.Next(-8, 8)).ToArray());
        var scales = Tensor.FromArray<Half>(NodeRunner.Random(48 * 2, 6, 0.01f, 0.05f).Select(v => (Half)v).ToArray(), [48, 2, 1, 1]);
        var w = b.Op("DequantizeLinear", [b.C(Tensor.FromBytes(DType.Int4, [48, 64, 1, 1], q)), b.C(scales)], "", Attr.Of("axis", 1L), Attr.Of("block_size", 32L));
        var y = b.Op("Conv", ["x", b.Op("Cast", [w], "", Attr.Of("to", (long)DType.Float32))]);
        var model = b.Model(y);
        model.OpsetImports[0] = new OpsetImport("", 21);
        var s = new InferenceSession(model, new SessionOptions { Threads = 1 });
        Assert.DoesNotContain(s.OptimizedGraph.Nodes, n => n.OpType == "BlockQuantConv");
        var feeds = new Dictionary<string, Tensor> { ["x"] = Tensor.FromArray<float>(NodeRunner.Random(64 * 16, 8), [1, 64, 4, 4], "x") };
        var expected = new InferenceSession(model, new SessionOptions { Threads = 1, Optimize = false }).Run(feeds)[y].ToFloatArray();
        NodeRunner.Close(expected, s.Run(feeds)[y].ToFloatArray(), 1e-4f, 1e-4f);
    }

    [Fact]
    public void Session_KeepsConvWeightsPacked()
    {
        // 3×3 conv 256 → 256: 589,824 weights, 295 KB packed, 2.4 MB as float32.
        var (model, y, weights) = Build(new Case("big", 1, 256, [6, 6], 256, [3, 3], Pad: 1), 9);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var session = new InferenceSession(model, new SessionOptions { Threads = 1 });
        long built = GC.GetAllocatedBytesForCurrentThread() - before;
        long floatCopy = 4 * weights;
        // The re-laid-out 4-bit weights, float scales and zero points (3 B per 4 weights at block 32) plus the optimizer's working copies.
        Assert.True(built < floatCopy * 3 / 4, $"building the session allocated {built:N0} bytes; a float32 copy of the weights is {floatCopy:N0}");
        var x = Tensor.FromArray<float>(NodeRunner.Random(256 * 36, 2), [1, 256, 6, 6], "x");
        session.Run(new Dictionary<string, Tensor> { ["x"] = x });
        long runBefore = GC.GetAllocatedBytesForCurrentThread();
        session.Run(new Dictionary<string, Tensor> { ["x"] = x });
        long ran = GC.GetAllocatedBytesForCurrentThread() - runBefore;
        Assert.True(ran < floatCopy / 4, $"a run allocated {ran:N0} bytes");
    }

    public static TheoryData<bool, string, float, float, string, bool, bool> GemmCases() => new()
    {
        // transB, scales, alpha, beta, C, signed, zero points
        { true, "block", 1f, 1f, "vector", true, true },
        { false, "block", 1f, 1f, "none", false, true },
        { true, "channel", 0.5f, 2f, "scalar", true, false },
        { false, "tensor", 1.5f, 0.25f, "row", false, false },
        { false, "block", 1f, 1f, "vector", true, false },
    };

    [Theory]
    [MemberData(nameof(GemmCases))]
    public void WeightOnlyInt4Gemm_RunsAsMatMulNBits(bool transB, string scaleKind, float alpha, float beta, string cKind, bool signed, bool zeroPoints)
    {
        int m = 5, k = 72, n = 40, bs = 16, nb = (k + bs - 1) / bs; // K = 72: a partial last block
        var rng = new Random(k + n + (transB ? 1 : 0) + scaleKind.Length);
        var b = new QOperatorOrtTests.Builder();
        b.G.Inputs.Add(ValueInfo.Tensor("a", DType.Float32, Shape.Of(m, k)));
        var t = signed ? DType.Int4 : DType.UInt4;
        long[] bDims = transB ? [n, k] : [k, n];
        var q = Int4.Pack(Enumerable.Range(0, k * n).Select(_ => signed ? rng.Next(-8, 8) : rng.Next(16)).ToArray());
        long[] sDims;
        var attrs = new List<Attr>();
        switch (scaleKind)
        {
            case "block":
                sDims = transB ? [n, nb] : [nb, n];
                attrs.Add(Attr.Of("axis", transB ? 1L : 0L));
                attrs.Add(Attr.Of("block_size", (long)bs));
                break;
            case "channel":
                sDims = [n];
                attrs.Add(Attr.Of("axis", transB ? 0L : 1L));
                break;
            default:
                sDims = [];
                break;
        }
        int sCount = (int)sDims.Aggregate(1L, (p, d) => p * d);
        var inputs = new List<string> { b.C(Tensor.FromBytes(t, bDims, q)), b.C(Tensor.FromArray<float>(NodeRunner.Random(sCount, 3, 0.01f, 0.05f), sDims)) };
        if (zeroPoints) inputs.Add(b.C(Tensor.FromBytes(t, sDims, Int4.Pack(Enumerable.Range(0, sCount).Select(_ => signed ? rng.Next(-2, 3) : rng.Next(6, 10)).ToArray()))));
        var w = b.Op("DequantizeLinear", [.. inputs], "", [.. attrs]);
        var gemmInputs = new List<string> { "a", w };
        if (cKind != "none")
        {
            long[] cDims = cKind switch { "vector" => [n], "row" => [1, n], _ => [] };
            gemmInputs.Add(b.C(Tensor.FromArray<float>(NodeRunner.Random((int)cDims.Aggregate(1L, (p, d) => p * d), 4), cDims)));
        }
        var y = b.Op("Gemm", [.. gemmInputs], "", Attr.Of("transB", transB ? 1L : 0L), Attr.Of("alpha", alpha), Attr.Of("beta", beta));
        var model = b.Model(y);
        model.OpsetImports[0] = new OpsetImport("", 21);
        var feeds = new Dictionary<string, Tensor> { ["a"] = Tensor.FromArray<float>(NodeRunner.Random(m * k, 5), [m, k], "a") };
        var fused = new InferenceSession(model, new SessionOptions { Threads = 1 });
        Assert.Equal("MatMulNBits", Assert.Single(fused.OptimizedGraph.Nodes).OpType);
        Assert.DoesNotContain(fused.OptimizedGraph.Initializers.Values, x => x.DType == DType.Float32 && x.ElementCount >= k * n);
        var expected = new InferenceSession(model, new SessionOptions { Threads = 1, Optimize = false }).Run(feeds)[y].ToFloatArray();
        NodeRunner.Close(expected, fused.Run(feeds)[y].ToFloatArray(), 1e-4f, 1e-4f);
    }

    public static TheoryData<int, int, int, int, int> PanelShapes() => new()
    {
        // k0, kc, width, taps (k stride = taps·width), columns
        { 0, 64, 6, 1, 17 }, { 0, 40, 6, 9, 12 }, { 16, 33, 16, 1, 40 }, { 7, 50, 1, 3, 5 }, { 0, 96, 12, 2, 30 }, { 5, 60, 12, 1, 26 }, { 3, 45, 32, 1, 70 },
    };

    [Theory]
    [MemberData(nameof(PanelShapes))]
    public unsafe void NBitsPanels_VectorPath_AgreesWithScalarTwin(int k0, int kc, int width, int taps, int n)
    {
        if (!Int4Gemv.IsSupported(NBitsPath.Avx2)) return;
        int k = k0 + kc + 5, bs = 16, blocks = (k + bs - 1) / bs, bb = bs / 2;
        var rng = new Random(k * n + width);
        var data = new byte[n * blocks * bb];
        rng.NextBytes(data);
        var scales = NodeRunner.Random(n * blocks, 3, 0.01f, 0.1f);
        var zps = Enumerable.Range(0, n * blocks).Select(_ => (float)rng.Next(16)).ToArray();
        int panels = (n + width - 1) / width;
        nint kStride = (nint)taps * width, panelStride = (nint)kc * taps * width;
        var expected = new float[panels * panelStride];
        var actual = new float[panels * panelStride];
        Array.Fill(expected, float.NaN);
        Array.Fill(actual, float.NaN);
        fixed (byte* pd = data)
        fixed (float* ps = scales, pz = zps, pe = expected, pa = actual)
        {
            var w = new NBitsWeights(pd, ps, pz, k, n, 4, bs);
            for (int t = 0; t < taps; t++)
            {
                NBitsPanels.Dequantize(NBitsPath.Scalar, w, k0, kc, 0, n, width, pe + t * width, kStride, panelStride);
                NBitsPanels.Dequantize(NBitsPath.Avx2, w, k0, kc, 0, n, width, pa + t * width, kStride, panelStride);
            }
            // The definition: (q − zp)·s at every written place, zeros past the last column.
            for (int j = 0; j < panels * width; j++)
                for (int kk = 0; kk < kc; kk++)
                {
                    float want = j < n ? (w.Q(j, k0 + kk) - zps[j * blocks + (k0 + kk) / bs]) * scales[j * blocks + (k0 + kk) / bs] : 0f;
                    Assert.Equal(want, expected[j / width * panelStride + kk * kStride + j % width]);
                }
        }
        Assert.Equal(expected, actual);
    }
}
