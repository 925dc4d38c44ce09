using OnDevice.Core;
using OnDevice.Runtime.Reference;
using OnDevice.Runtime.Simd;
using Attr = OnDevice.Core.Attribute;

namespace OnDevice.Runtime.Tests.Quantization;

/// <summary>com.microsoft.MatMulNBits against its definition (dequantize, then multiply in double) for 4 and 8 bits, block
/// sizes 16–128, K not a multiple of the block, default/packed/float zero points, bias, the GEMV and GEMM paths and
/// accuracy level 4 (int8 activations); each instruction path against the scalar twin; and the memory a session keeps.</summary>
[Trait("Category", "Kernels")]
public class MatMulNBitsTests
{
    /// <summary>A random MatMulNBits problem: packed tensors and the unpacked values the reference reads.</summary>
    public sealed class Problem
    {
        public int K, N, Bits, BlockSize, Blocks;
        public int[] Q = [];
        public float[] Scales = [], ZeroPoints = [];
        public byte[] Packed = [], PackedZp = [];

        public static Problem Random(int seed, int k, int n, int bits, int bs)
        {
            var rng = new Random(seed);
            var p = new Problem { K = k, N = n, Bits = bits, BlockSize = bs, Blocks = (k + bs - 1) / bs };
            int qmax = (1 << bits) - 1, blockBytes = bs * bits / 8;
            p.Q = new int[n * k];
            p.Packed = new byte[n * p.Blocks * blockBytes];
            for (int j = 0; j < n; j++)
                for (int kk = 0; kk < k; kk++)
                {
                    int q = rng.Next(qmax + 1);
                    p.Q[j * k + kk] = q;
                    int blk = kk / bs, o = kk % bs, at = (j * p.Blocks + blk) * blockBytes;
                    if (bits == 8) p.Packed[at + o] = (byte)q;
                    else p.Packed[at + o / 2] |= (byte)(q << ((o & 1) * 4));
                }
            p.Scales = Enumerable.Range(0, n * p.Blocks).Select(_ => 0.001f + (float)rng.NextDouble() * 0.02f).ToArray();
            p.ZeroPoints = Enumerable.Range(0, n * p.Blocks).Select(_ => (float)rng.Next(qmax + 1)).ToArray();
            int perRow = (p.Blocks * bits + 7) / 8;
            p.PackedZp = new byte[n * perRow];
            for (int j = 0; j < n; j++)
                for (int b = 0; b < p.Blocks; b++)
                {
                    int z = (int)p.ZeroPoints[j * p.Blocks + b];
                    if (bits == 8) p.PackedZp[j * perRow + b] = (byte)z;
                    else p.PackedZp[j * perRow + b / 2] |= (byte)(z << ((b & 1) * 4));
                }
            return p;
        }

        public Node Node(int accuracy, bool zp, bool bias)
        {
            var node = new Node("MatMulNBits", ["A", "B", "scales", zp ? "zp" : "", "", bias ? "bias" : ""], ["Y"], "mmnb", "com.microsoft");
            node.With(Attr.Of("K", (long)K)).With(Attr.Of("N", (long)N)).With(Attr.Of("bits", (long)Bits))
                .With(Attr.Of("block_size", (long)BlockSize)).With(Attr.Of("accuracy_level", (long)accuracy));
            return node;
        }

        public Dictionary<string, Tensor> Initializers(string zpKind, float[]? bias)
        {
            var d = new Dictionary<string, Tensor>
            {
                ["B"] = Tensor.FromBytes(DType.UInt8, [N, Blocks, BlockSize * Bits / 8], Packed, "B"),
                ["scales"] = Tensor.FromArray<float>(Scales, [N, Blocks], "scales"),
            };
            if (zpKind == "packed") d["zp"] = Tensor.FromBytes(DType.UInt8, [PackedZp.Length], PackedZp, "zp");
            if (zpKind == "float") d["zp"] = Tensor.FromArray<float>(ZeroPoints, [N, Blocks], "zp");
            if (bias is not null) d["bias"] = Tensor.FromArray<float>(bias, [N], "bias");
            return d;
        }
    }

    public static TheoryData<int, int, int, int, int, string, int> Cases() => new()
    {
        // bits, block, K, N, M, zero points, accuracy
        { 4, 32, 96, 40, 1, "packed", 0 },
        { 4, 16, 100, 33, 3, "none", 0 },
        { 4, 64, 200, 17, 1, "float", 0 },
        { 4, 128, 300, 24, 9, "packed", 0 },
        { 4, 32, 64, 50, 20, "none", 0 },
        { 8, 32, 70, 21, 1, "packed", 0 },
        { 8, 16, 48, 19, 7, "float", 0 },
        { 4, 32, 128, 31, 2, "packed", 4 },
        { 4, 16, 90, 12, 1, "none", 4 },
        { 8, 64, 130, 15, 1, "packed", 4 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatMulNBits_AgreesWithTheDefinition(int bits, int bs, int k, int n, int m, string zpKind, int accuracy)
    {
        var p = Problem.Random(bits * 1000 + bs + k + n, k, n, bits, bs);
        var a = NodeRunner.Random(m * k, 11 + m);
        var bias = NodeRunner.Random(n, 12);
        var zps = zpKind == "none" ? Enumerable.Repeat((float)(1 << (bits - 1)), n * p.Blocks).ToArray() : p.ZeroPoints;
        var expected = QuantizationReference.MatMulNBits(a, m, k, p.Q, n, bs, p.Scales, zps, bias);
        var inits = p.Initializers(zpKind, bias);
        var y = NodeRunner.Run(p.Node(accuracy, zpKind != "none", true), [Tensor.FromArray<float>(a, [m, k], "A")], threads: 2, initializers: inits)[0];
        Assert.Equal(new long[] { m, n }, y.Dims);
        // Accuracy level 4 quantizes A to int8 per block: allow its rounding error (relative to the magnitude of the sum).
        float tol = accuracy == 4 ? 2e-2f : 1e-4f;
        var scale = Enumerable.Range(0, m * n).Select(i => Math.Max(1f, Math.Abs(expected[i]))).ToArray();
        var actual = y.AsSpan<float>();
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(actual[i] - expected[i]) <= tol * scale[i] * (accuracy == 4 ? MathF.Sqrt(k) : 1), $"element {i}: {actual[i]} vs {expected[i]}");
    }

    public static TheoryData<NBitsPath> Paths()
    {
        var d = new TheoryData<NBitsPath>();
        foreach (var p in Enum.GetValues<NBitsPath>()) d.Add(p);
        return d;
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public unsafe void EveryPath_MatchesTheScalarTwin(NBitsPath path)
    {
        if (!Int4Gemv.IsSupported(path)) return;
        foreach (var (bits, bs, k, n, rows) in new[] { (4, 16, 64, 9, 1), (4, 32, 96, 13, 3), (8, 64, 128, 5, 2), (4, 128, 256, 7, 4) })
        {
            var p = Problem.Random(k + n, k, n, bits, bs);
            int blocks = p.Blocks, padded = blocks * bs;
            var a = NodeRunner.Random(rows * padded, 5);
            var sums = new float[rows * blocks];
            for (int r = 0; r < rows; r++)
                for (int b = 0; b < blocks; b++)
                    for (int i = 0; i < bs; i++) sums[r * blocks + b] += a[r * padded + b * bs + i];
            var a8 = new sbyte[rows * padded];
            var aScales = new float[rows * blocks];
            var aSums = new int[rows * blocks];
            var expectedF = new float[rows * n];
            var actualF = new float[rows * n];
            var expectedI = new float[rows * n];
            var actualI = new float[rows * n];
            fixed (byte* pb = p.Packed) fixed (float* ps = p.Scales) fixed (float* pz = p.ZeroPoints)
            fixed (float* pa = a) fixed (float* psum = sums) fixed (sbyte* p8 = a8) fixed (float* pas = aScales) fixed (int* pasu = aSums)
            fixed (float* ef = expectedF) fixed (float* af = actualF) fixed (float* ei = expectedI) fixed (float* ai = actualI)
            {
                var w = new NBitsWeights(pb, ps, pz, k, n, bits, bs);
                for (int r = 0; r < rows; r++) Int4Gemv.QuantizeBlocks(pa + r * padded, blocks, bs, p8 + r * padded, pas + r * blocks, pasu + r * blocks);
                if (path != NBitsPath.AvxVnni)
                {
                    Int4Gemv.MultiplyFloat(NBitsPath.Scalar, pa, rows, padded, psum, w, 0, n, ef, n);
                    Int4Gemv.MultiplyFloat(path, pa, rows, padded, psum, w, 0, n, af, n);
                    NodeRunner.Close(expectedF, actualF, 1e-4f, 1e-4f);
                }
                Int4Gemv.MultiplyInt8(NBitsPath.Scalar, p8, rows, padded, pas, pasu, w, 0, n, ei, n);
                Int4Gemv.MultiplyInt8(path, p8, rows, padded, pas, pasu, w, 0, n, ai, n);
                NodeRunner.Close(expectedI, actualI, 1e-4f, 1e-4f);
            }
        }
    }

    [Fact]
    public void Session_KeepsTheWeightsPacked()
    {
        // 1024×1024 int4 weights: 512 KiB packed, 4 MiB as float32. Building the session must not create a float copy.
        int k = 1024, n = 1024, bs = 32;
        var p = Problem.Random(1, k, n, 4, bs);
        var g = new Graph { Name = "nbits" };
        g.Inputs.Add(ValueInfo.Tensor("A", DType.Float32, Shape.Of(1, k)));
        foreach (var (name, t) in p.Initializers("packed", null)) g.AddInitializer(t.Clone(name));
        g.Nodes.Add(p.Node(0, true, false));
        g.Outputs.Add(ValueInfo.Tensor("Y", DType.Float32, Shape.Of(1, n)));
        var model = new Model(g);
        model.OpsetImports.Add(new OpsetImport("", 17));
        model.OpsetImports.Add(new OpsetImport("com.microsoft", 1));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var session = new InferenceSession(model, new SessionOptions { Threads = 1 });
        long built = GC.GetAllocatedBytesForCurrentThread() - before;
        long floatCopy = 4L * k * n;
        Assert.True(built < floatCopy / 4, $"building the session allocated {built:N0} bytes; a float32 copy of B would be {floatCopy:N0}");
        Assert.DoesNotContain(session.OptimizedGraph.Initializers.Values, t => t.DType == DType.Float32 && t.ElementCount >= (long)k * n);
        var a = NodeRunner.Random(k, 3);
        long runBefore = GC.GetAllocatedBytesForCurrentThread();
        var y = session.Run(new Dictionary<string, Tensor> { ["A"] = Tensor.FromArray<float>(a, [1, k], "A") })["Y"];
        long ran = GC.GetAllocatedBytesForCurrentThread() - runBefore;
        Assert.True(ran < floatCopy / 4, $"a run allocated {ran:N0} bytes");
        long planned = session.PlannedPeakBytes(new Dictionary<string, Tensor> { ["A"] = Tensor.FromArray<float>(a, [1, k], "A") });
        Assert.True(planned < floatCopy / 4, $"planned arena {planned:N0} bytes");
        var expected = QuantizationReference.MatMulNBits(a, 1, k, p.Q, n, bs, p.Scales, p.ZeroPoints, []);
        NodeRunner.Close(expected, y.AsSpan<float>(), 1e-4f, 1e-3f);
    }
}
