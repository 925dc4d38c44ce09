namespace OnDevice.Runtime.Llm;

/// <summary>How the next token is chosen from the logits.</summary>
/// <param name="Temperature">0: greedy (argmax); otherwise softmax(logits / T).</param>
/// <param name="TopK">Keep the K most likely tokens (0: all).</param>
/// <param name="TopP">Keep the smallest set of most likely tokens whose probability reaches P (1: all).</param>
/// <param name="RepetitionPenalty">Logits of tokens already in the sequence are divided (if positive) or multiplied (if negative) by this (1: none).</param>
/// <param name="Seed">Seed of the random generator; the same seed gives the same tokens.</param>
public sealed record SamplingOptions(float Temperature = 0f, int TopK = 0, float TopP = 1f, float RepetitionPenalty = 1f, ulong Seed = 42)
{
    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> for values outside their ranges.</summary>
    public SamplingOptions Validate()
    {
        if (!(Temperature >= 0) || float.IsInfinity(Temperature)) throw new ArgumentOutOfRangeException(nameof(Temperature), $"temperature must be ≥ 0, got {Temperature}");
        if (TopK < 0) throw new ArgumentOutOfRangeException(nameof(TopK), $"top-k must be ≥ 0, got {TopK}");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentOutOfRangeException(nameof(TopP), $"top-p must be in (0, 1], got {TopP}");
        if (!(RepetitionPenalty > 0) || float.IsInfinity(RepetitionPenalty)) throw new ArgumentOutOfRangeException(nameof(RepetitionPenalty), $"repetition penalty must be > 0, got {RepetitionPenalty}");
        return this;
    }

    /// <summary>True when the choice is the argmax.</summary>
    public bool Greedy => Temperature == 0;
}

/// <summary>
/// Turns logits into the next token: repetition penalty, then greedy argmax (first maximum wins) or a draw from
/// softmax(logits/T) restricted to top-k and top-p. Draws use xorshift64* seeded by the options, so a seed
/// reproduces a run.
/// </summary>
public sealed class Sampler
{
    private ulong _state;

    /// <summary>Options.</summary>
    public SamplingOptions Options { get; }

    /// <summary>Creates a sampler.</summary>
    public Sampler(SamplingOptions options)
    {
        Options = options.Validate();
        _state = options.Seed == 0 ? 0x9E3779B97F4A7C15UL : options.Seed;
    }

    /// <summary>A uniform float in [0, 1).</summary>
    public float NextFloat()
    {
        _state ^= _state >> 12;
        _state ^= _state << 25;
        _state ^= _state >> 27;
        uint u = (uint)((_state * 0x2545F4914F6CDD1DUL) >> 32);
        return (u >> 8) / 16777216.0f;
    }

    /// <summary>The index of the largest value (the first on ties).</summary>
    public static int ArgMax(ReadOnlySpan<float> v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    /// <summary>
    /// The distribution the next token is drawn from: one-hot on the argmax when greedy, else the tempered, truncated
    /// and renormalized softmax. <paramref name="history"/> feeds the repetition penalty.
    /// </summary>
    public float[] Distribution(ReadOnlySpan<float> logits, ReadOnlySpan<int> history)
    {
        var l = logits.ToArray();
        if (Options.RepetitionPenalty != 1f)
        {
            var seen = new HashSet<int>();
            foreach (var t in history)
                if ((uint)t < (uint)l.Length && seen.Add(t)) l[t] = l[t] > 0 ? l[t] / Options.RepetitionPenalty : l[t] * Options.RepetitionPenalty;
        }
        var p = new float[l.Length];
        if (Options.Greedy) { p[ArgMax(l)] = 1; return p; }
        float max = l.Max(), sum = 0;
        for (int i = 0; i < l.Length; i++) { p[i] = MathF.Exp((l[i] - max) / Options.Temperature); sum += p[i]; }
        for (int i = 0; i < l.Length; i++) p[i] /= sum;
        if (Options.TopK > 0 && Options.TopK < p.Length || Options.TopP < 1)
        {
            var order = Enumerable.Range(0, p.Length).OrderByDescending(i => p[i]).ThenBy(i => i).ToArray();
            int keep = Options.TopK > 0 ? Math.Min(Options.TopK, p.Length) : p.Length;
            if (Options.TopP < 1)
            {
                float cum = 0;
                for (int j = 0; j < keep; j++) { cum += p[order[j]]; if (cum >= Options.TopP) { keep = j + 1; break; } }
            }
            for (int j = keep; j < order.Length; j++) p[order[j]] = 0;
            float s = 0;
            foreach (var v in p) s += v;
            for (int i = 0; i < p.Length; i++) p[i] /= s;
        }
        return p;
    }

    /// <summary>Draws an index from the probabilities <paramref name="p"/> (argmax when exactly one-hot).</summary>
    public int Draw(ReadOnlySpan<float> p)
    {
        float r = NextFloat(), cdf = 0;
        int last = 0;
        for (int i = 0; i < p.Length; i++)
        {
            if (p[i] <= 0) continue;
            cdf += p[i];
            last = i;
            if (r < cdf) return i;
        }
        return last;
    }

    /// <summary>The next token for <paramref name="logits"/> after <paramref name="history"/>.</summary>
    public int Next(ReadOnlySpan<float> logits, ReadOnlySpan<int> history)
    {
        if (Options.Greedy && Options.RepetitionPenalty == 1f) return ArgMax(logits);
        var p = Distribution(logits, history);
        return Options.Greedy ? ArgMax(p) : Draw(p);
    }
}
