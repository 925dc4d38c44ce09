using System.Runtime.InteropServices;
using System.Text;
using OnDevice.Core;

namespace OnDevice.Formats.Onnx;

/// <summary>Options for <see cref="OnnxReader"/>.</summary>
public sealed record OnnxReadOptions
{
    /// <summary>Turn <c>Constant</c> nodes into initializers after reading (default false: keep the file's form).</summary>
    public bool LiftConstants { get; init; }

    /// <summary>Memory-map the file so tensor bytes are not copied (default true). When false the file is read into one array.</summary>
    public bool MemoryMap { get; init; } = true;

    /// <summary>Run <see cref="ModelValidator"/> and throw <see cref="ModelFormatException"/> on errors (default false).</summary>
    public bool Validate { get; init; }

    /// <summary>Deepest nesting of subgraphs and types accepted (guards the stack against hostile files).</summary>
    public int MaxNestingDepth { get; init; } = 64;

    /// <summary>Default options.</summary>
    public static OnnxReadOptions Default { get; } = new();
}

/// <summary>
/// Reads ONNX model files into the OnDevice IR. Tensor bytes stored as <c>raw_data</c> or in external data
/// files are slices of memory-mapped files, never copied. Field numbers come from <c>Onnx/onnx.proto</c>.
/// Every fault is a <see cref="ModelFormatException"/> naming the file and what is wrong.
/// </summary>
public static class OnnxReader
{
    /// <summary>Largest ONNX protobuf file accepted (protobuf's own 2 GiB limit; larger models use external data).</summary>
    public const long MaxModelFileBytes = int.MaxValue;

    /// <summary>Reads a model from a file. External data files are resolved in the model's folder and may not leave it.</summary>
    public static Model Read(string path, OnnxReadOptions? options = null)
    {
        options ??= OnnxReadOptions.Default;
        var full = Path.GetFullPath(path);
        ReadOnlyMemory<byte> bytes;
        try
        {
            if (!File.Exists(full))
                throw new ModelFormatException(path, Directory.Exists(full) ? "is a directory, not a model file" : "file not found");
            // The length of what the path leads to (a symbolic link's own length would be the link text's).
            long length;
            using (var handle = File.OpenHandle(full)) length = RandomAccess.GetLength(handle);
            if (length > MaxModelFileBytes)
                throw new ModelFormatException(path, $"file is {length} bytes; an ONNX protobuf cannot exceed 2 GiB (larger models keep tensors in external data files)");
            if (length == 0) throw new ModelFormatException(path, "file is empty");
            bytes = options.MemoryMap ? MappedFile.Open(full).Slice(0, (int)length) : File.ReadAllBytes(full);
        }
        catch (IOException e) { throw new ModelFormatException(path, $"cannot read: {e.Message}", e); }
        catch (UnauthorizedAccessException e) { throw new ModelFormatException(path, $"cannot read: {e.Message}", e); }
        var model = Parse(bytes, path, Path.GetDirectoryName(full), options);
        model.SourcePath = full;
        return model;
    }

    /// <summary>Reads a model from bytes in memory. Tensors alias <paramref name="bytes"/>; external data is refused.</summary>
    public static Model Read(ReadOnlyMemory<byte> bytes, OnnxReadOptions? options = null) =>
        Parse(bytes, null, null, options ?? OnnxReadOptions.Default);

    /// <summary>Reads a file holding one serialized <c>TensorProto</c> (as the ONNX test data sets store inputs and outputs).</summary>
    public static Tensor ReadTensor(string path)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (FileNotFoundException) { throw new ModelFormatException(path, "file not found"); }
        catch (IOException e) { throw new ModelFormatException(path, $"cannot read: {e.Message}", e); }
        try
        {
            var p = new Parser(bytes, Path.GetDirectoryName(Path.GetFullPath(path)), OnnxReadOptions.Default);
            return p.ReadStandaloneTensor();
        }
        catch (InvalidDataException e) { throw new ModelFormatException(path, $"malformed TensorProto: {e.Message}", e); }
        catch (DecoderFallbackException e) { throw new ModelFormatException(path, $"malformed TensorProto: invalid UTF-8 ({e.Message})", e); }
    }

    private static Model Parse(ReadOnlyMemory<byte> bytes, string? path, string? folder, OnnxReadOptions options)
    {
        try
        {
            var p = new Parser(bytes, folder, options);
            var model = p.ReadModel();
            if (options.LiftConstants) ConstantLifting.Lift(model.Graph);
            if (options.Validate)
            {
                var errors = ModelValidator.Validate(model).Where(i => i.Severity == Severity.Error).ToList();
                if (errors.Count > 0) throw new ModelFormatException(path, $"invalid graph: {string.Join("; ", errors.Take(5))}{(errors.Count > 5 ? $" (and {errors.Count - 5} more)" : "")}");
            }
            return model;
        }
        catch (InvalidDataException e) { throw new ModelFormatException(path, $"malformed ONNX: {e.Message}", e); }
        catch (DecoderFallbackException e) { throw new ModelFormatException(path, $"malformed ONNX: a string field is not valid UTF-8 ({e.Message})", e); }
        catch (OverflowException e) { throw new ModelFormatException(path, $"malformed ONNX: a size overflows ({e.Message})", e); }
    }

    private sealed class Parser(ReadOnlyMemory<byte> whole, string? folder, OnnxReadOptions options)
    {
        private static readonly UTF8Encoding StrictUtf8 = new(false, true);
        private readonly Dictionary<string, MappedFile> _external = new(StringComparer.Ordinal);
        private int _depth;

        public Tensor ReadStandaloneTensor()
        {
            var r = new WireReader(whole.Span, 0);
            return ReadTensor(ref r);
        }

        public Model ReadModel()
        {
            var r = new WireReader(whole.Span, 0);
            var model = new Model(new Graph()) { IrVersion = 0 };
            bool sawGraph = false;
            while (!r.End)
            {
                var (f, wt) = r.ReadTag();
                switch (f)
                {
                    case 1: Expect(wt, WireType.Varint, "ModelProto.ir_version"); model.IrVersion = r.ReadInt64(); break;
                    case 2: model.ProducerName = Str(ref r, wt, "ModelProto.producer_name"); break;
                    case 3: model.ProducerVersion = Str(ref r, wt, "ModelProto.producer_version"); break;
                    case 4: model.Domain = Str(ref r, wt, "ModelProto.domain"); break;
                    case 5: Expect(wt, WireType.Varint, "ModelProto.model_version"); model.ModelVersion = r.ReadInt64(); break;
                    case 6: model.DocString = Str(ref r, wt, "ModelProto.doc_string"); break;
                    case 7:
                        Expect(wt, WireType.LengthDelimited, "ModelProto.graph");
                        var gr = r.ReadMessage();
                        model.Graph = ReadGraph(ref gr);
                        sawGraph = true;
                        break;
                    case 8: Expect(wt, WireType.LengthDelimited, "ModelProto.opset_import"); var o = r.ReadMessage(); model.OpsetImports.Add(ReadOpset(ref o)); break;
                    case 14: model.Metadata.Add(Entry(ref r, wt, "ModelProto.metadata_props")); break;
                    case 20: throw Fault("training_info is not supported (this is a training model, not an inference model)", r.Offset);
                    case 25: Expect(wt, WireType.LengthDelimited, "ModelProto.functions"); var fr = r.ReadMessage(); model.Functions.Add(ReadFunction(ref fr)); break;
                    default: r.Skip(wt, f); break;
                }
            }
            if (!sawGraph) throw Fault("the model has no graph (ModelProto.graph is missing)", 0);
            if (model.IrVersion <= 0) throw Fault("ir_version is missing or not positive; this does not look like an ONNX model", 0);
            return model;
        }

        private Graph ReadGraph(ref WireReader r)
        {
            Enter(r.BaseOffset);
            var g = new Graph();
            while (!r.End)
            {
                var (f, wt) = r.ReadTag();
                switch (f)
                {
                    case 1: Expect(wt, WireType.LengthDelimited, "GraphProto.node"); var nr = r.ReadMessage(); g.Nodes.Add(ReadNode(ref nr)); break;
                    case 2: g.Name = Str(ref r, wt, "GraphProto.name"); break;
                    case 5:
                        Expect(wt, WireType.LengthDelimited, "GraphProto.initializer");
                        int at = r.Offset;
                        var tr = r.ReadMessage();
                        var t = ReadTensor(ref tr);
                        if (t.Name.Length == 0) throw Fault("an initializer has no name", at);
                        if (!g.Initializers.TryAdd(t.Name, t)) throw Fault($"initializer '{t.Name}' appears twice in graph '{g.Name}'", at);
                        break;
                    case 15: throw Fault("sparse initializers are not supported; densify them before loading", r.Offset);
                    case 10: g.DocString = Str(ref r, wt, "GraphProto.doc_string"); break;
                    case 11: Expect(wt, WireType.LengthDelimited, "GraphProto.input"); var ir = r.ReadMessage(); g.Inputs.Add(ReadValueInfo(ref ir)); break;
                    case 12: Expect(wt, WireType.LengthDelimited, "GraphProto.output"); var or = r.ReadMessage(); g.Outputs.Add(ReadValueInfo(ref or)); break;
                    case 13: Expect(wt, WireType.LengthDelimited, "GraphProto.value_info"); var vr = r.ReadMessage(); g.ValueInfos.Add(ReadValueInfo(ref vr)); break;
                    case 14: Expect(wt, WireType.LengthDelimited, "GraphProto.quantization_annotation"); var ar = r.ReadMessage(); g.QuantizationAnnotations.Add(ReadAnnotation(ref ar)); break;
                    case 16: g.Metadata.Add(Entry(ref r, wt, "GraphProto.metadata_props")); break;
                    default: r.Skip(wt, f); break;
                }
            }
            _depth--;
            return g;
        }

        private Node ReadNode(ref WireReader r)
        {
            var n = new Node("", [], []);
            int start = r.BaseOffset;
            while (!r.End)
            {
                var (f, wt) = r.ReadTag();
                switch (f)
                {
                    case 1: n.Inputs.Add(Str(ref r, wt, "NodeProto.input")); break;
                    case 2: n.Outputs.Add(Str(ref r, wt, "NodeProto.output")); break;
                    case 3: n.Name = Str(ref r, wt, "NodeProto.name"); break;
                    case 4: n.OpType = Str(ref r, wt, "NodeProto.op_type"); break;
                    case 7: n.Domain = Str(ref r, wt, "NodeProto.domain"); break;
                    case 8: n.Overload = Str(ref r, wt, "NodeProto.overload"); break;
                    case 5:
                        Expect(wt, WireType.LengthDelimited, "NodeProto.attribute");
                        int at = r.Offset;
                        var ar = r.ReadMessage();
                        var a = ReadAttribute(ref ar);
                        if (!n.Attributes.TryAdd(a.Name, a)) throw Fault($"node '{n.Name}' has attribute '{a.Name}' twice", at);
                        break;
                    case 6: n.DocString = Str(ref r, wt, "NodeProto.doc_string"); break;
                    case 9: n.Metadata.Add(Entry(ref r, wt, "NodeProto.metadata_props")); break;
                    default: r.Skip(wt, f); break;
                }
            }
            if (n.OpType.Length == 0) throw Fault($"node '{n.Name}' has no op_type", start);
            return n;
        }

        private Core.Attribute ReadAttribute(ref WireReader r)
        {
            string name = "", refName = "", doc = "";
            int type = -1;
            float? fv = null; long? iv = null; byte[]? sv = null; Tensor? tv = null; Graph? gv = null; TypeInfo? tpv = null; byte[]? sparse = null;
            List<float>? floats = null; List<long>? ints = null; List<byte[]>? strings = null; List<Tensor>? tensors = null;
            List<Graph>? graphs = null; List<TypeInfo>? types = null; List<byte[]>? sparses = null;
            int start = r.BaseOffset;
            while (!r.End)
            {
                var (f, wt) = r.ReadTag();
                switch (f)
                {
                    case 1: name = Str(ref r, wt, "AttributeProto.name"); break;
                    case 21: refName = Str(ref r, wt, "AttributeProto.ref_attr_name"); break;
                    case 13: doc = Str(ref r, wt, "AttributeProto.doc_string"); break;
                    case 20: Expect(wt, WireType.Varint, "AttributeProto.type"); type = r.ReadInt32(); break;
                    case 2: Expect(wt, WireType.Fixed32, "AttributeProto.f"); fv = r.ReadFloat(); break;
                    case 3: Expect(wt, WireType.Varint, "AttributeProto.i"); iv = r.ReadInt64(); break;
                    case 4: Expect(wt, WireType.LengthDelimited, "AttributeProto.s"); sv = r.ReadBytes(out _).ToArray(); break;
                    case 5: Expect(wt, WireType.LengthDelimited, "AttributeProto.t"); var tr = r.ReadMessage(); tv = ReadTensor(ref tr); break;
                    case 6: Expect(wt, WireType.LengthDelimited, "AttributeProto.g"); var gr = r.ReadMessage(); gv = ReadGraph(ref gr); break;
                    case 22: Expect(wt, WireType.LengthDelimited, "AttributeProto.sparse_tensor"); sparse = r.ReadBytes(out _).ToArray(); break;
                    case 14: Expect(wt, WireType.LengthDelimited, "AttributeProto.tp"); var pr = r.ReadMessage(); tpv = ReadType(ref pr); break;
                    case 7: ReadFloats(ref r, wt, floats ??= [], "AttributeProto.floats"); break;
                    case 8: ReadVarints(ref r, wt, ints ??= [], "AttributeProto.ints"); break;
                    case 9: Expect(wt, WireType.LengthDelimited, "AttributeProto.strings"); (strings ??= []).Add(r.ReadBytes(out _).ToArray()); break;
                    case 10: Expect(wt, WireType.LengthDelimited, "AttributeProto.tensors"); var tsr = r.ReadMessage(); (tensors ??= []).Add(ReadTensor(ref tsr)); break;
                    case 11: Expect(wt, WireType.LengthDelimited, "AttributeProto.graphs"); var gsr = r.ReadMessage(); (graphs ??= []).Add(ReadGraph(ref gsr)); break;
                    case 23: Expect(wt, WireType.LengthDelimited, "AttributeProto.sparse_tensors"); (sparses ??= []).Add(r.ReadBytes(out _).ToArray()); break;
                    case 15: Expect(wt, WireType.LengthDelimited, "AttributeProto.type_protos"); var tpr = r.ReadMessage(); (types ??= []).Add(ReadType(ref tpr)); break;
                    default: r.Skip(wt, f); break;
                }
            }
            if (name.Length == 0) throw Fault("an attribute has no name", start);
            if (type < 0)
            {
                // Files from before AttributeProto.type existed: infer the kind from the field that is set.
                type = fv.HasValue ? 1 : iv.HasValue ? 2 : sv is not null ? 3 : tv is not null ? 4 : gv is not null ? 5
                    : floats is not null ? 6 : ints is not null ? 7 : strings is not null ? 8 : tensors is not null ? 9
                    : graphs is not null ? 10 : sparse is not null ? 11 : sparses is not null ? 12 : tpv is not null ? 13
                    : types is not null ? 14 : refName.Length > 0 ? 0 : throw Fault($"attribute '{name}' has no type and no value", start);
            }
            Core.Attribute a = type switch
            {
                1 => Core.Attribute.Of(name, fv ?? 0f),
                2 => Core.Attribute.Of(name, iv ?? 0L),
                3 => Core.Attribute.OfBytes(name, sv ?? []),
                4 => Core.Attribute.Of(name, tv ?? throw Fault($"attribute '{name}' is of type TENSOR but holds no tensor", start)),
                5 => Core.Attribute.Of(name, gv ?? throw Fault($"attribute '{name}' is of type GRAPH but holds no graph", start)),
                6 => Core.Attribute.Of(name, floats?.ToArray() ?? []),
                7 => Core.Attribute.Of(name, ints?.ToArray() ?? []),
                8 => Core.Attribute.OfBytes(name, strings?.ToArray() ?? []),
                9 => Core.Attribute.Of(name, tensors?.ToArray() ?? []),
                10 => Core.Attribute.Of(name, graphs?.ToArray() ?? []),
                11 => Core.Attribute.OfSparse(name, sparse ?? throw Fault($"attribute '{name}' is of type SPARSE_TENSOR but holds none", start)),
                12 => Core.Attribute.OfSparse(name, sparses?.ToArray() ?? []),
                13 => Core.Attribute.Of(name, tpv ?? throw Fault($"attribute '{name}' is of type TYPE_PROTO but holds no type", start)),
                14 => Core.Attribute.Of(name, types?.ToArray() ?? []),
                0 when refName.Length > 0 => Core.Attribute.OfBytes(name, Array.Empty<byte>()),
                _ => throw Fault($"attribute '{name}' has unknown type {type}", start),
            };
            a.RefAttributeName = refName;
            a.DocString = doc;
            return a;
        }

        private Tensor ReadTensor(ref WireReader r)
        {
            int start = r.BaseOffset;
            var dims = new List<long>();
            int dataType = 0;
            string name = "", doc = "";
            ReadOnlyMemory<byte>? raw = null;
            List<float>? floats = null; List<long>? int32s = null; List<long>? int64s = null; List<double>? doubles = null;
            List<ulong>? uint64s = null; List<byte[]>? strings = null;
            List<KeyValuePair<string, string>>? external = null;
            int location = 0;
            while (!r.End)
            {
                var (f, wt) = r.ReadTag();
                switch (f)
                {
                    case 1: ReadVarints(ref r, wt, dims, "TensorProto.dims"); break;
                    case 2: Expect(wt, WireType.Varint, "TensorProto.data_type"); dataType = r.ReadInt32(); break;
                    case 3: throw Fault("segmented tensors (TensorProto.segment) are not supported", r.Offset);
                    case 4: ReadFloats(ref r, wt, floats ??= [], "TensorProto.float_data"); break;
                    case 5: ReadVarints(ref r, wt, int32s ??= [], "TensorProto.int32_data"); break;
                    case 6: Expect(wt, WireType.LengthDelimited, "TensorProto.string_data"); (strings ??= []).Add(r.ReadBytes(out _).ToArray()); break;
                    case 7: ReadVarints(ref r, wt, int64s ??= [], "TensorProto.int64_data"); break;
                    case 8: name = Str(ref r, wt, "TensorProto.name"); break;
                    case 12: doc = Str(ref r, wt, "TensorProto.doc_string"); break;
                    case 9:
                        Expect(wt, WireType.LengthDelimited, "TensorProto.raw_data");
                        var span = r.ReadBytes(out int off);
                        raw = whole.Slice(off, span.Length);
                        break;
                    case 13: (external ??= []).Add(Entry(ref r, wt, "TensorProto.external_data")); break;
                    case 14: Expect(wt, WireType.Varint, "TensorProto.data_location"); location = r.ReadInt32(); break;
                    case 10: ReadDoubles(ref r, wt, doubles ??= [], "TensorProto.double_data"); break;
                    case 11: ReadUInt64s(ref r, wt, uint64s ??= [], "TensorProto.uint64_data"); break;
                    default: r.Skip(wt, f); break;
                }
            }
            var label = name.Length > 0 ? $"tensor '{name}'" : "a tensor";
            var dtype = (DType)dataType;
            if (!DTypes.IsDefined(dtype))
                throw Fault($"{label} has unsupported data_type {dataType}{(dataType is 14 or 15 ? " (complex)" : dataType is >= 17 and <= 20 or 23 ? " (float8/float4)" : "")}", start);
            foreach (var d in dims)
                if (d < 0) throw Fault($"{label} has negative dimension {d}", start);
            var dimsArr = dims.ToArray();
            long count;
            try { count = Tensor.CountElements(dimsArr); }
            catch (OverflowException) { throw Fault($"{label} has dimensions whose product overflows: {Shape.Of(dimsArr)}", start); }

            Tensor t;
            if (dtype == DType.String)
            {
                var s = strings ?? [];
                if (s.Count != count) throw Fault($"{label} string{Shape.Of(dimsArr)} needs {count} strings, has {s.Count}", start);
                t = Tensor.FromByteStrings([.. s], dimsArr, name);
            }
            else
            {
                long expected = dtype.ByteCount(count);
                if (expected > int.MaxValue) throw Fault($"{label} {dtype.Name()}{Shape.Of(dimsArr)} is {expected} bytes; one tensor may not exceed 2 GiB", start);
                Memory<byte> data;
                if (location == 1 || external is not null)
                {
                    if (location != 1) throw Fault($"{label} has external_data entries but data_location is not EXTERNAL", start);
                    data = ReadExternal(external ?? [], label, expected, start);
                }
                else if (raw is { } rawBytes)
                {
                    if (rawBytes.Length != expected)
                        throw Fault($"{label} {dtype.Name()}{Shape.Of(dimsArr)} has {rawBytes.Length} bytes of raw_data, expected {expected}", start);
                    data = MemoryMarshal.AsMemory(rawBytes);
                }
                else data = TypedData(dtype, count, expected, floats, int32s, int64s, doubles, uint64s, label, start);
                t = Tensor.FromBytes(dtype, dimsArr, data, name);
            }
            t.DocString = doc;
            return t;
        }

        private Memory<byte> TypedData(DType dtype, long count, long expected, List<float>? floats, List<long>? int32s,
            List<long>? int64s, List<double>? doubles, List<ulong>? uint64s, string label, int at)
        {
            var bytes = new byte[expected];
            void CheckCount(int have, string field)
            {
                if (have != count) throw Fault($"{label} {dtype.Name()} needs {count} values, {field} has {have}", at);
            }
            switch (dtype)
            {
                case DType.Float32:
                    CheckCount(floats?.Count ?? 0, "float_data");
                    if (count > 0) MemoryMarshal.AsBytes(CollectionsMarshal.AsSpan(floats)).CopyTo(bytes);
                    break;
                case DType.Float64:
                    CheckCount(doubles?.Count ?? 0, "double_data");
                    if (count > 0) MemoryMarshal.AsBytes(CollectionsMarshal.AsSpan(doubles)).CopyTo(bytes);
                    break;
                case DType.Int64:
                    CheckCount(int64s?.Count ?? 0, "int64_data");
                    if (count > 0) MemoryMarshal.AsBytes(CollectionsMarshal.AsSpan(int64s)).CopyTo(bytes);
                    break;
                case DType.UInt32 or DType.UInt64:
                    CheckCount(uint64s?.Count ?? 0, "uint64_data");
                    for (int i = 0; i < count; i++)
                        if (dtype == DType.UInt64) MemoryMarshal.Write(bytes.AsSpan(i * 8), uint64s![i]);
                        else MemoryMarshal.Write(bytes.AsSpan(i * 4), (uint)uint64s![i]);
                    break;
                case DType.Int4 or DType.UInt4:
                    // int32_data holds one packed byte (two 4-bit values) per entry.
                    if ((int32s?.Count ?? 0) != expected) throw Fault($"{label} {dtype.Name()} needs {expected} packed bytes, int32_data has {int32s?.Count ?? 0}", at);
                    for (int i = 0; i < expected; i++) bytes[i] = (byte)int32s![i];
                    break;
                default:
                    // int32, int16, uint16, int8, uint8, bool, float16 and bfloat16 (as bit patterns) live in int32_data.
                    CheckCount(int32s?.Count ?? 0, "int32_data");
                    int size = dtype.BitsPerElement() / 8;
                    for (int i = 0; i < count; i++)
                    {
                        long v = int32s![i];
                        switch (size)
                        {
                            case 1: bytes[i] = (byte)v; break;
                            case 2: MemoryMarshal.Write(bytes.AsSpan(i * 2), (ushort)v); break;
                            default: MemoryMarshal.Write(bytes.AsSpan(i * 4), (int)v); break;
                        }
                    }
                    break;
            }
            return bytes;
        }

        private Memory<byte> ReadExternal(List<KeyValuePair<string, string>> entries, string label, long expected, int at)
        {
            if (folder is null) throw Fault($"{label} keeps its data in an external file; read the model from a file path so the file can be found", at);
            string? location = null;
            long offset = 0, length = -1;
            foreach (var (k, v) in entries)
            {
                switch (k)
                {
                    case "location": location = v; break;
                    case "offset": if (!long.TryParse(v, out offset) || offset < 0) throw Fault($"{label}: external data offset '{v}' is not a non-negative integer", at); break;
                    case "length": if (!long.TryParse(v, out length) || length < 0) throw Fault($"{label}: external data length '{v}' is not a non-negative integer", at); break;
                }
            }
            if (string.IsNullOrEmpty(location)) throw Fault($"{label}: external data has no location", at);
            if (length >= 0 && length != expected) throw Fault($"{label}: external data length {length} does not match the {expected} bytes its type and shape need", at);
            var file = ConfinedPath(location, label, at);
            if (!_external.TryGetValue(file, out var mapped))
            {
                try { mapped = MappedFile.Open(file); }
                catch (FileNotFoundException) { throw Fault($"{label}: external data file '{location}' not found beside the model", at); }
                catch (IOException e) { throw Fault($"{label}: cannot read external data file '{location}': {e.Message}", at); }
                catch (UnauthorizedAccessException e) { throw Fault($"{label}: cannot read external data file '{location}': {e.Message}", at); }
                _external[file] = mapped;
            }
            if (offset > mapped.Length - expected)
                throw Fault($"{label}: external data [{offset}, {offset + expected}) runs past the end of '{location}' ({mapped.Length} bytes)", at);
            return mapped.Slice(offset, (int)expected);
        }

        private string ConfinedPath(string location, string label, int at)
        {
            if (Path.IsPathRooted(location) || location.Contains('\0'))
                throw Fault($"{label}: external data location '{location}' must be a relative path inside the model's folder", at);
            var root = Path.GetFullPath(folder!);
            var rootWithSep = root.EndsWith(Path.DirectorySeparatorChar) ? root : root + Path.DirectorySeparatorChar;
            var full = Path.GetFullPath(Path.Combine(root, location));
            if (!full.StartsWith(rootWithSep, StringComparison.Ordinal))
                throw Fault($"{label}: external data location '{location}' escapes the model's folder", at);
            // A symbolic link inside the folder must not lead outside it either.
            var info = new FileInfo(full);
            if (info.Exists && info.LinkTarget is not null)
            {
                var target = info.ResolveLinkTarget(returnFinalTarget: true)?.FullName;
                if (target is null || !target.StartsWith(rootWithSep, StringComparison.Ordinal))
                    throw Fault($"{label}: external data location '{location}' is a link that leads outside the model's folder", at);
            }
            return full;
        }

        private ValueInfo ReadValueInfo(ref WireReader r)
        {
            var v = new ValueInfo("");
            while (!r.End)
            {
                var (f, wt) = r.ReadTag();
                switch (f)
                {
                    case 1: v.Name = Str(ref r, wt, "ValueInfoProto.name"); break;
                    case 2: Expect(wt, WireType.LengthDelimited, "ValueInfoProto.type"); var tr = r.ReadMessage(); v.Type = ReadTypeOrNull(ref tr); break;
                    case 3: v.DocString = Str(ref r, wt, "ValueInfoProto.doc_string"); break;
                    case 4: v.Metadata.Add(Entry(ref r, wt, "ValueInfoProto.metadata_props")); break;
                    default: r.Skip(wt, f); break;
                }
            }
            return v;
        }

        private TypeInfo ReadType(ref WireReader r) => ReadTypeOrNull(ref r) ?? new TensorTypeInfo(DType.Undefined, null);

        /// <summary>A type, or null for an empty TypeProto (one that says nothing).</summary>
        private TypeInfo? ReadTypeOrNull(ref WireReader r)
        {
            Enter(r.BaseOffset);
            TypeInfo? t = null;
            string denotation = "";
            while (!r.End)
            {
                var (f, wt) = r.ReadTag();
                switch (f)
                {
                    case 1 or 8:
                        Expect(wt, WireType.LengthDelimited, f == 1 ? "TypeProto.tensor_type" : "TypeProto.sparse_tensor_type");
                        var tr = r.ReadMessage();
                        var (elem, shape) = ReadTensorType(ref tr);
                        t = f == 1 ? new TensorTypeInfo(elem, shape) : new SparseTensorTypeInfo(elem, shape);
                        break;
                    case 4 or 9:
                        Expect(wt, WireType.LengthDelimited, f == 4 ? "TypeProto.sequence_type" : "TypeProto.optional_type");
                        var sr = r.ReadMessage();
                        TypeInfo? inner = null;
                        while (!sr.End)
                        {
                            var (sf, swt) = sr.ReadTag();
                            if (sf == 1) { Expect(swt, WireType.LengthDelimited, "elem_type"); var er = sr.ReadMessage(); inner = ReadType(ref er); }
                            else sr.Skip(swt, sf);
                        }
                        t = f == 4 ? new SequenceTypeInfo(inner) : new OptionalTypeInfo(inner);
                        break;
                    case 5:
                        Expect(wt, WireType.LengthDelimited, "TypeProto.map_type");
                        var mr = r.ReadMessage();
                        int key = 0;
                        TypeInfo? value = null;
                        while (!mr.End)
                        {
                            var (mf, mwt) = mr.ReadTag();
                            if (mf == 1) { Expect(mwt, WireType.Varint, "TypeProto.Map.key_type"); key = mr.ReadInt32(); }
                            else if (mf == 2) { Expect(mwt, WireType.LengthDelimited, "TypeProto.Map.value_type"); var vr = mr.ReadMessage(); value = ReadType(ref vr); }
                            else mr.Skip(mwt, mf);
                        }
                        t = new MapTypeInfo((DType)key, value);
                        break;
                    case 6: denotation = Str(ref r, wt, "TypeProto.denotation"); break;
                    default: r.Skip(wt, f); break;
                }
            }
            _depth--;
            if (t is null && denotation.Length == 0) return null;
            t ??= new TensorTypeInfo(DType.Undefined, null);
            return denotation.Length > 0 ? t with { Denotation = denotation } : t;
        }

        private (DType, Shape?) ReadTensorType(ref WireReader r)
        {
            int elem = 0;
            Shape? shape = null;
            while (!r.End)
            {
                var (f, wt) = r.ReadTag();
                if (f == 1) { Expect(wt, WireType.Varint, "TypeProto.Tensor.elem_type"); elem = r.ReadInt32(); }
                else if (f == 2)
                {
                    Expect(wt, WireType.LengthDelimited, "TypeProto.Tensor.shape");
                    var sr = r.ReadMessage();
                    var dims = new List<Dim>();
                    while (!sr.End)
                    {
                        var (sf, swt) = sr.ReadTag();
                        if (sf != 1) { sr.Skip(swt, sf); continue; }
                        Expect(swt, WireType.LengthDelimited, "TensorShapeProto.dim");
                        var dr = sr.ReadMessage();
                        var dim = Dim.Unknown;
                        while (!dr.End)
                        {
                            var (df, dwt) = dr.ReadTag();
                            if (df == 1) { Expect(dwt, WireType.Varint, "Dimension.dim_value"); long v = dr.ReadInt64(); dim = v >= 0 ? Dim.Of(v) : Dim.Unknown; }
                            else if (df == 2) { var p = Str(ref dr, dwt, "Dimension.dim_param"); dim = p.Length > 0 ? Dim.Sym(p) : Dim.Unknown; }
                            else dr.Skip(dwt, df);
                        }
                        dims.Add(dim);
                    }
                    shape = new Shape(dims);
                }
                else r.Skip(wt, f);
            }
            return ((DType)elem, shape);
        }

        private OpsetImport ReadOpset(ref WireReader r)
        {
            string domain = "";
            long version = 0;
            while (!r.End)
            {
                var (f, wt) = r.ReadTag();
                if (f == 1) domain = Str(ref r, wt, "OperatorSetIdProto.domain");
                else if (f == 2) { Expect(wt, WireType.Varint, "OperatorSetIdProto.version"); version = r.ReadInt64(); }
                else r.Skip(wt, f);
            }
            return new OpsetImport(domain, version);
        }

        private Function ReadFunction(ref WireReader r)
        {
            var fn = new Function();
            while (!r.End)
            {
                var (f, wt) = r.ReadTag();
                switch (f)
                {
                    case 1: fn.Name = Str(ref r, wt, "FunctionProto.name"); break;
                    case 4: fn.Inputs.Add(Str(ref r, wt, "FunctionProto.input")); break;
                    case 5: fn.Outputs.Add(Str(ref r, wt, "FunctionProto.output")); break;
                    case 6: fn.AttributeNames.Add(Str(ref r, wt, "FunctionProto.attribute")); break;
                    case 11: Expect(wt, WireType.LengthDelimited, "FunctionProto.attribute_proto"); var ar = r.ReadMessage(); fn.AttributeDefaults.Add(ReadAttribute(ref ar)); break;
                    case 7: Expect(wt, WireType.LengthDelimited, "FunctionProto.node"); var nr = r.ReadMessage(); fn.Nodes.Add(ReadNode(ref nr)); break;
                    case 8: fn.DocString = Str(ref r, wt, "FunctionProto.doc_string"); break;
                    case 9: Expect(wt, WireType.LengthDelimited, "FunctionProto.opset_import"); var or = r.ReadMessage(); fn.OpsetImports.Add(ReadOpset(ref or)); break;
                    case 10: fn.Domain = Str(ref r, wt, "FunctionProto.domain"); break;
                    case 13: fn.Overload = Str(ref r, wt, "FunctionProto.overload"); break;
                    case 12: Expect(wt, WireType.LengthDelimited, "FunctionProto.value_info"); var vr = r.ReadMessage(); fn.ValueInfos.Add(ReadValueInfo(ref vr)); break;
                    case 14: fn.Metadata.Add(Entry(ref r, wt, "FunctionProto.metadata_props")); break;
                    default: r.Skip(wt, f); break;
                }
            }
            return fn;
        }

        private KeyValuePair<string, List<KeyValuePair<string, string>>> ReadAnnotation(ref WireReader r)
        {
            string name = "";
            var entries = new List<KeyValuePair<string, string>>();
            while (!r.End)
            {
                var (f, wt) = r.ReadTag();
                if (f == 1) name = Str(ref r, wt, "TensorAnnotation.tensor_name");
                else if (f == 2) entries.Add(Entry(ref r, wt, "TensorAnnotation.quant_parameter_tensor_names"));
                else r.Skip(wt, f);
            }
            return new(name, entries);
        }

        private static KeyValuePair<string, string> Entry(ref WireReader r, WireType wt, string field)
        {
            Expect(wt, WireType.LengthDelimited, field);
            var er = r.ReadMessage();
            string key = "", value = "";
            while (!er.End)
            {
                var (f, ewt) = er.ReadTag();
                if (f == 1) key = Str(ref er, ewt, "StringStringEntryProto.key");
                else if (f == 2) value = Str(ref er, ewt, "StringStringEntryProto.value");
                else er.Skip(ewt, f);
            }
            return new(key, value);
        }

        private static string Str(ref WireReader r, WireType wt, string field)
        {
            Expect(wt, WireType.LengthDelimited, field);
            var s = r.ReadBytes(out _);
            return s.IsEmpty ? "" : StrictUtf8.GetString(s);
        }

        private static void ReadVarints(ref WireReader r, WireType wt, List<long> into, string field)
        {
            if (wt == WireType.Varint) { into.Add(r.ReadInt64()); return; }
            ExpectPacked(wt, WireType.Varint, field);
            var p = r.ReadMessage();
            while (!p.End) into.Add(p.ReadInt64());
        }

        private static void ReadUInt64s(ref WireReader r, WireType wt, List<ulong> into, string field)
        {
            if (wt == WireType.Varint) { into.Add(r.ReadVarint()); return; }
            ExpectPacked(wt, WireType.Varint, field);
            var p = r.ReadMessage();
            while (!p.End) into.Add(p.ReadVarint());
        }

        private static void ReadFloats(ref WireReader r, WireType wt, List<float> into, string field)
        {
            if (wt == WireType.Fixed32) { into.Add(r.ReadFloat()); return; }
            ExpectPacked(wt, WireType.Fixed32, field);
            var p = r.ReadMessage();
            while (!p.End) into.Add(p.ReadFloat());
        }

        private static void ReadDoubles(ref WireReader r, WireType wt, List<double> into, string field)
        {
            if (wt == WireType.Fixed64) { into.Add(r.ReadDouble()); return; }
            ExpectPacked(wt, WireType.Fixed64, field);
            var p = r.ReadMessage();
            while (!p.End) into.Add(p.ReadDouble());
        }

        private static void Expect(WireType actual, WireType expected, string field)
        {
            if (actual != expected)
                throw new InvalidDataException($"{field} has wire type {Describe(actual)} where the schema says {Describe(expected)}");
        }

        private static void ExpectPacked(WireType actual, WireType element, string field)
        {
            if (actual != WireType.LengthDelimited)
                throw new InvalidDataException($"{field} has wire type {Describe(actual)} where the schema says {Describe(element)} (or packed)");
        }

        private static string Describe(WireType t) => t switch
        {
            WireType.Varint => "varint",
            WireType.Fixed32 => "fixed32",
            WireType.Fixed64 => "fixed64",
            WireType.LengthDelimited => "length-delimited",
            _ => "group",
        };

        private void Enter(int at)
        {
            if (++_depth > options.MaxNestingDepth)
                throw Fault($"subgraphs or types are nested more than {options.MaxNestingDepth} levels deep", at);
        }

        private static InvalidDataException Fault(string message, int at) => WireReader.Fault(message, at);
    }
}
