using System.Runtime.InteropServices;
using OnDevice.Core;
using OnDevice.Formats.Gguf;
using OnDevice.Formats.Llm;
using OnDevice.Formats.Safetensors;
using OnDevice.Runtime.Llm;
using OnDevice.TestSupport;

namespace OnDevice.Runtime.Tests.Llm;

public class LlmFormatTests
{
    private static float[] Floats(LlamaCheckpoint ck, string name, int rows, int cols) => WeightMatrix.ToFloats(ck.Get(name, rows, cols));

    [Fact]
    public void GgufCopyOfStoriesReproducesTheReferenceWithItsOwnTokenizer()
    {
        if (LlmFiles.Stories() is not { } s || LlmFiles.Reference() is not { } cases) return;
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "stories260K.gguf");
        var c = s.Checkpoint.Config;
        GgufWriter.WriteLlama(path, c, s.Tokenizer.Vocabulary, SyntheticLlama.Layout(c), (n, r, k) => Floats(s.Checkpoint, n, r, k), GgufFile.F32);
        var ck = LlamaCheckpoint.Open(path);
        Assert.NotNull(ck.Vocabulary);
        var gen = new LlamaGenerator(new LlamaEngine(LlamaModel.Load(ck, LlmWeights.Fp32)), new LlamaTokenizer(ck.Vocabulary!));
        foreach (var rc in cases) Assert.Equal(rc.ExpectedText, gen.Generate(rc.Prompt, new GenerationOptions(rc.Steps, new SamplingOptions())).Text);
    }

    [Fact]
    public void GgufQ8AndQ4TensorsRunWithoutRequantization()
    {
        if (LlmFiles.Stories() is not { } s) return;
        using var dir = new TempDir();
        var c = s.Checkpoint.Config with { HiddenDim = 192 }; // GGUF blocks need whole rows of 32: pad the MLP
        float[] Padded(string n, int r, int k)
        {
            if (!n.Contains("ffn_") || r == 1) return Floats(s.Checkpoint, n, r, k);
            var oc = s.Checkpoint.Config;
            if (n.Contains("ffn_down"))
            {
                var src = Floats(s.Checkpoint, n, oc.Dim, oc.HiddenDim);
                var o = new float[r * k];
                for (int i = 0; i < r; i++) Array.Copy(src, i * oc.HiddenDim, o, i * k, oc.HiddenDim);
                return o;
            }
            var a = Floats(s.Checkpoint, n, oc.HiddenDim, oc.Dim);
            Array.Resize(ref a, r * k);
            return a;
        }
        foreach (var (type, weights) in new[] { (GgufFile.Q8_0, LlmWeights.Int8), (GgufFile.Q4_0, LlmWeights.Int4) })
        {
            var path = Path.Combine(dir.Path, $"s{type}.gguf");
            GgufWriter.WriteLlama(path, c, s.Tokenizer.Vocabulary, SyntheticLlama.Layout(c), Padded, type);
            var ck = LlamaCheckpoint.Open(path);
            var fromFile = LlamaModel.Load(ck, weights);
            Assert.IsType(weights == LlmWeights.Int8 ? typeof(Q8Matrix) : typeof(Q4Matrix), fromFile.Layers[0].Wq);
            // Same quantization as converting the fp32 checkpoint on load (up to the fp16 rounding of GGUF scales).
            var onLoad = LlamaModel.Load(s.Checkpoint, weights);
            // The kernels run on the file's own blocks: each row reads back exactly as the GGUF tensor dequantizes.
            foreach (var (m, name) in new[] { (fromFile.Layers[0].Wq, "blk.0.attn_q.weight"), (fromFile.Layers[4].W2, "blk.4.ffn_down.weight") })
            {
                var exact = WeightMatrix.ToFloats(ck.Tensors[name]);
                var row = new float[m.Cols];
                for (int r = 0; r < m.Rows; r += 7)
                {
                    m.ReadRow(r, row);
                    Assert.Equal(exact.AsSpan(r * m.Cols, m.Cols).ToArray(), row);
                }
            }
            // And the model stays close to the fp32 original (quantization noise only).
            var seqs = new[] { s.Tokenizer.Encode("Once upon a time, there was a little girl named Lily. She loved to play outside.") };
            var q = LlmQuality.Compare(new LlamaEngine(LlamaModel.Load(s.Checkpoint, LlmWeights.Fp32)), new LlamaEngine(fromFile), seqs);
            Assert.True(q.MeanKl < (weights == LlmWeights.Int8 ? 0.01 : 0.3), $"{type}: mean KL {q.MeanKl}");
        }
    }

    [Fact]
    public void HuggingFaceFolderWithHalfSplitRopeMatchesTheLlama2cModel()
    {
        if (LlmFiles.Stories() is not { } s || LlmFiles.Reference() is not { } cases) return;
        using var dir = new TempDir();
        var c = s.Checkpoint.Config;
        int hs = c.HeadSize;
        // HF stores q/k rows of each head as (evens, odds) of the interleaved layout.
        float[] ToHf(float[] w, int heads, int cols)
        {
            var o = new float[w.Length];
            for (int h = 0; h < heads; h++)
                for (int j = 0; j < hs / 2; j++)
                {
                    Array.Copy(w, (h * hs + 2 * j) * cols, o, (h * hs + j) * cols, cols);
                    Array.Copy(w, (h * hs + 2 * j + 1) * cols, o, (h * hs + hs / 2 + j) * cols, cols);
                }
            return o;
        }
        var tensors = new List<Tensor>();
        void Add(string hf, string name, int rows, int cols, Func<float[], float[]>? f = null)
        {
            var v = Floats(s.Checkpoint, name, rows, cols);
            if (f is not null) v = f(v);
            tensors.Add(Tensor.FromArray<float>(v, rows == 1 ? [cols] : [rows, cols], hf));
        }
        Add("model.embed_tokens.weight", "token_embd.weight", c.VocabSize, c.Dim);
        for (int l = 0; l < c.Layers; l++)
        {
            string p = $"model.layers.{l}.", q = $"blk.{l}.";
            Add(p + "input_layernorm.weight", q + "attn_norm.weight", 1, c.Dim);
            Add(p + "self_attn.q_proj.weight", q + "attn_q.weight", c.Dim, c.Dim, w => ToHf(w, c.Heads, c.Dim));
            Add(p + "self_attn.k_proj.weight", q + "attn_k.weight", c.KvDim, c.Dim, w => ToHf(w, c.KvHeads, c.Dim));
            Add(p + "self_attn.v_proj.weight", q + "attn_v.weight", c.KvDim, c.Dim);
            Add(p + "self_attn.o_proj.weight", q + "attn_output.weight", c.Dim, c.Dim);
            Add(p + "post_attention_layernorm.weight", q + "ffn_norm.weight", 1, c.Dim);
            Add(p + "mlp.gate_proj.weight", q + "ffn_gate.weight", c.HiddenDim, c.Dim);
            Add(p + "mlp.down_proj.weight", q + "ffn_down.weight", c.Dim, c.HiddenDim);
            Add(p + "mlp.up_proj.weight", q + "ffn_up.weight", c.HiddenDim, c.Dim);
        }
        Add("model.norm.weight", "output_norm.weight", 1, c.Dim);
        SafetensorsFile.Write(Path.Combine(dir.Path, "model.safetensors"), tensors);
        File.WriteAllText(Path.Combine(dir.Path, "config.json"), $$"""
            {"model_type": "llama", "hidden_size": {{c.Dim}}, "intermediate_size": {{c.HiddenDim}}, "num_hidden_layers": {{c.Layers}},
             "num_attention_heads": {{c.Heads}}, "num_key_value_heads": {{c.KvHeads}}, "vocab_size": {{c.VocabSize}},
             "max_position_embeddings": {{c.SeqLen}}, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": true}
            """);
        var ck = LlamaCheckpoint.Open(dir.Path);
        Assert.Equal(RopeStyle.HalfSplit, ck.Config.Rope);
        Assert.True(MappedFile.IsMapped(ck.Tensors["blk.0.attn_q.weight"].Data));
        var gen = new LlamaGenerator(new LlamaEngine(LlamaModel.Load(ck, LlmWeights.Fp32)), s.Tokenizer);
        Assert.Equal(cases[0].ExpectedText, gen.Generate(cases[0].Prompt, new GenerationOptions(cases[0].Steps, new SamplingOptions())).Text);
    }
}
