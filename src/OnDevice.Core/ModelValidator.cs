namespace OnDevice.Core;

/// <summary>How serious a validation finding is.</summary>
public enum Severity
{
    /// <summary>Suspicious but loadable.</summary>
    Warning,
    /// <summary>The graph is malformed.</summary>
    Error,
}

/// <summary>One validation finding: where (graph path and node) and what.</summary>
public sealed record ValidationIssue(Severity Severity, string GraphPath, string Message)
{
    /// <inheritdoc/>
    public override string ToString() => $"{Severity.ToString().ToLowerInvariant()}: graph '{GraphPath}': {Message}";
}

/// <summary>Thrown by <see cref="ModelValidator.ThrowIfInvalid"/> with every error found.</summary>
public sealed class ModelValidationException(IReadOnlyList<ValidationIssue> issues)
    : Exception(issues.Count == 1 ? issues[0].ToString() : $"{issues.Count} validation errors; first: {issues[0]}")
{
    /// <summary>All errors.</summary>
    public IReadOnlyList<ValidationIssue> Issues { get; } = issues;
}

/// <summary>
/// Structural checks of a model: dangling inputs, cycles, values defined twice, undefined graph outputs,
/// undeclared operator domains, and element-type mismatches that can be seen without operator schemas
/// (initializer vs declaration, operands of same-type operators).
/// </summary>
public static class ModelValidator
{
    // Operators whose listed inputs must share one element type (ONNX type constraint "T" on all of them).
    private static readonly Dictionary<string, int[]> SameTypeInputs = new(StringComparer.Ordinal)
    {
        ["Add"] = [0, 1], ["Sub"] = [0, 1], ["Mul"] = [0, 1], ["Div"] = [0, 1], ["MatMul"] = [0, 1],
        ["Gemm"] = [0, 1, 2], ["Conv"] = [0, 1, 2], ["ConvTranspose"] = [0, 1, 2], ["Equal"] = [0, 1],
        ["Less"] = [0, 1], ["Greater"] = [0, 1], ["LessOrEqual"] = [0, 1], ["GreaterOrEqual"] = [0, 1],
        ["And"] = [0, 1], ["Or"] = [0, 1], ["Xor"] = [0, 1], ["Where"] = [1, 2], ["PRelu"] = [0, 1],
        ["BatchNormalization"] = [0, 1, 2], ["LayerNormalization"] = [0, 1, 2], ["Mod"] = [0, 1],
        ["Max"] = [0, 1, 2, 3], ["Min"] = [0, 1, 2, 3], ["Sum"] = [0, 1, 2, 3], ["Mean"] = [0, 1, 2, 3],
        ["Concat"] = Enumerable.Range(0, 64).ToArray(),
    };

    // Operators whose first output has the element type of their first input.
    private static readonly HashSet<string> OutputFollowsInput0 = new(StringComparer.Ordinal)
    {
        "Add", "Sub", "Mul", "Div", "MatMul", "Gemm", "Conv", "ConvTranspose", "Relu", "Sigmoid", "Tanh",
        "Abs", "Neg", "Exp", "Log", "Sqrt", "Reciprocal", "Softmax", "LogSoftmax", "Transpose", "Reshape",
        "Flatten", "Squeeze", "Unsqueeze", "Concat", "Slice", "Gather", "Identity", "Pad", "MaxPool",
        "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "BatchNormalization", "LayerNormalization",
        "HardSigmoid", "HardSwish", "Clip", "LeakyRelu", "Elu", "Erf", "Pow", "ReduceMean", "ReduceSum",
        "ReduceMax", "ReduceMin", "Expand", "Tile", "Resize", "Max", "Min", "Sum", "Mean", "Split",
    };

    private static readonly HashSet<string> BoolOutput = new(StringComparer.Ordinal)
    {
        "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "Not", "IsNaN", "IsInf",
    };

    /// <summary>All findings for <paramref name="model"/>; empty when the model is well formed.</summary>
    public static IReadOnlyList<ValidationIssue> Validate(Model model)
    {
        var issues = new List<ValidationIssue>();
        var domains = new HashSet<string>(model.OpsetImports.Select(o => o.Domain is "ai.onnx" ? "" : o.Domain), StringComparer.Ordinal);
        var functions = new HashSet<(string, string)>(model.Functions.Select(f => (f.Domain, f.Name)));
        ValidateGraph(model.Graph, model.Graph.Name.Length > 0 ? model.Graph.Name : "main",
            new Dictionary<string, DType?>(StringComparer.Ordinal), domains, functions, issues, isMain: true);
        return issues;
    }

    /// <summary>Throws <see cref="ModelValidationException"/> when there is at least one error.</summary>
    public static void ThrowIfInvalid(Model model)
    {
        var errors = Validate(model).Where(i => i.Severity == Severity.Error).ToList();
        if (errors.Count > 0) throw new ModelValidationException(errors);
    }

    private static void ValidateGraph(Graph g, string path, Dictionary<string, DType?> outer, HashSet<string> domains,
        HashSet<(string, string)> functions, List<ValidationIssue> issues, bool isMain)
    {
        void Error(string m) => issues.Add(new ValidationIssue(Severity.Error, path, m));
        void Warn(string m) => issues.Add(new ValidationIssue(Severity.Warning, path, m));

        // Scope: name -> element type when known (null when defined but of unknown type).
        var scope = new Dictionary<string, DType?>(outer, StringComparer.Ordinal);
        var local = new Dictionary<string, string>(StringComparer.Ordinal); // name -> what defined it

        void Define(string name, string what, DType? type)
        {
            if (local.TryGetValue(name, out var first))
            {
                Error($"value '{name}' is defined twice: by {first} and by {what}");
                return;
            }
            if (outer.ContainsKey(name))
                Warn($"value '{name}' ({what}) shadows a value of an enclosing graph");
            local[name] = what;
            scope[name] = type;
        }

        var inputNames = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < g.Inputs.Count; i++)
        {
            var v = g.Inputs[i];
            if (v.Name.Length == 0) { Error($"graph input {i} has no name"); continue; }
            if (!inputNames.Add(v.Name)) { Error($"graph input '{v.Name}' is listed twice"); continue; }
            if (isMain && v.Type is null) Warn($"graph input '{v.Name}' has no type");
            Define(v.Name, $"graph input {i}", (v.Type as TensorTypeInfo)?.ElementType);
        }

        foreach (var (name, t) in g.Initializers)
        {
            if (inputNames.Contains(name))
            {
                // An initializer may give a graph input its default value; types must agree.
                var decl = g.Inputs.First(x => x.Name == name).TensorType;
                CheckTensorAgainstDeclaration(t, decl, $"graph input '{name}'", Error);
                continue;
            }
            Define(name, $"initializer '{name}'", t.DType);
        }

        var declared = new Dictionary<string, TensorTypeInfo>(StringComparer.Ordinal);
        foreach (var v in g.ValueInfos)
        {
            if (v.Name.Length == 0) { Warn("a value_info entry has no name"); continue; }
            if (v.TensorType is { } tt && !declared.TryAdd(v.Name, tt) && !declared[v.Name].Equals(tt))
                Error($"value_info declares '{v.Name}' twice with different types ({declared[v.Name]} and {tt})");
            if (g.Initializers.TryGetValue(v.Name, out var init))
                CheckTensorAgainstDeclaration(init, v.TensorType, $"value_info '{v.Name}'", Error);
        }

        // Define every node output first: order is checked separately by the cycle check.
        for (int n = 0; n < g.Nodes.Count; n++)
        {
            var node = g.Nodes[n];
            if (node.OpType.Length == 0) Error($"node {n} has no op type");
            var dom = node.Domain is "ai.onnx" ? "" : node.Domain;
            if (!domains.Contains(dom) && !functions.Contains((node.Domain, node.OpType)))
                Error($"node {NodeLabel(node, n)} uses domain '{node.Domain}', which the model does not import (opset_import)");
            foreach (var o in node.Outputs)
                if (o.Length > 0) Define(o, $"node {NodeLabel(node, n)}", null);
        }

        // Element types: seed from declarations, then propagate in topological order where the rule is known.
        foreach (var (name, tt) in declared)
            if (scope.TryGetValue(name, out var cur) && cur is null) scope[name] = tt.ElementType;
        foreach (var o in g.Outputs)
            if (o.TensorType is { } ot && scope.TryGetValue(o.Name, out var cur) && cur is null && !local.ContainsKey(o.Name)) scope[o.Name] = ot.ElementType;

        IReadOnlyList<Node> order;
        try
        {
            order = GraphAlgorithms.TopologicalOrder(g);
        }
        catch (GraphCycleException e)
        {
            Error(e.Message);
            order = g.Nodes;
        }

        var position = new Dictionary<Node, int>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < g.Nodes.Count; i++) position[g.Nodes[i]] = i;

        foreach (var node in order)
        {
            int n = position[node];
            for (int i = 0; i < node.Inputs.Count; i++)
            {
                var name = node.Inputs[i];
                if (name.Length > 0 && !scope.ContainsKey(name))
                    Error($"node {NodeLabel(node, n)} input {i} '{name}' is not defined: no node, initializer or graph input{(isMain ? "" : " (here or in an enclosing graph)")} produces it");
            }
            CheckOperandTypes(node, n, scope, Error);
            PropagateTypes(node, scope, declared, n, Error);

            foreach (var a in node.Attributes.Values)
            {
                int k = 0;
                foreach (var sub in a.Subgraphs)
                {
                    var subPath = $"{path}/{NodeLabel(node, n)}.{a.Name}{(a.Kind == AttributeKind.Graphs ? $"[{k++}]" : "")}";
                    ValidateGraph(sub, subPath, scope, domains, functions, issues, isMain: false);
                }
            }
        }

        foreach (var o in g.Outputs)
        {
            if (o.Name.Length == 0) { Error("a graph output has no name"); continue; }
            if (!scope.ContainsKey(o.Name)) Error($"graph output '{o.Name}' is not produced by any node, initializer or input");
            else if (o.TensorType is { } ot && scope[o.Name] is { } actual && actual != ot.ElementType)
                Error($"graph output '{o.Name}' is declared {ot.ElementType.Name()} but its producer gives {actual.Name()}");
        }
    }

    private static void CheckTensorAgainstDeclaration(Tensor t, TensorTypeInfo? decl, string what, Action<string> error)
    {
        if (decl is null) return;
        if (decl.ElementType != t.DType)
            error($"{what} is declared {decl.ElementType.Name()} but its initializer is {t.DType.Name()}");
        else if (decl.Shape is { } s && !ShapeAccepts(s, t.Dims))
            error($"{what} is declared with shape {s} but its initializer has shape {Shape.Of(t.Dims)}");
    }

    private static bool ShapeAccepts(Shape declared, long[] dims)
    {
        if (declared.Rank != dims.Length) return false;
        for (int i = 0; i < dims.Length; i++)
            if (declared[i].IsKnown && declared[i].Value != dims[i]) return false;
        return true;
    }

    private static void CheckOperandTypes(Node node, int n, Dictionary<string, DType?> scope, Action<string> error)
    {
        if (!node.IsDefaultDomain || !SameTypeInputs.TryGetValue(node.OpType, out var slots)) return;
        int firstSlot = -1;
        DType first = DType.Undefined;
        foreach (int i in slots)
        {
            if (i >= node.Inputs.Count) break;
            var name = node.Inputs[i];
            if (name.Length == 0 || !scope.TryGetValue(name, out var t) || t is not { } dt) continue;
            if (firstSlot < 0) { firstSlot = i; first = dt; continue; }
            if (dt != first)
                error($"node {NodeLabel(node, n)}: input {i} '{name}' is {dt.Name()} but input {firstSlot} '{node.Inputs[firstSlot]}' is {first.Name()}; {node.OpType} needs both of one type");
        }
    }

    private static void PropagateTypes(Node node, Dictionary<string, DType?> scope, Dictionary<string, TensorTypeInfo> declared, int n, Action<string> error)
    {
        if (node.Outputs.Count == 0 || node.Outputs[0].Length == 0 || !node.IsDefaultDomain) return;
        DType? produced = null;
        if (node.OpType == "Constant")
        {
            var a = node.Attributes.Values.FirstOrDefault();
            produced = a?.Kind switch
            {
                AttributeKind.Tensor => a.AsTensor().DType,
                AttributeKind.Float or AttributeKind.Floats => DType.Float32,
                AttributeKind.Int or AttributeKind.Ints => DType.Int64,
                AttributeKind.String or AttributeKind.Strings => DType.String,
                _ => null,
            };
        }
        else if (node.OpType is "Shape" or "Size" or "NonZero" or "ArgMax" or "ArgMin") produced = DType.Int64;
        else if (BoolOutput.Contains(node.OpType)) produced = DType.Bool;
        else if (node.OpType == "Cast" && node.Attr("to") is { Kind: AttributeKind.Int } to) produced = (DType)to.AsInt();
        else if (OutputFollowsInput0.Contains(node.OpType) && node.Inputs.Count > 0 && scope.GetValueOrDefault(node.Inputs[0]) is { } t0) produced = t0;

        if (produced is not { } p) return;
        var outName = node.Outputs[0];
        if (declared.TryGetValue(outName, out var decl) && decl.ElementType != p)
            error($"node {NodeLabel(node, n)} output '{outName}' is {p.Name()} but value_info declares {decl.ElementType.Name()}");
        if (node.OpType == "Split")
            foreach (var o in node.Outputs) { if (o.Length > 0) scope[o] = p; }
        else scope[outName] = p;
    }

    private static string NodeLabel(Node node, int index) =>
        node.Name.Length > 0 ? $"'{node.Name}' ({node.OpType})" : $"#{index} ({node.OpType})";
}
