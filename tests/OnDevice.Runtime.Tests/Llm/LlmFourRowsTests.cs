using System.Runtime.Intrinsics.X86;
using OnDevice.Runtime.Llm;
using OnDevice.Runtime.Llm.Kernels;

namespace OnDevice.Runtime.Tests.Llm;

/// <summary>The four-row weight layout (groups of four rows interleaved, one sequential stream per decode product).</summary>
[Trait("Category", "Kernels")]
public unsafe class LlmFourRowsTests
{
    // Four rows of int4 (Q4_0 order) and int8 blocks, their scales, one activation row, all random.
    private sealed class Case
    {
        public readonly int Blocks;
        public readonly byte[] W4;
        public readonly sbyte[] W8;
        public readonly float[] Ws;
        public readonly sbyte[] Xq, Xi;
        public readonly float[] Xs;
        public readonly int[] C8;

        public Case(int blocks, int seed)
        {
            Blocks = blocks;
            var rng = new Random(seed);
            W4 = new byte[4 * blocks * 16];
            rng.NextBytes(W4);
            W8 = new sbyte[4 * blocks * 32];
            for (int i = 0; i < W8.Length; i++) W8[i] = (sbyte)rng.Next(-128, 128);
            W8[0] = 127; W8[1] = -128;
            Ws = Enumerable.Range(0, 4 * blocks).Select(_ => rng.NextSingle() * 0.01f).ToArray();
            var x = Enumerable.Range(0, blocks * 32).Select(_ => rng.NextSingle() * 4 - 2).ToArray();
            Xq = new sbyte[x.Length];
            Xs = new float[blocks];
            Xi = new sbyte[x.Length];
            C8 = new int[blocks];
            fixed (float* px = x, ps = Xs) fixed (sbyte* pq = Xq, pi = Xi) fixed (int* pc = C8)
            {
                QuantDot.QuantizeActivations(px, x.Length, pq, ps);
                GroupDot.InterleaveActivations(pq, blocks, pi, pc);
            }
        }

        // The four-row layout built from the documented formula: group g of row i at (4g + i)·groupBytes, scales at (4g + i)·8.
        public (byte[] Q, float[] S) FourRows(bool int8)
        {
            int rowBytes = Blocks * (int8 ? 32 : 16), groupBytes = int8 ? 256 : 128;
            var q = new byte[4 * rowBytes];
            var s = new float[4 * Blocks];
            var row = new byte[rowBytes];
            fixed (byte* pw4 = W4, prow = row) fixed (sbyte* pw8 = W8)
                for (int i = 0; i < 4; i++)
                {
                    if (int8) GroupDot.InterleaveQ8(pw8 + i * rowBytes, Blocks, prow);
                    else GroupDot.InterleaveQ4(pw4 + i * rowBytes, Blocks, prow);
                    for (int g = 0; g < Blocks / 8; g++)
                    {
                        Array.Copy(row, g * groupBytes, q, (4 * g + i) * groupBytes, groupBytes);
                        Array.Copy(Ws, i * Blocks + g * 8, s, (4 * g + i) * 8, 8);
                    }
                }
            return (q, s);
        }
    }

    [Theory]
    [InlineData(8)]
    [InlineData(64)]
    [InlineData(176)]
    public void Int4FourRowKernelIsBitIdenticalToStridedSingleRowsAndTracksTheScalarDefinition(int blocks)
    {
        var c = new Case(blocks, 500 + blocks);
        var (q, s) = c.FourRows(int8: false);
        var r = new float[4];
        fixed (byte* pq = q, pw = c.W4) fixed (float* ps = s, pws = c.Ws, pxs = c.Xs, pr = r) fixed (sbyte* pxi = c.Xi, pxq = c.Xq) fixed (int* pc = c.C8)
        {
            GroupDot.DotQ4Rows4(pq, ps, pxi, pxs, pc, blocks, pr);
            for (int i = 0; i < 4; i++)
            {
                float reference = QuantDot.DotQ4Scalar(pw + i * blocks * 16, pws + i * blocks, pxq, pxs, blocks);
                Assert.NotEqual(0f, reference);
                // The strided scalar twin reads the four-row layout and equals the plain-layout definition exactly.
                Assert.Equal(reference, GroupDot.DotQ4Scalar(pq + 128 * i, ps + 8 * i, pxi, pxs, pc, blocks, 512, 32));
                float single = GroupDot.DotQ4(pq + 128 * i, ps + 8 * i, pxi, pxs, pc, blocks, 512, 32);
                Assert.Equal(single, r[i]);
                Assert.Equal(reference, single, 1e-4f * MathF.Abs(reference) + 1e-5f);
                if (Avx2.IsSupported) Assert.Equal(reference, GroupDot.DotQ4Avx2(pq + 128 * i, ps + 8 * i, pxi, pxs, pc, blocks, 512, 32), 1e-4f * MathF.Abs(reference) + 1e-5f);
            }
        }
    }

    [Theory]
    [InlineData(8)]
    [InlineData(64)]
    [InlineData(176)]
    public void Int8FourRowKernelIsBitIdenticalToStridedSingleRowsAndTracksTheScalarDefinition(int blocks)
    {
        var c = new Case(blocks, 700 + blocks);
        var (q, s) = c.FourRows(int8: true);
        var r = new float[4];
        fixed (byte* pq = q) fixed (sbyte* pw = c.W8, pxi = c.Xi, pxq = c.Xq) fixed (float* ps = s, pws = c.Ws, pxs = c.Xs, pr = r) fixed (int* pc = c.C8)
        {
            GroupDot.DotQ8Rows4(pq, ps, pxi, pxs, pc, blocks, pr);
            for (int i = 0; i < 4; i++)
            {
                float reference = QuantDot.DotQ8Scalar(pw + i * blocks * 32, pws + i * blocks, pxq, pxs, blocks);
                Assert.NotEqual(0f, reference);
                Assert.Equal(reference, GroupDot.DotQ8Scalar(pq + 256 * i, ps + 8 * i, pxi, pxs, blocks, 1024, 32));
                float single = GroupDot.DotQ8(pq + 256 * i, ps + 8 * i, pxi, pxs, pc, blocks, 1024, 32);
                Assert.Equal(single, r[i]);
                Assert.Equal(reference, single, 1e-4f * MathF.Abs(reference) + 1e-5f);
                if (Avx2.IsSupported) Assert.Equal(reference, GroupDot.DotQ8Avx2(pq + 256 * i, ps + 8 * i, pxi, pxs, pc, blocks, 1024, 32), 1e-4f * MathF.Abs(reference) + 1e-5f);
            }
        }
    }

    [Fact]
    public void FourRowKernelsRejectPartialGroups()
    {
        var r = new float[4];
        Assert.Throws<ArgumentException>(() => { fixed (float* pr = r) GroupDot.DotQ4Rows4(null, null, null, null, null, 9, pr); });
        Assert.Throws<ArgumentException>(() => { fixed (float* pr = r) GroupDot.DotQ8Rows4(null, null, null, null, null, 12, pr); });
    }

    [Theory]
    [InlineData(LlmWeights.Int8)]
    [InlineData(LlmWeights.Int4)]
    public void EveryLayoutGivesBitIdenticalProductsForEveryBatchAndRowRange(LlmWeights format)
    {
        // 40 rows (ten fours), 512 columns (two whole groups): the four-row layout applies.
        int rows = 40, cols = 512, n = 6;
        var rng = new Random(21);
        var w = Enumerable.Range(0, rows * cols).Select(_ => rng.NextSingle() * 2 - 1).ToArray();
        var x = Enumerable.Range(0, n * cols).Select(_ => rng.NextSingle() * 2 - 1).ToArray();
        WeightMatrix Make(QuantLayout layout) => format == LlmWeights.Int8 ? Q8Matrix.Quantize(w, rows, cols, layout) : Q4Matrix.Quantize(w, rows, cols, layout);
        using var plain = Make(QuantLayout.Rows);
        using var four = Make(QuantLayout.FourRows);
        using var inline = Make(QuantLayout.InlineScales);
        Assert.Equal(QuantLayout.FourRows, format == LlmWeights.Int8 ? ((Q8Matrix)four).Layout : ((Q4Matrix)four).Layout);
        Assert.Equal(plain.Bytes, four.Bytes);
        var acts = new LlmActivations();
        var expect = new float[n * rows];
        var got = new float[n * rows];
        fixed (float* px = x, pe = expect, pg = got)
        {
            acts.Set(px, n, cols, cols);
            plain.Multiply(acts, pe, rows, 0, rows);
            foreach (var m in new[] { four, inline })
            {
                // All tokens at once (four-token kernels + one left over), then one token at a time over ragged row ranges.
                Array.Clear(got);
                m.Multiply(acts, pg, rows, 0, rows);
                Assert.Equal(expect, got);
                for (int t = 0; t < n; t++)
                {
                    acts.Set(px + t * cols, 1, cols, cols);
                    Array.Clear(got);
                    m.Multiply(acts, pg, rows, 0, 3);
                    m.Multiply(acts, pg, rows, 3, 18);
                    m.Multiply(acts, pg, rows, 18, rows);
                    Assert.Equal(expect.AsSpan(t * rows, rows).ToArray(), got.AsSpan(0, rows).ToArray());
                }
                acts.Set(px, n, cols, cols);
                var a = new float[cols];
                var b = new float[cols];
                for (int r = 0; r < rows; r += 7)
                {
                    plain.ReadRow(r, a);
                    m.ReadRow(r, b);
                    Assert.Equal(a, b);
                }
            }
        }
    }

    [Fact]
    public void ShapesThatDoNotFitFallBackToRows()
    {
        var w = new float[6 * 512];
        using var rowsNotFour = Q4Matrix.Quantize(w, 6, 512, QuantLayout.FourRows);
        Assert.Equal(QuantLayout.Rows, rowsNotFour.Layout);
        using var partialGroup = Q8Matrix.Quantize(new float[8 * 300], 8, 300, null);
        Assert.Equal(QuantLayout.Rows, partialGroup.Layout);
        using var fits = Q8Matrix.Quantize(new float[8 * 256], 8, 256, null);
        Assert.Equal(QuantLayout.FourRows, fits.Layout);
    }
}
