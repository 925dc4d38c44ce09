using System.Text.Json;
using OnDevice.TestSupport;

namespace OnDevice.Cli.Tests;

public class GenerateCliTests
{
    private static string? Shared(string name) => SharedFiles.Find("models", "llama2c", name);

    [Fact]
    public void GenerateReproducesTheReferenceAsJson()
    {
        if (Shared("stories260K.bin") is not { } model || Shared("tok512.bin") is not { } tok || Shared("reference-greedy.json") is not { } refPath) return;
        using var refDoc = JsonDocument.Parse(File.ReadAllText(refPath));
        var c = refDoc.RootElement.GetProperty("cases")[1];
        var r = CliRunner.Run("generate", model, "--tokenizer", tok, "--prompt", c.GetProperty("prompt").GetString()!,
            "--steps", c.GetProperty("steps").GetInt32().ToString(), "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        var root = doc.RootElement;
        Assert.Equal(c.GetProperty("expected_text").GetString(), root.GetProperty("text").GetString());
        Assert.True(root.GetProperty("tokens").GetArrayLength() > 100);
        Assert.True(root.GetProperty("prefillTokensPerSecond").GetDouble() > 0);
        Assert.True(root.GetProperty("decodeTokensPerSecond").GetDouble() > 0);
        Assert.False(root.TryGetProperty("acceptanceRate", out _));
    }

    [Fact]
    public void SpeculativeGenerateReportsAcceptanceAndKeepsTheGreedyText()
    {
        if (Shared("stories260K.bin") is not { } model || Shared("tok512.bin") is not { } tok) return;
        var plain = CliRunner.Run("generate", model, "--tokenizer", tok, "--prompt", "The little dog", "--steps", "120", "--json");
        var spec = CliRunner.Run("generate", model, "--tokenizer", tok, "--prompt", "The little dog", "--steps", "120", "--draft-weights", "int4", "--draft-tokens", "3", "--json");
        Assert.True(spec.ExitCode == 0, spec.Stderr);
        using var a = JsonDocument.Parse(plain.Stdout);
        using var b = JsonDocument.Parse(spec.Stdout);
        Assert.Equal(a.RootElement.GetProperty("text").GetString(), b.RootElement.GetProperty("text").GetString());
        Assert.InRange(b.RootElement.GetProperty("acceptanceRate").GetDouble(), 0.05, 1.0);
    }

    [Fact]
    public void BadRequestsAreOneLineErrors()
    {
        if (Shared("stories260K.bin") is not { } model || Shared("tok512.bin") is not { } tok) return;
        var r = CliRunner.Run("generate", model, "--tokenizer", tok, "--prompt", "Once", "--steps", "600");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("context limit of 512", r.Stderr);
        r = CliRunner.Run("generate", model, "--prompt", "Once");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("--tokenizer", r.Stderr);
        r = CliRunner.Run("generate", model, "--tokenizer", tok, "--weights", "int3");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("--weights", r.Stderr);
        r = CliRunner.Run("generate", tok, "--tokenizer", tok);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("ondevice: error:", r.Stderr);
    }

    [Fact]
    public void QualityReportsKlAndTopOneAgreement()
    {
        if (Shared("stories260K.bin") is not { } model || Shared("tok512.bin") is not { } tok) return;
        var r = CliRunner.Run("llm", "quality", model, "--against", model, "--tokenizer", tok, "--weights", "int8", "--steps", "64", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        double kl = doc.RootElement.GetProperty("meanKl").GetDouble();
        Assert.InRange(kl, 1e-7, 0.01);
        Assert.InRange(doc.RootElement.GetProperty("top1Agreement").GetDouble(), 0.95, 1.0);
    }

    [Fact]
    public void SeveralPromptsAreDecodedTogetherWithTheSameTextsAsAlone()
    {
        if (Shared("stories260K.bin") is not { } model || Shared("tok512.bin") is not { } tok) return;
        var both = CliRunner.Run("generate", model, "--tokenizer", tok, "--prompt", "The little dog", "--prompt", "Once upon a time", "--steps", "60", "--json");
        Assert.True(both.ExitCode == 0, both.Stderr);
        using var doc = JsonDocument.Parse(both.Stdout);
        var results = doc.RootElement.GetProperty("results");
        Assert.Equal(2, results.GetArrayLength());
        var alone = CliRunner.Run("generate", model, "--tokenizer", tok, "--prompt", "Once upon a time", "--steps", "60", "--json");
        using var one = JsonDocument.Parse(alone.Stdout);
        Assert.Equal(one.RootElement.GetProperty("text").GetString(), results[1].GetProperty("text").GetString());
        Assert.True(doc.RootElement.GetProperty("decodeTokensPerSecond").GetDouble() > 0);
    }
}
