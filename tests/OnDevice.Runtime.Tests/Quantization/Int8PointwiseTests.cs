using OnDevice.Runtime.Kernels.Quantization;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Tests.Quantization;

/// <summary>The NCHW pointwise int8 GEMM (AVX-VNNI) and the byte lookup (VBMI) equal their scalar twins and the definition.</summary>
[Trait("Category", "Kernels")]
public class Int8PointwiseTests
{
    public static TheoryData<int, int, int> Shapes() => new()
    {
        { 6, 16, 16 },     // one tile, one panel
        { 13, 7, 37 },     // K not a multiple of 4, rows and positions with tails
        { 24, 70, 200 },   // several blocks
        { 5, 130, 64 },    // fewer rows than a tile
        { 1, 3, 5 },       // tiny
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public unsafe void Pointwise_EqualsTheScalarTwinAndTheDefinition(int m, int k, int positions)
    {
        var rng = new Random(m * 1000 + k * 10 + positions);
        foreach (var (signedX, signedW, perRowZp, lookup) in new[] { (false, true, false, false), (true, true, true, true), (false, false, true, true), (true, false, false, false) })
        {
            var x = new byte[k * positions];
            rng.NextBytes(x);
            var w = new byte[m * k];
            rng.NextBytes(w);
            int zx = signedX ? rng.Next(-20, 20) : rng.Next(100, 150);
            var zw = perRowZp ? Enumerable.Range(0, m).Select(_ => signedW ? rng.Next(-5, 5) : rng.Next(120, 136)).ToArray() : [0];
            var bias = Enumerable.Range(0, m).Select(_ => rng.Next(-20000, 20000)).ToArray();
            var mul = Enumerable.Range(0, m).Select(_ => 0.0005f + (float)rng.NextDouble() * 0.002f).ToArray();
            int zy = signedX ? -5 : 110, min = signedX ? -128 : 0, max = signedX ? 127 : 255;
            var table = new byte[(lookup ? m : 0) * 256];
            rng.NextBytes(table);
            var weights = new Int8PointwiseWeights(w, signedW, m, k, zw);
            int panels = (positions + 15) / 16;
            var results = new List<byte[]>();
            foreach (var path in new[] { Int8GemmPath.Scalar, Int8GemmPath.AvxVnni })
            {
                if (!Int8Pointwise.IsSupported(path)) continue;
                var y = new byte[m * positions];
                var scratch = new byte[Int8Pointwise.ScratchBytes(weights.KPadded)];
                fixed (byte* px = x) fixed (byte* py = y) fixed (byte* ps = scratch) fixed (int* pb = bias) fixed (float* pm = mul) fixed (byte* pt = table)
                {
                    var q = new Int8Pointwise.Requant { Bias = pb, Multipliers = pm, Zy = zy, Min = min, Max = max, Lookup = pt, LookupRows = lookup ? m : 0 };
                    // Two calls over halves of the panels: ranges must compose.
                    Int8Pointwise.Run(path, weights, px, positions, signedX, zx, q, py, 0, panels / 2, ps);
                    Int8Pointwise.Run(path, weights, px, positions, signedX, zx, q, py, panels / 2, panels, ps);
                }
                results.Add(y);
            }
            for (int i = 0; i < m; i++)
                for (int p = 0; p < positions; p++)
                {
                    long acc = 0;
                    int z = zw[perRowZp ? i : 0];
                    for (int kk = 0; kk < k; kk++)
                    {
                        int xv = signedX ? (sbyte)x[kk * positions + p] : x[kk * positions + p];
                        int wv = signedW ? (sbyte)w[i * k + kk] : w[i * k + kk];
                        acc += (long)(xv - zx) * (wv - z);
                    }
                    byte expected = (byte)Requantize.OneFloat((int)acc + bias[i], mul[i], zy, min, max);
                    if (lookup) expected = table[i * 256 + expected];
                    foreach (var y in results)
                        Assert.True(expected == y[i * positions + p], $"m={m} k={k} P={positions} sx={signedX} sw={signedW} zp={perRowZp} lut={lookup}: [{i},{p}] {y[i * positions + p]} vs {expected}");
                }
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public unsafe void PointwiseFloatOutput_EqualsTheScalarTwinAndTheDefinition(int m, int k, int positions)
    {
        var rng = new Random(m * 7 + k * 3 + positions);
        foreach (var (signedX, signedW) in new[] { (false, true), (true, false) })
        {
            var x = new byte[k * positions];
            rng.NextBytes(x);
            var w = new byte[m * k];
            rng.NextBytes(w);
            int zx = signedX ? rng.Next(-20, 20) : rng.Next(100, 150);
            var zw = Enumerable.Range(0, m).Select(_ => signedW ? rng.Next(-5, 5) : rng.Next(120, 136)).ToArray();
            var scales = Enumerable.Range(0, m).Select(_ => (float)(rng.NextDouble() - 0.3) * 0.001f).ToArray(); // negative too (a folded BatchNormalization)
            var bias = Enumerable.Range(0, m).Select(_ => (float)rng.NextDouble() * 4 - 2).ToArray();
            var zeros = new int[m];
            var weights = new Int8PointwiseWeights(w, signedW, m, k, zw);
            int panels = (positions + 15) / 16;
            var results = new List<float[]>();
            foreach (var path in new[] { Int8GemmPath.Scalar, Int8GemmPath.AvxVnni })
            {
                if (!Int8Pointwise.IsSupported(path)) continue;
                var y = new float[m * positions];
                var scratch = new byte[Int8Pointwise.ScratchBytes(weights.KPadded)];
                fixed (byte* px = x) fixed (float* py = y) fixed (byte* ps = scratch) fixed (int* pz = zeros) fixed (float* psc = scales) fixed (float* pb = bias)
                {
                    var q = new Int8Pointwise.Requant { Bias = pz, Multipliers = psc, OutScales = psc, OutBias = pb };
                    Int8Pointwise.Run(path, weights, px, positions, signedX, zx, q, (byte*)py, 0, panels / 2, ps);
                    Int8Pointwise.Run(path, weights, px, positions, signedX, zx, q, (byte*)py, panels / 2, panels, ps);
                }
                results.Add(y);
            }
            for (int i = 0; i < m; i++)
                for (int p = 0; p < positions; p++)
                {
                    long acc = 0;
                    for (int kk = 0; kk < k; kk++)
                    {
                        int xv = signedX ? (sbyte)x[kk * positions + p] : x[kk * positions + p];
                        int wv = signedW ? (sbyte)w[i * k + kk] : w[i * k + kk];
                        acc += (long)(xv - zx) * (wv - zw[i]);
                    }
                    float expected = MathF.FusedMultiplyAdd(acc, scales[i], bias[i]);
                    foreach (var y in results)
                        Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(y[i * positions + p]),
                            $"m={m} k={k} P={positions} sx={signedX} sw={signedW}: [{i},{p}] {y[i * positions + p]} vs {expected}");
                }
        }
    }

    [Fact]
    public unsafe void PackPanel_VectorEqualsScalar()
    {
        var rng = new Random(5);
        foreach (int k in new[] { 4, 5, 6, 7, 16, 33 })
            foreach (bool signedX in new[] { false, true })
            {
                int stride = 40, kp = (k + 3) & ~3;
                var x = new byte[k * stride];
                rng.NextBytes(x);
                var a = new sbyte[kp * 16];
                var b = new sbyte[kp * 16];
                var sa = new int[16];
                var sb = new int[16];
                fixed (byte* px = x) fixed (sbyte* pa = a) fixed (sbyte* pb = b) fixed (int* psa = sa) fixed (int* psb = sb)
                {
                    Int8Pointwise.PackPanel(px + 3, stride, k, kp, 16, signedX, pa, psa, vector: true);
                    Int8Pointwise.PackPanel(px + 3, stride, k, kp, 16, signedX, pb, psb, vector: false);
                }
                Assert.Equal(b, a);
                Assert.Equal(sb, sa);
            }
    }

    [Fact]
    public unsafe void ByteLookup_EqualsTheScalarTwin_InPlaceAndNot()
    {
        var rng = new Random(9);
        var table = new byte[256];
        rng.NextBytes(table);
        foreach (int n in new[] { 0, 1, 63, 64, 65, 127, 128, 200, 1000 })
        {
            var x = new byte[n];
            rng.NextBytes(x);
            var expected = new byte[n];
            ByteLookup.ApplyScalar(x, expected, table);
            var y = new byte[n];
            var inPlace = (byte[])x.Clone();
            fixed (byte* px = x) fixed (byte* py = y) fixed (byte* pi = inPlace) fixed (byte* pt = table)
            {
                ByteLookup.Apply(px, py, n, pt);
                ByteLookup.Apply(pi, pi, n, pt);
            }
            Assert.Equal(expected, y);
            Assert.Equal(expected, inPlace);
        }
    }
}
