using System.Runtime.InteropServices;
using OnDevice.Formats.Llm;

namespace OnDevice.Runtime.Llm;

/// <summary>Random-weight LLaMA checkpoints of any shape (for tests and benchmarks): deterministic from a seed.</summary>
public static class SyntheticLlama
{
    /// <summary>The canonical tensors of <paramref name="c"/> as (name, rows, cols), in file order.</summary>
    public static IEnumerable<(string Name, int Rows, int Cols)> Layout(LlamaConfig c)
    {
        yield return ("token_embd.weight", c.VocabSize, c.Dim);
        for (int l = 0; l < c.Layers; l++)
        {
            yield return ($"blk.{l}.attn_norm.weight", 1, c.Dim);
            yield return ($"blk.{l}.attn_q.weight", c.Dim, c.Dim);
            yield return ($"blk.{l}.attn_k.weight", c.KvDim, c.Dim);
            yield return ($"blk.{l}.attn_v.weight", c.KvDim, c.Dim);
            yield return ($"blk.{l}.attn_output.weight", c.Dim, c.Dim);
            yield return ($"blk.{l}.ffn_norm.weight", 1, c.Dim);
            yield return ($"blk.{l}.ffn_gate.weight", c.HiddenDim, c.Dim);
            yield return ($"blk.{l}.ffn_down.weight", c.Dim, c.HiddenDim);
            yield return ($"blk.{l}.ffn_up.weight", c.HiddenDim, c.Dim);
        }
        yield return ("output_norm.weight", 1, c.Dim);
        if (!c.SharedClassifier) yield return ("output.weight", c.VocabSize, c.Dim);
    }

    /// <summary>
    /// Values of one tensor: norms are 1 + small noise; matrices uniform in ±<paramref name="gain"/>·√(3/cols)
    /// (unit-variance outputs for unit-variance inputs). Deterministic in (seed, name).
    /// </summary>
    public static float[] Values(string name, int rows, int cols, ulong seed, float gain = 1f)
    {
        var rng = new Random(unchecked((int)(seed * 1_000_003UL + (ulong)StableHash(name))));
        var v = new float[(long)rows * cols];
        bool norm = rows == 1;
        float a = norm ? 0.1f : gain * MathF.Sqrt(3f / cols);
        for (long i = 0; i < v.LongLength; i++) v[i] = (norm ? 1f : 0f) + a * (2 * rng.NextSingle() - 1);
        return v;
    }

    private static int StableHash(string s)
    {
        unchecked
        {
            int h = (int)2166136261;
            foreach (var ch in s) h = (h ^ ch) * 16777619;
            return h;
        }
    }

    /// <summary>An in-memory fp32 checkpoint of shape <paramref name="c"/> with random weights.</summary>
    public static LlamaCheckpoint Create(LlamaConfig c, ulong seed, float gain = 1f)
    {
        var tensors = new Dictionary<string, LlamaTensor>();
        foreach (var (name, rows, cols) in Layout(c))
        {
            var bytes = MemoryMarshal.AsBytes(Values(name, rows, cols, seed, gain).AsSpan()).ToArray();
            tensors[name] = new LlamaTensor(name, LlamaTensorType.F32, rows, cols, bytes);
        }
        return new LlamaCheckpoint($"synthetic-{seed}", "synthetic", c, tensors, null);
    }
}
