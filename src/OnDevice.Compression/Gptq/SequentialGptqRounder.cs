using System.Diagnostics;
using OnDevice.Compression.Calibration;
using OnDevice.Compression.Quantization;
using OnDevice.Core;

namespace OnDevice.Compression.Gptq;

/// <summary>
/// True-sequential GPTQ: the Hessian of each layer comes from the activations of the model in which every layer
/// quantized before it already holds its quantized (reconstructed) weight, so each layer also corrects the error its
/// quantized predecessors pushed into its input. Layers must be asked for in graph order (the quantizer does); each
/// costs one pass over the calibration set through the part of the graph that feeds it. Weights GPTQ cannot handle
/// go to the fallback rounder (their float weights stay in the working model).
/// </summary>
public sealed class SequentialGptqRounder : IWeightRounder
{
    private readonly Model _work;
    private readonly CalibrationSet _set;
    private readonly HessianOptions _hessian;
    private readonly IWeightRounder? _fallback;
    private readonly Dictionary<string, LayerSite> _sites;
    private readonly Dictionary<string, GptqLayerStats> _stats = new(StringComparer.Ordinal);
    private readonly List<GptqSkippedLayer> _skipped;
    private int _done;

    /// <summary>
    /// A rounder over <paramref name="model"/> (not modified: a working copy carries the quantized weights) and
    /// <paramref name="set"/>. Fails before any work when the set is empty.
    /// </summary>
    public SequentialGptqRounder(Model model, CalibrationSet set, GptqOptions? options = null, HessianOptions? hessian = null, IWeightRounder? fallback = null)
    {
        if (set.Count == 0) throw new CalibrationSetException("the calibration set is empty: give at least one sample");
        Options = options ?? new GptqOptions();
        if (!(Options.PercDamp >= 0)) throw new ArgumentOutOfRangeException(nameof(options), $"percdamp must be ≥ 0, got {Options.PercDamp}");
        _hessian = hessian ?? new HessianOptions();
        _set = set;
        _fallback = fallback;
        _work = Quantizer.CopyModel(model);
        ConstantLifting.Lift(_work.Graph);
        var (sites, skipped) = LayerSites.Find(_work.Graph);
        _sites = sites.ToDictionary(s => s.Weight, StringComparer.Ordinal);
        _skipped = skipped;
    }

    /// <inheritdoc/>
    public string Name => "gptq";

    /// <summary>The options in force.</summary>
    public GptqOptions Options { get; }

    /// <summary>What happened to each weight quantized so far, by weight name.</summary>
    public IReadOnlyDictionary<string, GptqLayerStats> Stats => _stats;

    /// <summary>Weighted layers GPTQ leaves to the fallback rounder, and why.</summary>
    public IReadOnlyList<GptqSkippedLayer> Skipped => _skipped;

    /// <inheritdoc/>
    public QuantizedWeight Quantize(WeightMatrix weight, QuantScheme scheme)
    {
        QuantizedWeight q;
        if (!_sites.TryGetValue(weight.Name, out var site))
        {
            q = (_fallback ?? throw new ArgumentException($"weight '{weight.Name}' is not a layer GPTQ can handle and there is no fallback rounder", nameof(weight)))
                .Quantize(weight, scheme);
            return q; // not a Conv/Gemm/MatMul view GPTQ knows (e.g. ConvTranspose): its float weight stays in the working model
        }
        var sw = Stopwatch.StartNew();
        var hs = HessianCollector.Collect(Prefix(site), _set, _hessian with { Weights = [weight.Name] });
        if (!hs.Layers.TryGetValue(weight.Name, out var h))
        {
            q = (_fallback ?? throw new ArgumentException($"no GPTQ statistics for weight '{weight.Name}': its input was never produced as float32", nameof(weight)))
                .Quantize(weight, scheme);
        }
        else
        {
            q = GptqRounder.Run(weight, scheme, h, Options, out var stats);
            _stats[weight.Name] = stats with { Seconds = sw.Elapsed.TotalSeconds };
        }
        Replace(weight.Name, q);
        Options.Progress?.Report(new StageProgress("gptq", ++_done, _sites.Count, weight.Name));
        return q;
    }

    /// <summary>The working model cut to the nodes <paramref name="site"/>'s layer needs (itself included): its output is the layer's output.</summary>
    private Model Prefix(LayerSite site)
    {
        var g = _work.Graph;
        if (g.Nodes.Any(n => n.Subgraphs.Any())) return _work; // implicit subgraph inputs: run everything
        var needed = new HashSet<string>(StringComparer.Ordinal) { site.Output };
        var keep = new List<Node>();
        for (int i = g.Nodes.Count - 1; i >= 0; i--)
        {
            var n = g.Nodes[i];
            if (!n.Outputs.Any(needed.Contains)) continue;
            keep.Add(n);
            foreach (var x in n.Inputs)
                if (x.Length > 0) needed.Add(x);
        }
        keep.Reverse();
        var cut = new Graph { Name = g.Name };
        cut.Inputs.AddRange(g.Inputs);
        foreach (var (name, t) in g.Initializers)
            if (needed.Contains(name)) cut.Initializers.Add(name, t);
        cut.Nodes.AddRange(keep);
        cut.Outputs.Add(ValueInfo.Tensor(site.Output, DType.Float32, null));
        var m = new Model(cut) { IrVersion = _work.IrVersion };
        m.OpsetImports.AddRange(_work.OpsetImports);
        m.Functions.AddRange(_work.Functions);
        return m;
    }

    /// <summary>Puts the reconstruction of <paramref name="q"/> in place of weight <paramref name="name"/> in the working model.</summary>
    private void Replace(string name, QuantizedWeight q)
    {
        var g = _work.Graph;
        if (!g.Initializers.TryGetValue(name, out var t) || t.DType != DType.Float32) return;
        var m = q.Dequantize();
        if (m.Length != t.ElementCount) return;
        var node = g.Nodes.FirstOrDefault(n => n.Inputs.Count > 1 && n.Inputs[1] == name);
        bool transposed = node is not null && t.Dims.Length == 2
            && (node.OpType == "MatMul" || node.OpType == "Gemm" && node.GetInt("transB", 0) == 0);
        // The matrix view is [Rows, Columns]: MatMul and Gemm without transB store the weight as [Columns, Rows].
        var data = transposed ? LayerSites.Transpose(m, (int)t.Dims[1], (int)t.Dims[0]) : m;
        g.Initializers[name] = Tensor.FromArray<float>(data, t.Dims, name);
    }
}
