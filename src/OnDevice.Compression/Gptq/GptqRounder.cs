using System.Collections.Concurrent;
using System.Diagnostics;
using OnDevice.Compression.Calibration;
using OnDevice.Compression.Quantization;
using OnDevice.Core;

namespace OnDevice.Compression.Gptq;

/// <summary>Options of GPTQ.</summary>
public sealed record GptqOptions
{
    /// <summary>Dampening added to the Hessian's diagonal, as a share of its mean diagonal (default 0.01).</summary>
    public double PercDamp { get; init; } = 0.01;

    /// <summary>Columns per lazy batch update (default 128; blocked schemes round it to a multiple of their block).</summary>
    public int BlockSize { get; init; } = 128;

    /// <summary>Quantize columns in order of decreasing Hessian diagonal (act-order); the result is in the original order.</summary>
    public bool ActOrder { get; init; }

    /// <summary>
    /// Keep, per output row, whichever of the GPTQ and round-to-nearest results has the smaller output error on the
    /// calibration inputs (measured with the undamped Hessian), so a layer is never worse than RTN (default true).
    /// <see cref="GptqRounder.Stats"/> says how many rows kept RTN.
    /// </summary>
    public bool NeverWorseThanRtn { get; init; } = true;

    /// <summary>
    /// Choose each scale group's scale by a clip search (default false): the group's range shrunk by each of
    /// <see cref="ClipFactors"/>, keeping the one with the least squared rounding error weighted by the Hessian
    /// diagonal (how strongly each column's input drives the output) — an MSE-optimal scale instead of max|w|, which
    /// matters most at 4 bits where one large weight sets a coarse step for its whole block.
    /// </summary>
    public bool ClipSearch { get; init; }

    /// <summary>Shrink factors the clip search tries (default 1.00, 0.975, …, 0.70).</summary>
    public IReadOnlyList<double> ClipFactors { get; init; } = Enumerable.Range(0, 13).Select(i => 1.0 - 0.025 * i).ToArray();

    /// <summary>
    /// Bias correction (Nagel et al. 2019; default false): after a layer is quantized, add E[W·x − Ŵ·x̃] per output
    /// channel to its bias (x̃ = x for one-shot GPTQ; the quantized prefix's input for <see cref="SequentialGptqRounder"/>).
    /// </summary>
    public bool BiasCorrection { get; init; }

    /// <summary>
    /// <see cref="SequentialGptqRounder"/> only: output-aware objective ‖X̃·Ŵᵀ − X·Wᵀ‖² (X the float model's inputs,
    /// X̃ the quantized prefix's) instead of plain GPTQ on X̃ (default false). See <see cref="OutputAwareGptq"/>.
    /// </summary>
    public bool OutputAware { get; init; }

    /// <summary>
    /// <see cref="SequentialGptqRounder"/> only: most layers whose statistics one calibration pass collects (default 1).
    /// A pass only groups consecutive layers none of which reads a value computed from another's output (parallel
    /// branches), so the result is the same as with 1, in fewer passes. (Grouping dependent layers would make a layer
    /// correct an upstream error that the output-aware objective already removes in the layer before it.)
    /// </summary>
    public int LayersPerPass { get; init; } = 1;

    /// <summary>Threads for the inverse-Hessian factorization (default: all processors).</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;

    /// <summary>Called after each weight is quantized.</summary>
    public IProgress<StageProgress>? Progress { get; init; }
}

/// <summary>What GPTQ did to one weight.</summary>
/// <param name="Weight">The weight's name.</param>
/// <param name="Rows">Output rows.</param>
/// <param name="Columns">Reduction columns.</param>
/// <param name="RowsKeptRtn">Rows where round-to-nearest was better and was kept (<see cref="GptqOptions.NeverWorseThanRtn"/>).</param>
/// <param name="PercDamp">Dampening finally used (raised when the Hessian was not positive definite).</param>
/// <param name="GptqError">Relative output error ‖X(W−Ŵ)ᵀ‖/‖XWᵀ‖ of GPTQ's own result on the calibration inputs.</param>
/// <param name="RtnError">The same for round-to-nearest.</param>
/// <param name="Seconds">Time spent.</param>
public sealed record GptqLayerStats(string Weight, int Rows, int Columns, int RowsKeptRtn, double PercDamp, double GptqError, double RtnError, double Seconds);

/// <summary>
/// GPTQ (Frantar et al., 2022): quantizes a weight column by column and spreads each column's rounding error over the
/// columns not yet quantized, weighted by the inverse Hessian of the layer's output error on calibration inputs, so the
/// layer output — not the weight — stays close. Per-channel scales are fixed from the whole row up front; blocked
/// scales are computed when their block is reached (from the error-updated weights), or up front with act-order so
/// the blocks stay contiguous in the original column order.
/// </summary>
public sealed class GptqRounder : IBiasCorrectingRounder
{
    private readonly IReadOnlyDictionary<string, LayerHessian> _hessians;
    private readonly IWeightRounder? _fallback;
    private readonly ConcurrentDictionary<string, GptqLayerStats> _stats = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, float[]> _bias = new(StringComparer.Ordinal);
    private int _done;

    /// <summary>
    /// A rounder for the weights in <paramref name="hessians"/> (by weight name). Weights without statistics go to
    /// <paramref name="fallback"/> (typically the RTN rounder); without a fallback they are an error.
    /// </summary>
    public GptqRounder(IReadOnlyDictionary<string, LayerHessian> hessians, GptqOptions? options = null, IWeightRounder? fallback = null)
    {
        _hessians = hessians;
        Options = options ?? new GptqOptions();
        if (!(Options.PercDamp >= 0)) throw new ArgumentOutOfRangeException(nameof(options), $"percdamp must be ≥ 0, got {Options.PercDamp}");
        if (Options.BlockSize < 1) throw new ArgumentOutOfRangeException(nameof(options), $"block size must be ≥ 1, got {Options.BlockSize}");
        _fallback = fallback;
    }

    /// <summary>A rounder over the statistics of a <see cref="HessianSet"/>.</summary>
    public GptqRounder(HessianSet hessians, GptqOptions? options = null, IWeightRounder? fallback = null)
        : this(hessians.Layers, options, fallback) => Statistics = hessians;

    /// <summary>The statistics this rounder was built from, when built from a <see cref="HessianSet"/> (skipped layers, warnings).</summary>
    public HessianSet? Statistics { get; }

    /// <summary>
    /// Collects layer statistics of <paramref name="model"/> over <paramref name="set"/> (progress in
    /// <paramref name="hessian"/>) and returns a rounder over them; weights GPTQ cannot handle go to
    /// <paramref name="fallback"/>.
    /// </summary>
    public static GptqRounder Calibrate(Model model, CalibrationSet set, GptqOptions? options = null, HessianOptions? hessian = null, IWeightRounder? fallback = null) =>
        new(HessianCollector.Collect(model, set, hessian), options, fallback);

    /// <inheritdoc/>
    public string Name => "gptq";

    /// <summary>The options in force.</summary>
    public GptqOptions Options { get; }

    /// <summary>What happened to each weight quantized so far, by weight name.</summary>
    public IReadOnlyDictionary<string, GptqLayerStats> Stats => _stats;

    /// <inheritdoc/>
    public float[]? BiasCorrection(string weight) => _bias.TryGetValue(weight, out var d) ? d : null;

    /// <summary>True when GPTQ statistics exist for weight <paramref name="name"/>.</summary>
    public bool Covers(string name) => _hessians.ContainsKey(name);

    /// <inheritdoc/>
    public QuantizedWeight Quantize(WeightMatrix weight, QuantScheme scheme)
    {
        if (!_hessians.TryGetValue(weight.Name, out var h))
        {
            if (_fallback is not null) return _fallback.Quantize(weight, scheme);
            throw new ArgumentException($"no GPTQ statistics for weight '{weight.Name}' (it was not seen during Hessian collection)", nameof(weight));
        }
        var q = Run(weight, scheme, h, Options, out var stats);
        _stats[weight.Name] = stats;
        if (Options.BiasCorrection) _bias[weight.Name] = OutputAwareGptq.BiasCorrection(weight, q, h, h);
        int done = Interlocked.Increment(ref _done);
        Options.Progress?.Report(new StageProgress("gptq", done, _hessians.Count, weight.Name));
        return q;
    }

    /// <summary>GPTQ of <paramref name="weight"/> with the statistics <paramref name="h"/>.</summary>
    internal static QuantizedWeight Run(WeightMatrix weight, QuantScheme scheme, LayerHessian h, GptqOptions o, out GptqLayerStats stats)
    {
        RtnReference.CheckScheme(weight, scheme);
        int rows = weight.Rows, cols = weight.Columns;
        if (h.Columns != cols || rows % h.Groups != 0)
            throw new ArgumentException($"weight '{weight.Name}' is {rows}x{cols} but its statistics have {h.Columns} columns in {h.Groups} group(s)");
        var sw = Stopwatch.StartNew();
        var values = new int[weight.Data.Length];
        var (scales, zps) = RtnReference.Grid(weight.Data, rows, cols, scheme); // RTN's grid; GPTQ may recompute blocked groups
        var rtn = RtnReference.Instance.Quantize(weight, scheme);
        int perGroup = rows / h.Groups, keptRtn = 0;
        double damp = o.PercDamp, errG = 0, errR = 0, norm = 0;
        for (int g = 0; g < h.Groups; g++)
        {
            int r0 = g * perGroup;
            var xtx = h.XtX(g).ToArray();
            if (o.ClipSearch && scheme.Granularity != Granularity.PerTensor)
            {
                var diag = new double[cols];
                for (int c = 0; c < cols; c++) diag[c] = xtx[(long)c * cols + c];
                for (int r = r0; r < r0 + perGroup; r++)
                    for (int c0 = 0; c0 < cols; c0 += scheme.Granularity == Granularity.Blocked ? scheme.BlockSize : cols)
                    {
                        int c1 = scheme.Granularity == Granularity.Blocked ? Math.Min(cols, c0 + scheme.BlockSize) : cols;
                        int grp = RtnReference.GroupOf(r, c0, cols, scheme);
                        (scales[grp], zps[grp]) = SearchScale(weight.Data.AsSpan(r * cols + c0, c1 - c0), diag.AsSpan(c0, c1 - c0), scheme, o.ClipFactors);
                    }
            }
            double used = RunGroup(weight.Data, r0, perGroup, cols, (double[])xtx.Clone(), scheme, o, values, scales, zps);
            damp = Math.Max(damp, used);
            // Output error per row on the calibration inputs: (w − ŵ)·XᵀX·(w − ŵ)ᵀ.
            for (int r = r0; r < r0 + perGroup; r++)
            {
                double eg = RowError(weight.Data, r, cols, xtx, values, scales, zps, scheme);
                double er = RowError(weight.Data, r, cols, xtx, rtn.Values, rtn.Scales, rtn.ZeroPoints, scheme);
                norm += RowNorm(weight.Data, r, cols, xtx);
                errR += er;
                if (o.NeverWorseThanRtn && er < eg)
                {
                    keptRtn++;
                    Array.Copy(rtn.Values, r * cols, values, r * cols, cols);
                    if (scheme.Granularity != Granularity.PerTensor)
                    {
                        int first = RtnReference.GroupOf(r, 0, cols, scheme), last = RtnReference.GroupOf(r, cols - 1, cols, scheme);
                        Array.Copy(rtn.Scales, first, scales, first, last - first + 1);
                        Array.Copy(rtn.ZeroPoints, first, zps, first, last - first + 1);
                    }
                    errG += er;
                }
                else errG += eg;
            }
        }
        double denom = Math.Sqrt(Math.Max(norm, 1e-300));
        stats = new GptqLayerStats(weight.Name, rows, cols, keptRtn, damp, Math.Sqrt(errG) / denom, Math.Sqrt(errR) / denom, sw.Elapsed.TotalSeconds);
        return new QuantizedWeight(values, scales, zps, [rows, cols], scheme);
    }

    private static double RowNorm(float[] w, int r, int cols, double[] xtx)
    {
        var d = new double[cols];
        for (int c = 0; c < cols; c++) d[c] = w[r * cols + c];
        return Linalg.Quadratic(d, xtx);
    }

    private static double RowError(float[] w, int r, int cols, double[] xtx, int[] q, float[] scales, int[] zps, QuantScheme scheme)
    {
        var d = new double[cols];
        for (int c = 0; c < cols; c++)
        {
            int g = RtnReference.GroupOf(r, c, cols, scheme);
            d[c] = w[r * cols + c] - (double)((q[r * cols + c] - zps[g]) * scales[g]);
        }
        return Linalg.Quadratic(d, xtx);
    }

    /// <summary>
    /// GPTQ of rows [r0, r0+count) (one Hessian group); writes their values (original column order) and, for blocked
    /// schemes without act-order, their block scales. Returns the dampening used.
    /// </summary>
    private static unsafe double RunGroup(float[] weight, int r0, int count, int cols, double[] xtx, QuantScheme scheme, GptqOptions o,
        int[] values, float[] scales, int[] zps)
    {
        int K = cols;
        // Dead columns (never non-zero in the calibration inputs) decouple: their rounding cannot be compensated and
        // nothing is pushed into them; they keep their own weights (the reference zeroes them, which only holds if the
        // input really is always zero).
        double liveMean = 0;
        int live = 0;
        for (int i = 0; i < K; i++)
            if (xtx[i * K + i] > 0) { liveMean += xtx[i * K + i]; live++; }
        var w = new float[(long)count * K];
        Array.Copy(weight, (long)r0 * K, w, 0, w.Length);
        bool blocked = scheme.Granularity == Granularity.Blocked;
        int bs = scheme.BlockSize;
        if (live == 0)
        {
            QuantizeRtnRows(w, r0, count, K, scheme, values, scales, zps);
            return o.PercDamp;
        }
        liveMean /= live;
        for (int i = 0; i < K; i++)
            if (!(xtx[i * K + i] > 0))
            {
                for (int j = 0; j < K; j++) xtx[i * K + j] = xtx[j * K + i] = 0;
                xtx[i * K + i] = liveMean;
            }

        var perm = Enumerable.Range(0, K).ToArray();
        if (o.ActOrder)
        {
            var diag = perm.Select(i => xtx[i * K + i]).ToArray();
            perm = perm.OrderByDescending(i => diag[i]).ThenBy(i => i).ToArray();
        }
        var hp = new double[(long)K * K];
        for (int i = 0; i < K; i++)
            for (int j = 0; j < K; j++) hp[i * K + j] = xtx[perm[i] * K + perm[j]];
        double meanDiag = 0;
        for (int i = 0; i < K; i++) meanDiag += hp[i * K + i];
        meanDiag /= K;

        float[]? u = null;
        double percDamp = o.PercDamp;
        for (int attempt = 0; attempt < 8 && u is null; attempt++)
        {
            var hd = (double[])hp.Clone();
            double damp = percDamp * meanDiag;
            for (int i = 0; i < K; i++) hd[i * K + i] += damp;
            u = Linalg.UpperInverseFactor(hd, K, Math.Max(1, o.Threads));
            if (u is null) percDamp = percDamp > 0 ? percDamp * 10 : 1e-6;
        }
        if (u is null)
        {
            QuantizeRtnRows(w, r0, count, K, scheme, values, scales, zps);
            return percDamp;
        }

        // Columns in processing order.
        var wp = new float[w.Length];
        for (int r = 0; r < count; r++)
            for (int i = 0; i < K; i++) wp[r * K + i] = w[r * K + perm[i]];

        // Lazy batch width: blocked schemes without act-order compute a block's scale when it starts, from the current
        // (error-updated) weights, so batches hold whole blocks.
        int lb = o.BlockSize;
        if (blocked && !o.ActOrder) lb = bs >= lb ? bs : Math.Max(1, lb / bs) * bs;
        lb = Math.Min(lb, K);
        var err = new float[(long)count * lb];
        var q = new int[w.Length];
        var diagP = new double[K];
        for (int i = 0; i < K; i++) diagP[i] = hp[(long)i * K + i];
        fixed (float* pw = wp, pu = u, pe = err)
        {
            for (int i1 = 0; i1 < K; i1 += lb)
            {
                int i2 = Math.Min(i1 + lb, K), n = i2 - i1;
                for (int i = i1; i < i2; i++)
                {
                    int col = perm[i];
                    if (blocked && !o.ActOrder && col % bs == 0)
                    {
                        int end = Math.Min(col + bs, K);
                        for (int r = 0; r < count; r++)
                        {
                            float lo = 0, hi = 0;
                            for (int c = col; c < end; c++)
                            {
                                float v = wp[r * K + c];
                                lo = Math.Min(lo, v);
                                hi = Math.Max(hi, v);
                            }
                            int g = RtnReference.GroupOf(r0 + r, col, K, scheme);
                            (scales[g], zps[g]) = o.ClipSearch
                                ? SearchScale(new ReadOnlySpan<float>(pw + (long)r * K + col, end - col), diagP.AsSpan(col, end - col), scheme, o.ClipFactors)
                                : RtnReference.ScaleAndZeroPoint(lo, hi, scheme);
                        }
                    }
                    float d = u[(long)i * K + i];
                    var uRow = new ReadOnlySpan<float>(pu + (long)i * K + i + 1, i2 - i - 1);
                    for (int r = 0; r < count; r++)
                    {
                        int g = RtnReference.GroupOf(r0 + r, col, K, scheme);
                        float v = wp[r * K + i];
                        int qi = RtnReference.Round(v, scales[g], zps[g], scheme);
                        q[r * K + i] = qi;
                        float e = (v - (qi - zps[g]) * scales[g]) / d;
                        err[r * lb + (i - i1)] = e;
                        if (uRow.Length > 0) Linalg.SubScaled(e, uRow, new Span<float>(pw + (long)r * K + i + 1, uRow.Length));
                    }
                }
                if (i2 < K) Linalg.SubtractProduct(pe, lb, pu + (long)i1 * K + i2, K, pw + i2, K, count, n, K - i2);
            }
        }
        for (int r = 0; r < count; r++)
            for (int i = 0; i < K; i++) values[(long)(r0 + r) * K + perm[i]] = q[r * K + i];
        return percDamp;
    }

    /// <summary>
    /// The scale (and zero point) of one group minimizing Σ importance·(w − ŵ)² over its range shrunk by each factor;
    /// ties keep the widest range (factors in the given order, 1.0 first).
    /// </summary>
    internal static (float Scale, int ZeroPoint) SearchScale(ReadOnlySpan<float> w, ReadOnlySpan<double> importance, QuantScheme scheme, IReadOnlyList<double> factors)
    {
        float lo = 0, hi = 0;
        foreach (var v in w)
        {
            lo = Math.Min(lo, v);
            hi = Math.Max(hi, v);
        }
        var best = RtnReference.ScaleAndZeroPoint(lo, hi, scheme);
        double bestErr = GroupError(w, importance, best.Scale, best.ZeroPoint, scheme);
        foreach (var f in factors)
        {
            if (!(f > 0 && f < 1)) continue;
            var cand = RtnReference.ScaleAndZeroPoint((float)(lo * f), (float)(hi * f), scheme);
            double e = GroupError(w, importance, cand.Scale, cand.ZeroPoint, scheme);
            if (e < bestErr)
            {
                bestErr = e;
                best = cand;
            }
        }
        return best;
    }

    private static double GroupError(ReadOnlySpan<float> w, ReadOnlySpan<double> importance, float scale, int zp, QuantScheme scheme)
    {
        double e = 0;
        for (int i = 0; i < w.Length; i++)
        {
            double d = w[i] - (double)((RtnReference.Round(w[i], scale, zp, scheme) - zp) * scale);
            e += (importance[i] > 0 ? importance[i] : 0) * d * d;
        }
        return e;
    }

    /// <summary>Round-to-nearest of rows [r0, r0+count) into the shared arrays (groups whose Hessian is unusable).</summary>
    private static void QuantizeRtnRows(float[] w, int r0, int count, int cols, QuantScheme scheme, int[] values, float[] scales, int[] zps)
    {
        if (scheme.Granularity != Granularity.PerTensor)
        {
            var (s, z) = RtnReference.Grid(w, count, cols, scheme);
            int per = RtnReference.GroupCount(1, cols, scheme);
            Array.Copy(s, 0, scales, RtnReference.GroupOf(r0, 0, cols, scheme), per * count);
            Array.Copy(z, 0, zps, RtnReference.GroupOf(r0, 0, cols, scheme), per * count);
        }
        for (int r = 0; r < count; r++)
            for (int c = 0; c < cols; c++)
            {
                int g = RtnReference.GroupOf(r0 + r, c, cols, scheme);
                values[(r0 + r) * cols + c] = RtnReference.Round(w[r * cols + c], scales[g], zps[g], scheme);
            }
    }
}
