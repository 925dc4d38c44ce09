using System.Text;
using System.Text.Json;
using OnDevice.Formats.Llm;

namespace OnDevice.Formats.HuggingFace;

/// <summary>
/// Reads the SentencePiece-style BPE of a Hugging Face LLaMA <c>tokenizer.json</c> (model type BPE, byte fallback,
/// "▁" for spaces) into a <see cref="LlamaVocabulary"/>: pieces by id with spaces restored, and merge priorities as
/// scores (the token made by merge rank r scores −r, so the engine's highest-score-first merging follows the merge
/// list). Special tokens come from <c>added_tokens</c>.
/// </summary>
public static class HfTokenizerReader
{
    /// <summary>Reads <paramref name="path"/>; <paramref name="vocabSize"/> pads missing ids (the model's vocabulary may be larger).</summary>
    public static LlamaVocabulary Read(string path, int vocabSize)
    {
        if (!File.Exists(path)) throw new ModelFormatException(path, "file not found");
        JsonElement root;
        try { root = JsonDocument.Parse(File.ReadAllText(path)).RootElement.Clone(); }
        catch (JsonException e) { throw new ModelFormatException(path, $"invalid JSON: {e.Message}", e); }
        if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
            throw new ModelFormatException(path, "no 'model' object");
        string type = model.TryGetProperty("type", out var t) ? t.GetString() ?? "" : "";
        if (type != "BPE") throw new ModelFormatException(path, $"tokenizer model '{type}' is not supported (BPE is)");
        if (!model.TryGetProperty("vocab", out var vocab) || vocab.ValueKind != JsonValueKind.Object)
            throw new ModelFormatException(path, "no 'model.vocab' object");
        var pieces = new byte[vocabSize][];
        var scores = new float[vocabSize];
        Array.Fill(scores, -1e9f);
        void Put(string piece, int id)
        {
            if (id < 0 || id >= vocabSize) throw new ModelFormatException(path, $"token '{piece}' has id {id}, outside the model's vocabulary of {vocabSize}");
            pieces[id] = Encoding.UTF8.GetBytes(piece.Replace('\u2581', ' '));
        }
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in vocab.EnumerateObject())
        {
            if (!p.Value.TryGetInt32(out var id)) throw new ModelFormatException(path, $"token '{p.Name}' has a non-integer id");
            Put(p.Name, id);
            ids[p.Name] = id;
        }
        int bos = 1, eos = 2;
        if (root.TryGetProperty("added_tokens", out var added) && added.ValueKind == JsonValueKind.Array)
            foreach (var a in added.EnumerateArray())
            {
                var content = a.GetProperty("content").GetString() ?? "";
                int id = a.GetProperty("id").GetInt32();
                Put(content, id);
                if (content == "<s>") bos = id;
                if (content == "</s>") eos = id;
            }
        if (model.TryGetProperty("merges", out var merges) && merges.ValueKind == JsonValueKind.Array)
        {
            int rank = 0;
            foreach (var m in merges.EnumerateArray())
            {
                string merged = m.ValueKind == JsonValueKind.String
                    ? (m.GetString() ?? "").Replace(" ", "")
                    : string.Concat(m.EnumerateArray().Select(e => e.GetString()));
                if (ids.TryGetValue(merged, out var id) && scores[id] < -rank) scores[id] = -rank;
                rank++;
            }
        }
        for (int i = 0; i < vocabSize; i++) pieces[i] ??= Encoding.UTF8.GetBytes($"<unused{i}>");
        return new LlamaVocabulary(pieces, scores, bos, eos);
    }
}
