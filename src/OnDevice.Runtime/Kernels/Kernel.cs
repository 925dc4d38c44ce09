using OnDevice.Core;

namespace OnDevice.Runtime.Kernels;

/// <summary>An operator implementation bound to one node. Created once per session; <see cref="Execute"/> may be
/// called concurrently from several runs, so a kernel keeps no per-run state in fields.</summary>
public interface IKernel
{
    /// <summary>Computes the node's outputs. Outputs come from <see cref="KernelContext.Output"/> and must be fully written
    /// (arena memory is reused and not zeroed).</summary>
    void Execute(KernelContext ctx);
}

/// <summary>What a kernel factory may know about its node when the session is built.</summary>
public sealed class KernelBuildContext
{
    internal KernelBuildContext(Node node, long opset, Func<string, Tensor?> constant, Func<string, ValueFacts?> facts,
        SessionOptions options, Func<Graph, IReadOnlyList<string>, Subgraph>? subgraph)
    {
        Node = node;
        Opset = opset;
        _constant = constant;
        _facts = facts;
        Options = options;
        _subgraph = subgraph;
    }

    private readonly Func<string, Tensor?> _constant;
    private readonly Func<string, ValueFacts?> _facts;
    private readonly Func<Graph, IReadOnlyList<string>, Subgraph>? _subgraph;

    /// <summary>The node.</summary>
    public Node Node { get; }

    /// <summary>Opset version in force for the node's domain.</summary>
    public long Opset { get; }

    /// <summary>Session options.</summary>
    public SessionOptions Options { get; }

    /// <summary>True when input <paramref name="i"/> is present (not omitted).</summary>
    public bool HasInput(int i) => i < Node.Inputs.Count && Node.Inputs[i].Length > 0;

    /// <summary>The constant value of input <paramref name="i"/> when it is an initializer, else null (for weight prepacking).</summary>
    public Tensor? Constant(int i) => HasInput(i) ? _constant(Node.Inputs[i]) : null;

    /// <summary>Element type of input <paramref name="i"/> as inferred from declarations, or null.</summary>
    public DType? InputType(int i) => HasInput(i) && _facts(Node.Inputs[i]) is { DType: not DType.Undefined } f ? f.DType : null;

    /// <summary>Shape of input <paramref name="i"/> as inferred from declarations (may be partial), or null.</summary>
    public Shape? InputShape(int i) => HasInput(i) ? _facts(Node.Inputs[i])?.Shape : null;

    /// <summary>Compiles a subgraph (If/Loop/Scan body) whose outer-scope reads are the given captured names.</summary>
    public Subgraph CompileSubgraph(Graph graph, IReadOnlyList<string> captured) =>
        (_subgraph ?? throw new InvalidOperationException("subgraphs cannot be compiled here"))(graph, captured);
}

/// <summary>Creates a kernel for a node, after <see cref="KernelRegistration.Supports"/> accepted it.</summary>
public delegate IKernel KernelFactory(KernelBuildContext ctx);

/// <summary>Returns null when the node can run, or the reason it cannot (an unsupported attribute value, say).</summary>
public delegate string? KernelSupport(KernelBuildContext ctx);

/// <summary>One kernel registration: operator, domain, opset range, accepted element types of one input, factory.</summary>
public sealed record KernelRegistration(
    string OpType,
    string Domain,
    int SinceVersion,
    int UntilVersion,
    IReadOnlyList<DType> Types,
    int TypeInput,
    KernelFactory Create,
    KernelSupport? Supports)
{
    /// <summary>True when this registration covers <paramref name="opset"/>.</summary>
    public bool Covers(long opset) => opset >= SinceVersion && opset <= UntilVersion;
}

/// <summary>Element-type lists used by registrations.</summary>
public static class TypeSets
{
    /// <summary>float32 only.</summary>
    public static readonly DType[] Float = [DType.Float32];
    /// <summary>Floating types the runtime computes in.</summary>
    public static readonly DType[] Floats = [DType.Float32, DType.Float64, DType.Float16];
    /// <summary>Signed integers and float32/64.</summary>
    public static readonly DType[] Numeric = [DType.Float32, DType.Float64, DType.Int32, DType.Int64, DType.Int8, DType.UInt8, DType.Int16, DType.UInt16, DType.UInt32, DType.UInt64, DType.Float16];
    /// <summary>Every fixed-size type (for data movement ops).</summary>
    public static readonly DType[] All = [DType.Float32, DType.Float64, DType.Float16, DType.BFloat16, DType.Int8, DType.UInt8, DType.Int16, DType.UInt16, DType.Int32, DType.UInt32, DType.Int64, DType.UInt64, DType.Bool];
    /// <summary>bool only.</summary>
    public static readonly DType[] Bool = [DType.Bool];
}
