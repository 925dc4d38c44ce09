namespace OnDevice.Core;

/// <summary>
/// A computation graph: inputs, outputs, initializers (named constant tensors), nodes in file order and
/// optional type annotations. Subgraphs (If/Loop/Scan bodies) are graphs held in node attributes and may
/// read values of their enclosing graphs.
/// </summary>
public sealed class Graph
{
    /// <summary>Graph name.</summary>
    public string Name { get; set; } = "";

    /// <summary>Documentation string.</summary>
    public string DocString { get; set; } = "";

    /// <summary>Graph inputs (may include names that also have an initializer, as a default value).</summary>
    public List<ValueInfo> Inputs { get; } = [];

    /// <summary>Graph outputs.</summary>
    public List<ValueInfo> Outputs { get; } = [];

    /// <summary>Type annotations for intermediate values.</summary>
    public List<ValueInfo> ValueInfos { get; } = [];

    /// <summary>Nodes in file order (use <see cref="GraphAlgorithms.TopologicalOrder"/> for execution order).</summary>
    public List<Node> Nodes { get; } = [];

    /// <summary>Named constant tensors, in file order.</summary>
    public OrderedDictionary<string, Tensor> Initializers { get; } = new(StringComparer.Ordinal);

    /// <summary>Quantization annotations (tensor name → key/value pairs), carried through unchanged.</summary>
    public List<KeyValuePair<string, List<KeyValuePair<string, string>>>> QuantizationAnnotations { get; } = [];

    /// <summary>Key/value metadata.</summary>
    public List<KeyValuePair<string, string>> Metadata { get; } = [];

    /// <summary>Adds an initializer under its tensor name; returns the tensor.</summary>
    public Tensor AddInitializer(Tensor tensor)
    {
        if (string.IsNullOrEmpty(tensor.Name)) throw new ArgumentException("an initializer needs a name", nameof(tensor));
        Initializers.Add(tensor.Name, tensor);
        return tensor;
    }

    /// <summary>Adds a node; returns it.</summary>
    public Node AddNode(Node node)
    {
        Nodes.Add(node);
        return node;
    }

    /// <summary>This graph and every nested subgraph, depth first, each once.</summary>
    public IEnumerable<Graph> SelfAndSubgraphs()
    {
        var seen = new HashSet<Graph>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<Graph>();
        stack.Push(this);
        while (stack.Count > 0)
        {
            var g = stack.Pop();
            if (!seen.Add(g)) continue;
            yield return g;
            var children = g.Nodes.SelectMany(n => n.Subgraphs).ToList();
            for (int i = children.Count - 1; i >= 0; i--) stack.Push(children[i]);
        }
    }

    /// <summary>
    /// A structural copy: new node, value-info and initializer collections (subgraphs copied too) that share the
    /// tensors themselves. Editing the copy's structure leaves this graph unchanged.
    /// </summary>
    public Graph Clone()
    {
        var g = new Graph { Name = Name, DocString = DocString };
        g.Inputs.AddRange(Inputs.Select(CloneValue));
        g.Outputs.AddRange(Outputs.Select(CloneValue));
        g.ValueInfos.AddRange(ValueInfos.Select(CloneValue));
        foreach (var (k, t) in Initializers) g.Initializers.Add(k, t);
        g.QuantizationAnnotations.AddRange(QuantizationAnnotations);
        g.Metadata.AddRange(Metadata);
        foreach (var n in Nodes)
        {
            var c = new Node(n.OpType, n.Inputs, n.Outputs, n.Name, n.Domain) { Overload = n.Overload, DocString = n.DocString };
            c.Metadata.AddRange(n.Metadata);
            foreach (var a in n.Attributes.Values)
                c.Attributes.Add(a.Name, a.Kind switch
                {
                    AttributeKind.Graph => Attribute.Of(a.Name, a.AsGraph().Clone()),
                    AttributeKind.Graphs => Attribute.Of(a.Name, a.AsGraphs().Select(x => x.Clone()).ToArray()),
                    _ => a,
                });
            g.Nodes.Add(c);
        }
        return g;

        static ValueInfo CloneValue(ValueInfo v)
        {
            var c = new ValueInfo(v.Name, v.Type) { DocString = v.DocString };
            c.Metadata.AddRange(v.Metadata);
            return c;
        }
    }

    /// <summary>The declared type of <paramref name="name"/> from inputs, outputs, value infos or initializers, or null.</summary>
    public TypeInfo? FindDeclaredType(string name)
    {
        if (Initializers.TryGetValue(name, out var t)) return new TensorTypeInfo(t.DType, t.Shape);
        foreach (var list in new[] { Inputs, ValueInfos, Outputs })
            foreach (var v in list)
                if (v.Name == name && v.Type is not null) return v.Type;
        return null;
    }

    /// <inheritdoc/>
    public override string ToString() => $"graph '{Name}' ({Nodes.Count} nodes, {Initializers.Count} initializers)";
}

/// <summary>A model: a main graph plus the opsets it uses, producer information, metadata and local functions.</summary>
public sealed class Model
{
    /// <summary>Creates a model around <paramref name="graph"/>.</summary>
    public Model(Graph graph) => Graph = graph;

    /// <summary>The main graph.</summary>
    public Graph Graph { get; set; }

    /// <summary>ONNX IR version of the file format.</summary>
    public long IrVersion { get; set; } = 8;

    /// <summary>Operator sets in use; the default domain is the empty string.</summary>
    public List<OpsetImport> OpsetImports { get; } = [];

    /// <summary>Tool that produced the model.</summary>
    public string ProducerName { get; set; } = "";

    /// <summary>Version of the producing tool.</summary>
    public string ProducerVersion { get; set; } = "";

    /// <summary>Model namespace (reverse DNS).</summary>
    public string Domain { get; set; } = "";

    /// <summary>Model version number.</summary>
    public long ModelVersion { get; set; }

    /// <summary>Documentation string.</summary>
    public string DocString { get; set; } = "";

    /// <summary>Key/value metadata, in file order.</summary>
    public List<KeyValuePair<string, string>> Metadata { get; } = [];

    /// <summary>Model-local functions.</summary>
    public List<Function> Functions { get; } = [];

    /// <summary>Where the model was read from, if it came from a file.</summary>
    public string? SourcePath { get; set; }

    /// <summary>Opset version imported for <paramref name="domain"/> (empty or <c>ai.onnx</c> for the default), or null.</summary>
    public long? OpsetVersion(string domain = "")
    {
        foreach (var o in OpsetImports)
            if (o.Domain == domain || (domain is "" or "ai.onnx" && o.Domain is "" or "ai.onnx")) return o.Version;
        return null;
    }
}
