using System.Buffers.Binary;
using System.Text;
using OnDevice.Core;
using OnDevice.Formats.Npy;
using OnDevice.TestSupport;

namespace OnDevice.Formats.Tests;

public class NpyTests
{
    private static readonly DType[] NumpyTypes =
    [
        DType.Float16, DType.Float32, DType.Float64, DType.Int8, DType.UInt8, DType.Int16, DType.UInt16,
        DType.Int32, DType.UInt32, DType.Int64, DType.UInt64, DType.Bool,
    ];

    private static readonly long[][] Shapes = [[], [0, 3], [5], [2, 3], [2, 3, 4], [1, 1, 7], [3, 0]];

    public static TheoryData<DType, string> DTypesAndShapes()
    {
        var d = new TheoryData<DType, string>();
        foreach (var t in NumpyTypes)
            foreach (var s in Shapes) d.Add(t, string.Join('x', s));
        return d;
    }

    internal static long[] ParseShape(string s) => s.Length == 0 ? [] : s.Split('x').Select(long.Parse).ToArray();

    internal static Tensor RandomTensor(DType dtype, long[] dims, int seed, string name = "")
    {
        var t = Tensor.Zeros(dtype, dims, name);
        new Random(seed).NextBytes(t.MutableBytes);
        if (dtype == DType.Bool)
            foreach (ref byte b in t.MutableBytes) b &= 1;
        return t;
    }

    /// <summary>A .npy file with <paramref name="header"/> padded (as numpy does) so the data starts on a 64-byte boundary.</summary>
    private static byte[] Npy(string header, byte[] data, int major = 1, Encoding? encoding = null)
    {
        var text = (encoding ?? Encoding.Latin1).GetBytes(header);
        int prefix = major == 1 ? 10 : 12;
        int pad = (64 - (prefix + text.Length + 1) % 64) % 64;
        var r = new List<byte>([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', (byte)major, 0]);
        int headerLength = text.Length + pad + 1;
        if (major == 1) r.AddRange(BitConverter.GetBytes((ushort)headerLength));
        else r.AddRange(BitConverter.GetBytes((uint)headerLength));
        r.AddRange(text);
        r.AddRange(Enumerable.Repeat((byte)' ', pad));
        r.Add((byte)'\n');
        r.AddRange(data);
        return r.ToArray();
    }

    private static byte[] Floats(params float[] v) => v.SelectMany(BitConverter.GetBytes).ToArray();

    [Theory]
    [MemberData(nameof(DTypesAndShapes))]
    public void RoundTrip_EveryDTypeAndShape_GivesIdenticalTensorAndFileBytes(DType dtype, string shape)
    {
        var dims = ParseShape(shape);
        var t = RandomTensor(dtype, dims, seed: 42);
        using var dir = new TempDir();
        var path = dir.File("a.npy");
        NpyFile.Write(path, t);
        var fileBytes = File.ReadAllBytes(path);
        Assert.Equal(NpyFile.ToBytes(t), fileBytes);
        Assert.Equal(0, (fileBytes.Length - t.ByteLength) % 64); // data starts on numpy's 64-byte boundary

        var back = NpyFile.Read(path);
        Assert.Equal(dtype, back.DType);
        Assert.Equal(dims, back.Dims);
        Assert.True(t.ContentEquals(back));
        Assert.Equal("a", back.Name);
        Assert.Equal(t.ByteLength > 0, back.IsMemoryMapped);
        Assert.Equal(fileBytes, NpyFile.ToBytes(back));

        var fromMemory = NpyFile.Read(fileBytes);
        Assert.True(t.ContentEquals(fromMemory));
        Assert.False(fromMemory.IsMemoryMapped);
    }

    [Fact]
    public void HandMadeFileFromTheSpec_ReadsCorrectly_AndOurWriterProducesTheSameBytes()
    {
        // Magic, version 1.0, header length 118 (little-endian u16), the dict literal numpy writes, spaces so that
        // 10 + 118 = 128 is a multiple of 64, a newline, then six little-endian float32 values.
        const string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
        var file = new List<byte> { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 0x01, 0x00, 118, 0 };
        file.AddRange(Encoding.ASCII.GetBytes(dict));
        file.AddRange(Enumerable.Repeat((byte)' ', 118 - dict.Length - 1));
        file.Add((byte)'\n');
        Assert.Equal(128, file.Count);
        float[] values = [1f, -2.5f, 3.25f, 0f, float.MaxValue, -0.125f];
        file.AddRange(Floats(values));
        var bytes = file.ToArray();

        var t = NpyFile.Read(bytes, "spec.npy");
        Assert.Equal(DType.Float32, t.DType);
        Assert.Equal([2L, 3L], t.Dims);
        Assert.Equal(values, t.ToFloatArray());

        Assert.Equal(bytes, NpyFile.ToBytes(Tensor.FromArray<float>(values, [2, 3])));
    }

    [Fact]
    public void WriterMatchesNumpysHeaderLayout_ForScalarsAndVectors()
    {
        // numpy.save(np.float64(1.0)) and numpy.save(np.arange(3, dtype=np.int32)): the 21-character growth
        // padding only follows a non-empty shape.
        var scalar = NpyFile.ToBytes(Tensor.Scalar(1.0));
        var scalarHeader = Encoding.ASCII.GetString(scalar, 10, scalar.Length - 10 - 8);
        Assert.Equal("{'descr': '<f8', 'fortran_order': False, 'shape': (), }".PadRight(117) + "\n", scalarHeader);

        var vector = NpyFile.ToBytes(Tensor.FromArray<int>([0, 1, 2], [3]));
        var vectorHeader = Encoding.ASCII.GetString(vector, 10, vector.Length - 10 - 12);
        Assert.StartsWith("{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }", vectorHeader);
        Assert.Equal(118, vectorHeader.Length);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Versions2And3_AreRead(int major)
    {
        var data = Floats(1, 2, 3, 4);
        var t = NpyFile.Read(Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", data, major, major == 3 ? Encoding.UTF8 : null));
        Assert.Equal([2L, 2L], t.Dims);
        Assert.Equal([1f, 2f, 3f, 4f], t.ToFloatArray());
    }

    [Fact]
    public void HugeHeader_IsWrittenAsVersion2_AndReadBack()
    {
        var dims = Enumerable.Repeat(1L, 22_000).ToArray();
        var t = Tensor.FromArray<short>([-7], dims);
        var bytes = NpyFile.ToBytes(t);
        Assert.Equal(2, bytes[6]);
        uint headerLength = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8));
        Assert.True(headerLength > ushort.MaxValue);
        Assert.Equal(0u, (12 + headerLength) % 64);
        var back = NpyFile.Read(bytes);
        Assert.True(t.ContentEquals(back));
    }

    [Fact]
    public void BigEndianData_IsByteSwappedOnRead()
    {
        var f = NpyFile.Read(Npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }",
            Floats(1.5f, -2f).Chunk(4).SelectMany(c => c.Reverse()).ToArray()));
        Assert.Equal([1.5f, -2f], f.ToFloatArray());

        var i = NpyFile.Read(Npy("{'descr': '>i2', 'fortran_order': False, 'shape': (3,), }", [0x01, 0x02, 0xFF, 0xFE, 0x00, 0x07]));
        Assert.Equal([0x0102L, -2L, 7L], i.ToInt64Array());

        var u8 = NpyFile.Read(Npy("{'descr': '>u1', 'fortran_order': False, 'shape': (2,), }", [9, 200]));
        Assert.Equal([9L, 200L], u8.ToInt64Array());
    }

    [Theory]
    [InlineData("{'descr': '=i4', 'fortran_order': False, 'shape': (2,), }")]
    [InlineData("{'descr': '|i4', 'fortran_order': False, 'shape': (2,), }")]
    [InlineData("{'descr': 'i4', 'fortran_order': False, 'shape': (2,), }")]
    [InlineData("{\"shape\": (2,), \"descr\": \"<i4\", \"fortran_order\": False}")]
    [InlineData("{ 'fortran_order' : False ,\n 'shape' : ( 2 , ) , 'descr' : '<i4' }")]
    [InlineData("{'descr': '<i4', 'fortran_order': True, 'shape': (2,), }")]
    [InlineData("{'descr': '<i4', 'fortran_order': True, 'shape': (1, 2, 1), }")]
    public void HeaderVariants_AreAccepted(string header)
    {
        var t = NpyFile.Read(Npy(header, [5, 0, 0, 0, 0xFA, 0xFF, 0xFF, 0xFF]));
        Assert.Equal(DType.Int32, t.DType);
        Assert.Equal([5L, -6L], t.ToInt64Array());
    }

    [Fact]
    public void UnpaddedHeaderWithoutNewline_IsAccepted()
    {
        var text = "{'descr': '|u1', 'fortran_order': False, 'shape': (3,)}"u8.ToArray();
        var bytes = new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, (byte)text.Length, 0 }
            .Concat(text).Concat(new byte[] { 1, 2, 3 }).ToArray();
        Assert.Equal([1L, 2L, 3L], NpyFile.Read(bytes).ToInt64Array());
    }

    public static TheoryData<string> MalformedCases() => [.. Malformed.Keys];

    private static readonly Dictionary<string, byte[]> Malformed = BuildMalformed();

    private static Dictionary<string, byte[]> BuildMalformed()
    {
        string H(string descr = "'<f4'", string fortran = "False", string shape = "(2,)") =>
            $"{{'descr': {descr}, 'fortran_order': {fortran}, 'shape': {shape}, }}";
        var two = Floats(1, 2);
        var good = Npy(H(), two);
        var d = new Dictionary<string, byte[]>
        {
            ["empty file"] = [],
            ["truncated magic"] = good[..4],
            ["magic without version"] = good[..7],
            ["bad magic"] = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Z', .. good[6..]],
            ["zip file"] = [(byte)'P', (byte)'K', 3, 4, .. good[4..]],
            ["version 4.0"] = [.. good[..6], 4, 0, .. good[8..]],
            ["version 1.1"] = [.. good[..6], 1, 1, .. good[8..]],
            ["truncated header length"] = good[..9],
            ["truncated header"] = good[..40],
            ["header length past end"] = [.. good[..8], 0xFF, 0xFF, .. good[10..]],
            ["header too big"] = [.. Npy(H(), two, 2)[..8], 0, 0, 0, 0x10, .. new byte[64]],
            ["header is a list"] = Npy("['descr', '<f4']", two),
            ["header is empty dict"] = Npy("{}", two),
            ["missing shape"] = Npy("{'descr': '<f4', 'fortran_order': False}", two),
            ["missing descr"] = Npy("{'fortran_order': False, 'shape': (2,)}", two),
            ["missing fortran_order"] = Npy("{'descr': '<f4', 'shape': (2,)}", two),
            ["extra key"] = Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", two),
            ["duplicate key"] = Npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", two),
            ["missing comma"] = Npy("{'descr': '<f4' 'fortran_order': False, 'shape': (2,)}", two),
            ["double comma"] = Npy("{'descr': '<f4',, 'fortran_order': False, 'shape': (2,)}", two),
            ["misquoted key"] = Npy("{'descr: '<f4', 'fortran_order': False, 'shape': (2,)}", two),
            ["unterminated string"] = Npy("{'descr': '<f4", two),
            ["escape in string"] = Npy("{'descr': '<f\\x34', 'fortran_order': False, 'shape': (2,)}", two),
            ["unclosed dict"] = Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), ", two),
            ["garbage after dict"] = Npy(H() + " x", two),
            ["unknown descr"] = Npy(H(descr: "'<f3'"), two),
            ["complex descr"] = Npy(H(descr: "'<c8'"), [.. two, .. two]),
            ["object descr"] = Npy(H(descr: "'|O'"), two),
            ["string descr"] = Npy(H(descr: "'<U2'"), two),
            ["structured descr"] = Npy(H(descr: "[('a', '<f4')]"), two),
            ["descr not a string"] = Npy(H(descr: "4"), two),
            ["fortran order"] = Npy(H(fortran: "True", shape: "(2, 3)"), new byte[24]),
            ["fortran_order not bool"] = Npy(H(fortran: "0"), two),
            ["fortran_order None"] = Npy(H(fortran: "None"), two),
            ["fortran_order Truer"] = Npy(H(fortran: "Truer"), two),
            ["shape is a list"] = Npy(H(shape: "[2]"), two),
            ["shape is an int in parens"] = Npy(H(shape: "(2)"), two),
            ["shape is an int"] = Npy(H(shape: "2"), two),
            ["negative dimension"] = Npy(H(shape: "(-2,)"), two),
            ["float dimension"] = Npy(H(shape: "(2.0,)"), two),
            ["leading zero dimension"] = Npy(H(shape: "(02,)"), two),
            ["dimension overflows"] = Npy(H(shape: "(99999999999999999999,)"), two),
            ["element count overflows"] = Npy(H(shape: "(4294967296, 4294967296)"), two),
            ["byte count overflows"] = Npy(H(shape: "(4611686018427387904,)"), two),
            ["lone comma in shape"] = Npy(H(shape: "(,)"), two),
            ["data too short"] = Npy(H(), Floats(1)),
            ["data too long"] = Npy(H(), Floats(1, 2, 3)),
            ["data truncated mid element"] = Npy(H(), two)[..^1],
            ["version 3 header not UTF-8"] = Npy(H(descr: "'<f4\u00e9'"), two, 3, Encoding.Latin1),
        };
        return d;
    }

    [Theory]
    [MemberData(nameof(MalformedCases))]
    public void MalformedInput_ThrowsModelFormatException(string name)
    {
        var e = Assert.Throws<ModelFormatException>(() => NpyFile.Read(Malformed[name], name));
        Assert.Equal(name, e.FilePath);
        Assert.StartsWith(name + ": ", e.Message);
        Assert.False(string.IsNullOrWhiteSpace(e.Fault));
    }

    [Fact]
    public void MalformedFileOnDisk_NamesTheFileAndTheFault()
    {
        using var dir = new TempDir();
        var path = dir.File("fortran.npy");
        File.WriteAllBytes(path, Malformed["fortran order"]);
        var e = Assert.Throws<ModelFormatException>(() => NpyFile.Read(path));
        Assert.Equal(path, e.FilePath);
        Assert.Contains("Fortran order not supported", e.Message);
        Assert.Contains(path, e.Message);

        var missing = dir.File("missing.npy");
        Assert.Contains("file not found", Assert.Throws<ModelFormatException>(() => NpyFile.Read(missing)).Message);
        Assert.Contains("directory", Assert.Throws<ModelFormatException>(() => NpyFile.Read(dir.Path)).Message);
    }

    [Fact]
    public void SpecificFaults_HaveClearMessages()
    {
        string Fault(string name) => Assert.Throws<ModelFormatException>(() => NpyFile.Read(Malformed[name])).Fault;
        Assert.Contains("magic", Fault("bad magic"));
        Assert.Contains("truncated", Fault("header length past end"));
        Assert.Contains("MaxHeaderBytes", Fault("header too big"));
        Assert.Contains("not a Python dict", Fault("header is a list"));
        Assert.Contains("'<f3'", Fault("unknown descr"));
        Assert.Contains("pickled", Fault("object descr"));
        Assert.Contains("structured", Fault("structured descr"));
        Assert.Contains("negative", Fault("negative dimension"));
        Assert.Contains("overflows", Fault("dimension overflows"));
        Assert.Contains("overflows", Fault("element count overflows"));
        Assert.Contains("not a tuple", Fault("shape is an int in parens"));
        Assert.Contains("truncated", Fault("data too short"));
        Assert.Contains("extra", Fault("data too long"));
        Assert.Contains("'x'", Fault("extra key"));
        Assert.Contains("twice", Fault("duplicate key"));
        Assert.Contains("UTF-8", Fault("version 3 header not UTF-8"));
    }

    [Theory]
    [InlineData(DType.BFloat16, "bfloat16")]
    [InlineData(DType.Int4, "int4")]
    [InlineData(DType.UInt4, "uint4")]
    public void Write_RejectsTypesNumpyCannotHold(DType dtype, string named)
    {
        var t = Tensor.Zeros(dtype, [4], "w");
        Assert.Contains(named, Assert.Throws<ArgumentException>(() => NpyFile.ToBytes(t)).Message);
        using var dir = new TempDir();
        var path = dir.File("w.npy");
        Assert.Throws<ArgumentException>(() => NpyFile.Write(path, t));
        Assert.False(File.Exists(path));
        Assert.Empty(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void Write_RejectsStringTensors()
    {
        var t = Tensor.FromStrings(["a", "b"], [2], "s");
        Assert.Contains("string", Assert.Throws<ArgumentException>(() => NpyFile.ToBytes(t)).Message);
    }

    [Fact]
    public void Write_ReplacesAnExistingFile()
    {
        using var dir = new TempDir();
        var path = dir.File("x.npy");
        NpyFile.Write(path, Tensor.FromArray<long>([1, 2, 3], [3]));
        NpyFile.Write(path, Tensor.FromArray<double>([4.5], [1, 1]));
        var t = NpyFile.Read(path);
        Assert.Equal(DType.Float64, t.DType);
        Assert.Equal([1L, 1L], t.Dims);
        Assert.Single(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void MappedRead_AliasesTheFile_AndWritesToTheTensorDoNotReachIt()
    {
        using var dir = new TempDir();
        var path = dir.File("m.npy");
        NpyFile.Write(path, Tensor.FromArray<float>([1, 2, 3, 4], [4]));
        var t = NpyFile.Read(path);
        Assert.True(t.IsMemoryMapped);
        t.AsMutableSpan<float>()[0] = 99;
        Assert.Equal(1f, NpyFile.Read(path).ToFloatArray()[0]);
    }

    [Fact]
    public void Fuzz_MutatedFilesEitherReadOrThrowModelFormatException()
    {
        var valid = NpyFile.ToBytes(RandomTensor(DType.Int16, [3, 5], seed: 7));
        var outcome = ByteFuzzer.Run(valid, headerBytes: 128, cases: 2000, seed: 1234, read: b => NpyFile.Read(b));
        Assert.True(outcome.Failures.Count == 0, string.Join("\n", outcome.Failures.Take(20)));
        Assert.True(outcome.Rejected > 0 && outcome.Accepted > 0, $"accepted {outcome.Accepted}, rejected {outcome.Rejected}");
    }

    [Fact]
    public void Fuzz_MutatedFilesOnDisk_EitherReadOrThrowModelFormatException()
    {
        using var dir = new TempDir();
        var path = dir.File("fuzz.npy");
        var valid = NpyFile.ToBytes(RandomTensor(DType.Float32, [2, 2], seed: 8));
        var outcome = ByteFuzzer.Run(valid, headerBytes: 128, cases: 200, seed: 1234, read: b =>
        {
            File.WriteAllBytes(path, b);
            NpyFile.Read(path);
        });
        Assert.True(outcome.Failures.Count == 0, string.Join("\n", outcome.Failures.Take(20)));
    }
}
