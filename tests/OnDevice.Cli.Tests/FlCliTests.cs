using System.Text.Json;
using OnDevice.Federated.Data;
using OnDevice.Federated.Privacy;
using OnDevice.TestSupport;

namespace OnDevice.Cli.Tests;

[Trait("Category", "FashionMnist")]
public class FlCliTests
{
    [Fact]
    public void Simulate_json_reports_rounds_accuracy_and_the_accountants_epsilon()
    {
        if (!FashionMnist.IsAvailable())
        {
            if (RepoPaths.IsCi) Assert.Fail($"Fashion-MNIST missing in {FashionMnist.DebianFolder}");
            Console.WriteLine($"SKIPPED (data missing): {FashionMnist.DebianFolder}");
            return;
        }
        var r = CliRunner.Run("fl", "simulate", "--users", "60", "--examples-per-user", "80", "--rounds", "4", "--client-rate", "0.5",
            "--clip", "1", "--noise", "0.5", "--secagg", "--personalize-epochs", "1", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        var root = doc.RootElement;
        Assert.Equal(4, root.GetProperty("rounds").GetArrayLength());
        Assert.Equal(RdpAccountant.Epsilon(0.5, 0.5, 4, 1e-5).Epsilon, root.GetProperty("epsilon").GetDouble(), 1e-9);
        Assert.True(root.GetProperty("accuracy").GetDouble() > 0.2);
        Assert.True(root.GetProperty("rounds")[0].GetProperty("bytesUpPerClient").GetDouble() > 4 * 7850);
        Assert.True(root.GetProperty("personalizedLocalAccuracy").GetDouble() > 0);
    }

    [Fact]
    public void Simulate_rejects_noise_without_clip()
    {
        var r = CliRunner.Run("fl", "simulate", "--noise", "1", "--rounds", "1");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("clip", r.Stderr);
    }
}
