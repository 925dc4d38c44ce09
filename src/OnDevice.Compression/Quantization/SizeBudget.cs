using System.Globalization;
using OnDevice.Compression.Palettization;
using OnDevice.Core;
using OnDevice.Formats.Onnx;

namespace OnDevice.Compression.Quantization;

/// <summary>One option for one layer in a size budget: its plan, stored bytes and weight error.</summary>
/// <param name="Plan">The precision.</param>
/// <param name="Bytes">Bytes stored for the weight under this plan.</param>
/// <param name="Error">Relative squared weight error ‖W − Ŵ‖² / ‖W‖².</param>
public sealed record BudgetOption(LayerPlan Plan, long Bytes, double Error);

/// <summary>The per-layer choice that meets a size budget.</summary>
/// <param name="Plans">Layer → plan.</param>
/// <param name="EstimatedBytes">Estimated model file size.</param>
/// <param name="TotalError">Sum over layers of the relative squared weight error.</param>
public sealed record BudgetPlan(IReadOnlyDictionary<string, LayerPlan> Plans, long EstimatedBytes, double TotalError);

/// <summary>
/// Chooses a precision per layer (fp32, fp16, int8 per channel, int4 block 32, 4-bit palette) so the model fits
/// a byte budget with the least total error. Greedy on marginal cost: starting from fp32 everywhere, repeatedly
/// take the step down (to the layer's next smaller option) that adds the least relative squared weight error per
/// byte saved, until the estimate fits. Fails with the smallest reachable size when even the smallest mix is over.
/// </summary>
public static class SizeBudget
{
    /// <summary>Bytes of graph structure each compressed layer adds (decoder nodes, names) in the estimate.</summary>
    public const long PerLayerOverheadBytes = 160;

    /// <summary>Parses "4000000", "4MB", "3.5MiB", "512KB" (KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024).</summary>
    public static long ParseSize(string text)
    {
        var t = text.Trim();
        var units = new (string Suffix, double Mul)[] { ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3), ("G", 1e9), ("M", 1e6), ("K", 1e3), ("B", 1) };
        double mul = 1;
        foreach (var (suffix, m) in units)
            if (t.EndsWith(suffix, StringComparison.OrdinalIgnoreCase)) { t = t[..^suffix.Length].Trim(); mul = m; break; }
        if (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || v <= 0 || double.IsInfinity(v * mul))
            throw new CompressionException($"size '{text}' is not a positive number of bytes (e.g. 4000000, 4MB, 3.5MiB)");
        return (long)Math.Floor(v * mul);
    }

    /// <summary>Options per layer, smallest error first, each strictly smaller than the one before.</summary>
    public static List<BudgetOption> OptionsFor(WeightSite site)
    {
        var w = site.Tensor.ToFloatArray();
        long n = site.Tensor.ElementCount;
        var list = new List<BudgetOption> { new(new FloatPlan(), site.Tensor.ByteLength, 0) };
        list.Add(new(new Fp16Plan(), n * 2, RelErr(w, w.Select(x => (float)(Half)x).ToArray())));
        var matrix = new WeightMatrix(site.WeightName, site.Matrix(), site.Rows, site.Columns);
        var s8 = new QuantScheme(8, true, true, Granularity.PerChannel);
        var q8 = RtnRounder.Instance.Quantize(matrix, s8);
        list.Add(new(new IntPlan(s8), n + site.Rows * 4L, RelErr(matrix.Data, q8.Dequantize())));
        var s4 = new QuantScheme(4, true, true, Granularity.Blocked, 1, 32);
        var q4 = RtnRounder.Instance.Quantize(matrix, s4);
        list.Add(new(new IntPlan(s4), (n + 1) / 2 + q4.Scales.Length * 4L, RelErr(matrix.Data, q4.Dequantize())));
        var pal = Palettizer.Cluster(matrix.Data, site.Rows, site.Columns, 4, 0);
        list.Add(new(new PalettePlan(4), (n + 1) / 2 + 16 * 4, RelErr(matrix.Data, pal.Reconstruct())));
        // Keep only options that save bytes over the previous one; among equal sizes the lower error.
        var result = new List<BudgetOption>();
        foreach (var o in list.OrderByDescending(o => o.Bytes).ThenBy(o => o.Error))
            if (result.Count == 0 || o.Bytes < result[^1].Bytes)
            {
                // A smaller option with lower error than a bigger one makes the bigger one pointless.
                while (result.Count > 1 && result[^1].Error >= o.Error) result.RemoveAt(result.Count - 1);
                result.Add(o);
            }
        return result;
    }

    /// <summary>Chooses plans for <paramref name="model"/> to fit <paramref name="maxBytes"/>.</summary>
    public static BudgetPlan Choose(Model model, long maxBytes, IReadOnlyList<string>? exclude = null)
    {
        var copy = Quantizer.CopyModel(model);
        var (sites, _) = WeightSites.Find(copy.Graph, exclude);
        long baseBytes = OnnxWriter.ToBytes(copy).Length;
        var options = sites.Select(OptionsFor).ToList();
        var level = new int[sites.Count];
        long estimate = baseBytes;
        while (estimate > maxBytes)
        {
            int best = -1;
            double bestCost = double.MaxValue;
            for (int i = 0; i < sites.Count; i++)
            {
                if (level[i] + 1 >= options[i].Count) continue;
                var cur = options[i][level[i]];
                var next = options[i][level[i] + 1];
                long saved = cur.Bytes - next.Bytes - (level[i] == 0 ? PerLayerOverheadBytes : 0);
                if (saved <= 0) continue;
                double cost = (next.Error - cur.Error) / saved;
                if (cost < bestCost) { bestCost = cost; best = i; }
            }
            if (best < 0)
            {
                throw new CompressionException(
                    $"cannot meet --max-size {maxBytes:N0} bytes: the smallest mix this quantizer can make (every layer at its smallest option: " +
                    $"4-bit palette or int4) is about {estimate:N0} bytes; {(sites.Count == 0 ? "the model has no quantizable layers" : "excluded and unsupported layers stay float")}");
            }
            var c = options[best][level[best]];
            var nx = options[best][level[best] + 1];
            estimate -= c.Bytes - nx.Bytes - (level[best] == 0 ? PerLayerOverheadBytes : 0);
            level[best]++;
        }
        var plans = new Dictionary<string, LayerPlan>(StringComparer.Ordinal);
        double total = 0;
        for (int i = 0; i < sites.Count; i++)
        {
            plans[sites[i].Layer] = options[i][level[i]].Plan;
            total += options[i][level[i]].Error;
        }
        return new BudgetPlan(plans, estimate, total);
    }

    private static double RelErr(float[] w, float[] approx)
    {
        double s = 0, e = 0;
        for (int i = 0; i < w.Length; i++) { s += (double)w[i] * w[i]; double d = w[i] - approx[i]; e += d * d; }
        return s > 0 ? e / s : e;
    }
}
