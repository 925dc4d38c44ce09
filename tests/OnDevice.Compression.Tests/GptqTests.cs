using OnDevice.Compression.Gptq;
using OnDevice.Compression.Quantization;

namespace OnDevice.Compression.Tests;

public class GptqLinalgTests
{
    internal static double[] Spd(int n, int seed)
    {
        var rng = new Random(seed);
        var a = new double[n * n];
        for (int i = 0; i < a.Length; i++) a[i] = rng.NextDouble() * 2 - 1;
        var h = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double s = i == j ? 0.5 : 0;
                for (int k = 0; k < n; k++) s += a[k * n + i] * a[k * n + j];
                h[i * n + j] = s;
            }
        return h;
    }

    private static double[] InverseGaussJordan(double[] m, int n)
    {
        var a = (double[])m.Clone();
        var inv = new double[n * n];
        for (int i = 0; i < n; i++) inv[i * n + i] = 1;
        for (int c = 0; c < n; c++)
        {
            int piv = Enumerable.Range(c, n - c).MaxBy(r => Math.Abs(a[r * n + c]));
            for (int j = 0; j < n; j++)
            {
                (a[c * n + j], a[piv * n + j]) = (a[piv * n + j], a[c * n + j]);
                (inv[c * n + j], inv[piv * n + j]) = (inv[piv * n + j], inv[c * n + j]);
            }
            double d = a[c * n + c];
            for (int j = 0; j < n; j++) { a[c * n + j] /= d; inv[c * n + j] /= d; }
            for (int r = 0; r < n; r++)
            {
                if (r == c) continue;
                double f = a[r * n + c];
                for (int j = 0; j < n; j++) { a[r * n + j] -= f * a[c * n + j]; inv[r * n + j] -= f * inv[c * n + j]; }
            }
        }
        return inv;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(40)]
    [InlineData(300)]
    public void UpperInverseFactor_IsTheUpperCholeskyFactorOfTheInverse(int n)
    {
        var h = Spd(n, n);
        var u = Linalg.UpperInverseFactor(h, n, threads: 2)!;
        // Textbook route: invert, then Cholesky H⁻¹ = L·Lᵀ and U = Lᵀ.
        var l = InverseGaussJordan(h, n);
        Assert.True(Linalg.CholeskyLower(l, n));
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double expected = j >= i ? l[j * n + i] : 0;
                Assert.True(Math.Abs(u[i * n + j] - expected) <= 1e-4 * (1 + Math.Abs(expected)), $"U[{i},{j}] = {u[i * n + j]}, expected {expected}");
            }
        Assert.Null(Linalg.UpperInverseFactor(new double[] { 1, 2, 2, 1 }, 2)); // indefinite
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(31)]
    [InlineData(100)]
    [InlineData(1027)]
    public void Dot_AgreesWithItsScalarTwin(int n)
    {
        var rng = new Random(n);
        var a = Enumerable.Range(0, n).Select(_ => rng.NextDouble() - 0.5).ToArray();
        var b = Enumerable.Range(0, n + 5).Select(_ => rng.NextDouble() - 0.5).ToArray();
        Assert.Equal(Linalg.DotReference(a, b), Linalg.Dot(a, b), 10);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(17)]
    [InlineData(70)]
    public void BlockedCholesky_AgreesWithItsUnblockedTwin(int n)
    {
        var a = Spd(n, 100 + n);
        var b = (double[])a.Clone();
        Assert.True(Linalg.CholeskyLower(a, n));
        Assert.True(Linalg.CholeskyLowerReference(b, n));
        for (int i = 0; i < a.Length; i++) Assert.Equal(b[i], a[i], 9);
    }

    [Theory]
    [InlineData(5, 13)]
    [InlineData(37, 300)]
    public void XtX_MatchesTheNaiveSum(int k, int rows)
    {
        var rng = new Random(k);
        var x = Enumerable.Range(0, k * rows).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var h = LayerHessian.FromInputs("w", x, rows, k);
        var xtx = h.XtX(0);
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++)
            {
                double s = 0;
                for (int t = 0; t < rows; t++) s += (double)x[t * k + i] * x[t * k + j];
                Assert.True(Math.Abs(xtx[i * k + j] - s) < 1e-3, $"[{i},{j}] {xtx[i * k + j]} vs {s}");
            }
        Assert.Equal(rows, h.Samples);
        Assert.Equal(2.0 / rows * xtx[0], h.Hessian(0)[0], 12);
    }
}

public class GptqRounderTests
{
    internal static readonly QuantScheme Int4Block32 = new(4, true, true, Granularity.Blocked, Axis: 1, BlockSize: 32);

    internal static float[] Random(int n, int seed, double scale = 1)
    {
        var g = CalibrationHistogramTests.Gaussian(n, seed);
        for (int i = 0; i < n; i++) g[i] *= (float)scale;
        return g;
    }

    /// <summary>Correlated inputs X[rows, k] = Z·M with a random mixing matrix and per-column scales.</summary>
    internal static float[] CorrelatedInputs(int rows, int k, int seed)
    {
        var z = Random(rows * k, seed);
        var m = Random(k * k, seed + 1, 1.0 / Math.Sqrt(k));
        var scale = Random(k, seed + 2).Select(v => 0.2f + Math.Abs(v)).ToArray();
        var x = new float[rows * k];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < k; j++)
            {
                double s = z[r * k + j];
                for (int i = 0; i < k; i++) s += z[r * k + i] * m[i * k + j];
                x[r * k + j] = (float)(s * scale[j]);
            }
        return x;
    }

    /// <summary>‖X·(W − Ŵ)ᵀ‖ / ‖X·Wᵀ‖ computed directly.</summary>
    internal static double OutputError(float[] x, int rows, float[] w, float[] wq, int n, int k)
    {
        double err = 0, norm = 0;
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < n; o++)
            {
                double y = 0, yq = 0;
                for (int i = 0; i < k; i++)
                {
                    y += (double)x[r * k + i] * w[o * k + i];
                    yq += (double)x[r * k + i] * wq[o * k + i];
                }
                err += (y - yq) * (y - yq);
                norm += y * y;
            }
        return Math.Sqrt(err / norm);
    }

    public static TheoryData<int, bool, bool, string> Schemes() => new()
    {
        { 4, true, true, "block:32" },
        { 4, false, false, "block:16" },
        { 8, true, true, "channel" },
        { 8, false, false, "tensor" },
        { 4, true, false, "channel" },
    };

    internal static QuantScheme Scheme(int bits, bool signed, bool symmetric, string granularity) => granularity switch
    {
        "tensor" => new(bits, signed, symmetric, Granularity.PerTensor),
        "channel" => new(bits, signed, symmetric, Granularity.PerChannel, Axis: 0),
        _ => new(bits, signed, symmetric, Granularity.Blocked, Axis: 1, BlockSize: int.Parse(granularity[6..])),
    };

    [Theory]
    [MemberData(nameof(Schemes))]
    public void IdentityHessian_GivesExactlyRoundToNearest(int bits, bool signed, bool symmetric, string granularity)
    {
        var scheme = Scheme(bits, signed, symmetric, granularity);
        int n = 12, k = 100;
        var w = new WeightMatrix("w", Random(n * k, 3), n, k);
        var identity = new float[k * k];
        for (int i = 0; i < k; i++) identity[i * k + i] = 1;
        var h = LayerHessian.FromInputs("w", identity, k, k);
        var rtn = RtnReference.Instance.Quantize(w, scheme);
        foreach (bool actOrder in new[] { false, true })
        {
            var gptq = new GptqRounder(new Dictionary<string, LayerHessian> { ["w"] = h }, new GptqOptions { ActOrder = actOrder, NeverWorseThanRtn = false }).Quantize(w, scheme);
            Assert.Equal(rtn.Values, gptq.Values);
            Assert.Equal(rtn.Scales, gptq.Scales);
            Assert.Equal(rtn.ZeroPoints, gptq.ZeroPoints);
            Assert.Equal(new long[] { n, k }, gptq.Dims);
        }
    }

    [Theory]
    [MemberData(nameof(Schemes))]
    public void CorrelatedInputs_GptqOutputErrorIsBelowRtn(int bits, bool signed, bool symmetric, string granularity)
    {
        var scheme = Scheme(bits, signed, symmetric, granularity);
        int n = 24, k = 160, rows = 600;
        var x = CorrelatedInputs(rows, k, 11);
        var w = new WeightMatrix("w", Random(n * k, 12), n, k);
        var h = LayerHessian.FromInputs("w", x, rows, k);
        double rtn = OutputError(x, rows, w.Data, RtnReference.Instance.Quantize(w, scheme).Dequantize(), n, k);
        foreach (bool actOrder in new[] { false, true })
        {
            var pure = new GptqRounder(new Dictionary<string, LayerHessian> { ["w"] = h }, new GptqOptions { ActOrder = actOrder, NeverWorseThanRtn = false, BlockSize = 64 });
            double gptq = OutputError(x, rows, w.Data, pure.Quantize(w, scheme).Dequantize(), n, k);
            Assert.True(gptq < 0.9 * rtn, $"{scheme} actOrder={actOrder}: GPTQ {gptq:E3} vs RTN {rtn:E3}");
            // The rounder's own figures are the same quantities, computed from XᵀX.
            Assert.Equal(gptq, pure.Stats["w"].GptqError, 3);
            Assert.Equal(rtn, pure.Stats["w"].RtnError, 3);
        }
    }

    [Fact]
    public void ActOrder_DequantizesInTheOriginalColumnOrder()
    {
        int n = 8, k = 64, rows = 400;
        // Column scales that vary a lot make act-order's permutation far from the identity.
        var x = CorrelatedInputs(rows, k, 21);
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < k; j++) x[r * k + j] *= 1 + (j * 37 % k) / 4f;
        var w = new WeightMatrix("w", Random(n * k, 22), n, k);
        var h = LayerHessian.FromInputs("w", x, rows, k);
        var scheme = Scheme(4, true, true, "block:16");
        var q = new GptqRounder(new Dictionary<string, LayerHessian> { ["w"] = h }, new GptqOptions { ActOrder = true, NeverWorseThanRtn = false }).Quantize(w, scheme);
        var deq = q.Dequantize();
        var rtn = RtnReference.Instance.Quantize(w, scheme);
        // Blocks keep RTN's (static) scales, and weights stay near their own original values on average.
        Assert.Equal(rtn.Scales, q.Scales);
        double meanSteps = Enumerable.Range(0, deq.Length).Average(i => Math.Abs(deq[i] - w.Data[i]) / q.Scales[q.GroupOf(i)]);
        Assert.InRange(meanSteps, 0, 1.0);
        Assert.True(OutputError(x, rows, w.Data, deq, n, k) < OutputError(x, rows, w.Data, rtn.Dequantize(), n, k));

        // A diagonal Hessian with distinct entries: act-order permutes the columns, but nothing propagates, so the
        // result must be RTN exactly — in the original column order.
        var diagonal = new float[k * k];
        for (int i = 0; i < k; i++) diagonal[i * k + i] = 1 + (i * 37 % k);
        var hd = new Dictionary<string, LayerHessian> { ["w"] = LayerHessian.FromInputs("w", diagonal, k, k) };
        var qd = new GptqRounder(hd, new GptqOptions { ActOrder = true, NeverWorseThanRtn = false }).Quantize(w, scheme);
        Assert.Equal(rtn.Values, qd.Values);
    }

    [Fact]
    public void DeadColumns_KeepTheirOwnRoundToNearestValue()
    {
        int n = 6, k = 40, rows = 200;
        var x = CorrelatedInputs(rows, k, 31);
        for (int r = 0; r < rows; r++) x[r * k + 5] = x[r * k + 17] = 0;
        var w = new WeightMatrix("w", Random(n * k, 32), n, k);
        var scheme = Scheme(8, true, true, "channel");
        var q = new GptqRounder(new Dictionary<string, LayerHessian> { ["w"] = LayerHessian.FromInputs("w", x, rows, k) }, new GptqOptions { ActOrder = true }).Quantize(w, scheme);
        var rtn = RtnReference.Instance.Quantize(w, scheme);
        for (int r = 0; r < n; r++)
        {
            Assert.Equal(rtn.Values[r * k + 5], q.Values[r * k + 5]);
            Assert.Equal(rtn.Values[r * k + 17], q.Values[r * k + 17]);
        }
        Assert.All(q.Dequantize(), v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void Guard_KeepsRtnRowsWhenTheyAreBetter_SoTheLayerIsNeverWorse()
    {
        // A rank-deficient Hessian from very few rows with heavy dampening is where greedy GPTQ can lose on some rows.
        int n = 64, k = 48, rows = 6;
        var x = CorrelatedInputs(rows, k, 41);
        var w = new WeightMatrix("w", Random(n * k, 42), n, k);
        var scheme = Scheme(4, true, true, "block:16");
        var hs = new Dictionary<string, LayerHessian> { ["w"] = LayerHessian.FromInputs("w", x, rows, k) };
        var guarded = new GptqRounder(hs, new GptqOptions { PercDamp = 1 });
        var q = guarded.Quantize(w, scheme);
        double rtn = OutputError(x, rows, w.Data, RtnReference.Instance.Quantize(w, scheme).Dequantize(), n, k);
        double gptq = OutputError(x, rows, w.Data, q.Dequantize(), n, k);
        Assert.True(gptq <= rtn * (1 + 1e-6), $"{gptq} vs {rtn}");
        Assert.InRange(guarded.Stats["w"].RowsKeptRtn, 0, n);
    }

    [Fact]
    public void BadInput_IsATypedError()
    {
        var w = new WeightMatrix("w", Random(4 * 8, 1), 4, 8);
        var rounder = new GptqRounder(new Dictionary<string, LayerHessian>());
        var e = Assert.Throws<ArgumentException>(() => rounder.Quantize(w, Int4Block32));
        Assert.Contains("no GPTQ statistics for weight 'w'", e.Message);
        var withFallback = new GptqRounder(new Dictionary<string, LayerHessian>(), fallback: RtnReference.Instance);
        Assert.Equal(RtnReference.Instance.Quantize(w, Int4Block32).Values, withFallback.Quantize(w, Int4Block32).Values);
        var wrong = new GptqRounder(new Dictionary<string, LayerHessian> { ["w"] = new LayerHessian("w", 9) });
        Assert.Throws<ArgumentException>(() => wrong.Quantize(w, Int4Block32));
        Assert.Throws<ArgumentException>(() => RtnReference.Instance.Quantize(w, new QuantScheme(4, true, true, Granularity.PerChannel, Axis: 1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new GptqRounder(new Dictionary<string, LayerHessian>(), new GptqOptions { BlockSize = 0 }));
    }
}
