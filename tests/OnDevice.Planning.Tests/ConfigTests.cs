namespace OnDevice.Planning.Tests;

public class ConfigTests
{
    private const string Llama = """
        { "model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
          "num_attention_heads": 32, "vocab_size": 32000, "max_position_embeddings": 4096, "rms_norm_eps": 1e-05 }
        """;

    [Fact]
    public void HuggingFaceConfig_DefaultsFollowTheConfigClasses()
    {
        var c = TransformerConfig.FromHuggingFace(Llama, "config.json");
        Assert.Equal(32, c.KvHeads); // num_key_value_heads absent: multi-head attention
        Assert.Equal(128, c.HeadDim);
        Assert.False(c.TiedEmbeddings); // LlamaConfig default
        Assert.Equal(6_738_415_616, new TransformerCost(c).Parameters);

        var gemma = TransformerConfig.FromHuggingFace("""
            { "model_type": "gemma", "hidden_size": 2048, "intermediate_size": 16384, "num_hidden_layers": 18,
              "num_attention_heads": 8, "num_key_value_heads": 1, "head_dim": 256, "vocab_size": 256000 }
            """, "gemma.json");
        Assert.True(gemma.TiedEmbeddings); // GemmaConfig default
        Assert.Equal(2_506_172_416, new TransformerCost(gemma).Parameters);
    }

    [Fact]
    public void LlamaAttentionBias_AddsBiasesToQKVAndO_AndMlpBiasToTheMlp()
    {
        var plain = new TransformerCost(TransformerConfig.FromHuggingFace(Llama, "a"));
        var biased = new TransformerCost(TransformerConfig.FromHuggingFace(Llama.Replace("\"rms_norm_eps\"", "\"attention_bias\": true, \"mlp_bias\": true, \"rms_norm_eps\""), "b"));
        Assert.Equal(32L * (4 * 4096) + 32L * (2 * 11008 + 4096), biased.Parameters - plain.Parameters);
    }

    [Fact]
    public void MissingField_IsNamed()
    {
        var e = Assert.Throws<PlanningException>(() => TransformerConfig.FromHuggingFace(Llama.Replace("\"intermediate_size\": 11008,", ""), "my/config.json"));
        Assert.Equal("my/config.json: missing field 'intermediate_size'", e.Message);
        var noType = Assert.Throws<PlanningException>(() => TransformerConfig.FromHuggingFace("{\"hidden_size\": 8}", "c.json"));
        Assert.Contains("missing field 'model_type'", noType.Message);
        var gpt2 = Assert.Throws<PlanningException>(() => TransformerConfig.FromHuggingFace("{\"model_type\": \"gpt2\", \"n_embd\": 768}", "g.json"));
        Assert.Contains("missing field 'n_head'", gpt2.Message);
    }

    [Fact]
    public void NonsensicalValues_AreExplained()
    {
        var heads = Assert.Throws<PlanningException>(() => TransformerConfig.FromHuggingFace(Llama.Replace("\"num_attention_heads\": 32", "\"num_attention_heads\": 30"), "c.json"));
        Assert.Contains("30 attention heads do not divide hidden size 4096", heads.Message);
        var kv = Assert.Throws<PlanningException>(() => TransformerConfig.FromHuggingFace(Llama.Replace("\"num_attention_heads\": 32", "\"num_attention_heads\": 32, \"num_key_value_heads\": 5"), "c.json"));
        Assert.Contains("5 key/value heads do not divide 32 attention heads", kv.Message);
        var negative = Assert.Throws<PlanningException>(() => TransformerConfig.FromHuggingFace(Llama.Replace("\"num_hidden_layers\": 32", "\"num_hidden_layers\": -2"), "c.json"));
        Assert.Contains("number of layers must be a positive integer, got -2", negative.Message);
        var text = Assert.Throws<PlanningException>(() => TransformerConfig.FromHuggingFace(Llama.Replace("\"vocab_size\": 32000", "\"vocab_size\": \"big\""), "c.json"));
        Assert.Contains("field 'vocab_size' should be an integer, got \"big\"", text.Message);
        var frac = Assert.Throws<PlanningException>(() => TransformerConfig.FromHuggingFace(Llama.Replace("\"vocab_size\": 32000", "\"vocab_size\": 3.5"), "c.json"));
        Assert.Contains("should be an integer", frac.Message);
        var family = Assert.Throws<PlanningException>(() => TransformerConfig.FromHuggingFace("{\"model_type\": \"mamba\"}", "c.json"));
        Assert.Contains("model_type 'mamba' is not supported; supported: llama, mistral, qwen2, gemma, phi3, gpt2, bert", family.Message);
        Assert.Contains("not valid JSON", Assert.Throws<PlanningException>(() => TransformerConfig.FromHuggingFace("{", "c.json")).Message);
    }

    [Fact]
    public void BadTokenCounts_AreExplained()
    {
        var c = new TransformerCost(Presets.Get("gpt2").Config);
        Assert.Contains("context must be at least 1 token, got -5", Assert.Throws<PlanningException>(() => c.KvCacheBytes(new KvCacheFormat(), -5, 1)).Message);
        Assert.Contains("batch must be at least 1", Assert.Throws<PlanningException>(() => c.KvCacheBytes(new KvCacheFormat(), 5, 0)).Message);
        Assert.Contains("does not fit in a context of 100", Assert.Throws<PlanningException>(() =>
            Budget.Estimate(c, new BudgetOptions { Context = 100, Prompt = 200 })).Message);
        Assert.Contains("block size must be at least 1", Assert.Throws<PlanningException>(() => c.WeightBytes(new WeightFormat(WeightPrecision.Int4, 0))).Message);
        Assert.Contains("page size must be 0", Assert.Throws<PlanningException>(() => c.KvCacheBytes(new KvCacheFormat(PageSizeTokens: -1), 5, 1)).Message);
    }

    [Fact]
    public void UnknownPreset_ListsTheKnownNames()
    {
        var e = Assert.Throws<UnknownNameException>(() => Presets.Get("llama-9"));
        Assert.StartsWith("unknown preset 'llama-9'; known presets: llama-2-7b, llama-3-8b, mistral-7b, phi-3-mini, gemma-2b, qwen2.5-0.5b, qwen2.5-1.5b, qwen2.5-3b, qwen2.5-7b", e.Message);
        Assert.Equal("qwen2.5-7b", Presets.Get("Qwen2.5-7B").Name);
    }

    [Fact]
    public void PrecisionNames_ParseAndUnknownOnesListTheKnown()
    {
        Assert.Equal(WeightPrecision.Int4, Precisions.ParseWeights("INT4"));
        Assert.Equal(KvPrecision.Int8, Precisions.ParseKv("int8"));
        Assert.Equal("unknown weight precision 'int3'; known: fp32, fp16, bf16, int8, int4", Assert.Throws<PlanningException>(() => Precisions.ParseWeights("int3")).Message);
        Assert.Equal("unknown KV-cache precision 'fp32'; known: fp16, int8, int4", Assert.Throws<PlanningException>(() => Precisions.ParseKv("fp32")).Message);
    }
}
