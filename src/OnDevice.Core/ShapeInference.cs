namespace OnDevice.Core;

/// <summary>What static inference knows about one value: its element type, its (possibly partial) shape and, for
/// small tensors that carry shapes or indices, its (possibly partial) contents.</summary>
public sealed class ValueFacts
{
    /// <summary>Element type (Undefined when not known).</summary>
    public DType DType { get; init; }

    /// <summary>Shape, or null when even the rank is unknown.</summary>
    public Shape? Shape { get; init; }

    /// <summary>For small integer tensors: each element, possibly symbolic (e.g. the output of <c>Shape</c>).</summary>
    public Dim[]? Ints { get; init; }

    /// <summary>For small floating-point tensors whose every element is known.</summary>
    public double[]? Floats { get; init; }

    /// <inheritdoc/>
    public override string ToString() => $"{DType.Name()}{Shape?.ToString() ?? "[*]"}";
}

/// <summary>The result of shape inference: facts for every value of the graph and its subgraphs.</summary>
public sealed class ShapeInferenceResult
{
    internal readonly Dictionary<string, ValueFacts> Facts = new(StringComparer.Ordinal);

    /// <summary>Facts about <paramref name="name"/>, or null.</summary>
    public ValueFacts? Get(string name) => Facts.GetValueOrDefault(name);

    /// <summary>The inferred shape of <paramref name="name"/>, or null.</summary>
    public Shape? ShapeOf(string name) => Facts.GetValueOrDefault(name)?.Shape;

    /// <summary>Every value with facts.</summary>
    public IReadOnlyDictionary<string, ValueFacts> All => Facts;
}

/// <summary>
/// Static shape and type inference over the IR, with propagation of small integer tensors (the
/// Shape → Gather → Concat → Reshape chains exporters emit) so that output shapes are exact once input shapes
/// are fixed. Symbolic dimensions pass through where the operator makes that trivial (element-wise, reshape by
/// copied dimensions); elsewhere unknown sizes stay unknown. Declared value_info is used where an operator is
/// not known here.
/// </summary>
public static partial class ShapeInference
{
    /// <summary>Largest tensor whose contents are tracked.</summary>
    public const int MaxTrackedElements = 4096;

    /// <summary>Infers facts for every value of <paramref name="model"/>; <paramref name="inputShapes"/> overrides graph input shapes.</summary>
    public static ShapeInferenceResult Infer(Model model, IReadOnlyDictionary<string, long[]>? inputShapes = null)
    {
        var result = new ShapeInferenceResult();
        long opset = model.OpsetVersion("") ?? 21;
        var ctx = new Context(result, opset);
        ctx.Seed(model.Graph, inputShapes);
        ctx.Run(model.Graph);
        return result;
    }

    /// <summary>
    /// Infers facts for a graph (e.g. a subgraph) given facts for its inputs and for outer-scope values it reads;
    /// initializers and <c>Constant</c> nodes seed themselves.
    /// </summary>
    public static ShapeInferenceResult Infer(Graph graph, long opset, IReadOnlyDictionary<string, ValueFacts> seeds)
    {
        var result = new ShapeInferenceResult();
        var ctx = new Context(result, opset);
        ctx.Seed(graph, null);
        foreach (var (name, f) in seeds) result.Facts[name] = f;
        ctx.Run(graph);
        return result;
    }

    private sealed partial class Context(ShapeInferenceResult result, long opset)
    {
        private readonly Dictionary<string, ValueFacts> _f = result.Facts;
        public long Opset { get; } = opset;

        public void Seed(Graph g, IReadOnlyDictionary<string, long[]>? overrides)
        {
            foreach (var i in g.Inputs)
            {
                if (overrides is not null && overrides.TryGetValue(i.Name, out var dims))
                {
                    _f[i.Name] = new ValueFacts { DType = i.TensorType?.ElementType ?? DType.Float32, Shape = Shape.Of(dims) };
                    continue;
                }
                if (i.TensorType is { } t) _f[i.Name] = new ValueFacts { DType = t.ElementType, Shape = t.Shape };
            }
            foreach (var (name, t) in g.Initializers) _f[name] = FromTensor(t);
        }

        public void Run(Graph g)
        {
            IReadOnlyList<Node> order;
            try { order = GraphAlgorithms.TopologicalOrder(g); }
            catch (GraphCycleException) { order = g.Nodes; }
            var declared = new Dictionary<string, TensorTypeInfo>(StringComparer.Ordinal);
            foreach (var v in g.ValueInfos.Concat(g.Outputs))
                if (v.TensorType is { } tt) declared.TryAdd(v.Name, tt);

            foreach (var n in order)
            {
                ValueFacts?[] outs;
                try { outs = Apply(n); }
                catch (Exception e) when (e is ArgumentException or IndexOutOfRangeException or InvalidOperationException or OverflowException or DivideByZeroException or KeyNotFoundException)
                {
                    outs = new ValueFacts?[n.Outputs.Count];
                }
                for (int i = 0; i < n.Outputs.Count; i++)
                {
                    var name = n.Outputs[i];
                    if (name.Length == 0) continue;
                    var f = i < outs.Length ? outs[i] : null;
                    if (declared.TryGetValue(name, out var d)) f = Merge(f, d);
                    if (f is not null) _f[name] = f;
                }
            }
        }

        private static ValueFacts? Merge(ValueFacts? inferred, TensorTypeInfo declared)
        {
            if (inferred is null) return new ValueFacts { DType = declared.ElementType, Shape = declared.Shape };
            var dtype = inferred.DType == DType.Undefined ? declared.ElementType : inferred.DType;
            var shape = inferred.Shape;
            if (shape is null) shape = declared.Shape;
            else if (declared.Shape is { } ds && ds.Rank == shape.Rank)
                shape = new Shape(shape.Dims.Select((d, i) => d.IsKnown ? d : ds[i].IsKnown || (d.Symbol is null && ds[i].IsSymbolic) ? ds[i] : d));
            return new ValueFacts { DType = dtype, Shape = shape, Ints = inferred.Ints, Floats = inferred.Floats };
        }

        public static ValueFacts FromTensor(Tensor t)
        {
            Dim[]? ints = null;
            double[]? floats = null;
            if (t.ElementCount <= MaxTrackedElements && t.DType != DType.String)
            {
                if (t.DType.IsFloatingPoint()) floats = Enumerable.Range(0, (int)t.ElementCount).Select(i => t.GetDouble(i)).ToArray();
                else ints = t.ToInt64Array().Select(v => v >= 0 ? Dim.Of(v) : NegativeDim(v)).ToArray();
            }
            return new ValueFacts { DType = t.DType, Shape = t.Shape, Ints = ints, Floats = floats };
        }

        // Negative integers (e.g. -1 in a Reshape target, negative axes) are tracked through a reserved symbol form.
        private static Dim NegativeDim(long v) => Dim.Sym($"#neg{v}");

        public static bool TryValue(Dim d, out long v)
        {
            if (d.IsKnown) { v = d.Value; return true; }
            if (d.Symbol is { } s && s.StartsWith("#neg", StringComparison.Ordinal) && long.TryParse(s.AsSpan(4), out v)) return true;
            v = 0;
            return false;
        }

        public static Dim IntDim(long v) => v >= 0 ? Dim.Of(v) : NegativeDim(v);

        public ValueFacts? In(Node n, int i) => i < n.Inputs.Count && n.Inputs[i].Length > 0 ? _f.GetValueOrDefault(n.Inputs[i]) : null;

        public bool HasInput(Node n, int i) => i < n.Inputs.Count && n.Inputs[i].Length > 0;

        /// <summary>All elements of input <paramref name="i"/> as known integers, or null.</summary>
        public long[]? IntsOf(Node n, int i)
        {
            var f = In(n, i);
            if (f?.Ints is null) return null;
            var r = new long[f.Ints.Length];
            for (int k = 0; k < r.Length; k++)
                if (!TryValue(f.Ints[k], out r[k])) return null;
            return r;
        }

        public ValueFacts[] RunSubgraph(Graph g)
        {
            Seed(g, null);
            Run(g);
            return g.Outputs.Select(o => _f.GetValueOrDefault(o.Name) ?? new ValueFacts { DType = o.TensorType?.ElementType ?? DType.Undefined, Shape = o.TensorType?.Shape }).ToArray();
        }
    }
}
