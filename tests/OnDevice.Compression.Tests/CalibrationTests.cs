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
    /// The entropy search written out independently, pytorch-quantization style: a one-shot histogram of |x| over
    /// [0, max|x|], each candidate's bins digitized onto levels with a linspace, KL via normalized densities.
    /// </summary>
    private static double ReferenceEntropyThreshold(float[] values, int bins, int levels)
    {
        double amax = values.Max(v => Math.Abs((double)v));
        var hist = new double[bins];
        foreach (var v in values) hist[Math.Min(bins - 1, (int)(Math.Abs((double)v) / amax * bins))]++;
        double total = hist.Sum(), bestKl = double.MaxValue;
        int best = bins;
        int used = Array.FindLastIndex(hist, c => c > 0) + 1;
        if (used <= levels) return used * amax / bins;
        for (int i = levels; i <= used; i++)
        {
            double clipped = hist.Skip(i).Sum();
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
        Assert.Equal(-e.Max, e.Min, 5);        // two-sided data folds to a symmetric |x| threshold
        double reference = ReferenceEntropyThreshold(x, 2048, 128);
        Assert.InRange(e.Max, reference * 0.8, reference * 1.25);

        // Without outliers the threshold sits in the Gaussian's tail, above 2.5σ and below its maximum.
        var clean = Gaussian(200_000, 9);
        var hc = new ValueHistogram(2048);
        hc.Add(clean);
        var ec = hc.Entropy();
        Assert.InRange(ec.Max, 2.5f, hc.Max + 1e-6f);
        double refClean = ReferenceEntropyThreshold(clean, 2048, 128);
        Assert.InRange(ec.Max, refClean * 0.9, refClean * 1.1);
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
        double reference = ReferenceEntropyThreshold(x, 2048, 256);
        Assert.InRange(e.Max, reference * 0.8, reference * 1.25);
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
            Progress = new SyncProgress<StageProgress>(reports.Add),
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
internal sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
