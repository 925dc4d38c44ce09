namespace OnDevice.Core;

/// <summary>One operator application: op type and domain, named inputs and outputs, attributes.</summary>
public sealed class Node
{
    /// <summary>Creates a node.</summary>
    public Node(string opType, IEnumerable<string> inputs, IEnumerable<string> outputs, string name = "", string domain = "")
    {
        OpType = opType;
        Inputs = [.. inputs];
        Outputs = [.. outputs];
        Name = name;
        Domain = domain;
    }

    /// <summary>Node name (may be empty).</summary>
    public string Name { get; set; }

    /// <summary>Operator type, e.g. <c>Conv</c>.</summary>
    public string OpType { get; set; }

    /// <summary>Operator domain; empty means the default ONNX domain (<c>ai.onnx</c>).</summary>
    public string Domain { get; set; }

    /// <summary>Function overload identifier (rarely used).</summary>
    public string Overload { get; set; } = "";

    /// <summary>Input value names; an empty string marks an omitted optional input.</summary>
    public List<string> Inputs { get; }

    /// <summary>Output value names; an empty string marks an omitted optional output.</summary>
    public List<string> Outputs { get; }

    /// <summary>Attributes by name, in file order.</summary>
    public OrderedDictionary<string, Attribute> Attributes { get; } = new(StringComparer.Ordinal);

    /// <summary>Documentation string.</summary>
    public string DocString { get; set; } = "";

    /// <summary>Key/value metadata.</summary>
    public List<KeyValuePair<string, string>> Metadata { get; } = [];

    /// <summary>True for the default ONNX domain (empty or <c>ai.onnx</c>).</summary>
    public bool IsDefaultDomain => Domain is "" or "ai.onnx";

    /// <summary>Adds or replaces an attribute; returns this node for chaining.</summary>
    public Node With(Attribute attribute)
    {
        Attributes[attribute.Name] = attribute;
        return this;
    }

    /// <summary>The attribute named <paramref name="name"/>, or null.</summary>
    public Attribute? Attr(string name) => Attributes.TryGetValue(name, out var a) ? a : null;

    /// <summary>Integer attribute or default.</summary>
    public long GetInt(string name, long fallback) => Attr(name)?.AsInt() ?? fallback;

    /// <summary>Float attribute or default.</summary>
    public float GetFloat(string name, float fallback) => Attr(name)?.AsFloat() ?? fallback;

    /// <summary>String attribute or default.</summary>
    public string GetString(string name, string fallback) => Attr(name)?.AsString() ?? fallback;

    /// <summary>Integer list attribute or null.</summary>
    public long[]? GetInts(string name) => Attr(name)?.AsInts();

    /// <summary>All subgraphs held by this node's attributes.</summary>
    public IEnumerable<Graph> Subgraphs => Attributes.Values.SelectMany(a => a.Subgraphs);

    /// <summary>A short label for messages: <c>'name' (OpType)</c>, or the first output when unnamed.</summary>
    public string Label => Name.Length > 0 ? $"'{Name}' ({OpType})" : $"{OpType} -> '{Outputs.FirstOrDefault() ?? ""}'";

    /// <inheritdoc/>
    public override string ToString() => $"{Label}({string.Join(", ", Inputs)}) -> {string.Join(", ", Outputs)}";
}

/// <summary>An operator set a model uses: domain and version.</summary>
public readonly record struct OpsetImport(string Domain, long Version);

/// <summary>A model-local function (ONNX <c>FunctionProto</c>).</summary>
public sealed class Function
{
    /// <summary>Function name (the op type that calls it).</summary>
    public string Name { get; set; } = "";
    /// <summary>Function domain.</summary>
    public string Domain { get; set; } = "";
    /// <summary>Overload identifier.</summary>
    public string Overload { get; set; } = "";
    /// <summary>Formal input names.</summary>
    public List<string> Inputs { get; } = [];
    /// <summary>Formal output names.</summary>
    public List<string> Outputs { get; } = [];
    /// <summary>Names of attributes without defaults.</summary>
    public List<string> AttributeNames { get; } = [];
    /// <summary>Attributes with default values.</summary>
    public List<Attribute> AttributeDefaults { get; } = [];
    /// <summary>Body nodes.</summary>
    public List<Node> Nodes { get; } = [];
    /// <summary>Type annotations for body values.</summary>
    public List<ValueInfo> ValueInfos { get; } = [];
    /// <summary>Operator sets used by the body.</summary>
    public List<OpsetImport> OpsetImports { get; } = [];
    /// <summary>Documentation string.</summary>
    public string DocString { get; set; } = "";
    /// <summary>Key/value metadata.</summary>
    public List<KeyValuePair<string, string>> Metadata { get; } = [];
}
