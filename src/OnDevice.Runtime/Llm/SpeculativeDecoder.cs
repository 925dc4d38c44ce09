using System.Diagnostics;
using System.Runtime.InteropServices;

namespace OnDevice.Runtime.Llm;

/// <summary>
/// Speculative decoding (Leviathan et al. 2023; Chen et al. 2023): a cheaper draft model with the same tokenizer
/// proposes K tokens one by one, the target model scores all of them in one batched pass, and each proposal d is
/// accepted with probability min(1, p(d)/q(d)); at the first rejection the token is drawn from the normalized residual
/// max(0, p − q), and when all K pass one more token is drawn from the target. The output is distributed exactly as
/// the target's own sampling; greedy speculation returns exactly the greedy tokens. Uses sequence slot 0 of both engines.
/// </summary>
public sealed class SpeculativeDecoder
{
    /// <summary>The target engine.</summary>
    public LlamaEngine Target { get; }

    /// <summary>The draft engine (another model, or the first layers / a low-bit copy of the target).</summary>
    public LlamaEngine Draft { get; }

    /// <summary>Pairs a target with a draft of the same vocabulary.</summary>
    public SpeculativeDecoder(LlamaEngine target, LlamaEngine draft)
    {
        if (target.Model.Config.VocabSize != draft.Model.Config.VocabSize)
            throw new ArgumentException($"the draft's vocabulary ({draft.Model.Config.VocabSize}) differs from the target's ({target.Model.Config.VocabSize}); they must share a tokenizer");
        Target = target;
        Draft = draft;
    }

    /// <summary>Counts of one run.</summary>
    /// <param name="Tokens">Generated tokens.</param>
    /// <param name="Proposed">Draft tokens proposed.</param>
    /// <param name="Accepted">Draft tokens accepted.</param>
    /// <param name="TargetPasses">Batched target passes after the prefill.</param>
    /// <param name="PrefillSeconds">Prompt pass time.</param>
    /// <param name="DecodeSeconds">Generation time.</param>
    public sealed record Run(int[] Tokens, int Proposed, int Accepted, int TargetPasses, double PrefillSeconds, double DecodeSeconds)
    {
        /// <summary>Accepted ÷ proposed (0 when nothing was proposed).</summary>
        public double AcceptanceRate => Proposed == 0 ? 0 : (double)Accepted / Proposed;
    }

    /// <summary>
    /// Generates after <paramref name="prompt"/> until the sequence holds <paramref name="steps"/>+1 tokens, an end token
    /// (<paramref name="isEnd"/>, not emitted) or <paramref name="onToken"/> returns true (emitted, then stop).
    /// </summary>
    public Run Generate(int[] prompt, int steps, Sampler sampler, int draftTokens, Func<int, bool>? isEnd = null, Func<int, bool>? onToken = null)
    {
        if (draftTokens < 1) throw new ArgumentOutOfRangeException(nameof(draftTokens), $"draft tokens must be at least 1, got {draftTokens}");
        if (prompt.Length == 0) throw new ArgumentException("empty prompt");
        int limit = Math.Min(Target.MaxPositions, Draft.MaxPositions);
        if (steps > limit) throw new LlmCapacityException($"{steps} steps exceed the context limit of {limit} positions");
        int vocab = Target.Model.Config.VocabSize;
        var history = new List<int>(prompt);
        var output = new List<int>();
        Target.Cache.Truncate(0, 0);
        Draft.Cache.Truncate(0, 0);
        long t0 = Stopwatch.GetTimestamp();
        if (prompt.Length > 1)
        {
            Target.Forward(prompt.AsSpan(0, prompt.Length - 1), Enumerable.Range(0, prompt.Length - 1).ToArray(), new int[prompt.Length - 1], [], []);
        }
        double prefill = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        t0 = Stopwatch.GetTimestamp();
        int draftLen = 0; // positions of history already in the draft's cache
        int proposed = 0, accepted = 0, passes = 0;
        bool stop = false;
        while (!stop && history.Count - 1 < steps)
        {
            int p = history.Count - 1; // position of the pending (not yet forwarded) token
            int k = Math.Min(draftTokens, steps - p - 1);
            var drafts = new int[k];
            var q = new float[k][];
            if (k > 0)
            {
                // Catch the draft up on accepted tokens, then let it propose k tokens.
                if (draftLen < p)
                {
                    var catchUp = CollectionsMarshal.AsSpan(history)[draftLen..p].ToArray();
                    Draft.Forward(catchUp, Enumerable.Range(draftLen, catchUp.Length).ToArray(), new int[catchUp.Length], [], []);
                }
                int cur = history[p];
                var ctx = new List<int>(history);
                for (int i = 0; i < k; i++)
                {
                    var logits = Draft.Step(cur, p + i);
                    q[i] = sampler.Distribution(logits, CollectionsMarshal.AsSpan(ctx));
                    cur = sampler.Options.Greedy ? Sampler.ArgMax(q[i]) : sampler.Draw(q[i]);
                    drafts[i] = cur;
                    ctx.Add(cur);
                }
                draftLen = p + k; // the last draft token itself is not in the draft's cache
                proposed += k;
            }
            var rowsTok = new int[k + 1];
            rowsTok[0] = history[p];
            drafts.CopyTo(rowsTok, 1);
            var all = new float[(k + 1) * vocab];
            Target.Forward(rowsTok, Enumerable.Range(p, k + 1).ToArray(), new int[k + 1], Enumerable.Range(0, k + 1).ToArray(), all);
            passes++;
            var ctxT = new List<int>(history);
            var emitted = new List<int>();
            int j = 0;
            for (; j <= k; j++)
            {
                var pj = sampler.Distribution(all.AsSpan(j * vocab, vocab), CollectionsMarshal.AsSpan(ctxT));
                int token;
                if (j == k)
                {
                    token = sampler.Options.Greedy ? Sampler.ArgMax(pj) : sampler.Draw(pj);
                }
                else
                {
                    int d = drafts[j];
                    bool ok = sampler.Options.Greedy ? Sampler.ArgMax(pj) == d : sampler.NextFloat() < Math.Min(1f, pj[d] / q[j][d]);
                    if (ok) { accepted++; emitted.Add(d); ctxT.Add(d); continue; }
                    if (sampler.Options.Greedy) token = Sampler.ArgMax(pj);
                    else
                    {
                        var res = new float[vocab];
                        float s = 0;
                        for (int v = 0; v < vocab; v++) { res[v] = MathF.Max(0, pj[v] - q[j][v]); s += res[v]; }
                        if (s > 0) { for (int v = 0; v < vocab; v++) res[v] /= s; token = sampler.Draw(res); }
                        else token = sampler.Draw(pj);
                    }
                }
                emitted.Add(token);
                break;
            }
            foreach (var t in emitted)
            {
                if (isEnd?.Invoke(t) == true) { stop = true; break; }
                history.Add(t);
                output.Add(t);
                if (onToken?.Invoke(t) == true || history.Count - 1 >= steps) { stop = true; break; }
            }
            draftLen = Math.Min(draftLen, history.Count - 1);
            Target.Cache.Truncate(0, history.Count - 1);
            Draft.Cache.Truncate(0, draftLen);
        }
        double decode = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        return new Run(output.ToArray(), proposed, accepted, passes, prefill, decode);
    }

    /// <summary>Text generation with a tokenizer, as <see cref="LlamaGenerator.Generate"/>, reporting the acceptance rate.</summary>
    public GenerationResult Generate(LlamaTokenizer tokenizer, string prompt, GenerationOptions options, int draftTokens)
    {
        var gen = new LlamaGenerator(Target, tokenizer);
        var prompts = tokenizer.Encode(prompt);
        gen.CheckSteps(options.Steps, prompts.Length);
        var sink = new LlamaGenerator.TextSink(tokenizer, options.StopStrings);
        sink.Prompt(prompts);
        int prev = prompts[^1];
        var run = Generate(prompts, options.Steps, new Sampler(options.Sampling), draftTokens, gen.IsEnd, t =>
        {
            bool stopNow = sink.Add(prev, t);
            prev = t;
            return stopNow;
        });
        return new GenerationResult(sink.Text, prompts, run.Tokens, run.PrefillSeconds, run.DecodeSeconds, AcceptanceRate: run.AcceptanceRate);
    }
}
