using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using OnDevice.Formats.Onnx;
using OnDevice.Formats.Safetensors;

namespace OnDevice.Formats;

/// <summary>Where one tensor's payload lies in a model file: a stable key (unique within the file), a byte offset and a length.</summary>
/// <param name="Key">Stable name: <c>init:NAME</c> for an ONNX initializer, <c>node:NODE/ATTR</c> for a tensor attribute (e.g. a Constant node), the tensor name for safetensors.</param>
/// <param name="Offset">Offset of the first payload byte in the file.</param>
/// <param name="Length">Payload length in bytes.</param>
public sealed record TensorExtent(string Key, long Offset, long Length);

/// <summary>The file formats <see cref="TensorLayout"/> understands.</summary>
public enum TensorFileKind
{
    /// <summary>Neither ONNX nor safetensors (or malformed): no tensor layout.</summary>
    Unknown,
    /// <summary>An ONNX protobuf model.</summary>
    Onnx,
    /// <summary>A safetensors file.</summary>
    Safetensors,
}

/// <summary>A file's kind and its tensor payloads, ordered by offset (non-overlapping).</summary>
/// <param name="Kind">The detected format.</param>
/// <param name="Tensors">Tensor payloads by offset.</param>
public sealed record TensorMap(TensorFileKind Kind, IReadOnlyList<TensorExtent> Tensors);

/// <summary>
/// Locates tensor payloads inside ONNX and safetensors files as byte ranges, without copying them: ONNX initializers'
/// <c>raw_data</c> or packed typed data, and tensor attributes of nodes (PaddleOCR keeps its weights in Constant nodes),
/// including those inside subgraphs; safetensors tensors from its header. Used to diff model versions tensor by tensor.
/// </summary>
public static class TensorLayout
{
    /// <summary>
    /// Detects the format of <paramref name="file"/> and lists its tensor payloads. Never throws for bad input: a file
    /// that is neither a well-formed safetensors nor a parsable ONNX model gives <see cref="TensorFileKind.Unknown"/>.
    /// </summary>
    public static TensorMap Locate(ReadOnlyMemory<byte> file)
    {
        if (LooksLikeSafetensors(file.Span))
        {
            try { return new TensorMap(TensorFileKind.Safetensors, LocateSafetensors(file)); }
            catch (ModelFormatException) { return new TensorMap(TensorFileKind.Unknown, []); }
        }
        try
        {
            var list = LocateOnnx(file.Span);
            return new TensorMap(TensorFileKind.Onnx, list);
        }
        catch (ModelFormatException) { return new TensorMap(TensorFileKind.Unknown, []); }
    }

    /// <summary>The tensors of a safetensors file, validated by <see cref="SafetensorsFile"/>, as ranges of <paramref name="file"/>.</summary>
    /// <exception cref="ModelFormatException">The file is not a valid safetensors file.</exception>
    public static IReadOnlyList<TensorExtent> LocateSafetensors(ReadOnlyMemory<byte> file)
    {
        var content = SafetensorsFile.ReadAll(file);
        ref byte start = ref MemoryMarshal.GetReference(file.Span);
        var list = new List<TensorExtent>(content.Tensors.Count);
        foreach (var t in content.Tensors)
        {
            if (t.Bytes.Length == 0) continue;
            long offset = Unsafe.ByteOffset(ref start, ref MemoryMarshal.GetReference(t.Bytes));
            list.Add(new TensorExtent(t.Name, offset, t.Bytes.Length));
        }
        return list;
    }

    /// <summary>The tensor payloads of an ONNX model (initializers and tensor attributes, in subgraphs too), by offset.</summary>
    /// <exception cref="ModelFormatException">The bytes are not a parsable ONNX model (no graph, no ir_version, malformed protobuf).</exception>
    public static IReadOnlyList<TensorExtent> LocateOnnx(ReadOnlySpan<byte> file)
    {
        var list = new List<TensorExtent>();
        try
        {
            var r = new WireReader(file, 0);
            bool graph = false, ir = false;
            while (!r.End)
            {
                var (f, wt) = r.ReadTag();
                if (f == 1 && wt == WireType.Varint) { ir = r.ReadInt64() > 0; continue; }
                if (f == 7 && wt == WireType.LengthDelimited)
                {
                    var g = r.ReadMessage();
                    Graph(file, ref g, "", list, 0);
                    graph = true;
                    continue;
                }
                r.Skip(wt, f);
            }
            if (!graph || !ir) throw new ModelFormatException(null, "not an ONNX model (no graph or no ir_version)");
        }
        catch (InvalidDataException e) { throw new ModelFormatException(null, $"malformed ONNX: {e.Message}", e); }
        list.Sort((a, b) => a.Offset.CompareTo(b.Offset));
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < list.Count; i++)
        {
            // Keys must be unique: a repeated one (unnamed tensors in one node) gets #2, #3, ... in file order.
            var k = list[i].Key;
            int n = seen.TryGetValue(k, out var c) ? c + 1 : 1;
            seen[k] = n;
            if (n > 1) list[i] = list[i] with { Key = $"{k}#{n}" };
        }
        return list;
    }

    private static bool LooksLikeSafetensors(ReadOnlySpan<byte> b)
    {
        if (b.Length < 10) return false;
        ulong n = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(b);
        return n >= 2 && n <= (ulong)(b.Length - 8) && b[8] == (byte)'{';
    }

    private const int MaxDepth = 32;

    private static void Graph(ReadOnlySpan<byte> file, ref WireReader r, string prefix, List<TensorExtent> into, int depth)
    {
        if (depth > MaxDepth) throw WireReader.Fault("subgraphs nested too deeply", r.Offset);
        while (!r.End)
        {
            var (f, wt) = r.ReadTag();
            if (wt == WireType.LengthDelimited && f == 5)
            {
                var t = r.ReadMessage();
                Tensor(ref t, prefix + "init:", into);
            }
            else if (wt == WireType.LengthDelimited && f == 1)
            {
                var n = r.ReadMessage();
                Node(file, ref n, prefix, into, depth);
            }
            else r.Skip(wt, f);
        }
    }

    private static void Node(ReadOnlySpan<byte> file, ref WireReader r, string prefix, List<TensorExtent> into, int depth)
    {
        // Attributes come after name and outputs in files from every exporter we know, but protobuf allows any order:
        // collect attribute messages first, name them once the node is read.
        string name = "", output = "";
        var attrs = new List<(int Offset, int Length)>();
        while (!r.End)
        {
            var (f, wt) = r.ReadTag();
            if (wt == WireType.LengthDelimited && f == 3) name = Text(r.ReadBytes(out _));
            else if (wt == WireType.LengthDelimited && f == 2) { var s = Text(r.ReadBytes(out _)); if (output.Length == 0) output = s; }
            else if (wt == WireType.LengthDelimited && f == 5) { var s = r.ReadBytes(out int off); attrs.Add((off, s.Length)); }
            else r.Skip(wt, f);
        }
        if (attrs.Count == 0) return;
        var nodeKey = prefix + "node:" + (name.Length > 0 ? name : "->" + output) + "/";
        foreach (var (off, len) in attrs)
        {
            var a = new WireReader(file.Slice(off, len), off);
            Attribute(file, ref a, nodeKey, into, depth);
        }
    }

    private static void Attribute(ReadOnlySpan<byte> file, ref WireReader r, string nodeKey, List<TensorExtent> into, int depth)
    {
        string name = "";
        var tensors = new List<(int Offset, int Length)>();
        var graphs = new List<(int Offset, int Length)>();
        while (!r.End)
        {
            var (f, wt) = r.ReadTag();
            if (wt == WireType.LengthDelimited && f == 1) name = Text(r.ReadBytes(out _));
            else if (wt == WireType.LengthDelimited && (f == 5 || f == 10)) { var s = r.ReadBytes(out int off); tensors.Add((off, s.Length)); }
            else if (wt == WireType.LengthDelimited && (f == 6 || f == 11)) { var s = r.ReadBytes(out int off); graphs.Add((off, s.Length)); }
            else r.Skip(wt, f);
        }
        for (int i = 0; i < tensors.Count; i++)
        {
            var t = new WireReader(file.Slice(tensors[i].Offset, tensors[i].Length), tensors[i].Offset);
            Tensor(ref t, nodeKey + name + (tensors.Count > 1 ? $"[{i}]" : "") + ":", into, useName: false);
        }
        for (int i = 0; i < graphs.Count; i++)
        {
            var g = new WireReader(file.Slice(graphs[i].Offset, graphs[i].Length), graphs[i].Offset);
            Graph(file, ref g, nodeKey + name + (graphs.Count > 1 ? $"[{i}]" : "") + "/", into, depth + 1);
        }
    }

    /// <summary>Adds the payload of one TensorProto: raw_data, or a packed float/int32/int64/double/uint64 array.</summary>
    private static void Tensor(ref WireReader r, string keyPrefix, List<TensorExtent> into, bool useName = true)
    {
        string name = "";
        int payloadOffset = -1, payloadLength = 0, field = 0;
        while (!r.End)
        {
            var (f, wt) = r.ReadTag();
            if (wt == WireType.LengthDelimited && f == 8) name = Text(r.ReadBytes(out _));
            else if (wt == WireType.LengthDelimited && f is 9 or 4 or 5 or 7 or 10 or 11)
            {
                var s = r.ReadBytes(out int off);
                if (s.Length > payloadLength) { payloadOffset = off; payloadLength = s.Length; field = f; }
            }
            else r.Skip(wt, f);
        }
        if (payloadOffset < 0 || payloadLength == 0) return;
        var key = keyPrefix + (useName ? name : "") + (field == 9 ? "" : $"@{field}");
        into.Add(new TensorExtent(key, payloadOffset, payloadLength));
    }

    private static string Text(ReadOnlySpan<byte> utf8) => System.Text.Encoding.UTF8.GetString(utf8);
}
