using OnDevice.Federated.Data;
using OnDevice.Federated.Privacy;
using OnDevice.Federated.Simulation;
using OnDevice.Federated.Training;
using OnDevice.TestSupport;

namespace OnDevice.Federated.Tests;

/// <summary>Federated runs on the real Fashion-MNIST files of Debian's dataset-fashion-mnist.</summary>
[Trait("Category", "FashionMnist")]
public class FederatedTests
{
    private static bool Available()
    {
        if (FashionMnist.IsAvailable()) return true;
        if (RepoPaths.IsCi) Assert.Fail($"Fashion-MNIST missing in {FashionMnist.DebianFolder} (scripts/setup.sh installs dataset-fashion-mnist)");
        Console.WriteLine($"SKIPPED (data missing): {FashionMnist.DebianFolder}");
        return false;
    }

    private static readonly Lazy<Dataset> Test = new(() => FashionMnist.Load(false));

    [Fact]
    public void Fashion_mnist_loads_with_the_published_sizes_and_splits_non_iid()
    {
        if (!Available()) return;
        var train = FashionMnist.Load(true);
        Assert.Equal(60000, train.Count);
        Assert.Equal(784, train.Dimension);
        Assert.Equal(10000, Test.Value.Count);
        Assert.All(Enumerable.Range(0, 10), c => Assert.Equal(6000, train.Labels.Count(l => l == c)));
        var parts = FashionMnist.SplitNonIid(train, 100, 2, 3, seed: 1);
        Assert.Equal(60000, parts.Sum(p => p.Length));
        Assert.Equal(60000, parts.SelectMany(p => p).Distinct().Count());
        Assert.All(parts, p => Assert.InRange(p.Select(i => train.Labels[i]).Distinct().Count(), 2, 3));
    }

    [Fact]
    public void Idx_reader_rejects_a_wrong_magic_number()
    {
        if (!Available()) return;
        var e = Assert.Throws<FederatedException>(() => FashionMnist.ReadIdx(Path.Combine(FashionMnist.DebianFolder, "t10k-labels-idx1-ubyte.gz"), 0x803, out _));
        Assert.Contains("magic", e.Message);
    }

    private static FashionMnistScenario Scenario(int users, int perUser = 0, double budget = 0) =>
        FashionMnistScenario.Build(users, seed: 3, examplesPerUser: perUser, deviceEpsilonBudget: budget, testExamples: 3000);

    [Theory]
    [InlineData(ServerOptimizerKind.FedAvg, 1.0)]
    [InlineData(ServerOptimizerKind.FedAdam, 0.01)]
    public void A_small_federated_run_learns_well_above_chance(ServerOptimizerKind server, double serverLr)
    {
        if (!Available()) return;
        var s = Scenario(200, perUser: 100);
        var sim = new FederatedSimulation(new Head(784, 10), s.Clients, s.Test, new FederatedOptions
        {
            Rounds = 15, ClientRate = 0.2, ServerOptimizer = server, ServerLearningRate = serverLr,
            Local = new LocalTrainingOptions { Epochs = 1, LearningRate = 0.05, BatchSize = 10 },
        });
        var reports = sim.Run();
        Assert.True(reports[^1].Accuracy > 0.6, $"final accuracy {reports[^1].Accuracy}"); // chance is 0.1
        Assert.True(reports[^1].Accuracy > reports[0].Accuracy);
        Assert.All(reports, r => Assert.Equal(4.0 * 7850, r.BytesUpPerClient));
    }

    [Fact]
    public void Dp_fedavg_with_secure_aggregation_reports_the_accountants_epsilon_and_still_learns()
    {
        if (!Available()) return;
        var s = Scenario(300, perUser: 60);
        var o = new FederatedOptions
        {
            Rounds = 8, ClientRate = 0.2, Clip = 1.0, NoiseMultiplier = 0.5, SecureAggregation = true, DropoutRate = 0.1,
            Local = new LocalTrainingOptions { Epochs = 1, LearningRate = 0.05, BatchSize = 10 },
        };
        var sim = new FederatedSimulation(new Head(784, 10), s.Clients, s.Test, o);
        var reports = sim.Run();
        var expected = RdpAccountant.Epsilon(0.5, 0.2, 8, 1e-5).Epsilon;
        Assert.Equal(expected, sim.PopulationEpsilon.Epsilon, 1e-12);
        Assert.Equal(expected, reports[^1].Epsilon, 1e-12);
        Assert.Equal(RdpAccountant.Epsilon(0.5, 0.2, 1, 1e-5).Epsilon, reports[0].Epsilon, 1e-12);
        Assert.True(reports[^1].Accuracy > 0.3, $"final accuracy {reports[^1].Accuracy}");
        Assert.Contains(reports, r => r.Dropped > 0);
        Assert.All(reports.Where(r => r.Updated), r => Assert.True(r.BytesUpPerClient > 4 * 7850 && r.SecAggClientMs > 0));
    }

    [Fact]
    public void Secure_aggregation_gives_the_same_global_model_as_a_plain_sum_without_noise()
    {
        if (!Available()) return;
        // One round, every client sampled (q = 1), no noise: the secure sum must equal the plain sum up to quantization.
        var s = Scenario(12, perUser: 50);
        var o = new FederatedOptions { Rounds = 1, ClientRate = 1, Clip = 1.0, Local = new LocalTrainingOptions { Epochs = 1, LearningRate = 0.05, BatchSize = 10 } };
        var plain = new FederatedSimulation(new Head(784, 10), s.Clients, s.Test, o);
        var secure = new FederatedSimulation(new Head(784, 10), s.Clients, s.Test, o with { SecureAggregation = true });
        plain.Run();
        secure.Run();
        double maxDiff = 0;
        for (int i = 0; i < plain.Global.Parameters.Length; i++) maxDiff = Math.Max(maxDiff, Math.Abs(plain.Global.Parameters[i] - secure.Global.Parameters[i]));
        Assert.True(maxDiff < 1e-6, $"max difference {maxDiff}");
        Assert.True(VectorMath.Norm(plain.Global.Parameters) > 0.01);
    }

    [Fact]
    public void Round_deadline_leaves_stragglers_out_and_ledgers_stop_devices_at_their_budget()
    {
        if (!Available()) return;
        var s = Scenario(100, perUser: 30, budget: 4.0);
        var o = new FederatedOptions
        {
            Rounds = 30, ClientRate = 0.2, Clip = 1.0, NoiseMultiplier = 1.0, DeadlineSeconds = 1.5, DeviceEpsilonBudget = 4.0,
            Local = new LocalTrainingOptions { Epochs = 1, LearningRate = 0.05, BatchSize = 10 },
        };
        var sim = new FederatedSimulation(new Head(784, 10), s.Clients, s.Test, o);
        var reports = sim.Run();
        Assert.Contains(reports, r => r.Stragglers > 0);
        Assert.All(reports, r => Assert.Equal(r.Sampled - r.Dropped - r.Stragglers, r.Updated ? r.Reported : r.Sampled - r.Dropped - r.Stragglers));
        // every device refuses once one more round would exceed ε = 4: all withdraw at the same round here (after 3 rounds)
        int allowed = Enumerable.Range(1, 30).Last(k => RdpAccountant.Epsilon(1.0, 0.2, k, 1e-5).Epsilon <= 4.0);
        Assert.InRange(allowed, 2, 20);
        Assert.All(s.Clients, c => Assert.True(c.Withdrawn));
        Assert.All(s.Clients, c => Assert.True(c.Ledger!.Spent <= 4.0));
        Assert.Equal(100, reports[allowed].Refused);
        Assert.All(reports.Skip(allowed), r => Assert.Equal(0, r.Sampled));
    }
}
