using OnDevice.Federated.Training;

namespace OnDevice.Federated.Simulation;

/// <summary>Client-side update math of (DP-)FedAvg: local training from the global head, Δ = θ_local − θ, user-level clipping.</summary>
public static class ClientUpdate
{
    /// <summary>Trains a copy of <paramref name="global"/> on <paramref name="data"/> and returns its clipped delta (clip ≤ 0: unclipped).</summary>
    public static (float[] Delta, double Norm, LocalTrainingReport Report) Compute(Head global, Dataset data, LocalTrainingOptions options, double clip, int seed, SecureRandom? rng = null)
    {
        ArgumentNullException.ThrowIfNull(global);
        var local = global.Clone();
        var report = LocalTrainer.Train(local, data, options, rng, seed);
        var delta = new float[global.Parameters.Length];
        for (int i = 0; i < delta.Length; i++) delta[i] = local.Parameters[i] - global.Parameters[i];
        var norm = VectorMath.Norm(delta);
        if (clip > 0 && norm > clip)
        {
            var f = (float)(clip / norm);
            for (int i = 0; i < delta.Length; i++) delta[i] *= f;
        }
        return (delta, norm, report);
    }
}

/// <summary>
/// Fixed-point encoding of clipped updates into Z_{2^k} for secure aggregation: entry v ↦ stochastic-round(v·scale) mod 2^k,
/// with scale = (2^{k−1} − 1)/(n·C) so that the sum of n updates of norm ≤ C cannot wrap.
/// </summary>
public sealed class UpdateQuantizer
{
    /// <summary>Encoder for up to <paramref name="clients"/> updates whose entries lie in [−clip, clip].</summary>
    public UpdateQuantizer(int bits, int clients, double clip)
    {
        if (bits < 8 || bits > 62) throw new FederatedException($"quantization bits must be 8..62, got {bits}");
        if (clients < 1 || !(clip > 0)) throw new FederatedException("quantization needs at least one client and a positive clip norm");
        Bits = bits;
        Scale = ((1L << (bits - 1)) - 1) / (clients * clip);
    }

    /// <summary>k.</summary>
    public int Bits { get; }

    /// <summary>Units per 1.0.</summary>
    public double Scale { get; }

    /// <summary>Encodes one update (unbiased stochastic rounding from <paramref name="rng"/>).</summary>
    public ulong[] Encode(ReadOnlySpan<float> update, SecureRandom rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        ulong mask = (1UL << Bits) - 1;
        var q = new ulong[update.Length];
        for (int i = 0; i < q.Length; i++)
        {
            double v = update[i] * Scale;
            double f = Math.Floor(v);
            long r = (long)f + (rng.NextDouble() < v - f ? 1 : 0);
            q[i] = (ulong)r & mask;
        }
        return q;
    }

    /// <summary>Decodes a sum (two's complement in Z_{2^k}) back to floats.</summary>
    public float[] Decode(ReadOnlySpan<ulong> sum)
    {
        var r = new float[sum.Length];
        ulong half = 1UL << (Bits - 1), mod = 1UL << Bits;
        for (int i = 0; i < r.Length; i++)
        {
            long s = sum[i] >= half ? -(long)(mod - sum[i]) : (long)sum[i];
            r[i] = (float)(s / Scale);
        }
        return r;
    }
}
