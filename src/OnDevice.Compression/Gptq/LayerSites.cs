using OnDevice.Core;

namespace OnDevice.Compression.Gptq;

/// <summary>The sliding-window view of a Conv: how its input becomes im2col rows of the weight's reduction.</summary>
/// <param name="Kernel">kernel_shape (1 or 2 spatial dims).</param>
/// <param name="Strides">strides.</param>
/// <param name="Dilations">dilations.</param>
/// <param name="Pads">begin pads then end pads (NOTSET), or null for auto_pad.</param>
/// <param name="AutoPad">NOTSET, SAME_UPPER, SAME_LOWER or VALID.</param>
/// <param name="Group">group.</param>
internal sealed record ConvGeometry(int[] Kernel, int[] Strides, int[] Dilations, int[]? Pads, string AutoPad, int Group)
{
    /// <summary>Output size and begin pad of spatial axis <paramref name="axis"/> for input size <paramref name="n"/>.</summary>
    public (int Out, int PadBegin) Resolve(int axis, int n)
    {
        int k = Kernel[axis], s = Strides[axis], d = Dilations[axis];
        int eff = (k - 1) * d + 1;
        switch (AutoPad)
        {
            case "SAME_UPPER":
            case "SAME_LOWER":
            {
                int outSize = (n + s - 1) / s;
                int total = Math.Max(0, (outSize - 1) * s + eff - n);
                return (outSize, AutoPad == "SAME_UPPER" ? total / 2 : total - total / 2);
            }
            case "VALID":
                return (Math.Max(0, (n - eff) / s + 1), 0);
            default:
            {
                int r = Kernel.Length;
                int pb = Pads?[axis] ?? 0, pe = Pads?[axis + r] ?? 0;
                return (Math.Max(0, (n + pb + pe - eff) / s + 1), pb);
            }
        }
    }
}

/// <summary>A layer GPTQ can handle: a constant float weight seen as [Rows, Columns] and the activation feeding it.</summary>
/// <param name="Layer">Node name (or first output).</param>
/// <param name="OpType">Conv, Gemm or MatMul.</param>
/// <param name="Weight">The weight's value name.</param>
/// <param name="Input">The activation multiplied by the weight.</param>
/// <param name="Output">The node's output.</param>
/// <param name="Rows">Output channels.</param>
/// <param name="Columns">Reduction length (per group for Conv).</param>
/// <param name="Groups">Conv groups (1 otherwise); rows of group g are [g·Rows/Groups, (g+1)·Rows/Groups).</param>
/// <param name="Conv">The window of a Conv, null otherwise.</param>
/// <param name="TransA">Gemm's transA.</param>
/// <param name="Matrix">The weight as a row-major [Rows, Columns] matrix.</param>
/// <param name="Bias">The bias added per output channel (Conv input 2, Gemm C when it is a vector of Rows), if any.</param>
internal sealed record LayerSite(string Layer, string OpType, string Weight, string Input, string Output, int Rows, int Columns, int Groups,
    ConvGeometry? Conv, bool TransA, float[] Matrix, float[]? Bias);

/// <summary>A layer GPTQ leaves to round-to-nearest, and why.</summary>
/// <param name="Layer">Node name (or first output).</param>
/// <param name="OpType">Its op type.</param>
/// <param name="Weight">The weight's value name.</param>
/// <param name="Reason">Why no Hessian is collected for it.</param>
public sealed record GptqSkippedLayer(string Layer, string OpType, string Weight, string Reason);

/// <summary>Finds the Conv/Gemm/MatMul layers of the main graph whose weight GPTQ can quantize.</summary>
internal static class LayerSites
{
    /// <summary>Sites of <paramref name="graph"/> (Constant nodes must already be lifted), plus the weighted layers skipped.</summary>
    public static (List<LayerSite> Sites, List<GptqSkippedLayer> Skipped) Find(Graph graph)
    {
        var sites = new List<LayerSite>();
        var skipped = new List<GptqSkippedLayer>();
        var taken = new HashSet<string>(StringComparer.Ordinal);
        foreach (var n in graph.Nodes)
        {
            if (!n.IsDefaultDomain || n.OpType is not ("Conv" or "ConvTranspose" or "Gemm" or "MatMul") || n.Inputs.Count < 2) continue;
            string label = n.Name.Length > 0 ? n.Name : n.Outputs.FirstOrDefault() ?? n.OpType;
            string w = n.Inputs[1];
            if (!graph.Initializers.TryGetValue(w, out var t)) continue; // not a constant weight: nothing to quantize
            string? reason = null;
            if (t.DType != DType.Float32) reason = $"the weight is {t.DType.Name()}, not float32";
            else if (n.OpType == "ConvTranspose") reason = "ConvTranspose has no im2col view of its input; rounded to nearest";
            else if (graph.Initializers.ContainsKey(n.Inputs[0])) reason = "the input is a constant, not an activation";
            else if (!taken.Add(w)) reason = "the weight is shared with another layer (its Hessian would mix two inputs)";
            if (reason is not null)
            {
                skipped.Add(new(label, n.OpType, w, reason));
                continue;
            }
            var data = t.ToFloatArray();
            float[]? bias = null;
            switch (n.OpType)
            {
                case "Conv":
                {
                    int rank = t.Dims.Length;
                    if (rank is not (3 or 4)) { skipped.Add(new(label, n.OpType, w, $"Conv with {rank - 2} spatial dimensions (GPTQ handles 1 and 2)")); continue; }
                    int spatial = rank - 2;
                    int group = (int)n.GetInt("group", 1);
                    var kernel = t.Dims.Skip(2).Select(d => (int)d).ToArray();
                    var strides = n.GetInts("strides")?.Select(v => (int)v).ToArray() ?? Enumerable.Repeat(1, spatial).ToArray();
                    var dil = n.GetInts("dilations")?.Select(v => (int)v).ToArray() ?? Enumerable.Repeat(1, spatial).ToArray();
                    var pads = n.GetInts("pads")?.Select(v => (int)v).ToArray();
                    string autoPad = n.GetString("auto_pad", "NOTSET") is { Length: > 0 } s ? s : "NOTSET";
                    if (strides.Length != spatial || dil.Length != spatial || pads is { } p && p.Length != 2 * spatial
                        || group < 1 || t.Dims[0] % group != 0 || autoPad is not ("NOTSET" or "SAME_UPPER" or "SAME_LOWER" or "VALID"))
                    {
                        skipped.Add(new(label, n.OpType, w, "Conv attributes GPTQ does not understand"));
                        continue;
                    }
                    int rows = (int)t.Dims[0];
                    if (n.Inputs.Count > 2 && n.Inputs[2].Length > 0 && graph.Initializers.TryGetValue(n.Inputs[2], out var b) && b.DType == DType.Float32 && b.ElementCount == rows)
                        bias = b.ToFloatArray();
                    sites.Add(new(label, n.OpType, w, n.Inputs[0], n.Outputs[0], rows, (int)(t.ElementCount / rows), group,
                        new ConvGeometry(kernel, strides, dil, pads, autoPad, group), false, data, bias));
                    break;
                }
                case "Gemm":
                {
                    if (t.Dims.Length != 2) { skipped.Add(new(label, n.OpType, w, $"Gemm B of rank {t.Dims.Length}")); continue; }
                    bool transB = n.GetInt("transB", 0) != 0;
                    int rows = (int)(transB ? t.Dims[0] : t.Dims[1]), cols = (int)(transB ? t.Dims[1] : t.Dims[0]);
                    float beta = n.GetFloat("beta", 1f);
                    if (n.Inputs.Count > 2 && n.Inputs[2].Length > 0 && graph.Initializers.TryGetValue(n.Inputs[2], out var b) && b.DType == DType.Float32
                        && b.ElementCount == rows && (b.Dims.Length == 1 || b.Dims is [1, _]))
                        bias = b.ToFloatArray().Select(v => v * beta).ToArray();
                    // alpha scales the product after the weight: the layer error is still relative, but keep the view exact.
                    if (n.GetFloat("alpha", 1f) != 1f) { skipped.Add(new(label, n.OpType, w, "Gemm with alpha ≠ 1")); continue; }
                    var m = transB ? data : Transpose(data, cols, rows);
                    sites.Add(new(label, n.OpType, w, n.Inputs[0], n.Outputs[0], rows, cols, 1, null, n.GetInt("transA", 0) != 0, m, bias));
                    break;
                }
                default: // MatMul
                {
                    if (t.Dims.Length != 2) { skipped.Add(new(label, n.OpType, w, $"MatMul B of rank {t.Dims.Length} (batched weights are not quantized)")); continue; }
                    int cols = (int)t.Dims[0], rows = (int)t.Dims[1];
                    sites.Add(new(label, n.OpType, w, n.Inputs[0], n.Outputs[0], rows, cols, 1, null, false, Transpose(data, cols, rows), null));
                    break;
                }
            }
        }
        return (sites, skipped);
    }

    /// <summary>[r, c] row-major → [c, r] row-major.</summary>
    public static float[] Transpose(float[] a, int r, int c)
    {
        var t = new float[a.Length];
        for (int i = 0; i < r; i++)
            for (int j = 0; j < c; j++) t[j * r + i] = a[i * c + j];
        return t;
    }
}
