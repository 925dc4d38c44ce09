using System.Buffers.Binary;
using System.Text;
using OnDevice.Core;
using OnDevice.Formats.Safetensors;
using OnDevice.TestSupport;

namespace OnDevice.Formats.Tests;

public class SafetensorsTests
{
    private static readonly DType[] SafetensorsTypes =
    [
        DType.Float64, DType.Float32, DType.Float16, DType.BFloat16, DType.Int64, DType.Int32, DType.Int16,
        DType.Int8, DType.UInt64, DType.UInt32, DType.UInt16, DType.UInt8, DType.Bool,
    ];

    private static readonly long[][] Shapes = [[], [0, 3], [5], [2, 3], [2, 3, 4], [1, 1, 7]];

    public static TheoryData<DType, string> DTypesAndShapes()
    {
        var d = new TheoryData<DType, string>();
        foreach (var t in SafetensorsTypes)
            foreach (var s in Shapes) d.Add(t, string.Join('x', s));
        return d;
    }

    /// <summary>A safetensors file: the u64 length of <paramref name="json"/> (padded with spaces to 8 if asked), the JSON, the data.</summary>
    private static byte[] St(string json, byte[] data, bool pad = true) => St(Encoding.UTF8.GetBytes(json), data, pad);

    private static byte[] St(byte[] json, byte[] data, bool pad = true)
    {
        var header = json.ToList();
        while (pad && header.Count % 8 != 0) header.Add((byte)' ');
        var r = new byte[8 + header.Count + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(r, (ulong)header.Count);
        header.CopyTo(r, 8);
        data.CopyTo(r, 8 + header.Count);
        return r;
    }

    private static byte[] Floats(params float[] v) => v.SelectMany(BitConverter.GetBytes).ToArray();

    private static List<Tensor> MixedTensors()
    {
        var list = new List<Tensor>();
        int seed = 0;
        foreach (var t in SafetensorsTypes)
            list.Add(NpyTests.RandomTensor(t, Shapes[seed % Shapes.Length], seed++, $"layer{seed % 4}.{t.Name()}"));
        list.Add(NpyTests.RandomTensor(DType.Float32, [], 99, "scalar"));
        list.Add(NpyTests.RandomTensor(DType.Float32, [0, 3], 98, "empty"));
        list.Add(NpyTests.RandomTensor(DType.UInt8, [3], 97, "ünïcode \"quoted\" \\ name\n"));
        return list;
    }

    [Theory]
    [MemberData(nameof(DTypesAndShapes))]
    public void RoundTrip_EveryDTypeAndShape(DType dtype, string shape)
    {
        var t = NpyTests.RandomTensor(dtype, NpyTests.ParseShape(shape), 5, "t");
        using var dir = new TempDir();
        var path = dir.File("one.safetensors");
        SafetensorsFile.Write(path, [t]);
        var fileBytes = File.ReadAllBytes(path);
        Assert.Equal(SafetensorsFile.ToBytes([t]), fileBytes);
        var back = Assert.Single(SafetensorsFile.Read(path));
        Assert.Equal("t", back.Name);
        Assert.True(t.ContentEquals(back));
        Assert.Equal(t.ByteLength > 0, back.IsMemoryMapped);
        Assert.Equal(fileBytes, SafetensorsFile.ToBytes([back]));
    }

    [Fact]
    public void RoundTrip_ManyTensorsWithMetadata_GivesIdenticalBytes()
    {
        var tensors = MixedTensors();
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ünïcode \"and\" \\ escapes\t", ["empty"] = "" };
        using var dir = new TempDir();
        var path = dir.File("many.safetensors");
        SafetensorsFile.Write(path, tensors, metadata);
        var fileBytes = File.ReadAllBytes(path);

        var content = SafetensorsFile.ReadAll(path);
        Assert.Equal(tensors.Count, content.Tensors.Count);
        foreach (var t in tensors)
        {
            var b = Assert.Single(content.Tensors, x => x.Name == t.Name);
            Assert.True(t.ContentEquals(b), $"{t} differs");
            Assert.Equal(t.ByteLength > 0, b.IsMemoryMapped);
        }
        Assert.Equal(metadata, content.Metadata);
        Assert.Equal(metadata, SafetensorsFile.ReadMetadata(path));
        Assert.Equal(fileBytes, SafetensorsFile.ToBytes(content.Tensors, content.Metadata));

        var fromMemory = SafetensorsFile.ReadAll(fileBytes);
        Assert.Equal(content.Tensors.Select(t => t.Name), fromMemory.Tensors.Select(t => t.Name));
        Assert.All(fromMemory.Tensors, t => Assert.False(t.IsMemoryMapped));
    }

    [Fact]
    public void Writer_LaysTensorsOutLikeTheReference_ByAlignmentThenName_AllNaturallyAligned()
    {
        var bytes = SafetensorsFile.ToBytes(MixedTensors());
        var tensors = SafetensorsFile.Read(bytes);
        // Read returns tensors in data order, which is the order they were written in.
        var order = tensors.Select(t => t.DType).ToList();
        Assert.Equal(
            [DType.UInt64, DType.Int64, DType.Float64, DType.Float32, DType.Float32, DType.Float32, DType.UInt32, DType.Int32,
             DType.BFloat16, DType.Float16, DType.UInt16, DType.Int16, DType.Int8, DType.UInt8, DType.UInt8, DType.Bool],
            order);
        var f32 = tensors.Where(t => t.DType == DType.Float32).Select(t => t.Name).ToList();
        Assert.Equal(f32.Order(StringComparer.Ordinal), f32);

        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0UL, n % 8);
        var json = System.Text.Json.JsonDocument.Parse(bytes.AsMemory(8, (int)n));
        foreach (var p in json.RootElement.EnumerateObject())
        {
            var t = tensors.Single(x => x.Name == p.Name);
            long begin = p.Value.GetProperty("data_offsets")[0].GetInt64();
            Assert.Equal(0, (8 + (long)n + begin) % (t.DType.BitsPerElement() / 8));
        }
    }

    [Fact]
    public void Writer_MatchesTheReferenceImplementationsBytes()
    {
        // Header text exactly as serde_json writes it: compact, fields in dtype/shape/data_offsets order.
        var t = Tensor.FromArray<float>([0, 1, 2, 3, 4, 5], [1, 2, 3], "attn.0");
        Assert.Equal(St("{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}", Floats(0, 1, 2, 3, 4, 5)),
            SafetensorsFile.ToBytes([t]));
        Assert.Equal(64UL, BinaryPrimitives.ReadUInt64LittleEndian(SafetensorsFile.ToBytes([t])));

        Assert.Equal(St("{}", []), SafetensorsFile.ToBytes([]));
        Assert.Equal(16, SafetensorsFile.ToBytes([]).Length);

        var meta = SafetensorsFile.ToBytes([], new Dictionary<string, string> { ["framework"] = "pt" });
        Assert.Equal(St("{\"__metadata__\":{\"framework\":\"pt\"}}", []), meta);
        Assert.Equal(40UL, BinaryPrimitives.ReadUInt64LittleEndian(meta));
    }

    [Fact]
    public void HandBuiltFileWithMetadata_ReadsCorrectly()
    {
        // Entries out of data order, pretty-printed, not padded: all allowed by the format.
        const string json = """
            {
              "bias": {"dtype": "I64", "shape": [], "data_offsets": [16, 24]},
              "__metadata__": {"format": "pt", "source": "hand\u0020built"},
              "weight": {"shape": [2, 2], "data_offsets": [0, 16], "dtype": "F32"},
              "mask": {"dtype": "BOOL", "shape": [3], "data_offsets": [24, 27]},
              "none": {"dtype": "BF16", "shape": [0], "data_offsets": [27, 27]}
            }
            """;
        var data = Floats(1, 2, 3, 4).Concat(BitConverter.GetBytes(-42L)).Concat(new byte[] { 1, 0, 1 }).ToArray();
        var bytes = St(json, data, pad: false);
        var content = SafetensorsFile.ReadAll(bytes, "hand.safetensors");

        Assert.Equal(["weight", "bias", "mask", "none"], content.Tensors.Select(t => t.Name));
        Assert.Equal([1f, 2f, 3f, 4f], content.Tensors[0].ToFloatArray());
        Assert.Equal([2L, 2L], content.Tensors[0].Dims);
        Assert.Equal(DType.Int64, content.Tensors[1].DType);
        Assert.Empty(content.Tensors[1].Dims);
        Assert.Equal([-42L], content.Tensors[1].ToInt64Array());
        Assert.Equal(DType.Bool, content.Tensors[2].DType);
        Assert.Equal([1L, 0L, 1L], content.Tensors[2].ToInt64Array());
        Assert.Equal(DType.BFloat16, content.Tensors[3].DType);
        Assert.Equal(0, content.Tensors[3].ElementCount);
        Assert.Equal(new Dictionary<string, string> { ["format"] = "pt", ["source"] = "hand built" }, content.Metadata);
    }

    [Fact]
    public void MissingOrNullMetadata_GivesAnEmptyMap()
    {
        Assert.Empty(SafetensorsFile.ReadAll(St("{\"x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", [7])).Metadata);
        Assert.Empty(SafetensorsFile.ReadAll(St("{\"__metadata__\":null}", [])).Metadata);
    }

    private static string Entry(string name, string dtype, string shape, long begin, long end) =>
        $"\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":[{begin},{end}]}}";

    public static TheoryData<string> MalformedCases() => [.. Malformed.Keys];

    private static readonly Dictionary<string, byte[]> Malformed = BuildMalformed();

    private static Dictionary<string, byte[]> BuildMalformed()
    {
        var eight = Floats(1, 2);
        string One(string dtype = "F32", string shape = "[2]", long begin = 0, long end = 8) => "{" + Entry("a", dtype, shape, begin, end) + "}";
        var good = St(One(), eight);
        byte[] WithLength(ulong n, byte[] rest) { var r = new byte[8 + rest.Length]; BinaryPrimitives.WriteUInt64LittleEndian(r, n); rest.CopyTo(r, 8); return r; }
        return new Dictionary<string, byte[]>
        {
            ["empty file"] = [],
            ["shorter than the length field"] = [1, 0, 0],
            ["header length too big"] = WithLength(SafetensorsFile.MaxHeaderBytes + 1, good[8..]),
            ["header length u64 max"] = WithLength(ulong.MaxValue, good[8..]),
            ["header length past end"] = WithLength((ulong)good.Length, good[8..]),
            ["truncated header"] = good[..20],
            ["truncated data"] = good[..^1],
            ["zero header length"] = WithLength(0, good[8..]),
            ["invalid JSON"] = St("{\"a\":{\"dtype\":\"F32\",", eight),
            ["JSON with trailing garbage"] = St(One() + "}", eight),
            ["header is an array"] = St("[1,2]", eight),
            ["header is not UTF-8"] = St([.. "{\""u8, 0xFF, .. "\":1}"u8], eight),
            ["header padded with NULs"] = St([.. Encoding.ASCII.GetBytes(One()), .. new byte[8]], eight, pad: false),
            ["overlapping offsets"] = St("{" + Entry("a", "F32", "[2]", 0, 8) + "," + Entry("b", "F32", "[1]", 4, 8) + "}", eight),
            ["same offsets twice"] = St("{" + Entry("a", "F32", "[1]", 0, 4) + "," + Entry("b", "F32", "[1]", 0, 4) + "}", eight),
            ["gap before a tensor"] = St("{" + Entry("a", "F32", "[1]", 4, 8) + "}", eight),
            ["bytes after the last tensor"] = St("{" + Entry("a", "F32", "[1]", 0, 4) + "}", eight),
            ["offsets past the end"] = St(One(end: 12, shape: "[3]"), eight),
            ["offsets not matching dtype and shape"] = St(One(shape: "[3]"), eight),
            ["offsets reversed"] = St(One(begin: 8, end: 0), eight),
            ["offsets huge"] = St(One(begin: 0, end: long.MaxValue), eight),
            ["offsets beyond 2^63"] = St("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,18446744073709551615]}}", eight),
            ["three offsets"] = St("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", eight),
            ["offsets not an array"] = St("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":8}}", eight),
            ["duplicate tensor names"] = St("{" + Entry("a", "F32", "[1]", 0, 4) + "," + Entry("a", "F32", "[1]", 4, 8) + "}", eight),
            ["duplicate metadata"] = St("{\"__metadata__\":{},\"__metadata__\":{}," + Entry("a", "F32", "[2]", 0, 8) + "}", eight),
            ["duplicate field"] = St("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", eight),
            ["unknown dtype"] = St(One(dtype: "F8_E4M3", shape: "[8]"), eight),
            ["dtype not a string"] = St("{\"a\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", eight),
            ["missing dtype"] = St("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", eight),
            ["missing shape"] = St("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", eight),
            ["missing offsets"] = St("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", eight),
            ["unknown field"] = St("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", eight),
            ["entry not an object"] = St("{\"a\":[0,8]}", eight),
            ["negative dimension"] = St(One(shape: "[-2]"), eight),
            ["fractional dimension"] = St(One(shape: "[2.0]"), eight),
            ["exponent dimension"] = St(One(shape: "[2e0]"), eight),
            ["shape not an array"] = St(One(shape: "2"), eight),
            ["shape overflows"] = St(One(shape: "[4294967296,4294967296]"), eight),
            ["byte size overflows"] = St(One(dtype: "F64", shape: "[4611686018427387904]"), eight),
            ["metadata not an object"] = St("{\"__metadata__\":[\"x\"]," + Entry("a", "F32", "[2]", 0, 8) + "}", eight),
            ["metadata value not a string"] = St("{\"__metadata__\":{\"n\":1}," + Entry("a", "F32", "[2]", 0, 8) + "}", eight),
            ["lone surrogate in a name"] = St("{\"\\ud800\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", eight),
            ["lone surrogate in metadata"] = St("{\"__metadata__\":{\"k\":\"\\udc00\"}," + Entry("a", "F32", "[2]", 0, 8) + "}", eight),
            ["nested too deep"] = St("{\"__metadata__\":{\"k\":" + new string('[', 50) + new string(']', 50) + "}}", []),
        };
    }

    [Theory]
    [MemberData(nameof(MalformedCases))]
    public void MalformedInput_ThrowsModelFormatException(string name)
    {
        var e = Assert.Throws<ModelFormatException>(() => SafetensorsFile.ReadAll(Malformed[name], name));
        Assert.Equal(name, e.FilePath);
        Assert.StartsWith(name + ": ", e.Message);
    }

    [Theory]
    [MemberData(nameof(MalformedCases))]
    public void MalformedFileOnDisk_ThrowsModelFormatExceptionNamingTheFile(string name)
    {
        using var dir = new TempDir();
        var path = dir.File("bad.safetensors");
        File.WriteAllBytes(path, Malformed[name]);
        var e = Assert.Throws<ModelFormatException>(() => SafetensorsFile.Read(path));
        Assert.Equal(path, e.FilePath);
        Assert.Throws<ModelFormatException>(() => SafetensorsFile.ReadMetadata(path));
    }

    [Fact]
    public void SpecificFaults_HaveClearMessages()
    {
        string Fault(string name) => Assert.Throws<ModelFormatException>(() => SafetensorsFile.Read(Malformed[name])).Fault;
        Assert.Contains("MaxHeaderBytes", Fault("header length too big"));
        Assert.Contains("past the end of the file", Fault("header length past end"));
        Assert.Contains("not valid JSON", Fault("invalid JSON"));
        Assert.Contains("overlap", Fault("overlapping offsets"));
        Assert.Contains("overlap", Fault("same offsets twice"));
        Assert.Contains("gap", Fault("gap before a tensor"));
        Assert.Contains("after the last tensor", Fault("bytes after the last tensor"));
        Assert.Contains("needs 12 bytes", Fault("offsets not matching dtype and shape"));
        Assert.Contains("twice", Fault("duplicate tensor names"));
        Assert.Contains("F8_E4M3", Fault("unknown dtype"));
        Assert.Contains("overflows", Fault("shape overflows"));
        Assert.Contains("UTF-8", Fault("header is not UTF-8"));
    }

    [Fact]
    public void Write_RejectsWhatSafetensorsCannotHold()
    {
        var ok = Tensor.Zeros(DType.Float32, [1], "a");
        Assert.Contains("int4", Assert.Throws<ArgumentException>(() => SafetensorsFile.ToBytes([Tensor.Zeros(DType.Int4, [2], "q")])).Message);
        Assert.Contains("uint4", Assert.Throws<ArgumentException>(() => SafetensorsFile.ToBytes([Tensor.Zeros(DType.UInt4, [2], "q")])).Message);
        Assert.Contains("string", Assert.Throws<ArgumentException>(() => SafetensorsFile.ToBytes([Tensor.FromStrings(["x"], [1], "s")])).Message);
        Assert.Contains("'a'", Assert.Throws<ArgumentException>(() => SafetensorsFile.ToBytes([ok, ok.Clone()])).Message);
        Assert.Contains("reserved", Assert.Throws<ArgumentException>(() => SafetensorsFile.ToBytes([ok.Clone("__metadata__")])).Message);
        Assert.Throws<ArgumentException>(() => SafetensorsFile.ToBytes([ok.Clone("\ud800")]));

        using var dir = new TempDir();
        var path = dir.File("x.safetensors");
        Assert.Throws<ArgumentException>(() => SafetensorsFile.Write(path, [ok, ok.Clone()]));
        Assert.Empty(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void MissingFile_IsAModelFormatException()
    {
        using var dir = new TempDir();
        Assert.Contains("file not found", Assert.Throws<ModelFormatException>(() => SafetensorsFile.Read(dir.File("no.safetensors"))).Message);
        Assert.Contains("directory", Assert.Throws<ModelFormatException>(() => SafetensorsFile.Read(dir.Path)).Message);
    }

    [Fact]
    public void MappedRead_DoesNotCopy_AndWritesToTheTensorDoNotReachTheFile()
    {
        using var dir = new TempDir();
        var path = dir.File("m.safetensors");
        SafetensorsFile.Write(path, [Tensor.FromArray<float>([1, 2, 3], [3], "w"), Tensor.FromArray<long>([5], [1], "b")]);
        var tensors = SafetensorsFile.Read(path);
        Assert.All(tensors, t => Assert.True(t.IsMemoryMapped, $"{t} was copied"));
        tensors.Single(t => t.Name == "w").AsMutableSpan<float>()[0] = 42;
        Assert.Equal([1f, 2f, 3f], SafetensorsFile.Read(path).Single(t => t.Name == "w").ToFloatArray());
    }

    [Fact]
    public void Fuzz_MutatedFilesEitherReadOrThrowModelFormatException()
    {
        var tensors = new List<Tensor>
        {
            NpyTests.RandomTensor(DType.Float32, [2, 3], 1, "w"),
            NpyTests.RandomTensor(DType.Int64, [2], 2, "b"),
            NpyTests.RandomTensor(DType.Bool, [3], 3, "m"),
            NpyTests.RandomTensor(DType.BFloat16, [], 4, "s"),
        };
        var valid = SafetensorsFile.ToBytes(tensors, new Dictionary<string, string> { ["k"] = "v" });
        int headerEnd = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(valid);
        var outcome = ByteFuzzer.Run(valid, headerEnd, cases: 2000, seed: 1234, read: b => SafetensorsFile.ReadAll(b));
        Assert.True(outcome.Failures.Count == 0, string.Join("\n", outcome.Failures.Take(20)));
        Assert.True(outcome.Rejected > 0 && outcome.Accepted > 0, $"accepted {outcome.Accepted}, rejected {outcome.Rejected}");
    }

    [Fact]
    public void Fuzz_MutatedFilesOnDisk_EitherReadOrThrowModelFormatException()
    {
        using var dir = new TempDir();
        var path = dir.File("fuzz.safetensors");
        var valid = SafetensorsFile.ToBytes([NpyTests.RandomTensor(DType.Float16, [4], 1, "h"), NpyTests.RandomTensor(DType.UInt8, [2], 2, "u")]);
        int headerEnd = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(valid);
        var outcome = ByteFuzzer.Run(valid, headerEnd, cases: 200, seed: 1234, read: b =>
        {
            File.WriteAllBytes(path, b);
            SafetensorsFile.ReadAll(path);
        });
        Assert.True(outcome.Failures.Count == 0, string.Join("\n", outcome.Failures.Take(20)));
    }
}
