using OnDevice.Core;

namespace OnDevice.Compression.Gptq;

/// <summary>
/// Where a per-output-channel correction of a layer's output goes: the Conv's bias (added when it has none), Gemm's C
/// when it is a vector of the output channels, or the constant vector of the single Add that consumes a MatMul's output.
/// </summary>
public static class BiasSlots
{
    /// <summary>
    /// Adds <paramref name="delta"/> (one value per output channel) to the bias of <paramref name="node"/> in
    /// <paramref name="graph"/>. Returns the bias value's name and its new data, or null with the reason when the
    /// layer has no place for it (a MatMul without a constant Add, a shared bias tensor, a Gemm with a matrix C, ...).
    /// </summary>
    public static (string? Name, float[]? Data, string? Reason) Add(Graph graph, Node node, float[] delta)
    {
        int rows = delta.Length;
        string? name = null;
        switch (node.OpType)
        {
            case "Conv":
                if (node.Inputs.Count > 2 && node.Inputs[2].Length > 0) name = node.Inputs[2];
                else
                {
                    string fresh = Fresh(graph, node.Inputs[1] + "_bias");
                    graph.Initializers[fresh] = Tensor.FromArray<float>((float[])delta.Clone(), [rows], fresh);
                    while (node.Inputs.Count < 2) node.Inputs.Add("");
                    if (node.Inputs.Count == 2) node.Inputs.Add(fresh);
                    else node.Inputs[2] = fresh;
                    return (fresh, (float[])delta.Clone(), null);
                }
                break;
            case "Gemm":
                if (node.Inputs.Count > 2 && node.Inputs[2].Length > 0)
                {
                    if (node.GetFloat("beta", 1) != 1) return (null, null, "Gemm with beta ≠ 1");
                    name = node.Inputs[2];
                }
                else return (null, null, "Gemm without C");
                break;
            case "MatMul":
            {
                string y = node.Outputs[0];
                var users = graph.Nodes.Where(n => n.Inputs.Contains(y)).ToList();
                if (users.Count != 1 || users[0].OpType != "Add" || !users[0].IsDefaultDomain || graph.Outputs.Any(o => o.Name == y))
                    return (null, null, "the MatMul's output does not go to exactly one Add");
                var add = users[0];
                name = add.Inputs.FirstOrDefault(i => i != y && graph.Initializers.ContainsKey(i));
                if (name is null) return (null, null, "the Add after the MatMul has no constant input");
                break;
            }
            default:
                return (null, null, $"{node.OpType} has no bias");
        }
        if (!graph.Initializers.TryGetValue(name, out var t)) return (null, null, $"bias '{name}' is not a constant");
        if (t.DType != DType.Float32 || t.ElementCount != rows || t.Dims.Count(d => d != 1) > 1 || node.OpType == "MatMul" && (t.Dims.Length == 0 || t.Dims[^1] != rows))
            return (null, null, $"bias '{name}' is not a float vector of {rows} output channels");
        if (graph.Nodes.Count(n => n.Inputs.Contains(name)) != 1) return (null, null, $"bias '{name}' is shared with other nodes");
        var data = t.ToFloatArray();
        for (int i = 0; i < rows; i++) data[i] += delta[i];
        graph.Initializers[name] = Tensor.FromArray<float>(data, t.Dims, name);
        return (name, data, null);
    }

    private static string Fresh(Graph g, string stem)
    {
        var s = stem;
        for (int i = 1; g.Initializers.ContainsKey(s) || g.Nodes.Any(n => n.Outputs.Contains(s)) || g.Inputs.Any(x => x.Name == s); i++) s = $"{stem}_{i}";
        return s;
    }
}
