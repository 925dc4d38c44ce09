using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using OnDevice.Runtime.Llm;
using OnDevice.Runtime.Llm.Kernels;

namespace OnDevice.Runtime.Tests.Llm;

[Trait("Category", "Kernels")]
public unsafe class LlmKernelTests
{
    private static (sbyte[] Q, float[] S) QuantizedActivations(int blocks, Random rng)
    {
        var x = new float[blocks * 32];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 4 - 2);
        var q = new sbyte[x.Length];
        var s = new float[blocks];
        fixed (float* px = x) fixed (sbyte* pq = q) fixed (float* ps = s) QuantDot.QuantizeActivations(px, x.Length, pq, ps);
        return (q, s);
    }

    private static (sbyte[] X, int[] C8) InterleaveX(sbyte[] xq, int blocks)
    {
        var xi = new sbyte[xq.Length];
        var c8 = new int[blocks];
        fixed (sbyte* px = xq, pxi = xi) fixed (int* pc = c8) GroupDot.InterleaveActivations(px, blocks, pxi, pc);
        return (xi, c8);
    }

    private static byte[] InterleaveQ4(byte[] w, int rows, int blocks)
    {
        var wi = new byte[w.Length];
        fixed (byte* pw = w, pwi = wi)
            for (int r = 0; r < rows; r++) GroupDot.InterleaveQ4(pw + r * blocks * 16, blocks, pwi + r * blocks * 16);
        return wi;
    }

    private static byte[] InterleaveQ8(sbyte[] w, int rows, int blocks)
    {
        var wi = new byte[w.Length];
        fixed (sbyte* pw = w) fixed (byte* pwi = wi)
            for (int r = 0; r < rows; r++) GroupDot.InterleaveQ8(pw + r * blocks * 32, blocks, pwi + r * blocks * 32);
        return wi;
    }

    private static sbyte[] RandomQ8(int n, Random rng)
    {
        var w = new sbyte[n];
        for (int i = 0; i < n; i++) w[i] = (sbyte)rng.Next(-128, 128);
        w[0] = 127; w[1] = -128;
        return w;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(8)]
    [InlineData(19)]
    [InlineData(64)]
    [InlineData(176)]
    public void Q8PathsAgreeWithScalarTwin(int blocks)
    {
        var rng = new Random(blocks);
        var (xq, xs) = QuantizedActivations(blocks, rng);
        var w = RandomQ8(blocks * 32, rng);
        var ws = Enumerable.Range(0, blocks).Select(_ => (float)rng.NextDouble() * 0.01f).ToArray();
        var wi = InterleaveQ8(w, 1, blocks);
        var (xi, c8) = InterleaveX(xq, blocks);
        fixed (sbyte* pw = w, px = xq, pxi = xi) fixed (byte* pwi = wi) fixed (float* pws = ws, pxs = xs) fixed (int* pc = c8)
        {
            float reference = QuantDot.DotQ8Scalar(pw, pws, px, pxs, blocks);
            Assert.NotEqual(0f, reference);
            // The interleaved scalar twin does the same integer sums and float operations in the same order.
            Assert.Equal(reference, GroupDot.DotQ8Scalar(pwi, pws, pxi, pxs, blocks));
            float tol = 1e-4f * MathF.Abs(reference) + 1e-5f;
            if (Avx2.IsSupported) Assert.Equal(reference, GroupDot.DotQ8Avx2(pwi, pws, pxi, pxs, pc, blocks, 256, 8), tol);
            if (AvxVnni.IsSupported) Assert.Equal(reference, GroupDot.DotQ8Vnni(pwi, pws, pxi, pxs, pc, blocks, 256, 8), tol);
            Assert.Equal(reference, GroupDot.DotQ8(pwi, pws, pxi, pxs, pc, blocks), tol);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(8)]
    [InlineData(17)]
    [InlineData(64)]
    [InlineData(176)]
    public void Q4PathsAgreeWithScalarTwin(int blocks)
    {
        var rng = new Random(100 + blocks);
        var (xq, xs) = QuantizedActivations(blocks, rng);
        var w = new byte[blocks * 16];
        rng.NextBytes(w);
        w[0] = 0xFF; w[1] = 0x00;
        var ws = Enumerable.Range(0, blocks).Select(_ => (float)rng.NextDouble() * 0.01f).ToArray();
        var wi = InterleaveQ4(w, 1, blocks);
        var (xi, c8) = InterleaveX(xq, blocks);
        fixed (byte* pw = w, pwi = wi) fixed (sbyte* px = xq, pxi = xi) fixed (float* pws = ws, pxs = xs) fixed (int* pc = c8)
        {
            float reference = QuantDot.DotQ4Scalar(pw, pws, px, pxs, blocks);
            Assert.NotEqual(0f, reference);
            Assert.Equal(reference, GroupDot.DotQ4Scalar(pwi, pws, pxi, pxs, pc, blocks));
            float tol = 1e-4f * MathF.Abs(reference) + 1e-5f;
            if (Avx2.IsSupported) Assert.Equal(reference, GroupDot.DotQ4Avx2(pwi, pws, pxi, pxs, pc, blocks, 128, 8), tol);
            if (AvxVnni.IsSupported) Assert.Equal(reference, GroupDot.DotQ4Vnni(pwi, pws, pxi, pxs, pc, blocks, 128, 8), tol);
            Assert.Equal(reference, GroupDot.DotQ4(pwi, pws, pxi, pxs, pc, blocks), tol);
        }
    }

    [Theory]
    [InlineData(2048)]
    [InlineData(172)]
    [InlineData(31)]
    public void ActivationQuantizerMatchesScalarTwin(int n)
    {
        var rng = new Random(n);
        var x = Enumerable.Range(0, n).Select(_ => (rng.NextSingle() * 2 - 1) * 3).ToArray();
        // A block of zeros, and a block whose values land exactly halfway between integers (ties go to even).
        if (n >= 96)
            for (int i = 0; i < 64; i++) x[i] = i < 32 ? 0 : i % 2 == 0 ? 127f : (i - 32) + 0.5f;
        int blocks = (n + 31) / 32;
        var q1 = new sbyte[blocks * 32];
        var q2 = new sbyte[blocks * 32];
        var s1 = new float[blocks];
        var s2 = new float[blocks];
        fixed (float* px = x, ps1 = s1, ps2 = s2) fixed (sbyte* pq1 = q1, pq2 = q2)
        {
            QuantDot.QuantizeActivationsScalar(px, n, pq1, ps1);
            QuantDot.QuantizeActivations(px, n, pq2, ps2);
        }
        Assert.Equal(q1, q2);
        Assert.Equal(s1, s2);
        Assert.Contains(q1, v => v == 127);
    }

    [Fact]
    public void InterleavedLayoutsMoveEveryByteToItsDocumentedPlace()
    {
        int blocks = 19;
        var w4 = Enumerable.Range(0, blocks * 16).Select(i => (byte)(i * 7)).ToArray();
        var w8 = Enumerable.Range(0, blocks * 32).Select(i => (sbyte)(i * 3)).ToArray();
        var x = Enumerable.Range(0, blocks * 32).Select(i => (sbyte)(i * 5)).ToArray();
        var w4i = InterleaveQ4(w4, 1, blocks);
        var w8i = InterleaveQ8(w8, 1, blocks);
        var (xi, c8) = InterleaveX(x, blocks);
        for (int b = 0; b < blocks; b++)
        {
            for (int o = 0; o < 16; o++) Assert.Equal(w4[b * 16 + o], w4i[GroupDot.Q4ByteOffset(b, o, blocks)]);
            for (int e = 0; e < 32; e++)
            {
                Assert.Equal(x[b * 32 + e], xi[GroupDot.ActivationOffset(b, e, blocks)]);
                Assert.Equal(w8[b * 32 + e] + 128, w8i[GroupDot.ActivationOffset(b, e, blocks)]);
            }
            Assert.Equal(8 * x.Skip(b * 32).Take(32).Sum(v => (int)v), c8[b]);
        }
        Assert.Equal(w4.OrderBy(v => v), w4i.OrderBy(v => v));
    }

    [Theory]
    [InlineData(LlmWeights.Int8, 0.01)]
    [InlineData(LlmWeights.Int4, 0.12)]
    public void QuantizedMatrixTracksFp32Product(LlmWeights format, double tolerance)
    {
        // 172 columns: not a multiple of 32 (the stories260K MLP), so the padded last block is exercised.
        int rows = 40, cols = 172;
        var rng = new Random(7);
        var w = new float[rows * cols];
        for (int i = 0; i < w.Length; i++) w[i] = (float)(rng.NextDouble() * 2 - 1);
        var x = new float[3 * cols];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        WeightMatrix m = format == LlmWeights.Int8 ? Q8Matrix.Quantize(w, rows, cols) : Q4Matrix.Quantize(w, rows, cols);
        Assert.True(m.Bytes < 4L * rows * cols / (format == LlmWeights.Int8 ? 3 : 5), $"{m.Bytes} bytes is not compressed");
        var acts = new LlmActivations();
        var y = new float[3 * rows];
        fixed (float* px = x, py = y)
        {
            acts.Set(px, 3, cols, cols);
            m.Multiply(acts, py, rows, 0, rows);
        }
        double err = 0, norm = 0;
        for (int t = 0; t < 3; t++)
            for (int r = 0; r < rows; r++)
            {
                double exact = 0;
                for (int c = 0; c < cols; c++) exact += w[r * cols + c] * x[t * cols + c];
                err += (y[t * rows + r] - exact) * (y[t * rows + r] - exact);
                norm += exact * exact;
            }
        Assert.True(Math.Sqrt(err / norm) < tolerance, $"relative error {Math.Sqrt(err / norm):0.0000}");
        // The dequantized row is what the kernel multiplies by.
        var row = new float[cols];
        m.ReadRow(5, row);
        double dot = 0;
        for (int c = 0; c < cols; c++) dot += row[c] * x[c];
        Assert.Equal(dot, y[5], 0.02 * Math.Abs(dot) + 0.05);
    }

    [Theory]
    [InlineData(27)]
    [InlineData(64)]
    [InlineData(3)]
    public void FourTokenKernelsAreBitIdenticalToSingleRowCalls(int blocks)
    {
        var rng = new Random(11 + blocks);
        var acts = Enumerable.Range(0, 4).Select(_ => QuantizedActivations(blocks, rng)).ToArray();
        var inter = acts.Select(a => InterleaveX(a.Q, blocks)).ToArray();
        var w4 = new byte[4 * blocks * 16];
        rng.NextBytes(w4);
        var w4i = InterleaveQ4(w4, 4, blocks);
        var w8i = InterleaveQ8(RandomQ8(4 * blocks * 32, rng), 4, blocks);
        var ws = Enumerable.Range(0, 4 * blocks).Select(_ => (float)rng.NextDouble()).ToArray();
        var handles = new List<GCHandle>();
        T* Pin<T>(T[] a) where T : unmanaged { var h = GCHandle.Alloc(a, GCHandleType.Pinned); handles.Add(h); return (T*)h.AddrOfPinnedObject(); }
        try
        {
            float** xs = stackalloc float*[4];
            sbyte** xi = stackalloc sbyte*[4];
            int** xc = stackalloc int*[4];
            for (int t = 0; t < 4; t++) { xs[t] = Pin(acts[t].S); xi[t] = Pin(inter[t].X); xc[t] = Pin(inter[t].C8); }
            byte* p4 = Pin(w4i), p8 = Pin(w8i);
            float* pws = Pin(ws);
            float* r = stackalloc float[4];
            // One weight row with four activation rows (prefill).
            GroupDot.DotQ4x4(p4, pws, xi, xs, xc, blocks, r);
            for (int t = 0; t < 4; t++) Assert.Equal(GroupDot.DotQ4(p4, pws, xi[t], xs[t], xc[t], blocks), r[t]);
            GroupDot.DotQ8x4(p8, pws, xi, xs, xc, blocks, r);
            for (int t = 0; t < 4; t++) Assert.Equal(GroupDot.DotQ8(p8, pws, xi[t], xs[t], xc[t], blocks), r[t]);
        }
        finally { foreach (var h in handles) h.Free(); }
    }

    [Theory]
    [InlineData(LlmWeights.Int8)]
    [InlineData(LlmWeights.Int4)]
    public void EveryBatchSizeGivesTheSameOutputs(LlmWeights format)
    {
        // 37 rows (not a multiple of 4), 9 activation rows (two groups of 4 and one left over), 300 columns (a tail block).
        int rows = 37, cols = 300, n = 9;
        var rng = new Random(3);
        var w = Enumerable.Range(0, rows * cols).Select(_ => rng.NextSingle() * 2 - 1).ToArray();
        var x = Enumerable.Range(0, n * cols).Select(_ => rng.NextSingle() * 2 - 1).ToArray();
        WeightMatrix m = format == LlmWeights.Int8 ? Q8Matrix.Quantize(w, rows, cols) : Q4Matrix.Quantize(w, rows, cols);
        var all = new float[n * rows];
        var one = new float[rows];
        var acts = new LlmActivations();
        fixed (float* px = x, pa = all, po = one)
        {
            acts.Set(px, n, cols, cols);
            m.Multiply(acts, pa, rows, 0, rows);
            for (int t = 0; t < n; t++)
            {
                acts.Set(px + t * cols, 1, cols, cols);
                m.Multiply(acts, po, rows, 0, 17);
                m.Multiply(acts, po, rows, 17, rows);
                Assert.Equal(all.AsSpan(t * rows, rows).ToArray(), one);
            }
        }
    }
}
