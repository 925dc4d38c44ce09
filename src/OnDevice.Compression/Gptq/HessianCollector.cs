using System.Diagnostics;
using OnDevice.Compression.Calibration;
using OnDevice.Core;
using OnDevice.Runtime;

namespace OnDevice.Compression.Gptq;

/// <summary>Options of <see cref="HessianCollector.Collect"/>.</summary>
public sealed record HessianOptions
{
    /// <summary>Threads for each model run and each XᵀX product.</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;

    /// <summary>Most bytes of statistics held at once (default 1 GiB); more layers than fit take further passes over the set.</summary>
    public long MaxBytes { get; init; } = 1L << 30;

    /// <summary>Only these weights (by name); null collects every layer GPTQ can handle.</summary>
    public IReadOnlyCollection<string>? Weights { get; init; }

    /// <summary>Called after each sample of each pass.</summary>
    public IProgress<StageProgress>? Progress { get; init; }
}

/// <summary>Statistics of every GPTQ-able layer of a model over a calibration set.</summary>
/// <param name="Layers">By weight name.</param>
/// <param name="Skipped">Weighted layers without statistics, and why (GPTQ leaves them to round-to-nearest).</param>
/// <param name="Samples">Calibration samples run per pass.</param>
/// <param name="Passes">Passes over the set (more than one when the statistics exceeded <see cref="HessianOptions.MaxBytes"/>).</param>
/// <param name="Bytes">Bytes of statistics.</param>
/// <param name="Seconds">Wall time.</param>
/// <param name="Warnings">Human-readable warnings: layers that saw fewer input rows than their reduction length (a
/// rank-deficient Hessian: GPTQ fits the calibration inputs and may not carry over to other inputs).</param>
public sealed record HessianSet(IReadOnlyDictionary<string, LayerHessian> Layers, IReadOnlyList<GptqSkippedLayer> Skipped, int Samples, int Passes, long Bytes, double Seconds,
    IReadOnlyList<string> Warnings);

/// <summary>
/// Runs a model over a calibration set and accumulates, for every Conv, Gemm and MatMul with a constant float weight,
/// XᵀX of the rows its weight multiplies: MatMul inputs with leading dimensions flattened, Gemm's A (transposed when
/// transA), and Conv inputs through their im2col view (strides, pads, auto_pad, dilations, per group).
/// </summary>
public static class HessianCollector
{
    /// <summary>Collects the statistics. Bad options fail before any sample runs.</summary>
    public static HessianSet Collect(Model model, CalibrationSet set, HessianOptions? options = null)
    {
        var o = options ?? new HessianOptions();
        if (o.MaxBytes < 1) throw new ArgumentOutOfRangeException(nameof(options), "MaxBytes must be positive");
        if (set.Count == 0) throw new CalibrationSetException("the calibration set is empty: give at least one sample");
        var sw = Stopwatch.StartNew();
        int threads = Math.Max(1, o.Threads);
        var session = new InferenceSession(model, new SessionOptions { Optimize = false, Threads = threads });
        var (sites, skipped) = LayerSites.Find(session.OptimizedGraph);
        if (o.Weights is { } only)
        {
            var known = new HashSet<string>(sites.Select(s => s.Weight).Concat(skipped.Select(s => s.Weight)), StringComparer.Ordinal);
            foreach (var w in only)
                if (!known.Contains(w)) throw new ArgumentException($"'{w}' is not the weight of a Conv, Gemm or MatMul of the model", nameof(options));
            sites = sites.Where(s => only.Contains(s.Weight)).ToList();
        }
        var passes = new List<List<LayerSite>>();
        long inPass = 0;
        foreach (var s in sites)
        {
            long bytes = Bytes(s);
            if (passes.Count == 0 || inPass + bytes > o.MaxBytes && passes[^1].Count > 0)
            {
                passes.Add([]);
                inPass = 0;
            }
            passes[^1].Add(s);
            inPass += bytes;
        }

        var layers = new Dictionary<string, LayerHessian>(StringComparer.Ordinal);
        int total = passes.Count * set.Count, done = 0;
        foreach (var pass in passes)
        {
            var byInput = new Dictionary<string, List<(LayerSite Site, LayerHessian H)>>(StringComparer.Ordinal);
            foreach (var s in pass)
            {
                var h = new LayerHessian(s.Weight, s.Columns, s.Groups, s.Layer, s.OpType, s.Input);
                layers[s.Weight] = h;
                if (!byInput.TryGetValue(s.Input, out var list)) byInput[s.Input] = list = [];
                list.Add((s, h));
            }
            var scratch = new Scratch();
            void Observe(string name, ReadOnlySpan<float> data, int[] shape)
            {
                if (!byInput.TryGetValue(name, out var list)) return;
                foreach (var (s, h) in list) Accumulate(s, h, data, shape, scratch, threads);
            }
            foreach (var feed in set.Samples())
            {
                foreach (var (name, t) in feed)
                    if (t.DType == DType.Float32 && byInput.ContainsKey(name)) Observe(name, t.AsSpan<float>(), t.Dims.Select(d => (int)d).ToArray());
                session.Run(feed, (name, buffer) =>
                {
                    if (buffer.DType == DType.Float32) Observe(name, buffer.Span<float>(), buffer.Shape);
                });
                o.Progress?.Report(new StageProgress("hessian", ++done, total));
            }
        }
        foreach (var s in sites)
            if (layers[s.Weight].Samples == 0)
            {
                layers.Remove(s.Weight);
                skipped.Add(new(s.Layer, s.OpType, s.Weight, "its input was never produced as float32 during calibration"));
            }
        var warnings = new List<string>();
        var thin = layers.Values.Where(h => h.Samples < h.Columns).ToList();
        if (thin.Count > 0)
            warnings.Add($"{thin.Count} layer(s) saw fewer calibration input rows than their reduction length, so their Hessian is rank-deficient "
                + $"and GPTQ may fit the calibration set rather than the data; add samples. "
                + string.Join(", ", thin.OrderBy(h => (double)h.Samples / h.Columns).Take(5).Select(h => $"{h.Layer} ({h.Samples} rows for {h.Columns} columns)")));
        return new HessianSet(layers, skipped, set.Count, passes.Count, layers.Values.Sum(h => h.Bytes), sw.Elapsed.TotalSeconds, warnings);
    }

    private static long Bytes(LayerSite s) => s.Groups * ((long)s.Columns * s.Columns + s.Columns) * sizeof(double);

    /// <summary>Reusable buffers for input rows (a second set for a paired input) and XᵀX products.</summary>
    internal sealed class Scratch
    {
        public float[] Rows = [];
        public float[] Rows2 = [];
        public float[] Tmp = [];

        public (float[] Rows, float[] Tmp) For(int k, int rows)
        {
            if (Rows.Length < (long)k * rows) Rows = new float[(long)k * rows];
            if (k > 24 && Tmp.Length < (long)k * k) Tmp = new float[(long)k * k];
            return (Rows, Tmp);
        }

        public float[] Second(int k, int rows)
        {
            if (Rows2.Length < (long)k * rows) Rows2 = new float[(long)k * rows];
            return Rows2;
        }
    }

    /// <summary>Rows per XᵀX chunk: about a megabyte of floats.</summary>
    private static int ChunkRows(int k) => Math.Clamp(262_144 / k, 16, 4096);

    /// <summary>Receives a chunk of input rows of one weight group: <paramref name="a"/>[rows, K] and, for a paired input, the matching <paramref name="b"/>[rows, K] (else null).</summary>
    internal unsafe delegate void RowSink(int group, float* a, float* b, int rows);

    private static unsafe void Accumulate(LayerSite s, LayerHessian h, ReadOnlySpan<float> data, int[] shape, Scratch scratch, int threads)
    {
        var (_, tmp) = scratch.For(s.Columns, 0);
        fixed (float* p = data)
            EachRows(s, p, null, data.Length, shape, scratch, (g, a, _, n) => h.AddRows(g, a, n, tmp, threads));
    }

    /// <summary>
    /// Feeds <paramref name="sink"/> the input rows of <paramref name="s"/>'s weight (MatMul rows, Gemm's A rows, or
    /// Conv im2col patches per group) in chunks. With <paramref name="b"/> (an input of the same shape, e.g. the same
    /// activation in another model), the matching rows of both come together.
    /// </summary>
    internal static unsafe void EachRows(LayerSite s, float* a, float* b, int length, int[] shape, Scratch scratch, RowSink sink)
    {
        int K = s.Columns;
        switch (s.OpType)
        {
            case "MatMul":
            {
                if (shape.Length < 1 || shape[^1] != K)
                    throw new InvalidOperationException($"{s.Layer}: input '{s.Input}' has shape [{string.Join(",", shape)}], expected last dimension {K}");
                int rows = length / K, chunk = ChunkRows(K);
                for (int r = 0; r < rows; r += chunk)
                    sink(0, a + (long)r * K, b == null ? null : b + (long)r * K, Math.Min(chunk, rows - r));
                break;
            }
            case "Gemm":
            {
                if (shape.Length != 2 || shape[s.TransA ? 0 : 1] != K)
                    throw new InvalidOperationException($"{s.Layer}: input '{s.Input}' has shape [{string.Join(",", shape)}], expected a matrix with {K} {(s.TransA ? "rows" : "columns")}");
                int rows = s.TransA ? shape[1] : shape[0], chunk = ChunkRows(K);
                if (!s.TransA)
                {
                    for (int r = 0; r < rows; r += chunk)
                        sink(0, a + (long)r * K, b == null ? null : b + (long)r * K, Math.Min(chunk, rows - r));
                    break;
                }
                var (buf, _) = scratch.For(K, chunk);
                var buf2 = b == null ? null : scratch.Second(K, chunk);
                fixed (float* ba = buf)
                fixed (float* bb = buf2)
                    for (int r = 0; r < rows; r += chunk)
                    {
                        int n = Math.Min(chunk, rows - r);
                        for (int t = 0; t < n; t++)
                            for (int k = 0; k < K; k++)
                            {
                                ba[(long)t * K + k] = a[(long)k * rows + r + t];
                                if (b != null) bb[(long)t * K + k] = b[(long)k * rows + r + t];
                            }
                        sink(0, ba, b == null ? null : bb, n);
                    }
                break;
            }
            default:
                EachConvRows(s, a, b, shape, scratch, sink);
                break;
        }
    }

    private static unsafe void EachConvRows(LayerSite s, float* p, float* p2, int[] shape, Scratch scratch, RowSink sink)
    {
        var geo = s.Conv!;
        int spatial = geo.Kernel.Length;
        int K = s.Columns, groups = s.Groups;
        int taps = geo.Kernel.Aggregate(1, (a, b) => a * b);
        int cg = K / taps;
        if (shape.Length != spatial + 2 || shape[1] != cg * groups)
            throw new InvalidOperationException($"{s.Layer}: input '{s.Input}' has shape [{string.Join(",", shape)}], expected rank {spatial + 2} with {cg * groups} channels");
        int batch = shape[0], c = shape[1];
        int inH = spatial == 2 ? shape[2] : 1, inW = shape[^1];
        int kh = spatial == 2 ? geo.Kernel[0] : 1, kw = geo.Kernel[^1];
        int sh = spatial == 2 ? geo.Strides[0] : 1, swd = geo.Strides[^1];
        int dh = spatial == 2 ? geo.Dilations[0] : 1, dw = geo.Dilations[^1];
        var (outH, padT) = spatial == 2 ? geo.Resolve(0, inH) : (1, 0);
        var (outW, padL) = geo.Resolve(spatial - 1, inW);
        int positions = outH * outW;
        if (positions == 0) return;
        int chunk = ChunkRows(K);
        var (buf, _) = scratch.For(K, chunk);
        var buf2 = p2 == null ? null : scratch.Second(K, chunk);
        fixed (float* b = buf)
        fixed (float* b2 = buf2)
        {
            for (int n = 0; n < batch; n++)
                for (int g = 0; g < groups; g++)
                {
                    long offset = ((long)n * c + (long)g * cg) * inH * inW;
                    for (int pos0 = 0; pos0 < positions; pos0 += chunk)
                    {
                        int rows = Math.Min(chunk, positions - pos0);
                        Im2Col(p + offset, b, pos0, rows);
                        if (p2 != null) Im2Col(p2 + offset, b2, pos0, rows);
                        sink(g, b, p2 == null ? null : b2, rows);
                    }
                }
        }

        void Im2Col(float* inG, float* dst, int pos0, int rows)
        {
            for (int t = 0; t < rows; t++)
            {
                int oy = (pos0 + t) / outW, ox = (pos0 + t) % outW;
                float* row = dst + (long)t * K;
                int idx = 0;
                for (int ci = 0; ci < cg; ci++)
                {
                    float* plane = inG + (long)ci * inH * inW;
                    for (int ky = 0; ky < kh; ky++)
                    {
                        int iy = oy * sh - padT + ky * dh;
                        bool rowIn = iy >= 0 && iy < inH;
                        for (int kx = 0; kx < kw; kx++)
                        {
                            int ix = ox * swd - padL + kx * dw;
                            row[idx++] = rowIn && ix >= 0 && ix < inW ? plane[(long)iy * inW + ix] : 0f;
                        }
                    }
                }
            }
        }
    }
}
