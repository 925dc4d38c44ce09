namespace OnDevice.Formats.Llm;

/// <summary>Element type of a LLaMA checkpoint tensor (the GGUF names; block formats hold 32 elements per block).</summary>
public enum LlamaTensorType
{
    /// <summary>IEEE binary32.</summary>
    F32 = 0,
    /// <summary>IEEE binary16.</summary>
    F16 = 1,
    /// <summary>Blocks of 32: fp16 scale d, then 16 bytes; byte j holds element j (low nibble) and j+16 (high nibble); value = (q − 8)·d.</summary>
    Q4_0 = 2,
    /// <summary>Blocks of 32: fp16 scale d, then 32 int8 q; value = q·d.</summary>
    Q8_0 = 8,
}

/// <summary>How RoPE pairs the elements of a head: llama2.c/GGUF rotate (2i, 2i+1); Hugging Face rotates (i, i + head/2).</summary>
public enum RopeStyle
{
    /// <summary>Adjacent pairs (2i, 2i+1) within each head (llama2.c, GGUF LLaMA).</summary>
    Interleaved,
    /// <summary>Pairs (i, i + head_size/2) within each head (Hugging Face "rotate half").</summary>
    HalfSplit,
}

/// <summary>The shape and hyper-parameters of a LLaMA-architecture decoder.</summary>
/// <param name="Dim">Model width.</param>
/// <param name="HiddenDim">Width of the SwiGLU MLP.</param>
/// <param name="Layers">Decoder layers.</param>
/// <param name="Heads">Query heads.</param>
/// <param name="KvHeads">Key/value heads (grouped-query attention when fewer than <paramref name="Heads"/>).</param>
/// <param name="VocabSize">Vocabulary size.</param>
/// <param name="SeqLen">Maximum context length in positions.</param>
/// <param name="SharedClassifier">True when the classifier is the token embedding (tied).</param>
/// <param name="RopeTheta">RoPE base.</param>
/// <param name="NormEps">RMSNorm epsilon.</param>
/// <param name="Rope">RoPE pairing.</param>
public sealed record LlamaConfig(int Dim, int HiddenDim, int Layers, int Heads, int KvHeads, int VocabSize, int SeqLen,
    bool SharedClassifier, float RopeTheta = 10000f, float NormEps = 1e-5f, RopeStyle Rope = RopeStyle.Interleaved)
{
    /// <summary>Width of one head.</summary>
    public int HeadSize => Dim / Heads;

    /// <summary>Width of the keys (and values) of one position: KvHeads × HeadSize.</summary>
    public int KvDim => KvHeads * HeadSize;

    /// <summary>Parameters of the decoder (embedding, layers, final norm, and the classifier when not tied).</summary>
    public long Parameters =>
        (long)VocabSize * Dim * (SharedClassifier ? 1 : 2) + Dim
        + (long)Layers * (2L * Dim + 2L * Dim * Dim + 2L * Dim * KvDim + 3L * Dim * HiddenDim);

    /// <summary>Throws <see cref="ModelFormatException"/> when the shape is impossible.</summary>
    public LlamaConfig Validate(string? path)
    {
        void Need(bool ok, string fault) { if (!ok) throw new ModelFormatException(path, fault); }
        Need(Dim > 0 && HiddenDim > 0 && Layers > 0 && Heads > 0 && KvHeads > 0 && VocabSize > 0 && SeqLen > 0,
            $"implausible shape: dim {Dim}, hidden {HiddenDim}, layers {Layers}, heads {Heads}, kv heads {KvHeads}, vocab {VocabSize}, seq_len {SeqLen}");
        Need(Dim <= 1 << 16 && HiddenDim <= 1 << 18 && Layers <= 1024 && VocabSize <= 1 << 22 && SeqLen <= 1 << 22,
            $"implausibly large shape: dim {Dim}, hidden {HiddenDim}, layers {Layers}, vocab {VocabSize}, seq_len {SeqLen}");
        Need(Dim % Heads == 0, $"n_heads {Heads} does not divide dim {Dim}");
        Need(HeadSize % 2 == 0, $"head size {HeadSize} is odd; RoPE needs pairs");
        Need(KvHeads <= Heads && Heads % KvHeads == 0, $"n_kv_heads {KvHeads} does not divide n_heads {Heads}");
        Need(RopeTheta > 0 && NormEps > 0, $"rope theta {RopeTheta} and norm epsilon {NormEps} must be positive");
        return this;
    }
}

/// <summary>One weight tensor: <paramref name="Rows"/> × <paramref name="Cols"/> (a vector has one row), row-major, in <paramref name="Type"/>.</summary>
/// <param name="Name">Canonical (GGUF) name, e.g. <c>blk.0.attn_q.weight</c>.</param>
/// <param name="Type">Element type.</param>
/// <param name="Rows">Rows (output features).</param>
/// <param name="Cols">Columns (input features; the contiguous axis).</param>
/// <param name="Data">The bytes, usually a slice of a memory-mapped file.</param>
public sealed record LlamaTensor(string Name, LlamaTensorType Type, int Rows, int Cols, ReadOnlyMemory<byte> Data)
{
    /// <summary>Bytes of a <paramref name="rows"/> × <paramref name="cols"/> tensor of <paramref name="type"/>.</summary>
    public static long ByteSize(LlamaTensorType type, long rows, long cols) => type switch
    {
        LlamaTensorType.F32 => rows * cols * 4,
        LlamaTensorType.F16 => rows * cols * 2,
        LlamaTensorType.Q8_0 => rows * (cols / 32) * 34,
        LlamaTensorType.Q4_0 => rows * (cols / 32) * 18,
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };
}

/// <summary>A tokenizer vocabulary in the SentencePiece/llama2.c style: byte pieces (spaces as ' '), merge scores, special ids.</summary>
/// <param name="Pieces">The bytes of each token; byte-fallback tokens are spelled <c>&lt;0xXX&gt;</c>.</param>
/// <param name="Scores">Merge priority of each token (higher merges first).</param>
/// <param name="BosId">Beginning-of-sequence id.</param>
/// <param name="EosId">End-of-sequence id.</param>
public sealed record LlamaVocabulary(byte[][] Pieces, float[] Scores, int BosId = 1, int EosId = 2)
{
    /// <summary>Tokens in the vocabulary.</summary>
    public int Count => Pieces.Length;
}

/// <summary>A LLaMA checkpoint as read from any format: shape, weights by canonical (GGUF) name, optional vocabulary.</summary>
/// <param name="Path">The file (or folder) read.</param>
/// <param name="Format">"llama2c", "gguf" or "hf-safetensors".</param>
/// <param name="Config">Shape and hyper-parameters.</param>
/// <param name="Tensors">Weights by canonical name: token_embd.weight, blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_down, ffn_up}.weight, output_norm.weight, output.weight (absent when tied).</param>
/// <param name="Vocabulary">The tokenizer when the file carries one (GGUF), else null.</param>
public sealed record LlamaCheckpoint(string Path, string Format, LlamaConfig Config, IReadOnlyDictionary<string, LlamaTensor> Tensors, LlamaVocabulary? Vocabulary)
{
    /// <summary>The canonical names of layer <paramref name="layer"/>'s tensors, in the order the engine uses them.</summary>
    public static string[] LayerTensorNames(int layer) =>
        new[] { "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_down", "ffn_up" }
            .Select(n => $"blk.{layer}.{n}.weight").ToArray();

    /// <summary>The tensor named <paramref name="name"/>, checked to be <paramref name="rows"/> × <paramref name="cols"/>.</summary>
    public LlamaTensor Get(string name, int rows, int cols)
    {
        if (!Tensors.TryGetValue(name, out var t)) throw new ModelFormatException(Path, $"tensor '{name}' is missing");
        if (t.Rows != rows || t.Cols != cols)
            throw new ModelFormatException(Path, $"tensor '{name}' is {t.Rows}×{t.Cols}, expected {rows}×{cols}");
        return t;
    }

    /// <summary>Opens a checkpoint by its contents: GGUF (magic "GGUF"), a Hugging Face folder (config.json + *.safetensors), else llama2.c.</summary>
    public static LlamaCheckpoint Open(string path)
    {
        if (Directory.Exists(path)) return HuggingFace.HfLlamaReader.Read(path);
        if (!File.Exists(path)) throw new ModelFormatException(path, "file not found");
        var magic = new byte[4];
        int got;
        using (var fs = File.OpenRead(path)) got = fs.ReadAtLeast(magic, 4, throwOnEndOfStream: false);
        if (got == 4 && magic.AsSpan().SequenceEqual("GGUF"u8)) return Gguf.GgufFile.ReadLlama(path);
        if (path.EndsWith("config.json", StringComparison.OrdinalIgnoreCase))
            return HuggingFace.HfLlamaReader.Read(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
        return Llama2c.Llama2cReader.Read(path);
    }
}
