using OnDevice.Core;
using Attr = OnDevice.Core.Attribute;

namespace OnDevice.Runtime.Tests.Quantization;

/// <summary>
/// Generated QOperator graphs (the operators ONNX Runtime's quantizer emits, com.microsoft contrib ops included) run in
/// OnDevice and in ONNX Runtime on the same inputs. Quantized results may differ by one quantization step where the two
/// round a tie differently; almost all must be identical.
/// </summary>
[Trait("Category", "Agreement")]
public class QOperatorOrtTests(Xunit.Abstractions.ITestOutputHelper output)
{
    internal sealed class Builder
    {
        public readonly Graph G = new() { Name = "qop" };
        private int _n;
        public string C(Tensor t) { var name = $"c{_n++}"; G.AddInitializer(t.Clone(name)); return name; }
        public string F(float v) => C(Tensor.Scalar(v));
        public string U8(int v) => C(Tensor.FromBytes(DType.UInt8, [], new byte[] { (byte)v }));
        public string Op(string op, string[] inputs, string domain = "", params Attr[] attrs)
        {
            var o = $"v{_n++}";
            var node = new Node(op, inputs, [o], $"n{_n}", domain);
            foreach (var a in attrs) node.With(a);
            G.Nodes.Add(node);
            return o;
        }
        public Model Model(params string[] outputs)
        {
            foreach (var o in outputs) G.Outputs.Add(ValueInfo.Tensor(o, DType.Float32, null));
            var m = new Model(G);
            m.OpsetImports.Add(new OpsetImport("", 17));
            m.OpsetImports.Add(new OpsetImport("com.microsoft", 1));
            return m;
        }
    }

    private static Tensor RandomS8(Random rng, params long[] dims)
    {
        var b = new byte[dims.Aggregate(1L, (p, d) => p * d)];
        for (int i = 0; i < b.Length; i++) b[i] = (byte)(sbyte)rng.Next(-90, 90);
        return Tensor.FromBytes(DType.Int8, dims, b);
    }

    private static void Compare(IReadOnlyDictionary<string, Tensor> ort, IReadOnlyDictionary<string, Tensor> ours, IReadOnlyDictionary<string, float> steps)
    {
        foreach (var (name, e) in ort)
        {
            var a = ours[name];
            Assert.Equal(e.Dims, a.Dims);
            var ev = e.ToFloatArray();
            var av = a.ToFloatArray();
            float step = steps[name];
            Assert.True(ev.Distinct().Count() > 4, $"{name}: ONNX Runtime's output is nearly constant; the test would prove little");
            int exact = 0;
            for (int i = 0; i < ev.Length; i++)
            {
                float d = Math.Abs(ev[i] - av[i]);
                Assert.True(d <= step * 1.01f + 1e-5f * Math.Abs(ev[i]), $"{name}[{i}]: {av[i]} vs ONNX Runtime {ev[i]} (step {step})");
                if (d <= 1e-6f + 1e-6f * Math.Abs(ev[i])) exact++;
            }
            Assert.True(exact >= ev.Length * 0.97, $"{name}: only {exact} of {ev.Length} values equal ONNX Runtime's");
        }
    }

    [Fact]
    public void QOperatorConvNetwork_AgreesWithOnnxRuntime()
    {
        var rng = new Random(1);
        var b = new Builder();
        b.G.Inputs.Add(ValueInfo.Tensor("x", DType.Float32, Shape.Of(1, 8, 12, 12)));
        float sx = 0.02f;
        var xq = b.Op("QuantizeLinear", ["x", b.F(sx), b.U8(128)]);
        // Pointwise conv with per-channel weights and bias, then depthwise 3x3, residual QLinearAdd, activations, pools, concat.
        var w1 = RandomS8(rng, 16, 8, 1, 1);
        var s1 = Tensor.FromArray<float>(Enumerable.Range(0, 16).Select(i => 0.002f + 0.0005f * i).ToArray(), [16]);
        var b1 = Tensor.FromArray<int>(Enumerable.Range(0, 16).Select(_ => rng.Next(-3000, 3000)).ToArray(), [16]);
        var z1 = Tensor.FromBytes(DType.Int8, [16], new byte[16]);
        var c1 = b.Op("QLinearConv", [xq, b.F(sx), b.U8(128), b.C(w1), b.C(s1), b.C(z1), b.F(0.03f), b.U8(120), b.C(b1)]);
        var w2 = RandomS8(rng, 16, 1, 3, 3);
        var c2 = b.Op("QLinearConv", [c1, b.F(0.03f), b.U8(120), b.C(w2), b.F(0.004f), b.C(Tensor.FromBytes(DType.Int8, [], new byte[1])), b.F(0.03f), b.U8(118)],
            "", Attr.Of("group", 16L), Attr.Of("pads", new long[] { 1, 1, 1, 1 }));
        var add = b.Op("QLinearAdd", [c1, b.F(0.03f), b.U8(120), c2, b.F(0.03f), b.U8(118), b.F(0.05f), b.U8(125)], "com.microsoft");
        var mul = b.Op("QLinearMul", [add, b.F(0.05f), b.U8(125), c2, b.F(0.03f), b.U8(118), b.F(0.04f), b.U8(128)], "com.microsoft");
        var leaky = b.Op("QLinearLeakyRelu", [mul, b.F(0.04f), b.U8(128), b.F(0.03f), b.U8(100)], "com.microsoft", Attr.Of("alpha", 0.1f));
        var sig = b.Op("QLinearSigmoid", [add, b.F(0.05f), b.U8(125), b.F(1f / 256), b.U8(0)], "com.microsoft");
        var cat = b.Op("QLinearConcat", [b.F(0.04f), b.U8(110), leaky, b.F(0.03f), b.U8(100), sig, b.F(1f / 256), b.U8(0)], "com.microsoft", Attr.Of("axis", 1L));
        var avg = b.Op("QLinearAveragePool", [cat, b.F(0.04f), b.U8(110), b.F(0.04f), b.U8(110)], "com.microsoft",
            Attr.Of("kernel_shape", new long[] { 3, 3 }), Attr.Of("strides", new long[] { 2, 2 }), Attr.Of("pads", new long[] { 1, 1, 1, 1 }));
        var gap = b.Op("QLinearGlobalAveragePool", [cat, b.F(0.04f), b.U8(110), b.F(0.02f), b.U8(100)], "com.microsoft");
        var flat = b.Op("Flatten", [gap]);
        var wm = RandomS8(rng, 32, 10);
        var mm = b.Op("QLinearMatMul", [flat, b.F(0.02f), b.U8(100), b.C(wm), b.F(0.01f), b.C(Tensor.FromBytes(DType.Int8, [], new byte[1])), b.F(0.05f), b.U8(128)]);
        var y1 = b.Op("DequantizeLinear", [avg, b.F(0.04f), b.U8(110)]);
        var y2 = b.Op("DequantizeLinear", [mm, b.F(0.05f), b.U8(128)]);
        var model = b.Model(y1, y2);

        var x = Tensor.FromArray<float>(NodeRunner.Random(8 * 12 * 12, 4, -2.5f, 2.5f), [1, 8, 12, 12], "x");
        var inputs = new Dictionary<string, Tensor> { ["x"] = x };
        var ort = OrtPeer.Run(model, inputs, out var why);
        if (ort is null) { output.WriteLine($"SKIPPED: {why}"); return; }
        var ours = new InferenceSession(model, new SessionOptions { Threads = 1 }).Run(inputs);
        Compare(ort, ours, new Dictionary<string, float> { [y1] = 0.04f, [y2] = 0.05f });
    }
}
