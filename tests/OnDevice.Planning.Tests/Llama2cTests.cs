using OnDevice.Core;
using OnDevice.Formats.Onnx;
using OnDevice.TestSupport;

namespace OnDevice.Planning.Tests;

public class Llama2cTests
{
    [Fact]
    public void Stories260K_HeaderShapeAndParameters_AccountForEveryByteOfTheFile()
    {
        if (TestFiles.Stories260K() is not { } path) return;
        var ck = Llama2cCheckpoint.Read(path);
        Assert.Equal(new Llama2cCheckpoint(64, 172, 5, 8, 4, 512, true, 512), ck);
        var cost = new TransformerCost(ck.ToConfig("stories260K"));
        Assert.Equal(260_032, cost.Parameters);
        // Estimate vs measurement: header + 4 bytes per parameter + RoPE tables = the file's length.
        Assert.Equal(new FileInfo(path).Length, Llama2cCheckpoint.HeaderBytes + cost.WeightBytes(new WeightFormat(WeightPrecision.Fp32)) + ck.RopeTableBytes);
        var last = ck.Layout()[^1];
        Assert.Equal(new FileInfo(path).Length, last.Offset + 4 * last.Dims.Aggregate(1L, (a, b) => a * b));
        Assert.Equal(5L * 2 * 4 * 8 * 2 * 512, cost.KvCacheBytes(new KvCacheFormat(), 512, 1));
    }

    [Fact]
    public void Stories260K_AsOnnx_LoadedModelHasExactlyTheEstimatedParametersAndBytes()
    {
        if (TestFiles.Stories260K() is not { } path) return;
        var ck = Llama2cCheckpoint.Read(path);
        var cost = new TransformerCost(ck.ToConfig("stories260K"));
        var bytes = File.ReadAllBytes(path);
        // The real weights as ONNX initializers (the RoPE tables are derived data, not parameters).
        var g = new Graph { Name = "stories260K" };
        foreach (var (name, dims, offset) in ck.Layout().Where(t => !t.Name.StartsWith("freq_cis", StringComparison.Ordinal)))
        {
            long n = dims.Aggregate(1L, (a, b) => a * b);
            g.AddInitializer(Tensor.FromBytes(DType.Float32, dims, bytes.AsMemory((int)offset, (int)(4 * n)).ToArray(), name));
        }
        g.Inputs.Add(ValueInfo.Tensor("x", DType.Float32, Shape.Of(1, 64)));
        g.Nodes.Add(new Node("Relu", ["x"], ["y"], "relu"));
        g.Outputs.Add(ValueInfo.Tensor("y", DType.Float32, Shape.Of(1, 64)));
        var model = new Model(g);
        model.OpsetImports.Add(new OpsetImport("", 17));
        using var dir = new TempDir();
        var file = dir.File("stories260K.onnx");
        OnnxWriter.Write(model, file);

        var loaded = ModelSummary.Of(OnnxReader.Read(file));
        Assert.Equal(cost.Parameters, loaded.Parameters);
        Assert.Equal(cost.WeightBytes(new WeightFormat(WeightPrecision.Fp32)), loaded.WeightBytes);
        var onnx = OnnxCost.Analyze(file);
        Assert.Equal(cost.Parameters, onnx.Parameters);
        Assert.Equal(cost.Parameters * 2, onnx.WeightBytesAs(new WeightFormat(WeightPrecision.Fp16)) - 64 * 4 /* rms_final stays fp32: rank 1 */ + 64 * 2);
    }

    [Fact]
    public void BadCheckpoints_AreExplained()
    {
        using var dir = new TempDir();
        var tiny = dir.File("tiny.bin");
        File.WriteAllBytes(tiny, new byte[10]);
        Assert.Contains("too short for a llama2.c header", Assert.Throws<PlanningException>(() => Llama2cCheckpoint.Read(tiny)).Message);

        var zeros = dir.File("zeros.bin");
        File.WriteAllBytes(zeros, new byte[64]);
        Assert.Contains("header field dim = 0 is not a plausible size", Assert.Throws<PlanningException>(() => Llama2cCheckpoint.Read(zeros)).Message);

        var header = new[] { 64, 172, 5, 8, 4, 512, 512 };
        var truncated = dir.File("truncated.bin");
        File.WriteAllBytes(truncated, header.SelectMany(BitConverter.GetBytes).Concat(new byte[1000]).ToArray());
        var e = Assert.Throws<PlanningException>(() => Llama2cCheckpoint.Read(truncated));
        Assert.Contains("the header describes 1,056,540 bytes", e.Message);
        Assert.Contains("truncated", e.Message);
        Assert.Contains("but the file has 1,028", e.Message);

        var badKv = dir.File("kv.bin");
        File.WriteAllBytes(badKv, new[] { 64, 172, 5, 8, 3, 512, 512 }.SelectMany(BitConverter.GetBytes).ToArray());
        Assert.Contains("n_kv_heads 3 does not divide n_heads 8", Assert.Throws<PlanningException>(() => Llama2cCheckpoint.Read(badKv)).Message);

        Assert.Throws<FileNotFoundException>(() => Llama2cCheckpoint.Read(dir.File("absent.bin")));
    }
}
