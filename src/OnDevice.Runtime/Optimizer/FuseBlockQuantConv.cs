using OnDevice.Core;
using OnDevice.Runtime.Kernels.Elementwise;
using static OnDevice.Runtime.Optimizer.Rewrite;
using static OnDevice.Runtime.Optimizer.QdqValues;

namespace OnDevice.Runtime.Optimizer;

/// <summary>
/// Weight-only 4-bit convolutions keep their packed weights: Conv(x, DequantizeLinear(constant int4/uint4 w)) with
/// the weight blocked along the input channels (opset 21 <c>block_size</c>, axis 1), per output channel (axis 0) or per
/// tensor, optional zero points, becomes <c>com.ondevice.BlockQuantConv</c>. Its weight is re-laid out once, still
/// 4-bit, as <see cref="Simd.NBitsWeights"/> columns (one column per kernel tap and output channel, K = input channels
/// per group, blocks along K) with float scales and zero points [taps·M, blocks]; the convolution kernel dequantizes
/// it block by block into its GEMM panels on each run (<see cref="Simd.NBitsPanels"/>), so the float weight never
/// stays resident. A BatchNormalization that is the convolution's only reader folds into the scales and bias.
/// Left to constant folding (float weights): depthwise convolutions (one input channel per group: a 3×3 depthwise
/// filter bank is a few KB as float, and the depthwise kernel reads taps as floats) and convolutions with fewer than
/// <see cref="MinWeights"/> weights (their float copy is under 8 KB; dequantizing on every run would cost more than
/// it saves). Runs before constant folding, which would otherwise dequantize the weight to float.
/// </summary>
internal sealed class FuseBlockQuantConv : IGraphPass
{
    /// <summary>The fused op's name (domain <see cref="FusedElementwiseKernels.Domain"/>).</summary>
    public const string OpType = "BlockQuantConv";

    /// <summary>Smallest convolution (weights) kept packed; smaller ones are folded to float. Tests lower it.</summary>
    internal static long MinWeights = 2048;

    public string Name => "fuse-block-quant-conv";

    public int Apply(Graph graph, OptimizerContext ctx)
    {
        if (!graph.Nodes.Any(n => n is { OpType: "DequantizeLinear", IsDefaultDomain: true })) return 0;
        int changed = 0;
        foreach (var conv in graph.Nodes.ToList())
            if (conv is { OpType: "Conv", IsDefaultDomain: true } && graph.Nodes.Contains(conv) && TryFuse(graph, ctx, conv)) changed++;
        return changed;
    }

    /// <summary>Block size along K when the source has one scale for all of a row: the largest power of two ≤ K (16…1024).</summary>
    private static int BlockFor(int k)
    {
        int b = 16;
        while (b * 2 <= k && b < 1024) b *= 2;
        return b;
    }

    private static bool TryFuse(Graph g, OptimizerContext ctx, Node conv)
    {
        if (conv.Inputs.Count < 2 || conv.Outputs.Count != 1) return false;
        var w = ReadDq(g, ctx, Producer(g, conv.Inputs[1]));
        if (w?.XConst is not { DType: DType.Int4 or DType.UInt4 } wc || wc.Dims.Length < 3 || wc.Dims.Length > 5) return false;
        if (!SingleUse(g, conv.Inputs[1])) return false;
        long group = conv.GetInt("group", 1);
        if (group < 1 || wc.Dims[0] % group != 0) return false;
        int m = checked((int)wc.Dims[0]), cg = checked((int)wc.Dims[1]);
        int taps = checked((int)wc.Dims.Skip(2).Aggregate(1L, (p, d) => p * d));
        if (cg == 1 && group > 1) return false; // depthwise: float taps are tiny and the depthwise kernel reads floats
        if ((long)m * cg * taps < MinWeights || taps == 0) return false;
        int rank = wc.Dims.Length;
        long axis = w.Axis < 0 ? w.Axis + rank : w.Axis;

        // Source scale index of (output channel o, input channel c, tap t), and the packed layout's block size.
        Func<int, int, int, long> scaleAt;
        int bs;
        if (w.BlockSize > 0)
        {
            if (axis != 1 || w.BlockSize < 16 || (w.BlockSize & (w.BlockSize - 1)) != 0 || w.BlockSize > 1024) return false;
            int b = (int)w.BlockSize, nb = (cg + b - 1) / b;
            var expect = wc.Dims.ToArray();
            expect[1] = nb;
            if (!w.Scale.Dims.AsSpan().SequenceEqual(expect)) return false;
            scaleAt = (o, c, t) => ((long)o * nb + c / b) * taps + t;
            bs = b;
        }
        else if (Scalar(w.Scale))
        {
            scaleAt = (_, _, _) => 0;
            bs = BlockFor(cg);
        }
        else if (axis == 0 && w.Scale.Dims.Length == 1 && w.Scale.ElementCount == m)
        {
            scaleAt = (o, _, _) => o;
            bs = BlockFor(cg);
        }
        else return false;
        if (w.Zp is not null && (w.Zp.ElementCount != w.Scale.ElementCount || w.Zp.DType != wc.DType)) return false;

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

        bool signed = wc.DType == DType.Int4;
        int blocks = (cg + bs - 1) / bs, blockBytes = bs / 2, columns = taps * m;
        var packed = new byte[(long)columns * blocks * blockBytes];
        var scales = new float[(long)columns * blocks];
        var zps = new float[(long)columns * blocks];
        var src = wc.Bytes;
        for (int o = 0; o < m; o++)
            for (int t = 0; t < taps; t++)
            {
                int col = t * m + o;
                for (int blk = 0; blk < blocks; blk++)
                {
                    long si = scaleAt(o, blk * bs, t);
                    float f = bnScale?[o] ?? 1f;
                    scales[(long)col * blocks + blk] = (float)w.Scale.GetDouble(si) * f;
                    // Signed values are stored offset by 8 (q + 8 in 0..15), with the zero point moved by the same 8.
                    zps[(long)col * blocks + blk] = (float)((w.Zp is null ? 0 : w.Zp.GetDouble(si)) + (signed ? 8 : 0));
                }
                long colBase = (long)col * blocks * blockBytes;
                for (int c = 0; c < cg; c++)
                {
                    long e = ((long)o * cg + c) * taps + t;
                    int v = (src[(int)(e >> 1)] >> (int)((e & 1) * 4)) & 0xF;
                    if (signed) v ^= 8;
                    long at = colBase + (long)(c / bs) * blockBytes + (c % bs) / 2;
                    packed[at] |= (byte)(v << ((c % bs & 1) * 4));
                }
            }

        string label = conv.Name.Length > 0 ? conv.Name : conv.Outputs[0];
        var inputs = new List<string>
        {
            conv.Inputs[0],
            AddConst(g, label + "_w_nbits", Tensor.FromBytes(DType.UInt8, [columns, blocks, blockBytes], packed)),
            bias is null ? "" : AddConst(g, label + "_bias", Tensor.FromArray<float>(bias, [m])),
            AddConst(g, label + "_w_scales", Tensor.FromArray<float>(scales, [columns, blocks])),
            AddConst(g, label + "_w_zero_points", Tensor.FromArray<float>(zps, [columns, blocks])),
        };
        var node = new Node(OpType, inputs, [output], label + "+int4", FusedElementwiseKernels.Domain);
        foreach (var a in conv.Attributes.Values) node.Attributes.Add(a.Name, a);
        node.With(Core.Attribute.Of("weight_shape", wc.Dims.ToArray())).With(Core.Attribute.Of("bits", 4L)).With(Core.Attribute.Of("block_size", (long)bs));
        g.Nodes[g.Nodes.IndexOf(conv)] = node;
        if (bn is not null) g.Nodes.Remove(bn);
        RemoveIfUnused(g, w.Node);
        if (biasDq is not null) RemoveIfUnused(g, biasDq);
        return true;
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
