using System.Diagnostics;
using System.Text.Json;
using OnDevice.TestSupport;

namespace OnDevice.Evaluation.Tests;

/// <summary>Runs the real <c>ondevice</c> executable built next to the tests.</summary>
internal static class Ondevice
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    public static Result Run(params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "ondevice.dll");
        Assert.True(File.Exists(dll), $"ondevice.dll not found next to the tests ({dll})");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(TimeSpan.FromMinutes(5))) { p.Kill(true); Assert.Fail($"ondevice {string.Join(' ', args)} timed out"); }
        return new Result(p.ExitCode, output, err.Result);
    }
}

public class CliTests
{
    private static TempDir GenerationSet(int n, Func<int, string> b)
    {
        var dir = new TempDir();
        File.WriteAllLines(dir.File("labels.tsv"), ["text\tlabel\tkind", .. Enumerable.Range(0, n).Select(i => $"q{i}\tanswer {i} is here\t{(i % 3 == 0 ? "x" : "y")}")]);
        File.WriteAllLines(dir.File("a.txt"), Enumerable.Range(0, n).Select(i => $"answer {i} is here"));
        File.WriteAllLines(dir.File("b.txt"), Enumerable.Range(0, n).Select(b));
        return dir;
    }

    [Fact]
    public void Compare_Json_HasTheDocumentedKeys_AndIsReproducible()
    {
        using var dir = GenerationSet(60, i => i % 7 == 0 ? "answer wrong" : $"answer {i} is here");
        string[] args = ["compare", dir.File("a.txt"), dir.File("b.txt"), "--data", dir.Path, "--task", "generation", "--margin", "0.02", "--bootstrap", "400", "--seed", "9", "--slice-by", "kind", "--json"];
        var r = Ondevice.Run(args);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var root = JsonDocument.Parse(r.Stdout).RootElement;
        foreach (var key in new[] { "metric", "a", "b", "delta", "ciLow", "ciHigh", "mcnemarP", "verdict", "slices" })
            Assert.True(root.TryGetProperty(key, out _), $"missing key {key}");
        Assert.Equal("rougeL", root.GetProperty("metric").GetString());
        Assert.True(root.GetProperty("delta").GetDouble() < 0);
        Assert.True(root.GetProperty("ciLow").GetDouble() <= root.GetProperty("delta").GetDouble());
        Assert.Equal(2, root.GetProperty("slices").GetArrayLength());
        Assert.Equal(2 * Math.Pow(0.5, 9), root.GetProperty("mcnemarP").GetDouble(), 12); // 9 lines only A got right
        var again = JsonDocument.Parse(Ondevice.Run(args).Stdout).RootElement;
        Assert.Equal(root.GetProperty("ciLow").GetDouble(), again.GetProperty("ciLow").GetDouble());
        Assert.Equal(root.GetProperty("ciHigh").GetDouble(), again.GetProperty("ciHigh").GetDouble());
    }

    [Fact]
    public void Eval_Json_AndLimit()
    {
        using var dir = GenerationSet(30, i => $"answer {i} is here");
        var r = Ondevice.Run("eval", dir.File("b.txt"), "--data", dir.Path, "--task", "generation", "--limit", "10", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var root = JsonDocument.Parse(r.Stdout).RootElement;
        Assert.Equal(10, root.GetProperty("examples").GetInt32());
        Assert.Equal(1.0, root.GetProperty("value").GetDouble());
        Assert.Equal(10, root.GetProperty("perExample").GetArrayLength());
    }

    [Fact]
    public void BadInput_GivesOneClearLine_BeforeAnyWork()
    {
        using var dir = GenerationSet(5, i => $"answer {i} is here");
        File.WriteAllLines(dir.File("short.txt"), ["one", "two"]);
        void Fails(string expected, params string[] args)
        {
            var r = Ondevice.Run(args);
            Assert.True(r.ExitCode == 1, $"exit {r.ExitCode}: {r.Stderr}");
            Assert.Contains(expected, r.Stderr);
            Assert.DoesNotContain("   at ", r.Stderr);
            Assert.Equal("", r.Stdout);
        }
        Fails("has 2 predictions, the dataset has 5", "compare", dir.File("a.txt"), dir.File("short.txt"), "--data", dir.Path, "--task", "generation");
        Fails("unknown task 'ocr'", "eval", dir.File("a.txt"), "--data", dir.Path, "--task", "ocr");
        Fails("--slice-by 'font': no example has that field; fields: kind", "eval", dir.File("a.txt"), "--data", dir.Path, "--task", "generation", "--slice-by", "font");
        Fails("--margin must be ≥ 0", "compare", dir.File("a.txt"), dir.File("b.txt"), "--data", dir.Path, "--task", "generation", "--margin", "-1");

        using var empty = new TempDir();
        Fails("is empty", "eval", dir.File("a.txt"), "--data", empty.Path, "--task", "generation");
        File.WriteAllText(empty.File("labels.tsv"), "file\tlabel\nline1.png\thello\n");
        Fails("names 1 missing input file(s), e.g. 'line1.png'", "eval", "paddleocr-rec", "--data", empty.Path, "--task", "ctc");
    }

    [Fact]
    public void CtcDictionary_NotFittingTheModelOutput_FailsBeforeWork()
    {
        using var dir = new TempDir();
        File.Copy(Path.Combine(AppContext.BaseDirectory, "ondevice.dll"), dir.File("ignored.png")); // never decoded: the check comes first
        File.WriteAllText(dir.File("labels.tsv"), "file\tlabel\nignored.png\tx\n");
        File.WriteAllLines(dir.File("keys.txt"), ["a", "b"]);
        var r = Ondevice.Run("eval", "paddleocr-rec", "--data", dir.Path, "--task", "ctc", "--dict", dir.File("keys.txt"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("--dict gives 4 classes (blank + 2 lines + space), but output 'softmax_11.tmp_0' has 6625 classes", r.Stderr);
    }
}

[Trait("Category", "Ocr")]
[Collection("textlines")]
public class CompareCliOcrTests(TextLineFixture lines)
{
    [Fact]
    public void Compare_Recognizers_WritesReportAndJson_WithTheSamplesDictionaryByDefault()
    {
        if (!Magick.Require()) return;
        var report = lines.Scratch("cli-report.html");
        var r = Ondevice.Run("compare", "paddleocr-rec", lines.Perturbed(8), "--data", lines.Clean, "--task", "ctc", "--limit", "6",
            "--slice-by", "script", "--margin", "0.01", "--bootstrap", "200", "--latency-runs", "3", "--warmup", "1", "--report", report, "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var root = JsonDocument.Parse(r.Stdout).RootElement;
        Assert.Equal("cer", root.GetProperty("metric").GetString());
        Assert.Equal(6, root.GetProperty("examples").GetInt32());
        Assert.True(root.GetProperty("a").GetDouble() < 0.1);
        Assert.True(root.TryGetProperty("mcnemarP", out _));
        Assert.True(root.GetProperty("latencyA").GetProperty("p50Ms").GetDouble() > 0);
        Assert.Contains("<svg class=\"chart\" id=\"latency-chart\"", File.ReadAllText(report));
    }
}
