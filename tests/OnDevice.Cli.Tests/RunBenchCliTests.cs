using System.Text.Json;
using OnDevice.Formats.Npy;
using OnDevice.TestSupport;

namespace OnDevice.Cli.Tests;

public class RunBenchCliTests
{
    [Fact]
    public void Run_OnTheRecognizer_WritesOutputsThatDecodeToOnnxRuntimesText()
    {
        var c = ReferenceOutputs.All().Single(r => r.Sample == "paddleocr-rec" && r.Name == "line0");
        using var dir = new TempDir();
        var r = CliRunner.Run("run", "paddleocr-rec", "--input", $"x={c.InputFile("x")}", "--output-dir", dir.Path, "--json");
        Assert.Equal(0, r.ExitCode);
        using var doc = JsonDocument.Parse(r.Stdout);
        var file = doc.RootElement.GetProperty("outputs")[0].GetProperty("file").GetString()!;
        Assert.Equal(Path.Combine(dir.Path, "softmax_11.tmp_0.npy"), file);

        var dict = OnDevice.Evaluation.Tasks.CtcDecoder.LoadDictionary(SampleModels.Companion("paddleocr-rec", "ppocr_keys_v1.txt"));
        var ours = NpyFile.Read(file);
        var ort = NpyFile.Read(c.Outputs[0].File);
        int steps = (int)ours.Dims[1], classes = (int)ours.Dims[2];
        var text = OnDevice.Evaluation.Tasks.CtcDecoder.Greedy(ours.AsSpan<float>(), steps, classes, dict);
        Assert.Equal(OnDevice.Evaluation.Tasks.CtcDecoder.Greedy(ort.AsSpan<float>(), steps, classes, dict), text);
        Assert.Equal("Hello World 2026", text);
    }

    [Fact]
    public void Run_WithAScalarInput_AndOutputNamesThatNeedEscaping()
    {
        using var dir = new TempDir();
        var r = CliRunner.Run("run", "silero-vad", "--input", "sr=16000", "--shape", "input=1x512", "--output-dir", dir.Path);
        Assert.Equal(0, r.ExitCode);
        Assert.True(File.Exists(Path.Combine(dir.Path, "output.npy")));
        var state = NpyFile.Read(Path.Combine(dir.Path, "stateN.npy"));
        Assert.Equal(new long[] { 2, 1, 128 }, state.Dims);
    }

    [Fact]
    public void Bench_Json_HasTheDocumentedKeys_AndSaneNumbers()
    {
        var r = CliRunner.Run("bench", "paddleocr-cls", "--shape", "x=1x3x48x192", "--runs", "20", "--warmup", "3", "--profile", "--json");
        Assert.Equal(0, r.ExitCode);
        using var doc = JsonDocument.Parse(r.Stdout);
        var root = doc.RootElement;
        double p50 = root.GetProperty("p50Ms").GetDouble(), p90 = root.GetProperty("p90Ms").GetDouble(), p99 = root.GetProperty("p99Ms").GetDouble();
        Assert.True(p50 > 0 && p50 <= p90 && p90 <= p99, $"{p50} {p90} {p99}");
        Assert.True(root.GetProperty("coldStartMs").GetDouble() >= p50);
        Assert.True(root.GetProperty("plannedPeakBytes").GetInt64() > 0);
        Assert.True(root.GetProperty("peakWorkingSetBytes").GetInt64() > root.GetProperty("plannedPeakBytes").GetInt64());
        var ops = root.GetProperty("profile").GetProperty("byOp").EnumerateArray().Select(o => o.GetProperty("opType").GetString()).ToList();
        Assert.Contains(ops, o => o!.Contains("Conv"));
    }

    [Fact]
    public void Run_WithAWrongInputName_ListsTheModelsInputs()
    {
        var r = CliRunner.Run("run", "paddleocr-cls", "--shape", "image=1x3x48x192");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("the model's inputs are: x float32", r.Stderr);
        var bad = CliRunner.Run("run", "paddleocr-cls", "--shape", "x=1x4x48x192");
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("dimension 1 is 4", bad.Stderr);
        Assert.DoesNotContain("   at ", bad.Stderr);
    }
}
