using OnDevice.Evaluation.Data;
using OnDevice.Evaluation.Tasks;
using OnDevice.Formats.Npy;
using OnDevice.TestSupport;

namespace OnDevice.Evaluation.Tests;

public class RegressionTaskTests
{
    [Fact]
    public void SileroVad_AgainstOnnxRuntimesOutputs_HasTinyError_FromNpyFolders()
    {
        // One example per ONNX Runtime reference case of the Silero VAD samples: a folder of NAME.npy inputs, the
        // label is ORT's speech probability. Our runtime must reproduce it.
        using var dir = new TempDir();
        var rows = new List<string> { "file\tlabel\tsample" };
        var cases = ReferenceOutputs.All().Where(c => c.Sample == "silero-vad").ToList();
        Assert.NotEmpty(cases);
        foreach (var c in cases)
        {
            var sub = dir.File(c.Name);
            Directory.CreateDirectory(sub);
            foreach (var input in c.Inputs) File.Copy(c.InputFile(input), Path.Combine(sub, input + ".npy"));
            var label = NpyFile.Read(c.Outputs.Single(o => o.Name == "output").File).ToFloatArray();
            rows.Add($"{c.Name}\t[{string.Join(",", label.Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture)))}]\t{c.Sample}");
        }
        File.WriteAllLines(dir.File("labels.tsv"), rows);
        var r = Evaluator.Evaluate(new RegressionTask(), SampleModels.Path("silero-vad"), Dataset.Load(dir.Path), new TaskOptions { Output = "output" },
            new EvalOptions { Bootstrap = 100, LatencyRuns = 0 });
        Assert.Equal("mae", r.Metric);
        Assert.True(r.Value < 1e-5, $"MAE {r.Value}");
        Assert.True(r.Metrics.Single(m => m.Name == "rmse").Value < 1e-5);
    }

    [Fact]
    public void LabelCount_NotFittingTheOutput_FailsBeforeWork()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("x"));
        File.WriteAllText(dir.File("labels.tsv"), "file\tlabel\nx\t[1,2,3]\n");
        var e = Assert.Throws<EvaluationException>(() => new RegressionTask().Bind(SampleModels.Path("paddleocr-cls"), Dataset.Load(dir.Path), new TaskOptions()));
        Assert.Contains("labels have 3 value(s) per example", e.Message);
    }
}

[Trait("Category", "Ocr")]
[Collection("textlines")]
public class AgreementTaskTests(TextLineFixture lines)
{
    [Fact]
    public void Agreement_OfAWeightRoundedCopy_OnSavedInputs()
    {
        if (!Magick.Require()) return;
        // --save-inputs writes the preprocessed lines as NNNNN/x.npy; those folders are an unlabelled dataset.
        using var saved = new TempDir();
        Evaluator.Evaluate(new CtcTask(), lines.Recognizer, Dataset.Load(lines.Degraded).Take(6), new TaskOptions { Dictionary = lines.Dictionary },
            new EvalOptions { Bootstrap = 50, LatencyRuns = 0, SaveInputs = saved.Path });
        var data = Dataset.Load(saved.Path);
        Assert.Equal(6, data.Count);
        var self = Evaluator.Evaluate(new AgreementTask(), lines.Recognizer, data, new TaskOptions { Reference = lines.Recognizer }, new EvalOptions { Bootstrap = 50, LatencyRuns = 0 });
        Assert.Equal(1.0, self.Value);
        Assert.Equal(0.0, self.Metrics.Single(m => m.Name == "maxAbsDiff").Value);
        var r = Evaluator.Compare(new AgreementTask(), lines.Recognizer, lines.Perturbed(8), data, new TaskOptions(), new EvalOptions { Bootstrap = 100, LatencyRuns = 0 });
        Assert.Equal("top1Agreement", r.Metric);
        Assert.Equal(1.0, r.A); // A against itself (the default reference)
        Assert.InRange(r.B, 0.95, 1.0);
        Assert.True(r.Metrics.Single(m => m.Name == "cosine").B > 0.99);
        Assert.True(r.Metrics.Single(m => m.Name == "maxAbsDiff").B > 0);
    }
}
