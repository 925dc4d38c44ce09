using OnDevice.Core;
using OnDevice.Runtime.Kernels.Elementwise;
using static OnDevice.Runtime.Optimizer.Rewrite;
using static OnDevice.Runtime.Optimizer.QdqValues;

namespace OnDevice.Runtime.Optimizer;

/// <summary>
/// Weight-only 4-bit convolutions keep their packed weights: Conv(x, DequantizeLinear(constant int4/uint4 w)) with
/// the weight blocked along the input channels (opset 21 <c>block_size</c>, axis 1), per output channel (axis 0) or per
/// tensor, optional zero points — or Conv(x, Reshape(DequantizeLinear(w [M, cg·taps]))) blocked along the flattened
/// reduction axis, as OnDevice's quantizer writes kernels with several taps — becomes
/// <c>com.ondevice.BlockQuantConv</c>. Its weight is re-laid out once, still 4-bit, as <see cref="Simd.NBitsWeights"/>
/// columns with float scales and zero points [columns, blocks]: one column per output channel over cg·taps (the
/// flattened form; attribute <c>column_taps</c> = 1), or one per kernel tap and output channel over cg (blocks along
/// the input channels; <c>column_taps</c> = taps). The convolution kernel dequantizes it block by block into its GEMM
/// panels on each run (<see cref="Simd.NBitsPanels"/>), so the float weight never stays resident. A BatchNormalization that is the convolution's only reader folds into the scales and bias.
/// Left to constant folding (float weights): convolutions with fewer than <see cref="MinWeights"/> weights (their
/// float copy is under 8 KB, e.g. a 3×3 depthwise bank of 64 channels; dequantizing on every run would cost more than
/// it saves), and layouts whose packed form would be at least half the float size (a depthwise filter blocked along
/// its single input channel: one padded block per weight). Depthwise convolutions in the flattened form (blocks over
/// the taps) stay packed; the depthwise kernel dequantizes the taps of all channels into scratch per run. Runs before constant folding, which would otherwise dequantize the weight to float.
/// </summary>
internal sealed class FuseBlockQuantConv : IGraphPass
{
    /// <summary>The fused op's name (domain <see cref="FusedElementwiseKernels.Domain"/>).</summary>
    public const string OpType = "BlockQuantConv";

    /// <summary>Smallest convolution (weights) kept packed; smaller ones are folded to float.</summary>
    internal const long MinWeights = 2048;

    public string Name => "fuse-block-quant-conv";

    public int Apply(Graph graph, OptimizerContext ctx)
    {
        if (!graph.Nodes.Any(n => n is { OpType: "DequantizeLinear", IsDefaultDomain: true })) return 0;
        int changed = 0;
        foreach (var conv in graph.Nodes.ToList())
            if (conv is { OpType: "Conv", IsDefaultDomain: true } && graph.Nodes.Contains(conv) && TryFuse(graph, ctx, conv)) changed++;
        return changed;
    }

    private static bool TryFuse(Graph g, OptimizerContext ctx, Node conv)
    {
        if (conv.Inputs.Count < 2 || conv.Outputs.Count != 1 || !SingleUse(g, conv.Inputs[1])) return false;
        // The weight is DequantizeLinear(w) itself, or Reshape(DequantizeLinear(w [M, cg·taps]), constant shape): the
        // quantizer's form for kernels with several taps, blocked along the flattened reduction axis.
        var producer = Producer(g, conv.Inputs[1]);
        Node? reshape = null;
        long[]? target = null;
        if (producer is { OpType: "Reshape", IsDefaultDomain: true } rs && rs.Inputs.Count >= 2 && ctx.ConstantOf(g, rs.Inputs[1]) is { } shapeT && SingleUse(g, rs.Inputs[0]))
        {
            reshape = rs;
            target = shapeT.ToInt64Array();
            producer = Producer(g, rs.Inputs[0]);
        }
        var w = ReadDq(g, ctx, producer);
        if (w?.XConst is not { DType: DType.Int4 or DType.UInt4 } wc) return false;
        // float32 scales only: with float16 scales the file's DequantizeLinear rounds every weight to float16 (then a Cast
        // follows); the packed path would multiply in float32 and differ from ONNX Runtime by that rounding (measured on
        // the rec: up to 1 % at the softmax), so those stay on the folded path.
        if (w.Scale.DType != DType.Float32) return false;
        long[] wDims;
        if (reshape is null) wDims = wc.Dims.ToArray();
        else
        {
            if (wc.Dims.Length != 2 || ResolveReshape(wc.Dims, target!) is not { } resolved || resolved[0] != wc.Dims[0]) return false;
            wDims = resolved;
        }
        if (wDims.Length < 3 || wDims.Length > 5 || wDims.Any(d => d < 1)) return false;
        long group = conv.GetInt("group", 1);
        if (group < 1 || wDims[0] % group != 0) return false;
        int m = checked((int)wDims[0]), cg = checked((int)wDims[1]);
        int taps = checked((int)wDims.Skip(2).Aggregate(1L, (p, d) => p * d));
        if ((long)m * cg * taps < MinWeights) return false;
        int rank = wc.Dims.Length;
        long axis = w.Axis < 0 ? w.Axis + rank : w.Axis;

        // Packed columns: for a 2-D source, one per output channel over k = c·taps + t (the source's own row); for a
        // source in the weight's shape blocked along the input channels, one per (tap, output channel) over c.
        int colTaps = reshape is null ? taps : 1, colK = reshape is null ? cg : cg * taps;
        Func<int, int, int, long> element = reshape is null
            ? (o, t, k) => ((long)o * cg + k) * taps + t
            : (o, _, k) => (long)o * colK + k;
        // Source scale index of (output channel o, column tap t, column index k), and the packed layout's block size.
        Func<int, int, int, long> scaleAt;
        int bs;
        if (w.BlockSize > 0)
        {
            if (axis != 1 || w.BlockSize < 16 || (w.BlockSize & (w.BlockSize - 1)) != 0 || w.BlockSize > 1024) return false;
            int b = (int)w.BlockSize, nb = (colK + b - 1) / b;
            var expect = wc.Dims.ToArray();
            expect[1] = nb;
            if (!w.Scale.Dims.AsSpan().SequenceEqual(expect)) return false;
            scaleAt = reshape is null ? (o, t, k) => ((long)o * nb + k / b) * taps + t : (o, _, k) => (long)o * nb + k / b;
            bs = b;
        }
        else if (Scalar(w.Scale))
        {
            scaleAt = (_, _, _) => 0;
            bs = BlockFor(colK);
        }
        else if (axis == 0 && w.Scale.Dims.Length == 1 && w.Scale.ElementCount == m)
        {
            scaleAt = (o, _, _) => o;
            bs = BlockFor(colK);
        }
        else return false;
        if (w.Zp is not null && (w.Zp.ElementCount != w.Scale.ElementCount || w.Zp.DType != wc.DType)) return false;
        // Not worth it when the packed form (blocks padded to bs values, a float scale and zero point each) would be
        // at least half the float weight: e.g. a depthwise filter blocked along its single input channel, where every
        // weight would take a block of its own.
        long packedBytes = (long)colTaps * m * ((colK + bs - 1) / bs) * (bs / 2 + 8);
        if (2 * packedBytes > 4L * m * cg * taps) return false;

        // Bias (float constant or dequantized constant; none is zeros) and a BatchNormalization to fold.
        float[]? bias = null;
        Node? biasDq = null;
        if (conv.Inputs.Count > 2 && conv.Inputs[2].Length > 0)
        {
            if (BiasValues(g, ctx, conv.Inputs[2], out biasDq) is not { } bv || bv.Length != m) return false;
            bias = bv.Select(v => (float)v).ToArray();
        }
        float[]? bnScale = null;
        string output = conv.Outputs[0];
        Node? bn = FoldableBatchNorm(g, ctx, output, m, out var bnFactor, out var bnShift);
        if (bn is not null)
        {
            bnScale = bnFactor;
            bias ??= new float[m];
            for (int o = 0; o < m; o++) bias[o] = bias[o] * bnFactor![o] + bnShift![o];
            output = bn.Outputs[0];
        }

        int blocks = (colK + bs - 1) / bs, columns = colTaps * m;
        var (packed, scales, zps) = PackInt4Columns(w, columns, colK, bs, (j, k) => element(j % m, j / m, k), (j, k) => scaleAt(j % m, j / m, k),
            j => bnScale?[j % m] ?? 1f);

        string label = conv.Name.Length > 0 ? conv.Name : conv.Outputs[0];
        var inputs = new List<string>
        {
            conv.Inputs[0],
            AddConst(g, label + "_w_nbits", Tensor.FromBytes(DType.UInt8, [columns, blocks, bs / 2], packed)),
            bias is null ? "" : AddConst(g, label + "_bias", Tensor.FromArray<float>(bias, [m])),
            AddConst(g, label + "_w_scales", Tensor.FromArray<float>(scales, [columns, blocks])),
            AddConst(g, label + "_w_zero_points", Tensor.FromArray<float>(zps, [columns, blocks])),
        };
        var node = new Node(OpType, inputs, [output], label + "+int4", FusedElementwiseKernels.Domain);
        foreach (var a in conv.Attributes.Values) node.Attributes.Add(a.Name, a);
        node.With(Core.Attribute.Of("weight_shape", wDims)).With(Core.Attribute.Of("bits", 4L)).With(Core.Attribute.Of("block_size", (long)bs))
            .With(Core.Attribute.Of("column_taps", (long)colTaps));
        g.Nodes[g.Nodes.IndexOf(conv)] = node;
        if (bn is not null) g.Nodes.Remove(bn);
        if (reshape is not null) RemoveIfUnused(g, reshape);
        RemoveIfUnused(g, w.Node);
        if (biasDq is not null) RemoveIfUnused(g, biasDq);
        return true;
    }

    /// <summary>Reshape's target for an input of <paramref name="dims"/> (0 copies, one −1 is inferred); null when it does not fit.</summary>
    private static long[]? ResolveReshape(long[] dims, long[] target)
    {
        var r = target.ToArray();
        long known = 1, total = dims.Aggregate(1L, (p, d) => p * d);
        int infer = -1;
        for (int i = 0; i < r.Length; i++)
        {
            if (r[i] == 0) r[i] = i < dims.Length ? dims[i] : -2;
            if (r[i] == -1) { if (infer >= 0) return null; infer = i; continue; }
            if (r[i] < 1) return null;
            known *= r[i];
        }
        if (infer >= 0)
        {
            if (known == 0 || total % known != 0) return null;
            r[infer] = total / known;
        }
        return r.Aggregate(1L, (p, d) => p * d) == total ? r : null;
    }

    /// <summary>An inference BatchNormalization (constant float statistics of <paramref name="m"/> channels) that is the only reader of <paramref name="y"/>: y·factor + shift.</summary>
    private static Node? FoldableBatchNorm(Graph g, OptimizerContext ctx, string y, int m, out float[]? factor, out float[]? shift)
    {
        factor = shift = null;
        if (IsGraphOutput(g, y) || UseCount(g, y) != 1) return null;
        if (g.Nodes.FirstOrDefault(n => n.Inputs.Contains(y)) is not { OpType: "BatchNormalization", IsDefaultDomain: true } bn) return null;
        if (bn.Inputs.Count < 5 || bn.Inputs[0] != y || bn.GetInt("training_mode", 0) != 0) return null;
        if (bn.Outputs.Skip(1).Any(o => o.Length > 0 && UseCount(g, o) > 0)) return null;
        var stats = bn.Inputs.Skip(1).Take(4).Select(i => ctx.ConstantOf(g, i)).ToArray();
        if (stats.Any(s => s is not { DType: DType.Float32 } || s.ElementCount != m)) return null;
        float eps = bn.GetFloat("epsilon", 1e-5f);
        var (scale, beta, mean, variance) = (stats[0]!.ToFloatArray(), stats[1]!.ToFloatArray(), stats[2]!.ToFloatArray(), stats[3]!.ToFloatArray());
        factor = new float[m];
        shift = new float[m];
        for (int o = 0; o < m; o++)
        {
            factor[o] = scale[o] / MathF.Sqrt(variance[o] + eps);
            shift[o] = beta[o] - mean[o] * factor[o];
        }
        return bn;
    }
}
