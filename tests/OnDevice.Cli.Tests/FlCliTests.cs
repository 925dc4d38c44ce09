using System.Text.Json;
using OnDevice.Federated.Data;
using OnDevice.Federated.Privacy;
using OnDevice.Federated.Server;
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
    public async Task Simulate_against_a_real_server_runs_devices_in_separate_processes()
    {
        if (!FashionMnist.IsAvailable())
        {
            if (RepoPaths.IsCi) Assert.Fail($"Fashion-MNIST missing in {FashionMnist.DebianFolder}");
            Console.WriteLine($"SKIPPED (data missing): {FashionMnist.DebianFolder}");
            return;
        }
        using var dir = new TempDir();
        await using var app = await FederatedServerApp.BuildAsync("sqlite:" + Path.Combine(dir.Path, "fl.db"), "http://127.0.0.1:0");
        await app.StartAsync();
        var url = app.Urls.First();
        var r = await Task.Run(() => CliRunner.Run("fl", "simulate", "--server-url", url, "--processes", "2", "--users", "12", "--examples-per-user", "150",
            "--rounds", "3", "--client-rate", "1", "--clip", "1", "--json"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        var root = doc.RootElement;
        Assert.Equal("finished", root.GetProperty("state").GetString());
        var rounds = root.GetProperty("rounds");
        Assert.Equal(3, rounds.GetArrayLength());
        Assert.All(rounds.EnumerateArray(), x => Assert.True(x.GetProperty("updated").GetBoolean(), x.ToString()));
        var procs = root.GetProperty("processes").EnumerateArray().ToList();
        Assert.Equal(2, procs.Count);
        Assert.Equal(["1-6", "7-12"], procs.Select(p => p.GetProperty("devices").GetString()));
        Assert.All(procs, p => Assert.Equal(0, p.GetProperty("exitCode").GetInt32()));
        Assert.All(procs, p => Assert.Equal(6, p.GetProperty("hosted").GetInt32()));
        Assert.All(procs, p => Assert.True(p.GetProperty("deviceRounds").GetInt32() >= 6, p.ToString()));
        var pids = procs.Select(p => p.GetProperty("pid").GetInt32()).ToHashSet();
        Assert.Equal(2, pids.Count);
        Assert.DoesNotContain(Environment.ProcessId, pids);
        double acc = rounds[2].GetProperty("accuracy").GetDouble();
        Assert.True(acc > 0.25, $"accuracy {acc} (chance is 0.1)");
    }

    [Fact]
    public void Simulate_rejects_noise_without_clip()
    {
        var r = CliRunner.Run("fl", "simulate", "--noise", "1", "--rounds", "1");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("clip", r.Stderr);
    }
}
