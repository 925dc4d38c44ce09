using OnDevice.Runtime.Llm;
using OnDevice.Runtime.Llm.Kernels;

namespace OnDevice.Runtime.Tests.Llm;

[Trait("Category", "Kernels")]
public unsafe class LlmKernelTests
{
    private static (sbyte[] Q, float[] S, float[] Sum) QuantizedActivations(int blocks, Random rng)
    {
        var x = new float[blocks * 32];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 4 - 2);
        var q = new sbyte[x.Length];
        var s = new float[blocks];
        var u = new float[blocks];
        fixed (float* px = x) fixed (sbyte* pq = q) fixed (float* ps = s) fixed (float* pu = u) QuantDot.QuantizeActivations(px, x.Length, pq, ps, pu);
        return (q, s, u);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(7)]
    [InlineData(19)]
    [InlineData(64)]
    public void Q8PathsAgreeWithScalarTwin(int blocks)
    {
        var rng = new Random(blocks);
        var (xq, xs, _) = QuantizedActivations(blocks, rng);
        var w = new sbyte[blocks * 32];
        for (int i = 0; i < w.Length; i++) w[i] = (sbyte)rng.Next(-127, 128);
        w[0] = 127; w[1] = -127;
        var ws = Enumerable.Range(0, blocks).Select(_ => (float)rng.NextDouble() * 0.01f).ToArray();
        fixed (sbyte* pw = w, px = xq) fixed (float* pws = ws, pxs = xs)
        {
            float reference = QuantDot.DotQ8Scalar(pw, pws, px, pxs, blocks);
            Assert.NotEqual(0f, reference);
            if (System.Runtime.Intrinsics.X86.Avx2.IsSupported) Assert.Equal(reference, QuantDot.DotQ8Avx2(pw, pws, px, pxs, blocks), 1e-3f * MathF.Abs(reference) + 1e-5f);
            if (System.Runtime.Intrinsics.X86.AvxVnni.IsSupported) Assert.Equal(reference, QuantDot.DotQ8Vnni(pw, pws, px, pxs, blocks), 1e-3f * MathF.Abs(reference) + 1e-5f);
            if (System.Runtime.Intrinsics.X86.Avx512BW.IsSupported) Assert.Equal(reference, QuantDot.DotQ8Avx512(pw, pws, px, pxs, blocks), 1e-3f * MathF.Abs(reference) + 1e-5f);
            Assert.Equal(reference, QuantDot.DotQ8(pw, pws, px, pxs, blocks), 1e-3f * MathF.Abs(reference) + 1e-5f);
        }
    }

    private static (byte[] W, sbyte[] X, int[] C8) Interleave(byte[] w, sbyte[] xq, int blocks)
    {
        var wi = new byte[w.Length];
        var xi = new sbyte[xq.Length];
        var c8 = new int[blocks];
        fixed (byte* pw = w, pwi = wi) fixed (sbyte* px = xq, pxi = xi) fixed (int* pc = c8)
        {
            GroupDot.InterleaveQ4(pw, blocks, pwi);
            GroupDot.InterleaveActivations(px, blocks, pxi, pc);
        }
        return (wi, xi, c8);
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
        var (xq, xs, xsum) = QuantizedActivations(blocks, rng);
        var w = new byte[blocks * 16];
        rng.NextBytes(w);
        w[0] = 0xFF; w[1] = 0x00;
        var ws = Enumerable.Range(0, blocks).Select(_ => (float)rng.NextDouble() * 0.01f).ToArray();
        var (wi, xi, c8) = Interleave(w, xq, blocks);
        fixed (byte* pw = w, pwi = wi) fixed (sbyte* px = xq, pxi = xi) fixed (float* pws = ws, pxs = xs, pu = xsum) fixed (int* pc = c8)
        {
            float reference = QuantDot.DotQ4Scalar(pw, pws, px, pxs, pu, blocks);
            Assert.NotEqual(0f, reference);
            // The interleaved scalar twin does the same integer sums and float operations in the same order.
            Assert.Equal(reference, GroupDot.DotQ4Scalar(pwi, pws, pxi, pxs, pc, blocks));
            float tol = 1e-4f * MathF.Abs(reference) + 1e-5f;
            if (System.Runtime.Intrinsics.X86.Avx2.IsSupported) Assert.Equal(reference, GroupDot.DotQ4Avx2(pwi, pws, pxi, pxs, pc, blocks), tol);
            if (System.Runtime.Intrinsics.X86.AvxVnni.IsSupported) Assert.Equal(reference, GroupDot.DotQ4Vnni(pwi, pws, pxi, pxs, pc, blocks), tol);
            Assert.Equal(reference, GroupDot.DotQ4(pwi, pws, pxi, pxs, pc, blocks), tol);
        }
    }

    [Fact]
    public void InterleavedLayoutsMoveEveryByteToItsDocumentedPlace()
    {
        int blocks = 19;
        var w = Enumerable.Range(0, blocks * 16).Select(i => (byte)(i * 7)).ToArray();
        var x = Enumerable.Range(0, blocks * 32).Select(i => (sbyte)(i * 5)).ToArray();
        var (wi, xi, c8) = Interleave(w, x, blocks);
        for (int b = 0; b < blocks; b++)
        {
            for (int o = 0; o < 16; o++) Assert.Equal(w[b * 16 + o], wi[GroupDot.Q4ByteOffset(b, o, blocks)]);
            for (int e = 0; e < 32; e++) Assert.Equal(x[b * 32 + e], xi[GroupDot.ActivationOffset(b, e, blocks)]);
            Assert.Equal(8 * x.Skip(b * 32).Take(32).Sum(v => (int)v), c8[b]);
        }
        Assert.Equal(w.OrderBy(v => v), wi.OrderBy(v => v));
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
            acts.EnsureQuantized();
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

    [Fact]
    public void FourRowKernelsAreBitIdenticalToSingleRowCalls()
    {
        var rng = new Random(11);
        int blocks = 27;
        var acts = Enumerable.Range(0, 4).Select(_ => QuantizedActivations(blocks, rng)).ToArray();
        var w8 = new sbyte[blocks * 32];
        for (int i = 0; i < w8.Length; i++) w8[i] = (sbyte)rng.Next(-127, 128);
        var w4 = new byte[blocks * 16];
        rng.NextBytes(w4);
        var inter = acts.Select(a => Interleave(w4, a.Q, blocks)).ToArray();
        var ws = Enumerable.Range(0, blocks).Select(_ => (float)rng.NextDouble()).ToArray();
        var handles = new List<System.Runtime.InteropServices.GCHandle>();
        T* Pin<T>(T[] a) where T : unmanaged { var h = System.Runtime.InteropServices.GCHandle.Alloc(a, System.Runtime.InteropServices.GCHandleType.Pinned); handles.Add(h); return (T*)h.AddrOfPinnedObject(); }
        try
        {
            sbyte** xq = stackalloc sbyte*[4];
            float** xs = stackalloc float*[4];
            sbyte** xi = stackalloc sbyte*[4];
            int** xc = stackalloc int*[4];
            for (int t = 0; t < 4; t++) { xq[t] = Pin(acts[t].Q); xs[t] = Pin(acts[t].S); xi[t] = Pin(inter[t].X); xc[t] = Pin(inter[t].C8); }
            byte* wi = Pin(inter[0].W);
            float* r8 = stackalloc float[4];
            float* r4 = stackalloc float[4];
            QuantDot.DotQ8x4(Pin(w8), Pin(ws), xq, xs, blocks, r8);
            GroupDot.DotQ4x4(wi, Pin(ws), xi, xs, xc, blocks, r4);
            // Four weight rows with one activation row.
            var w4rows = new byte[4 * blocks * 16];
            rng.NextBytes(w4rows);
            var ws4 = Enumerable.Range(0, 4 * blocks).Select(_ => (float)rng.NextDouble()).ToArray();
            byte* wr = Pin(new byte[w4rows.Length]);
            for (int r = 0; r < 4; r++) GroupDot.InterleaveQ4(Pin(w4rows) + r * blocks * 16, blocks, wr + r * blocks * 16);
            float* rr = stackalloc float[4];
            GroupDot.DotQ4Rows4(wr, Pin(ws4), xi[1], xs[1], xc[1], blocks, rr);
            for (int r = 0; r < 4; r++) Assert.Equal(GroupDot.DotQ4(wr + r * blocks * 16, Pin(ws4) + r * blocks, xi[1], xs[1], xc[1], blocks), rr[r]);
            for (int t = 0; t < 4; t++)
            {
                Assert.Equal(QuantDot.DotQ8(Pin(w8), Pin(ws), xq[t], xs[t], blocks), r8[t]);
                Assert.Equal(GroupDot.DotQ4(wi, Pin(ws), xi[t], xs[t], xc[t], blocks), r4[t]);
                Assert.Equal(GroupDot.DotQ4Scalar(wi, Pin(ws), xi[t], xs[t], xc[t], blocks), r4[t], 1e-4f * MathF.Abs(r4[t]) + 1e-4f);
                Assert.Equal(QuantDot.DotQ8Scalar(Pin(w8), Pin(ws), xq[t], xs[t], blocks), r8[t], 1e-3f * MathF.Abs(r8[t]) + 1e-4f);
            }
        }
        finally { foreach (var h in handles) h.Free(); }
    }
}
