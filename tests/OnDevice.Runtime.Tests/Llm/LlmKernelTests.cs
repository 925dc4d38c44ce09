using OnDevice.Runtime.Llm;
using OnDevice.Runtime.Llm.Kernels;

namespace OnDevice.Runtime.Tests.Llm;

[Trait("Category", "Kernels")]
public unsafe class LlmKernelTests
{
    private static (sbyte[] Q, float[] S, int[] Sum) QuantizedActivations(int blocks, Random rng)
    {
        var x = new float[blocks * 32];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 4 - 2);
        var q = new sbyte[x.Length];
        var s = new float[blocks];
        var u = new int[blocks];
        fixed (float* px = x) fixed (sbyte* pq = q) fixed (float* ps = s) fixed (int* pu = u) QuantDot.QuantizeActivations(px, x.Length, pq, ps, pu);
        return (q, s, u);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(7)]
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
            Assert.Equal(reference, QuantDot.DotQ8(pw, pws, px, pxs, blocks), 1e-3f * MathF.Abs(reference) + 1e-5f);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(64)]
    public void Q4PathsAgreeWithScalarTwin(int blocks)
    {
        var rng = new Random(100 + blocks);
        var (xq, xs, xsum) = QuantizedActivations(blocks, rng);
        var w = new byte[blocks * 16];
        rng.NextBytes(w);
        var ws = Enumerable.Range(0, blocks).Select(_ => (float)rng.NextDouble() * 0.01f).ToArray();
        fixed (byte* pw = w) fixed (sbyte* px = xq) fixed (float* pws = ws, pxs = xs) fixed (int* pu = xsum)
        {
            float reference = QuantDot.DotQ4Scalar(pw, pws, px, pxs, pu, blocks);
            Assert.NotEqual(0f, reference);
            if (System.Runtime.Intrinsics.X86.Avx2.IsSupported) Assert.Equal(reference, QuantDot.DotQ4Avx2(pw, pws, px, pxs, pu, blocks), 1e-3f * MathF.Abs(reference) + 1e-5f);
            if (System.Runtime.Intrinsics.X86.AvxVnni.IsSupported) Assert.Equal(reference, QuantDot.DotQ4Vnni(pw, pws, px, pxs, pu, blocks), 1e-3f * MathF.Abs(reference) + 1e-5f);
        }
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
}
