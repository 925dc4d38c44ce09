using OnDevice.Compression.Calibration;
using OnDevice.Compression.Gptq;
using OnDevice.Compression.Quantization;
using OnDevice.Core;
using OnDevice.Formats.Onnx;
using OnDevice.Runtime;
using OnDevice.TestSupport;
using Xunit.Abstractions;

namespace OnDevice.Compression.Tests;

public class GptqOutputAwareTests
{
    private static readonly QuantScheme Int4Block16 = new(4, true, false, Granularity.Blocked, Axis: 1, BlockSize: 16);

    private static float[] Gaussian(Random rng, int n, double scale) => Enumerable.Range(0, n).Select(_ => (float)(TestModels.NextGaussian(rng) * scale)).ToArray();

    [Fact]
    public unsafe void AccumulateXtY_AgreesWithItsScalarTwin()
    {
        var rng = new Random(3);
        foreach (var (rows, k) in new[] { (7, 5), (40, 24), (33, 70) })
        {
            var x = Gaussian(rng, rows * k, 1);
            var y = Gaussian(rng, rows * k, 1);
            var fast = new double[k * k];
            var slow = new double[k * k];
            fixed (float* a = x, b = y)
            {
                Linalg.AccumulateXtY(a, b, rows, k, fast, new float[k * k], 2);
                Linalg.AccumulateXtYReference(a, b, rows, k, slow);
            }
            for (int i = 0; i < k * k; i++) Assert.Equal(slow[i], fast[i], 1e-3 * (1 + Math.Abs(slow[i])));
            // Not symmetric in general: entry [i, j] = Σ x_i·y_j.
            double e01 = 0;
            for (int t = 0; t < rows; t++) e01 += (double)x[t * k] * y[t * k + 1];
            Assert.Equal(e01, slow[1], 1e-9);
        }
    }

    [Fact]
    public void SolveRight_GivesXTimesTheInverse_AndNullForAnIndefiniteMatrix()
    {
        var rng = new Random(5);
        int n = 40, m = 6;
        var b = Gaussian(rng, n * n, 1);
        var a = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double s = i == j ? 0.5 : 0;
                for (int t = 0; t < n; t++) s += (double)b[i * n + t] * b[j * n + t];
                a[i * n + j] = s;
            }
        var x = Gaussian(rng, m * n, 1).Select(v => (double)v).ToArray();
        var z = Linalg.SolveRight(x, m, a, n, threads: 2)!;
        for (int r = 0; r < m; r++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int t = 0; t < n; t++) s += z[r * n + t] * a[t * n + j];
                Assert.Equal(x[r * n + j], s, 1e-6);
            }
        var bad = (double[])a.Clone();
        bad[0] = -1;
        Assert.Null(Linalg.SolveRight(x, m, bad, n));
    }

    [Fact]
    public void WithQuantizedInputsEqualToFloatInputs_ItIsPlainGptq()
    {
        var rng = new Random(11);
        int rows = 24, cols = 64, n = 300;
        var x = Gaussian(rng, n * cols, 1);
        for (int i = 0; i < x.Length; i++) x[i] *= 1 + (i % cols) / 16f; // uneven column scales, as in real activations
        var w = new WeightMatrix("w", Gaussian(rng, rows * cols, 0.2), rows, cols);
        var cross = LayerCrossStats.FromInputs("w", x, x, n, cols);
        var (target, _) = OutputAwareGptq.Target(w, cross);
        Assert.Equal(w.Data, target);
        foreach (var actOrder in new[] { false, true })
        {
            var o = new GptqOptions { ActOrder = actOrder, ClipSearch = true, Threads = 1 };
            var plain = GptqRounder.Run(w, Int4Block16, LayerHessian.FromInputs("w", x, n, cols), o, out var ps);
            var aware = OutputAwareGptq.Run(w, Int4Block16, cross, o, out var stats);
            Assert.Equal(plain.Values, aware.Values);
            Assert.Equal(plain.Scales, aware.Scales);
            Assert.Equal(plain.ZeroPoints, aware.ZeroPoints);
            Assert.Equal(ps.GptqError, stats.GptqError, 1e-6);
            Assert.Equal(ps.RtnError, stats.RtnError, 1e-6);
        }
    }

    [Fact]
    public void Target_IsTheLeastSquaresOptimum_AndTheRoundedResultBeatsPlainGptqOnTheOutputAwareError()
    {
        var rng = new Random(13);
        int rows = 16, cols = 48, n = 400;
        var x = Gaussian(rng, n * cols, 1);
        // X̃: X plus an error correlated with X (what a quantized prefix does), plus noise.
        var xq = new float[x.Length];
        for (int t = 0; t < n; t++)
            for (int c = 0; c < cols; c++)
                xq[t * cols + c] = 0.9f * x[t * cols + c] + 0.15f * x[t * cols + (c + 1) % cols] + (float)(0.1 * TestModels.NextGaussian(rng));
        var w = new WeightMatrix("w", Gaussian(rng, rows * cols, 0.3), rows, cols);
        var cross = LayerCrossStats.FromInputs("w", x, xq, n, cols);
        var (target, _) = OutputAwareGptq.Target(w, cross, percDamp: 0);
        // Normal equations: X̃ᵀX̃·w*ᵀ = X̃ᵀX·wᵀ.
        var h = cross.Quantized.XtX(0);
        var c2 = cross.Cross(0);
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < cols; i++)
            {
                double lhs = 0, rhs = 0;
                for (int j = 0; j < cols; j++)
                {
                    lhs += h[i * cols + j] * target[r * cols + j];
                    rhs += c2[i * cols + j] * w.Data[r * cols + j];
                }
                Assert.Equal(rhs, lhs, 1e-3 * (1 + Math.Abs(rhs)));
            }

        var o = new GptqOptions { ActOrder = true, ClipSearch = true, Threads = 1 };
        var aware = OutputAwareGptq.Run(w, Int4Block16, cross, o, out var stats);
        var plain = GptqRounder.Run(w, Int4Block16, LayerHessian.FromInputs("w", xq, n, cols), o, out _);
        double ea = EndToEnd(x, xq, n, w, aware.Dequantize()), ep = EndToEnd(x, xq, n, w, plain.Dequantize());
        var rtn = RtnReference.Instance.Quantize(w, Int4Block16);
        double er = EndToEnd(x, xq, n, w, rtn.Dequantize());
        Assert.True(ea < 0.8 * ep, $"output-aware {ea} vs plain GPTQ on X̃ {ep}");
        Assert.True(stats.GptqError <= stats.RtnError);
        Assert.Equal(ea, stats.GptqError, 1e-4);
        Assert.Equal(er, stats.RtnError, 1e-4);
    }

    /// <summary>‖X̃·Ŵᵀ − X·Wᵀ‖/‖X·Wᵀ‖ computed from the rows.</summary>
    private static double EndToEnd(float[] x, float[] xq, int n, WeightMatrix w, float[] deq)
    {
        int K = w.Columns;
        double e = 0, s = 0;
        for (int t = 0; t < n; t++)
            for (int r = 0; r < w.Rows; r++)
            {
                double y = 0, yq = 0;
                for (int c = 0; c < K; c++)
                {
                    y += (double)x[t * K + c] * w.Data[r * K + c];
                    yq += (double)xq[t * K + c] * deq[r * K + c];
                }
                e += (yq - y) * (yq - y);
                s += y * y;
            }
        return Math.Sqrt(e / s);
    }

    [Fact]
    public void BiasCorrection_RemovesTheMeanOutputShift()
    {
        var rng = new Random(17);
        int rows = 8, cols = 32, n = 200;
        var x = Gaussian(rng, n * cols, 1).Select(v => v + 0.5f).ToArray();
        var xq = x.Select(v => v * 1.05f + 0.02f).ToArray();
        var w = new WeightMatrix("w", Gaussian(rng, rows * cols, 0.3), rows, cols);
        var cross = LayerCrossStats.FromInputs("w", x, xq, n, cols);
        var q = RtnReference.Instance.Quantize(w, Int4Block16);
        var deq = q.Dequantize();
        var delta = OutputAwareGptq.BiasCorrection(w, q, cross);
        for (int r = 0; r < rows; r++)
        {
            double shift = 0;
            for (int t = 0; t < n; t++)
                for (int c = 0; c < cols; c++) shift += (double)x[t * cols + c] * w.Data[r * cols + c] - (double)xq[t * cols + c] * deq[r * cols + c];
            Assert.Equal(shift / n, delta[r], 1e-4);
            Assert.True(Math.Abs(delta[r]) > 1e-3); // a real shift to remove
        }
    }

    [Fact]
    public void OneShotBiasCorrection_UpdatesConvGemmAndMatMulAddBiases_AndSaysWhereItCannot()
    {
        var model = TestModels.Small(2);
        // A MatMul followed by a constant Add (the usual exported Linear) before the last Gemm.
        var g = model.Graph;
        g.AddInitializer(Tensor.FromArray<float>(new float[32], [32], "b5"));
        int mm = g.Nodes.FindIndex(n => n.Name == "matmul");
        g.Nodes[mm] = new Node("MatMul", ["r2", "w5"], ["m0"], "matmul");
        g.Nodes.Insert(mm + 1, new Node("Add", ["m0", "b5"], ["m1"], "matmul_bias"));
        var set = TestModels.Calibration(model, TestModels.SmallFeeds(8));
        var scheme = new QuantScheme(4, true, false, Granularity.Blocked, Axis: 1, BlockSize: 16);
        var rounder = GptqRounder.Calibrate(model, set, new GptqOptions { Threads = 1, BiasCorrection = true }, new HessianOptions { Threads = 1 }, RtnRounder.Instance);
        var result = Quantizer.Quantize(model, new QuantizeOptions { Scheme = scheme, RounderFactory = (_, _) => rounder, MeasureSensitivity = false });
        var outG = result.Model.Graph;
        void Corrected(string bias, string weight, float[] before)
        {
            var d = rounder.BiasCorrection(weight)!;
            var after = outG.Initializers[bias].ToFloatArray();
            for (int i = 0; i < d.Length; i++) Assert.Equal(before[i] + d[i], after[i], 1e-6);
            Assert.Contains(d, v => v != 0);
        }
        Corrected("b1", "w1", model.Graph.Initializers["b1"].ToFloatArray());
        Corrected("b4", "w4", model.Graph.Initializers["b4"].ToFloatArray());
        Corrected("b5", "w5", new float[32]);
        // The depthwise conv had no bias: it gets one.
        var dw = outG.Nodes.First(n => n.OpType == "Conv" && n.Name == "dwconv");
        Assert.Equal(3, dw.Inputs.Count);
        Corrected(dw.Inputs[2], "w2", new float[8]);
        // The last Gemm has no C: the report says so.
        Assert.Contains(result.Report.Layers, l => l.Weight == "w6" && l.Note!.Contains("no bias correction: Gemm without C"));
        Assert.Contains(result.Report.Layers, l => l.Weight == "w1" && l.Note!.Contains("bias corrected (b1)"));
        // The simulated model (what the report's errors are measured on) carries the corrected biases too.
        Assert.Equal(outG.Initializers["b4"].ToFloatArray(), result.Simulated!.Graph.Initializers["b4"].ToFloatArray());
        // The written model runs and equals the simulated one on the main output.
        var feeds = TestModels.SmallFeeds(2, seed: 21);
        var a = new InferenceSession(result.Model, new SessionOptions { Threads = 1 });
        var floatOut = new InferenceSession(model, new SessionOptions { Threads = 1 });
        foreach (var f in feeds) Assert.True(TestModels.RelativeError(a.Run(f)["out"], floatOut.Run(f)["out"]) < 0.5);
    }

    [Fact]
    public void Sequential_OutputAware_FirstLayerIsPlainGptq_NoLayerWorseThanRtn_AndLowerEndToEndErrorThanPlainSequential()
    {
        var (model, feeds) = TwoLayer(29);
        var set = TestModels.Calibration(model, feeds);
        var options = new GptqOptions { Threads = 1, ActOrder = true, ClipSearch = true };
        var plain = new SequentialGptqRounder(model, set, options, new HessianOptions { Threads = 1 }, RtnRounder.Instance);
        var aware = new SequentialGptqRounder(model, set, options with { OutputAware = true }, new HessianOptions { Threads = 1 }, RtnRounder.Instance);
        var a = Quantizer.Quantize(model, new QuantizeOptions { Scheme = Int4Block16, RounderFactory = (_, _) => plain, MeasureSensitivity = false });
        var b = Quantizer.Quantize(model, new QuantizeOptions { Scheme = Int4Block16, RounderFactory = (_, _) => aware, MeasureSensitivity = false });
        Assert.Equal(a.Simulated!.Graph.Initializers["wa"].ToFloatArray(), b.Simulated!.Graph.Initializers["wa"].ToFloatArray());
        Assert.False(a.Simulated.Graph.Initializers["wb"].ToFloatArray().SequenceEqual(b.Simulated.Graph.Initializers["wb"].ToFloatArray()));
        foreach (var s in aware.Stats.Values) Assert.True(s.GptqError <= s.RtnError * (1 + 1e-9), $"{s.Weight}: {s.GptqError} > RTN {s.RtnError}");
        double ea = ModelError(model, a.Model, feeds), eb = ModelError(model, b.Model, feeds);
        Assert.True(eb < ea, $"output-aware {eb} vs plain sequential {ea}");
        // Layers per pass > 1 never groups a layer with one it depends on: the same result as one layer per pass.
        var staged = new SequentialGptqRounder(model, set, options with { OutputAware = true, LayersPerPass = 2 }, new HessianOptions { Threads = 1 }, RtnRounder.Instance);
        var c = Quantizer.Quantize(model, new QuantizeOptions { Scheme = Int4Block16, RounderFactory = (_, _) => staged, MeasureSensitivity = false });
        Assert.Equal(b.Simulated.Graph.Initializers["wb"].ToFloatArray(), c.Simulated!.Graph.Initializers["wb"].ToFloatArray());
        Assert.Throws<ArgumentOutOfRangeException>(() => new SequentialGptqRounder(model, set, options with { LayersPerPass = 0 }));
    }

    [Fact]
    public void LayersPerPass_GroupsParallelBranches_WithTheSameResultAsOneLayerPerPass()
    {
        // x → MatMul w0 → Tanh → t; t → MatMul wa and t → MatMul wc (parallel) → Add → MatMul wd → y.
        var rng = new Random(31);
        var g = new Graph { Name = "branches" };
        g.Inputs.Add(new ValueInfo("x", new TensorTypeInfo(DType.Float32, Shape.Of(64, 48))));
        g.Outputs.Add(new ValueInfo("y", new TensorTypeInfo(DType.Float32, Shape.Of(64, 16))));
        foreach (var (name, k, n) in new[] { ("w0", 48, 48), ("wa", 48, 32), ("wc", 48, 32), ("wd", 32, 16) })
            g.AddInitializer(Tensor.FromArray<float>(Gaussian(rng, k * n, 0.25), [k, n], name));
        g.Nodes.Add(new Node("MatMul", ["x", "w0"], ["h"], "m0"));
        g.Nodes.Add(new Node("Tanh", ["h"], ["t"], "tanh"));
        g.Nodes.Add(new Node("MatMul", ["t", "wa"], ["ya"], "ma"));
        g.Nodes.Add(new Node("MatMul", ["t", "wc"], ["yc"], "mc"));
        g.Nodes.Add(new Node("Add", ["ya", "yc"], ["s"], "add"));
        g.Nodes.Add(new Node("MatMul", ["s", "wd"], ["y"], "md"));
        var model = new Model(g) { IrVersion = 8 };
        model.OpsetImports.Add(new OpsetImport("", 13));
        var feeds = Enumerable.Range(0, 4).Select(_ => (IReadOnlyDictionary<string, Tensor>)new Dictionary<string, Tensor>
            { ["x"] = Tensor.FromArray<float>(Gaussian(rng, 64 * 48, 1), [64, 48], "x") }).ToList();
        var set = TestModels.Calibration(model, feeds);
        foreach (var aware in new[] { false, true })
        {
            var o = new GptqOptions { Threads = 1, OutputAware = aware, BiasCorrection = true };
            var one = new SequentialGptqRounder(model, set, o, new HessianOptions { Threads = 1 }, RtnRounder.Instance);
            var many = new SequentialGptqRounder(model, set, o with { LayersPerPass = 4 }, new HessianOptions { Threads = 1 }, RtnRounder.Instance);
            var a = Quantizer.Quantize(model, new QuantizeOptions { Scheme = Int4Block16, RounderFactory = (_, _) => one, MeasureSensitivity = false });
            var b = Quantizer.Quantize(model, new QuantizeOptions { Scheme = Int4Block16, RounderFactory = (_, _) => many, MeasureSensitivity = false });
            foreach (var w in new[] { "w0", "wa", "wc", "wd" })
                Assert.Equal(a.Simulated!.Graph.Initializers[w].ToFloatArray(), b.Simulated!.Graph.Initializers[w].ToFloatArray());
            Assert.Equal(one.BiasCorrection("wc"), many.BiasCorrection("wc"));
        }
    }

    /// <summary>x[64, 48] → MatMul wa[48, 48] → Tanh → MatMul wb[48, 32] → y, with calibration feeds.</summary>
    private static (Model, IReadOnlyList<IReadOnlyDictionary<string, Tensor>>) TwoLayer(int seed)
    {
        var rng = new Random(seed);
        var g = new Graph { Name = "two" };
        g.Inputs.Add(new ValueInfo("x", new TensorTypeInfo(DType.Float32, Shape.Of(64, 48))));
        g.Outputs.Add(new ValueInfo("y", new TensorTypeInfo(DType.Float32, Shape.Of(64, 32))));
        g.AddInitializer(Tensor.FromArray<float>(Gaussian(rng, 48 * 48, 0.25), [48, 48], "wa"));
        g.AddInitializer(Tensor.FromArray<float>(Gaussian(rng, 48 * 32, 0.3), [48, 32], "wb"));
        g.Nodes.Add(new Node("MatMul", ["x", "wa"], ["h"], "ma"));
        g.Nodes.Add(new Node("Tanh", ["h"], ["t"], "tanh"));
        g.Nodes.Add(new Node("MatMul", ["t", "wb"], ["y"], "mb"));
        var m = new Model(g) { IrVersion = 8 };
        m.OpsetImports.Add(new OpsetImport("", 13));
        var feeds = Enumerable.Range(0, 6).Select(_ =>
        {
            var v = Gaussian(rng, 64 * 48, 1);
            for (int i = 0; i < v.Length; i++) v[i] *= 1 + (i % 48) / 12f;
            return (IReadOnlyDictionary<string, Tensor>)new Dictionary<string, Tensor> { ["x"] = Tensor.FromArray<float>(v, [64, 48], "x") };
        }).ToList();
        return (m, feeds);
    }

    private static double ModelError(Model reference, Model quantized, IEnumerable<IReadOnlyDictionary<string, Tensor>> feeds)
    {
        var fs = new InferenceSession(reference, new SessionOptions { Threads = 1 });
        var qs = new InferenceSession(quantized, new SessionOptions { Threads = 1 });
        double e = 0, s = 0;
        foreach (var f in feeds)
        {
            var y = fs.Run(f)["y"].ToFloatArray();
            var yq = qs.Run(f)["y"].ToFloatArray();
            for (int i = 0; i < y.Length; i++) { e += (yq[i] - (double)y[i]) * (yq[i] - y[i]); s += (double)y[i] * y[i]; }
        }
        return Math.Sqrt(e / s);
    }
}

[Trait("Category", "Samples")]
public class GptqOutputAwareSampleTests(ITestOutputHelper output)
{
    /// <summary>
    /// On a real model (the PaddleOCR direction classifier, asymmetric int4 block 32, act-order, clip search), output-aware
    /// GPTQ is never worse than round-to-nearest of the float weight on any layer — both measured against the float
    /// model's layer output, on the quantized prefix's inputs — and lowers the model's output error against plain
    /// one-shot GPTQ (with bias correction too; on this model and these 8 inputs bias correction does not lower it further).
    /// </summary>
    [Fact]
    public void OutputAware_IsNotWorseThanRtnOnAnyLayer_AndLowersTheModelError_OnTheClassifier()
    {
        var model = OnnxReader.Read(SampleModels.Path("paddleocr-cls"));
        var feeds = SampleLikeInputs.For("paddleocr-cls", model.Graph, 8);
        var set = CalibrationSet.FromFeeds(model.Graph, feeds);
        var scheme = new QuantScheme(4, true, false, Granularity.Blocked, Axis: 1, BlockSize: 32);
        var o = new GptqOptions { ClipSearch = true, ActOrder = true, Threads = 2 };
        var h = new HessianOptions { Threads = 2 };
        double Run(IWeightRounder r) => ModelError(model, Quantizer.Quantize(model, new QuantizeOptions { Scheme = scheme, RounderFactory = (_, _) => r, MeasureSensitivity = false }).Model, feeds);
        var aware = new SequentialGptqRounder(model, set, o with { OutputAware = true }, h, RtnRounder.Instance);
        double eOneShot = Run(GptqRounder.Calibrate(model, set, o, h, RtnRounder.Instance));
        double eAware = Run(aware);
        double eAwareBias = Run(new SequentialGptqRounder(model, set, o with { OutputAware = true, BiasCorrection = true }, h, RtnRounder.Instance));
        output.WriteLine($"model output error: one-shot GPTQ {eOneShot:E3}, output-aware {eAware:E3}, output-aware + bias correction {eAwareBias:E3}");
        Assert.True(aware.Stats.Count > 40);
        foreach (var s in aware.Stats.Values)
        {
            output.WriteLine($"  {s.Weight,-24} rtn {s.RtnError:E3} gptq {s.GptqError:E3} keptRtn {s.RowsKeptRtn}");
            Assert.True(s.GptqError <= s.RtnError * (1 + 1e-9), $"{s.Weight}: {s.GptqError} > RTN {s.RtnError}");
        }
        Assert.True(eAware < eOneShot, $"output-aware {eAware:E3} vs one-shot {eOneShot:E3}");
        Assert.True(eAwareBias < eOneShot, $"with bias correction {eAwareBias:E3} vs one-shot {eOneShot:E3}");
    }

    private static double ModelError(Model reference, Model quantized, IEnumerable<IReadOnlyDictionary<string, Tensor>> feeds)
    {
        var fs = new InferenceSession(reference, new SessionOptions { Threads = 2 });
        var qs = new InferenceSession(quantized, new SessionOptions { Threads = 2 });
        double e = 0, s = 0;
        foreach (var f in feeds)
        {
            var y = fs.Run(f).Values.First().ToFloatArray();
            var yq = qs.Run(f).Values.First().ToFloatArray();
            for (int i = 0; i < y.Length; i++) { e += (yq[i] - (double)y[i]) * (yq[i] - y[i]); s += (double)y[i] * y[i]; }
        }
        return Math.Sqrt(e / s);
    }
}
