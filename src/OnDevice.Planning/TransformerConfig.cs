using System.Globalization;
using System.Text.Json;

namespace OnDevice.Planning;

/// <summary>Normalization layer kind: RMSNorm has a weight vector, LayerNorm a weight and a bias.</summary>
public enum NormKind
{
    /// <summary>RMSNorm: one weight vector.</summary>
    RmsNorm,
    /// <summary>LayerNorm: weight and bias vectors.</summary>
    LayerNorm,
}

/// <summary>
/// The shape of a transformer: everything the parameter, byte, FLOP and KV-cache arithmetic needs. Built from a
/// Hugging Face <c>config.json</c> (<see cref="FromHuggingFace(string, string)"/>), a llama2.c checkpoint header
/// (<see cref="Llama2cCheckpoint"/>) or a named preset (<see cref="Presets"/>).
/// </summary>
public sealed record TransformerConfig
{
    /// <summary>Display name (preset name or file name).</summary>
    public required string Name { get; init; }

    /// <summary>Family (<c>model_type</c>): llama, mistral, qwen2, gemma, phi3, gpt2, bert, llama2c.</summary>
    public required string Family { get; init; }

    /// <summary>Width of the residual stream (d_model).</summary>
    public required int HiddenSize { get; init; }

    /// <summary>Width of the MLP's inner layer.</summary>
    public required int IntermediateSize { get; init; }

    /// <summary>Number of transformer blocks.</summary>
    public required int Layers { get; init; }

    /// <summary>Query heads.</summary>
    public required int Heads { get; init; }

    /// <summary>Key/value heads (= <see cref="Heads"/> for multi-head, fewer for GQA, 1 for MQA).</summary>
    public required int KvHeads { get; init; }

    /// <summary>Width of one head.</summary>
    public required int HeadDim { get; init; }

    /// <summary>Vocabulary size (rows of the token embedding).</summary>
    public required int VocabSize { get; init; }

    /// <summary>True when the output head shares the token embedding's matrix.</summary>
    public required bool TiedEmbeddings { get; init; }

    /// <summary>True for gated MLPs (SwiGLU/GeGLU: gate, up, down); false for plain two-matrix MLPs.</summary>
    public bool GatedMlp { get; init; } = true;

    /// <summary>Biases on the query, key and value projections.</summary>
    public bool QkvBias { get; init; }

    /// <summary>Bias on the attention output projection.</summary>
    public bool OutputBias { get; init; }

    /// <summary>Biases on the MLP's matrices.</summary>
    public bool MlpBias { get; init; }

    /// <summary>Kind of every normalization layer.</summary>
    public NormKind Norm { get; init; } = NormKind.RmsNorm;

    /// <summary>Rows of a learned position embedding (GPT-2, BERT); 0 for rotary positions.</summary>
    public int LearnedPositions { get; init; }

    /// <summary>Rows of a token-type embedding (BERT); 0 otherwise.</summary>
    public int TokenTypes { get; init; }

    /// <summary>A normalization right after the embeddings (BERT).</summary>
    public bool EmbeddingNorm { get; init; }

    /// <summary>A normalization after the last block (pre-norm decoders).</summary>
    public bool FinalNorm { get; init; } = true;

    /// <summary>A pooler (dense hidden×hidden with bias) on the first token (BERT).</summary>
    public bool Pooler { get; init; }

    /// <summary>True for causal decoders that generate token by token with a KV cache; false for encoders (BERT).</summary>
    public bool IsDecoder { get; init; } = true;

    /// <summary>Longest context the model was trained for (<c>max_position_embeddings</c>), if known.</summary>
    public int? MaxContext { get; init; }

    /// <summary>Sliding attention window declared by the config, if any (informational: the KV cache here keeps every token).</summary>
    public int? SlidingWindow { get; init; }

    /// <summary>Width of all query heads together.</summary>
    public long QueryDim => (long)Heads * HeadDim;

    /// <summary>Width of all key (or value) heads together.</summary>
    public long KvDim => (long)KvHeads * HeadDim;

    /// <summary>Checks that the numbers make sense together; throws <see cref="PlanningException"/> naming the fault.</summary>
    public TransformerConfig Validate()
    {
        void Positive(string field, long v)
        {
            if (v <= 0) throw new PlanningException($"{Name}: {field} must be a positive integer, got {v}");
        }
        Positive("hidden size", HiddenSize);
        Positive("intermediate size", IntermediateSize);
        Positive("number of layers", Layers);
        Positive("number of attention heads", Heads);
        Positive("number of key/value heads", KvHeads);
        Positive("head dimension", HeadDim);
        Positive("vocabulary size", VocabSize);
        if (KvHeads > Heads)
            throw new PlanningException($"{Name}: {KvHeads} key/value heads is more than the {Heads} attention heads");
        if (Heads % KvHeads != 0)
            throw new PlanningException($"{Name}: {KvHeads} key/value heads do not divide {Heads} attention heads (grouped-query attention needs whole groups)");
        if (LearnedPositions < 0 || TokenTypes < 0) throw new PlanningException($"{Name}: position and token-type table sizes cannot be negative");
        if (MaxContext is <= 0) throw new PlanningException($"{Name}: maximum context must be positive, got {MaxContext}");
        return this;
    }

    /// <summary>Model families <see cref="FromHuggingFace(string, string)"/> understands.</summary>
    public static IReadOnlyList<string> SupportedFamilies { get; } = ["llama", "mistral", "qwen2", "gemma", "phi3", "gpt2", "bert"];

    /// <summary>Reads a Hugging Face <c>config.json</c> file.</summary>
    public static TransformerConfig FromHuggingFaceFile(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"config not found: {path}", path);
        return FromHuggingFace(File.ReadAllText(path), Path.GetFileName(path));
    }

    /// <summary>Parses the text of a Hugging Face <c>config.json</c>; <paramref name="name"/> names it in messages.</summary>
    public static TransformerConfig FromHuggingFace(string json, string name)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json); }
        catch (JsonException e) { throw new PlanningException($"{name}: not valid JSON: {e.Message}"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new PlanningException($"{name}: expected a JSON object");
            return FromHuggingFace(doc.RootElement, name);
        }
    }

    /// <summary>Builds a config from a parsed Hugging Face config object.</summary>
    public static TransformerConfig FromHuggingFace(JsonElement root, string name)
    {
        var f = new Fields(root, name);
        string family = f.String("model_type");
        return family switch
        {
            "llama" or "mistral" or "qwen2" or "gemma" or "phi3" => Decoder(f, family, name),
            "gpt2" => Gpt2(f, name),
            "bert" => Bert(f, name),
            _ => throw new PlanningException($"{name}: model_type '{family}' is not supported; supported: {string.Join(", ", SupportedFamilies)}"),
        };
    }

    private static TransformerConfig Decoder(Fields f, string family, string name)
    {
        int hidden = f.Int("hidden_size");
        int heads = f.Int("num_attention_heads");
        int kvHeads = f.OptionalInt("num_key_value_heads") ?? heads; // the Hugging Face default: multi-head attention
        int headDim = f.OptionalInt("head_dim") ?? HeadDimOf(name, hidden, heads);
        bool attentionBias = family == "llama" && (f.OptionalBool("attention_bias") ?? false);
        int? window = family switch
        {
            "mistral" or "phi3" => f.OptionalInt("sliding_window"),
            "qwen2" when f.OptionalBool("use_sliding_window") == true => f.OptionalInt("sliding_window"),
            _ => null,
        };
        return new TransformerConfig
        {
            Name = name,
            Family = family,
            HiddenSize = hidden,
            IntermediateSize = f.Int("intermediate_size"),
            Layers = f.Int("num_hidden_layers"),
            Heads = heads,
            KvHeads = kvHeads,
            HeadDim = headDim,
            VocabSize = f.Int("vocab_size"),
            // Defaults of the Hugging Face config classes: Gemma ties, the others do not.
            TiedEmbeddings = f.OptionalBool("tie_word_embeddings") ?? family == "gemma",
            GatedMlp = true,
            QkvBias = family == "qwen2" || attentionBias, // Qwen2 always has q/k/v biases; LLaMA's attention_bias covers q, k, v and o
            OutputBias = attentionBias,
            MlpBias = family == "llama" && (f.OptionalBool("mlp_bias") ?? false),
            Norm = NormKind.RmsNorm,
            MaxContext = f.OptionalInt("max_position_embeddings"),
            SlidingWindow = window,
        }.Validate();
    }

    private static TransformerConfig Gpt2(Fields f, string name)
    {
        int hidden = f.Int("n_embd");
        int heads = f.Int("n_head");
        int positions = f.Int("n_positions");
        return new TransformerConfig
        {
            Name = name,
            Family = "gpt2",
            HiddenSize = hidden,
            IntermediateSize = f.OptionalInt("n_inner") ?? checked(4 * hidden),
            Layers = f.Int("n_layer"),
            Heads = heads,
            KvHeads = heads,
            HeadDim = HeadDimOf(name, hidden, heads),
            VocabSize = f.Int("vocab_size"),
            TiedEmbeddings = f.OptionalBool("tie_word_embeddings") ?? true,
            GatedMlp = false,
            QkvBias = true,
            OutputBias = true,
            MlpBias = true,
            Norm = NormKind.LayerNorm,
            LearnedPositions = positions,
            MaxContext = positions,
        }.Validate();
    }

    private static TransformerConfig Bert(Fields f, string name)
    {
        int hidden = f.Int("hidden_size");
        int heads = f.Int("num_attention_heads");
        int positions = f.Int("max_position_embeddings");
        return new TransformerConfig
        {
            Name = name,
            Family = "bert",
            HiddenSize = hidden,
            IntermediateSize = f.Int("intermediate_size"),
            Layers = f.Int("num_hidden_layers"),
            Heads = heads,
            KvHeads = heads,
            HeadDim = HeadDimOf(name, hidden, heads),
            VocabSize = f.Int("vocab_size"),
            TiedEmbeddings = false,
            GatedMlp = false,
            QkvBias = true,
            OutputBias = true,
            MlpBias = true,
            Norm = NormKind.LayerNorm,
            LearnedPositions = positions,
            TokenTypes = f.OptionalInt("type_vocab_size") ?? 2,
            EmbeddingNorm = true,
            FinalNorm = false, // post-norm: each block ends with its own LayerNorm
            Pooler = true,
            IsDecoder = false,
            MaxContext = positions,
        }.Validate();
    }

    private static int HeadDimOf(string name, int hidden, int heads)
    {
        if (heads <= 0) throw new PlanningException($"{name}: number of attention heads must be a positive integer, got {heads}");
        if (hidden % heads != 0)
            throw new PlanningException($"{name}: {heads} attention heads do not divide hidden size {hidden} (and no head_dim is given)");
        return hidden / heads;
    }

    /// <summary>Typed access to config fields with messages naming the file and the field.</summary>
    private sealed class Fields(JsonElement root, string name)
    {
        private JsonElement? Get(string field) =>
            root.TryGetProperty(field, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

        public string String(string field) => Get(field) switch
        {
            null => throw new PlanningException($"{name}: missing field '{field}'"),
            { ValueKind: JsonValueKind.String } v => v.GetString()!,
            var v => throw new PlanningException($"{name}: field '{field}' should be a string, got {v.Value.GetRawText()}"),
        };

        public int Int(string field) => OptionalInt(field) ?? throw new PlanningException($"{name}: missing field '{field}'");

        public int? OptionalInt(string field)
        {
            if (Get(field) is not { } v) return null;
            if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i)) return i;
            if (v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double d) && d == Math.Floor(d) && d is >= int.MinValue and <= int.MaxValue) return (int)d;
            throw new PlanningException($"{name}: field '{field}' should be an integer, got {v.GetRawText()}");
        }

        public bool? OptionalBool(string field) => Get(field) switch
        {
            null => null,
            { ValueKind: JsonValueKind.True } => true,
            { ValueKind: JsonValueKind.False } => false,
            var v => throw new PlanningException($"{name}: field '{field}' should be true or false, got {v.Value.GetRawText()}"),
        };
    }

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Name} ({Family}: hidden {HiddenSize}, intermediate {IntermediateSize}, {Layers} layers, {Heads} heads, {KvHeads} kv heads, head dim {HeadDim}, vocab {VocabSize}{(TiedEmbeddings ? ", tied embeddings" : "")})");
}
