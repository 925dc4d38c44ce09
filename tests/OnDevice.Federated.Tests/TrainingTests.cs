using OnDevice.Federated.Privacy;
using OnDevice.Federated.Simulation;
using OnDevice.Federated.Training;

namespace OnDevice.Federated.Tests;

public class TrainingTests
{
    private static Dataset Synthetic(int n, int d, int classes, int seed)
    {
        // Gaussian blobs: class c centred at a random mean
        var rng = new Random(seed);
        var means = Enumerable.Range(0, classes).Select(_ => Enumerable.Range(0, d).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray()).ToArray();
        var f = new float[n * d];
        var l = new int[n];
        for (int i = 0; i < n; i++)
        {
            l[i] = rng.Next(classes);
            for (int j = 0; j < d; j++) f[i * d + j] = means[l[i]][j] + (float)(0.5 * (rng.NextDouble() - 0.5));
        }
        return new Dataset(f, l, d, classes);
    }

    [Fact]
    public void Simd_dot_and_axpy_agree_with_scalar_twins()
    {
        var rng = new Random(3);
        foreach (var n in new[] { 1, 7, 8, 33, 785 })
        {
            var a = Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
            var b = Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
            Assert.Equal(VectorMath.DotScalar(a, b), VectorMath.Dot(a, b), 1e-4f);
            var y1 = (float[])b.Clone();
            var y2 = (float[])b.Clone();
            VectorMath.Axpy(a, 0.37f, y1);
            VectorMath.AxpyScalar(a, 0.37f, y2);
            for (int i = 0; i < n; i++) Assert.Equal(y2[i], y1[i], 1e-6f);
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(6)]
    public void Per_example_norm_equals_the_materialised_gradient_norm_and_matches_finite_differences(int hidden)
    {
        var data = Synthetic(5, 9, 4, 1);
        var head = new Head(9, 4, hidden, seed: 2);
        var rng = new Random(4);
        for (int i = 0; i < head.Parameters.Length; i++) head.Parameters[i] += (float)(0.3 * (rng.NextDouble() - 0.5));
        var s = head.NewScratch();
        for (int e = 0; e < data.Count; e++)
        {
            var g = new float[head.Parameters.Length];
            var (norm, loss) = head.AccumulateGradient(data.Features(e), data.Labels[e], g, 0, 1f, s);
            Assert.Equal(VectorMath.Norm(g), norm, 1e-4 * Math.Max(1, norm));
            // finite differences of the loss on a few coordinates
            foreach (var k in new[] { 0, 5, head.Parameters.Length / 2, head.Parameters.Length - 1 })
            {
                var old = head.Parameters[k];
                head.Parameters[k] = old + 1e-2f;
                var lp = head.AccumulateGradient(data.Features(e), data.Labels[e], new float[g.Length], 0, 1f, s).Loss;
                head.Parameters[k] = old - 1e-2f;
                var lm = head.AccumulateGradient(data.Features(e), data.Labels[e], new float[g.Length], 0, 1f, s).Loss;
                head.Parameters[k] = old;
                Assert.Equal((lp - lm) / 2e-2, g[k], 2e-3);
            }
            // clipping bounds the contribution exactly at the clip norm
            var gc = new float[g.Length];
            head.AccumulateGradient(data.Features(e), data.Labels[e], gc, 0.1, 1f, s);
            Assert.Equal(Math.Min(0.1, norm), VectorMath.Norm(gc), 1e-5);
        }
    }

    [Fact]
    public void Secure_random_gaussian_has_unit_variance_and_zero_mean()
    {
        var r = new SecureRandom();
        const int n = 200_000;
        double s = 0, s2 = 0;
        for (int i = 0; i < n; i++) { var x = r.NextGaussian(); s += x; s2 += x * x; }
        Assert.True(Math.Abs(s / n) < 5 / Math.Sqrt(n));
        Assert.True(Math.Abs(s2 / n - 1) < 0.02);
    }

    [Theory]
    [InlineData(OptimizerKind.Sgd, 0)]
    [InlineData(OptimizerKind.Adam, 0)]
    [InlineData(OptimizerKind.Sgd, 16)]
    public void Local_training_learns_separable_blobs(OptimizerKind opt, int hidden)
    {
        var train = Synthetic(600, 20, 5, 7);
        var head = new Head(20, 5, hidden, 1);
        var before = head.Accuracy(train);
        LocalTrainer.Train(head, train, new LocalTrainingOptions { Epochs = 5, LearningRate = opt == OptimizerKind.Adam ? 0.01 : 0.1, BatchSize = 16, Optimizer = opt });
        Assert.True(head.Accuracy(train) > 0.95, $"accuracy {head.Accuracy(train)} (before {before})");
    }

    [Fact]
    public void Dp_sgd_learns_with_moderate_noise_and_reports_the_accountants_epsilon()
    {
        var train = Synthetic(2000, 20, 5, 8);
        var head = new Head(20, 5);
        var o = new LocalTrainingOptions { Epochs = 3, LearningRate = 0.5, Dp = new DpSgdOptions(1.0, 1.0, 0.05) };
        var rep = LocalTrainer.Train(head, train, o);
        Assert.Equal(60, rep.Steps); // ⌈3 / 0.05⌉
        Assert.InRange(rep.Examples, 0.85 * 6000, 1.15 * 6000); // Poisson batches: q·N per step on average
        Assert.True(head.Accuracy(train) > 0.9, $"accuracy {head.Accuracy(train)}");
        Assert.Equal(RdpAccountant.Epsilon(1.0, 0.05, 60, 1e-5).Epsilon, LocalTrainer.Epsilon(o, 1e-5).Epsilon);
    }

    [Fact]
    public void Dp_sgd_with_huge_noise_does_not_learn()
    {
        // the noise really is added: σ = 1000 destroys the signal
        var train = Synthetic(1000, 20, 5, 9);
        var head = new Head(20, 5);
        LocalTrainer.Train(head, train, new LocalTrainingOptions { Epochs = 2, LearningRate = 0.5, Dp = new DpSgdOptions(1.0, 1000, 0.05) });
        Assert.True(head.Accuracy(train) < 0.6, $"accuracy {head.Accuracy(train)}");
    }

    [Fact]
    public void Quantizer_round_trips_sums_of_clipped_updates()
    {
        var q = new UpdateQuantizer(32, 50, 1.0);
        var rng = new SecureRandom();
        var r = new Random(2);
        var updates = Enumerable.Range(0, 50).Select(_ => Enumerable.Range(0, 100).Select(_ => (float)(r.NextDouble() * 2 - 1) * 0.1f).ToArray()).ToList();
        var sum = new ulong[100];
        foreach (var u in updates)
        {
            var e = q.Encode(u, rng);
            for (int i = 0; i < 100; i++) sum[i] = (sum[i] + e[i]) & 0xFFFFFFFF;
        }
        var dec = q.Decode(sum);
        for (int i = 0; i < 100; i++) Assert.Equal(updates.Sum(u => (double)u[i]), dec[i], 1e-5);
    }

    [Fact]
    public void Ledger_refuses_beyond_budget_and_persists()
    {
        using var dir = new OnDevice.TestSupport.TempDir();
        var path = Path.Combine(dir.Path, "ledger.json");
        var ledger = new PrivacyLedger(8.0, 1e-5, path);
        int rounds = 0;
        while (ledger.TryCharge("m", "run1", 0.1, 1.0)) rounds++; // one round alone costs ε ≈ 2.3 (RDP is loose for few steps)
        Assert.InRange(rounds, 1, 10_000);
        Assert.True(ledger.Spent <= 8.0);
        Assert.True(RdpAccountant.Epsilon(1.0, 0.1, rounds + 1, 1e-5).Epsilon > 8.0);
        Assert.Equal(RdpAccountant.Epsilon(1.0, 0.1, rounds, 1e-5).Epsilon, ledger.Spent, 1e-9);
        Assert.Single(ledger.Entries);
        var again = new PrivacyLedger(8.0, 1e-5, path);
        Assert.Equal(ledger.Spent, again.Spent, 1e-12);
        Assert.False(again.TryCharge("other-model", "run2", 0.1, 1.0)); // budget spans models
        Assert.Throws<FederatedException>(() => new PrivacyLedger(3.0, 1e-5, path));
        Assert.InRange(rounds, 2, 10_000);
    }
}
