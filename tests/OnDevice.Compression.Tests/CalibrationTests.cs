using OnDevice.Compression.Calibration;
using OnDevice.Compression.Quantization;
using OnDevice.Core;

namespace OnDevice.Compression.Tests;

public class CalibrationHistogramTests
{
    internal static float[] Gaussian(int n, int seed, double sigma = 1, double mean = 0)
    {
        var rng = new Random(seed);
        var r = new float[n];
        for (int i = 0; i < n; i++)
        {
            double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
            r[i] = (float)(mean + sigma * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        return r;
    }

    [Fact]
    public void MinMax_IsExact_EvenAfterTheRangeGrewManyTimes()
    {
        var h = new ValueHistogram(64);
        h.Add([0.001f, -0.002f]);
        h.Add([3.5f, 0f]);
        h.Add([-1000.25f, 17f]);
        h.Add([float.NaN, 2f]);
        Assert.Equal(new ActivationRange(-1000.25f, 17f), h.MinMax());
        Assert.Equal(7, h.Count);
        Assert.Equal(1, h.NonFinite);
        // Merging bins is exact: every value is still counted once, on the side of its sign.
        long neg = 0, pos = 0;
        foreach (var c in h.Negative) neg += c;
        foreach (var c in h.Positive) pos += c;
        Assert.Equal(2, neg);
        Assert.Equal(5, pos);
        Assert.True(h.Width * h.Bins >= 1000.25);
    }

    [Fact]
    public void AllZeros_ThenValues_KeepsTheZerosInTheFirstBin()
    {
        var h = new ValueHistogram(16);
        h.Add(new float[100]);
        Assert.Equal(new ActivationRange(0, 0), h.MinMax());
        h.Add([8f]);
        Assert.Equal(100, h.Positive[0]);
        Assert.Equal(1, h.Positive[15]);
        Assert.InRange(h.Quantile(0.5), 0f, (float)h.Width);
    }

    [Fact]
    public void Percentile_MatchesExactQuantilesOfSortedSamples()
    {
        var h = new ValueHistogram(2048);
        var all = new List<float>();
        for (int b = 0; b < 20; b++)
        {
            // Growing spread: the histogram has to re-bin several times.
            var x = Gaussian(20_000, b, sigma: 1 + b * 0.25, mean: 0.5);
            h.Add(x);
            all.AddRange(x);
        }
        var sorted = all.ToArray();
        Array.Sort(sorted);
        double Exact(double q) => sorted[(int)Math.Round(q * (sorted.Length - 1))];
        var r = h.Percentile(99.9);
        double tol = 2 * h.Width;
        Assert.InRange(r.Max, Exact(1 - 0.0005) - tol, Exact(1 - 0.0005) + tol);
        Assert.InRange(r.Min, Exact(0.0005) - tol, Exact(0.0005) + tol);
        Assert.True(r.Max < sorted[^1] && r.Min > sorted[0]);
        Assert.InRange(h.Quantile(0.5), Exact(0.5) - tol, Exact(0.5) + tol);
        // 100 % keeps everything.
        Assert.Equal(h.MinMax(), h.Percentile(100));
    }

    /// <summary>
    /// The entropy search of one side written out independently, pytorch-quantization style: a one-shot histogram of
    /// <paramref name="side"/> (magnitudes) over [0, max], each candidate's bins digitized onto levels with a linspace,
    /// KL via normalized densities; candidates clipping more than <paramref name="allowed"/> values are skipped.
    /// </summary>
    private static double ReferenceEntropyThreshold(float[] side, int bins, int levels, double allowed)
    {
        double amax = side.Max(v => (double)v);
        var hist = new double[bins];
        foreach (var v in side) hist[Math.Min(bins - 1, (int)(v / amax * bins))]++;
        double total = hist.Sum(), bestKl = double.MaxValue;
        int best = bins;
        int used = Array.FindLastIndex(hist, c => c > 0) + 1;
        if (used <= levels) return used * amax / bins;
        for (int i = levels; i <= used; i++)
        {
            double clipped = hist.Skip(i).Sum();
            if (clipped > allowed) continue;
            var reference = hist.Take(i).ToArray();
            reference[i - 1] += clipped;
            int nl = Math.Min(levels, i);
            var digit = Enumerable.Range(0, i).Select(k => hist[k] == 0 ? -1 : (int)Math.Floor(k * (double)nl / i)).ToArray();
            var density = new double[i];
            foreach (var g in Enumerable.Range(0, i).Where(k => digit[k] >= 0).GroupBy(k => digit[k]))
            {
                double avg = g.Sum(k => hist[k]) / g.Count();
                foreach (var k in g) density[k] = avg;
            }
            if (density[i - 1] == 0 && reference[i - 1] > 0) density[i - 1] = 0.5; // empty last bin holding clipped mass
            double dSum = density.Sum();
            double kl = 0;
            for (int k = 0; k < i; k++)
                if (reference[k] > 0) kl += reference[k] / total * Math.Log(reference[k] / total / (density[k] / dSum));
            if (kl < bestKl - 1e-12) { bestKl = kl; best = i; }
        }
        return best * amax / bins;
    }

    private static float[] Positives(float[] x) => x.Where(v => v > 0).ToArray();
    private static float[] NegativeMagnitudes(float[] x) => x.Where(v => v < 0).Select(v => -v).ToArray();

    [Fact]
    public void Entropy_ClipsOutliers_ButKeepsTheBulkOfAGaussian()
    {
        var x = Gaussian(200_000, 7);
        var rng = new Random(3);
        for (int i = 0; i < 20; i++) x[rng.Next(x.Length)] = (i % 2 == 0 ? 1 : -1) * 40f;
        var h = new ValueHistogram(2048);
        foreach (var chunk in x.Chunk(10_000)) h.Add(chunk);
        var e = h.Entropy();
        Assert.Equal(-40f, h.MinMax().Min);
        Assert.InRange(e.Max, 2.5f, 8f);       // far below the outliers, above the 2.5σ bulk
        Assert.InRange(-e.Min, 2.5f, 8f);
        Assert.InRange(-e.Min / e.Max, 0.8, 1.25); // each side searched on its own: a symmetric bulk gives near-symmetric thresholds
        double allowed = ValueHistogram.DefaultMaxClippedShare * x.Length;
        double refPos = ReferenceEntropyThreshold(Positives(x), 2048, 128, allowed);
        double refNeg = ReferenceEntropyThreshold(NegativeMagnitudes(x), 2048, 128, allowed);
        Assert.InRange(e.Max, refPos * 0.8, refPos * 1.25);
        Assert.InRange(-e.Min, refNeg * 0.8, refNeg * 1.25);

        // Without outliers the threshold sits in the Gaussian's tail, above 2.5σ and below its maximum.
        var clean = Gaussian(200_000, 9);
        var hc = new ValueHistogram(2048);
        hc.Add(clean);
        var ec = hc.Entropy();
        Assert.InRange(ec.Max, 2.5f, hc.Max + 1e-6f);
        double refClean = ReferenceEntropyThreshold(Positives(clean), 2048, 128, allowed);
        Assert.InRange(ec.Max, refClean * 0.9, refClean * 1.1);
    }

    [Fact]
    public void Entropy_NeverClipsMoreThanTheAllowedShare()
    {
        // A sparse, heavy-tailed bulk (most values near zero): KL alone keeps shrinking the threshold.
        var rng = new Random(21);
        var x = Enumerable.Range(0, 300_000).Select(_ => (float)(rng.NextDouble() < 0.97 ? Math.Abs(TestModels.NextGaussian(rng)) * 0.05 : -Math.Log(1 - rng.NextDouble()))).ToArray();
        var h = new ValueHistogram();
        h.Add(x);
        var sorted = x.Order().ToArray();
        foreach (var share in new[] { 1e-2, 1e-3, 1e-4 })
        {
            var r = h.Entropy(share);
            long clipped = x.LongCount(v => v > r.Max);
            Assert.True(clipped <= share * x.Length + 5, $"{share}: clipped {clipped} of {x.Length} at {r.Max}");
            Assert.True(r.Max >= sorted[(int)((1 - share) * (x.Length - 1))] - 2 * h.Width, $"{share}: {r.Max} below the {1 - share:P2} quantile");
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => h.Entropy(1.5));
    }

    [Theory]
    [InlineData(1, 128)]
    [InlineData(2, 256)]
    [InlineData(3, 128)]
    public void EntropySearch_AgreesWithItsDirectTwin(int seed, int levels)
    {
        var rng = new Random(seed);
        var hist = new double[700];
        // A decaying bulk with random holes, then a gap and a few far outliers.
        for (int k = 0; k < 400; k++) hist[k] = rng.NextDouble() < 0.1 ? 0 : Math.Round(5000 * Math.Exp(-k / 60.0) * rng.NextDouble());
        hist[650] = 3;
        hist[699] = 1;
        Assert.Equal(ValueHistogram.EntropyThresholdBinsReference(hist, levels), ValueHistogram.EntropyThresholdBins(hist, levels));
    }

    [Fact]
    public void Entropy_OfNonNegativeData_StartsAtTheObservedMinimum()
    {
        var x = Gaussian(100_000, 11).Select(v => Math.Max(v, 0)).ToArray();
        x[5] = 60;
        var h = new ValueHistogram();
        h.Add(x);
        var e = h.Entropy();
        Assert.Equal(0f, e.Min);
        Assert.InRange(e.Max, 2f, 10f);
        double reference = ReferenceEntropyThreshold(Positives(x), 2048, 256, ValueHistogram.DefaultMaxClippedShare * x.Length);
        Assert.InRange(e.Max, reference * 0.8, reference * 1.25);
    }

    [Fact]
    public void Entropy_OfDataAwayFromZero_KeepsTheBulk()
    {
        var h = new ValueHistogram();
        h.Add(Gaussian(50_000, 4, sigma: 0.02, mean: -0.95));
        var e = h.Entropy();
        Assert.True(e.Min <= e.Max);
        Assert.True(e.Min <= -0.95 - 2 * 0.02 && e.Max == h.Max, $"{e}");
    }

    [Fact]
    public void Memory_DoesNotDependOnHowManyValuesWereSeen()
    {
        var small = new ValueHistogram();
        small.Add(Gaussian(100, 1));
        var large = new ValueHistogram();
        for (int i = 0; i < 50; i++) large.Add(Gaussian(20_000, i, sigma: 1 + i));
        Assert.Equal(small.Bytes, large.Bytes);
        Assert.Equal(1_000_000, large.Count);
        Assert.True(large.Bytes < 70_000);
    }
}

public class CalibrationRunTests
{
    /// <summary>x[B,8] → MatMul(W[8,4]) → y → Relu → r.</summary>
    internal static (Model Model, float[] W) MatMulRelu()
    {
        var g = new Graph { Name = "mm" };
        g.Inputs.Add(ValueInfo.Tensor("x", DType.Float32, new Shape([Dim.Sym("b"), Dim.Of(8)])));
        var w = CalibrationHistogramTests.Gaussian(32, 99);
        g.AddInitializer(Tensor.FromArray<float>(w, [8, 4], "W"));
        g.Nodes.Add(new Node("MatMul", ["x", "W"], ["y"], "mm"));
        g.Nodes.Add(new Node("Relu", ["y"], ["r"], "relu"));
        g.Outputs.Add(ValueInfo.Tensor("r", DType.Float32, null));
        var m = new Model(g);
        m.OpsetImports.Add(new OpsetImport("", 17));
        return (m, w);
    }

    private static CalibrationSet Set(Model m, IEnumerable<float[]> rows) =>
        CalibrationSet.FromFeeds(m.Graph, rows.Select(r => (IReadOnlyDictionary<string, Tensor>)new Dictionary<string, Tensor> { ["x"] = Tensor.FromArray<float>(r, [r.Length / 8, 8]) }).ToList());

    [Fact]
    public void MinMax_OverAModel_IsExactForInputsAndLayerOutputs()
    {
        var (m, w) = MatMulRelu();
        var samples = Enumerable.Range(0, 20).Select(i => CalibrationHistogramTests.Gaussian(8 * 3, 100 + i, sigma: 2)).ToList();
        var reports = new List<StageProgress>();
        var result = ActivationCalibrator.Calibrate(m, Set(m, samples), new ActivationCalibrationOptions
        {
            Values = ActivationCalibrator.LayerValues(m.Graph).ToList(),
            Progress = new ImmediateProgress<StageProgress>(reports.Add),
            Threads = 1,
        });
        Assert.Equal(["x", "y"], ActivationCalibrator.LayerValues(m.Graph));
        Assert.Equal(["x", "y"], result.Ranges.Keys.Order());
        var xs = samples.SelectMany(s => s).ToArray();
        Assert.Equal(new ActivationRange(xs.Min(), xs.Max()), result.Ranges["x"]);
        var ys = new List<float>();
        foreach (var s in samples)
            for (int r = 0; r < s.Length / 8; r++)
                for (int c = 0; c < 4; c++)
                {
                    float acc = 0;
                    for (int k = 0; k < 8; k++) acc += s[r * 8 + k] * w[k * 4 + c];
                    ys.Add(acc);
                }
        Assert.Equal(ys.Min(), result.Ranges["y"].Min, 4);
        Assert.Equal(ys.Max(), result.Ranges["y"].Max, 4);
        Assert.Equal(20, reports.Count);
        Assert.Equal(new StageProgress("calibrate", 20, 20), reports[^1]);
        Assert.Equal(20, result.Samples);
    }

    [Fact]
    public void DefaultValues_AreEveryFloatValue_AndMemoryIsIndependentOfSampleCount()
    {
        var (m, _) = MatMulRelu();
        var few = ActivationCalibrator.Calibrate(m, Set(m, Enumerable.Range(0, 2).Select(i => CalibrationHistogramTests.Gaussian(8, i))), new() { Threads = 1 });
        var many = ActivationCalibrator.Calibrate(m, Set(m, Enumerable.Range(0, 40).Select(i => CalibrationHistogramTests.Gaussian(8 * 16, i))), new() { Threads = 1 });
        Assert.Equal(["r", "x", "y"], many.Ranges.Keys.Order());
        Assert.Equal(few.HistogramBytes, many.HistogramBytes);
        Assert.True(many.Ranges["r"].Min >= 0);
    }

    [Fact]
    public void Warns_WhenTooFewSamples_OrWhenRangesStillGrowAtTheEnd()
    {
        var (m, _) = MatMulRelu();
        var rng = new Random(5);
        float[] Uniform(float scale) => Enumerable.Range(0, 8 * 64).Select(_ => (float)(rng.NextDouble() * 2 - 1) * scale).ToArray();

        var settled = ActivationCalibrator.Calibrate(m, Set(m, Enumerable.Range(0, 40).Select(_ => Uniform(1))), new() { Values = ["x"], Threads = 1 });
        Assert.Empty(settled.Warnings);

        var few = ActivationCalibrator.Calibrate(m, Set(m, Enumerable.Range(0, 3).Select(_ => Uniform(1))), new() { Values = ["x"], Threads = 1 });
        Assert.Contains(few.Warnings, w => w.Contains("only 3 calibration sample"));

        // The last samples are ten times wider: the range has not settled.
        var drift = ActivationCalibrator.Calibrate(m, Set(m, Enumerable.Range(0, 40).Select(i => Uniform(i >= 36 ? 10 : 1))),
            new() { Values = ["x", "y"], Threads = 1, Method = CalibrationMethod.Percentile, Percentile = 99.9 });
        Assert.Contains(drift.Warnings, w => w.Contains("still changed") && w.Contains("x ("));
        Assert.Contains("x", drift.Unsettled);
    }

    [Fact]
    public void BadOptions_FailBeforeAnyRun()
    {
        var (m, _) = MatMulRelu();
        var set = Set(m, [CalibrationHistogramTests.Gaussian(8, 1)]);
        var e = Assert.Throws<ArgumentException>(() => ActivationCalibrator.Calibrate(m, set, new() { Values = ["nope"] }));
        Assert.Contains("'nope' is not a value of the model", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => ActivationCalibrator.Calibrate(m, set, new() { Method = CalibrationMethod.Percentile, Percentile = 20 }));
        Assert.Throws<ArgumentException>(() => ActivationCalibrator.ParseMethod("median"));
        Assert.Equal(CalibrationMethod.Entropy, ActivationCalibrator.ParseMethod("Entropy"));
    }
}

/// <summary>An <see cref="IProgress{T}"/> that reports synchronously (Progress&lt;T&gt; posts to the thread pool).</summary>
internal sealed class ImmediateProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}

[Trait("Category", "Samples")]
public class CalibrationSampleModelTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Theory]
    [InlineData("paddleocr-cls")]
    [InlineData("openwakeword-hello-deepa")]
    public void EveryLayerValueGetsARange_AndClippingCalibratorsStayInsideMinMax(string sample)
    {
        var model = OnDevice.Formats.Onnx.OnnxReader.Read(OnDevice.TestSupport.SampleModels.Path(sample));
        var set = CalibrationSet.FromFeeds(model.Graph, SampleLikeInputs.For(sample, model.Graph, 10));
        var values = ActivationCalibrator.LayerValues(model.Graph);
        Assert.NotEmpty(values);
        var results = new Dictionary<CalibrationMethod, CalibrationResult>();
        foreach (var method in Enum.GetValues<CalibrationMethod>())
        {
            results[method] = ActivationCalibrator.Calibrate(model, set, new ActivationCalibrationOptions { Method = method, Values = values, Threads = 2 });
            output.WriteLine($"{sample} {method}: {results[method].Ranges.Count} values, {results[method].Seconds:F2} s, {results[method].HistogramBytes / 1024} KiB; {string.Join(" | ", results[method].Warnings)}");
        }
        var minmax = results[CalibrationMethod.MinMax];
        Assert.Equal(values.Order(), minmax.Ranges.Keys.Order());
        Assert.Contains(minmax.Warnings, w => w.Contains("only 10 calibration sample"));
        foreach (var method in new[] { CalibrationMethod.Percentile, CalibrationMethod.Entropy })
            foreach (var (name, r) in results[method].Ranges)
            {
                var mm = minmax.Ranges[name];
                Assert.True(r.Min <= r.Max, $"{method} {name}: {r}");
                Assert.True(r.Min >= mm.Min && r.Max <= mm.Max, $"{method} {name}: {r} outside {mm}");
                Assert.True(r.Max - r.Min > 0.05 * (mm.Max - mm.Min), $"{method} {name}: {r} collapsed inside {mm}");
            }
    }
}

/// <summary>
/// The entropy calibrator on real tensor distributions: histograms of two PP-OCRv4 recognizer values over 256
/// calibration text lines (Data/*.hist, recorded with ValueHistogram(4096)) on which the former entropy calibrator
/// (1 % clipping, both sides folded to |x|) made the model read nothing (100 % CER).
/// </summary>
public class EntropyRealDistributionTests
{
    /// <summary>Reads a fixture: '#' comments, then "bins width min max count batches", then "p|n bin count" lines.</summary>
    internal static ValueHistogram Load(string name)
    {
        var lines = File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "Data", name + ".hist")).Where(l => !l.StartsWith('#')).ToList();
        var head = lines[0].Split(' ');
        int bins = int.Parse(head[0], System.Globalization.CultureInfo.InvariantCulture);
        var pos = new long[bins];
        var neg = new long[bins];
        foreach (var l in lines.Skip(1))
        {
            var f = l.Split(' ');
            (f[0] == "p" ? pos : neg)[int.Parse(f[1], System.Globalization.CultureInfo.InvariantCulture)] = long.Parse(f[2], System.Globalization.CultureInfo.InvariantCulture);
        }
        var h = ValueHistogram.FromCounts(pos, neg, double.Parse(head[1], System.Globalization.CultureInfo.InvariantCulture),
            float.Parse(head[2], System.Globalization.CultureInfo.InvariantCulture), float.Parse(head[3], System.Globalization.CultureInfo.InvariantCulture),
            long.Parse(head[5], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(long.Parse(head[4], System.Globalization.CultureInfo.InvariantCulture), h.Count);
        return h;
    }

    /// <summary>The former search: both sides folded to |x|, 128 levels, up to 1 % clipped.</summary>
    private static double FormerThreshold(ValueHistogram h)
    {
        var abs = new double[h.Bins / 2];
        for (int i = 0; i < h.Bins; i++) abs[i / 2] += h.Positive[i] + h.Negative[i];
        int used = Array.FindLastIndex(abs, c => c > 0) + 1;
        return ValueHistogram.EntropyThresholdBins(abs[..used], 128) * 2 * h.Width;
    }

    [Fact]
    public void GatedFeatureMap_KeepsItsLargeValues()
    {
        // p2o.Mul.141: a feature map times its squeeze-excitation gate, [1, 480, 6, W]: −0.94…4.35, nearly all mass near 0.
        var h = Load("p2o.Mul.141");
        Assert.Equal(256, h.Batches);
        Assert.True(h.ValuesPerBatch > 100_000);
        double former = FormerThreshold(h);
        Assert.True(former < 1.0, $"the former calibrator's threshold {former} should reproduce the failure (±0.79)");
        var r = h.Entropy();
        Assert.True(r.Max >= h.Quantile(1 - ValueHistogram.DefaultMaxClippedShare) - 2 * h.Width, $"{r} clips below the 99.9th percentile {h.Quantile(0.999)}");
        Assert.True(r.Max > 2.0f && r.Max <= h.Max, $"{r}");
        // The short negative side is searched on its own and is not cut to the positive side's threshold or vice versa.
        Assert.True(r.Min < -0.9f, $"{r}");
        // With the former 1 % bound, even the per-side search cuts the positive side to a tenth of its range.
        Assert.True(h.Entropy(0.01).Max < 0.5f);
    }

    [Fact]
    public void SqueezeExcitationVector_IsNotClipped()
    {
        // relu_1.tmp_0: the ReLU of a squeeze-excitation reduction, [1, 120, 1, 1]: 120 values per line, each a channel summary.
        var h = Load("relu_1.tmp_0");
        Assert.Equal(120, h.ValuesPerBatch, 6);
        Assert.True(FormerThreshold(h) < 5, "the former calibrator cut 0…19.2 to 0…4.7");
        var options = new ActivationCalibrationOptions { Method = CalibrationMethod.Entropy };
        Assert.Equal(h.MinMax(), ActivationCalibrator.Choose(h, options));
        // Told that the value is large (more elements per sample than the guard), the 0.1 % bound alone still keeps the top.
        var r = ActivationCalibrator.Choose(h, options with { EntropyMinValuesPerSample = 0 });
        Assert.True(r.Max >= h.Quantile(0.999) - 2 * h.Width, $"{r}");
    }

    [Fact]
    public void BoundedProducers_KeepTheirObservedRange()
    {
        var g = new Graph { Name = "b" };
        g.Inputs.Add(ValueInfo.Tensor("x", DType.Float32, new Shape([Dim.Of(1), Dim.Of(4)])));
        g.AddInitializer(Tensor.FromArray<float>([0f], [], "lo"));
        g.AddInitializer(Tensor.FromArray<float>([6f], [], "hi"));
        g.Nodes.Add(new Node("Sigmoid", ["x"], ["s"], "sig"));
        g.Nodes.Add(new Node("Clip", ["x", "lo", "hi"], ["c6"], "relu6"));
        g.Nodes.Add(new Node("Clip", ["x", "lo"], ["c0"], "relu"));
        g.Nodes.Add(new Node("Relu", ["x"], ["r"], "r"));
        var bounded = ActivationCalibrator.BoundedValues(g);
        Assert.Equal(["c6", "s"], bounded.Order());

        // A ReLU6 output saturating at 6 in 0.05 % of the values: entropy alone cuts below the bound.
        var rng = new Random(4);
        var v = Enumerable.Range(0, 100_000).Select(_ => rng.NextDouble() < 0.0005 ? 6f : (float)Math.Min(6, Math.Abs(TestModels.NextGaussian(rng)) * 0.3)).ToArray();
        var h = new ValueHistogram();
        h.Add(v);
        var options = new ActivationCalibrationOptions { Method = CalibrationMethod.Entropy, EntropyMinValuesPerSample = 0 };
        Assert.True(ActivationCalibrator.Choose(h, options).Max < 6f);
        Assert.Equal(h.MinMax(), ActivationCalibrator.Choose(h, options, bounded: true));
        Assert.Equal(6f, h.MinMax().Max);
    }
}
