using System.Diagnostics;
using OnDevice.Formats.Llm;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Llm;

/// <summary>How an engine stores its KV cache.</summary>
/// <param name="Element">Element type.</param>
/// <param name="Sequences">Sequences decoded together (contiguous: slots; paged: sizing of the pool).</param>
/// <param name="MaxPositions">Context limit (default: the model's seq_len).</param>
/// <param name="PageSize">0: contiguous; otherwise positions per block of a paged cache.</param>
/// <param name="Pages">Blocks in a paged pool (default: enough for every sequence at the context limit).</param>
public sealed record KvCacheOptions(KvElement Element = KvElement.Fp32, int Sequences = 1, int? MaxPositions = null, int PageSize = 0, int? Pages = null);

/// <summary>Parts of a forward pass timed by <see cref="LlmProfile"/>.</summary>
public enum LlmOp
{
    /// <summary>Embedding lookup.</summary>
    Embedding,
    /// <summary>RMSNorms.</summary>
    Norm,
    /// <summary>Quantizing (and interleaving) activations for low-bit products.</summary>
    Quantize,
    /// <summary>Query, key, value and output projections.</summary>
    AttentionProducts,
    /// <summary>RoPE and writing keys and values to the cache.</summary>
    RopeAndCache,
    /// <summary>Attention over the KV cache.</summary>
    Attention,
    /// <summary>Residual additions.</summary>
    Residual,
    /// <summary>Gate, up and down projections.</summary>
    MlpProducts,
    /// <summary>SiLU(gate)·up.</summary>
    SwiGlu,
    /// <summary>Final norm and classifier.</summary>
    Classifier,
}

/// <summary>Accumulated wall time per <see cref="LlmOp"/> over the forward passes of an engine whose <see cref="LlamaEngine.Profile"/> is set.</summary>
public sealed class LlmProfile
{
    internal readonly long[] Ticks = new long[Enum.GetValues<LlmOp>().Length];

    /// <summary>Forward passes recorded.</summary>
    public int Passes { get; internal set; }

    /// <summary>Milliseconds spent in <paramref name="op"/> per forward pass.</summary>
    public double MillisecondsPerPass(LlmOp op) => Passes == 0 ? 0 : Ticks[(int)op] * 1000.0 / Stopwatch.Frequency / Passes;

    /// <summary>Forgets what was recorded.</summary>
    public void Reset() { Array.Clear(Ticks); Passes = 0; }
}

/// <summary>
/// Runs a <see cref="LlamaModel"/>: RMSNorm, RoPE, grouped-query attention over a KV cache, SwiGLU MLP, classifier.
/// <see cref="Forward"/> takes a batch of (token, position, sequence) rows: a prompt (prefill, matrix-matrix work),
/// one token (decode, matrix-vector), one token of each of several sequences (batched decoding), or a run of draft
/// tokens (speculative verification). Each output element is computed identically whatever the batch, so batching
/// never changes results.
/// </summary>
public sealed unsafe class LlamaEngine
{
    private readonly LlamaModel _m;
    private readonly int _threads;
    private readonly float[] _cos, _sin;
    private float[] _x = [], _xb = [], _q = [], _k = [], _v = [], _att = [], _h1 = [], _h3 = [], _tmp = [], _scratch = [];
    private readonly LlmActivations _acts = new();
    private int _capacity;
    private RowWorkers? _workers;
    private long _lap;

    /// <summary>When set, each forward pass adds its time per <see cref="LlmOp"/> here (a timestamp read per part).</summary>
    public LlmProfile? Profile { get; set; }

    private void Lap(LlmOp op)
    {
        if (Profile is not { } p) return;
        long now = Stopwatch.GetTimestamp();
        p.Ticks[(int)op] += now - _lap;
        _lap = now;
    }

    /// <summary>The model.</summary>
    public LlamaModel Model => _m;

    /// <summary>The KV cache.</summary>
    public KvCache Cache { get; }

    /// <summary>Threads used by matrix products.</summary>
    public int Threads => _threads;

    /// <summary>Context limit in positions.</summary>
    public int MaxPositions => Cache.MaxPositions;

    /// <summary>Creates an engine with its own KV cache.</summary>
    public LlamaEngine(LlamaModel model, KvCacheOptions? kv = null, int threads = 1)
    {
        kv ??= new KvCacheOptions();
        _m = model;
        _threads = Math.Max(1, threads);
        var c = model.Config;
        int maxPos = kv.MaxPositions ?? c.SeqLen;
        if (maxPos < 1 || maxPos > c.SeqLen) throw new ArgumentOutOfRangeException(nameof(kv), $"context limit {maxPos} must be in 1..{c.SeqLen} (the model's seq_len)");
        if (kv.Sequences < 1) throw new ArgumentOutOfRangeException(nameof(kv), "at least one sequence");
        Cache = kv.PageSize > 0
            ? new PagedKvCache(c.Layers, c.KvHeads, c.HeadSize, maxPos, kv.PageSize, kv.Pages ?? kv.Sequences * ((maxPos + kv.PageSize - 1) / kv.PageSize), kv.Element)
            : new ContiguousKvCache(c.Layers, c.KvHeads, c.HeadSize, maxPos, kv.Sequences, kv.Element);
        int half = c.HeadSize / 2;
        _cos = new float[maxPos * half];
        _sin = new float[maxPos * half];
        for (int p = 0; p < maxPos; p++)
            for (int i = 0; i < half; i++)
            {
                // As the llama2.c reference computes it: freq = 1 / theta^(2i / head_size), angle = pos·freq, in float.
                float freq = 1.0f / MathF.Pow(c.RopeTheta, 2 * i / (float)c.HeadSize);
                float val = p * freq;
                _cos[p * half + i] = MathF.Cos(val);
                _sin[p * half + i] = MathF.Sin(val);
            }
        _scratch = new float[maxPos];
    }

    private void Ensure(int n)
    {
        if (n <= _capacity) return;
        var c = _m.Config;
        float[] A(long len) => GC.AllocateArray<float>(checked((int)len), pinned: true);
        _x = A((long)n * c.Dim); _xb = A((long)n * c.Dim); _q = A((long)n * c.Dim); _att = A((long)n * c.Dim); _tmp = A((long)n * c.Dim);
        _k = A((long)n * c.KvDim); _v = A((long)n * c.KvDim);
        _h1 = A((long)n * c.HiddenDim); _h3 = A((long)n * c.HiddenDim);
        _capacity = n;
    }

    /// <summary>
    /// Runs rows (tokens[i] at positions[i] of sequence seqs[i]) through the decoder, appending their keys and values
    /// to the cache, and writes the logits of rows <paramref name="logitRows"/> (in that order) to <paramref name="logits"/>
    /// (vocab floats per requested row). Rows of one sequence must come in increasing position order.
    /// </summary>
    public void Forward(ReadOnlySpan<int> tokens, ReadOnlySpan<int> positions, ReadOnlySpan<int> seqs, ReadOnlySpan<int> logitRows, Span<float> logits)
    {
        var c = _m.Config;
        int n = tokens.Length;
        if (n == 0) throw new ArgumentException("no tokens");
        if (positions.Length != n || seqs.Length != n) throw new ArgumentException("tokens, positions and sequences differ in length");
        if (logits.Length < logitRows.Length * c.VocabSize) throw new ArgumentException($"logits need {logitRows.Length} × {c.VocabSize} floats");
        for (int i = 0; i < n; i++)
        {
            if ((uint)tokens[i] >= (uint)c.VocabSize) throw new ArgumentOutOfRangeException(nameof(tokens), $"token {tokens[i]} is outside the vocabulary of {c.VocabSize}");
            if (positions[i] < 0) throw new ArgumentOutOfRangeException(nameof(positions), $"negative position {positions[i]}");
            if (positions[i] >= MaxPositions)
                throw new LlmCapacityException($"context limit reached: position {positions[i]} needs a context of {positions[i] + 1} positions; the limit is {MaxPositions}");
        }
        foreach (var r in logitRows) if ((uint)r >= (uint)n) throw new ArgumentOutOfRangeException(nameof(logitRows), $"row {r} of {n}");
        Ensure(n);
        int dim = c.Dim, kvDim = c.KvDim, hid = c.HiddenDim;
        fixed (float* x = _x, xb = _xb, q = _q, k = _k, v = _v, att = _att, h1 = _h1, h3 = _h3, tmp = _tmp, scratch = _scratch)
        {
            _lap = Stopwatch.GetTimestamp();
            for (int i = 0; i < n; i++) _m.Embedding.ReadRow(tokens[i], new Span<float>(x + (long)i * dim, dim));
            Lap(LlmOp.Embedding);
            for (int l = 0; l < _m.Layers.Count; l++)
            {
                var L = _m.Layers[l];
                RmsNorm(x, xb, n, dim, L.AttnNorm, c.NormEps);
                Lap(LlmOp.Norm);
                _acts.Set(xb, n, dim, dim);
                MatMul(L.Wq, q, dim, LlmOp.AttentionProducts);
                MatMul(L.Wk, k, kvDim, LlmOp.AttentionProducts);
                MatMul(L.Wv, v, kvDim, LlmOp.AttentionProducts);
                for (int i = 0; i < n; i++)
                {
                    Rope(q + (long)i * dim, c.Heads, positions[i], c);
                    Rope(k + (long)i * kvDim, c.KvHeads, positions[i], c);
                    Cache.Write(seqs[i], l, positions[i], k + (long)i * kvDim, v + (long)i * kvDim);
                }
                Lap(LlmOp.RopeAndCache);
                for (int i = 0; i < n; i++)
                    Cache.Attend(seqs[i], l, positions[i], c.Heads, q + (long)i * dim, att + (long)i * dim, scratch);
                Lap(LlmOp.Attention);
                _acts.Set(att, n, dim, dim);
                MatMul(L.Wo, tmp, dim, LlmOp.AttentionProducts);
                Add(x, tmp, (long)n * dim);
                Lap(LlmOp.Residual);
                RmsNorm(x, xb, n, dim, L.FfnNorm, c.NormEps);
                Lap(LlmOp.Norm);
                _acts.Set(xb, n, dim, dim);
                MatMul(L.W1, h1, hid, LlmOp.MlpProducts);
                MatMul(L.W3, h3, hid, LlmOp.MlpProducts);
                for (long j = 0; j < (long)n * hid; j++)
                {
                    float g = h1[j];
                    h1[j] = g * (1.0f / (1.0f + MathF.Exp(-g))) * h3[j];
                }
                Lap(LlmOp.SwiGlu);
                _acts.Set(h1, n, hid, hid);
                MatMul(L.W2, tmp, dim, LlmOp.MlpProducts);
                Add(x, tmp, (long)n * dim);
                Lap(LlmOp.Residual);
            }
            for (int j = 0; j < logitRows.Length; j++)
                RmsNorm(x + (long)logitRows[j] * dim, xb + (long)j * dim, 1, dim, _m.FinalNorm, c.NormEps);
            _acts.Set(xb, logitRows.Length, dim, dim);
            if (logitRows.Length > 0)
                fixed (float* lg = logits) MatMul(_m.Classifier, lg, c.VocabSize, LlmOp.Classifier);
            Lap(LlmOp.Classifier);
            if (Profile is { } prof) prof.Passes++;
        }
    }

    /// <summary>Runs one token of sequence <paramref name="seq"/> at <paramref name="pos"/>; returns its logits (a new array).</summary>
    public float[] Step(int token, int pos, int seq = 0)
    {
        var logits = new float[_m.Config.VocabSize];
        Forward([token], [pos], [seq], [0], logits);
        return logits;
    }

    /// <summary>Runs a prompt for sequence <paramref name="seq"/> from <paramref name="start"/> as one batch; returns the logits after its last token.</summary>
    public float[] Prefill(ReadOnlySpan<int> tokens, int start = 0, int seq = 0)
    {
        var pos = new int[tokens.Length];
        var seqs = new int[tokens.Length];
        for (int i = 0; i < pos.Length; i++) { pos[i] = start + i; seqs[i] = seq; }
        var logits = new float[_m.Config.VocabSize];
        Forward(tokens, pos, seqs, [tokens.Length - 1], logits);
        return logits;
    }

    private void MatMul(WeightMatrix w, float* y, int ldy, LlmOp op)
    {
        // Activations are quantized and interleaved once per input, before any rows are split over threads.
        if (w.Format != LlmWeights.Fp32) { _acts.EnsureInterleaved(); Lap(LlmOp.Quantize); }
        int rows = w.Rows;
        long work = (long)rows * w.Cols * _acts.Count;
        if (_threads == 1 || work < 1 << 16) w.Multiply(_acts, y, ldy, 0, rows);
        else (_workers ??= RowWorkers.For(_threads)).Run(w, _acts, y, ldy, rows, Math.Clamp(rows / 16, 1, _threads * 8));
        Lap(op);
    }

    private static void RmsNorm(float* x, float* o, int n, int dim, float[] weight, float eps)
    {
        for (int i = 0; i < n; i++)
        {
            float* xi = x + (long)i * dim, oi = o + (long)i * dim;
            float ss = 0;
            for (int j = 0; j < dim; j++) ss += xi[j] * xi[j];
            ss /= dim;
            ss += eps;
            ss = 1.0f / MathF.Sqrt(ss);
            for (int j = 0; j < dim; j++) oi[j] = weight[j] * (ss * xi[j]);
        }
    }

    private void Rope(float* v, int heads, int pos, LlamaConfig c)
    {
        int hs = c.HeadSize, half = hs / 2;
        int o = pos * half;
        for (int h = 0; h < heads; h++)
        {
            float* vh = v + h * hs;
            for (int i = 0; i < half; i++)
            {
                float fcr = _cos[o + i], fci = _sin[o + i];
                int a = c.Rope == RopeStyle.Interleaved ? 2 * i : i, b = c.Rope == RopeStyle.Interleaved ? 2 * i + 1 : i + half;
                float v0 = vh[a], v1 = vh[b];
                vh[a] = v0 * fcr - v1 * fci;
                vh[b] = v0 * fci + v1 * fcr;
            }
        }
    }

    private static void Add(float* x, float* y, long n)
    {
        for (long i = 0; i < n; i++) x[i] += y[i];
    }
}
