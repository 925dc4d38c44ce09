using System.Buffers.Binary;
using OnDevice.Core;
using OnDevice.Formats.Llm;

namespace OnDevice.Formats.Llama2c;

/// <summary>
/// Reads llama2.c checkpoints (legacy format: 7 int32 — dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size
/// (negative: untied classifier), seq_len — then fp32 tensors) by memory-mapping them; tensors are slices of the
/// mapping, not copies. Also reads the llama2.c tokenizer file. Faults are <see cref="ModelFormatException"/>s.
/// </summary>
public static class Llama2cReader
{
    /// <summary>Bytes of the legacy header.</summary>
    public const int HeaderBytes = 28;

    /// <summary>Reads the checkpoint at <paramref name="path"/>.</summary>
    public static LlamaCheckpoint Read(string path)
    {
        var mapped = Map(path);
        if (mapped.Length < HeaderBytes)
            throw new ModelFormatException(path, $"{mapped.Length} bytes is too short for a llama2.c header ({HeaderBytes} bytes)");
        var h = mapped.Span(0, HeaderBytes).ToArray();
        int I(int k) => BinaryPrimitives.ReadInt32LittleEndian(h.AsSpan(4 * k));
        if ((uint)I(0) == 0x616b3432)
            throw new ModelFormatException(path, $"llama2.c export version {I(1)} (magic 'ak42') is not supported; only the legacy format is");
        string[] names = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"];
        for (int k = 0; k < 7; k++)
            if (I(k) == 0 || (k != 5 && I(k) < 0) || Math.Abs((long)I(k)) > 1 << 24)
                throw new ModelFormatException(path, $"header field {names[k]} = {I(k)} is not a plausible size; is this a llama2.c checkpoint?");
        var c = new LlamaConfig(I(0), I(1), I(2), I(3), I(4), Math.Abs(I(5)), I(6), I(5) > 0).Validate(path);

        long offset = HeaderBytes;
        var tensors = new Dictionary<string, LlamaTensor>();
        long rope = 2L * c.SeqLen * (c.HeadSize / 2) * 4;
        long expected = HeaderBytes + 4 * c.Parameters + rope;
        if (mapped.Length != expected)
            throw new ModelFormatException(path, mapped.Length < expected
                ? $"truncated: the header describes {expected:N0} bytes but the file has {mapped.Length:N0}"
                : $"the header describes {expected:N0} bytes but the file has {mapped.Length:N0} (trailing data or a different format)");

        LlamaTensor Take(string name, int rows, int cols)
        {
            long bytes = 4L * rows * cols;
            var t = new LlamaTensor(name, LlamaTensorType.F32, rows, cols, mapped.Slice(offset, checked((int)bytes)));
            offset += bytes;
            return t;
        }
        void Stacked(string kind, int rows, int cols)
        {
            for (int l = 0; l < c.Layers; l++) { var t = Take($"blk.{l}.{kind}.weight", rows, cols); tensors[t.Name] = t; }
        }
        tensors["token_embd.weight"] = Take("token_embd.weight", c.VocabSize, c.Dim);
        Stacked("attn_norm", 1, c.Dim);
        Stacked("attn_q", c.Dim, c.Dim);
        Stacked("attn_k", c.KvDim, c.Dim);
        Stacked("attn_v", c.KvDim, c.Dim);
        Stacked("attn_output", c.Dim, c.Dim);
        Stacked("ffn_norm", 1, c.Dim);
        Stacked("ffn_gate", c.HiddenDim, c.Dim);
        Stacked("ffn_down", c.Dim, c.HiddenDim);
        Stacked("ffn_up", c.HiddenDim, c.Dim);
        tensors["output_norm.weight"] = Take("output_norm.weight", 1, c.Dim);
        offset += rope; // legacy freq_cis_real / freq_cis_imag: recomputed by the engine
        if (!c.SharedClassifier) tensors["output.weight"] = Take("output.weight", c.VocabSize, c.Dim);
        return new LlamaCheckpoint(mapped.Path, "llama2c", c, tensors, null);
    }

    /// <summary>
    /// Reads a llama2.c tokenizer file of <paramref name="vocabSize"/> tokens: int32 max_token_length, then per token
    /// float32 score, int32 length and the bytes. BOS is 1 and EOS 2 (SentencePiece convention).
    /// </summary>
    public static LlamaVocabulary ReadTokenizer(string path, int vocabSize)
    {
        var mapped = Map(path);
        var s = mapped.Span(0, checked((int)mapped.Length));
        if (s.Length < 4) throw new ModelFormatException(path, "too short for a llama2.c tokenizer (no max_token_length)");
        int maxLen = BinaryPrimitives.ReadInt32LittleEndian(s);
        if (maxLen <= 0 || maxLen > 1 << 16) throw new ModelFormatException(path, $"max_token_length {maxLen} is implausible; is this a llama2.c tokenizer?");
        var pieces = new byte[vocabSize][];
        var scores = new float[vocabSize];
        int p = 4;
        for (int i = 0; i < vocabSize; i++)
        {
            if (p + 8 > s.Length)
                throw new ModelFormatException(path, $"truncated: token {i} of {vocabSize} is missing (the model's vocabulary is larger than this tokenizer?)");
            scores[i] = BinaryPrimitives.ReadSingleLittleEndian(s[p..]);
            int len = BinaryPrimitives.ReadInt32LittleEndian(s[(p + 4)..]);
            p += 8;
            if (len < 0 || len > maxLen || p + len > s.Length)
                throw new ModelFormatException(path, $"token {i}: length {len} is negative, above max_token_length {maxLen} or past the end of the file");
            pieces[i] = s.Slice(p, len).ToArray();
            p += len;
        }
        if (p != s.Length)
            throw new ModelFormatException(path, $"{s.Length - p} bytes remain after {vocabSize} tokens; the tokenizer does not match the model's vocabulary size");
        return new LlamaVocabulary(pieces, scores);
    }

    private static MappedFile Map(string path)
    {
        if (!File.Exists(path))
            throw new ModelFormatException(path, Directory.Exists(path) ? "is a directory, not a file" : "file not found");
        try { return MappedFile.Open(path); }
        catch (IOException e) { throw new ModelFormatException(path, $"cannot read: {e.Message}", e); }
        catch (UnauthorizedAccessException e) { throw new ModelFormatException(path, $"cannot read: {e.Message}", e); }
    }
}
