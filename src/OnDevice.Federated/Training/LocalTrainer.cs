using OnDevice.Federated.Privacy;

namespace OnDevice.Federated.Training;

/// <summary>Example-level DP-SGD settings: clipping norm C, noise multiplier σ (noise std σC), Poisson sampling rate q.</summary>
public sealed record DpSgdOptions(double Clip, double NoiseMultiplier, double SamplingRate);

/// <summary>On-device training settings.</summary>
public sealed record LocalTrainingOptions
{
    /// <summary>Passes over the local data (DP-SGD: steps = ⌈epochs / q⌉).</summary>
    public double Epochs { get; init; } = 1;

    /// <summary>Learning rate.</summary>
    public double LearningRate { get; init; } = 0.1;

    /// <summary>Minibatch size (non-private training).</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>SGD or Adam.</summary>
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Sgd;

    /// <summary>DP-SGD, or null for non-private training.</summary>
    public DpSgdOptions? Dp { get; init; }
}

/// <summary>What one local training run did.</summary>
/// <param name="Steps">Optimizer steps.</param>
/// <param name="Examples">Example gradients computed.</param>
/// <param name="MeanLoss">Mean loss over the computed gradients.</param>
/// <param name="ClippedFraction">Fraction of per-example gradients that were clipped (DP-SGD).</param>
public sealed record LocalTrainingReport(long Steps, long Examples, double MeanLoss, double ClippedFraction);

/// <summary>Trains a <see cref="Head"/> on cached features, optionally with DP-SGD.</summary>
public static class LocalTrainer
{
    /// <summary>Trains <paramref name="head"/> in place.</summary>
    public static LocalTrainingReport Train(Head head, Dataset data, LocalTrainingOptions options, SecureRandom? rng = null, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(head);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        if (data.Dimension != head.Inputs || data.Classes != head.Classes) throw new FederatedException($"data ({data.Dimension} features, {data.Classes} classes) does not fit the head ({head.Inputs}, {head.Classes})");
        if (!(options.Epochs > 0) || !(options.LearningRate > 0) || options.BatchSize < 1) throw new FederatedException("epochs and learning rate must be positive and the batch size at least 1");
        if (data.Count == 0) return new LocalTrainingReport(0, 0, double.NaN, 0);
        IOptimizer opt = options.Optimizer == OptimizerKind.Adam ? new Adam(head.Parameters.Length, options.LearningRate) : new Sgd(options.LearningRate);
        var grad = new float[head.Parameters.Length];
        var scratch = head.NewScratch();
        long steps = 0, examples = 0, clipped = 0;
        double lossSum = 0;
        if (options.Dp is { } dp)
        {
            if (!(dp.Clip > 0) || !(dp.NoiseMultiplier >= 0) || !(dp.SamplingRate > 0 && dp.SamplingRate <= 1))
                throw new FederatedException("DP-SGD needs a positive clip norm, a non-negative noise multiplier and a sampling rate in (0, 1]");
            rng ??= new SecureRandom();
            long total = (long)Math.Ceiling(options.Epochs / dp.SamplingRate);
            double expected = dp.SamplingRate * data.Count;
            for (long s = 0; s < total; s++)
            {
                Array.Clear(grad);
                // Poisson sampling: each example independently with probability q (what the accountant assumes)
                for (int i = 0; i < data.Count; i++)
                {
                    if (!rng.Bernoulli(dp.SamplingRate)) continue;
                    var (norm, loss) = head.AccumulateGradient(data.Features(i), data.Labels[i], grad, dp.Clip, 1f, scratch);
                    if (norm > dp.Clip) clipped++;
                    lossSum += loss;
                    examples++;
                }
                rng.AddGaussian(grad, dp.NoiseMultiplier * dp.Clip);
                VectorMath.Axpy(grad, (float)(1 / expected - 1), grad); // grad ← grad / (qN): fixed denominator
                opt.Step(head.Parameters, grad);
                steps++;
            }
        }
        else
        {
            var order = Enumerable.Range(0, data.Count).ToArray();
            var r = new Random(seed);
            int epochsWhole = (int)Math.Ceiling(options.Epochs);
            long budget = (long)Math.Round(options.Epochs * data.Count);
            for (int e = 0; e < epochsWhole && examples < budget; e++)
            {
                r.Shuffle(order);
                for (int b = 0; b < order.Length && examples < budget; b += options.BatchSize)
                {
                    Array.Clear(grad);
                    int end = Math.Min(order.Length, b + options.BatchSize);
                    for (int k = b; k < end; k++)
                    {
                        lossSum += head.AccumulateGradient(data.Features(order[k]), data.Labels[order[k]], grad, 0, 1f / (end - b), scratch).Loss;
                        examples++;
                    }
                    opt.Step(head.Parameters, grad);
                    steps++;
                }
            }
        }
        return new LocalTrainingReport(steps, examples, examples > 0 ? lossSum / examples : double.NaN, examples > 0 ? (double)clipped / examples : 0);
    }

    /// <summary>Example-level ε of a DP-SGD run with these options.</summary>
    public static PrivacyGuarantee Epsilon(LocalTrainingOptions options, double delta)
    {
        ArgumentNullException.ThrowIfNull(options);
        var dp = options.Dp ?? throw new FederatedException("not a DP-SGD configuration");
        return RdpAccountant.Epsilon(dp.NoiseMultiplier, dp.SamplingRate, (long)Math.Ceiling(options.Epochs / dp.SamplingRate), delta);
    }
}
