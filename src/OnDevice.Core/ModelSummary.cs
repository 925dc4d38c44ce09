namespace OnDevice.Core;

/// <summary>Counts over a model's constants and operators, subgraphs included.</summary>
public sealed class ModelSummary
{
    /// <summary>
    /// Elements of floating-point constant tensors (initializers and <c>Constant</c> node values) with more than
    /// one element. Scalars (epsilons, exponents) and integer tensors (shapes, indices) are not parameters.
    /// </summary>
    public long Parameters { get; private init; }

    /// <summary>Total bytes of all constant tensors (initializers and <c>Constant</c> values).</summary>
    public long WeightBytes { get; private init; }

    /// <summary>Constant bytes by element type.</summary>
    public IReadOnlyDictionary<DType, long> WeightBytesByDType { get; private init; } = new Dictionary<DType, long>();

    /// <summary>Parameter elements by element type.</summary>
    public IReadOnlyDictionary<DType, long> ParametersByDType { get; private init; } = new Dictionary<DType, long>();

    /// <summary>Number of constant tensors.</summary>
    public int ConstantTensors { get; private init; }

    /// <summary>Operator histogram (domain-qualified for non-default domains, e.g. <c>com.microsoft.MatMulNBits</c>).</summary>
    public IReadOnlyDictionary<string, int> Ops { get; private init; } = new Dictionary<string, int>();

    /// <summary>Total nodes, subgraphs included.</summary>
    public int NodeCount { get; private init; }

    /// <summary>Number of subgraphs.</summary>
    public int SubgraphCount { get; private init; }

    /// <summary>Every constant tensor of a graph and its subgraphs: initializers and <c>Constant</c> node values.</summary>
    public static IEnumerable<Tensor> Constants(Graph graph)
    {
        foreach (var g in graph.SelfAndSubgraphs())
        {
            foreach (var t in g.Initializers.Values) yield return t;
            foreach (var n in g.Nodes)
                if (n is { OpType: "Constant", IsDefaultDomain: true } && ConstantLifting.ConstantValue(n) is { } t)
                    yield return t;
        }
    }

    /// <summary>Summarizes <paramref name="model"/>.</summary>
    public static ModelSummary Of(Model model)
    {
        long parameters = 0, bytes = 0;
        int count = 0;
        var byType = new SortedDictionary<DType, long>();
        var paramsByType = new SortedDictionary<DType, long>();
        foreach (var t in Constants(model.Graph))
        {
            count++;
            long b = t.DType == DType.String ? t.Strings.Sum(s => (long)s.Length) : t.ByteLength;
            bytes += b;
            byType[t.DType] = byType.GetValueOrDefault(t.DType) + b;
            if (t.DType.IsFloatingPoint() && t.ElementCount > 1)
            {
                parameters += t.ElementCount;
                paramsByType[t.DType] = paramsByType.GetValueOrDefault(t.DType) + t.ElementCount;
            }
        }
        var ops = new SortedDictionary<string, int>(StringComparer.Ordinal);
        int nodes = 0, subgraphs = -1;
        foreach (var g in model.Graph.SelfAndSubgraphs())
        {
            subgraphs++;
            foreach (var n in g.Nodes)
            {
                nodes++;
                var key = n.IsDefaultDomain ? n.OpType : $"{n.Domain}.{n.OpType}";
                ops[key] = ops.GetValueOrDefault(key) + 1;
            }
        }
        return new ModelSummary
        {
            Parameters = parameters,
            WeightBytes = bytes,
            WeightBytesByDType = byType,
            ParametersByDType = paramsByType,
            ConstantTensors = count,
            Ops = ops,
            NodeCount = nodes,
            SubgraphCount = subgraphs,
        };
    }
}
