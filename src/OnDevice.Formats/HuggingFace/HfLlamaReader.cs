using System.Runtime.InteropServices;
using System.Text.Json;
using OnDevice.Core;
using OnDevice.Formats.Llm;
using OnDevice.Formats.Safetensors;

namespace OnDevice.Formats.HuggingFace;

/// <summary>
/// Reads a Hugging Face LLaMA checkpoint folder: config.json (model_type llama or mistral) and every *.safetensors
/// file in it (memory-mapped through <see cref="SafetensorsFile"/>). F32 and F16 tensors are used in place; BF16 is
/// widened to F32 at load. Hugging Face rotates RoPE pairs (i, i + head/2), recorded as <see cref="RopeStyle.HalfSplit"/>.
/// </summary>
public static class HfLlamaReader
{
    /// <summary>Reads the checkpoint in <paramref name="folder"/>.</summary>
    public static LlamaCheckpoint Read(string folder)
    {
        var cfgPath = Path.Combine(folder, "config.json");
        if (!File.Exists(cfgPath)) throw new ModelFormatException(folder, "no config.json in this folder; a Hugging Face checkpoint needs one");
        JsonElement root;
        try { root = JsonDocument.Parse(File.ReadAllText(cfgPath)).RootElement.Clone(); }
        catch (JsonException e) { throw new ModelFormatException(cfgPath, $"invalid JSON: {e.Message}", e); }
        string type = root.TryGetProperty("model_type", out var mt) ? mt.GetString() ?? "" : "";
        if (type is not ("llama" or "mistral")) throw new ModelFormatException(cfgPath, $"model_type '{type}' is not a LLaMA-architecture decoder (llama, mistral)");
        int I(string key, int? fallback = null)
        {
            if (root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i)) return i;
            return fallback ?? throw new ModelFormatException(cfgPath, $"'{key}' is missing or not an integer");
        }
        float F(string key, float fallback) => root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetSingle() : fallback;
        bool tied = root.TryGetProperty("tie_word_embeddings", out var tw) && tw.ValueKind == JsonValueKind.True;
        int heads = I("num_attention_heads");
        var cfg = new LlamaConfig(I("hidden_size"), I("intermediate_size"), I("num_hidden_layers"), heads, I("num_key_value_heads", heads),
            I("vocab_size"), I("max_position_embeddings"), tied, F("rope_theta", 10000f), F("rms_norm_eps", 1e-6f), RopeStyle.HalfSplit).Validate(cfgPath);

        var files = Directory.GetFiles(folder, "*.safetensors").OrderBy(f => f, StringComparer.Ordinal).ToArray();
        if (files.Length == 0) throw new ModelFormatException(folder, "no *.safetensors files next to config.json");
        var byHf = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var f in files) foreach (var t in SafetensorsFile.Read(f)) byHf[t.Name] = t;

        var tensors = new Dictionary<string, LlamaTensor>();
        void Map(string hf, string name)
        {
            if (!byHf.TryGetValue(hf, out var t)) throw new ModelFormatException(folder, $"tensor '{hf}' is missing");
            if (t.Dims.Length is 0 or > 2) throw new ModelFormatException(folder, $"tensor '{hf}' has rank {t.Dims.Length}");
            int rows = t.Dims.Length == 2 ? (int)t.Dims[0] : 1, cols = (int)t.Dims[^1];
            LlamaTensor lt = t.DType switch
            {
                DType.Float32 => new LlamaTensor(name, LlamaTensorType.F32, rows, cols, t.Memory),
                DType.Float16 => new LlamaTensor(name, LlamaTensorType.F16, rows, cols, t.Memory),
                DType.BFloat16 => new LlamaTensor(name, LlamaTensorType.F32, rows, cols, WidenBf16(t.Bytes)),
                _ => throw new ModelFormatException(folder, $"tensor '{hf}' is {t.DType}; F32, F16 and BF16 are read"),
            };
            tensors[name] = lt;
        }
        Map("model.embed_tokens.weight", "token_embd.weight");
        for (int l = 0; l < cfg.Layers; l++)
        {
            string p = $"model.layers.{l}.", q = $"blk.{l}.";
            Map(p + "input_layernorm.weight", q + "attn_norm.weight");
            Map(p + "self_attn.q_proj.weight", q + "attn_q.weight");
            Map(p + "self_attn.k_proj.weight", q + "attn_k.weight");
            Map(p + "self_attn.v_proj.weight", q + "attn_v.weight");
            Map(p + "self_attn.o_proj.weight", q + "attn_output.weight");
            Map(p + "post_attention_layernorm.weight", q + "ffn_norm.weight");
            Map(p + "mlp.gate_proj.weight", q + "ffn_gate.weight");
            Map(p + "mlp.down_proj.weight", q + "ffn_down.weight");
            Map(p + "mlp.up_proj.weight", q + "ffn_up.weight");
        }
        Map("model.norm.weight", "output_norm.weight");
        if (!tied)
        {
            if (byHf.ContainsKey("lm_head.weight")) Map("lm_head.weight", "output.weight");
            else cfg = cfg with { SharedClassifier = true };
        }
        return new LlamaCheckpoint(Path.GetFullPath(folder), "hf-safetensors", cfg, tensors, null);
    }

    private static byte[] WidenBf16(ReadOnlySpan<byte> src)
    {
        var h = MemoryMarshal.Cast<byte, ushort>(src);
        var o = new byte[h.Length * 4];
        var f = MemoryMarshal.Cast<byte, uint>(o.AsSpan());
        for (int i = 0; i < h.Length; i++) f[i] = (uint)h[i] << 16;
        return o;
    }
}
