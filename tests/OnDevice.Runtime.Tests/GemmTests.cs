using OnDevice.Runtime.Reference;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Tests;

/// <summary>The packed GEMM (every micro-kernel row count, edge tiles, K blocking, threading, epilogues) agrees with
/// <see cref="GemmReference"/>. CI reruns these with AVX-512, AVX2 and all intrinsics disabled so each rung runs.</summary>
[Trait("Category", "Kernels")]
public unsafe class GemmTests
{
    public static TheoryData<int, int, int> Shapes()
    {
        var d = new TheoryData<int, int, int>();
        int[] ms = [0, 1, 2, 3, 5, 7, 12, 13, 25, 37];
        int[] ns = [0, 1, 3, 16, 17, 31, 32, 33, 67];
        int[] ks = [0, 1, 2, 7, 31, 257, 300];
        int i = 0;
        foreach (var m in ms)
            foreach (var n in ns)
                foreach (var k in ks)
                    if (i++ % 5 == 0 || m == 0 || n == 0 || k == 0 || m == 1) d.Add(m, n, k);
        d.Add(200, 530, 70);  // several M and N blocks
        d.Add(64, 64, 600);   // three K blocks
        d.Add(389, 97, 129);  // primes
        return d;
    }

    internal static float[] RunGemm(float[] a, float[] b, int m, int n, int k, int threads, bool accumulate, float[] c0,
        GemmEpilogue ep, float[]? bias, bool prepackB, bool transA = false, bool transB = false)
    {
        var c = (float[])c0.Clone();
        var pa = new float[Math.Max(1, Gemm.PackedASize(m, k))];
        var pb = new float[Math.Max(1, Gemm.PackedBSize(k, n))];
        var scratch = new float[Math.Max(1, Gemm.ScratchFloats(k, n, threads))];
        bias ??= [0];
        fixed (float* ap = a, bp = b, pap = pa, pbp = pb, cp = c, sp = scratch, biasp = bias)
        {
            Gemm.PackA(ap, m, k, transA ? 1 : k, transA ? m : 1, 1f, pap);
            nint rs = transB ? 1 : n, cs = transB ? k : 1;
            if (prepackB)
            {
                Gemm.PackB(bp, k, n, rs, cs, 1f, pbp);
                Gemm.Multiply(new PrepackedB(pbp, k), pap, m, n, k, cp, n, accumulate, ep, biasp, threads, null);
            }
            else
                Gemm.Multiply(new StridedB(bp, rs, cs, n), pap, m, n, k, cp, n, accumulate, ep, biasp, threads, sp);
        }
        return c;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Multiply_MatchesReference(int m, int n, int k)
    {
        var a = NodeRunner.Random(m * k, 1 + m);
        var b = NodeRunner.Random(k * n, 2 + n);
        var c0 = NodeRunner.Random(m * n, 3 + k);
        var expected = new float[m * n];
        GemmReference.Multiply(a, k, 1, b, n, 1, expected, n, m, n, k);
        foreach (int threads in new[] { 1, 2, 3 })
            foreach (bool prepack in new[] { true, false })
                NodeRunner.Close(expected, RunGemm(a, b, m, n, k, threads, false, c0, default, null, prepack), 1e-4f, 1e-5f);
    }

    [Theory]
    [InlineData(13, 45, 19)]
    [InlineData(30, 70, 300)]
    [InlineData(1, 33, 5)]
    [InlineData(160, 600, 40)]
    public void Epilogues_Accumulate_AndTransposes_MatchReference(int m, int n, int k)
    {
        var a = NodeRunner.Random(m * k, 11, -2, 2);
        var b = NodeRunner.Random(k * n, 12, -2, 2);
        var c0 = NodeRunner.Random(m * n, 13);
        FusedActivation[] acts =
        [
            FusedActivation.None, FusedActivation.Relu, FusedActivation.Clip(-0.5f, 0.75f), FusedActivation.HardSigmoid(0.3f, 0.4f),
            FusedActivation.HardSwish, FusedActivation.TimesHardSigmoid(0.2f, 0.5f), FusedActivation.LeakyRelu(0.1f),
        ];
        foreach (var bias in new[] { GemmBias.None, GemmBias.PerRow, GemmBias.PerColumn })
            foreach (var act in acts)
                foreach (bool acc in new[] { false, true })
                {
                    var ep = new GemmEpilogue(bias, act);
                    var bv = bias == GemmBias.None ? null : NodeRunner.Random(bias == GemmBias.PerRow ? m : n, 14);
                    var expected = (float[])c0.Clone();
                    GemmReference.Multiply(a, k, 1, b, n, 1, expected, n, m, n, k, acc, ep, bv);
                    NodeRunner.Close(expected, RunGemm(a, b, m, n, k, 2, acc, c0, ep, bv, true), 1e-4f, 1e-4f);
                    NodeRunner.Close(expected, RunGemm(a, b, m, n, k, 1, acc, c0, ep, bv, false), 1e-4f, 1e-4f);
                }
        // Transposed operands, packed from strided memory.
        var at = Transpose(a, m, k);
        var bt = Transpose(b, k, n);
        var plain = new float[m * n];
        GemmReference.Multiply(a, k, 1, b, n, 1, plain, n, m, n, k);
        NodeRunner.Close(plain, RunGemm(at, bt, m, n, k, 1, false, c0, default, null, true, transA: true, transB: true), 1e-4f, 1e-4f);
        NodeRunner.Close(plain, RunGemm(at, bt, m, n, k, 2, false, c0, default, null, false, transA: true, transB: true), 1e-4f, 1e-4f);
    }

    internal static float[] Transpose(float[] x, int rows, int cols)
    {
        var t = new float[x.Length];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) t[j * rows + i] = x[i * cols + j];
        return t;
    }

    [Theory]
    [InlineData(5, 40, 9)]
    [InlineData(24, 333, 300)]
    [InlineData(13, 31, 1)]
    public void IndirectB_MatchesReference(int m, int n, int k)
    {
        // B[kk, j] = data[offsets[kk] + j] with arbitrary (overlapping) row offsets.
        var rng = new Random(7);
        var offsets = new int[k];
        for (int i = 0; i < k; i++) offsets[i] = rng.Next(0, 50);
        var data = NodeRunner.Random(50 + n + 2 * Gemm.NR + 16, 8);
        var b = new float[k * n];
        for (int i = 0; i < k; i++)
            for (int j = 0; j < n; j++) b[i * n + j] = data[offsets[i] + j];
        var a = NodeRunner.Random(m * k, 9);
        var bias = NodeRunner.Random(m, 10);
        var ep = new GemmEpilogue(GemmBias.PerRow, FusedActivation.Relu);
        var expected = new float[m * n];
        GemmReference.Multiply(a, k, 1, b, n, 1, expected, n, m, n, k, false, ep, bias);
        foreach (int threads in new[] { 1, 2 })
        {
            var c = new float[m * n];
            var pa = new float[Gemm.PackedASize(m, k)];
            fixed (float* ap = a, pap = pa, dp = data, cp = c, bp = bias)
            fixed (int* op = offsets)
            {
                Gemm.PackA(ap, m, k, k, 1, 1f, pap);
                Gemm.Multiply(new IndirectB(dp, op), pap, m, n, k, cp, n, false, ep, bp, threads, null);
            }
            NodeRunner.Close(expected, c, 1e-4f, 1e-5f);
        }
    }

    [Theory]
    [InlineData(1, 512, 128)]
    [InlineData(3, 7, 5)]
    [InlineData(9, 33, 100)]
    [InlineData(4, 0, 3)]
    [InlineData(2, 3, 0)]
    public void DotRows_MatchesReference(int m, int n, int k)
    {
        var a = NodeRunner.Random(m * k, 21);
        var b = NodeRunner.Random(n * k, 22);
        var c0 = NodeRunner.Random(m * n, 23);
        foreach (bool acc in new[] { false, true })
        {
            var expected = (float[])c0.Clone();
            GemmReference.Multiply(a, k, 1, b, 1, k, expected, n, m, n, k, acc);
            var c = (float[])c0.Clone();
            fixed (float* ap = a, bp = b, cp = c)
                DotRows.Multiply(ap, m, k, k, bp, n, k, cp, n, acc);
            NodeRunner.Close(expected, c, 1e-4f, 1e-5f);
        }
    }
}
