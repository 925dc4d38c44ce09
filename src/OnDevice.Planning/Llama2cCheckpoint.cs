using OnDevice.Formats;
using OnDevice.Formats.Llama2c;
using OnDevice.Formats.Llm;

namespace OnDevice.Planning;

/// <summary>
/// The header of a llama2.c checkpoint (legacy format): 7 int32 — dim, hidden_dim, n_layers, n_heads, n_kv_heads,
/// vocab_size (negative: the classifier is not shared with the embedding), seq_len — followed by fp32 weights and
/// the RoPE tables freq_cis_real/imag [seq_len, head_size/2]. Reading checks the file length against the header.
/// </summary>
public sealed record Llama2cCheckpoint(int Dim, int HiddenDim, int Layers, int Heads, int KvHeads, int VocabSize, bool SharedClassifier, int SeqLen)
{
    /// <summary>Bytes of the legacy header.</summary>
    public const int HeaderBytes = 7 * 4;

    /// <summary>Width of one head.</summary>
    public int HeadSize => Dim / Heads;

    /// <summary>Bytes of the RoPE tables stored after the layer weights (real and imaginary, seq_len × head_size/2 floats each).</summary>
    public long RopeTableBytes => 2L * SeqLen * (HeadSize / 2) * 4;

    /// <summary>
    /// Reads and checks the header of <paramref name="path"/> with the runtime's reader (<see cref="Llama2cReader"/>),
    /// so the planner accepts exactly the files the engine loads; its faults become <see cref="PlanningException"/>s.
    /// </summary>
    public static Llama2cCheckpoint Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"checkpoint not found: {path}", path);
        LlamaConfig c;
        try { c = Llama2cReader.Read(path).Config; }
        catch (ModelFormatException e) { throw new PlanningException(e.Message); }
        return new Llama2cCheckpoint(c.Dim, c.HiddenDim, c.Layers, c.Heads, c.KvHeads, c.VocabSize, c.SharedClassifier, c.SeqLen);
    }

    /// <summary>The model's shape.</summary>
    public TransformerConfig ToConfig(string name) => new TransformerConfig
    {
        Name = name,
        Family = "llama2c",
        HiddenSize = Dim,
        IntermediateSize = HiddenDim,
        Layers = Layers,
        Heads = Heads,
        KvHeads = KvHeads,
        HeadDim = HeadSize,
        VocabSize = VocabSize,
        TiedEmbeddings = SharedClassifier,
        MaxContext = SeqLen,
    }.Validate();

    private TransformerCost ToCost() => new(ToConfig("checkpoint"));

    /// <summary>Exact file length implied by the header: header + 4 bytes per parameter + the RoPE tables.</summary>
    public long ExpectedFileBytes() => HeaderBytes + 4 * ToCost().Parameters + RopeTableBytes;

    /// <summary>
    /// The fp32 tensors in file order with their byte offsets: token embedding, rms_att, wq, wk, wv, wo, rms_ffn,
    /// w1, w2, w3, rms_final, freq_cis_real, freq_cis_imag and (unshared) the classifier.
    /// </summary>
    public IReadOnlyList<(string Name, long[] Dims, long Offset)> Layout()
    {
        long kvDim = (long)KvHeads * HeadSize;
        var dims = new List<(string, long[])>
        {
            ("token_embedding", [VocabSize, Dim]),
            ("rms_att", [Layers, Dim]),
            ("wq", [Layers, Dim, Dim]),
            ("wk", [Layers, kvDim, Dim]),
            ("wv", [Layers, kvDim, Dim]),
            ("wo", [Layers, Dim, Dim]),
            ("rms_ffn", [Layers, Dim]),
            ("w1", [Layers, HiddenDim, Dim]),
            ("w2", [Layers, Dim, HiddenDim]),
            ("w3", [Layers, HiddenDim, Dim]),
            ("rms_final", [Dim]),
            ("freq_cis_real", [SeqLen, HeadSize / 2]),
            ("freq_cis_imag", [SeqLen, HeadSize / 2]),
        };
        if (!SharedClassifier) dims.Add(("classifier", [VocabSize, Dim]));
        var result = new List<(string, long[], long)>();
        long offset = HeaderBytes;
        foreach (var (name, d) in dims)
        {
            result.Add((name, d, offset));
            offset += 4 * d.Aggregate(1L, (a, b) => a * b);
        }
        return result;
    }
}
