using System.Diagnostics;
using System.Text;

namespace OnDevice.Runtime.Llm;

/// <summary>What to generate.</summary>
/// <param name="Steps">Positions of the whole sequence, prompt (with BOS) included, as in llama2.c: the last generated token sits at index Steps.</param>
/// <param name="Sampling">Token choice.</param>
/// <param name="StopStrings">Generation stops when the text ends with one of these (it is cut off).</param>
public sealed record GenerationOptions(int Steps, SamplingOptions Sampling, IReadOnlyList<string>? StopStrings = null);

/// <summary>A finished generation.</summary>
/// <param name="Text">Prompt followed by the generated text (as llama2.c prints it).</param>
/// <param name="PromptTokens">The prompt's tokens, BOS first.</param>
/// <param name="Tokens">Generated tokens.</param>
/// <param name="PrefillSeconds">Time of the prompt pass.</param>
/// <param name="DecodeSeconds">Time of the generation steps.</param>
/// <param name="AcceptanceRate">Speculative decoding: accepted draft tokens ÷ proposed draft tokens.</param>
/// <param name="Score">Beam search: the winning hypothesis' length-normalized log-probability.</param>
public sealed record GenerationResult(string Text, int[] PromptTokens, int[] Tokens, double PrefillSeconds, double DecodeSeconds, double? AcceptanceRate = null, double? Score = null)
{
    /// <summary>Prompt tokens per second of the prefill.</summary>
    public double PrefillTokensPerSecond => PrefillSeconds > 0 ? PromptTokens.Length / PrefillSeconds : 0;

    /// <summary>Generated tokens per second after the first (the first comes out of the prefill).</summary>
    public double DecodeTokensPerSecond => DecodeSeconds > 0 ? Math.Max(0, Tokens.Length - 1) / DecodeSeconds : 0;
}

/// <summary>Generates text with a <see cref="LlamaEngine"/>: greedy or sampled, batched, beam search.</summary>
public sealed class LlamaGenerator
{
    /// <summary>The engine.</summary>
    public LlamaEngine Engine { get; }

    /// <summary>The tokenizer.</summary>
    public LlamaTokenizer Tokenizer { get; }

    /// <summary>Pairs an engine with a tokenizer.</summary>
    public LlamaGenerator(LlamaEngine engine, LlamaTokenizer tokenizer)
    {
        if (tokenizer.Vocabulary.Count != engine.Model.Config.VocabSize)
            throw new ArgumentException($"the tokenizer has {tokenizer.Vocabulary.Count} tokens but the model's vocabulary is {engine.Model.Config.VocabSize}");
        Engine = engine;
        Tokenizer = tokenizer;
    }

    internal void CheckSteps(int steps, int promptTokens)
    {
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), $"steps must be positive, got {steps}");
        if (promptTokens > Engine.MaxPositions)
            throw new LlmCapacityException($"the prompt has {promptTokens} tokens (BOS included) but the context limit is {Engine.MaxPositions} positions");
        if (steps > Engine.MaxPositions)
            throw new LlmCapacityException($"{steps} steps exceed the context limit of {Engine.MaxPositions} positions");
    }

    /// <summary>Collects printed bytes and watches for stop strings.</summary>
    internal sealed class TextSink(LlamaTokenizer tok, IReadOnlyList<string>? stops)
    {
        private readonly List<byte> _bytes = [];
        private readonly byte[][] _stops = (stops ?? []).Where(s => s.Length > 0).Select(Encoding.UTF8.GetBytes).ToArray();
        private int _promptBytes;

        public void Prompt(int[] tokens)
        {
            for (int i = 1; i < tokens.Length; i++) _bytes.AddRange(tok.Piece(tokens[i - 1], tokens[i]));
            _promptBytes = _bytes.Count;
        }

        /// <summary>Appends a piece; true when a stop string now ends the generated text (it is removed).</summary>
        public bool Add(int prev, int token)
        {
            _bytes.AddRange(tok.Piece(prev, token));
            foreach (var s in _stops)
            {
                var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_bytes)[_promptBytes..];
                int at = span.IndexOf(s);
                if (at >= 0) { _bytes.RemoveRange(_promptBytes + at, _bytes.Count - _promptBytes - at); return true; }
            }
            return false;
        }

        public string Text => Encoding.UTF8.GetString(_bytes.ToArray());
    }

    internal bool IsEnd(int token) => token == Tokenizer.Bos || token == Tokenizer.Eos;

    /// <summary>Generates from <paramref name="prompt"/> (BOS prepended) using sequence slot <paramref name="seq"/>.</summary>
    public GenerationResult Generate(string prompt, GenerationOptions options, int seq = 0)
    {
        var prompts = Tokenizer.Encode(prompt);
        CheckSteps(options.Steps, prompts.Length);
        var sampler = new Sampler(options.Sampling);
        var sink = new TextSink(Tokenizer, options.StopStrings);
        sink.Prompt(prompts);
        var history = new List<int>(prompts);
        var generated = new List<int>();
        Engine.Cache.Truncate(seq, 0);
        long t0 = Stopwatch.GetTimestamp();
        var logits = Engine.Prefill(prompts, 0, seq);
        double prefill = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        t0 = Stopwatch.GetTimestamp();
        int pos = prompts.Length - 1;
        while (pos < options.Steps)
        {
            int next = sampler.Next(logits, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(history));
            if (IsEnd(next)) break;
            int prev = history[^1];
            history.Add(next);
            generated.Add(next);
            pos++;
            if (sink.Add(prev, next) || pos >= options.Steps) break;
            logits = Engine.Step(next, pos, seq);
        }
        double decode = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        return new GenerationResult(sink.Text, prompts, generated.ToArray(), prefill, decode);
    }

    /// <summary>
    /// Generates from several prompts together: each gets its own sequence slot (0..n−1) and sampler (seed + index),
    /// and every decode step runs one token of each unfinished sequence as one batch, sharing each weight read.
    /// </summary>
    public IReadOnlyList<GenerationResult> GenerateBatch(IReadOnlyList<string> prompts, GenerationOptions options)
    {
        int n = prompts.Count;
        var toks = prompts.Select(p => Tokenizer.Encode(p)).ToArray();
        foreach (var t in toks) CheckSteps(options.Steps, t.Length);
        var samplers = Enumerable.Range(0, n).Select(i => new Sampler(options.Sampling with { Seed = options.Sampling.Seed + (ulong)i })).ToArray();
        var sinks = toks.Select(t => { var s = new TextSink(Tokenizer, options.StopStrings); s.Prompt(t); return s; }).ToArray();
        var histories = toks.Select(t => new List<int>(t)).ToArray();
        var generated = toks.Select(_ => new List<int>()).ToArray();
        var logits = new float[n][];
        long t0 = Stopwatch.GetTimestamp();
        for (int i = 0; i < n; i++) { Engine.Cache.Truncate(i, 0); logits[i] = Engine.Prefill(toks[i], 0, i); }
        double prefill = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        t0 = Stopwatch.GetTimestamp();
        var done = new bool[n];
        int vocab = Engine.Model.Config.VocabSize;
        while (true)
        {
            var rows = new List<int>();
            for (int i = 0; i < n; i++)
            {
                if (done[i]) continue;
                int pos = histories[i].Count - 1;
                int next = samplers[i].Next(logits[i], System.Runtime.InteropServices.CollectionsMarshal.AsSpan(histories[i]));
                if (IsEnd(next)) { done[i] = true; continue; }
                int prev = histories[i][^1];
                histories[i].Add(next);
                generated[i].Add(next);
                if (sinks[i].Add(prev, next) || pos + 1 >= options.Steps) { done[i] = true; continue; }
                rows.Add(i);
            }
            if (rows.Count == 0) break;
            var tokens = rows.Select(i => histories[i][^1]).ToArray();
            var positions = rows.Select(i => histories[i].Count - 1).ToArray();
            var all = new float[rows.Count * vocab];
            Engine.Forward(tokens, positions, rows.ToArray(), Enumerable.Range(0, rows.Count).ToArray(), all);
            for (int j = 0; j < rows.Count; j++) logits[rows[j]] = all.AsSpan(j * vocab, vocab).ToArray();
        }
        double decode = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        return Enumerable.Range(0, n).Select(i => new GenerationResult(sinks[i].Text, toks[i], generated[i].ToArray(), prefill, decode)).ToArray();
    }

    private static float[] LogSoftmax(ReadOnlySpan<float> logits)
    {
        float max = float.NegativeInfinity;
        foreach (var v in logits) max = MathF.Max(max, v);
        double sum = 0;
        foreach (var v in logits) sum += Math.Exp(v - max);
        float lse = max + (float)Math.Log(sum);
        var r = new float[logits.Length];
        for (int i = 0; i < r.Length; i++) r[i] = logits[i] - lse;
        return r;
    }

    private sealed record Beam(List<int> Tokens, double Score);

    /// <summary>
    /// Beam search of <paramref name="width"/> hypotheses (the engine needs 2·width sequence slots): each step expands
    /// every live beam by its <paramref name="width"/> most likely tokens and keeps the best width by summed
    /// log-probability; hypotheses that end (EOS/BOS) or reach the step limit are ranked by score / length^<paramref name="lengthPenalty"/>.
    /// Width 1 is greedy decoding.
    /// </summary>
    public GenerationResult BeamSearch(string prompt, int steps, int width, float lengthPenalty = 1f)
    {
        if (width < 1) throw new ArgumentOutOfRangeException(nameof(width), $"beam width must be at least 1, got {width}");
        var prompts = Tokenizer.Encode(prompt);
        CheckSteps(steps, prompts.Length);
        int vocab = Engine.Model.Config.VocabSize;
        long t0 = Stopwatch.GetTimestamp();
        for (int s = 0; s < 2 * width; s++) Engine.Cache.Truncate(s, 0);
        var first = Engine.Prefill(prompts, 0, 0);
        double prefill = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        t0 = Stopwatch.GetTimestamp();
        int n = prompts.Length;
        var finished = new List<(Beam Beam, double Norm)>();
        double Norm(Beam b) => b.Score / Math.Pow(Math.Max(1, b.Tokens.Count), lengthPenalty);
        var beams = new List<Beam> { new([], 0) };
        var beamLogits = new List<float[]> { first };
        var slots = new List<int> { 0 };
        int slotBase = width; // the other half of the 2·width slots receives the next generation
        while (beams.Count > 0)
        {
            var cands = new List<(int Beam, int Token, double Score)>();
            for (int b = 0; b < beams.Count; b++)
            {
                var lp = LogSoftmax(beamLogits[b]);
                var lg = beamLogits[b];
                var top = Enumerable.Range(0, vocab).OrderByDescending(i => lg[i]).ThenBy(i => i).Take(width);
                foreach (var t in top) cands.Add((b, t, beams[b].Score + lp[t]));
            }
            var chosen = cands.OrderByDescending(c => c.Score).ThenBy(c => c.Beam).ThenBy(c => c.Token).Take(width).ToList();
            var next = new List<Beam>();
            var nextSlots = new List<int>();
            var copies = new List<(int Src, int Dst)>();
            foreach (var c in chosen)
            {
                var parent = beams[c.Beam];
                if (IsEnd(c.Token)) { finished.Add((new Beam(parent.Tokens, c.Score), Norm(new Beam(parent.Tokens, c.Score)))); continue; }
                var nb = new Beam([.. parent.Tokens, c.Token], c.Score);
                int pos = n - 1 + nb.Tokens.Count;
                if (pos >= steps) { finished.Add((nb, Norm(nb))); continue; }
                int dst = slotBase + next.Count;
                copies.Add((slots[c.Beam], dst));
                next.Add(nb);
                nextSlots.Add(dst);
            }
            if (finished.Count >= width || next.Count == 0) { beams = next; break; }
            int len = n + beams[0].Tokens.Count;
            foreach (var (src, dst) in copies) { Engine.Cache.Truncate(dst, 0); Engine.Cache.Copy(src, dst, len); }
            var tokens = next.Select(b => b.Tokens[^1]).ToArray();
            var positions = next.Select(b => n - 1 + b.Tokens.Count).ToArray();
            var all = new float[next.Count * vocab];
            Engine.Forward(tokens, positions, nextSlots.ToArray(), Enumerable.Range(0, next.Count).ToArray(), all);
            beamLogits = Enumerable.Range(0, next.Count).Select(j => all.AsSpan(j * vocab, vocab).ToArray()).ToList();
            foreach (var s in slots) Engine.Cache.Truncate(s, 0);
            beams = next;
            slots = nextSlots;
            slotBase = slotBase == 0 ? width : 0;
        }
        foreach (var b in beams) finished.Add((b, Norm(b)));
        var best = finished.OrderByDescending(f => f.Norm).First();
        double decode = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        var all2 = prompts.Concat(best.Beam.Tokens).ToArray();
        return new GenerationResult(Tokenizer.Decode(all2), prompts, best.Beam.Tokens.ToArray(), prefill, decode, Score: best.Norm);
    }
}
