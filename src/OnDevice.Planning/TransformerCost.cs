namespace OnDevice.Planning;

/// <summary>What a weight tensor does at inference, which decides its precision and whether it is read per token.</summary>
public enum TensorRole
{
    /// <summary>Token embedding: one row is gathered per token (no multiplications).</summary>
    Embedding,
    /// <summary>Learned position or token-type embedding: gathered, like <see cref="Embedding"/>.</summary>
    PositionEmbedding,
    /// <summary>A matrix multiplied with every token's activations.</summary>
    Linear,
    /// <summary>The output head (vocab × hidden), untied.</summary>
    Head,
    /// <summary>A one-dimensional tensor: norm weight or bias.</summary>
    Vector,
}

/// <summary>One weight tensor (repeated <see cref="Count"/> times, once per layer); <see cref="Cols"/> is the reduction axis.</summary>
public sealed record WeightTensor(string Name, string Component, long Rows, long Cols, int Count, TensorRole Role)
{
    /// <summary>Elements of all copies.</summary>
    public long Parameters => checked(Rows * Cols * Count);
}

/// <summary>
/// Exact arithmetic over a transformer's shape: parameters by component, weight bytes at a storage format, FLOPs per
/// token for prefill and decode, KV-cache bytes and an activation estimate. Formulas are in <c>docs/numeracy.md</c>.
/// </summary>
public sealed class TransformerCost
{
    /// <summary>Component names in report order.</summary>
    public static readonly IReadOnlyList<string> Components = ["embeddings", "attention", "mlp", "norms", "head", "pooler"];

    /// <summary>Tokens processed per forward pass during prefill (the chunk the activation estimate assumes), like llama.cpp's default micro-batch.</summary>
    public const int PrefillChunkTokens = 512;

    /// <summary>Builds the tensor list of <paramref name="config"/>.</summary>
    public TransformerCost(TransformerConfig config)
    {
        Config = config.Validate();
        Tensors = BuildTensors(config);
    }

    /// <summary>The shape.</summary>
    public TransformerConfig Config { get; }

    /// <summary>Every weight tensor, in checkpoint-like order.</summary>
    public IReadOnlyList<WeightTensor> Tensors { get; }

    /// <summary>Total parameters.</summary>
    public long Parameters => Tensors.Sum(t => t.Parameters);

    /// <summary>Parameters by component (embeddings, attention, mlp, norms, head, pooler); components without parameters are left out.</summary>
    public IReadOnlyDictionary<string, long> ParametersByComponent =>
        Components.Select(c => (c, n: Tensors.Where(t => t.Component == c).Sum(t => t.Parameters))).Where(x => x.n > 0)
            .ToDictionary(x => x.c, x => x.n);

    /// <summary>Parameters outside the embedding tables and the output head (what model cards call "non-embedding").</summary>
    public long NonEmbeddingParameters => Tensors.Where(t => t.Role is not (TensorRole.Embedding or TensorRole.PositionEmbedding or TensorRole.Head)).Sum(t => t.Parameters);

    private static List<WeightTensor> BuildTensors(TransformerConfig c)
    {
        long h = c.HiddenSize, i = c.IntermediateSize, q = c.QueryDim, kv = c.KvDim;
        int n = c.Layers;
        long normVec = c.Norm == NormKind.LayerNorm ? 2 * h : h; // LayerNorm: weight + bias
        var t = new List<WeightTensor>
        {
            new("token_embedding", "embeddings", c.VocabSize, h, 1, TensorRole.Embedding),
        };
        if (c.LearnedPositions > 0) t.Add(new("position_embedding", "embeddings", c.LearnedPositions, h, 1, TensorRole.PositionEmbedding));
        if (c.TokenTypes > 0) t.Add(new("token_type_embedding", "embeddings", c.TokenTypes, h, 1, TensorRole.PositionEmbedding));
        if (c.EmbeddingNorm) t.Add(new("embedding_norm", "embeddings", 1, normVec, 1, TensorRole.Vector));

        t.Add(new("attention_norm", "norms", 1, normVec, n, TensorRole.Vector));
        t.Add(new("wq", "attention", q, h, n, TensorRole.Linear));
        t.Add(new("wk", "attention", kv, h, n, TensorRole.Linear));
        t.Add(new("wv", "attention", kv, h, n, TensorRole.Linear));
        if (c.QkvBias)
        {
            t.Add(new("bq", "attention", 1, q, n, TensorRole.Vector));
            t.Add(new("bk", "attention", 1, kv, n, TensorRole.Vector));
            t.Add(new("bv", "attention", 1, kv, n, TensorRole.Vector));
        }
        t.Add(new("wo", "attention", h, q, n, TensorRole.Linear));
        if (c.OutputBias) t.Add(new("bo", "attention", 1, h, n, TensorRole.Vector));
        t.Add(new("mlp_norm", "norms", 1, normVec, n, TensorRole.Vector));
        if (c.GatedMlp)
        {
            t.Add(new("w_gate", "mlp", i, h, n, TensorRole.Linear));
            t.Add(new("w_up", "mlp", i, h, n, TensorRole.Linear));
            if (c.MlpBias) { t.Add(new("b_gate", "mlp", 1, i, n, TensorRole.Vector)); t.Add(new("b_up", "mlp", 1, i, n, TensorRole.Vector)); }
        }
        else
        {
            t.Add(new("w_in", "mlp", i, h, n, TensorRole.Linear));
            if (c.MlpBias) t.Add(new("b_in", "mlp", 1, i, n, TensorRole.Vector));
        }
        t.Add(new("w_down", "mlp", h, i, n, TensorRole.Linear));
        if (c.MlpBias) t.Add(new("b_down", "mlp", 1, h, n, TensorRole.Vector));
        if (c.FinalNorm) t.Add(new("final_norm", "norms", 1, normVec, 1, TensorRole.Vector));
        if (c.Pooler)
        {
            t.Add(new("pooler", "pooler", h, h, 1, TensorRole.Linear));
            t.Add(new("pooler_bias", "pooler", 1, h, 1, TensorRole.Vector));
        }
        if (c.IsDecoder && !c.TiedEmbeddings) t.Add(new("output_head", "head", c.VocabSize, h, 1, TensorRole.Head));
        return t;
    }

    private static long Bytes(WeightTensor t, WeightFormat f) => t.Role switch
    {
        TensorRole.Vector => f.VectorBytes(t.Rows * t.Cols) * t.Count,
        TensorRole.Embedding or TensorRole.PositionEmbedding or TensorRole.Head => f.MatrixBytes(t.Rows, t.Cols, f.Embeddings) * t.Count,
        _ => f.MatrixBytes(t.Rows, t.Cols, f.Precision) * t.Count,
    };

    /// <summary>Bytes of all weights stored in format <paramref name="format"/>.</summary>
    public long WeightBytes(WeightFormat format) => Tensors.Sum(t => Bytes(t, format.Validate()));

    /// <summary>Weight bytes by component in format <paramref name="format"/>.</summary>
    public IReadOnlyDictionary<string, long> WeightBytesByComponent(WeightFormat format) =>
        Components.Select(c => (c, n: Tensors.Where(t => t.Component == c).Sum(t => Bytes(t, format)))).Where(x => x.n > 0)
            .ToDictionary(x => x.c, x => x.n);

    /// <summary>
    /// Weight bytes one decode step reads: every matrix multiplied per token (the head too; with tied embeddings
    /// that is the whole embedding matrix), every vector, and one gathered row per embedding table.
    /// </summary>
    public long DecodeWeightBytesRead(WeightFormat format)
    {
        long total = 0;
        foreach (var t in Tensors)
            total += t.Role switch
            {
                TensorRole.Embedding when Config.IsDecoder && Config.TiedEmbeddings => Bytes(t, format),
                TensorRole.Embedding or TensorRole.PositionEmbedding => format.MatrixBytes(1, t.Cols, format.Embeddings),
                _ => Bytes(t, format),
            };
        return total;
    }

    /// <summary>Parameters multiplied with each token's activations (matrices and the output head, tied or not): the N of "2·N FLOPs per token".</summary>
    public long MatmulParameters =>
        Tensors.Where(t => t.Role is TensorRole.Linear or TensorRole.Head).Sum(t => t.Parameters)
        + (Config.IsDecoder && Config.TiedEmbeddings ? (long)Config.VocabSize * Config.HiddenSize : 0);

    /// <summary>Attention FLOPs for one token attending to <paramref name="span"/> positions: 2·heads·head_dim·span for Q·Kᵀ plus as much for the weighted sum of V, per layer.</summary>
    public long AttentionFlops(long span) => checked(4L * Config.Layers * Config.QueryDim * span);

    /// <summary>FLOPs to generate one token when <paramref name="contextTokens"/> positions (this one included) are attended: 2·N + 4·layers·heads·head_dim·context.</summary>
    public long DecodeFlopsPerToken(long contextTokens) => checked(2 * MatmulParameters + AttentionFlops(CheckTokens(contextTokens, "context")));

    /// <summary>
    /// FLOPs of one forward pass over a prompt of <paramref name="promptTokens"/> tokens. Causal decoders: token t
    /// attends to t positions, so the attention term sums to 2·layers·heads·head_dim·P·(P+1). Encoders attend to all P.
    /// </summary>
    public long PrefillFlops(long promptTokens)
    {
        long p = CheckTokens(promptTokens, "prompt");
        long dense = checked(2 * MatmulParameters * p);
        long attention = Config.IsDecoder
            ? checked(2L * Config.Layers * Config.QueryDim * p * (p + 1))
            : checked(4L * Config.Layers * Config.QueryDim * p * p);
        return checked(dense + attention);
    }

    /// <summary>Mean FLOPs per token of <see cref="PrefillFlops"/>.</summary>
    public double PrefillFlopsPerToken(long promptTokens) => (double)PrefillFlops(promptTokens) / promptTokens;

    /// <summary>KV-cache bytes for one token of one sequence: layers × 2 (K and V) × kv_heads × bytes per head vector.</summary>
    public long KvBytesPerToken(KvCacheFormat format) =>
        Config.IsDecoder ? checked(Config.Layers * 2L * Config.KvHeads * format.Validate().BytesPerHeadVector(Config.HeadDim)) : 0;

    /// <summary>
    /// KV-cache bytes: layers × 2 × kv_heads × head_dim × context × batch × bytes per element (int8/int4 add one fp16
    /// scale per block; paged caches round each sequence up to whole pages). Zero for encoders.
    /// </summary>
    public long KvCacheBytes(KvCacheFormat format, long contextTokens, long batch)
    {
        long ctx = CheckTokens(contextTokens, "context");
        if (batch < 1) throw new PlanningException($"batch must be at least 1, got {batch}");
        return checked(KvBytesPerToken(format) * format.StoredTokens(ctx) * batch);
    }

    /// <summary>
    /// Working memory estimate (fp32 activations) for one forward pass over a chunk of
    /// min(prompt, <see cref="PrefillChunkTokens"/>) tokens whose queries attend to <paramref name="contextTokens"/>
    /// positions: the larger of the attention phase (residual, normed input, q, k, v, attention output and the
    /// heads × chunk × context score matrix) and the MLP phase (residual, normed input and the inner activations),
    /// plus the logits of the last position. Encoders process the whole prompt at once.
    /// </summary>
    public long ActivationBytes(long promptTokens, long contextTokens, long batch)
    {
        long p = CheckTokens(promptTokens, "prompt");
        long ctx = CheckTokens(contextTokens, "context");
        if (batch < 1) throw new PlanningException($"batch must be at least 1, got {batch}");
        long t = Config.IsDecoder ? Math.Min(p, PrefillChunkTokens) : p;
        long span = Config.IsDecoder ? ctx : p;
        var c = Config;
        long attention = checked(t * (2L * c.HiddenSize + 2 * c.QueryDim + 2 * c.KvDim) + (long)c.Heads * t * span);
        long mlp = checked(t * (2L * c.HiddenSize + (c.GatedMlp ? 2L : 1L) * c.IntermediateSize));
        long logits = c.IsDecoder ? c.VocabSize : 0;
        return checked((Math.Max(attention, mlp) + logits) * batch * 4);
    }

    private static long CheckTokens(long n, string what)
    {
        if (n < 1) throw new PlanningException($"{what} must be at least 1 token, got {n}");
        if (n > 1L << 24) throw new PlanningException($"{what} of {n:N0} tokens is beyond what this estimator handles (16,777,216)");
        return n;
    }
}
