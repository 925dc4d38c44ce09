using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using OnDevice.Core;

namespace OnDevice.Formats.Safetensors;

/// <summary>The tensors of a safetensors file, in data order, and its free-form <c>__metadata__</c> strings.</summary>
/// <param name="Tensors">The tensors, ordered by where their data lies in the file.</param>
/// <param name="Metadata">The <c>__metadata__</c> map (empty when the file has none).</param>
public sealed record SafetensorsContent(IReadOnlyList<Tensor> Tensors, IReadOnlyDictionary<string, string> Metadata);

/// <summary>
/// Reads and writes Hugging Face safetensors files: an 8-byte little-endian header length N, N bytes of UTF-8 JSON
/// <c>{"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ..., "__metadata__": {...}}</c>,
/// then the data buffer, which the tensors' offsets (relative to its start) must cover exactly, without gaps or
/// overlaps. Reading from a file memory-maps it, so tensor bytes are not copied. Every fault in the input is a
/// <see cref="ModelFormatException"/> naming the file.
/// </summary>
public static class SafetensorsFile
{
    /// <summary>Largest JSON header accepted, in bytes (100 MB, the reference implementation's limit).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>Size of the little-endian header length that starts every file.</summary>
    private const int LengthFieldBytes = 8;

    /// <summary>The header's reserved key for the free-form string map.</summary>
    private const string MetadataKey = "__metadata__";

    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    /// <summary>Reads the tensors of <paramref name="path"/>, ordered by data offset; their bytes are slices of a memory mapping.</summary>
    public static IReadOnlyList<Tensor> Read(string path) => ReadAll(path).Tensors;

    /// <summary>Reads the tensors of a whole safetensors file held in <paramref name="bytes"/>; they alias it (no copy).</summary>
    public static IReadOnlyList<Tensor> Read(ReadOnlyMemory<byte> bytes, string? nameForErrors = null) => ReadAll(bytes, nameForErrors).Tensors;

    /// <summary>Reads the <c>__metadata__</c> map of <paramref name="path"/> (empty when absent). The whole header is validated.</summary>
    public static IReadOnlyDictionary<string, string> ReadMetadata(string path) => ReadAll(path).Metadata;

    /// <summary>Reads tensors and metadata of <paramref name="path"/>. The file is memory-mapped; tensor bytes are not copied.</summary>
    public static SafetensorsContent ReadAll(string path)
    {
        var full = Path.GetFullPath(path);
        MappedFile mapped;
        try
        {
            if (!File.Exists(full))
                throw new ModelFormatException(path, Directory.Exists(full) ? "is a directory, not a safetensors file" : "file not found");
            mapped = MappedFile.Open(full);
        }
        catch (IOException e) { throw new ModelFormatException(path, $"cannot read: {e.Message}", e); }
        catch (UnauthorizedAccessException e) { throw new ModelFormatException(path, $"cannot read: {e.Message}", e); }

        var lengthField = mapped.Span(0, (int)Math.Min(mapped.Length, LengthFieldBytes));
        long headerLength = CheckHeaderLength(lengthField, mapped.Length, path);
        var header = mapped.Slice(LengthFieldBytes, (int)headerLength);
        long dataStart = LengthFieldBytes + headerLength;
        return Parse(header, mapped.Length - dataStart, (offset, length) => mapped.Slice(dataStart + offset, length), path);
    }

    /// <summary>Reads tensors and metadata from a whole safetensors file in <paramref name="bytes"/>; tensors alias it (no copy).</summary>
    public static SafetensorsContent ReadAll(ReadOnlyMemory<byte> bytes, string? nameForErrors = null)
    {
        long headerLength = CheckHeaderLength(bytes.Span[..Math.Min(bytes.Length, LengthFieldBytes)], bytes.Length, nameForErrors);
        var header = MemoryMarshal.AsMemory(bytes.Slice(LengthFieldBytes, (int)headerLength));
        int dataStart = LengthFieldBytes + (int)headerLength;
        var data = MemoryMarshal.AsMemory(bytes[dataStart..]);
        return Parse(header, data.Length, (offset, length) => data.Slice((int)offset, length), nameForErrors);
    }

    /// <summary>
    /// Atomically writes <paramref name="tensors"/> (and <paramref name="metadata"/> when it has entries) to
    /// <paramref name="path"/>, laid out as the reference implementation does: by descending dtype alignment, then by
    /// name, with the header padded with spaces to a multiple of 8 bytes so every tensor is naturally aligned.
    /// </summary>
    /// <exception cref="ArgumentException">A name repeats or is reserved, a string is not valid UTF-16, or a dtype has no safetensors equivalent (int4, uint4, string).</exception>
    public static void Write(string path, IEnumerable<Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var (header, ordered) = Prepare(tensors, metadata);
        AtomicFile.Write(path, fs =>
        {
            fs.Write(header);
            foreach (var t in ordered) fs.Write(t.Bytes);
        });
    }

    /// <summary>The complete safetensors file for <paramref name="tensors"/>, as <see cref="Write"/> would write it.</summary>
    /// <exception cref="ArgumentException">A name repeats or is reserved, a string is not valid UTF-16, or a dtype has no safetensors equivalent (int4, uint4, string).</exception>
    public static byte[] ToBytes(IEnumerable<Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var (header, ordered) = Prepare(tensors, metadata);
        long total = header.Length + ordered.Sum(t => t.ByteLength);
        if (total > Array.MaxLength) throw new ArgumentException($"the file would be {total} bytes, more than one array can hold; use Write instead", nameof(tensors));
        var r = new byte[total];
        header.CopyTo(r, 0);
        int at = header.Length;
        foreach (var t in ordered)
        {
            t.Bytes.CopyTo(r.AsSpan(at));
            at += (int)t.ByteLength;
        }
        return r;
    }

    // ---------------------------------------------------------------- dtypes

    private static DType? FromCode(string code) => code switch
    {
        "F64" => DType.Float64,
        "F32" => DType.Float32,
        "F16" => DType.Float16,
        "BF16" => DType.BFloat16,
        "I64" => DType.Int64,
        "I32" => DType.Int32,
        "I16" => DType.Int16,
        "I8" => DType.Int8,
        "U64" => DType.UInt64,
        "U32" => DType.UInt32,
        "U16" => DType.UInt16,
        "U8" => DType.UInt8,
        "BOOL" => DType.Bool,
        _ => null,
    };

    private static string? ToCode(DType t) => t switch
    {
        DType.Float64 => "F64",
        DType.Float32 => "F32",
        DType.Float16 => "F16",
        DType.BFloat16 => "BF16",
        DType.Int64 => "I64",
        DType.Int32 => "I32",
        DType.Int16 => "I16",
        DType.Int8 => "I8",
        DType.UInt64 => "U64",
        DType.UInt32 => "U32",
        DType.UInt16 => "U16",
        DType.UInt8 => "U8",
        DType.Bool => "BOOL",
        _ => null,
    };

    /// <summary>Position in the reference implementation's dtype order (increasing alignment); files are written in descending order.</summary>
    private static int AlignmentRank(DType t) => t switch
    {
        DType.Bool => 0,
        DType.UInt8 => 1,
        DType.Int8 => 2,
        DType.Int16 => 5,
        DType.UInt16 => 6,
        DType.Float16 => 7,
        DType.BFloat16 => 8,
        DType.Int32 => 9,
        DType.UInt32 => 10,
        DType.Float32 => 11,
        DType.Float64 => 12,
        DType.Int64 => 13,
        DType.UInt64 => 14,
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "no safetensors dtype"),
    };

    // ---------------------------------------------------------------- writing

    private static (byte[] Header, List<Tensor> Ordered) Prepare(IEnumerable<Tensor> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var entries = new List<(Tensor T, byte[] Name, string Code)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in tensors)
        {
            ArgumentNullException.ThrowIfNull(t, nameof(tensors));
            var code = ToCode(t.DType) ?? throw new ArgumentException(t.DType switch
            {
                DType.Int4 or DType.UInt4 => $"tensor '{t.Name}' is {t.DType.Name()} (packed two per byte), which safetensors has no dtype for; unpack it to int8/uint8 first",
                DType.String => $"tensor '{t.Name}' is a string tensor; safetensors holds numeric tensors only",
                _ => $"tensor '{t.Name}' has dtype {t.DType.Name()}, which safetensors has no dtype for",
            }, nameof(tensors));
            if (t.Name == MetadataKey) throw new ArgumentException($"a tensor may not be named '{MetadataKey}'; that key is reserved for the metadata map", nameof(tensors));
            if (!seen.Add(t.Name)) throw new ArgumentException($"two tensors are named '{t.Name}'; safetensors names must be unique", nameof(tensors));
            entries.Add((t, Utf8Of(t.Name, "tensor name", nameof(tensors)), code));
        }
        entries.Sort((a, b) =>
        {
            int c = AlignmentRank(b.T.DType).CompareTo(AlignmentRank(a.T.DType));
            return c != 0 ? c : a.Name.AsSpan().SequenceCompareTo(b.Name);
        });

        var json = new List<byte>(64 + entries.Count * 64);
        void Raw(string ascii) { foreach (char c in ascii) json.Add((byte)c); }
        json.Add((byte)'{');
        bool first = true;
        if (metadata is { Count: > 0 })
        {
            Quoted(json, Utf8Of(MetadataKey, "metadata key", nameof(metadata)));
            Raw(":{");
            var pairs = metadata
                .Select(kv => (Key: Utf8Of(kv.Key, "metadata key", nameof(metadata)), Value: Utf8Of(kv.Value ?? throw new ArgumentException($"metadata '{kv.Key}' is null", nameof(metadata)), "metadata value", nameof(metadata))))
                .ToList();
            pairs.Sort((a, b) => a.Key.AsSpan().SequenceCompareTo(b.Key));
            for (int i = 0; i < pairs.Count; i++)
            {
                if (i > 0) json.Add((byte)',');
                Quoted(json, pairs[i].Key);
                json.Add((byte)':');
                Quoted(json, pairs[i].Value);
            }
            json.Add((byte)'}');
            first = false;
        }
        long offset = 0;
        foreach (var (t, name, code) in entries)
        {
            if (!first) json.Add((byte)',');
            first = false;
            Quoted(json, name);
            Raw(":{\"dtype\":\"");
            Raw(code);
            Raw("\",\"shape\":[");
            Raw(string.Join(',', t.Dims.Select(d => d.ToString(CultureInfo.InvariantCulture))));
            Raw("],\"data_offsets\":[");
            Raw(offset.ToString(CultureInfo.InvariantCulture));
            json.Add((byte)',');
            offset += t.ByteLength;
            Raw(offset.ToString(CultureInfo.InvariantCulture));
            Raw("]}");
        }
        json.Add((byte)'}');
        while (json.Count % 8 != 0) json.Add((byte)' ');
        if (json.Count > MaxHeaderBytes) throw new ArgumentException($"the header would be {json.Count} bytes, more than the {MaxHeaderBytes}-byte limit (MaxHeaderBytes)", nameof(tensors));

        var header = new byte[LengthFieldBytes + json.Count];
        BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)json.Count);
        json.CopyTo(header, LengthFieldBytes);
        return (header, entries.Select(e => e.T).ToList());
    }

    private static byte[] Utf8Of(string s, string what, string paramName)
    {
        try { return StrictUtf8.GetBytes(s); }
        catch (EncoderFallbackException e) { throw new ArgumentException($"{what} '{s}' is not valid UTF-16 (it has an unpaired surrogate)", paramName, e); }
    }

    /// <summary>Appends a JSON string, escaping as serde_json does: quote, backslash and control characters only.</summary>
    private static void Quoted(List<byte> json, byte[] utf8)
    {
        json.Add((byte)'"');
        foreach (byte b in utf8)
        {
            switch (b)
            {
                case (byte)'"': json.Add((byte)'\\'); json.Add((byte)'"'); break;
                case (byte)'\\': json.Add((byte)'\\'); json.Add((byte)'\\'); break;
                case (byte)'\b': json.Add((byte)'\\'); json.Add((byte)'b'); break;
                case (byte)'\f': json.Add((byte)'\\'); json.Add((byte)'f'); break;
                case (byte)'\n': json.Add((byte)'\\'); json.Add((byte)'n'); break;
                case (byte)'\r': json.Add((byte)'\\'); json.Add((byte)'r'); break;
                case (byte)'\t': json.Add((byte)'\\'); json.Add((byte)'t'); break;
                case < 0x20:
                    foreach (char c in $"\\u{b:x4}") json.Add((byte)c);
                    break;
                default: json.Add(b); break;
            }
        }
        json.Add((byte)'"');
    }

    // ---------------------------------------------------------------- reading

    private static long CheckHeaderLength(ReadOnlySpan<byte> lengthField, long fileLength, string? path)
    {
        if (fileLength < LengthFieldBytes)
            throw new ModelFormatException(path, $"file is {fileLength} bytes; a safetensors file starts with an {LengthFieldBytes}-byte header length");
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(lengthField);
        if (n > MaxHeaderBytes)
            throw new ModelFormatException(path, $"header length {n} exceeds the {MaxHeaderBytes}-byte limit (MaxHeaderBytes)");
        if ((long)n > fileLength - LengthFieldBytes)
            throw new ModelFormatException(path, $"header length {n} runs past the end of the file ({fileLength} bytes): truncated or not a safetensors file");
        return (long)n;
    }

    private sealed record Entry(string Name, DType DType, long[] Dims, long Begin, long End, long Bytes);

    private static SafetensorsContent Parse(ReadOnlyMemory<byte> header, long dataLength, Func<long, int, Memory<byte>> slice, string? path)
    {
        var span = header.Span;
        if (span.Length == 0 || span[0] != (byte)'{')
            throw new ModelFormatException(path, "the header is not a JSON object (it does not start with '{')");
        if (!Utf8.IsValid(span))
            throw new ModelFormatException(path, "the header is not valid UTF-8");

        var entries = new List<Entry>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 8 });
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new ModelFormatException(path, "the header is not a JSON object");
            var names = new HashSet<string>(StringComparer.Ordinal);
            bool sawMetadata = false;
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                string name = NameOf(p, path);
                if (name == MetadataKey)
                {
                    if (sawMetadata) throw new ModelFormatException(path, $"'{MetadataKey}' appears twice in the header");
                    sawMetadata = true;
                    ReadMetadataMap(p.Value, metadata, path);
                    continue;
                }
                if (!names.Add(name)) throw new ModelFormatException(path, $"tensor '{name}' appears twice in the header");
                entries.Add(ReadEntry(name, p.Value, path));
            }
        }
        catch (JsonException e) { throw new ModelFormatException(path, $"the header is not valid JSON: {e.Message}", e); }

        // The data offsets must tile the data buffer exactly: sorted by offset, each tensor starts where the
        // previous one ended, and the last one ends at the end of the file.
        var ordered = entries.OrderBy(e => e.Begin).ThenBy(e => e.End).ToList();
        long cursor = 0;
        Entry? previous = null;
        foreach (var e in ordered)
        {
            if (e.End > dataLength)
                throw new ModelFormatException(path, $"tensor '{e.Name}': data_offsets [{e.Begin}, {e.End}] run past the end of the data buffer ({dataLength} bytes): truncated");
            if (e.Begin < cursor)
                throw new ModelFormatException(path, $"tensor '{e.Name}': data_offsets [{e.Begin}, {e.End}] overlap tensor '{previous!.Name}' [{previous.Begin}, {previous.End}]");
            if (e.Begin > cursor)
                throw new ModelFormatException(path, $"tensor '{e.Name}': data_offsets [{e.Begin}, {e.End}] leave a gap of {e.Begin - cursor} bytes after {(previous is null ? "the start of the data buffer" : $"tensor '{previous.Name}'")}");
            if (e.End - e.Begin != e.Bytes)
                throw new ModelFormatException(path, $"tensor '{e.Name}': {e.DType.Name()}{Shape.Of(e.Dims)} needs {e.Bytes} bytes but data_offsets [{e.Begin}, {e.End}] hold {e.End - e.Begin}");
            cursor = e.End;
            previous = e;
        }
        if (cursor != dataLength)
            throw new ModelFormatException(path, $"the data buffer has {dataLength - cursor} bytes after the last tensor that no tensor covers");

        var tensors = new List<Tensor>(ordered.Count);
        foreach (var e in ordered)
        {
            if (e.Bytes > Array.MaxLength)
                throw new ModelFormatException(path, $"tensor '{e.Name}' is {e.Bytes} bytes; one tensor may not exceed 2 GiB");
            tensors.Add(Tensor.FromBytes(e.DType, e.Dims, slice(e.Begin, (int)e.Bytes), e.Name));
        }
        return new SafetensorsContent(tensors, metadata);
    }

    private static void ReadMetadataMap(JsonElement value, Dictionary<string, string> into, string? path)
    {
        if (value.ValueKind == JsonValueKind.Null) return;
        if (value.ValueKind != JsonValueKind.Object)
            throw new ModelFormatException(path, $"'{MetadataKey}' must be an object of strings, found {Kind(value)}");
        foreach (var m in value.EnumerateObject())
        {
            string key = NameOf(m, path);
            if (m.Value.ValueKind != JsonValueKind.String)
                throw new ModelFormatException(path, $"'{MetadataKey}' entry '{key}' must be a string, found {Kind(m.Value)}");
            if (!into.TryAdd(key, StringOf(m.Value, path)))
                throw new ModelFormatException(path, $"'{MetadataKey}' has key '{key}' twice");
        }
    }

    private static Entry ReadEntry(string name, JsonElement info, string? path)
    {
        string where = $"tensor '{name}'";
        if (info.ValueKind != JsonValueKind.Object)
            throw new ModelFormatException(path, $"{where}: expected an object with dtype, shape and data_offsets, found {Kind(info)}");
        JsonElement? dtypeEl = null, shapeEl = null, offsetsEl = null;
        foreach (var f in info.EnumerateObject())
        {
            string field = NameOf(f, path);
            ref JsonElement? slot = ref dtypeEl;
            switch (field)
            {
                case "dtype": slot = ref dtypeEl; break;
                case "shape": slot = ref shapeEl; break;
                case "data_offsets": slot = ref offsetsEl; break;
                default: throw new ModelFormatException(path, $"{where}: unexpected field '{field}' (expected dtype, shape and data_offsets)");
            }
            if (slot is not null) throw new ModelFormatException(path, $"{where}: field '{field}' appears twice");
            slot = f.Value;
        }
        if (dtypeEl is not { } dt) throw new ModelFormatException(path, $"{where}: no dtype");
        if (shapeEl is not { } sh) throw new ModelFormatException(path, $"{where}: no shape");
        if (offsetsEl is not { } of) throw new ModelFormatException(path, $"{where}: no data_offsets");

        if (dt.ValueKind != JsonValueKind.String) throw new ModelFormatException(path, $"{where}: dtype must be a string, found {Kind(dt)}");
        string code = StringOf(dt, path);
        var dtype = FromCode(code) ?? throw new ModelFormatException(path,
            $"{where}: unsupported dtype '{code}' (supported: F64 F32 F16 BF16 I64 I32 I16 I8 U64 U32 U16 U8 BOOL)");

        if (sh.ValueKind != JsonValueKind.Array) throw new ModelFormatException(path, $"{where}: shape must be an array, found {Kind(sh)}");
        var dims = new long[sh.GetArrayLength()];
        int i = 0;
        foreach (var d in sh.EnumerateArray())
            dims[i++] = NonNegative(d, $"{where}: shape[{i - 1}]", path);

        if (of.ValueKind != JsonValueKind.Array || of.GetArrayLength() != 2)
            throw new ModelFormatException(path, $"{where}: data_offsets must be a pair [begin, end], found {(of.ValueKind == JsonValueKind.Array ? $"an array of {of.GetArrayLength()}" : Kind(of))}");
        long begin = NonNegative(of[0], $"{where}: data_offsets[0]", path);
        long end = NonNegative(of[1], $"{where}: data_offsets[1]", path);
        if (end < begin) throw new ModelFormatException(path, $"{where}: data_offsets [{begin}, {end}] end before they begin");

        long bytes;
        try { bytes = dtype.ByteCount(Tensor.CountElements(dims)); }
        catch (OverflowException) { throw new ModelFormatException(path, $"{where}: shape {Shape.Of(dims)} has a size that overflows 64 bits"); }
        return new Entry(name, dtype, dims, begin, end, bytes);
    }

    private static long NonNegative(JsonElement e, string what, string? path)
    {
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out long v) || v < 0)
            throw new ModelFormatException(path, $"{what} must be a non-negative integer below 2^63, found {(e.ValueKind == JsonValueKind.Number ? e.GetRawText() : Kind(e))}");
        return v;
    }

    private static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => "nothing",
    };

    // Unescaping can fail on a \u escape that leaves a lone surrogate; that is a fault in the file.
    private static string NameOf(JsonProperty p, string? path)
    {
        try { return p.Name; }
        catch (InvalidOperationException e) { throw new ModelFormatException(path, $"a key in the header is not valid Unicode: {e.Message}", e); }
    }

    private static string StringOf(JsonElement e, string? path)
    {
        try { return e.GetString()!; }
        catch (InvalidOperationException ex) { throw new ModelFormatException(path, $"a string in the header is not valid Unicode: {ex.Message}", ex); }
    }
}
