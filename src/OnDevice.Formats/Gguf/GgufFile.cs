using System.Buffers.Binary;
using System.Text;
using OnDevice.Core;
using OnDevice.Formats.Llm;

namespace OnDevice.Formats.Gguf;

/// <summary>One tensor of a GGUF file.</summary>
/// <param name="Name">Tensor name.</param>
/// <param name="Type">ggml type id (0 F32, 1 F16, 2 Q4_0, 8 Q8_0, …).</param>
/// <param name="Dims">Dimensions, ne[0] (the contiguous one) first.</param>
/// <param name="Data">The bytes (a slice of the mapping), or empty for types this reader cannot size.</param>
public sealed record GgufTensor(string Name, uint Type, ulong[] Dims, ReadOnlyMemory<byte> Data);

/// <summary>Metadata and tensors of a GGUF file.</summary>
/// <param name="Version">Format version (2 or 3).</param>
/// <param name="Metadata">Key-value metadata: strings, numbers (as long, ulong, double, bool), arrays as object[] (strings as string).</param>
/// <param name="Tensors">Tensors in file order.</param>
public sealed record GgufContent(uint Version, IReadOnlyDictionary<string, object> Metadata, IReadOnlyList<GgufTensor> Tensors);

/// <summary>
/// Reads and writes GGUF (the llama.cpp format, versions 2 and 3): magic "GGUF", version, tensor and metadata counts,
/// typed key-value metadata, tensor infos (name, dims, ggml type, offset), then tensor data aligned to
/// general.alignment (32). Reading memory-maps the file; tensors are slices, not copies. Faults are
/// <see cref="ModelFormatException"/>s naming the file.
/// </summary>
public static class GgufFile
{
    /// <summary>ggml type ids this project reads and writes.</summary>
    public const uint F32 = 0, F16 = 1, Q4_0 = 2, Q8_0 = 8;

    private const int MaxStringBytes = 1 << 20;
    private const long MaxArray = 1 << 26;

    /// <summary>Reads the whole structure of <paramref name="path"/>.</summary>
    public static GgufContent Read(string path)
    {
        if (!File.Exists(path)) throw new ModelFormatException(path, Directory.Exists(path) ? "is a directory, not a GGUF file" : "file not found");
        MappedFile map;
        try { map = MappedFile.Open(path); }
        catch (IOException e) { throw new ModelFormatException(path, $"cannot read: {e.Message}", e); }
        var r = new Reader(map, path);
        if (map.Length < 24 || !r.Bytes(4).SequenceEqual("GGUF"u8)) throw new ModelFormatException(path, "not a GGUF file (no 'GGUF' magic or shorter than its header)");
        uint version = r.U32();
        if (version is < 2 or > 3) throw new ModelFormatException(path, $"GGUF version {version} is not supported (2 and 3 are)");
        ulong nTensors = r.U64(), nKv = r.U64();
        if (nTensors > 1 << 20 || nKv > 1 << 20) throw new ModelFormatException(path, $"implausible counts: {nTensors} tensors, {nKv} metadata entries");
        var meta = new Dictionary<string, object>(StringComparer.Ordinal);
        for (ulong i = 0; i < nKv; i++)
        {
            var key = r.Str();
            uint type = r.U32();
            meta[key] = r.Value(type, key);
        }
        var infos = new List<(string Name, ulong[] Dims, uint Type, ulong Offset)>();
        for (ulong i = 0; i < nTensors; i++)
        {
            var name = r.Str();
            uint nd = r.U32();
            if (nd is 0 or > 4) throw new ModelFormatException(path, $"tensor '{name}' has {nd} dimensions (1..4 allowed)");
            var dims = new ulong[nd];
            for (int d = 0; d < nd; d++) dims[d] = r.U64();
            infos.Add((name, dims, r.U32(), r.U64()));
        }
        long alignment = meta.TryGetValue("general.alignment", out var al) ? Convert.ToInt64(al) : 32;
        if (alignment <= 0 || (alignment & (alignment - 1)) != 0) throw new ModelFormatException(path, $"general.alignment {alignment} is not a power of two");
        long dataStart = (r.Position + alignment - 1) / alignment * alignment;
        var tensors = new List<GgufTensor>();
        foreach (var (name, dims, type, off) in infos)
        {
            long bytes = ByteSize(type, dims, path, name);
            if (off % (ulong)alignment != 0) throw new ModelFormatException(path, $"tensor '{name}' offset {off} is not aligned to {alignment}");
            if (bytes < 0) { tensors.Add(new GgufTensor(name, type, dims, ReadOnlyMemory<byte>.Empty)); continue; }
            if ((long)off < 0 || dataStart + (long)off + bytes > map.Length || bytes > int.MaxValue)
                throw new ModelFormatException(path, $"truncated: tensor '{name}' ({bytes:N0} bytes at data offset {off:N0}) runs past the end of the file ({map.Length:N0} bytes)");
            tensors.Add(new GgufTensor(name, type, dims, map.Slice(dataStart + (long)off, (int)bytes)));
        }
        return new GgufContent(version, meta, tensors);
    }

    /// <summary>Bytes of a tensor, or −1 for a type this reader does not size.</summary>
    private static long ByteSize(uint type, ulong[] dims, string path, string name)
    {
        ulong n = 1;
        foreach (var d in dims)
        {
            if (d == 0 || d > 1UL << 32) throw new ModelFormatException(path, $"tensor '{name}' has dimension {d}");
            n *= d;
            if (n > 1UL << 40) throw new ModelFormatException(path, $"tensor '{name}' is implausibly large");
        }
        return type switch
        {
            F32 => (long)n * 4,
            F16 => (long)n * 2,
            Q8_0 or Q4_0 when dims[0] % 32 != 0 => throw new ModelFormatException(path, $"tensor '{name}': {(type == Q8_0 ? "Q8_0" : "Q4_0")} rows of {dims[0]} are not whole blocks of 32"),
            Q8_0 => (long)(n / 32) * 34,
            Q4_0 => (long)(n / 32) * 18,
            _ => -1,
        };
    }

    /// <summary>Reads a LLaMA-architecture GGUF as a checkpoint (F32, F16, Q8_0, Q4_0 tensors; tokenizer from the metadata).</summary>
    public static LlamaCheckpoint ReadLlama(string path)
    {
        var g = Read(path);
        string arch = g.Metadata.TryGetValue("general.architecture", out var a) ? a as string ?? "" : "";
        if (arch != "llama") throw new ModelFormatException(path, $"general.architecture is '{arch}'; only 'llama' is supported");
        long Int(string key, long? fallback = null)
        {
            if (g.Metadata.TryGetValue(key, out var v) && v is long or ulong) return Convert.ToInt64(v);
            return fallback ?? throw new ModelFormatException(path, $"metadata '{key}' is missing or not an integer");
        }
        float Flt(string key, float fallback) => g.Metadata.TryGetValue(key, out var v) && v is double d ? (float)d : fallback;
        var byName = new Dictionary<string, LlamaTensor>();
        foreach (var t in g.Tensors)
        {
            var type = t.Type switch
            {
                F32 => LlamaTensorType.F32, F16 => LlamaTensorType.F16, Q8_0 => LlamaTensorType.Q8_0, Q4_0 => LlamaTensorType.Q4_0,
                _ => throw new ModelFormatException(path, $"tensor '{t.Name}' has ggml type {t.Type}; supported are F32, F16, Q8_0, Q4_0"),
            };
            if (t.Dims.Length > 2) throw new ModelFormatException(path, $"tensor '{t.Name}' has {t.Dims.Length} dimensions; LLaMA weights have 1 or 2");
            int cols = (int)t.Dims[0], rows = t.Dims.Length == 2 ? (int)t.Dims[1] : 1;
            byName[t.Name] = new LlamaTensor(t.Name, type, rows, cols, t.Data);
        }
        if (!byName.TryGetValue("token_embd.weight", out var emb)) throw new ModelFormatException(path, "tensor 'token_embd.weight' is missing");
        var cfg = new LlamaConfig(
            (int)Int("llama.embedding_length"), (int)Int("llama.feed_forward_length"), (int)Int("llama.block_count"),
            (int)Int("llama.attention.head_count"), (int)Int("llama.attention.head_count_kv", Int("llama.attention.head_count")),
            emb.Rows, (int)Int("llama.context_length"), !byName.ContainsKey("output.weight"),
            Flt("llama.rope.freq_base", 10000f), Flt("llama.attention.layer_norm_rms_epsilon", 1e-5f)).Validate(path);
        LlamaVocabulary? vocab = null;
        if (g.Metadata.TryGetValue("tokenizer.ggml.tokens", out var tk) && tk is object[] tokens)
        {
            var pieces = tokens.Select(o => Encoding.UTF8.GetBytes(((o as string) ?? "").Replace('\u2581', ' '))).ToArray();
            var scores = g.Metadata.TryGetValue("tokenizer.ggml.scores", out var sc) && sc is object[] sa && sa.Length == pieces.Length
                ? sa.Select(Convert.ToSingle).ToArray() : new float[pieces.Length];
            vocab = new LlamaVocabulary(pieces, scores, (int)Int("tokenizer.ggml.bos_token_id", 1), (int)Int("tokenizer.ggml.eos_token_id", 2));
        }
        return new LlamaCheckpoint(Path.GetFullPath(path), "gguf", cfg, byName, vocab);
    }

    private sealed class Reader(MappedFile map, string path)
    {
        public long Position;

        private ReadOnlySpan<byte> Take(long n)
        {
            if (n < 0 || Position + n > map.Length)
                throw new ModelFormatException(path, $"truncated: {n} bytes needed at offset {Position} of {map.Length}");
            var s = map.Span(Position, (int)n);
            Position += n;
            return s;
        }

        public ReadOnlySpan<byte> Bytes(int n) => Take(n);
        public uint U32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));
        public ulong U64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8));

        public string Str()
        {
            ulong n = U64();
            if (n > MaxStringBytes) throw new ModelFormatException(path, $"string of {n} bytes at offset {Position - 8} is implausibly long");
            try { return new UTF8Encoding(false, true).GetString(Take((long)n)); }
            catch (DecoderFallbackException e) { throw new ModelFormatException(path, $"invalid UTF-8 string at offset {Position - (long)n}", e); }
        }

        public object Value(uint type, string key) => type switch
        {
            0 => (long)Take(1)[0],
            1 => (long)(sbyte)Take(1)[0],
            2 => (long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2)),
            3 => (long)BinaryPrimitives.ReadInt16LittleEndian(Take(2)),
            4 => (long)U32(),
            5 => (long)BinaryPrimitives.ReadInt32LittleEndian(Take(4)),
            6 => (double)BinaryPrimitives.ReadSingleLittleEndian(Take(4)),
            7 => Take(1)[0] != 0,
            8 => Str(),
            9 => Array(key),
            10 => U64(),
            11 => BinaryPrimitives.ReadInt64LittleEndian(Take(8)),
            12 => BinaryPrimitives.ReadDoubleLittleEndian(Take(8)),
            _ => throw new ModelFormatException(path, $"metadata '{key}' has unknown value type {type}"),
        };

        private object[] Array(string key)
        {
            uint et = U32();
            ulong n = U64();
            if (n > MaxArray || et == 9) throw new ModelFormatException(path, $"metadata array '{key}' has {n} elements of type {et}; too large or nested");
            var a = new object[n];
            for (ulong i = 0; i < n; i++) a[i] = Value(et, key);
            return a;
        }
    }
}

/// <summary>A tensor to write: shape ne[0] first, ggml type, and a writer of exactly its bytes.</summary>
/// <param name="Name">Name.</param>
/// <param name="Type">ggml type id.</param>
/// <param name="Dims">Dimensions, contiguous first.</param>
/// <param name="WriteData">Writes the tensor's bytes to the stream.</param>
public sealed record GgufTensorSource(string Name, uint Type, ulong[] Dims, Action<Stream> WriteData);

/// <summary>Writes GGUF version 3 (temp file + rename), streaming tensor data so large models need not sit in memory.</summary>
public static class GgufWriter
{
    /// <summary>Writes metadata (values: string, int, uint, long, ulong, float, double, bool, string[], float[], int[]) and tensors.</summary>
    public static void Write(string path, IReadOnlyList<KeyValuePair<string, object>> metadata, IReadOnlyList<GgufTensorSource> tensors)
    {
        const int alignment = 32;
        AtomicFile.Write(path, fs =>
        {
            var w = new BinaryWriter(fs, Encoding.UTF8, leaveOpen: true);
            w.Write("GGUF"u8);
            w.Write(3u);
            w.Write((ulong)tensors.Count);
            w.Write((ulong)metadata.Count);
            void Str(string s) { var b = Encoding.UTF8.GetBytes(s); w.Write((ulong)b.Length); w.Write(b); }
            foreach (var (key, value) in metadata)
            {
                Str(key);
                switch (value)
                {
                    case string s: w.Write(8u); Str(s); break;
                    case int i: w.Write(5u); w.Write(i); break;
                    case uint u: w.Write(4u); w.Write(u); break;
                    case long l: w.Write(11u); w.Write(l); break;
                    case ulong ul: w.Write(10u); w.Write(ul); break;
                    case float f: w.Write(6u); w.Write(f); break;
                    case double d: w.Write(12u); w.Write(d); break;
                    case bool b: w.Write(7u); w.Write((byte)(b ? 1 : 0)); break;
                    case string[] sa: w.Write(9u); w.Write(8u); w.Write((ulong)sa.Length); foreach (var s in sa) Str(s); break;
                    case float[] fa: w.Write(9u); w.Write(6u); w.Write((ulong)fa.Length); foreach (var f in fa) w.Write(f); break;
                    case int[] ia: w.Write(9u); w.Write(5u); w.Write((ulong)ia.Length); foreach (var i in ia) w.Write(i); break;
                    default: throw new ArgumentException($"metadata '{key}': unsupported value type {value?.GetType().Name ?? "null"}");
                }
            }
            ulong offset = 0;
            var sizes = new List<long>();
            foreach (var t in tensors)
            {
                ulong n = t.Dims.Aggregate(1UL, (p, d) => p * d);
                long bytes = t.Type switch
                {
                    GgufFile.F32 => (long)n * 4, GgufFile.F16 => (long)n * 2, GgufFile.Q8_0 => (long)n / 32 * 34, GgufFile.Q4_0 => (long)n / 32 * 18,
                    _ => throw new ArgumentException($"tensor '{t.Name}': ggml type {t.Type} is not written here"),
                };
                Str(t.Name);
                w.Write((uint)t.Dims.Length);
                foreach (var d in t.Dims) w.Write(d);
                w.Write(t.Type);
                w.Write(offset);
                sizes.Add(bytes);
                offset += (ulong)((bytes + alignment - 1) / alignment * alignment);
            }
            w.Flush();
            Pad(fs, alignment);
            for (int i = 0; i < tensors.Count; i++)
            {
                long start = fs.Position;
                tensors[i].WriteData(fs);
                if (fs.Position - start != sizes[i])
                    throw new InvalidOperationException($"tensor '{tensors[i].Name}' wrote {fs.Position - start} bytes, expected {sizes[i]}");
                Pad(fs, alignment);
            }
        });
    }

    private static void Pad(Stream s, int alignment)
    {
        long pad = (alignment - s.Position % alignment) % alignment;
        for (long i = 0; i < pad; i++) s.WriteByte(0);
    }

    /// <summary>Encodes fp32 values as a ggml type (F32, F16, Q8_0 blocks: fp16 d = max|x|/127, round(x/d); Q4_0: d = m/−8 with m the value of largest magnitude, q = min(15, ⌊x/d + 8.5⌋)).</summary>
    public static byte[] Encode(ReadOnlySpan<float> x, uint type)
    {
        switch (type)
        {
            case GgufFile.F32: return System.Runtime.InteropServices.MemoryMarshal.AsBytes(x).ToArray();
            case GgufFile.F16:
            {
                var o = new byte[x.Length * 2];
                for (int i = 0; i < x.Length; i++) BinaryPrimitives.WriteHalfLittleEndian(o.AsSpan(2 * i), (Half)x[i]);
                return o;
            }
            case GgufFile.Q8_0:
            {
                if (x.Length % 32 != 0) throw new ArgumentException("Q8_0 needs whole blocks of 32");
                var o = new byte[x.Length / 32 * 34];
                for (int b = 0; b < x.Length / 32; b++)
                {
                    var v = x.Slice(b * 32, 32);
                    float amax = 0;
                    foreach (var e in v) amax = MathF.Max(amax, MathF.Abs(e));
                    float d = amax / 127f, id = d > 0 ? 1 / d : 0;
                    BinaryPrimitives.WriteHalfLittleEndian(o.AsSpan(b * 34), (Half)d);
                    for (int j = 0; j < 32; j++) o[b * 34 + 2 + j] = (byte)(sbyte)Math.Clamp((int)MathF.Round(v[j] * id), -127, 127);
                }
                return o;
            }
            case GgufFile.Q4_0:
            {
                if (x.Length % 32 != 0) throw new ArgumentException("Q4_0 needs whole blocks of 32");
                var o = new byte[x.Length / 32 * 18];
                for (int b = 0; b < x.Length / 32; b++)
                {
                    var v = x.Slice(b * 32, 32);
                    float amax = 0, max = 0;
                    foreach (var e in v) if (MathF.Abs(e) > amax) { amax = MathF.Abs(e); max = e; }
                    float d = max / -8f, id = d != 0 ? 1 / d : 0;
                    BinaryPrimitives.WriteHalfLittleEndian(o.AsSpan(b * 18), (Half)d);
                    for (int j = 0; j < 16; j++)
                    {
                        int lo = Math.Min(15, (int)(v[j] * id + 8.5f)), hi = Math.Min(15, (int)(v[j + 16] * id + 8.5f));
                        o[b * 18 + 2 + j] = (byte)(lo | hi << 4);
                    }
                }
                return o;
            }
            default: throw new ArgumentException($"ggml type {type} is not encoded here");
        }
    }

    /// <summary>
    /// Writes a LLaMA checkpoint: standard llama.* metadata, the vocabulary as tokenizer.ggml.* (spaces as U+2581),
    /// matrices in <paramref name="matrixType"/>, norms in F32. <paramref name="values"/> yields each tensor's fp32
    /// values (rows × cols, name as in <see cref="LlamaCheckpoint"/>) on demand.
    /// </summary>
    public static void WriteLlama(string path, LlamaConfig c, LlamaVocabulary? vocab, IEnumerable<(string Name, int Rows, int Cols)> layout,
        Func<string, int, int, float[]> values, uint matrixType)
    {
        var meta = new List<KeyValuePair<string, object>>
        {
            new("general.architecture", "llama"), new("general.name", Path.GetFileNameWithoutExtension(path)), new("general.alignment", 32u),
            new("llama.context_length", (uint)c.SeqLen), new("llama.embedding_length", (uint)c.Dim), new("llama.block_count", (uint)c.Layers),
            new("llama.feed_forward_length", (uint)c.HiddenDim), new("llama.attention.head_count", (uint)c.Heads),
            new("llama.attention.head_count_kv", (uint)c.KvHeads), new("llama.rope.freq_base", c.RopeTheta),
            new("llama.attention.layer_norm_rms_epsilon", c.NormEps), new("llama.rope.dimension_count", (uint)c.HeadSize),
        };
        if (vocab is not null)
        {
            meta.Add(new("tokenizer.ggml.model", "llama"));
            meta.Add(new("tokenizer.ggml.tokens", vocab.Pieces.Select(p => Encoding.UTF8.GetString(p).Replace(' ', '\u2581')).ToArray()));
            meta.Add(new("tokenizer.ggml.scores", vocab.Scores));
            meta.Add(new("tokenizer.ggml.bos_token_id", (uint)vocab.BosId));
            meta.Add(new("tokenizer.ggml.eos_token_id", (uint)vocab.EosId));
        }
        var sources = layout.Select(t =>
        {
            uint type = t.Rows == 1 ? GgufFile.F32 : matrixType;
            ulong[] dims = t.Rows == 1 ? [(ulong)t.Cols] : [(ulong)t.Cols, (ulong)t.Rows];
            return new GgufTensorSource(t.Name, type, dims, s => s.Write(Encode(values(t.Name, t.Rows, t.Cols), type)));
        }).ToList();
        Write(path, meta, sources);
    }
}
