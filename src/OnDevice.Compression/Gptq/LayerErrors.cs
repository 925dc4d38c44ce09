using System.Diagnostics;
using OnDevice.Compression.Calibration;
using OnDevice.Compression.Quantization;
using OnDevice.Core;

namespace OnDevice.Compression.Gptq;

/// <summary>One layer's output error on the calibration inputs under round-to-nearest and under GPTQ.</summary>
/// <param name="Layer">Node name.</param>
/// <param name="OpType">Conv, Gemm or MatMul.</param>
/// <param name="Weight">The weight's name.</param>
/// <param name="Rows">Output channels.</param>
/// <param name="Columns">Reduction length per group.</param>
/// <param name="Groups">Conv groups.</param>
/// <param name="RtnError">‖Y_rtn − Y‖/‖Y‖ with Y the float layer output (bias included) over every calibration input row.</param>
/// <param name="GptqError">The same for GPTQ.</param>
/// <param name="RowsKeptRtn">Output rows where GPTQ kept the round-to-nearest result (see <see cref="GptqOptions.NeverWorseThanRtn"/>).</param>
/// <param name="Seconds">GPTQ time for the layer.</param>
public sealed record LayerErrorRow(string Layer, string OpType, string Weight, int Rows, int Columns, int Groups, double RtnError, double GptqError, int RowsKeptRtn, double Seconds)
{
    /// <summary>GPTQ's error relative to RTN's (below 1 is better).</summary>
    public double Ratio => RtnError > 0 ? GptqError / RtnError : GptqError > 0 ? double.PositiveInfinity : 1;
}

/// <summary>The per-layer RTN-versus-GPTQ comparison of a model.</summary>
/// <param name="Scheme">The grid every layer was quantized to.</param>
/// <param name="Layers">One row per layer with statistics, in graph order.</param>
/// <param name="Skipped">Weighted layers GPTQ did not handle, and why.</param>
/// <param name="Samples">Calibration samples.</param>
/// <param name="HessianSeconds">Time to collect the statistics.</param>
/// <param name="GptqSeconds">Time GPTQ took over all layers.</param>
/// <param name="HessianBytes">Memory the statistics held.</param>
public sealed record LayerErrorReport(QuantScheme Scheme, IReadOnlyList<LayerErrorRow> Layers, IReadOnlyList<GptqSkippedLayer> Skipped, int Samples,
    double HessianSeconds, double GptqSeconds, long HessianBytes)
{
    /// <summary>Layers where GPTQ's error exceeds RTN's (by more than rounding noise, 1e-9 relative).</summary>
    public IEnumerable<LayerErrorRow> GptqWorse => Layers.Where(l => l.GptqError > l.RtnError * (1 + 1e-9) + 1e-15);
}

/// <summary>
/// Per-layer output error of quantized weights on calibration data, computed exactly from the layer statistics
/// (‖X·Δᵀ‖² = Σ_rows Δ·XᵀX·Δᵀ, ‖X·Wᵀ + b‖² from XᵀX, Σx and n) — no second pass over the model.
/// </summary>
public static class LayerErrors
{
    /// <summary>
    /// ‖Y_q − Y‖/‖Y‖ over the calibration rows behind <paramref name="stats"/>, where Y = X·Wᵀ (+ <paramref name="bias"/>)
    /// and Y_q uses <paramref name="quantized"/> instead of <paramref name="weight"/>.
    /// </summary>
    public static double RelativeOutputError(LayerHessian stats, WeightMatrix weight, QuantizedWeight quantized, float[]? bias = null)
    {
        int rows = weight.Rows, cols = weight.Columns;
        if (stats.Columns != cols || rows % stats.Groups != 0)
            throw new ArgumentException($"weight '{weight.Name}' is {rows}x{cols} but its statistics have {stats.Columns} columns in {stats.Groups} group(s)");
        if (quantized.Values.Length != weight.Data.Length) throw new ArgumentException($"the quantized weight has {quantized.Values.Length} values, the weight {weight.Data.Length}");
        if (bias is not null && bias.Length != rows) throw new ArgumentException($"bias has {bias.Length} values for {rows} rows");
        var deq = quantized.Dequantize();
        int per = rows / stats.Groups;
        double err = 0, norm = 0;
        var d = new double[cols];
        var wr = new double[cols];
        for (int r = 0; r < rows; r++)
        {
            int g = r / per;
            var xtx = stats.XtX(g);
            for (int c = 0; c < cols; c++)
            {
                wr[c] = weight.Data[r * cols + c];
                d[c] = wr[c] - deq[r * cols + c];
            }
            err += Linalg.Quadratic(d, xtx);
            norm += Linalg.Quadratic(wr, xtx);
            if (bias is not null)
            {
                double b = bias[r];
                norm += 2 * b * Linalg.Dot(wr, stats.RowSum(g)) + stats.RowsOf(g) * b * b;
            }
        }
        return norm > 0 ? Math.Sqrt(Math.Max(err, 0) / norm) : err > 0 ? double.PositiveInfinity : 0;
    }

    /// <summary>
    /// Collects statistics of <paramref name="model"/> over <paramref name="set"/>, quantizes every GPTQ-able layer with
    /// round-to-nearest and with GPTQ under <paramref name="scheme"/>, and reports each layer's relative output error.
    /// <paramref name="rtn"/> is the baseline rounder (default: the reference round-to-nearest on the same grid).
    /// </summary>
    public static LayerErrorReport CompareRtnGptq(Model model, CalibrationSet set, QuantScheme scheme, GptqOptions? gptq = null,
        HessianOptions? hessian = null, IWeightRounder? rtn = null)
    {
        var hs = HessianCollector.Collect(model, set, hessian);
        return CompareRtnGptq(model, hs, scheme, gptq, rtn);
    }

    /// <summary>
    /// The comparison over statistics already collected. GPTQ uses <paramref name="hessians"/>; errors are measured on
    /// <paramref name="evaluateOn"/> when given (statistics of held-out inputs), else on <paramref name="hessians"/>.
    /// </summary>
    public static LayerErrorReport CompareRtnGptq(Model model, HessianSet hessians, QuantScheme scheme, GptqOptions? gptq = null, IWeightRounder? rtn = null,
        HessianSet? evaluateOn = null)
    {
        var graph = model.Graph.Clone();
        ConstantLifting.Lift(graph);
        var (sites, _) = LayerSites.Find(graph);
        var baseline = rtn ?? RtnReference.Instance;
        var options = gptq ?? new GptqOptions();
        var rounder = new GptqRounder(hessians.Layers, options with { Progress = null });
        var rows = new List<LayerErrorRow>();
        var sw = Stopwatch.StartNew();
        var todo = sites.Where(s => hessians.Layers.ContainsKey(s.Weight)).ToList();
        foreach (var s in todo)
        {
            if (evaluateOn is not null && !evaluateOn.Layers.ContainsKey(s.Weight)) continue;
            var h = (evaluateOn ?? hessians).Layers[s.Weight];
            var w = new WeightMatrix(s.Weight, s.Matrix, s.Rows, s.Columns);
            var qr = baseline.Quantize(w, scheme);
            var t0 = sw.Elapsed.TotalSeconds;
            var qg = rounder.Quantize(w, scheme);
            double seconds = sw.Elapsed.TotalSeconds - t0;
            rows.Add(new LayerErrorRow(s.Layer, s.OpType, s.Weight, s.Rows, s.Columns, s.Groups,
                RelativeOutputError(h, w, qr, s.Bias), RelativeOutputError(h, w, qg, s.Bias), rounder.Stats[s.Weight].RowsKeptRtn, seconds));
            options.Progress?.Report(new StageProgress("gptq", rows.Count, todo.Count, s.Layer));
        }
        return new LayerErrorReport(scheme, rows, hessians.Skipped, hessians.Samples, hessians.Seconds, rows.Sum(r => r.Seconds), hessians.Bytes);
    }
}
