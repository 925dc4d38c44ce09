using OnDevice.Runtime.Reference;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Tests.Quantization;

/// <summary>Every int8 GEMM path this machine supports equals the scalar definition exactly (int32), on random sizes with
/// tails in M, N and K, both signednesses of each operand, per-row/per-column zero points and extreme values.</summary>
[Trait("Category", "Kernels")]
public class Int8GemmTests
{
    public static TheoryData<Int8GemmPath> Paths()
    {
        var d = new TheoryData<Int8GemmPath>();
        foreach (var p in Enum.GetValues<Int8GemmPath>()) d.Add(p);
        return d;
    }

    internal static unsafe int[] Run(Int8GemmPath path, byte[] a, bool signedA, int[] za, byte[] b, bool signedB, int[] zb, int m, int k, int n, int threads = 1)
    {
        var packed = new Int8PackedB(b, signedB, k, n, n, 1, zb);
        int kp = packed.KPadded;
        var prepared = new byte[Math.Max(1, m * kp)];
        var rowSums = new int[Math.Max(1, m)];
        var zaEff = new int[Math.Max(1, m)];
        for (int i = 0; i < m; i++) zaEff[i] = (za.Length == 0 ? 0 : za[za.Length == 1 ? 0 : i]) + (signedA ? 128 : 0);
        var c = new int[Math.Max(1, m * n)];
        fixed (byte* pa = a) fixed (byte* pp = prepared) fixed (int* rs = rowSums) fixed (int* pz = zaEff) fixed (int* pc = c)
        {
            Int8Gemm.PrepareA(pa, m, k, k, signedA, pp, kp, rs);
            Int8Gemm.Multiply(path, pp, m, rs, pz, packed, pc, n, threads);
        }
        return c[..(m * n)];
    }

    private static int[] Values(byte[] raw, bool signed) => raw.Select(v => signed ? (int)(sbyte)v : v).ToArray();

    [Theory]
    [MemberData(nameof(Paths))]
    public void EveryPath_EqualsTheScalarDefinition(Int8GemmPath path)
    {
        if (!Int8Gemm.IsSupported(path)) return; // the ladder reruns of ./test.sh cover the lower rungs
        var rng = new Random(7 + (int)path);
        for (int trial = 0; trial < 60; trial++)
        {
            int m = rng.Next(1, 20), k = rng.Next(1, 90), n = rng.Next(1, 50);
            bool sa = rng.Next(2) == 0, sb = rng.Next(2) == 0;
            var a = new byte[m * k];
            var b = new byte[k * n];
            rng.NextBytes(a);
            rng.NextBytes(b);
            int[] za = rng.Next(3) switch
            {
                0 => [],
                1 => [sa ? rng.Next(-128, 128) : rng.Next(256)],
                _ => Enumerable.Range(0, m).Select(_ => sa ? rng.Next(-128, 128) : rng.Next(256)).ToArray(),
            };
            int[] zb = rng.Next(3) switch
            {
                0 => [],
                1 => [sb ? rng.Next(-128, 128) : rng.Next(256)],
                _ => Enumerable.Range(0, n).Select(_ => sb ? rng.Next(-128, 128) : rng.Next(256)).ToArray(),
            };
            var expected = QuantizationReference.IntegerMatMul(Values(a, sa), Values(b, sb), m, k, n, za, zb);
            var actual = Run(path, a, sa, za, b, sb, zb, m, k, n, threads: 1 + trial % 2);
            Assert.True(expected.SequenceEqual(actual), $"{path} m={m} k={k} n={n} signedA={sa} signedB={sb} za={za.Length} zb={zb.Length}");
        }
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void ExtremeValues_DoNotSaturate(Int8GemmPath path)
    {
        if (!Int8Gemm.IsSupported(path)) return;
        // 255 · (−128) summed over long K is where pmaddubsw-style int16 pairs would saturate.
        int m = 7, k = 301, n = 19;
        var a = Enumerable.Repeat((byte)255, m * k).ToArray();
        var b = Enumerable.Repeat(unchecked((byte)(sbyte)-128), k * n).ToArray();
        var expected = QuantizationReference.IntegerMatMul(Values(a, false), Values(b, true), m, k, n, [], []);
        Assert.Equal(expected, Run(path, a, false, [], b, true, [], m, k, n));
        Assert.Equal(255 * -128 * k, expected[0]);
    }

    [Fact]
    public void LargeThreadedProduct_MatchesScalarPath()
    {
        var rng = new Random(3);
        int m = 70, k = 257, n = 129;
        var a = new byte[m * k];
        var b = new byte[k * n];
        rng.NextBytes(a);
        rng.NextBytes(b);
        var scalar = Run(Int8GemmPath.Scalar, a, false, [3], b, true, [], m, k, n);
        Assert.Equal(scalar, Run(Int8Gemm.Best, a, false, [3], b, true, [], m, k, n, threads: 2));
    }
}
