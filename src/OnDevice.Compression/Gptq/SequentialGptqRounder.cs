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
/// go to the fallback rounder (their float weights stay in the working model). With
/// <see cref="GptqOptions.OutputAware"/> each pass also runs the float model on the same sample and the layer is
/// rounded for ‖X̃·Ŵᵀ − X·Wᵀ‖² (<see cref="OutputAwareGptq"/>); with <see cref="GptqOptions.BiasCorrection"/> the
/// layer's bias (in the working model and, through <see cref="IBiasCorrectingRounder"/>, in the output) absorbs
/// E[W·x − Ŵ·x̃].
/// </summary>
public sealed class SequentialGptqRounder : IBiasCorrectingRounder
{
    private readonly Model _work;
    private readonly Model _float;
    private readonly List<LayerSite> _order;
    private readonly HashSet<string> _quantized = new(StringComparer.Ordinal);
    private readonly Dictionary<string, LayerHessian> _pending = new(StringComparer.Ordinal);
    private readonly Dictionary<string, LayerCrossStats> _pendingCross = new(StringComparer.Ordinal);
    private readonly Dictionary<string, float[]> _bias = new(StringComparer.Ordinal);
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
        if (Options.LayersPerPass < 1) throw new ArgumentOutOfRangeException(nameof(options), $"layers per pass must be ≥ 1, got {Options.LayersPerPass}");
        _hessian = hessian ?? new HessianOptions();
        _set = set;
        _fallback = fallback;
        _work = Quantizer.CopyModel(model);
        ConstantLifting.Lift(_work.Graph);
        _float = Quantizer.CopyModel(_work);
        var (sites, skipped) = LayerSites.Find(_work.Graph);
        _order = sites;
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
        if (!_pending.ContainsKey(weight.Name) && !_pendingCross.ContainsKey(weight.Name)) CollectStage(site);
        float[]? bias = null;
        if (Options.OutputAware && _pendingCross.Remove(weight.Name, out var cross))
        {
            q = OutputAwareGptq.Run(weight, scheme, cross, Options, out var stats);
            _stats[weight.Name] = stats with { Seconds = sw.Elapsed.TotalSeconds };
            if (Options.BiasCorrection) bias = OutputAwareGptq.BiasCorrection(weight, q, cross);
        }
        else if (!Options.OutputAware && _pending.Remove(weight.Name, out var h))
        {
            q = GptqRounder.Run(weight, scheme, h, Options, out var stats);
            _stats[weight.Name] = stats with { Seconds = sw.Elapsed.TotalSeconds };
            if (Options.BiasCorrection) bias = OutputAwareGptq.BiasCorrection(weight, q, h, h);
        }
        else
        {
            q = (_fallback ?? throw new ArgumentException($"no GPTQ statistics for weight '{weight.Name}': its input was never produced as float32", nameof(weight)))
                .Quantize(weight, scheme);
        }
        _quantized.Add(weight.Name);
        Replace(weight.Name, q);
        if (bias is not null)
        {
            _bias[weight.Name] = bias;
            var node = _work.Graph.Nodes.FirstOrDefault(n => n.Inputs.Count > 1 && n.Inputs[1] == weight.Name);
            if (node is not null) BiasSlots.Add(_work.Graph, node, bias);
        }
        Options.Progress?.Report(new StageProgress("gptq", ++_done, _sites.Count, weight.Name));
        return q;
    }

    /// <inheritdoc/>
    public float[]? BiasCorrection(string weight) => _bias.TryGetValue(weight, out var d) ? d : null;

    /// <summary>
    /// Collects the statistics of <paramref name="first"/> and of the layers that follow it in graph order, up to
    /// <see cref="GptqOptions.LayersPerPass"/> in all, as long as none of them reads a value computed from an earlier
    /// member's output (parallel branches such as attention's query/key/value projections): their inputs do not
    /// change when the earlier members are quantized, so one pass gives exactly the statistics one pass per layer would.
    /// One pass over the set through the working model (and the float model for the output-aware objective).
    /// </summary>
    private void CollectStage(LayerSite first)
    {
        var stage = new List<LayerSite> { first };
        int at = _order.FindIndex(x => x.Weight == first.Weight);
        var downstream = new HashSet<string>(StringComparer.Ordinal);
        for (int i = at + 1; i < _order.Count && stage.Count < Options.LayersPerPass; i++)
        {
            var next = _order[i];
            if (_quantized.Contains(next.Weight) || _pending.ContainsKey(next.Weight) || _pendingCross.ContainsKey(next.Weight)) break;
            Downstream(stage[^1].Output, downstream);
            if (downstream.Contains(next.Input)) break;
            stage.Add(next);
        }
        var outputs = stage.Select(x => x.Output).ToList();
        if (Options.OutputAware)
        {
            foreach (var (name, st) in PairedCollector.Collect(Prefix(_float, outputs), Prefix(_work, outputs), _set, stage, _hessian))
                _pendingCross[name] = st;
            return;
        }
        var hs = HessianCollector.Collect(Prefix(_work, outputs), _set, _hessian with { Weights = stage.Select(x => x.Weight).ToList() });
        foreach (var (name, h) in hs.Layers) _pending[name] = h;
    }

    /// <summary>Adds to <paramref name="seen"/> every value of the working graph computed from <paramref name="value"/> (itself included).</summary>
    private void Downstream(string value, HashSet<string> seen)
    {
        if (!seen.Add(value)) return;
        foreach (var n in _work.Graph.Nodes)
            if (n.Inputs.Any(seen.Contains))
                foreach (var o in n.Outputs)
                    if (o.Length > 0) seen.Add(o);
    }

    /// <summary><paramref name="model"/> cut to the nodes that <paramref name="outputs"/> need: those are its outputs.</summary>
    private static Model Prefix(Model model, IReadOnlyList<string> outputs)
    {
        var g = model.Graph;
        if (g.Nodes.Any(n => n.Subgraphs.Any())) return model; // implicit subgraph inputs: run everything
        var needed = new HashSet<string>(outputs, StringComparer.Ordinal);
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
        foreach (var o in outputs) cut.Outputs.Add(ValueInfo.Tensor(o, DType.Float32, null));
        var m = new Model(cut) { IrVersion = model.IrVersion };
        m.OpsetImports.AddRange(model.OpsetImports);
        m.Functions.AddRange(model.Functions);
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
