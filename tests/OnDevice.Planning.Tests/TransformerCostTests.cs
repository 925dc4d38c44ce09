namespace OnDevice.Planning.Tests;

public class TransformerCostTests
{
    private static TransformerCost Preset(string name) => new(Presets.Get(name).Config);

    // Exact totals. The first six are the publishers' figures; the rest are what the published configs give
    // (the model cards round them: see Presets_AgreeWithTheirPublishedFigure).
    [Theory]
    [InlineData("llama-2-7b", 6_738_415_616)]
    [InlineData("llama-3-8b", 8_030_261_248)]
    [InlineData("mistral-7b", 7_241_732_096)]
    [InlineData("qwen2.5-0.5b", 494_032_768)]
    [InlineData("gemma-2b", 2_506_172_416)]
    [InlineData("phi-3-mini", 3_821_079_552)]
    [InlineData("qwen2.5-1.5b", 1_543_714_304)]
    [InlineData("qwen2.5-3b", 3_085_938_688)]
    [InlineData("qwen2.5-7b", 7_615_616_512)]
    [InlineData("tinyllama-1.1b", 1_100_048_384)]
    [InlineData("gpt2", 124_439_808)]
    [InlineData("bert-base-uncased", 109_482_240)]
    public void PresetParameters_AreExact(string preset, long expected) => Assert.Equal(expected, Preset(preset).Parameters);

    public static TheoryData<string> PresetNames()
    {
        var d = new TheoryData<string>();
        foreach (var p in Presets.All) d.Add(p.Name);
        return d;
    }

    [Theory]
    [MemberData(nameof(PresetNames))]
    public void Presets_AgreeWithTheirPublishedFigure(string name)
    {
        var p = Presets.Get(name);
        var cost = new TransformerCost(p.Config);
        if (p.Published.RoundedTo == 0) Assert.Equal(p.Published.Parameters, cost.Parameters);
        else Assert.True(p.Published.Agrees(cost.Parameters), $"{name}: {cost.Parameters:N0} vs published {p.Published.Parameters:N0} (±{p.Published.RoundedTo:N0}{(p.Published.Truncated ? ", cut" : "")})");
        if (p.Published.NonEmbedding is { } ne)
            Assert.InRange(cost.NonEmbeddingParameters, ne - p.Published.NonEmbeddingRoundedTo!.Value / 2, ne + p.Published.NonEmbeddingRoundedTo.Value / 2);
        Assert.Equal(cost.Parameters, cost.ParametersByComponent.Values.Sum());
        Assert.StartsWith("https://huggingface.co/", p.ConfigSource);
    }

    [Fact]
    public void Gpt2_MatchesTheTensorsOfTheReleasedCheckpoint()
    {
        // Tensor shapes of openai-community/gpt2 (Conv1D weights are [in, out]); the causal-mask buffers 'attn.bias'
        // some exports include are not parameters (they are why some hubs display 137M).
        long perLayer = 768 * 2 /* ln_1 */ + 768 * 2304 + 2304 /* c_attn */ + 768 * 768 + 768 /* attn.c_proj */
                        + 768 * 2 /* ln_2 */ + 768 * 3072 + 3072 /* c_fc */ + 3072 * 768 + 768 /* mlp.c_proj */;
        long expected = 50257L * 768 /* wte */ + 1024 * 768 /* wpe */ + 12 * perLayer + 768 * 2 /* ln_f */;
        Assert.Equal(expected, Preset("gpt2").Parameters);
    }

    [Fact]
    public void Llama2_7b_Components()
    {
        var c = Preset("llama-2-7b");
        var by = c.ParametersByComponent;
        Assert.Equal(32_000L * 4096, by["embeddings"]);
        Assert.Equal(32_000L * 4096, by["head"]);
        Assert.Equal(32L * 4 * 4096 * 4096, by["attention"]);
        Assert.Equal(32L * 3 * 4096 * 11008, by["mlp"]);
        Assert.Equal(32L * 2 * 4096 + 4096, by["norms"]);
    }

    [Fact]
    public void Qwen_HasQkvBiasesButNoOutputBias()
    {
        var c = Preset("qwen2.5-0.5b");
        Assert.Contains(c.Tensors, t => t.Name == "bq" && t.Cols == 896);
        Assert.Contains(c.Tensors, t => t.Name == "bk" && t.Cols == 128);
        Assert.DoesNotContain(c.Tensors, t => t.Name == "bo");
        Assert.Equal(24L * (2 * 896 * 896 + 2 * 896 * 128 + 896 + 2 * 128), c.ParametersByComponent["attention"]);
        Assert.False(c.ParametersByComponent.ContainsKey("head")); // tied
    }

    [Fact]
    public void Llama2_7b_KvCache_Fp16_Is2GiB_AndInt8IsHalfPlusScales()
    {
        var c = Preset("llama-2-7b");
        Assert.Equal(2_147_483_648, c.KvCacheBytes(new KvCacheFormat(KvPrecision.Fp16), 4096, 1));
        // int8: one byte per element plus one fp16 scale per 32 elements (head_dim 128 = 4 blocks per head vector).
        long scales = 32L * 2 * 32 * 4096 * (128 / 32) * 2;
        Assert.Equal(67_108_864, scales);
        Assert.Equal(2_147_483_648 / 2 + scales, c.KvCacheBytes(new KvCacheFormat(KvPrecision.Int8), 4096, 1));
        Assert.Equal(2_147_483_648 / 4 + scales, c.KvCacheBytes(new KvCacheFormat(KvPrecision.Int4), 4096, 1));
        Assert.Equal(2 * 2_147_483_648L, c.KvCacheBytes(new KvCacheFormat(), 4096, 2));
        // A bigger block has fewer scales.
        Assert.Equal(2_147_483_648 / 2 + scales / 4, c.KvCacheBytes(new KvCacheFormat(KvPrecision.Int8, BlockSize: 128), 4096, 1));
    }

    [Fact]
    public void PagedKvCache_RoundsEachSequenceUpToWholePages()
    {
        var c = Preset("llama-2-7b");
        long perToken = c.KvBytesPerToken(new KvCacheFormat());
        Assert.Equal(524_288, perToken); // 32 layers × 2 × 32 heads × 128 × 2 bytes
        Assert.Equal(4016 * perToken * 3, c.KvCacheBytes(new KvCacheFormat(PageSizeTokens: 16), 4001, 3));
        Assert.Equal(4000 * perToken, c.KvCacheBytes(new KvCacheFormat(PageSizeTokens: 16), 4000, 1));
        Assert.Equal(4001 * perToken, c.KvCacheBytes(new KvCacheFormat(), 4001, 1));
    }

    [Fact]
    public void GqaAndMqa_ShrinkTheKvCacheByTheGroupSize()
    {
        var llama3 = Preset("llama-3-8b"); // 8 kv heads of 32
        Assert.Equal(32L * 2 * 8 * 128 * 2, llama3.KvBytesPerToken(new KvCacheFormat()));
        var gemma = Preset("gemma-2b"); // MQA: 1 kv head of 256
        Assert.Equal(18L * 2 * 1 * 256 * 2, gemma.KvBytesPerToken(new KvCacheFormat()));
        Assert.Equal(0, Preset("bert-base-uncased").KvBytesPerToken(new KvCacheFormat()));
    }

    [Fact]
    public void WeightBytes_Int4Block32_Is4Point5BitsPerWeight()
    {
        var f = new WeightFormat(WeightPrecision.Int4, 32);
        Assert.Equal(4.5, f.BitsPerWeight(WeightPrecision.Int4));
        Assert.Equal(8.5, f.BitsPerWeight(WeightPrecision.Int8));
        Assert.Equal(4096L * (2048 + 128 * 2), f.MatrixBytes(4096, 4096, WeightPrecision.Int4));
        // A row that is not a whole number of blocks still pays a scale for its last block.
        Assert.Equal(3L * (17 + 2 * 2), f.MatrixBytes(3, 33, WeightPrecision.Int4));

        var c = Preset("llama-2-7b");
        long norms = 32L * 2 * 4096 + 4096;
        Assert.Equal((6_738_415_616 - norms) * 9 / 16 + norms * 2, c.WeightBytes(f));
        Assert.Equal(6_738_415_616L * 2, c.WeightBytes(new WeightFormat(WeightPrecision.Fp16)));
        Assert.Equal(6_738_415_616L * 2, c.WeightBytes(new WeightFormat(WeightPrecision.Bf16)));
        Assert.Equal(6_738_415_616L * 4, c.WeightBytes(new WeightFormat(WeightPrecision.Fp32)));
    }

    [Fact]
    public void EmbeddingsAndHead_MayKeepAnotherPrecision()
    {
        var c = Preset("llama-2-7b");
        var all4 = c.WeightBytes(new WeightFormat(WeightPrecision.Int4));
        var mixed = c.WeightBytes(new WeightFormat(WeightPrecision.Int4, 32, WeightPrecision.Fp16));
        long table = 32_000L * 4096;
        Assert.Equal(all4 - 2 * (table * 9 / 16) + 2 * table * 2, mixed);
    }

    [Fact]
    public void DecodeFlops_Are2NPlusTheAttentionTerm()
    {
        var c = Preset("llama-2-7b");
        long n = 6_738_415_616 - 32_000L * 4096 /* embedding lookup */ - (32L * 2 * 4096 + 4096) /* norms */;
        Assert.Equal(n, c.MatmulParameters);
        Assert.Equal(2 * n + 4L * 32 * 32 * 128 * 4096, c.DecodeFlopsPerToken(4096));
        Assert.Equal(15_361_638_400, c.DecodeFlopsPerToken(4096));
        // Tied embeddings: the head multiplies by the embedding matrix, so it counts.
        var g = Preset("gemma-2b");
        Assert.Equal(2_506_172_416 - (18L * 2 * 2048 + 2048), g.MatmulParameters);
    }

    [Fact]
    public void PrefillFlops_AreTheSumOfEachTokensDecodeFlops()
    {
        var c = Preset("qwen2.5-0.5b");
        long sum = 0;
        for (int t = 1; t <= 100; t++) sum += c.DecodeFlopsPerToken(t);
        Assert.Equal(sum, c.PrefillFlops(100));
        Assert.Equal(c.DecodeFlopsPerToken(1), c.PrefillFlops(1));
        Assert.Equal(c.PrefillFlops(100) / 100.0, c.PrefillFlopsPerToken(100));
        // An encoder attends to every position for every token.
        var bert = Preset("bert-base-uncased");
        Assert.Equal(2 * bert.MatmulParameters * 128 + 4L * 12 * 768 * 128 * 128, bert.PrefillFlops(128));
    }

    [Fact]
    public void DecodeWeightBytes_SkipTheUntiedEmbeddingButNotATiedOne()
    {
        var f = new WeightFormat(WeightPrecision.Fp16);
        var llama = Preset("llama-2-7b");
        Assert.Equal(llama.WeightBytes(f) - 32_000L * 4096 * 2 + 4096 * 2, llama.DecodeWeightBytesRead(f));
        var qwen = Preset("qwen2.5-0.5b");
        Assert.Equal(qwen.WeightBytes(f), qwen.DecodeWeightBytesRead(f));
    }

    [Fact]
    public void ActivationEstimate_FollowsItsFormula()
    {
        var c = Preset("llama-2-7b");
        long t = 512, ctx = 4096;
        long attention = t * (2 * 4096 + 2 * 4096 + 2 * 4096) + 32 * t * ctx;
        long mlp = t * (2 * 4096 + 2 * 11008);
        Assert.Equal((Math.Max(attention, mlp) + 32_000) * 4, c.ActivationBytes(2000, ctx, 1));
        Assert.Equal(2 * c.ActivationBytes(2000, ctx, 1), c.ActivationBytes(2000, ctx, 2));
        Assert.True(c.ActivationBytes(16, 16, 1) < c.ActivationBytes(512, 4096, 1));
    }

    [Fact]
    public void TinyLlama_BytesReadPerToken_MatchLlamaCppFiles()
    {
        // ../shared/REFERENCES.md: llama.cpp reads ≈ file size minus the token embedding per token: Q8_0 1.10 GB, F16 2.07 GB.
        var c = Preset("tinyllama-1.1b");
        Assert.InRange(c.DecodeWeightBytesRead(new WeightFormat(WeightPrecision.Int8, 32)), 1.09e9, 1.11e9);
        Assert.InRange(c.DecodeWeightBytesRead(new WeightFormat(WeightPrecision.Fp16)), 2.06e9, 2.08e9);
    }
}
