using OnDevice.Core;
using OnDevice.Formats.Onnx;
using OnDevice.Formats.Onnx.Proto;
using OnDevice.TestSupport;

namespace OnDevice.Formats.Tests;

public class OnnxRoundTripTests
{
    public static TheoryData<string> Samples => SampleModels.All();

    [Theory]
    [MemberData(nameof(Samples))]
    public void ReadWriteRead_GivesAnEqualGraphAndIdenticalTensorBytes(string sample)
    {
        var path = SampleModels.Path(sample);
        var a = OnnxReader.Read(path);
        using var dir = new TempDir();
        var copy = dir.File("copy.onnx");
        OnnxWriter.Write(a, copy);
        var b = OnnxReader.Read(copy);

        Assert.Empty(ModelEquality.Differences(a, b));
        var ta = ModelSummary.Constants(a.Graph).ToList();
        var tb = ModelSummary.Constants(b.Graph).ToList();
        Assert.Equal(ta.Count, tb.Count);
        Assert.True(ta.Count > 0);
        for (int i = 0; i < ta.Count; i++)
            Assert.True(ta[i].Bytes.SequenceEqual(tb[i].Bytes), $"tensor {ta[i]} bytes differ");
    }

    [Theory]
    [MemberData(nameof(Samples))]
    public void RewrittenFile_ParsesWithTheGeneratedSchemaToTheSameMessage(string sample)
    {
        // The generated protobuf parser is an independent reader: the file we write must carry every field
        // of the original, so the two parsed messages are equal.
        var path = SampleModels.Path(sample);
        var original = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
        var rewritten = ModelProto.Parser.ParseFrom(OnnxWriter.ToBytes(OnnxReader.Read(path)));
        var (a, b) = (ProtoNormalizer.Normalize(original), ProtoNormalizer.Normalize(rewritten));
        if (!a.Equals(b))
        {
            var (ja, jb) = (a.ToString(), b.ToString());
            int i = 0;
            while (i < Math.Min(ja.Length, jb.Length) && ja[i] == jb[i]) i++;
            int from = Math.Max(0, i - 300);
            Assert.Fail($"messages differ at JSON offset {i}:\noriginal:  ...{ja.Substring(from, Math.Min(600, ja.Length - from))}\nrewritten: ...{jb.Substring(from, Math.Min(600, jb.Length - from))}");
        }
    }

    [Theory]
    [MemberData(nameof(Samples))]
    public void ReaderMapsTensorBytesInsteadOfCopying(string sample)
    {
        var m = OnnxReader.Read(SampleModels.Path(sample));
        // Weights (every tensor of 1 KiB or more in these files is stored as raw_data) must alias the mapped file.
        var tensors = ModelSummary.Constants(m.Graph).Where(t => t.DType != DType.String && t.ByteLength >= 1024).ToList();
        Assert.NotEmpty(tensors);
        Assert.All(tensors, t => Assert.True(t.IsMemoryMapped, $"{t} was copied"));
    }
}
