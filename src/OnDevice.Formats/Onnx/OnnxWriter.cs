using Google.Protobuf;
using OnDevice.Core;
using OnDevice.Formats.Onnx.Proto;

namespace OnDevice.Formats.Onnx;

/// <summary>Where the writer puts tensor bytes.</summary>
public enum ExternalDataMode
{
    /// <summary>Inline unless the file would pass protobuf's 2 GiB limit; then large tensors go to a side file.</summary>
    Auto,
    /// <summary>Every tensor inline (fails beyond 2 GiB).</summary>
    Never,
    /// <summary>Tensors of at least <see cref="OnnxWriteOptions.ExternalThresholdBytes"/> go to a side file.</summary>
    Always,
}

/// <summary>Options for <see cref="OnnxWriter"/>.</summary>
public sealed record OnnxWriteOptions
{
    /// <summary>Whether tensor bytes go inline or into an external data file.</summary>
    public ExternalDataMode ExternalData { get; init; } = ExternalDataMode.Auto;

    /// <summary>Smallest tensor written externally when external data is used.</summary>
    public long ExternalThresholdBytes { get; init; } = 1024;

    /// <summary>Side file name (beside the model); default <c>&lt;model file name&gt;.data</c>.</summary>
    public string? ExternalFileName { get; init; }

    /// <summary>Alignment of each tensor in the side file, so it can be memory-mapped and used in place.</summary>
    public int ExternalAlignment { get; init; } = 4096;

    /// <summary>Default options.</summary>
    public static OnnxWriteOptions Default { get; } = new();
}

/// <summary>
/// Writes the OnDevice IR as an ONNX model file (the schema in <c>Onnx/onnx.proto</c>). Tensor bytes are
/// referenced, not copied, while the message is built; files are written to a temporary name and renamed.
/// </summary>
public static class OnnxWriter
{
    // Headroom below protobuf's 2 GiB message limit for everything that is not tensor bytes.
    private const long InlineLimitBytes = int.MaxValue - (64L << 20);

    /// <summary>Writes <paramref name="model"/> to <paramref name="path"/> atomically (and its external data file, if any).</summary>
    public static void Write(Model model, string path, OnnxWriteOptions? options = null)
    {
        options ??= OnnxWriteOptions.Default;
        var full = Path.GetFullPath(path);
        long total = ModelSummary.Constants(model.Graph).Sum(t => t.ByteLength);
        bool external = options.ExternalData switch
        {
            ExternalDataMode.Always => true,
            ExternalDataMode.Never => false,
            _ => total > InlineLimitBytes,
        };
        if (!external && total > InlineLimitBytes)
            throw new ModelFormatException(path, $"the model holds {total} bytes of tensors, more than fits in one ONNX protobuf (2 GiB); write with external data");

        ExternalSink? sink = null;
        if (external)
        {
            var name = options.ExternalFileName ?? Path.GetFileName(full) + ".data";
            if (name.Contains('/') || name.Contains('\\') || name is "." or "..")
                throw new ArgumentException($"external data file name '{name}' must be a plain file name", nameof(options));
            sink = new ExternalSink(name, options.ExternalThresholdBytes, options.ExternalAlignment);
        }
        var proto = ToProto(model, sink);
        if (sink is not null)
        {
            var dataPath = Path.Combine(Path.GetDirectoryName(full)!, sink.FileName);
            AtomicFile.Write(dataPath, sink.WriteTo);
        }
        AtomicFile.Write(full, fs =>
        {
            using var cos = new CodedOutputStream(fs, leaveOpen: true);
            proto.WriteTo(cos);
            cos.Flush();
        });
    }

    /// <summary>Serializes <paramref name="model"/> with every tensor inline.</summary>
    public static byte[] ToBytes(Model model) => ToProto(model, null).ToByteArray();

    /// <summary>Builds the protobuf message for <paramref name="model"/> (tensor bytes are wrapped, not copied).</summary>
    internal static ModelProto ToProto(Model model, ExternalSink? sink)
    {
        var p = new ModelProto
        {
            IrVersion = model.IrVersion,
            Graph = ToProto(model.Graph, sink),
        };
        if (model.ProducerName.Length > 0) p.ProducerName = model.ProducerName;
        if (model.ProducerVersion.Length > 0) p.ProducerVersion = model.ProducerVersion;
        if (model.Domain.Length > 0) p.Domain = model.Domain;
        if (model.ModelVersion != 0) p.ModelVersion = model.ModelVersion;
        if (model.DocString.Length > 0) p.DocString = model.DocString;
        foreach (var o in model.OpsetImports) p.OpsetImport.Add(ToProto(o));
        p.MetadataProps.AddRange(model.Metadata.Select(Entry));
        foreach (var f in model.Functions) p.Functions.Add(ToProto(f, sink));
        return p;
    }

    private static OperatorSetIdProto ToProto(OpsetImport o) => new() { Domain = o.Domain, Version = o.Version };

    private static GraphProto ToProto(Graph g, ExternalSink? sink)
    {
        var p = new GraphProto();
        if (g.Name.Length > 0) p.Name = g.Name;
        if (g.DocString.Length > 0) p.DocString = g.DocString;
        foreach (var n in g.Nodes) p.Node.Add(ToProto(n, sink));
        foreach (var t in g.Initializers.Values) p.Initializer.Add(ToProto(t, sink));
        foreach (var v in g.Inputs) p.Input.Add(ToProto(v));
        foreach (var v in g.Outputs) p.Output.Add(ToProto(v));
        foreach (var v in g.ValueInfos) p.ValueInfo.Add(ToProto(v));
        foreach (var (name, entries) in g.QuantizationAnnotations)
        {
            var a = new TensorAnnotation { TensorName = name };
            a.QuantParameterTensorNames.AddRange(entries.Select(Entry));
            p.QuantizationAnnotation.Add(a);
        }
        p.MetadataProps.AddRange(g.Metadata.Select(Entry));
        return p;
    }

    private static NodeProto ToProto(Node n, ExternalSink? sink)
    {
        var p = new NodeProto { OpType = n.OpType };
        p.Input.AddRange(n.Inputs);
        p.Output.AddRange(n.Outputs);
        if (n.Name.Length > 0) p.Name = n.Name;
        if (n.Domain.Length > 0) p.Domain = n.Domain;
        if (n.Overload.Length > 0) p.Overload = n.Overload;
        if (n.DocString.Length > 0) p.DocString = n.DocString;
        foreach (var a in n.Attributes.Values) p.Attribute.Add(ToProto(a, sink));
        p.MetadataProps.AddRange(n.Metadata.Select(Entry));
        return p;
    }

    private static AttributeProto ToProto(Core.Attribute a, ExternalSink? sink)
    {
        var p = new AttributeProto { Name = a.Name, Type = (AttributeProto.Types.AttributeType)(int)a.Kind };
        if (a.RefAttributeName.Length > 0) p.RefAttrName = a.RefAttributeName;
        if (a.DocString.Length > 0) p.DocString = a.DocString;
        switch (a.Kind)
        {
            case AttributeKind.Float: p.F = a.AsFloat(); break;
            case AttributeKind.Int: p.I = a.AsInt(); break;
            case AttributeKind.String: p.S = ByteString.CopyFrom((byte[])a.Value); break;
            case AttributeKind.Tensor: p.T = ToProto(a.AsTensor(), sink); break;
            case AttributeKind.Graph: p.G = ToProto(a.AsGraph(), sink); break;
            case AttributeKind.Floats: p.Floats.AddRange(a.AsFloats()); break;
            case AttributeKind.Ints: p.Ints.AddRange(a.AsInts()); break;
            case AttributeKind.Strings: p.Strings.AddRange(((byte[][])a.Value).Select(ByteString.CopyFrom)); break;
            case AttributeKind.Tensors: p.Tensors.AddRange(a.AsTensors().Select(t => ToProto(t, sink))); break;
            case AttributeKind.Graphs: p.Graphs.AddRange(a.AsGraphs().Select(g => ToProto(g, sink))); break;
            case AttributeKind.SparseTensor: p.SparseTensor = SparseTensorProto.Parser.ParseFrom((byte[])a.Value); break;
            case AttributeKind.SparseTensors: p.SparseTensors.AddRange(((byte[][])a.Value).Select(b => SparseTensorProto.Parser.ParseFrom(b))); break;
            case AttributeKind.Type: p.Tp = ToProto((TypeInfo)a.Value); break;
            case AttributeKind.Types: p.TypeProtos.AddRange(((TypeInfo[])a.Value).Select(ToProto)); break;
        }
        return p;
    }

    /// <summary>A tensor as a <c>TensorProto</c>: numeric bytes as <c>raw_data</c> (or external), strings as <c>string_data</c>.</summary>
    internal static TensorProto ToProto(Tensor t, ExternalSink? sink)
    {
        var p = new TensorProto { DataType = (int)t.DType };
        p.Dims.AddRange(t.Dims);
        if (t.Name.Length > 0) p.Name = t.Name;
        if (t.DocString.Length > 0) p.DocString = t.DocString;
        if (t.DType == DType.String)
            p.StringData.AddRange(t.Strings.Select(ByteString.CopyFrom));
        else if (sink is not null && t.ByteLength >= sink.ThresholdBytes)
        {
            long offset = sink.Add(t.Memory);
            p.DataLocation = TensorProto.Types.DataLocation.External;
            p.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = sink.FileName });
            p.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            p.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = t.ByteLength.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        }
        else
            p.RawData = UnsafeByteOperations.UnsafeWrap(t.Memory);
        return p;
    }

    private static ValueInfoProto ToProto(ValueInfo v)
    {
        var p = new ValueInfoProto { Name = v.Name };
        if (v.Type is not null) p.Type = ToProto(v.Type);
        if (v.DocString.Length > 0) p.DocString = v.DocString;
        p.MetadataProps.AddRange(v.Metadata.Select(Entry));
        return p;
    }

    private static TypeProto ToProto(TypeInfo t)
    {
        var p = new TypeProto();
        switch (t)
        {
            case TensorTypeInfo tt:
                p.TensorType = new TypeProto.Types.Tensor { ElemType = (int)tt.ElementType };
                if (tt.Shape is not null) p.TensorType.Shape = ToProto(tt.Shape);
                break;
            case SparseTensorTypeInfo st:
                p.SparseTensorType = new TypeProto.Types.SparseTensor { ElemType = (int)st.ElementType };
                if (st.Shape is not null) p.SparseTensorType.Shape = ToProto(st.Shape);
                break;
            case SequenceTypeInfo s:
                p.SequenceType = new TypeProto.Types.Sequence();
                if (s.ElementType is not null) p.SequenceType.ElemType = ToProto(s.ElementType);
                break;
            case OptionalTypeInfo o:
                p.OptionalType = new TypeProto.Types.Optional();
                if (o.ElementType is not null) p.OptionalType.ElemType = ToProto(o.ElementType);
                break;
            case MapTypeInfo m:
                p.MapType = new TypeProto.Types.Map { KeyType = (int)m.KeyType };
                if (m.ValueType is not null) p.MapType.ValueType = ToProto(m.ValueType);
                break;
        }
        if (t.Denotation.Length > 0) p.Denotation = t.Denotation;
        return p;
    }

    private static TensorShapeProto ToProto(Shape s)
    {
        var p = new TensorShapeProto();
        foreach (var d in s.Dims)
        {
            var dp = new TensorShapeProto.Types.Dimension();
            if (d.IsKnown) dp.DimValue = d.Value;
            else if (d.Symbol is not null) dp.DimParam = d.Symbol;
            p.Dim.Add(dp);
        }
        return p;
    }

    private static FunctionProto ToProto(Function f, ExternalSink? sink)
    {
        var p = new FunctionProto { Name = f.Name };
        if (f.Domain.Length > 0) p.Domain = f.Domain;
        if (f.Overload.Length > 0) p.Overload = f.Overload;
        if (f.DocString.Length > 0) p.DocString = f.DocString;
        p.Input.AddRange(f.Inputs);
        p.Output.AddRange(f.Outputs);
        p.Attribute.AddRange(f.AttributeNames);
        p.AttributeProto.AddRange(f.AttributeDefaults.Select(a => ToProto(a, sink)));
        p.Node.AddRange(f.Nodes.Select(n => ToProto(n, sink)));
        p.ValueInfo.AddRange(f.ValueInfos.Select(ToProto));
        p.OpsetImport.AddRange(f.OpsetImports.Select(ToProto));
        p.MetadataProps.AddRange(f.Metadata.Select(Entry));
        return p;
    }

    private static StringStringEntryProto Entry(KeyValuePair<string, string> e) => new() { Key = e.Key, Value = e.Value };

    /// <summary>Collects tensors destined for the external data file and lays them out aligned.</summary>
    internal sealed class ExternalSink(string fileName, long thresholdBytes, int alignment)
    {
        private readonly List<(long Offset, ReadOnlyMemory<byte> Bytes)> _parts = [];
        private long _end;

        public string FileName { get; } = fileName;

        public long ThresholdBytes { get; } = thresholdBytes;

        public long Add(ReadOnlyMemory<byte> bytes)
        {
            long offset = (_end + alignment - 1) / alignment * alignment;
            _parts.Add((offset, bytes));
            _end = offset + bytes.Length;
            return offset;
        }

        public void WriteTo(FileStream fs)
        {
            foreach (var (offset, bytes) in _parts)
            {
                if (fs.Position < offset) fs.Write(new byte[offset - fs.Position]);
                fs.Write(bytes.Span);
            }
        }
    }
}
