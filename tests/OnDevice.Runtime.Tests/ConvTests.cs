using OnDevice.Core;
using OnDevice.Runtime.Reference;
using OnDevice.Runtime.Simd;
using Attr = OnDevice.Core.Attribute;

namespace OnDevice.Runtime.Tests;

/// <summary>Each Conv path (pointwise GEMM, im2col GEMM in 1-D/2-D/3-D, depthwise) against <see cref="ConvReference"/>,
/// with runtime and prepacked weights, one and two threads, and fused activations.</summary>
[Trait("Category", "Kernels")]
public class ConvTests
{
    public sealed record Case(string Name, int[] X, int[] W, int Group, int[] Strides, int[] Pads, int[] Dilations, bool Bias)
    {
        public override string ToString() => Name;
    }

    public static TheoryData<Case> Cases() => new()
    {
        new Case("pointwise 1x1", [1, 16, 9, 11], [24, 16, 1, 1], 1, [1, 1], [0, 0, 0, 0], [1, 1], true),
        new Case("pointwise 1x1 batch2 large", [2, 40, 17, 23], [37, 40, 1, 1], 1, [1, 1], [0, 0, 0, 0], [1, 1], false),
        new Case("pointwise grouped", [1, 12, 5, 7], [8, 3, 1, 1], 4, [1, 1], [0, 0, 0, 0], [1, 1], true),
        new Case("1x1 stride 2", [1, 8, 9, 10], [5, 8, 1, 1], 1, [2, 2], [0, 0, 0, 0], [1, 1], true),
        new Case("3x3 pad 1", [1, 7, 13, 35], [13, 7, 3, 3], 1, [1, 1], [1, 1, 1, 1], [1, 1], true),
        new Case("3x3 stride 2 asym pad", [2, 5, 14, 15], [6, 5, 3, 3], 1, [2, 2], [1, 0, 2, 1], [1, 1], true),
        new Case("3x3 dilation 2", [1, 4, 16, 16], [5, 4, 3, 3], 1, [1, 1], [2, 2, 2, 2], [2, 2], false),
        new Case("5x3 grouped strided", [1, 8, 19, 12], [12, 2, 5, 3], 4, [2, 1], [2, 1, 2, 1], [1, 2], true),
        new Case("96->24 3x3 small", [1, 96, 12, 20], [24, 96, 3, 3], 1, [1, 1], [1, 1, 1, 1], [1, 1], true),
        new Case("3x3 implicit, several row blocks", [1, 64, 40, 60], [8, 64, 3, 3], 1, [1, 1], [1, 1, 1, 1], [1, 1], true),
        new Case("5x5 dilated implicit, several row blocks, grouped", [2, 80, 23, 90], [6, 40, 5, 5], 2, [1, 1], [4, 3, 2, 5], [2, 1], true),
        new Case("depthwise 3x3 s1", [1, 6, 13, 37], [6, 1, 3, 3], 6, [1, 1], [1, 1, 1, 1], [1, 1], true),
        new Case("depthwise 3x3 s2", [2, 5, 16, 70], [5, 1, 3, 3], 5, [2, 2], [1, 1, 1, 1], [1, 1], true),
        new Case("depthwise 5x5 s2 odd", [1, 4, 15, 19], [4, 1, 5, 5], 4, [2, 2], [2, 2, 2, 2], [1, 1], true),
        new Case("depthwise 5x5 s1 wide", [1, 3, 9, 150], [3, 1, 5, 5], 3, [1, 1], [2, 2, 2, 2], [1, 1], false),
        new Case("depthwise multiplier 2 dilated", [1, 3, 11, 12], [6, 1, 3, 3], 3, [1, 3], [2, 0, 1, 2], [2, 2], true),
        new Case("depthwise 1-D", [2, 4, 30], [4, 1, 5], 4, [1], [2, 2], [1], true),
        new Case("1-D", [1, 3, 50], [4, 3, 7], 1, [3], [3, 1], [1], true),
        new Case("3-D", [1, 3, 5, 6, 7], [4, 3, 3, 2, 3], 1, [1, 2, 1], [1, 0, 1, 1, 1, 0], [1, 1, 2], true),
    };

    internal static Tensor T(float[] v, int[] shape) => Tensor.FromArray<float>(v, shape.Select(d => (long)d).ToArray());

    [Theory]
    [MemberData(nameof(Cases))]
    public void Conv_MatchesReference(Case k)
    {
        int r = k.X.Length - 2;
        var x = NodeRunner.Random(k.X.Aggregate(1, (p, d) => p * d), 1);
        var w = NodeRunner.Random(k.W.Aggregate(1, (p, d) => p * d), 2);
        var b = k.Bias ? NodeRunner.Random(k.W[0], 3) : [];
        foreach (var act in new[] { FusedActivation.None, FusedActivation.Relu, FusedActivation.Clip(-0.2f, 0.3f) })
        {
            var (expected, shape) = ConvReference.Conv(x, k.X, w, k.W, b, k.Strides, k.Pads[..r], k.Pads[r..], k.Dilations, k.Group, act);
            foreach (int threads in new[] { 1, 2 })
                foreach (bool constant in new[] { false, true })
                {
                    bool fused = act.Kind != ActivationKind.None;
                    var inputs = k.Bias ? new[] { "x", "w", "b" } : new[] { "x", "w" };
                    var node = new Node(fused ? "FusedConv" : "Conv", inputs, ["y"], domain: fused ? "com.microsoft" : "")
                        .With(Attr.Of("group", (long)k.Group))
                        .With(Attr.Of("strides", k.Strides.Select(v => (long)v).ToArray()))
                        .With(Attr.Of("pads", k.Pads.Select(v => (long)v).ToArray()))
                        .With(Attr.Of("dilations", k.Dilations.Select(v => (long)v).ToArray()));
                    if (act.Kind == ActivationKind.Relu) node.With(Attr.Of("activation", "Relu"));
                    if (act.Kind == ActivationKind.Clip) node.With(Attr.Of("activation", "Clip")).With(Attr.Of("activation_params", new[] { act.Alpha, act.Beta }));
                    var init = constant ? new Dictionary<string, Tensor> { ["w"] = T(w, k.W) } : null;
                    var y = RunWithDomain(node, [T(x, k.X), T(w, k.W), k.Bias ? T(b, [k.W[0]]) : null], threads, init);
                    Assert.Equal(shape.Select(d => (long)d), y.Dims);
                    NodeRunner.Close(expected, y.ToFloatArray(), 1e-4f, 1e-5f);
                }
        }
    }

    [Theory]
    [InlineData("LeakyRelu", new[] { 0.1f })]
    [InlineData("HardSigmoid", new[] { 0.2f, 0.5f })]
    [InlineData("HardSwish", new float[0])]
    [InlineData("HardSwish", new[] { 0.2f, 0.5f })]
    [InlineData("Clip", new[] { 0f, 6f })]
    public void FusedConv_Activations_MatchReference(string activation, float[] parameters)
    {
        int[] xs = [1, 5, 9, 11], ws = [7, 5, 3, 3];
        var x = NodeRunner.Random(xs.Aggregate(1, (p, d) => p * d), 31, -4, 4);
        var w = NodeRunner.Random(ws.Aggregate(1, (p, d) => p * d), 32);
        var b = NodeRunner.Random(7, 33);
        var act = activation switch
        {
            "LeakyRelu" => FusedActivation.LeakyRelu(parameters[0]),
            "HardSigmoid" => FusedActivation.HardSigmoid(parameters[0], parameters[1]),
            "HardSwish" => parameters.Length == 0 ? FusedActivation.HardSwish : FusedActivation.TimesHardSigmoid(parameters[0], parameters[1]),
            _ => FusedActivation.Clip(parameters[0], parameters[1]),
        };
        var (expected, _) = ConvReference.Conv(x, xs, w, ws, b, [1, 1], [1, 1], [1, 1], [1, 1], 1, act);
        var node = new Node("FusedConv", ["x", "w", "b"], ["y"], domain: "com.microsoft")
            .With(Attr.Of("pads", new long[] { 1, 1, 1, 1 })).With(Attr.Of("activation", activation));
        if (parameters.Length > 0) node.With(Attr.Of("activation_params", parameters));
        var y = RunWithDomain(node, [T(x, xs), T(w, ws), T(b, [7])], 1, null);
        NodeRunner.Close(expected, y.ToFloatArray(), 1e-4f, 1e-5f);
    }

    [Fact]
    public void FusedConv_UnfusableActivation_IsUnsupported()
    {
        var node = new Node("FusedConv", ["x", "w"], ["y"], domain: "com.microsoft").With(Attr.Of("activation", "Tanh"));
        var e = Assert.ThrowsAny<NotSupportedException>(() => RunWithDomain(node, [T([1f], [1, 1, 1, 1]), T([1f], [1, 1, 1, 1])], 1, null));
        Assert.Contains("Tanh", e.Message);
    }

    [Theory]
    [InlineData("SAME_UPPER", 2)]
    [InlineData("SAME_LOWER", 2)]
    [InlineData("VALID", 1)]
    [InlineData("SAME_UPPER", 1)]
    public void AutoPad_MatchesExplicitPads(string autoPad, int stride)
    {
        int[] xs = [1, 2, 8, 9], ws = [3, 2, 4, 3];
        var x = NodeRunner.Random(xs.Aggregate(1, (p, d) => p * d), 4);
        var w = NodeRunner.Random(ws.Aggregate(1, (p, d) => p * d), 5);
        var pads = new int[4];
        for (int i = 0; i < 2; i++)
        {
            if (autoPad == "VALID") break;
            int n = xs[2 + i], kk = ws[2 + i], o = (n + stride - 1) / stride;
            int total = Math.Max(0, (o - 1) * stride + kk - n);
            pads[i] = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2;
            pads[i + 2] = total - pads[i];
        }
        var (expected, shape) = ConvReference.Conv(x, xs, w, ws, [], [stride, stride], pads[..2], pads[2..], [1, 1], 1);
        var node = new Node("Conv", ["x", "w"], ["y"]).With(Attr.Of("auto_pad", autoPad)).With(Attr.Of("strides", new long[] { stride, stride }));
        var y = NodeRunner.Run(node, [T(x, xs), T(w, ws)]);
        Assert.Equal(shape.Select(d => (long)d), y[0].Dims);
        NodeRunner.Close(expected, y[0].ToFloatArray(), 1e-4f, 1e-5f);
    }

    public static TheoryData<Case> TransposeCases() => new()
    {
        new Case("2x2 stride 2 (upsampling)", [1, 8, 7, 9], [8, 6, 2, 2], 1, [2, 2], [0, 0, 0, 0], [1, 1], true),
        new Case("3x3 stride 1 pad 1", [2, 5, 6, 5], [5, 4, 3, 3], 1, [1, 1], [1, 1, 1, 1], [1, 1], false),
        new Case("3x3 stride 2 asym pad grouped", [1, 6, 5, 8], [6, 2, 3, 3], 3, [2, 3], [1, 0, 0, 2], [1, 1], true),
        new Case("dilated", [1, 3, 6, 6], [3, 2, 3, 2], 1, [1, 2], [0, 1, 2, 0], [2, 2], true),
        new Case("large block", [1, 16, 40, 50], [16, 8, 4, 4], 1, [2, 2], [1, 1, 1, 1], [1, 1], true),
        new Case("1-D", [2, 3, 9], [3, 4, 5], 1, [3], [1, 2], [1], true),
        new Case("3-D", [1, 2, 3, 4, 3], [2, 3, 2, 3, 2], 1, [2, 1, 2], [0, 1, 0, 1, 0, 1], [1, 1, 1], true),
    };

    [Theory]
    [MemberData(nameof(TransposeCases))]
    public void ConvTranspose_MatchesReference(Case k)
    {
        int r = k.X.Length - 2;
        var x = NodeRunner.Random(k.X.Aggregate(1, (p, d) => p * d), 1);
        var w = NodeRunner.Random(k.W.Aggregate(1, (p, d) => p * d), 2);
        int m = k.W[1] * k.Group;
        var b = k.Bias ? NodeRunner.Random(m, 3) : [];
        foreach (int outputPadding in new[] { 0, 1 })
        {
            if (outputPadding >= k.Strides.Min()) continue;
            var outDims = new int[r];
            for (int i = 0; i < r; i++)
                outDims[i] = k.Strides[i] * (k.X[2 + i] - 1) + outputPadding + (k.W[2 + i] - 1) * k.Dilations[i] + 1 - k.Pads[i] - k.Pads[i + r];
            var (expected, shape) = ConvReference.ConvTranspose(x, k.X, w, k.W, b, k.Strides, k.Pads[..r], k.Dilations, k.Group, outDims);
            foreach (int threads in new[] { 1, 2 })
                foreach (bool constant in new[] { false, true })
                {
                    var node = new Node("ConvTranspose", k.Bias ? ["x", "w", "b"] : ["x", "w"], ["y"])
                        .With(Attr.Of("group", (long)k.Group))
                        .With(Attr.Of("strides", k.Strides.Select(v => (long)v).ToArray()))
                        .With(Attr.Of("pads", k.Pads.Select(v => (long)v).ToArray()))
                        .With(Attr.Of("dilations", k.Dilations.Select(v => (long)v).ToArray()))
                        .With(Attr.Of("output_padding", Enumerable.Repeat((long)outputPadding, r).ToArray()));
                    var init = constant ? new Dictionary<string, Tensor> { ["w"] = T(w, k.W) } : null;
                    var y = NodeRunner.Run(node, [T(x, k.X), T(w, k.W), k.Bias ? T(b, [m]) : null], threads: threads, initializers: init)[0];
                    Assert.Equal(shape.Select(d => (long)d), y.Dims);
                    NodeRunner.Close(expected, y.ToFloatArray(), 1e-4f, 1e-5f);
                }
        }
    }

    /// <summary>Runs a node that may live in the com.microsoft domain (NodeRunner imports only the default domain).</summary>
    internal static Tensor RunWithDomain(Node node, IReadOnlyList<Tensor?> inputs, int threads, IReadOnlyDictionary<string, Tensor>? init)
    {
        if (node.Domain.Length == 0) return NodeRunner.Run(node, inputs, threads: threads, initializers: init)[0];
        var g = new Graph { Name = "test" };
        var feeds = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        for (int i = 0; i < node.Inputs.Count; i++)
        {
            if (inputs[i] is not { } t || init?.ContainsKey(node.Inputs[i]) == true) continue;
            g.Inputs.Add(ValueInfo.Tensor(node.Inputs[i], t.DType, null));
            feeds[node.Inputs[i]] = t;
        }
        if (init is not null) foreach (var (name, t) in init) g.AddInitializer(t.Clone(name));
        g.Nodes.Add(node);
        g.Outputs.Add(new ValueInfo(node.Outputs[0]));
        var model = new Model(g);
        model.OpsetImports.Add(new OpsetImport("", 17));
        model.OpsetImports.Add(new OpsetImport("com.microsoft", 1));
        var s = new InferenceSession(model, new SessionOptions { Threads = threads });
        return s.Run(feeds)[node.Outputs[0]];
    }
}
