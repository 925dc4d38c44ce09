using System.Diagnostics;
using OnDevice.Compression.Quantization;

namespace OnDevice.Compression.Gptq;

/// <summary>
/// Paired statistics of one layer over a calibration set: its inputs X in the float model and X̃ in a model whose
/// earlier layers are already quantized, on the same samples and rows (im2col rows for Conv). Holds XᵀX (with Σx),
/// X̃ᵀX̃ (with Σx̃) and the cross product X̃ᵀX per weight group — never the activations.
/// </summary>
public sealed class LayerCrossStats
{
    private readonly double[][] _cross;

    /// <summary>Empty statistics for a weight of <paramref name="columns"/> reduction columns in <paramref name="groups"/> groups.</summary>
    public LayerCrossStats(string weight, int columns, int groups = 1, string layer = "", string opType = "", string input = "")
    {
        Float = new LayerHessian(weight, columns, groups, layer, opType, input);
        Quantized = new LayerHessian(weight, columns, groups, layer, opType, input);
        _cross = new double[groups][];
        for (int g = 0; g < groups; g++) _cross[g] = new double[(long)columns * columns];
    }

    /// <summary>Statistics of the float model's inputs X.</summary>
    public LayerHessian Float { get; }

    /// <summary>Statistics of the quantized prefix's inputs X̃ (GPTQ's Hessian).</summary>
    public LayerHessian Quantized { get; }

    /// <summary>Reduction columns per group.</summary>
    public int Columns => Float.Columns;

    /// <summary>Weight groups.</summary>
    public int Groups => Float.Groups;

    /// <summary>Bytes the statistics hold.</summary>
    public long Bytes => Float.Bytes + Quantized.Bytes + Groups * (long)Columns * Columns * sizeof(double);

    /// <summary>X̃ᵀX of group <paramref name="group"/>: entry [i, j] = Σ x̃ᵢ·xⱼ, row-major (do not modify).</summary>
    public ReadOnlySpan<double> Cross(int group) => _cross[group];

    /// <summary>Statistics from explicit paired rows (one group): <paramref name="x"/> the float inputs, <paramref name="xq"/> the quantized prefix's.</summary>
    public static LayerCrossStats FromInputs(string weight, float[] x, float[] xq, int rows, int columns)
    {
        if (x.Length != (long)rows * columns || xq.Length != x.Length) throw new ArgumentException($"need two sets of {rows}x{columns} input rows, got {x.Length} and {xq.Length} values");
        var s = new LayerCrossStats(weight, columns);
        var tmp = columns > 24 ? new float[(long)columns * columns] : [];
        unsafe
        {
            fixed (float* a = x, b = xq) s.AddRows(0, a, b, rows, tmp, 1);
        }
        return s;
    }

    internal unsafe void AddRows(int group, float* x, float* xq, int rows, float[] tmp, int threads)
    {
        Float.AddRows(group, x, rows, tmp, threads);
        Quantized.AddRows(group, xq, rows, tmp, threads);
        Linalg.AccumulateXtY(xq, x, rows, Columns, _cross[group], tmp, threads);
    }
}

/// <summary>
/// Output-aware GPTQ (the objective of GPTAQ, Li et al. 2025): round a layer so that its output on the inputs X̃ it
/// receives from the already quantized earlier layers matches the float layer's output on the float inputs X,
/// i.e. minimise ‖X̃·Ŵᵀ − X·Wᵀ‖². With H = X̃ᵀX̃ that is ‖X̃·(Ŵ − W*)ᵀ‖² plus a constant, where
/// W* = W·(XᵀX̃)·H⁻¹ = W + W·(XᵀX̃ − H)·H⁻¹ is the unconstrained optimum; GPTQ then rounds W* with Hessian H. The second
/// form is used (with H dampened as GPTQ dampens it): when X̃ = X it gives W* = W exactly, i.e. plain GPTQ.
/// </summary>
public static class OutputAwareGptq
{
    /// <summary>
    /// The unconstrained optimum W* (row-major, like <paramref name="weight"/>) and the dampening used (raised
    /// tenfold until H + λI factors, as GPTQ does).
    /// </summary>
    public static (float[] Target, double PercDamp) Target(WeightMatrix weight, LayerCrossStats stats, double percDamp = 0.01, int threads = 1)
    {
        int rows = weight.Rows, K = weight.Columns;
        Check(weight, stats);
        int per = rows / stats.Groups;
        var target = (float[])weight.Data.Clone();
        double used = percDamp;
        for (int g = 0; g < stats.Groups; g++)
        {
            var h = stats.Quantized.XtX(g);
            var cross = stats.Cross(g);
            // D = W·(XᵀX̃ − H): D[r, j] = Σᵢ w[r, i]·(X̃ᵀX[j, i] − H[j, i]) — row j of both is contiguous.
            var e = new double[(long)K * K];
            bool any = false;
            for (int i = 0; i < e.Length; i++)
            {
                e[i] = cross[i] - h[i];
                any |= e[i] != 0;
            }
            if (!any) continue; // X̃ = X on every row: W* = W
            var d = new double[(long)per * K];
            var wr = new double[K];
            for (int r = 0; r < per; r++)
            {
                for (int c = 0; c < K; c++) wr[c] = weight.Data[(long)(g * per + r) * K + c];
                for (int j = 0; j < K; j++) d[(long)r * K + j] = Linalg.Dot(wr, e.AsSpan(j * K, K));
            }
            var hd = h.ToArray();
            double mean = 0;
            int live = 0;
            for (int i = 0; i < K; i++)
                if (hd[i * K + i] > 0) { mean += hd[i * K + i]; live++; }
            if (live == 0) continue;
            mean /= live;
            for (int i = 0; i < K; i++)
                if (!(hd[i * K + i] > 0))
                {
                    for (int j = 0; j < K; j++) hd[i * K + j] = hd[j * K + i] = 0;
                    hd[i * K + i] = mean;
                }
            double pd = percDamp;
            double[]? delta = null;
            for (int attempt = 0; attempt < 8 && delta is null; attempt++)
            {
                var a = (double[])hd.Clone();
                for (int i = 0; i < K; i++) a[i * K + i] += pd * mean;
                delta = Linalg.SolveRight(d, per, a, K, threads);
                if (delta is null) pd = pd > 0 ? pd * 10 : 1e-6;
            }
            if (delta is null) continue; // H unusable: keep W
            used = Math.Max(used, pd);
            for (int r = 0; r < per; r++)
                for (int c = 0; c < K; c++) target[(long)(g * per + r) * K + c] += (float)delta[(long)r * K + c];
        }
        return (target, used);
    }

    /// <summary>
    /// Output-aware GPTQ of <paramref name="weight"/>: GPTQ on W* with Hessian X̃ᵀX̃; with
    /// <see cref="GptqOptions.NeverWorseThanRtn"/>, each output row keeps round-to-nearest of the original W when that
    /// has the smaller output-aware error. <paramref name="stats"/> reports ‖X̃·Ŵᵀ − X·Wᵀ‖/‖X·Wᵀ‖ for the result and
    /// for round-to-nearest of W.
    /// </summary>
    public static QuantizedWeight Run(WeightMatrix weight, QuantScheme scheme, LayerCrossStats cross, GptqOptions options, out GptqLayerStats stats)
    {
        RtnReference.CheckScheme(weight, scheme);
        Check(weight, cross);
        var sw = Stopwatch.StartNew();
        var (target, damp) = Target(weight, cross, options.PercDamp, Math.Max(1, options.Threads));
        var q = GptqRounder.Run(weight with { Data = target }, scheme, cross.Quantized, options with { NeverWorseThanRtn = false, Progress = null }, out var inner);
        var rtn = RtnReference.Instance.Quantize(weight, scheme);
        var deqG = q.Dequantize();
        var deqR = rtn.Dequantize();
        int rows = weight.Rows, K = weight.Columns, per = rows / cross.Groups, kept = 0;
        var eG = new double[rows];
        var eR = new double[rows];
        double norm = 0;
        for (int r = 0; r < rows; r++)
        {
            int g = r / per;
            eG[r] = RowError(weight.Data, deqG, r, K, cross, g);
            eR[r] = RowError(weight.Data, deqR, r, K, cross, g);
            norm += Linalg.Quadratic(Row(weight.Data, r, K), cross.Float.XtX(g));
        }
        var values = q.Values;
        var scales = q.Scales;
        var zps = q.ZeroPoints;
        if (options.NeverWorseThanRtn)
        {
            if (scheme.Granularity == Granularity.PerTensor)
            {
                if (eR.Sum() < eG.Sum())
                {
                    (values, scales, zps, kept) = (rtn.Values, rtn.Scales, rtn.ZeroPoints, rows);
                    Array.Copy(eR, eG, rows);
                }
            }
            else
                for (int r = 0; r < rows; r++)
                {
                    if (!(eR[r] < eG[r])) continue;
                    kept++;
                    eG[r] = eR[r];
                    Array.Copy(rtn.Values, (long)r * K, values, (long)r * K, K);
                    int first = RtnReference.GroupOf(r, 0, K, scheme), last = RtnReference.GroupOf(r, K - 1, K, scheme);
                    Array.Copy(rtn.Scales, first, scales, first, last - first + 1);
                    Array.Copy(rtn.ZeroPoints, first, zps, first, last - first + 1);
                }
        }
        double denom = Math.Sqrt(Math.Max(norm, 1e-300));
        stats = new GptqLayerStats(weight.Name, rows, K, kept, Math.Max(damp, inner.PercDamp), Math.Sqrt(Math.Max(eG.Sum(), 0)) / denom,
            Math.Sqrt(Math.Max(eR.Sum(), 0)) / denom, sw.Elapsed.TotalSeconds);
        return new QuantizedWeight(values, scales, zps, [rows, K], scheme);
    }

    /// <summary>
    /// Bias correction (Nagel et al. 2019): per output row, E[W·x − Ŵ·x̃] over the calibration rows — the mean shift
    /// the quantized layer (on its quantized-prefix inputs) adds to the float layer's output; adding it to the bias
    /// removes it.
    /// </summary>
    public static float[] BiasCorrection(WeightMatrix weight, QuantizedWeight quantized, LayerCrossStats cross) =>
        BiasCorrection(weight, quantized, cross.Float, cross.Quantized);

    /// <summary>The same with separate statistics of X (<paramref name="floatInputs"/>) and X̃ (<paramref name="quantizedInputs"/>; the same object for X̃ = X).</summary>
    public static float[] BiasCorrection(WeightMatrix weight, QuantizedWeight quantized, LayerHessian floatInputs, LayerHessian quantizedInputs)
    {
        int rows = weight.Rows, K = weight.Columns;
        if (floatInputs.Columns != K || quantizedInputs.Columns != K || floatInputs.Groups != quantizedInputs.Groups || rows % floatInputs.Groups != 0)
            throw new ArgumentException($"weight '{weight.Name}' is {rows}x{K} but its statistics have {floatInputs.Columns} columns in {floatInputs.Groups} group(s)");
        var deq = quantized.Dequantize();
        int per = rows / floatInputs.Groups;
        var delta = new float[rows];
        for (int r = 0; r < rows; r++)
        {
            int g = r / per;
            long n = floatInputs.RowsOf(g), nq = quantizedInputs.RowsOf(g);
            if (n == 0 || nq == 0) continue;
            var mx = floatInputs.RowSum(g);
            var mq = quantizedInputs.RowSum(g);
            double s = 0;
            for (int c = 0; c < K; c++) s += weight.Data[(long)r * K + c] * mx[c] / n - deq[(long)r * K + c] * mq[c] / nq;
            delta[r] = (float)s;
        }
        return delta;
    }

    /// <summary>‖X̃·ŵᵀ − X·wᵀ‖² for row <paramref name="r"/>: ŵ·H·ŵᵀ − 2·ŵ·(X̃ᵀX)·wᵀ + w·XᵀX·wᵀ.</summary>
    private static double RowError(float[] w, float[] deq, int r, int K, LayerCrossStats s, int g)
    {
        var wr = Row(w, r, K);
        var qr = Row(deq, r, K);
        var cross = s.Cross(g);
        double mixed = 0;
        for (int i = 0; i < K; i++)
            if (qr[i] != 0) mixed += qr[i] * Linalg.Dot(cross.Slice(i * K, K), wr);
        return Linalg.Quadratic(qr, s.Quantized.XtX(g)) - 2 * mixed + Linalg.Quadratic(wr, s.Float.XtX(g));
    }

    private static double[] Row(float[] w, int r, int K)
    {
        var d = new double[K];
        for (int c = 0; c < K; c++) d[c] = w[(long)r * K + c];
        return d;
    }

    private static void Check(WeightMatrix weight, LayerCrossStats stats)
    {
        if (stats.Columns != weight.Columns || weight.Rows % stats.Groups != 0)
            throw new ArgumentException($"weight '{weight.Name}' is {weight.Rows}x{weight.Columns} but its statistics have {stats.Columns} columns in {stats.Groups} group(s)");
    }
}
