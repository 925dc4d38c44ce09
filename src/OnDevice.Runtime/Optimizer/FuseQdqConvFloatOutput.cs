using OnDevice.Core;
using OnDevice.Runtime.Kernels.Elementwise;
using static OnDevice.Runtime.Optimizer.Rewrite;
using static OnDevice.Runtime.Optimizer.QdqValues;

namespace OnDevice.Runtime.Optimizer;

/// <summary>
/// A pointwise (1×1, stride 1, no padding, one group) Conv reading DequantizeLinear(x) (per-tensor 8-bit activations)
/// and DequantizeLinear(constant 8-bit weights) whose result is not quantized again — in mixed-precision QDQ models the
/// convolution after a kept-float activation is only weight-quantized, and the one before it has a quantized input but
/// a float output — becomes <c>com.ondevice.QLinearConv</c> with <c>dequantize</c> = 1: the int8 GEMM on the bytes
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
        if (conv.Inputs.Count < 2 || conv.Outputs.Count != 1 || conv.GetInt("group", 1) != 1) return false;
        // A result that is quantized right away (directly or through Relu) belongs to the fully integer fusions.
        foreach (var r in g.Nodes.Where(n => n.Inputs.Contains(conv.Outputs[0])))
            if (r is { OpType: "QuantizeLinear" } || r is { OpType: "Relu" } && g.Nodes.Any(n => n.OpType == "QuantizeLinear" && n.Inputs.Contains(r.Outputs[0]))) return false;
        if (conv.Attr("auto_pad") is { } ap && ap.AsString() is not ("NOTSET" or "")) return false;
        if (conv.Attributes.Values.Any(a => a.Name is "strides" or "dilations" && a.AsInts().Any(v => v != 1))) return false;
        if (conv.Attr("pads") is { } pads && pads.AsInts().Any(v => v != 0)) return false;
        var xdq = Producer(g, conv.Inputs[0]);
        var wdq = Producer(g, conv.Inputs[1]);
        if (xdq is not { OpType: "DequantizeLinear", IsDefaultDomain: true } || wdq is not { OpType: "DequantizeLinear", IsDefaultDomain: true }) return false;
        if (xdq.GetInt("block_size", 0) != 0 || wdq.GetInt("block_size", 0) != 0) return false;
        // Activations: per-tensor scale and zero point, 8-bit, not a constant.
        if (ctx.ConstantOf(g, xdq.Inputs[0]) is not null || ctx.ConstantOf(g, xdq.Inputs[1]) is not { DType: DType.Float32 } xs || !Scalar(xs)) return false;
        Tensor? xzp = xdq.Inputs.Count > 2 && xdq.Inputs[2].Length > 0 ? ctx.ConstantOf(g, xdq.Inputs[2]) : null;
        if (xdq.Inputs.Count > 2 && xdq.Inputs[2].Length > 0 && (xzp is null || !Scalar(xzp))) return false;
        var xType = xzp?.DType ?? facts.Get(xdq.Inputs[0])?.DType;
        if (xType is not (DType.UInt8 or DType.Int8)) return false;
        // Weights: constant 8-bit [M, C, 1, 1], per-tensor or per output channel (axis 0).
        if (ctx.ConstantOf(g, wdq.Inputs[0]) is not { DType: DType.Int8 or DType.UInt8, Dims.Length: 4 } w) return false;
        if (w.Dims[2] != 1 || w.Dims[3] != 1) return false;
        if (ctx.ConstantOf(g, wdq.Inputs[1]) is not { DType: DType.Float32 } ws) return false;
        long m = w.Dims[0];
        long axis = wdq.GetInt("axis", 1);
        if (axis < 0) axis += 4;
        if (!Scalar(ws) && !(ws.Dims.Length == 1 && ws.ElementCount == m && axis == 0)) return false;
        Tensor? wzp = wdq.Inputs.Count > 2 && wdq.Inputs[2].Length > 0 ? ctx.ConstantOf(g, wdq.Inputs[2]) : null;
        if (wdq.Inputs.Count > 2 && wdq.Inputs[2].Length > 0 && (wzp is null || wzp.ElementCount != ws.ElementCount || wzp.DType != w.DType)) return false;
        if (facts.Get(conv.Inputs[0])?.Shape is not { Rank: 4 } xShape || !xShape[1].IsKnown || xShape[1].Value != w.Dims[1]) return false;
        // Bias: none, a float constant, or a DequantizeLinear of a constant.
        var bias = new double[m];
        if (conv.Inputs.Count > 2 && conv.Inputs[2].Length > 0)
        {
            var bv = BiasValues(g, ctx, conv.Inputs[2]);
            if (bv is null || bv.Length != m) return false;
            bias = bv;
        }
        var scale = new double[m];
        for (int o = 0; o < m; o++) scale[o] = ws.GetDouble(Scalar(ws) ? 0 : o);

        // A BatchNormalization reading only this result folds into the per-channel scale and bias.
        string output = conv.Outputs[0];
        Node? bn = null;
        if (!Rewrite.IsGraphOutput(g, output) && Rewrite.UseCount(g, output) == 1
            && g.Nodes.FirstOrDefault(n => n.Inputs.Contains(output)) is { OpType: "BatchNormalization", IsDefaultDomain: true } b && b.Inputs.Count >= 5 && b.Inputs[0] == output
            && b.GetInt("training_mode", 0) == 0 && !b.Outputs.Skip(1).Any(o => o.Length > 0 && Rewrite.UseCount(g, o) > 0))
        {
            var stats = b.Inputs.Skip(1).Take(4).Select(i => ctx.ConstantOf(g, i)).ToArray();
            if (stats.All(t => t is { DType: DType.Float32 } && t.ElementCount == m))
            {
                float eps = b.GetFloat("epsilon", 1e-5f);
                for (int o = 0; o < m; o++)
                {
                    double f = stats[0]!.GetDouble(o) / Math.Sqrt(stats[3]!.GetDouble(o) + eps);
                    scale[o] *= f;
                    bias[o] = (bias[o] - stats[2]!.GetDouble(o)) * f + stats[1]!.GetDouble(o);
                }
                bn = b;
            }
        }

        string label = conv.Name.Length > 0 ? conv.Name : output;
        string zx = xzp is null ? AddConst(g, label + "_x_zero_point", Tensor.FromBytes(xType.Value, [], new byte[1])) : xdq.Inputs[2];
        string zw = wzp is null ? AddConst(g, label + "_w_zero_point", Tensor.FromBytes(w.DType, [m], new byte[m])) : wdq.Inputs[2];
        string sw = AddConst(g, label + "_w_scale_folded", Tensor.FromArray<float>(scale.Select(v => (float)v).ToArray(), [m]));
        string bName = AddConst(g, label + "_bias_float", Tensor.FromArray<float>(bias.Select(v => (float)v).ToArray(), [m]));
        var fused = new Node("QLinearConv", [xdq.Inputs[0], xdq.Inputs[1], zx, wdq.Inputs[0], sw, zw, "", "", bName],
            [bn is null ? output : bn.Outputs[0]], label + "+qdq-float", FusedElementwiseKernels.Domain);
        foreach (var a in conv.Attributes.Values) fused.Attributes.Add(a.Name, a);
        fused.With(Core.Attribute.Of("dequantize", 1L));
        g.Nodes[g.Nodes.IndexOf(conv)] = fused;
        if (bn is not null) g.Nodes.Remove(bn);
        RemoveIfUnused(g, xdq);
        RemoveIfUnused(g, wdq);
        if (conv.Inputs.Count > 2 && Producer(g, conv.Inputs[2]) is { OpType: "DequantizeLinear" } bdq) RemoveIfUnused(g, bdq);
        return true;
    }

}
