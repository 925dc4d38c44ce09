using OnDevice.Compression.Palettization;
using OnDevice.Compression.Quantization;
using OnDevice.Core;
using OnDevice.Formats.Onnx;
using OnDevice.TestSupport;

namespace OnDevice.Compression.Tests;

public class PalettizerUpgradeTests
{
    [Fact]
    public void KMeans_IsDeterministic_Sorted_AndBeatsAUniformGridOfTheSameSize()
    {
        var r = new Random(9);
        var w = Enumerable.Range(0, 5000).Select(_ => (float)(TestModels.NextGaussian(r) * 0.1)).ToArray();
        var a = Palettizer.Cluster(w, 50, 100, 4, 0);
        var b = Palettizer.Cluster(w, 50, 100, 4, 0);
        Assert.Equal(a.Codebooks, b.Codebooks);
        Assert.Equal(a.Indices, b.Indices);
        Assert.True(a.Codebooks.Zip(a.Codebooks.Skip(1)).All(p => p.First <= p.Second));
        // Each value maps to its nearest centroid.
        for (int i = 0; i < w.Length; i++)
            Assert.Equal(a.Codebooks.Min(c => Math.Abs(c - w[i])), Math.Abs(a.Codebooks[a.Indices[i]] - w[i]), 6);
        // Gaussian weights: 16 k-means levels beat 16 uniform levels (int4 per tensor, asymmetric).
        var q = RtnRounder.Instance.Quantize(new WeightMatrix("w", w, 50, 100), new QuantScheme(4, false, false, Granularity.PerTensor));
        Assert.True(Quantizer.Sqnr(w, a.Reconstruct()) > Quantizer.Sqnr(w, q.Dequantize()) + 1);
        // Grouped: one codebook per 10 rows.
        var g = Palettizer.Cluster(w, 50, 100, 3, 10);
        Assert.Equal(5 * 8, g.Codebooks.Length);
        Assert.True(Quantizer.Sqnr(w, g.Reconstruct()) > 10);
    }

    [Fact]
    public void FewDistinctValues_AreReproducedExactly()
    {
        float[] w = [0, 1, 1, 0, -2, -2, 0, 1];
        var p = Palettizer.Cluster(w, 2, 4, 2, 0);
        Assert.Equal(w, p.Reconstruct());
    }

    [Fact]
    [Trait("Category", "Ort")]
    public void OpsetUpgrade_OfTheOpset9Recognizer_ChangesNothingOrtComputes()
    {
        var m = TestModels.Sample("paddleocr-rec");
        var feeds = TestModels.ReferenceFeeds("paddleocr-rec");
        using var dir = new TempDir();
        var jobs = new List<(string, IReadOnlyDictionary<string, Tensor>)> { (m.SourcePath!, feeds[0]) };
        foreach (var v in new[] { 10L, 13, 21 })
        {
            var c = Quantizer.CopyModel(m);
            OpsetUpgrade.Raise(c, v);
            Assert.Equal(v, c.OpsetVersion(""));
            Assert.True(c.IrVersion >= OpsetUpgrade.IrVersionFor(v));
            OnnxWriter.Write(c, dir.File($"up{v}.onnx"));
            jobs.Add((dir.File($"up{v}.onnx"), feeds[0]));
        }
        var o = OrtRunner.Run(jobs);
        for (int i = 1; i < o.Count; i++)
        {
            Assert.Null(o[i].Error);
            Assert.True(TestModels.RelativeError(o[i].Outputs[0], o[0].Outputs[0]) < 1e-6);
        }
    }

    [Fact]
    public void OpsetUpgrade_RefusesOpsItCannotRewrite()
    {
        var g = new Graph();
        g.Nodes.Add(new Node("Upsample", ["x", "s"], ["y"], "up"));
        var m = new Model(g);
        m.OpsetImports.Add(new OpsetImport("", 9));
        Assert.Contains("Upsample", Assert.Throws<CompressionException>(() => OpsetUpgrade.Raise(m, 13)).Message);
    }
}
