using OnDevice.Core;

namespace OnDevice.Compression;

/// <summary>Small helpers for adding tensors and nodes to a graph with fresh names.</summary>
internal sealed class GraphEdit(Graph graph)
{
    private readonly HashSet<string> _used = Collect(graph);
    private int _counter;

    public Graph Graph { get; } = graph;

    /// <summary>Bytes of every initializer added so far (to attribute sizes to layers).</summary>
    public long AddedBytes { get; private set; }

    /// <summary>Nodes to put before every existing node (weight decoders).</summary>
    public List<Node> Prefix { get; } = [];

    private static HashSet<string> Collect(Graph g)
    {
        var s = new HashSet<string>(g.Initializers.Keys, StringComparer.Ordinal);
        foreach (var v in g.Inputs.Concat(g.Outputs).Concat(g.ValueInfos)) s.Add(v.Name);
        foreach (var n in g.Nodes) { s.UnionWith(n.Outputs); s.UnionWith(n.Inputs); if (n.Name.Length > 0) s.Add(n.Name); }
        return s;
    }

    public string Fresh(string hint)
    {
        string n = hint;
        while (!_used.Add(n)) n = $"{hint}_{++_counter}";
        return n;
    }

    public string Add(Tensor t)
    {
        if (t.Name.Length == 0) t.Name = Fresh("c");
        else _used.Add(t.Name);
        Graph.AddInitializer(t);
        AddedBytes += t.ByteLength;
        return t.Name;
    }

    public string AddFloats(string hint, float[] v, long[] dims, bool fp16 = false)
    {
        var t = fp16 ? Tensor.FromArray<Half>(v.Select(x => (Half)x).ToArray(), dims, Fresh(hint)) : Tensor.FromArray<float>(v, dims, Fresh(hint));
        Graph.AddInitializer(t);
        AddedBytes += t.ByteLength;
        return t.Name;
    }

    public string AddInts(string hint, long[] v) { var t = Tensor.FromArray<long>(v, [v.Length], Fresh(hint)); Graph.AddInitializer(t); AddedBytes += t.ByteLength; return t.Name; }

    /// <summary>An integer tensor of <paramref name="dtype"/> (int8, uint8, int4, uint4, int32) holding <paramref name="values"/>.</summary>
    public string AddQuantized(string hint, int[] values, long[] dims, DType dtype)
    {
        var t = IntTensor(values, dims, dtype, Fresh(hint));
        Graph.AddInitializer(t);
        AddedBytes += t.ByteLength;
        return t.Name;
    }

    public static Tensor IntTensor(int[] values, long[] dims, DType dtype, string name) => dtype switch
    {
        DType.Int8 => Tensor.FromArray<sbyte>(values.Select(v => (sbyte)v).ToArray(), dims, name),
        DType.UInt8 => Tensor.FromArray<byte>(values.Select(v => (byte)v).ToArray(), dims, name),
        DType.Int32 => Tensor.FromArray<int>(values, dims, name),
        DType.Int4 or DType.UInt4 => Tensor.FromBytes(dtype, dims, Int4.Pack(values), name),
        _ => throw new ArgumentException($"no integer tensor of {dtype.Name()}"),
    };

    public Node Node(string op, string[] inputs, string[] outputs, string nameHint, string domain = "")
    {
        var n = new Node(op, inputs, outputs, Fresh(nameHint), domain);
        return n;
    }

    /// <summary>Removes initializer <paramref name="name"/> (and a graph input of that name, an old-IR default).</summary>
    public void RemoveInitializer(string name)
    {
        Graph.Initializers.Remove(name);
        Graph.Inputs.RemoveAll(i => i.Name == name);
    }

    /// <summary>Puts the prefix nodes first and re-sorts the graph topologically.</summary>
    public void Finish()
    {
        if (Prefix.Count > 0) Graph.Nodes.InsertRange(0, Prefix);
        Prefix.Clear();
        var order = GraphAlgorithms.TopologicalOrder(Graph).ToList();
        Graph.Nodes.Clear();
        Graph.Nodes.AddRange(order);
    }
}
