using OnDevice.Compression.Calibration;
using OnDevice.Core;
using OnDevice.Runtime;

namespace OnDevice.Compression.Gptq;

/// <summary>
/// Collects <see cref="LayerCrossStats"/>: per calibration sample, runs the float model (keeping only the current
/// sample's inputs of the requested layers) and then the quantized model, and accumulates XᵀX, X̃ᵀX̃ and X̃ᵀX over the
/// matching input rows (im2col rows for Conv). Memory: the statistics plus one sample's layer inputs.
/// </summary>
internal static class PairedCollector
{
    /// <summary>
    /// Statistics of <paramref name="sites"/> (by weight name) with <paramref name="floatModel"/> giving X and
    /// <paramref name="quantizedModel"/> giving X̃; both must compute the sites' inputs under the same names.
    /// </summary>
    public static Dictionary<string, LayerCrossStats> Collect(Model floatModel, Model quantizedModel, CalibrationSet set, IReadOnlyList<LayerSite> sites, HessianOptions options)
    {
        if (set.Count == 0) throw new CalibrationSetException("the calibration set is empty: give at least one sample");
        int threads = Math.Max(1, options.Threads);
        var fs = new InferenceSession(floatModel, new SessionOptions { Optimize = false, Threads = threads });
        var qs = new InferenceSession(quantizedModel, new SessionOptions { Optimize = false, Threads = threads });
        var stats = new Dictionary<string, LayerCrossStats>(StringComparer.Ordinal);
        var byInput = new Dictionary<string, List<(LayerSite Site, LayerCrossStats S)>>(StringComparer.Ordinal);
        foreach (var s in sites)
        {
            var st = new LayerCrossStats(s.Weight, s.Columns, s.Groups, s.Layer, s.OpType, s.Input);
            stats[s.Weight] = st;
            if (!byInput.TryGetValue(s.Input, out var list)) byInput[s.Input] = list = [];
            list.Add((s, st));
        }
        var scratch = new HessianCollector.Scratch();
        var held = new Dictionary<string, (float[] Data, int[] Shape)>(StringComparer.Ordinal);
        int done = 0;
        foreach (var feed in set.Samples())
        {
            held.Clear();
            void Keep(string name, ReadOnlySpan<float> data, int[] shape)
            {
                if (byInput.ContainsKey(name)) held[name] = (data.ToArray(), (int[])shape.Clone());
            }
            void Pair(string name, ReadOnlySpan<float> data, int[] shape)
            {
                if (!byInput.TryGetValue(name, out var list) || !held.TryGetValue(name, out var x)) return;
                if (x.Data.Length != data.Length || !x.Shape.SequenceEqual(shape))
                    throw new InvalidOperationException($"'{name}' has shape [{string.Join(",", x.Shape)}] in the float model but [{string.Join(",", shape)}] in the quantized one");
                foreach (var (s, st) in list) Accumulate(s, st, x.Data, data, shape, scratch, threads);
            }
            foreach (var (name, t) in feed)
                if (t.DType == DType.Float32 && byInput.ContainsKey(name)) Keep(name, t.AsSpan<float>(), t.Dims.Select(d => (int)d).ToArray());
            fs.Run(feed, (name, buffer) =>
            {
                if (buffer.DType == DType.Float32) Keep(name, buffer.Span<float>(), buffer.Shape);
            });
            foreach (var (name, t) in feed)
                if (t.DType == DType.Float32 && byInput.ContainsKey(name)) Pair(name, t.AsSpan<float>(), t.Dims.Select(d => (int)d).ToArray());
            qs.Run(feed, (name, buffer) =>
            {
                if (buffer.DType == DType.Float32) Pair(name, buffer.Span<float>(), buffer.Shape);
            });
            options.Progress?.Report(new StageProgress("hessian", ++done, set.Count));
        }
        foreach (var k in stats.Where(kv => kv.Value.Float.Samples == 0).Select(kv => kv.Key).ToList()) stats.Remove(k);
        return stats;
    }

    private static unsafe void Accumulate(LayerSite s, LayerCrossStats st, float[] x, ReadOnlySpan<float> xq, int[] shape, HessianCollector.Scratch scratch, int threads)
    {
        var (_, tmp) = scratch.For(s.Columns, 0);
        fixed (float* a = x)
        fixed (float* b = xq)
            HessianCollector.EachRows(s, a, b, x.Length, shape, scratch, (g, ra, rb, n) => st.AddRows(g, ra, rb, n, tmp, threads));
    }
}
