using System.Text;

namespace OnDevice.Core;

/// <summary>The kind of value an <see cref="Attribute"/> holds (the ONNX attribute types).</summary>
public enum AttributeKind
{
    /// <summary>A 32-bit float.</summary>
    Float = 1,
    /// <summary>A 64-bit integer.</summary>
    Int = 2,
    /// <summary>A byte string (usually UTF-8 text).</summary>
    String = 3,
    /// <summary>A tensor.</summary>
    Tensor = 4,
    /// <summary>A subgraph (If/Loop/Scan bodies).</summary>
    Graph = 5,
    /// <summary>A list of floats.</summary>
    Floats = 6,
    /// <summary>A list of integers.</summary>
    Ints = 7,
    /// <summary>A list of byte strings.</summary>
    Strings = 8,
    /// <summary>A list of tensors.</summary>
    Tensors = 9,
    /// <summary>A list of subgraphs.</summary>
    Graphs = 10,
    /// <summary>A sparse tensor (carried opaquely).</summary>
    SparseTensor = 11,
    /// <summary>A list of sparse tensors (carried opaquely).</summary>
    SparseTensors = 12,
    /// <summary>A type.</summary>
    Type = 13,
    /// <summary>A list of types.</summary>
    Types = 14,
}

/// <summary>A named node attribute of one of the ONNX attribute kinds.</summary>
public sealed class Attribute
{
    private Attribute(string name, AttributeKind kind, object value)
    {
        Name = name;
        Kind = kind;
        Value = value;
    }

    /// <summary>Attribute name.</summary>
    public string Name { get; }

    /// <summary>Which kind of value this holds.</summary>
    public AttributeKind Kind { get; }

    /// <summary>The value: float, long, byte[], Tensor, Graph, float[], long[], byte[][], Tensor[], Graph[], TypeInfo, TypeInfo[], or raw bytes for sparse kinds.</summary>
    public object Value { get; }

    /// <summary>In a function body, the name of the function attribute this one refers to.</summary>
    public string RefAttributeName { get; set; } = "";

    /// <summary>Documentation string.</summary>
    public string DocString { get; set; } = "";

    /// <summary>A float attribute.</summary>
    public static Attribute Of(string name, float v) => new(name, AttributeKind.Float, v);
    /// <summary>An integer attribute.</summary>
    public static Attribute Of(string name, long v) => new(name, AttributeKind.Int, v);
    /// <summary>A string attribute (UTF-8).</summary>
    public static Attribute Of(string name, string v) => new(name, AttributeKind.String, Encoding.UTF8.GetBytes(v));
    /// <summary>A string attribute of raw bytes.</summary>
    public static Attribute OfBytes(string name, byte[] v) => new(name, AttributeKind.String, v);
    /// <summary>A tensor attribute.</summary>
    public static Attribute Of(string name, Tensor v) => new(name, AttributeKind.Tensor, v);
    /// <summary>A subgraph attribute.</summary>
    public static Attribute Of(string name, Graph v) => new(name, AttributeKind.Graph, v);
    /// <summary>A float list attribute.</summary>
    public static Attribute Of(string name, float[] v) => new(name, AttributeKind.Floats, v);
    /// <summary>An integer list attribute.</summary>
    public static Attribute Of(string name, long[] v) => new(name, AttributeKind.Ints, v);
    /// <summary>A string list attribute (UTF-8).</summary>
    public static Attribute Of(string name, string[] v) => new(name, AttributeKind.Strings, v.Select(Encoding.UTF8.GetBytes).ToArray());
    /// <summary>A byte-string list attribute.</summary>
    public static Attribute OfBytes(string name, byte[][] v) => new(name, AttributeKind.Strings, v);
    /// <summary>A tensor list attribute.</summary>
    public static Attribute Of(string name, Tensor[] v) => new(name, AttributeKind.Tensors, v);
    /// <summary>A subgraph list attribute.</summary>
    public static Attribute Of(string name, Graph[] v) => new(name, AttributeKind.Graphs, v);
    /// <summary>A type attribute.</summary>
    public static Attribute Of(string name, TypeInfo v) => new(name, AttributeKind.Type, v);
    /// <summary>A type list attribute.</summary>
    public static Attribute Of(string name, TypeInfo[] v) => new(name, AttributeKind.Types, v);
    /// <summary>A sparse tensor attribute kept as its serialized bytes.</summary>
    public static Attribute OfSparse(string name, byte[] serialized) => new(name, AttributeKind.SparseTensor, serialized);
    /// <summary>A sparse tensor list attribute kept as serialized bytes.</summary>
    public static Attribute OfSparse(string name, byte[][] serialized) => new(name, AttributeKind.SparseTensors, serialized);

    /// <summary>The float value.</summary>
    public float AsFloat() => Kind == AttributeKind.Float ? (float)Value : throw Mismatch("float");
    /// <summary>The integer value.</summary>
    public long AsInt() => Kind == AttributeKind.Int ? (long)Value : throw Mismatch("int");
    /// <summary>The string value decoded as UTF-8.</summary>
    public string AsString() => Kind == AttributeKind.String ? Encoding.UTF8.GetString((byte[])Value) : throw Mismatch("string");
    /// <summary>The tensor value.</summary>
    public Tensor AsTensor() => Kind == AttributeKind.Tensor ? (Tensor)Value : throw Mismatch("tensor");
    /// <summary>The subgraph value.</summary>
    public Graph AsGraph() => Kind == AttributeKind.Graph ? (Graph)Value : throw Mismatch("graph");
    /// <summary>The float list.</summary>
    public float[] AsFloats() => Kind == AttributeKind.Floats ? (float[])Value : throw Mismatch("floats");
    /// <summary>The integer list.</summary>
    public long[] AsInts() => Kind == AttributeKind.Ints ? (long[])Value : throw Mismatch("ints");
    /// <summary>The string list decoded as UTF-8.</summary>
    public string[] AsStrings() => Kind == AttributeKind.Strings ? ((byte[][])Value).Select(Encoding.UTF8.GetString).ToArray() : throw Mismatch("strings");
    /// <summary>The tensor list.</summary>
    public Tensor[] AsTensors() => Kind == AttributeKind.Tensors ? (Tensor[])Value : throw Mismatch("tensors");
    /// <summary>The subgraph list.</summary>
    public Graph[] AsGraphs() => Kind == AttributeKind.Graphs ? (Graph[])Value : throw Mismatch("graphs");

    /// <summary>Subgraphs held by this attribute (empty for non-graph kinds).</summary>
    public IEnumerable<Graph> Subgraphs => Kind switch
    {
        AttributeKind.Graph => [(Graph)Value],
        AttributeKind.Graphs => (Graph[])Value,
        _ => [],
    };

    private InvalidOperationException Mismatch(string wanted) =>
        new($"attribute '{Name}' is {Kind.ToString().ToLowerInvariant()}, not {wanted}");

    /// <inheritdoc/>
    public override string ToString() => Kind switch
    {
        AttributeKind.Float or AttributeKind.Int => $"{Name}={Value}",
        AttributeKind.String => $"{Name}=\"{AsString()}\"",
        AttributeKind.Ints => $"{Name}=[{string.Join(",", AsInts())}]",
        AttributeKind.Floats => $"{Name}=[{string.Join(",", AsFloats())}]",
        AttributeKind.Tensor => $"{Name}={AsTensor()}",
        _ => $"{Name}=<{Kind.ToString().ToLowerInvariant()}>",
    };
}
