using OnDevice.Formats.Llm;
using OnDevice.Runtime.Llm;

namespace OnDevice.Runtime.Tests.Llm;

public class LlmSpeculativeTests
{
    [Theory]
    [InlineData("layers", 2)]
    [InlineData("int4", 4)]
    [InlineData("int8", 3)]
    public void GreedySpeculativeDecodingEqualsGreedy(string draftKind, int draftTokens)
    {
        if (LlmFiles.Stories() is not { } s) return;
        var model = LlamaModel.Load(s.Checkpoint, LlmWeights.Fp32);
        var draft = draftKind switch
        {
            "layers" => model.FirstLayers(3),
            "int4" => LlamaModel.Load(s.Checkpoint, LlmWeights.Int4),
            _ => LlamaModel.Load(s.Checkpoint, LlmWeights.Int8),
        };
        var gen = new LlamaGenerator(new LlamaEngine(model), s.Tokenizer);
        var spec = new SpeculativeDecoder(new LlamaEngine(model), new LlamaEngine(draft));
        foreach (var prompt in new[] { "Once upon a time", "The little dog" })
        {
            var opts = new GenerationOptions(200, new SamplingOptions());
            var g = gen.Generate(prompt, opts);
            var r = spec.Generate(s.Tokenizer, prompt, opts, draftTokens);
            Assert.Equal(g.Tokens, r.Tokens);
            Assert.Equal(g.Text, r.Text);
            Assert.InRange(r.AcceptanceRate!.Value, 0.01, 1.0);
        }
    }

    [Fact]
    public void SampledSpeculativeDecodingMatchesTheTargetDistribution()
    {
        // A small vocabulary so the joint distribution of the first two tokens (64 cells) can be checked exactly.
        var cfg = new LlamaConfig(Dim: 16, HiddenDim: 32, Layers: 2, Heads: 2, KvHeads: 1, VocabSize: 8, SeqLen: 16, SharedClassifier: false);
        var target = new LlamaEngine(LlamaModel.Load(SyntheticLlama.Create(cfg, 1, gain: 2f), LlmWeights.Fp32));
        var draft = new LlamaEngine(LlamaModel.Load(SyntheticLlama.Create(cfg, 2, gain: 2f), LlmWeights.Fp32));
        int[] prompt = [1, 5];
        var sampling = new SamplingOptions(Temperature: 1f);
        // Exact target joint p(a)·p(b | a).
        var pa = new Sampler(sampling).Distribution(target.Prefill(prompt), []);
        var expected = new double[64];
        for (int a = 0; a < 8; a++)
        {
            var pb = new Sampler(sampling).Distribution(target.Prefill([.. prompt, a]), []);
            for (int b = 0; b < 8; b++) expected[a * 8 + b] = pa[a] * pb[b];
        }
        var spec = new SpeculativeDecoder(target, draft);
        const int n = 12000;
        var counts = new int[64];
        int proposed = 0, accepted = 0;
        for (int i = 0; i < n; i++)
        {
            var run = spec.Generate(prompt, prompt.Length + 2, new Sampler(sampling with { Seed = (ulong)(i + 1) }), draftTokens: 2);
            Assert.Equal(3, run.Tokens.Length);
            counts[run.Tokens[0] * 8 + run.Tokens[1]]++;
            proposed += run.Proposed; accepted += run.Accepted;
        }
        // Acceptance is neither trivial nor total: both the accept and the residual paths were exercised.
        Assert.InRange((double)accepted / proposed, 0.1, 0.95);
        // Chi-square over cells with enough expectation, the rest pooled.
        double chi = 0, poolE = 0, poolO = 0;
        int dof = -1;
        for (int c = 0; c < 64; c++)
        {
            double e = expected[c] * n;
            if (e < 5) { poolE += e; poolO += counts[c]; continue; }
            chi += (counts[c] - e) * (counts[c] - e) / e;
            dof++;
        }
        if (poolE > 0) { chi += (poolO - poolE) * (poolO - poolE) / Math.Max(poolE, 1e-9); dof++; }
        Assert.True(dof >= 10, $"only {dof} degrees of freedom");
        // 99.9% quantile of chi-square with dof degrees of freedom (Wilson–Hilferty).
        double z = 3.09, k = dof;
        double critical = k * Math.Pow(1 - 2 / (9 * k) + z * Math.Sqrt(2 / (9 * k)), 3);
        Assert.True(chi < critical, $"chi-square {chi:0.0} ≥ {critical:0.0} with {dof} dof: speculative samples do not follow the target");
        // The same test fails for the draft's own distribution (the test has power).
        var qa = new Sampler(sampling).Distribution(draft.Prefill(prompt), []);
        double tv = 0;
        for (int a = 0; a < 8; a++) tv += Math.Abs(qa[a] - pa[a]);
        Assert.True(tv > 0.2, $"draft and target first-token distributions are too close (total variation {tv / 2:0.00}) for the test to mean anything");
    }
}
