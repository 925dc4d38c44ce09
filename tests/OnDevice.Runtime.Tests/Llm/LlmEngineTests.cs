using OnDevice.Formats.Llm;
using OnDevice.Runtime.Llm;

namespace OnDevice.Runtime.Tests.Llm;

public class LlmEngineTests
{
    private static readonly string[] Prompts = ["Once upon a time", "The little dog", "Lily and Tom went to the park"];

    [Fact]
    public void BatchedDecodingEqualsOneSequenceAtATime()
    {
        if (LlmFiles.Stories() is not { } s) return;
        var model = LlamaModel.Load(s.Checkpoint, LlmWeights.Fp32);
        var single = new LlamaGenerator(new LlamaEngine(model), s.Tokenizer);
        var batched = new LlamaGenerator(new LlamaEngine(model, new KvCacheOptions(Sequences: 3)), s.Tokenizer);
        var opts = new GenerationOptions(80, new SamplingOptions());
        var together = batched.GenerateBatch(Prompts, opts);
        for (int i = 0; i < Prompts.Length; i++)
            Assert.Equal(single.Generate(Prompts[i], opts).Tokens, together[i].Tokens);
    }

    [Theory]
    [InlineData(LlmWeights.Fp32)]
    [InlineData(LlmWeights.Int8)]
    [InlineData(LlmWeights.Int4)]
    public void TwoAndThreeThreadsGiveTheLogitsOfOneThread(LlmWeights weights)
    {
        // Matrices large enough to be split over threads (rows·cols ≥ 2^16), 1000 rows: chunks are not multiples of 4 rows.
        var cfg = new LlamaConfig(Dim: 256, HiddenDim: 1000, Layers: 2, Heads: 8, KvHeads: 2, VocabSize: 700, SeqLen: 32, SharedClassifier: false);
        var model = LlamaModel.Load(SyntheticLlama.Create(cfg, 5), weights);
        int[] prompt = [3, 17, 250, 9, 640];
        var one = new LlamaEngine(model);
        var expected = new List<float[]> { one.Prefill(prompt) };
        for (int p = prompt.Length; p < 12; p++) expected.Add(one.Step(p * 37 % 700, p));
        foreach (int threads in new[] { 2, 3 })
        {
            var many = new LlamaEngine(model, threads: threads);
            Assert.Equal(expected[0], many.Prefill(prompt));
            for (int p = prompt.Length; p < 12; p++) Assert.Equal(expected[p - prompt.Length + 1], many.Step(p * 37 % 700, p));
        }
    }

    [Fact]
    public void BeamWidthOneIsGreedyAndWiderBeamsScoreAtLeastAsHigh()
    {
        if (LlmFiles.Stories() is not { } s) return;
        var model = LlamaModel.Load(s.Checkpoint, LlmWeights.Fp32);
        var gen = new LlamaGenerator(new LlamaEngine(model, new KvCacheOptions(Sequences: 8)), s.Tokenizer);
        foreach (var p in Prompts)
        {
            var greedy = gen.Generate(p, new GenerationOptions(60, new SamplingOptions()));
            var beam1 = gen.BeamSearch(p, 60, 1, lengthPenalty: 0);
            Assert.Equal(greedy.Tokens, beam1.Tokens);
            Assert.Equal(greedy.Text, beam1.Text);
            var beam4 = gen.BeamSearch(p, 60, 4, lengthPenalty: 0);
            Assert.True(beam4.Score >= beam1.Score - 1e-6, $"beam 4 log-prob {beam4.Score} < beam 1 {beam1.Score}");
        }
    }

    [Theory]
    [InlineData(KvElement.Fp32)]
    [InlineData(KvElement.Int8)]
    public void PagedAndContiguousCachesGiveIdenticalLogits(KvElement element)
    {
        if (LlmFiles.Stories() is not { } s) return;
        var model = LlamaModel.Load(s.Checkpoint, LlmWeights.Fp32);
        var contiguous = new LlamaEngine(model, new KvCacheOptions(element, Sequences: 2));
        var paged = new LlamaEngine(model, new KvCacheOptions(element, Sequences: 2, PageSize: 16, Pages: 12));
        var cache = (PagedKvCache)paged.Cache;
        var toks = s.Tokenizer.Encode("Once upon a time, there was a little girl named Lily. She loved to play");
        // Interleave two sequences so their blocks alternate in the pool.
        Assert.Equal(contiguous.Prefill(toks, 0, 0), paged.Prefill(toks, 0, 0));
        Assert.Equal(contiguous.Prefill(toks[..10], 0, 1), paged.Prefill(toks[..10], 0, 1));
        for (int pos = toks.Length; pos < toks.Length + 30; pos++)
        {
            Assert.Equal(contiguous.Step(pos % 300 + 3, pos, 0), paged.Step(pos % 300 + 3, pos, 0));
            Assert.Equal(contiguous.Step(pos % 200 + 5, pos - toks.Length + 10, 1), paged.Step(pos % 200 + 5, pos - toks.Length + 10, 1));
        }
        int used = cache.BlockCount - cache.FreeBlocks;
        Assert.Equal((toks.Length + 30 + 15) / 16 + (40 + 15) / 16, used);
        // Releasing a sequence returns its blocks; a new sequence reuses them and still matches.
        cache.Truncate(0, 0);
        Assert.Equal(cache.BlockCount - (40 + 15) / 16, cache.FreeBlocks);
        contiguous.Cache.Truncate(0, 0);
        Assert.Equal(contiguous.Prefill(toks[..20], 0, 0), paged.Prefill(toks[..20], 0, 0));
        Assert.Contains(cache.BlockTable(0)[0], Enumerable.Range(0, 12));
    }

    [Fact]
    public void PagedCacheReportsWhenFull()
    {
        if (LlmFiles.Stories() is not { } s) return;
        var paged = new LlamaEngine(LlamaModel.Load(s.Checkpoint, LlmWeights.Fp32), new KvCacheOptions(PageSize: 8, Pages: 2));
        var toks = Enumerable.Range(0, 17).Select(i => 10 + i).ToArray();
        var e = Assert.Throws<LlmCapacityException>(() => paged.Prefill(toks));
        Assert.Contains("full", e.Message);
    }

    [Theory]
    [InlineData(KvElement.Fp16, 1e-3)]
    [InlineData(KvElement.Int8, 5e-2)]
    public void LowPrecisionKvCachesStayCloseToFp32(KvElement element, double tolerance)
    {
        if (LlmFiles.Stories() is not { } s) return;
        var model = LlamaModel.Load(s.Checkpoint, LlmWeights.Fp32);
        var toks = s.Tokenizer.Encode("Once upon a time, there was a little girl named Lily.");
        var a = new LlamaEngine(model).Prefill(toks);
        var b = new LlamaEngine(model, new KvCacheOptions(element)).Prefill(toks);
        Assert.NotEqual(a, b);
        double maxAbs = a.Max(MathF.Abs);
        for (int i = 0; i < a.Length; i++) Assert.True(Math.Abs(a[i] - b[i]) < tolerance * maxAbs, $"logit {i}: {a[i]} vs {b[i]}");
        Assert.Equal(Sampler.ArgMax(a), Sampler.ArgMax(b));
    }

    [Fact]
    public void ContextLimitIsAClearError()
    {
        if (LlmFiles.Stories() is not { } s) return;
        var engine = new LlamaEngine(LlamaModel.Load(s.Checkpoint, LlmWeights.Fp32), new KvCacheOptions(MaxPositions: 16));
        var gen = new LlamaGenerator(engine, s.Tokenizer);
        var e = Assert.Throws<LlmCapacityException>(() => gen.Generate("Once", new GenerationOptions(17, new SamplingOptions())));
        Assert.Contains("context limit of 16", e.Message);
        var e2 = Assert.Throws<LlmCapacityException>(() => engine.Step(5, 16));
        Assert.Contains("context limit", e2.Message);
        Assert.Equal(16, gen.Generate("Once", new GenerationOptions(16, new SamplingOptions())).PromptTokens.Length + gen.Generate("Once", new GenerationOptions(16, new SamplingOptions())).Tokens.Length - 1);
    }

    [Fact]
    public void SamplingIsSeededTopKAndStopStringsApply()
    {
        if (LlmFiles.Stories() is not { } s) return;
        var gen = new LlamaGenerator(new LlamaEngine(LlamaModel.Load(s.Checkpoint, LlmWeights.Fp32)), s.Tokenizer);
        var a = gen.Generate("Once upon a time", new GenerationOptions(120, new SamplingOptions(1.0f, Seed: 7)));
        var b = gen.Generate("Once upon a time", new GenerationOptions(120, new SamplingOptions(1.0f, Seed: 7)));
        var c = gen.Generate("Once upon a time", new GenerationOptions(120, new SamplingOptions(1.0f, Seed: 8)));
        Assert.Equal(a.Tokens, b.Tokens);
        Assert.NotEqual(a.Tokens, c.Tokens);
        // top-k 1 is greedy whatever the temperature; a strong repetition penalty changes the greedy text.
        var greedy = gen.Generate("Once upon a time", new GenerationOptions(120, new SamplingOptions()));
        Assert.Equal(greedy.Tokens, gen.Generate("Once upon a time", new GenerationOptions(120, new SamplingOptions(1.5f, TopK: 1, Seed: 3))).Tokens);
        Assert.NotEqual(greedy.Tokens, gen.Generate("Once upon a time", new GenerationOptions(120, new SamplingOptions(RepetitionPenalty: 1.5f))).Tokens);
        // Stop strings cut the text where they begin.
        var stopped = gen.Generate("Once upon a time", new GenerationOptions(120, new SamplingOptions(), ["Lily"]));
        Assert.Equal("Once upon a time, there was a little girl named ", stopped.Text);
    }

    [Fact]
    public void SamplerDistributionRespectsTopKTopP()
    {
        var sampler = new Sampler(new SamplingOptions(1f, TopK: 3, TopP: 0.9f));
        float[] logits = [4, 3, 2, 1, 0, -1];
        var p = sampler.Distribution(logits, []);
        Assert.Equal(0, p[3]); Assert.Equal(0, p[4]);
        Assert.Equal(1.0, p.Sum(), 5);
        var q = new Sampler(new SamplingOptions(1f, TopP: 0.5f)).Distribution(logits, []);
        Assert.Equal(1f, q[0], 5); // the top token alone holds 64% ≥ 0.5
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sampler(new SamplingOptions(-1f)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sampler(new SamplingOptions(1f, TopP: 0f)));
    }

    [Theory]
    [InlineData(LlmWeights.Fp32)]
    [InlineData(LlmWeights.Int8)]
    [InlineData(LlmWeights.Int4)]
    public void PrefillAsOneBatchGivesTheLogitsOfTokenByTokenDecoding(LlmWeights weights)
    {
        if (LlmFiles.Stories() is not { } s) return;
        var model = LlamaModel.Load(s.Checkpoint, weights);
        var toks = s.Tokenizer.Encode("Once upon a time, there was a little girl named Lily. She loved");
        var batch = new LlamaEngine(model).Prefill(toks);
        var stepper = new LlamaEngine(model);
        float[] last = [];
        for (int i = 0; i < toks.Length; i++) last = stepper.Step(toks[i], i);
        Assert.Equal(last, batch);
    }
}
