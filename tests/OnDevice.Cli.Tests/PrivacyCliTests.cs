using System.Text.Json;

namespace OnDevice.Cli.Tests;

public class PrivacyCliTests
{
    [Fact]
    public void Epsilon_json_reports_the_tutorial_figure()
    {
        var r = CliRunner.Run("privacy", "epsilon", "--noise", "1.1", "--rate", (256.0 / 60000).ToString("R", System.Globalization.CultureInfo.InvariantCulture),
            "--steps", "14063", "--delta", "1e-5", "--conversion", "classic", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.Equal(3.01, doc.RootElement.GetProperty("epsilon").GetDouble(), 0.006);
        Assert.True(doc.RootElement.GetProperty("order").GetDouble() > 1);
    }

    [Fact]
    public void Noise_calibrates_sigma_and_bad_input_fails_cleanly()
    {
        var r = CliRunner.Run("privacy", "noise", "--epsilon", "1", "--rate", "1", "--steps", "1", "--delta", "1e-6", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.Equal(4.53, doc.RootElement.GetProperty("noise").GetDouble(), 0.02);
        var bad = CliRunner.Run("privacy", "epsilon", "--noise", "1", "--rate", "2", "--steps", "10", "--delta", "1e-5");
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("sampling rate", bad.Stderr);
    }
}
