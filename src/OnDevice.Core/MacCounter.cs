namespace OnDevice.Core;

/// <summary>Multiply-accumulate count of one node.</summary>
public sealed record NodeMacs(Node Node, long? Macs, string Formula);

/// <summary>
/// Counts multiply-accumulates (MACs) of the compute-heavy operators from tensor shapes:
/// <list type="bullet">
/// <item>Conv: N·M·∏(output spatial)·(C/group)·∏(kernel) — each output element is a dot product over C/group·∏kernel inputs.</item>
/// <item>ConvTranspose: N·C·∏(input spatial)·(M/group)·∏(kernel) — each input element is scattered into M/group·∏kernel outputs.</item>
/// <item>Gemm: M·K·N with A [M,K] (or [K,M] when transA) and B [K,N] (or [N,K] when transB).</item>
/// <item>MatMul: ∏(broadcast batch)·M·K·N, with 1-D operands promoted as the ONNX rules say.</item>
/// </list>
/// Bias additions, activations and other element-wise work are not counted. A node whose shapes are not all
/// known gets a null count.
/// </summary>
public static class MacCounter
{
    /// <summary>Operators that this counter knows.</summary>
    public static IReadOnlySet<string> CountedOps { get; } = new HashSet<string>(StringComparer.Ordinal) { "Conv", "ConvTranspose", "Gemm", "MatMul" };

    /// <summary>MACs of <paramref name="node"/> given a look-up of value shapes, or null when a shape is unknown.</summary>
    public static long? Count(Node node, Func<string, Shape?> shapeOf)
    {
        if (!node.IsDefaultDomain) return null;
        long[]? In(int i) => i < node.Inputs.Count && node.Inputs[i].Length > 0 && shapeOf(node.Inputs[i]) is { IsFullyKnown: true } s ? s.ToArray() : null;
        long[]? Out(int i) => i < node.Outputs.Count && node.Outputs[i].Length > 0 && shapeOf(node.Outputs[i]) is { IsFullyKnown: true } s ? s.ToArray() : null;
        try
        {
            switch (node.OpType)
            {
                case "Conv":
                {
                    var (w, y) = (In(1), Out(0));
                    if (w is null || y is null || w.Length < 3 || y.Length != w.Length) return null;
                    long kernel = Product(w.AsSpan(2));
                    return checked(y[0] * y[1] * Product(y.AsSpan(2)) * w[1] * kernel);
                }
                case "ConvTranspose":
                {
                    var (x, w) = (In(0), In(1));
                    if (x is null || w is null || w.Length < 3 || x.Length != w.Length) return null;
                    // W is [C, M/group, k...]: every input element meets M/group·∏k weights.
                    return checked(x[0] * x[1] * Product(x.AsSpan(2)) * w[1] * Product(w.AsSpan(2)));
                }
                case "Gemm":
                {
                    var (a, b) = (In(0), In(1));
                    if (a is null || b is null || a.Length != 2 || b.Length != 2) return null;
                    long m = node.GetInt("transA", 0) != 0 ? a[1] : a[0];
                    long k = node.GetInt("transA", 0) != 0 ? a[0] : a[1];
                    long n = node.GetInt("transB", 0) != 0 ? b[0] : b[1];
                    return checked(m * k * n);
                }
                case "MatMul":
                {
                    var (a, b) = (In(0), In(1));
                    if (a is null || b is null || a.Length == 0 || b.Length == 0) return null;
                    long k = a[^1];
                    long m = a.Length >= 2 ? a[^2] : 1;
                    long n = b.Length >= 2 ? b[^1] : 1;
                    var batchA = a.Length > 2 ? a[..^2] : [];
                    var batchB = b.Length > 2 ? b[..^2] : [];
                    int rank = Math.Max(batchA.Length, batchB.Length);
                    long batch = 1;
                    for (int i = 0; i < rank; i++)
                    {
                        long da = i < rank - batchA.Length ? 1 : batchA[i - (rank - batchA.Length)];
                        long db = i < rank - batchB.Length ? 1 : batchB[i - (rank - batchB.Length)];
                        batch = checked(batch * Math.Max(da, db));
                    }
                    return checked(batch * m * k * n);
                }
                default:
                    return null;
            }
        }
        catch (OverflowException)
        {
            return null;
        }
    }

    /// <summary>Per-node counts for every counted operator in <paramref name="graph"/> and its subgraphs.</summary>
    public static IReadOnlyList<NodeMacs> CountAll(Graph graph, Func<string, Shape?> shapeOf)
    {
        var r = new List<NodeMacs>();
        foreach (var g in graph.SelfAndSubgraphs())
            foreach (var n in g.Nodes)
                if (n.IsDefaultDomain && CountedOps.Contains(n.OpType))
                    r.Add(new NodeMacs(n, Count(n, shapeOf), n.OpType));
        return r;
    }

    private static long Product(ReadOnlySpan<long> dims)
    {
        long p = 1;
        foreach (var d in dims) p = checked(p * d);
        return p;
    }
}
