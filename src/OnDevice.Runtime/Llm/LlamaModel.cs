using OnDevice.Formats.Llm;

namespace OnDevice.Runtime.Llm;

/// <summary>One decoder layer's weights.</summary>
/// <param name="AttnNorm">RMSNorm weight before attention.</param>
/// <param name="Wq">Query projection [dim, dim].</param>
/// <param name="Wk">Key projection [kv_dim, dim].</param>
/// <param name="Wv">Value projection [kv_dim, dim].</param>
/// <param name="Wo">Output projection [dim, dim].</param>
/// <param name="FfnNorm">RMSNorm weight before the MLP.</param>
/// <param name="W1">Gate projection [hidden, dim].</param>
/// <param name="W2">Down projection [dim, hidden].</param>
/// <param name="W3">Up projection [hidden, dim].</param>
public sealed record LlamaLayer(float[] AttnNorm, WeightMatrix Wq, WeightMatrix Wk, WeightMatrix Wv, WeightMatrix Wo,
    float[] FfnNorm, WeightMatrix W1, WeightMatrix W2, WeightMatrix W3);

/// <summary>The weights of a LLaMA decoder at one precision, shared by every engine (and sequence) that runs it.</summary>
public sealed class LlamaModel : IDisposable
{
    private readonly bool _ownsWeights = true;

    /// <summary>Shape.</summary>
    public LlamaConfig Config { get; }

    /// <summary>Token embedding [vocab, dim].</summary>
    public WeightMatrix Embedding { get; }

    /// <summary>Layers.</summary>
    public IReadOnlyList<LlamaLayer> Layers { get; }

    /// <summary>Final RMSNorm weight.</summary>
    public float[] FinalNorm { get; }

    /// <summary>Classifier [vocab, dim] (the embedding when tied).</summary>
    public WeightMatrix Classifier { get; }

    /// <summary>Precision of the layer matrices.</summary>
    public LlmWeights Weights { get; }

    /// <summary>Tokenizer vocabulary when the checkpoint carries one.</summary>
    public LlamaVocabulary? Vocabulary { get; }

    /// <summary>Assembles a model from parts.</summary>
    public LlamaModel(LlamaConfig config, WeightMatrix embedding, IReadOnlyList<LlamaLayer> layers, float[] finalNorm, WeightMatrix classifier, LlmWeights weights, LlamaVocabulary? vocabulary)
    {
        Config = config; Embedding = embedding; Layers = layers; FinalNorm = finalNorm; Classifier = classifier; Weights = weights; Vocabulary = vocabulary;
    }

    /// <summary>
    /// Builds the model from a checkpoint, converting matrices to <paramref name="weights"/> (fp32 matrices of an fp32
    /// checkpoint stay in its memory mapping). The token embedding is kept at fp32 unless the checkpoint stores it
    /// quantized or the classifier is tied (then it follows <paramref name="weights"/>, since it is also the classifier).
    /// </summary>
    public static LlamaModel Load(LlamaCheckpoint ck, LlmWeights weights)
    {
        var c = ck.Config;
        float[] Vec(string name) => WeightMatrix.ToFloats(ck.Get(name, 1, c.Dim));
        WeightMatrix M(string name, int rows, int cols) => WeightMatrix.From(ck.Get(name, rows, cols), weights);
        var layers = new LlamaLayer[c.Layers];
        for (int l = 0; l < c.Layers; l++)
        {
            string P(string n) => $"blk.{l}.{n}.weight";
            layers[l] = new LlamaLayer(Vec(P("attn_norm")), M(P("attn_q"), c.Dim, c.Dim), M(P("attn_k"), c.KvDim, c.Dim), M(P("attn_v"), c.KvDim, c.Dim),
                M(P("attn_output"), c.Dim, c.Dim), Vec(P("ffn_norm")), M(P("ffn_gate"), c.HiddenDim, c.Dim), M(P("ffn_down"), c.Dim, c.HiddenDim), M(P("ffn_up"), c.HiddenDim, c.Dim));
        }
        var embT = ck.Get("token_embd.weight", c.VocabSize, c.Dim);
        var embedding = c.SharedClassifier ? WeightMatrix.From(embT, weights)
            : WeightMatrix.From(embT, embT.Type == LlamaTensorType.Q8_0 ? LlmWeights.Int8 : embT.Type == LlamaTensorType.Q4_0 ? LlmWeights.Int4 : LlmWeights.Fp32);
        var classifier = c.SharedClassifier ? embedding : M("output.weight", c.VocabSize, c.Dim);
        return new LlamaModel(c, embedding, layers, Vec("output_norm.weight"), classifier, weights, ck.Vocabulary);
    }

    /// <summary>The first <paramref name="layers"/> layers with the same final norm and classifier (a self-speculative draft), sharing the weights.</summary>
    public LlamaModel FirstLayers(int layers)
    {
        if (layers < 1 || layers > Layers.Count) throw new ArgumentOutOfRangeException(nameof(layers), $"the model has {Layers.Count} layers; asked for the first {layers}");
        return new LlamaModel(Config with { Layers = layers }, Embedding, Layers.Take(layers).ToArray(), FinalNorm, Classifier, Weights, Vocabulary, owns: false);
    }

    private LlamaModel(LlamaConfig config, WeightMatrix embedding, IReadOnlyList<LlamaLayer> layers, float[] finalNorm, WeightMatrix classifier, LlmWeights weights, LlamaVocabulary? vocabulary, bool owns)
        : this(config, embedding, layers, finalNorm, classifier, weights, vocabulary) => _ownsWeights = owns;

    /// <summary>
    /// Frees the native memory of the low-bit weight matrices (a model from <see cref="FirstLayers"/> shares its parent's
    /// weights and frees nothing). Engines still running the model then throw <see cref="ObjectDisposedException"/>.
    /// </summary>
    public void Dispose()
    {
        if (!_ownsWeights) return;
        foreach (var l in Layers) foreach (var m in new[] { l.Wq, l.Wk, l.Wv, l.Wo, l.W1, l.W2, l.W3 }) m.Dispose();
        Embedding.Dispose();
        Classifier.Dispose();
    }

    /// <summary>Bytes of weights read to decode one token (every layer matrix, the classifier, one embedding row, norms).</summary>
    public long WeightBytesPerToken =>
        Layers.Sum(l => l.Wq.Bytes + l.Wk.Bytes + l.Wv.Bytes + l.Wo.Bytes + l.W1.Bytes + l.W2.Bytes + l.W3.Bytes + 8L * Config.Dim)
        + Classifier.Bytes + Embedding.Bytes / Config.VocabSize + 4L * Config.Dim;
}
