using OnDevice.Compression.Quantization;
using OnDevice.Core;
using OnDevice.Runtime;
using OnDevice.TestSupport;
using Xunit.Abstractions;

namespace OnDevice.Compression.Tests;

/// <summary>
/// The int4 block-32 QDQ recognizer (what <c>ondevice quantize --weights int4 --granularity block:32</c> writes) runs in
/// OnDevice.Runtime on packed weights — its convolutions as <c>com.ondevice.BlockQuantConv</c>, its MatMuls as
/// MatMulNBits, no float copy of those weights in the optimized graph — and agrees with ONNX Runtime on the same file.
/// </summary>
[Trait("Category", "Ort")]
public class Int4ConvSampleTests(ITestOutputHelper log)
{
    [Theory]
    [InlineData(true, false)] // int4, asymmetric (the CLI's int4 default)
    [InlineData(true, true)] // int4, symmetric (no zero points)
    [InlineData(false, false)] // uint4, asymmetric
    public void Rec_Int4Block32_RunsOnPackedWeights_AndAgreesWithOrt(bool signed, bool symmetric)
    {
        var m = TestModels.Sample("paddleocr-rec");
        var feeds = TestModels.ReferenceFeeds("paddleocr-rec");
        Assert.NotEmpty(feeds);
        var result = Quantizer.Quantize(m, new QuantizeOptions { Scheme = new QuantScheme(4, signed, symmetric, Granularity.Blocked, 1, 32) });
        using var dir = new TempDir();
        string path = dir.File("rec-int4.onnx");
        long fileBytes = result.Save(path);

        var session = InferenceSession.Load(path, new SessionOptions { Threads = 1 });
        var g = session.OptimizedGraph;
        int packed = g.Nodes.Count(n => n.OpType == "BlockQuantConv"), nbits = g.Nodes.Count(n => n.OpType == "MatMulNBits");
        int floatConvs = g.Nodes.Count(n => n.OpType is "Conv" or "FusedConv");
        long floatBytes = g.Initializers.Values.Where(t => t.DType == DType.Float32).Sum(t => (long)t.Bytes.Length);
        long allBytes = g.Initializers.Values.Where(t => t.DType != DType.String).Sum(t => (long)t.Bytes.Length);
        log.WriteLine($"file {fileBytes:N0} B; optimized graph: {packed} BlockQuantConv, {nbits} MatMulNBits, {floatConvs} float convs; initializers {allBytes:N0} B ({floatBytes:N0} B float32)");
        // Every convolution stays packed (the 5×5 depthwise ones too) except the eight with fewer than 2048 weights.
        Assert.True(packed >= 28, $"only {packed} convolutions kept packed");
        Assert.All(g.Nodes.Where(n => n.OpType is "Conv" or "FusedConv"), n => Assert.True(
            g.Initializers[n.Inputs[1]].ElementCount < 2048, $"{n.Name} runs on float weights"));
        // Resident weights stay close to the file's (float scales and zero points per block of 32 add ~0.25 B per weight;
        // the float weights would be 8× the packed bytes): a float copy of the 1.6 M convolution weights alone is 6.4 MB.
        Assert.True(allBytes < 2 * fileBytes, $"optimized graph holds {allBytes:N0} bytes of constants for a {fileBytes:N0}-byte file");

        var ort = OrtRunner.Run(feeds.Select(f => (path, (IReadOnlyDictionary<string, Tensor>)f, "basic")).ToList());
        for (int f = 0; f < feeds.Count; f++)
        {
            Assert.True(ort[f].Error is null, $"ONNX Runtime failed: {ort[f].Error}");
            var mine = session.Run(feeds[f])[session.Outputs[0].Name];
            double err = TestModels.RelativeError(mine, ort[f].Outputs[0]);
            log.WriteLine($"feed {f}: OnDevice vs ONNX Runtime {err:F6}");
            Assert.True(err < 2e-3, $"OnDevice differs from ONNX Runtime on the int4 recognizer by {err:F5}");
        }
    }
}
