using OnDevice.Core;
using OnDevice.Runtime.Kernels.Elementwise;
using static OnDevice.Runtime.Optimizer.Rewrite;
using static OnDevice.Runtime.Optimizer.QdqValues;

namespace OnDevice.Runtime.Optimizer;

/// <summary>
/// A Conv (any geometry the integer convolution runs: pointwise, im2col, depthwise, grouped) reading DequantizeLinear(x) (per-tensor 8-bit activations)
/// and DequantizeLinear(constant 8-bit weights) whose result is not quantized again — in mixed-precision QDQ models the
/// convolution after a kept-float activation is only weight-quantized, and the one before it has a quantized input but
/// a float output — becomes <c>com.ondevice.QLinearConv</c> with <c>dequantize</c> = 1: the integer convolution on the bytes
/// with a float epilogue y = S·x_scale·w_scale[oc] + bias[oc], instead of a float convolution on dequantized values.
/// A BatchNormalization that is the convolution's only reader folds into the per-channel scale and bias.
/// Not bit-identical to the float convolution (which rounds every partial sum; the integer sum is exact), the
/// difference is float rounding, far below one quantization step. Runs after <see cref="FuseQdq"/>, which keeps
/// the Conv → QuantizeLinear cases fully integer (a result read by QuantizeLinear, directly or through Relu, is left
/// alone for those fusions), and before constant folding, which would dequantize the weights.
/// </summary>
internal sealed class FuseQdqConvFloatOutput : IGraphPass
{
    public string Name => "fuse-qdq-conv-float-output";

    public int Apply(Graph graph, OptimizerContext ctx)
    {
        if (!graph.Nodes.Any(n => n is { OpType: "DequantizeLinear", IsDefaultDomain: true })) return 0;
        var facts = ShapeInference.Infer(graph, ctx.Opset, new Dictionary<string, ValueFacts>());
        int changed = 0;
        foreach (var conv in graph.Nodes.ToList())
            if (conv is { OpType: "Conv", IsDefaultDomain: true } && graph.Nodes.Contains(conv) && TryFuse(graph, ctx, facts, conv)) changed++;
        return changed;
    }

    private static bool TryFuse(Graph g, OptimizerContext ctx, ShapeInferenceResult facts, Node conv)
    {
        if (conv.Inputs.Count < 2 || conv.Outputs.Count != 1) return false;
        // A result that is quantized right away (directly or through Relu) belongs to the fully integer fusions.
        foreach (var r in g.Nodes.Where(n => n.Inputs.Contains(conv.Outputs[0])))
            if (r is { OpType: "QuantizeLinear" } || r is { OpType: "Relu" } && g.Nodes.Any(n => n.OpType == "QuantizeLinear" && n.Inputs.Contains(r.Outputs[0]))) return false;
        if (FuseQdqConvChain.ReadConv(g, ctx, facts, conv) is not { } cv) return false;
        // A BatchNormalization reading only this result folds into the per-channel scale and bias.
        string output = conv.Outputs[0];
        var bn = FoldFollowingBatchNorm(g, ctx, output, cv.Scale, cv.Bias);
        string label = conv.Name.Length > 0 ? conv.Name : output;
        var fused = new Node("QLinearConv", FuseQdqConvChain.ConvInputs(g, cv, label, cv.Scale, cv.Bias),
            [bn is null ? output : bn.Outputs[0]], label + "+qdq-float", FusedElementwiseKernels.Domain);
        foreach (var a in conv.Attributes.Values) fused.Attributes.Add(a.Name, a);
        fused.With(Core.Attribute.Of("dequantize", 1L));
        g.Nodes[g.Nodes.IndexOf(conv)] = fused;
        if (bn is not null) g.Nodes.Remove(bn);
        FuseQdqConvChain.RemoveConvInputs(g, cv);
        return true;
    }
}
