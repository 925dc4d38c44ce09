using OnDevice.Core;
using OnDevice.Runtime.Kernels.Elementwise;
using static OnDevice.Runtime.Optimizer.Rewrite;
using static OnDevice.Runtime.Optimizer.QdqValues;

namespace OnDevice.Runtime.Optimizer;

/// <summary>
/// QDQ graphs quantized once per layer, after the element-wise chain that follows each convolution:
/// <code>
/// DequantizeLinear(x, per tensor, 8-bit) → Conv(DequantizeLinear(constant 8-bit w, per tensor or per output channel), bias)
///   → [BatchNormalization] → element-wise chain (scalar / per-channel constants) → QuantizeLinear (per tensor, 8-bit)
/// </code>
/// becomes one <c>com.ondevice.QLinearConv</c> with <c>float_epilogue</c> = 1: the integer convolution (any geometry:
/// pointwise GEMM, stem/narrow im2col, depthwise, grouped) gives exact sums, and per output channel row the epilogue
/// computes y = acc·x_scale·w_scale[c] + bias[c] (BatchNormalization folded into scale and bias), runs the chain as
/// an <see cref="ElementwiseProgram"/> (its <c>body</c>, as FusedElementwise) and quantizes with the QuantizeLinear's
/// scale and zero point, written as bytes. No float tensor between the layers.
/// <para>
/// Also, after <see cref="FuseElementwiseChains"/>: a <c>FusedElementwise</c> that is the only reader of a float-output
/// <c>QLinearConv</c> (<c>dequantize</c> = 1, from <see cref="FuseQdqConvFloatOutput"/>) moves into it as its <c>body</c>.
/// </para>
/// Against the unfused graph the results differ only where the float convolution's rounding of partial sums moves a
/// value across a quantization boundary (at most one step). Runs after <see cref="FuseQdq"/> (Conv → [Relu] →
/// QuantizeLinear stays fully integer there) and before constant folding, which would dequantize the weights.
/// </summary>
internal sealed class FuseQdqConvChain : IGraphPass
{
    public string Name => "fuse-qdq-conv-chain";

    public int Apply(Graph graph, OptimizerContext ctx)
    {
        int changed = 0;
        if (graph.Nodes.Any(n => n is { OpType: "DequantizeLinear", IsDefaultDomain: true }))
        {
            var facts = ShapeInference.Infer(graph, ctx.Opset, new Dictionary<string, ValueFacts>());
            foreach (var q in graph.Nodes.ToList())
            {
                if (q is not { OpType: "QuantizeLinear", IsDefaultDomain: true } || !graph.Nodes.Contains(q)) continue;
                if (TryFuse(graph, ctx, facts, q)) changed++;
            }
        }
        foreach (var conv in graph.Nodes.ToList())
        {
            if (conv is not { OpType: "QLinearConv", Domain: FusedElementwiseKernels.Domain } || conv.GetInt("dequantize", 0) == 0 || conv.Attr("body") is not null) continue;
            if (TryAbsorbChain(graph, ctx, conv)) changed++;
        }
        return changed;
    }

    /// <summary>The QuantizeLinear's scale, zero point (a name; null when absent) and type when they are per tensor and 8-bit.</summary>
    private static (DType Type, string? Zp)? ReadQ(Graph g, OptimizerContext ctx, Node q)
    {
        if (q.Inputs.Count < 2 || q.Outputs.Count != 1 || q.Outputs[0].Length == 0 || q.GetInt("block_size", 0) != 0) return null;
        if (ctx.ConstantOf(g, q.Inputs[1]) is not { DType: DType.Float32 } ys || !Scalar(ys)) return null;
        string? zpName = q.Inputs.Count > 2 && q.Inputs[2].Length > 0 ? q.Inputs[2] : null;
        Tensor? yzp = zpName is null ? null : ctx.ConstantOf(g, zpName);
        if (zpName is not null && (yzp is null || !Scalar(yzp))) return null;
        var yType = yzp?.DType ?? (DType)q.GetInt("output_dtype", (long)DType.UInt8);
        return yType is DType.UInt8 or DType.Int8 ? (yType, zpName) : null;
    }

    private static bool TryFuse(Graph g, OptimizerContext ctx, ShapeInferenceResult facts, Node q)
    {
        if (ReadQ(g, ctx, q) is not { } yq) return false;
        // The chain: walk back from the QuantizeLinear's input through element-wise nodes whose other operands are
        // constants, until one root value (the Conv's or its BatchNormalization's result).
        var chain = new List<Node>();
        string? root = null;
        var stack = new Stack<string>([q.Inputs[0]]);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        while (stack.Count > 0)
        {
            var v = stack.Pop();
            if (!seen.Add(v)) continue;
            var p = Producer(g, v);
            if (p is { IsDefaultDomain: true } && ElementwiseProgram.SupportedOps.Contains(p.OpType) && p.Outputs.Count == 1)
            {
                chain.Add(p);
                foreach (var i in p.Inputs)
                    if (i.Length > 0 && ctx.ConstantOf(g, i) is null) stack.Push(i);
                continue;
            }
            if (root is not null && root != v) return false;
            root = v;
        }
        if (root is null) return false;
        // Every chain value but the last is read only inside the chain.
        var members = chain.ToHashSet<Node>(ReferenceEqualityComparer.Instance);
        foreach (var n in chain)
        {
            var o = n.Outputs[0];
            if (IsGraphOutput(g, o)) return false;
            bool last = o == q.Inputs[0];
            if (g.Nodes.Any(r => r.Inputs.Contains(o) && !members.Contains(r) && !(last && ReferenceEquals(r, q)))) return false;
            if (g.Nodes.Any(r => GraphAlgorithms.ImplicitInputs(r).Contains(o))) return false;
        }
        if (!SingleUse(g, q.Inputs[0])) return false;

        // The root: a Conv, or a BatchNormalization reading only a Conv.
        var convNode = Producer(g, root);
        if (convNode is { OpType: "BatchNormalization", IsDefaultDomain: true } && Producer(g, convNode.Inputs[0]) is { OpType: "Conv" or "ConvTranspose", IsDefaultDomain: true } c0) convNode = c0;
        if (convNode is not { OpType: "Conv" or "ConvTranspose", IsDefaultDomain: true } conv || conv.Outputs.Count != 1 || conv.Inputs.Count < 2) return false;
        if (chain.Count == 0 && conv.Outputs[0] == root) return false; // Conv → QuantizeLinear: FuseQdq's case
        if (ReadConv(g, ctx, facts, conv) is not { } cv) return false;
        var scale = cv.Scale;
        var bias = cv.Bias;
        Node? bn = null;
        if (conv.Outputs[0] != root)
        {
            bn = FoldFollowingBatchNorm(g, ctx, conv.Outputs[0], scale, bias);
            if (bn is null || bn.Outputs[0] != root) return false;
        }
        if (chain.Count == 0 && !SingleUse(g, root)) return false;
        if (chain.Count > 0 && (IsGraphOutput(g, root) || g.Nodes.Any(r => (r.Inputs.Contains(root) && !members.Contains(r)) || GraphAlgorithms.ImplicitInputs(r).Contains(root)))) return false;

        // The chain as a FusedElementwise body, in graph order; it must compile (operators, constants, slots).
        int rank = cv.Rank;
        var order = chain.OrderBy(n => g.Nodes.IndexOf(n)).ToList();
        Graph? body = null;
        if (order.Count > 0)
        {
            body = new Graph { Name = $"epilogue_{q.Inputs[0]}" };
            body.Inputs.Add(ValueInfo.Tensor(root, DType.Float32, null));
            foreach (var n in order)
            {
                foreach (var i in n.Inputs)
                {
                    if (i.Length == 0 || i == root || body.Initializers.ContainsKey(i) || order.Any(o => o.Outputs[0] == i)) continue;
                    if (ctx.ConstantOf(g, i) is not { DType: DType.Float32 } t || ElementwiseProgram.ChannelForm(t.Dims, rank) is not { } perChannel) return false;
                    if (perChannel && t.ElementCount != cv.M) return false;
                    body.Initializers.Add(i, t);
                }
                body.Nodes.Add(n);
            }
            body.Outputs.Add(ValueInfo.Tensor(q.Inputs[0], DType.Float32, null));
            if (ElementwiseProgram.Compile(body, rank, ctx.Opset, out _) is null) return false;
        }

        string label = conv.Name.Length > 0 ? conv.Name : conv.Outputs[0];
        var inputs = ConvInputs(g, cv, label, scale, bias);
        inputs[6] = q.Inputs[1];
        inputs[7] = yq.Zp ?? AddConst(g, label + "_y_zero_point", Tensor.FromBytes(yq.Type, [], new byte[1]));
        var fused = new Node(conv.OpType == "Conv" ? "QLinearConv" : "QLinearConvTranspose", inputs, [q.Outputs[0]], label + "+qdq-chain", FusedElementwiseKernels.Domain);
        foreach (var a in conv.Attributes.Values) fused.Attributes.Add(a.Name, a);
        fused.With(Core.Attribute.Of("float_epilogue", 1L));
        if (body is not null)
            fused.With(Core.Attribute.Of("body", body)).With(Core.Attribute.Of("rank", (long)rank)).With(Core.Attribute.Of("opset", ctx.Opset));
        g.Nodes[g.Nodes.IndexOf(conv)] = fused;
        if (bn is not null) g.Nodes.Remove(bn);
        foreach (var n in order) g.Nodes.Remove(n);
        g.Nodes.Remove(q);
        RemoveConvInputs(g, cv);
        return true;
    }

    /// <summary>A DequantizeLinear → Conv(DequantizeLinear(w)) pair the integer kernels run, with the float scale and bias per output channel.</summary>
    internal sealed record QdqConv(Node Conv, Dq X, DType XType, Dq W, int M, int Rank, double[] Scale, double[] Bias);

    /// <summary>
    /// Reads a Conv (or 2-D ConvTranspose) over DequantizeLinear(x) (per tensor, 8-bit, not constant) and
    /// DequantizeLinear(constant 8-bit w, per tensor or per output channel) with a constant or dequantized-constant
    /// bias; null when it does not fit.
    /// Scale[c] is w_scale[c] (x_scale stays separate); Bias[c] the float bias.
    /// </summary>
    internal static QdqConv? ReadConv(Graph g, OptimizerContext ctx, ShapeInferenceResult facts, Node conv)
    {
        var x = ReadDq(g, ctx, Producer(g, conv.Inputs[0]));
        var w = ReadDq(g, ctx, Producer(g, conv.Inputs[1]));
        if (x is null || w is null || x.XConst is not null || x.BlockSize != 0 || w.BlockSize != 0) return null;
        if (x.Scale.DType != DType.Float32 || !Scalar(x.Scale) || (x.Zp is not null && !Scalar(x.Zp))) return null;
        var xType = x.Zp?.DType ?? facts.Get(x.X)?.DType;
        if (xType is not (DType.UInt8 or DType.Int8)) return null;
        if (w.XConst is not { DType: DType.Int8 or DType.UInt8 } wc || wc.Dims.Length is < 3 or > 5 || w.Scale.DType != DType.Float32) return null;
        // Conv weights are [M, C/group, k…] (output channels on axis 0); ConvTranspose weights [C, M, k…] (axis 1, one
        // group, 2-D, no output_shape / output_padding / SAME padding: what QLinearConvTranspose runs).
        bool transpose = conv.OpType == "ConvTranspose";
        if (transpose && (conv.GetInt("group", 1) != 1 || wc.Dims.Length != 4 || conv.Attr("output_shape") is not null
            || conv.GetInts("output_padding")?.Any(v => v != 0) == true || conv.GetString("auto_pad", "NOTSET") is not ("NOTSET" or "VALID"))) return null;
        int m = checked((int)wc.Dims[transpose ? 1 : 0]);
        long group = conv.GetInt("group", 1);
        if (group < 1 || m % group != 0) return null;
        long axis = w.Axis < 0 ? w.Axis + wc.Dims.Length : w.Axis;
        if (!Scalar(w.Scale) && !(w.Scale.Dims.Length == 1 && w.Scale.ElementCount == m && axis == (transpose ? 1 : 0))) return null;
        if (w.Zp is not null && (w.Zp.ElementCount != w.Scale.ElementCount || w.Zp.DType != wc.DType)) return null;
        long inChannels = transpose ? wc.Dims[0] : wc.Dims[1] * group;
        if (facts.Get(conv.Inputs[0])?.Shape is not { } xShape || xShape.Rank != wc.Dims.Length || !xShape[1].IsKnown || xShape[1].Value != inChannels) return null;
        var bias = new double[m];
        if (conv.Inputs.Count > 2 && conv.Inputs[2].Length > 0)
        {
            if (BiasValues(g, ctx, conv.Inputs[2]) is not { } bv || bv.Length != m) return null;
            bias = bv;
        }
        var scale = new double[m];
        for (int o = 0; o < m; o++) scale[o] = w.Scale.GetDouble(Scalar(w.Scale) ? 0 : o);
        return new QdqConv(conv, x, xType.Value, w, m, wc.Dims.Length, scale, bias);
    }

    /// <summary>The nine inputs of the float-epilogue QLinearConv (y_scale and y_zero_point empty; float scale and bias added as constants).</summary>
    internal static List<string> ConvInputs(Graph g, QdqConv cv, string label, double[] scale, double[] bias)
    {
        string zx = cv.X.Zp is null ? AddConst(g, label + "_x_zero_point", Tensor.FromBytes(cv.XType, [], new byte[1])) : cv.X.Node.Inputs[2];
        var wc = cv.W.XConst!;
        string zw = cv.W.Zp is null ? AddConst(g, label + "_w_zero_point", Tensor.FromBytes(wc.DType, [cv.M], new byte[cv.M])) : cv.W.Node.Inputs[2];
        string sw = AddConst(g, label + "_w_scale_folded", Tensor.FromArray<float>(scale.Select(v => (float)v).ToArray(), [cv.M]));
        string b = AddConst(g, label + "_bias_float", Tensor.FromArray<float>(bias.Select(v => (float)v).ToArray(), [cv.M]));
        return [cv.X.X, cv.X.Node.Inputs[1], zx, cv.W.X, sw, zw, "", "", b];
    }

    /// <summary>Removes the DequantizeLinear nodes the fused Conv read, once nothing else reads them.</summary>
    internal static void RemoveConvInputs(Graph g, QdqConv cv)
    {
        RemoveIfUnused(g, cv.X.Node);
        RemoveIfUnused(g, cv.W.Node);
        if (cv.Conv.Inputs.Count > 2 && Producer(g, cv.Conv.Inputs[2]) is { OpType: "DequantizeLinear" } bdq) RemoveIfUnused(g, bdq);
    }

    /// <summary>
    /// QLinearConv(dequantize) → FusedElementwise, or one element-wise op with constant other operands (its only
    /// reader): the chain becomes the convolution's epilogue.
    /// </summary>
    private static bool TryAbsorbChain(Graph g, OptimizerContext ctx, Node conv)
    {
        var y = conv.Outputs[0];
        if (IsGraphOutput(g, y) || g.Nodes.Any(n => GraphAlgorithms.ImplicitInputs(n).Contains(y))) return false;
        var readers = g.Nodes.Where(n => n.Inputs.Contains(y)).ToList();
        if (readers.Count != 1 || readers[0] is not { Outputs.Count: 1 } reader) return false;
        if (ctx.ConstantOf(g, conv.Inputs[3]) is not { } w) return false;
        long rank = w.Dims.Length;
        Graph body;
        long opset = ctx.Opset;
        if (reader is { OpType: "FusedElementwise", Domain: FusedElementwiseKernels.Domain } && reader.Inputs.Count == 1 && reader.Attr("body")?.AsGraph() is { } b)
        {
            if (reader.GetInt("rank", -1) != rank) return false;
            body = b;
            opset = reader.GetInt("opset", ctx.Opset);
        }
        else if (reader.IsDefaultDomain && ElementwiseProgram.SupportedOps.Contains(reader.OpType)
                 && reader.Inputs.All(i => i.Length == 0 || i == y || ctx.ConstantOf(g, i) is not null))
        {
            body = new Graph { Name = $"epilogue_{reader.Outputs[0]}" };
            body.Inputs.Add(ValueInfo.Tensor(y, DType.Float32, null));
            foreach (var i in reader.Inputs)
                if (i.Length > 0 && i != y && !body.Initializers.ContainsKey(i)) body.Initializers.Add(i, ctx.ConstantOf(g, i)!);
            body.Nodes.Add(reader);
            body.Outputs.Add(ValueInfo.Tensor(reader.Outputs[0], DType.Float32, null));
        }
        else return false;
        if (ElementwiseProgram.Compile(body, (int)rank, opset, out _) is not { } program) return false;
        if (program.CheckChannels(checked((int)w.Dims[0])) is not null) return false;
        conv.With(Core.Attribute.Of("body", body)).With(Core.Attribute.Of("rank", rank)).With(Core.Attribute.Of("opset", opset));
        conv.Outputs[0] = reader.Outputs[0];
        g.Nodes.Remove(reader);
        return true;
    }
}
