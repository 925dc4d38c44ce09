using OnDevice.Core;
using OnDevice.Formats.Onnx;
using OnDevice.Runtime;
using OnDevice.Runtime.Kernels;

namespace OnDevice.Planning;

/// <summary>
/// Cost of an ONNX model for fixed input shapes: parameters and bytes by dtype (<see cref="ModelSummary"/>), MACs by
/// op (<see cref="MacCounter"/> over <see cref="ShapeInference"/>), the peak of simultaneously live activations
/// (a liveness estimate from the inferred shapes) and, when the runtime has a kernel for every node, the
/// runtime's planned peak activation memory (<see cref="InferenceSession.PlannedPeakBytes"/>).
/// </summary>
public sealed record OnnxCost
{
    /// <summary>Model path (or name).</summary>
    public required string Model { get; init; }

    /// <summary>Input shapes used (symbolic dimensions not given are 1).</summary>
    public required IReadOnlyDictionary<string, long[]> InputShapes { get; init; }

    /// <summary>Elements of floating-point constant tensors with more than one element.</summary>
    public required long Parameters { get; init; }

    /// <summary>Parameters by dtype name.</summary>
    public required IReadOnlyDictionary<string, long> ParametersByDType { get; init; }

    /// <summary>Bytes of all constant tensors.</summary>
    public required long WeightBytes { get; init; }

    /// <summary>Constant bytes by dtype name.</summary>
    public required IReadOnlyDictionary<string, long> WeightBytesByDType { get; init; }

    /// <summary>Total MACs, or null when some counted node has unknown shapes.</summary>
    public required long? Macs { get; init; }

    /// <summary>MACs by op type (nodes with known shapes).</summary>
    public required IReadOnlyDictionary<string, long> MacsByOp { get; init; }

    /// <summary>Counted nodes whose MACs are unknown.</summary>
    public required int MacsUnknownNodes { get; init; }

    /// <summary>Peak bytes of intermediate values alive at the same time (main graph, node order, no fragmentation), or null with <see cref="LivenessNote"/>.</summary>
    public long? LivenessPeakBytes { get; init; }

    /// <summary>Why <see cref="LivenessPeakBytes"/> is null.</summary>
    public string? LivenessNote { get; init; }

    /// <summary>The runtime's planned arena for these input shapes, or null with <see cref="PlannedPeakNote"/>.</summary>
    public long? PlannedPeakBytes { get; init; }

    /// <summary>Why <see cref="PlannedPeakBytes"/> is null (e.g. an operator the runtime has no kernel for).</summary>
    public string? PlannedPeakNote { get; init; }

    /// <summary>Floating-point constants of rank ≥ 2 (what weight quantization would rewrite): (dims) per tensor.</summary>
    public required IReadOnlyList<long[]> FloatMatrices { get; init; }

    /// <summary>Activation bytes to budget: the runtime's plan when there is one, else the liveness estimate.</summary>
    public long? ActivationBytes => PlannedPeakBytes ?? LivenessPeakBytes;

    /// <summary>Weight bytes if every floating-point matrix were stored in <paramref name="format"/> (rows = first dimension, blocks along the rest); other constants unchanged.</summary>
    public long WeightBytesAs(WeightFormat format)
    {
        long then = 0;
        foreach (var dims in FloatMatrices)
            then += format.MatrixBytes(dims[0], dims.Skip(1).Aggregate(1L, (a, b) => a * b), format.Precision);
        return WeightBytes - FloatMatrixBytesAsStored + then;
    }

    /// <summary>Bytes of <see cref="FloatMatrices"/> as stored.</summary>
    public required long FloatMatrixBytesAsStored { get; init; }

    /// <summary>Reads <paramref name="path"/> and analyses it.</summary>
    public static OnnxCost Analyze(string path, IReadOnlyDictionary<string, long[]>? inputShapes = null, bool withRuntime = true) =>
        Analyze(OnnxReader.Read(path), Path.GetFullPath(path), inputShapes, withRuntime);

    /// <summary>Analyses <paramref name="model"/>; <paramref name="inputShapes"/> fixes input shapes (symbolic dimensions not given are 1).</summary>
    public static OnnxCost Analyze(Model model, string name, IReadOnlyDictionary<string, long[]>? inputShapes = null, bool withRuntime = true)
    {
        inputShapes ??= new Dictionary<string, long[]>();
        var graph = model.Graph;
        var inputs = graph.Inputs.Where(i => !graph.Initializers.ContainsKey(i.Name)).ToList();
        foreach (var n in inputShapes.Keys)
            if (!inputs.Any(i => i.Name == n))
                throw new PlanningException($"{name}: no input named '{n}'; inputs: {string.Join(", ", inputs.Select(i => i.Name))}");
        var resolved = new Dictionary<string, long[]>(StringComparer.Ordinal);
        foreach (var i in inputs)
        {
            if (inputShapes.TryGetValue(i.Name, out var given))
            {
                if (given.Any(d => d < 0)) throw new PlanningException($"{name}: input '{i.Name}' dimensions cannot be negative ({string.Join("x", given)})");
                if (i.TensorType?.Shape is { } s)
                {
                    if (s.Rank != given.Length) throw new PlanningException($"{name}: input '{i.Name}' has rank {s.Rank} ({s}) but the shape given has {given.Length} dimensions");
                    for (int d = 0; d < s.Rank; d++)
                        if (s[d].IsKnown && s[d].Value != given[d])
                            throw new PlanningException($"{name}: input '{i.Name}' dimension {d} is fixed to {s[d].Value} ({s}), not {given[d]}");
                }
                resolved[i.Name] = given;
            }
            else if (i.TensorType?.Shape is { } s) resolved[i.Name] = s.Dims.Select(d => d.IsKnown ? d.Value : 1).ToArray();
        }

        var summary = ModelSummary.Of(model);
        var shapes = ShapeInference.Infer(model, resolved);
        var macs = MacCounter.CountAll(graph, shapes.ShapeOf);
        var floatMatrices = ModelSummary.Constants(graph).Where(t => t.DType.IsFloatingPoint() && t.Dims.Length >= 2).ToList();

        var (liveness, livenessNote) = Liveness(graph, shapes);
        long? planned = null;
        string? plannedNote = null;
        if (withRuntime)
        {
            try
            {
                var session = new InferenceSession(model, new SessionOptions { Threads = 1 });
                var feeds = new Dictionary<string, Tensor>(StringComparer.Ordinal);
                foreach (var i in session.Inputs)
                {
                    if (!resolved.TryGetValue(i.Name, out var dims) || i.TensorType is not { } tt)
                        throw new PlanningException($"{name}: input '{i.Name}' has no declared shape; give it with --shape {i.Name}=D0,D1,...");
                    feeds[i.Name] = Tensor.Zeros(tt.ElementType, dims);
                }
                planned = session.PlannedPeakBytes(feeds);
            }
            catch (UnsupportedOperatorException e)
            {
                plannedNote = $"the runtime cannot run this model yet ({e.Message})";
            }
            catch (InvalidInputException e)
            {
                plannedNote = $"the runtime rejected the input shapes ({e.Message})";
            }
        }
        else plannedNote = "runtime plan not requested";

        return new OnnxCost
        {
            Model = name,
            InputShapes = resolved,
            Parameters = summary.Parameters,
            ParametersByDType = summary.ParametersByDType.ToDictionary(k => k.Key.Name(), k => k.Value),
            WeightBytes = summary.WeightBytes,
            WeightBytesByDType = summary.WeightBytesByDType.ToDictionary(k => k.Key.Name(), k => k.Value),
            Macs = macs.All(m => m.Macs.HasValue) ? macs.Sum(m => m.Macs!.Value) : null,
            MacsByOp = macs.Where(m => m.Macs.HasValue).GroupBy(m => m.Node.OpType)
                .ToDictionary(g => g.Key, g => g.Sum(m => m.Macs!.Value), StringComparer.Ordinal),
            MacsUnknownNodes = macs.Count(m => !m.Macs.HasValue),
            LivenessPeakBytes = liveness,
            LivenessNote = livenessNote,
            PlannedPeakBytes = planned,
            PlannedPeakNote = plannedNote,
            FloatMatrices = floatMatrices.Select(t => t.Dims.ToArray()).ToList(),
            FloatMatrixBytesAsStored = floatMatrices.Sum(t => t.ByteLength),
        };
    }

    /// <summary>
    /// Peak of the sum of sizes of intermediate values alive at the same node (a value lives from the node that makes
    /// it to its last reader; graph outputs to the end). Inputs and constants are not counted.
    /// </summary>
    private static (long? Peak, string? Note) Liveness(Graph graph, ShapeInferenceResult shapes)
    {
        var order = GraphAlgorithms.TopologicalOrder(graph);
        var def = new Dictionary<string, int>(StringComparer.Ordinal);
        var last = new Dictionary<string, int>(StringComparer.Ordinal);
        var size = new Dictionary<string, long>(StringComparer.Ordinal);
        for (int step = 0; step < order.Count; step++)
        {
            var n = order[step];
            foreach (var input in n.Inputs.Concat(GraphAlgorithms.ImplicitInputs(n)))
                if (def.ContainsKey(input)) last[input] = step;
            if (n is { OpType: "Constant", IsDefaultDomain: true }) continue;
            foreach (var o in n.Outputs)
            {
                if (o.Length == 0) continue;
                var f = shapes.Get(o);
                if (f?.Shape is not { IsFullyKnown: true } s || f.DType == DType.Undefined)
                    return (null, $"the shape of '{o}' (output of {n.OpType} node '{n.Name}') is not known statically");
                long elements = s.ElementCount ?? 0;
                size[o] = f.DType == DType.String ? elements * 16 : f.DType.ByteCount(elements);
                def[o] = step;
                last[o] = step;
            }
        }
        foreach (var o in graph.Outputs)
            if (def.ContainsKey(o.Name)) last[o.Name] = order.Count - 1;
        var delta = new long[order.Count + 1];
        foreach (var (v, d) in def)
        {
            delta[d] += size[v];
            delta[last[v] + 1] -= size[v];
        }
        long live = 0, peak = 0;
        for (int step = 0; step < order.Count; step++)
        {
            live += delta[step];
            peak = Math.Max(peak, live);
        }
        return (peak, null);
    }

    /// <summary>True when the runtime has a kernel claiming every operator of <paramref name="model"/> (a quick check, not a guarantee).</summary>
    public static bool RuntimeClaimsAll(Model model)
    {
        foreach (var g in model.Graph.SelfAndSubgraphs())
            foreach (var n in g.Nodes)
                if (!KernelRegistry.Default.Claims(n.Domain, n.OpType, model.OpsetVersion(n.IsDefaultDomain ? "" : n.Domain) ?? 1))
                    return false;
        return true;
    }
}
