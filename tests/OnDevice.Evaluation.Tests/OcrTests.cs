using OnDevice.Compression.Calibration;
using OnDevice.Evaluation.Data;
using OnDevice.Evaluation.Tasks;
using OnDevice.Formats.Onnx;
using OnDevice.TestSupport;

namespace OnDevice.Evaluation.Tests;

/// <summary>The PaddleOCR recognizer on rendered text lines (scripts/render-textlines.sh).</summary>
[Trait("Category", "Ocr")]
[Collection("textlines")]
public class OcrTests(TextLineFixture lines)
{
    [Fact]
    public void RenderedSet_HasLabelsWithSliceFields_AndDecodablePngs()
    {
        if (!Magick.Require()) return;
        foreach (var dir in new[] { lines.Clean, lines.Degraded })
        {
            var d = Dataset.Load(dir);
            Assert.Equal(TextLineFixture.Count, d.Count);
            Assert.Equal(["degradation", "font", "length", "script"], d.FieldNames);
            foreach (var e in d.Examples)
            {
                var img = PngDecoder.Decode(e.File!);
                Assert.True(img.Height >= 10 && img.Width > img.Height, $"{e.Id}: {img.Width}x{img.Height}");
            }
        }
        Assert.Contains(Dataset.Load(lines.Clean).Examples, e => e.Fields["script"] == "chinese");
        Assert.Contains(Dataset.Load(lines.Clean).Examples, e => e.Fields["script"] == "latin");
        // Same seed, same labels: rendering is deterministic.
        Assert.Equal(File.ReadAllText(Path.Combine(lines.Clean, "labels.tsv")).Split('\n').Select(l => l.Split('\t')[1 % Math.Max(1, l.Split('\t').Length)]),
            File.ReadAllText(Path.Combine(lines.Degraded, "labels.tsv")).Split('\n').Select(l => l.Split('\t')[1 % Math.Max(1, l.Split('\t').Length)]));
    }

    [Fact]
    public void Fp32Recognizer_OnCleanLines_HasLowCer()
    {
        if (!Magick.Require()) return;
        using var save = new TempDir();
        var r = Evaluator.Evaluate(new CtcTask(), lines.Recognizer, Dataset.Load(lines.Clean), new TaskOptions { Dictionary = lines.Dictionary },
            new EvalOptions { Bootstrap = 300, LatencyRuns = 3, Warmup = 1, SaveInputs = save.Path, SliceBy = ["script"] });
        Assert.Equal("cer", r.Metric);
        Assert.True(r.Value < 0.10, $"CER {r.Value:P2} on clean lines; outputs: {string.Join(" | ", r.Results.Select(x => x.Output))}");
        Assert.True(r.Metrics.Single(m => m.Name == "lineAccuracy").Value > 0.5);
        Assert.True(r.CiLow <= r.Value && r.Value <= r.CiHigh);
        Assert.Equal(2, r.Slices.Count);
        Assert.NotNull(r.Latency);
        Assert.True(r.Latency!.P50Ms > 0 && r.Latency.P50Ms <= r.Latency.P99Ms);

        // --save-inputs wrote a calibration set the quantizer accepts.
        var set = CalibrationSet.Load(save.Path, OnnxReader.Read(lines.Recognizer).Graph);
        Assert.Equal(TextLineFixture.Count, set.Count);
        Assert.Equal(48, set[0]["x"].Dims[2]);
        Assert.True(Directory.Exists(Path.Combine(save.Path, "00000")));
    }

    [Fact]
    public void Compare_WithItself_IsNonInferior_WithAZeroInterval()
    {
        if (!Magick.Require()) return;
        var r = Evaluator.Compare(new CtcTask(), lines.Recognizer, lines.Recognizer, Dataset.Load(lines.Degraded), new TaskOptions { Dictionary = lines.Dictionary },
            new EvalOptions { Bootstrap = 300, Seed = 3, Margin = 0.005, LatencyRuns = 4, Warmup = 1, SliceBy = ["degradation"] });
        Assert.Equal(0, r.Delta);
        Assert.Equal((0.0, 0.0), (r.CiLow, r.CiHigh));
        Assert.Equal("non-inferior", r.Verdict);
        Assert.Equal(1.0, r.McnemarP);
        Assert.Equal(0, r.DisagreementCount);
        Assert.All(r.Slices, s => Assert.False(s.Flagged));
        Assert.Equal(4, r.LatencyA!.SamplesMs.Count);
    }

    [Fact]
    public void CtcOption_NotFittingTheModel_FailsBeforeWork()
    {
        if (!Magick.Require()) return;
        using var dir = new TempDir();
        File.WriteAllLines(dir.File("small.txt"), ["a", "b", "c"]);
        var e = Assert.Throws<EvaluationException>(() => new CtcTask().Bind(lines.Recognizer, Dataset.Load(lines.Clean), new TaskOptions { Dictionary = dir.File("small.txt") }));
        Assert.Contains("--dict gives 5 classes", e.Message);
        Assert.Contains("6625", e.Message);
        var cls = Assert.Throws<DatasetException>(() => new ClassificationTask().Bind(lines.Recognizer, Dataset.Load(lines.Clean), new TaskOptions()));
        Assert.Contains("class index", cls.Message);
        File.WriteAllLines(dir.File("classes.tsv"), ["file\tlabel", "00000.png\t0"]);
        var shape = Assert.Throws<EvaluationException>(() => new ClassificationTask().Bind(lines.Recognizer, Dataset.Load(lines.Clean, dir.File("classes.tsv")), new TaskOptions { Size = (48, 320) }));
        Assert.Contains("expects scores [N, classes]", shape.Message);
    }
}
