using Google.Protobuf;
using OnDevice.Core;
using OnDevice.Formats.Onnx;
using OnDevice.Formats.Onnx.Proto;
using OnDevice.TestSupport;

namespace OnDevice.Formats.Tests;

public class OnnxBadInputTests
{
    private static ModelProto MinimalModel(TensorProto? initializer = null)
    {
        var g = new GraphProto { Name = "g" };
        g.Input.Add(new ValueInfoProto { Name = "x", Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = 1 } } });
        g.Node.Add(new NodeProto { OpType = "Relu", Input = { "x" }, Output = { "y" } });
        g.Output.Add(new ValueInfoProto { Name = "y" });
        if (initializer is not null) g.Initializer.Add(initializer);
        var m = new ModelProto { IrVersion = 8, Graph = g };
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        return m;
    }

    private static ModelFormatException ReadFails(byte[] bytes, string expected)
    {
        using var dir = new TempDir();
        var path = dir.File("m.onnx");
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<ModelFormatException>(() => OnnxReader.Read(path));
        Assert.True(e.Message.Contains(expected, StringComparison.Ordinal), $"expected '{expected}' in: {e.Message}");
        Assert.Equal(path, e.FilePath);
        Assert.StartsWith(path + ": ", e.Message);
        return e;
    }

    [Fact]
    public void MinimalModel_Reads()
    {
        var m = OnnxReader.Read(MinimalModel().ToByteArray());
        Assert.Equal("Relu", Assert.Single(m.Graph.Nodes).OpType);
    }

    [Fact]
    public void MissingFile_DirectoryAndEmptyFile()
    {
        using var dir = new TempDir();
        Assert.Contains("file not found", Assert.Throws<ModelFormatException>(() => OnnxReader.Read(dir.File("nope.onnx"))).Message);
        Assert.Contains("is a directory", Assert.Throws<ModelFormatException>(() => OnnxReader.Read(dir.Path)).Message);
        ReadFails([], "file is empty");
    }

    [Fact]
    public void TruncatedFile_IsAFormatError()
    {
        var bytes = File.ReadAllBytes(SampleModels.Path("paddleocr-cls"));
        foreach (int cut in new[] { 1, 7, 100, bytes.Length / 2, bytes.Length - 1 })
        {
            using var dir = new TempDir();
            var path = dir.File("cut.onnx");
            File.WriteAllBytes(path, bytes[..cut]);
            var e = Assert.Throws<ModelFormatException>(() => OnnxReader.Read(path));
            Assert.Contains("malformed ONNX", e.Message);
        }
    }

    [Fact]
    public void RandomBytes_AreAFormatError()
    {
        var rng = new Random(7);
        for (int i = 0; i < 50; i++)
        {
            var bytes = new byte[rng.Next(1, 4096)];
            rng.NextBytes(bytes);
            Assert.Throws<ModelFormatException>(() => OnnxReader.Read(bytes));
        }
    }

    [Fact]
    public void ValidProtobufWithWrongFieldTypes_IsNamed()
    {
        // Field 1 (ir_version, a varint) sent as a length-delimited string.
        ReadFails([0x0A, 0x03, (byte)'a', (byte)'b', (byte)'c'], "ModelProto.ir_version has wire type length-delimited where the schema says varint");
        // Field 7 (graph, a message) sent as a varint.
        ReadFails([0x08, 0x08, 0x38, 0x05], "ModelProto.graph has wire type varint where the schema says length-delimited");
        // A tensor's dims as a fixed32.
        var m = MinimalModel(new TensorProto { Name = "w", DataType = 1, RawData = ByteString.CopyFrom(new byte[4]) });
        var bytes = m.ToByteArray().ToList();
        var bad = InjectIntoFirstInitializer(m, [0x0D, 1, 0, 0, 0]); // field 1 wire type 5
        ReadFails(bad, "TensorProto.dims has wire type fixed32 where the schema says varint");
    }

    private static byte[] InjectIntoFirstInitializer(ModelProto m, byte[] extra)
    {
        // Re-encode the graph with the first initializer's bytes followed by the extra raw field.
        var init = m.Graph.Initializer[0];
        var initBytes = init.ToByteArray().Concat(extra).ToArray();
        var g = m.Graph.Clone();
        g.Initializer.Clear();
        var graphBytes = g.ToByteArray().Concat(Tag(5, initBytes)).ToArray();
        var outer = m.Clone();
        outer.Graph = null;
        return outer.ToByteArray().Concat(Tag(7, graphBytes)).ToArray();
    }

    private static byte[] Tag(int field, byte[] payload)
    {
        using var ms = new MemoryStream();
        var cos = new CodedOutputStream(ms);
        cos.WriteTag(field, WireFormat.WireType.LengthDelimited);
        cos.WriteBytes(ByteString.CopyFrom(payload));
        cos.Flush();
        return ms.ToArray();
    }

    [Fact]
    public void TensorByteLengthDisagreeingWithShape_IsNamed()
    {
        var t = new TensorProto { Name = "w", DataType = 1, Dims = { 2, 3 }, RawData = ByteString.CopyFrom(new byte[20]) };
        ReadFails(MinimalModel(t).ToByteArray(), "tensor 'w' float32[2,3] has 20 bytes of raw_data, expected 24");
        var typed = new TensorProto { Name = "v", DataType = 1, Dims = { 4 }, FloatData = { 1, 2, 3 } };
        ReadFails(MinimalModel(typed).ToByteArray(), "tensor 'v' float32 needs 4 values, float_data has 3");
        var neg = new TensorProto { Name = "n", DataType = 1, Dims = { -2 } };
        ReadFails(MinimalModel(neg).ToByteArray(), "tensor 'n' has negative dimension -2");
        var huge = new TensorProto { Name = "h", DataType = 1, Dims = { long.MaxValue / 2, 4 } };
        ReadFails(MinimalModel(huge).ToByteArray(), "tensor 'h' has dimensions whose product overflows");
        var complex = new TensorProto { Name = "c", DataType = 14 };
        ReadFails(MinimalModel(complex).ToByteArray(), "tensor 'c' has unsupported data_type 14 (complex)");
    }

    [Fact]
    public void SparseInitializers_AreRejectedClearly()
    {
        var m = MinimalModel();
        m.Graph.SparseInitializer.Add(new SparseTensorProto { Dims = { 4 } });
        ReadFails(m.ToByteArray(), "sparse initializers are not supported");
    }

    [Theory]
    [InlineData("../../etc/passwd", "escapes the model's folder")]
    [InlineData("/etc/passwd", "must be a relative path inside the model's folder")]
    [InlineData("sub/../../outside.bin", "escapes the model's folder")]
    [InlineData("missing.bin", "external data file 'missing.bin' not found beside the model")]
    public void ExternalDataPaths_AreConfinedToTheModelFolder(string location, string expected)
    {
        var t = new TensorProto { Name = "w", DataType = 1, Dims = { 2 }, DataLocation = TensorProto.Types.DataLocation.External };
        t.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
        ReadFails(MinimalModel(t).ToByteArray(), expected);
    }

    [Fact]
    public void ExternalDataSymlinkLeadingOutside_IsRejected()
    {
        using var outside = new TempDir();
        using var dir = new TempDir();
        var secret = outside.File("secret.bin");
        File.WriteAllBytes(secret, new byte[8]);
        File.CreateSymbolicLink(dir.File("w.bin"), secret);
        var t = new TensorProto { Name = "w", DataType = 1, Dims = { 2 }, DataLocation = TensorProto.Types.DataLocation.External };
        t.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = "w.bin" });
        var path = dir.File("m.onnx");
        File.WriteAllBytes(path, MinimalModel(t).ToByteArray());
        var e = Assert.Throws<ModelFormatException>(() => OnnxReader.Read(path));
        Assert.Contains("is a link that leads outside the model's folder", e.Message);
    }

    [Fact]
    public void ModelReachedThroughASymbolicLink_ReadsTheTarget()
    {
        using var dir = new TempDir();
        var link = dir.File("link.onnx");
        File.CreateSymbolicLink(link, SampleModels.Path("openwakeword-hello-deepa"));
        var m = OnnxReader.Read(link);
        Assert.NotEmpty(m.Graph.Nodes);
    }

    [Fact]
    public void ExternalDataRangePastEndOfFile_IsRejected()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("w.bin"), new byte[10]);
        var t = new TensorProto { Name = "w", DataType = 1, Dims = { 2 }, DataLocation = TensorProto.Types.DataLocation.External };
        t.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = "w.bin" });
        t.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = "4" });
        var path = dir.File("m.onnx");
        File.WriteAllBytes(path, MinimalModel(t).ToByteArray());
        Assert.Contains("runs past the end of 'w.bin'", Assert.Throws<ModelFormatException>(() => OnnxReader.Read(path)).Message);
        Assert.Contains("read the model from a file path", Assert.Throws<ModelFormatException>(() => OnnxReader.Read(MinimalModel(t).ToByteArray())).Message);
    }

    [Fact]
    public void ExternalData_WrittenAndReadBack_IsMappedAndEqual()
    {
        var model = OnnxReader.Read(SampleModels.Path("paddleocr-cls"), new OnnxReadOptions { LiftConstants = true });
        using var dir = new TempDir();
        var path = dir.File("cls.onnx");
        OnnxWriter.Write(model, path, new OnnxWriteOptions { ExternalData = ExternalDataMode.Always });
        Assert.True(File.Exists(path + ".data"));
        Assert.True(new FileInfo(path).Length < 100_000, "weights should have moved to the side file");
        var back = OnnxReader.Read(path);
        Assert.Empty(ModelEquality.Differences(model, back));
        Assert.All(back.Graph.Initializers.Values.Where(t => t.ByteLength >= 1024), t => Assert.True(t.IsMemoryMapped));
    }

    [Fact]
    public void DeeplyNestedSubgraphs_AreRefusedWithoutCrashing()
    {
        var g = new GraphProto { Name = "leaf" };
        for (int i = 0; i < 200; i++)
        {
            var node = new NodeProto { OpType = "If", Input = { "c" }, Output = { "o" } };
            node.Attribute.Add(new AttributeProto { Name = "then_branch", Type = AttributeProto.Types.AttributeType.Graph, G = g });
            g = new GraphProto { Name = $"g{i}", Node = { node } };
        }
        var m = new ModelProto { IrVersion = 8, Graph = g };
        ReadFails(m.ToByteArray(), "nested more than 64 levels deep");
    }

    [Fact]
    public void WriteFailure_LeavesTheOldFileIntact()
    {
        using var dir = new TempDir();
        var path = dir.File("m.onnx");
        var original = MinimalModel().ToByteArray();
        File.WriteAllBytes(path, original);
        // A string attribute holding an invalid sparse payload makes the writer throw midway.
        var model = OnnxReader.Read(original);
        model.Graph.Nodes[0].With(Core.Attribute.OfSparse("bad", [0xFF, 0xFF, 0xFF]));
        Assert.ThrowsAny<Exception>(() => OnnxWriter.Write(model, path));
        Assert.Equal(original, File.ReadAllBytes(path));
        Assert.Single(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void ValidateOption_TurnsGraphErrorsIntoFormatErrors()
    {
        var m = MinimalModel();
        m.Graph.Node.Add(new NodeProto { OpType = "Add", Input = { "y", "ghost" }, Output = { "z" }, Name = "Add_9" });
        var e = Assert.Throws<ModelFormatException>(() => OnnxReader.Read(m.ToByteArray(), new OnnxReadOptions { Validate = true }));
        Assert.Contains("node 'Add_9' (Add) input 1 'ghost' is not defined", e.Message);
    }
}
