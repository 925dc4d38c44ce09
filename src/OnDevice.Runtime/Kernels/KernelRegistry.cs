using OnDevice.Core;

namespace OnDevice.Runtime.Kernels;

/// <summary>
/// Kernels by (domain, op type, opset range, element type). Each kernel family registers itself next to its
/// code (see <see cref="KernelFamilies"/>); "can this node run here?" is answered without creating anything.
/// </summary>
public sealed class KernelRegistry
{
    private readonly Dictionary<(string Domain, string Op), List<KernelRegistration>> _byOp = [];

    /// <summary>The registry with every built-in kernel family.</summary>
    public static KernelRegistry Default { get; } = CreateDefault();

    private static KernelRegistry CreateDefault()
    {
        var r = new KernelRegistry();
        KernelFamilies.RegisterAll(r);
        return r;
    }

    /// <summary>Registers a kernel.</summary>
    public void Add(string op, int since, IReadOnlyList<DType> types, KernelFactory create, int until = int.MaxValue,
        string domain = "", int typeInput = 0, KernelSupport? supports = null)
    {
        var key = (Normalize(domain), op);
        if (!_byOp.TryGetValue(key, out var list)) _byOp[key] = list = [];
        list.Add(new KernelRegistration(op, key.Item1, since, until, types, typeInput, create, supports));
    }

    /// <summary>Every registration.</summary>
    public IEnumerable<KernelRegistration> All => _byOp.Values.SelectMany(l => l);

    /// <summary>True when some kernel claims <paramref name="op"/> in <paramref name="domain"/> at <paramref name="opset"/>.</summary>
    public bool Claims(string domain, string op, long opset) =>
        _byOp.TryGetValue((Normalize(domain), op), out var l) && l.Any(r => r.Covers(opset));

    /// <summary>The registration that runs the node, or null with the reason.</summary>
    public KernelRegistration? Resolve(KernelBuildContext ctx, out string reason)
    {
        var n = ctx.Node;
        if (!_byOp.TryGetValue((Normalize(n.Domain), n.OpType), out var list))
        {
            reason = "no kernel for this operator";
            return null;
        }
        var inRange = list.Where(r => r.Covers(ctx.Opset)).ToList();
        if (inRange.Count == 0)
        {
            reason = $"kernels exist for opsets {string.Join(", ", list.Select(r => r.UntilVersion == int.MaxValue ? $"{r.SinceVersion}+" : $"{r.SinceVersion}-{r.UntilVersion}"))} only";
            return null;
        }
        reason = "";
        foreach (var r in inRange)
        {
            var t = ctx.InputType(r.TypeInput);
            if (t is { } dt && !r.Types.Contains(dt))
            {
                reason = $"input {r.TypeInput} is {dt.Name()}; supported: {string.Join(", ", r.Types.Select(x => x.Name()))}";
                continue;
            }
            if (r.Supports?.Invoke(ctx) is { } why)
            {
                reason = why;
                continue;
            }
            return r;
        }
        return null;
    }

    private static string Normalize(string domain) => domain is "ai.onnx" ? "" : domain;
}

/// <summary>Thrown at session creation for a node no kernel can run (never mid-run).</summary>
public sealed class UnsupportedOperatorException(Node node, string domain, long opset, string reason)
    : NotSupportedException($"unsupported operator {(domain.Length > 0 ? domain + "." : "")}{node.OpType} (opset {opset}) at node {node.Label}: {reason}")
{
    /// <summary>The node.</summary>
    public Node Node { get; } = node;
    /// <summary>Operator domain ("" = ai.onnx).</summary>
    public string Domain { get; } = domain;
    /// <summary>Opset version in force.</summary>
    public long Opset { get; } = opset;
}
