namespace OnDevice.Runtime.Llm;

/// <summary>Agreement of two models' next-token distributions over the same token sequences.</summary>
/// <param name="Sequences">Sequences scored.</param>
/// <param name="Positions">Positions compared.</param>
/// <param name="MeanKl">Mean KL(reference ‖ candidate) in nats.</param>
/// <param name="MaxKl">Largest KL at one position.</param>
/// <param name="Top1Agreement">Fraction of positions where both argmaxes agree.</param>
/// <param name="ReferencePerplexity">Perplexity of the reference on the sequences' next tokens.</param>
/// <param name="CandidatePerplexity">Perplexity of the candidate on the same tokens.</param>
public sealed record LlmQualityReport(int Sequences, int Positions, double MeanKl, double MaxKl, double Top1Agreement, double ReferencePerplexity, double CandidatePerplexity);

/// <summary>
/// Quantization quality as llama.cpp reports it: run the same token sequences through a reference and a candidate
/// model (teacher forcing) and compare the next-token distributions at every position: mean KL divergence and
/// same-top-token rate.
/// </summary>
public static class LlmQuality
{
    /// <summary>Compares <paramref name="candidate"/> against <paramref name="reference"/> over <paramref name="sequences"/> (each starting with BOS).</summary>
    public static LlmQualityReport Compare(LlamaEngine reference, LlamaEngine candidate, IReadOnlyList<int[]> sequences)
    {
        int vocab = reference.Model.Config.VocabSize;
        if (candidate.Model.Config.VocabSize != vocab) throw new ArgumentException("the models' vocabularies differ");
        double klSum = 0, klMax = 0, nllRef = 0, nllCand = 0;
        int positions = 0, agree = 0;
        foreach (var seq in sequences)
        {
            int n = seq.Length;
            if (n < 2) continue;
            var pos = Enumerable.Range(0, n).ToArray();
            var rows = Enumerable.Range(0, n - 1).ToArray();
            var a = new float[(n - 1) * vocab];
            var b = new float[(n - 1) * vocab];
            reference.Cache.Truncate(0, 0);
            candidate.Cache.Truncate(0, 0);
            reference.Forward(seq, pos, new int[n], rows, a);
            candidate.Forward(seq, pos, new int[n], rows, b);
            for (int i = 0; i < n - 1; i++)
            {
                var la = LogSoftmax(a.AsSpan(i * vocab, vocab));
                var lb = LogSoftmax(b.AsSpan(i * vocab, vocab));
                double kl = 0;
                for (int v = 0; v < vocab; v++) kl += Math.Exp(la[v]) * (la[v] - lb[v]);
                kl = Math.Max(0, kl);
                klSum += kl;
                klMax = Math.Max(klMax, kl);
                if (Sampler.ArgMax(a.AsSpan(i * vocab, vocab)) == Sampler.ArgMax(b.AsSpan(i * vocab, vocab))) agree++;
                nllRef -= la[seq[i + 1]];
                nllCand -= lb[seq[i + 1]];
                positions++;
            }
        }
        if (positions == 0) throw new ArgumentException("no positions to compare (sequences need at least two tokens)");
        return new LlmQualityReport(sequences.Count, positions, klSum / positions, klMax, (double)agree / positions,
            Math.Exp(nllRef / positions), Math.Exp(nllCand / positions));
    }

    /// <summary>Greedy continuations of <paramref name="prompts"/> by <paramref name="generator"/> (BOS first), to be scored by <see cref="Compare"/>.</summary>
    public static IReadOnlyList<int[]> Continuations(LlamaGenerator generator, IEnumerable<string> prompts, int steps) =>
        prompts.Select(p =>
        {
            var r = generator.Generate(p, new GenerationOptions(steps, new SamplingOptions()));
            return r.PromptTokens.Concat(r.Tokens).ToArray();
        }).ToArray();

    /// <summary>Prompts used when none are given: story openings in the style of TinyStories.</summary>
    public static readonly string[] DefaultPrompts =
    [
        "Once upon a time", "Lily and Tom went to the park", "The little dog", "One day, a boy named Tim",
        "There was a big tree", "Mom said", "The cat wanted to", "In a small house",
    ];

    private static double[] LogSoftmax(ReadOnlySpan<float> x)
    {
        double max = double.NegativeInfinity;
        foreach (var v in x) max = Math.Max(max, v);
        double s = 0;
        foreach (var v in x) s += Math.Exp(v - max);
        double lse = max + Math.Log(s);
        var r = new double[x.Length];
        for (int i = 0; i < r.Length; i++) r[i] = x[i] - lse;
        return r;
    }
}
