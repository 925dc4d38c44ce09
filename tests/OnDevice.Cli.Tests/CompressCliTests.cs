using System.Text.Json;
using OnDevice.Core;
using OnDevice.Formats.Npy;
using OnDevice.TestSupport;

namespace OnDevice.Cli.Tests;

public class CompressCliTests
{
    private static string ClsCalibration(TempDir dir)
    {
        var cal = Directory.CreateDirectory(dir.File("cal")).FullName;
        foreach (var c in ReferenceOutputs.All().Where(c => c.Sample == "paddleocr-cls"))
            File.Copy(c.InputFile("x"), Path.Combine(cal, c.Name + ".npy"));
        return cal;
    }

    [Fact]
    public void Quantize_Json_HasSizesAndTheLayerTable_AndWritesTheReport()
    {
        using var dir = new TempDir();
        var cal = ClsCalibration(dir);
        var r = CliRunner.Run("quantize", "paddleocr-cls", "-o", dir.File("q.onnx"), "--weights", "int8", "--granularity", "channel", "--symmetric",
            "--calibration", cal, "--exclude", "p2o.MatMul*", "--report", dir.File("report.json"), "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        var root = doc.RootElement;
        long input = root.GetProperty("inputBytes").GetInt64(), output = root.GetProperty("outputBytes").GetInt64();
        Assert.Equal(new FileInfo(dir.File("q.onnx")).Length, output);
        Assert.True(output < input / 2, $"{input} -> {output}");
        Assert.True(root.GetProperty("layerRatio").GetDouble() >= 3.5);
        Assert.Equal(2, root.GetProperty("calibrationSamples").GetInt32());
        var layers = root.GetProperty("layers").EnumerateArray().ToList();
        Assert.Equal(53, layers.Count);
        Assert.All(layers, l =>
        {
            Assert.True(l.GetProperty("bytesAfter").GetInt64() < l.GetProperty("bytesBefore").GetInt64());
            Assert.True(l.GetProperty("outputError").GetDouble() >= 0);
            Assert.True(l.GetProperty("modelErrorAlone").GetDouble() >= 0);
            Assert.InRange(l.GetProperty("sensitivityRank").GetInt32(), 1, 53);
        });
        Assert.Contains(root.GetProperty("stayedFloat").EnumerateArray(), s => s.GetProperty("reason").GetString()!.Contains("--exclude"));
        using var rep = JsonDocument.Parse(File.ReadAllText(dir.File("report.json")));
        Assert.Equal(53, rep.RootElement.GetProperty("layers").GetArrayLength());
    }

    [Fact]
    public void Quantize_MaxSize_MixesPrecisionsToFit()
    {
        using var dir = new TempDir();
        var r = CliRunner.Run("quantize", "openwakeword-hello-deepa", "-o", dir.File("b.onnx"), "--max-size", "120KB", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        long output = doc.RootElement.GetProperty("outputBytes").GetInt64();
        Assert.InRange(output, 1, 120_000);
        Assert.Equal(120_000, doc.RootElement.GetProperty("maxSize").GetInt64());
        Assert.Equal(output, new FileInfo(dir.File("b.onnx")).Length);
        var schemes = doc.RootElement.GetProperty("layers").EnumerateArray().Select(l => l.GetProperty("scheme").GetString()).ToList();
        Assert.NotEmpty(schemes);
        var a = CliRunner.Run("quantize", "openwakeword-hello-deepa", "-o", dir.File("a.onnx"), "--activations", "int8");
        Assert.Equal(1, a.ExitCode);
        Assert.Contains("needs --calibration", a.Stderr);
        Assert.False(File.Exists(dir.File("a.onnx")));
    }

    [Fact]
    public void Quantize_Gptq_And_StaticActivations_FromACalibrationFolder()
    {
        using var dir = new TempDir();
        var cal = ClsCalibration(dir);
        var g = CliRunner.Run("quantize", "paddleocr-cls", "-o", dir.File("g.onnx"), "--weights", "int4", "--granularity", "block:32", "--symmetric",
            "--method", "gptq", "--calibration", cal, "--json");
        Assert.True(g.ExitCode == 0, g.Stderr);
        using (var doc = JsonDocument.Parse(g.Stdout))
        {
            Assert.Equal("gptq", doc.RootElement.GetProperty("method").GetString());
            Assert.True(doc.RootElement.GetProperty("outputBytes").GetInt64() < doc.RootElement.GetProperty("inputBytes").GetInt64() / 2);
        }
        var s = CliRunner.Run("quantize", "paddleocr-cls", "-o", dir.File("s.onnx"), "--activations", "uint8", "--calibration", cal, "--calibrator", "entropy", "--json");
        Assert.True(s.ExitCode == 0, s.Stderr);
        // A handful of samples cannot settle the ranges: the calibrator says so instead of staying silent.
        Assert.Contains("warning:", s.Stderr);
        var m = OnDevice.Formats.Onnx.OnnxReader.Read(dir.File("s.onnx"));
        var activationQ = m.Graph.Nodes.Where(n => n.OpType == "QuantizeLinear").ToList();
        Assert.NotEmpty(activationQ);
        Assert.All(activationQ, n => Assert.False(m.Graph.Initializers.ContainsKey(n.Inputs[0]), $"{n.Name} quantizes a constant, not an activation"));
    }

    [Fact]
    public void Quantize_GptqOptions_SequentialClipSearchActOrderDamp()
    {
        using var dir = new TempDir();
        var cal = ClsCalibration(dir);
        var g = CliRunner.Run("quantize", "paddleocr-cls", "-o", dir.File("g.onnx"), "--weights", "int4", "--granularity", "block:32",
            "--method", "gptq", "--gptq-sequential", "--gptq-clip-search", "--gptq-act-order", "--gptq-damp", "0.05", "--calibration", cal, "--json");
        Assert.True(g.ExitCode == 0, g.Stderr);
        using (var doc = JsonDocument.Parse(g.Stdout))
        {
            Assert.Equal("gptq", doc.RootElement.GetProperty("method").GetString());
            Assert.Equal(54, doc.RootElement.GetProperty("layers").GetArrayLength()); // 53 Conv + the MatMul
        }
        var m = OnDevice.Formats.Onnx.OnnxReader.Read(dir.File("g.onnx"));
        Assert.Contains(m.Graph.Nodes, n => n.OpType == "DequantizeLinear");
        foreach (var args in new[] { new[] { "--gptq-act-order" }, new[] { "--gptq-damp", "0.1" }, new[] { "--gptq-sequential" } })
        {
            var bad = CliRunner.Run(new[] { "quantize", "paddleocr-cls", "-o", dir.File("b.onnx"), "--weights", "int4" }.Concat(args).ToArray());
            Assert.Equal(1, bad.ExitCode);
            Assert.Contains("need --method gptq", bad.Stderr);
        }
        var damp = CliRunner.Run("quantize", "paddleocr-cls", "-o", dir.File("b.onnx"), "--method", "gptq", "--calibration", cal, "--gptq-damp", "20");
        Assert.Equal(1, damp.ExitCode);
        Assert.Contains("--gptq-damp must be in [0, 10]", damp.Stderr);
        Assert.False(File.Exists(dir.File("b.onnx")));
    }

    [Fact]
    public void Quantize_GptqOutputAware_WithBiasCorrection_AndItsBadInput()
    {
        using var dir = new TempDir();
        var cal = ClsCalibration(dir);
        var g = CliRunner.Run("quantize", "paddleocr-cls", "-o", dir.File("g.onnx"), "--weights", "int4", "--granularity", "block:32",
            "--method", "gptq", "--gptq-output-aware", "--gptq-bias-correction", "--gptq-layers-per-pass", "4", "--gptq-clip-search", "--calibration", cal, "--json");
        Assert.True(g.ExitCode == 0, g.Stderr);
        using (var doc = JsonDocument.Parse(g.Stdout))
        {
            var layers = doc.RootElement.GetProperty("layers").EnumerateArray().ToList();
            Assert.Equal(54, layers.Count);
            Assert.Contains(layers, l => l.GetProperty("note").GetString() is { } n && n.Contains("bias corrected"));
            // RTN versus GPTQ per layer, measured against the float model's layer output: never worse than RTN.
            var gptq = doc.RootElement.GetProperty("gptq").EnumerateArray().ToList();
            Assert.Equal(54, gptq.Count);
            Assert.All(gptq, l => Assert.True(l.GetProperty("gptqError").GetDouble() <= l.GetProperty("rtnError").GetDouble() * (1 + 1e-9), l.ToString()));
            Assert.True(gptq.Sum(l => l.GetProperty("gptqError").GetDouble()) < 0.9 * gptq.Sum(l => l.GetProperty("rtnError").GetDouble()));
        }
        var m = OnDevice.Formats.Onnx.OnnxReader.Read(dir.File("g.onnx"));
        Assert.Contains(m.Graph.Nodes, n => n.OpType == "DequantizeLinear");
        foreach (var args in new[] { new[] { "--gptq-output-aware" }, new[] { "--gptq-bias-correction" }, new[] { "--gptq-layers-per-pass", "2" } })
        {
            var bad = CliRunner.Run(new[] { "quantize", "paddleocr-cls", "-o", dir.File("b.onnx"), "--weights", "int4" }.Concat(args).ToArray());
            Assert.Equal(1, bad.ExitCode);
            Assert.Contains("need --method gptq", bad.Stderr);
        }
        var lpp = CliRunner.Run("quantize", "paddleocr-cls", "-o", dir.File("b.onnx"), "--method", "gptq", "--calibration", cal, "--gptq-layers-per-pass", "2");
        Assert.Equal(1, lpp.ExitCode);
        Assert.Contains("--gptq-layers-per-pass needs --gptq-sequential or --gptq-output-aware", lpp.Stderr);
        var zero = CliRunner.Run("quantize", "paddleocr-cls", "-o", dir.File("b.onnx"), "--method", "gptq", "--calibration", cal, "--gptq-output-aware", "--gptq-layers-per-pass", "0");
        Assert.Equal(1, zero.ExitCode);
        Assert.Contains("--gptq-layers-per-pass must be 1 or more", zero.Stderr);
        Assert.False(File.Exists(dir.File("b.onnx")));
    }

    [Fact]
    public void Quantize_ActivationsPlacement_Equalize_FoldsAndQuantizesChainEnds()
    {
        using var dir = new TempDir();
        var cal = ClsCalibration(dir);
        var r = CliRunner.Run("quantize", "paddleocr-cls", "-o", dir.File("a.onnx"), "--activations", "int8", "--calibration", cal, "--calibrator", "percentile",
            "--qdq-placement", "activations", "--equalize", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using (var doc = JsonDocument.Parse(r.Stdout))
        {
            var notes = doc.RootElement.GetProperty("notes").EnumerateArray().Select(n => n.GetString()!).ToList();
            Assert.Contains(notes, n => n.StartsWith("folded ", StringComparison.Ordinal));
        }
        var m = OnDevice.Formats.Onnx.OnnxReader.Read(dir.File("a.onnx"));
        Assert.DoesNotContain(m.Graph.Nodes, n => n.OpType == "BatchNormalization");
        // No conv output is rounded directly when an element-wise op follows it: the Q sits after the chain.
        var index = new GraphIndex(m.Graph);
        foreach (var conv in m.Graph.Nodes.Where(n => n.OpType == "Conv"))
        {
            var uses = index.Consumers(conv.Outputs[0]);
            if (uses.Count == 1 && uses[0].Node.OpType == "QuantizeLinear") continue;
            Assert.DoesNotContain(uses, u => u.Node.OpType == "QuantizeLinear");
        }
        Assert.Contains(m.Graph.Nodes, n => n.OpType == "QuantizeLinear" && index.Producer(n.Inputs[0])?.OpType is "Add" or "Mul" or "HardSigmoid" or "Relu" or "Clip" or "Div");
        foreach (var (expected, args) in new[]
        {
            ("--qdq-placement must be ops or activations", new[] { "--qdq-placement", "after" }),
            ("--fold must be on, off or auto", new[] { "--fold", "maybe" }),
            ("--equalize needs --calibration", new[] { "--equalize" }),
        })
        {
            var bad = CliRunner.Run(new[] { "quantize", "paddleocr-cls", "-o", dir.File("b.onnx") }.Concat(args).ToArray());
            Assert.Equal(1, bad.ExitCode);
            Assert.Contains(expected, bad.Stderr);
            Assert.False(File.Exists(dir.File("b.onnx")));
        }
    }

    [Fact]
    public void Quantize_KeepSensitive_ListsTheKeptActivations_AndLeavesThemFloat()
    {
        using var dir = new TempDir();
        var cal = ClsCalibration(dir);
        var r = CliRunner.Run("quantize", "paddleocr-cls", "-o", dir.File("k.onnx"), "--activations", "int8", "--calibration", cal, "--calibrator", "percentile",
            "--keep-sensitive", "3", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        var kept = doc.RootElement.GetProperty("keptAtHigherPrecision").EnumerateArray().ToList();
        Assert.Equal(3, kept.Count);
        Assert.Equal([1, 2, 3], kept.Select(k => k.GetProperty("rank").GetInt32()));
        var ranking = doc.RootElement.GetProperty("sensitivityRanking").EnumerateArray().ToList();
        Assert.True(ranking.Count > 3);
        var m = OnDevice.Formats.Onnx.OnnxReader.Read(dir.File("k.onnx"));
        foreach (var k in kept)
        {
            Assert.Equal("activation", k.GetProperty("kind").GetString());
            string name = k.GetProperty("name").GetString()!;
            Assert.DoesNotContain(m.Graph.Nodes, n => n.OpType == "QuantizeLinear" && n.Inputs[0] == name);
        }
        Assert.Contains(m.Graph.Nodes, n => n.OpType == "QuantizeLinear" && n.Inputs[0] == ranking[^1].GetProperty("name").GetString());
        var bad = CliRunner.Run("quantize", "paddleocr-cls", "-o", dir.File("b.onnx"), "--keep-sensitive", "2");
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("--keep-sensitive needs --calibration", bad.Stderr);
        Assert.False(File.Exists(dir.File("b.onnx")));
    }

    [Fact]
    public void Palettize_And_Prune_ReportSparsityAndSize()
    {
        using var dir = new TempDir();
        var p = CliRunner.Run("palettize", "openwakeword-hello-deepa", "-o", dir.File("p.onnx"), "--bits", "4", "--json");
        Assert.True(p.ExitCode == 0, p.Stderr);
        using (var doc = JsonDocument.Parse(p.Stdout))
        {
            Assert.True(doc.RootElement.GetProperty("ratio").GetDouble() > 5);
            Assert.All(doc.RootElement.GetProperty("layers").EnumerateArray(), l => Assert.Equal("pal4", l.GetProperty("scheme").GetString()));
        }
        var q = CliRunner.Run("prune", "openwakeword-hello-deepa", "-o", dir.File("s.onnx"), "--sparsity", "50%", "--pattern", "2:4", "--json");
        Assert.True(q.ExitCode == 0, q.Stderr);
        using (var doc = JsonDocument.Parse(q.Stdout))
        {
            Assert.All(doc.RootElement.GetProperty("layers").EnumerateArray(), l => Assert.StartsWith("2:4 50", l.GetProperty("scheme").GetString()));
            Assert.Contains(doc.RootElement.GetProperty("notes").EnumerateArray(), n => n.GetString()!.Contains("stored densely"));
        }
    }

    [Fact]
    public void BadInput_FailsBeforeWork_WithoutAnOutputFile()
    {
        using var dir = new TempDir();
        var outFile = dir.File("q.onnx");
        void Fails(string expected, params string[] args)
        {
            var r = CliRunner.Run(args);
            Assert.True(r.ExitCode == 1, $"{string.Join(' ', args)}: exit {r.ExitCode}: {r.Stderr}");
            Assert.Contains(expected, r.Stderr);
            Assert.False(File.Exists(outFile), $"{string.Join(' ', args)} left {outFile}");
            Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp", SearchOption.AllDirectories));
        }
        Fails("does not exist", "quantize", "paddleocr-cls", "-o", outFile, "--calibration", dir.File("missing"));
        Directory.CreateDirectory(dir.File("empty"));
        Fails("is empty", "quantize", "paddleocr-cls", "-o", outFile, "--calibration", dir.File("empty"));
        Directory.CreateDirectory(dir.File("wrong"));
        NpyFile.Write(dir.File("wrong/a.npy"), Tensor.Zeros(DType.Float32, [1, 4, 48, 192]));
        Fails("the model expects", "quantize", "paddleocr-cls", "-o", outFile, "--calibration", dir.File("wrong"));
        File.WriteAllText(dir.File("blocker"), "");
        var r = CliRunner.Run("quantize", "paddleocr-cls", "-o", Path.Combine(dir.File("blocker"), "q.onnx"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("cannot be written", r.Stderr);
        Fails("needs --calibration", "quantize", "paddleocr-cls", "-o", outFile, "--method", "gptq");
        Fails("--calibrator must be", "quantize", "paddleocr-cls", "-o", outFile, "--activations", "int8", "--calibration", ClsCalibration(dir), "--calibrator", "kl");
        Fails("block:N", "quantize", "paddleocr-cls", "-o", outFile, "--granularity", "block:48");
        Fails("cannot meet --max-size", "quantize", "paddleocr-cls", "-o", outFile, "--max-size", "10KB");
        Fails("--bits", "palettize", "paddleocr-cls", "-o", outFile, "--bits", "9");
        Fails("--sparsity 0.5", "prune", "paddleocr-cls", "-o", outFile, "--sparsity", "0.3", "--pattern", "2:4");
    }
}
