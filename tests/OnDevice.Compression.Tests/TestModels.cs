using OnDevice.Compression.Calibration;
using OnDevice.Compression.Quantization;
using OnDevice.Core;
using OnDevice.Formats.Onnx;
using OnDevice.Runtime;
using OnDevice.TestSupport;

namespace OnDevice.Compression.Tests;

/// <summary>Small generated graphs and helpers shared by the compression tests.</summary>
public static class TestModels
{
    /// <summary>
    /// x[1,4,8,8] → Conv 3×3 (weight in a Constant node) → Relu → depthwise Conv → Flatten → Gemm (transB=0, bias) → Relu
    /// → MatMul → Gemm (transB=1) → out[1,16]; and a ConvTranspose branch → up[1,4,16,16].
    /// </summary>
    public static Model Small(int seed = 1)
    {
        var rng = new Random(seed);
        float[] R(int n, float scale) => Enumerable.Range(0, n).Select(_ => (float)(NextGaussian(rng) * scale)).ToArray();
        var g = new Graph { Name = "small" };
        g.Inputs.Add(new ValueInfo("x", new TensorTypeInfo(DType.Float32, Shape.Of(1, 4, 8, 8))));
        g.Outputs.Add(new ValueInfo("out", new TensorTypeInfo(DType.Float32, Shape.Of(1, 16))));
        g.Outputs.Add(new ValueInfo("up", new TensorTypeInfo(DType.Float32, Shape.Of(1, 4, 16, 16))));
        g.Nodes.Add(new Node("Constant", [], ["w1"], "w1_const").With(Core.Attribute.Of("value", Tensor.FromArray<float>(R(8 * 4 * 9, 0.3f), [8, 4, 3, 3], "w1"))));
        g.AddInitializer(Tensor.FromArray<float>(R(8, 0.1f), [8], "b1"));
        g.AddInitializer(Tensor.FromArray<float>(R(8 * 9, 0.5f).Select((v, i) => v * (1 + i / 9)).ToArray(), [8, 1, 3, 3], "w2"));
        g.AddInitializer(Tensor.FromArray<float>(R(8 * 4 * 4, 0.3f), [8, 4, 2, 2], "w3"));
        g.AddInitializer(Tensor.FromArray<float>(R(512 * 64, 0.05f), [512, 64], "w4"));
        g.AddInitializer(Tensor.FromArray<float>(R(64, 0.1f), [64], "b4"));
        g.AddInitializer(Tensor.FromArray<float>(R(64 * 32, 0.15f), [64, 32], "w5"));
        g.AddInitializer(Tensor.FromArray<float>(R(16 * 32, 0.2f), [16, 32], "w6"));
        g.Nodes.Add(new Node("Conv", ["x", "w1", "b1"], ["y1"], "conv1").With(Core.Attribute.Of("pads", new long[] { 1, 1, 1, 1 })));
        g.Nodes.Add(new Node("Relu", ["y1"], ["r1"], "relu1"));
        g.Nodes.Add(new Node("Conv", ["r1", "w2"], ["y2"], "dwconv").With(Core.Attribute.Of("pads", new long[] { 1, 1, 1, 1 })).With(Core.Attribute.Of("group", 8L)));
        g.Nodes.Add(new Node("ConvTranspose", ["y2", "w3"], ["up"], "deconv").With(Core.Attribute.Of("strides", new long[] { 2, 2 })));
        g.Nodes.Add(new Node("Flatten", ["y2"], ["f"], "flatten"));
        g.Nodes.Add(new Node("Gemm", ["f", "w4", "b4"], ["g1"], "gemm1"));
        g.Nodes.Add(new Node("Relu", ["g1"], ["r2"], "relu2"));
        g.Nodes.Add(new Node("MatMul", ["r2", "w5"], ["m1"], "matmul"));
        g.Nodes.Add(new Node("Gemm", ["m1", "w6"], ["out"], "gemm2").With(Core.Attribute.Of("transB", 1L)));
        var m = new Model(g) { IrVersion = 8 };
        m.OpsetImports.Add(new OpsetImport("", 13));
        return m;
    }

    /// <summary>Random inputs for <see cref="Small"/>.</summary>
    public static IReadOnlyList<IReadOnlyDictionary<string, Tensor>> SmallFeeds(int count, int seed = 7)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => (IReadOnlyDictionary<string, Tensor>)new Dictionary<string, Tensor>
        {
            ["x"] = Tensor.FromArray<float>(Enumerable.Range(0, 256).Select(_ => (float)NextGaussian(rng)).ToArray(), [1, 4, 8, 8], "x"),
        }).ToList();
    }

    public static double NextGaussian(Random r) => Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());

    /// <summary>Min/max of every float value over the feeds (OnDevice.Runtime, unoptimized graph): test-side ranges for static quantization.</summary>
    public static Dictionary<string, ActivationRange> MinMax(Model model, IEnumerable<IReadOnlyDictionary<string, Tensor>> feeds)
    {
        var s = new InferenceSession(model, new SessionOptions { Optimize = false, Threads = 1 });
        var r = new Dictionary<string, ActivationRange>(StringComparer.Ordinal);
        foreach (var f in feeds)
        {
            foreach (var (k, v) in f)
                if (v.DType == DType.Float32) Update(k, v.AsSpan<float>());
            s.Run(f, (name, buf) => { if (buf.DType == DType.Float32) Update(name, buf.Span<float>()); });
        }
        return r;

        void Update(string name, ReadOnlySpan<float> x)
        {
            if (x.Length == 0) return;
            float lo = float.MaxValue, hi = float.MinValue;
            foreach (var v in x) { lo = Math.Min(lo, v); hi = Math.Max(hi, v); }
            r[name] = r.TryGetValue(name, out var o) ? new ActivationRange(Math.Min(o.Min, lo), Math.Max(o.Max, hi)) : new ActivationRange(lo, hi);
        }
    }

    /// <summary>‖a − b‖ / ‖b‖.</summary>
    public static double RelativeError(Tensor a, Tensor b)
    {
        Assert.Equal(b.Dims, a.Dims);
        var x = a.ToFloatArray();
        var y = b.ToFloatArray();
        double n = 0, d = 0;
        for (int i = 0; i < x.Length; i++) { n += (x[i] - y[i]) * (double)(x[i] - y[i]); d += (double)y[i] * y[i]; }
        return d == 0 ? Math.Sqrt(n) : Math.Sqrt(n / d);
    }

    /// <summary>A sample model read with its Constant nodes intact.</summary>
    public static Model Sample(string name) => OnnxReader.Read(SampleModels.Path(name));

    /// <summary>Feeds of the ONNX Runtime reference cases of a sample.</summary>
    public static List<IReadOnlyDictionary<string, Tensor>> ReferenceFeeds(string sample) =>
        ReferenceOutputs.All().Where(c => c.Sample == sample)
            .Select(c => (IReadOnlyDictionary<string, Tensor>)c.Inputs.ToDictionary(i => i, i => Formats.Npy.NpyFile.Read(c.InputFile(i)))).ToList();

    /// <summary>A calibration set from in-memory feeds.</summary>
    public static CalibrationSet Calibration(Model m, IReadOnlyList<IReadOnlyDictionary<string, Tensor>> feeds) => CalibrationSet.FromFeeds(m.Graph, feeds);
}
