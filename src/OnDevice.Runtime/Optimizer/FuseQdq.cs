using OnDevice.Core;
using OnDevice.Runtime.Kernels.Elementwise;

namespace OnDevice.Runtime.Optimizer;

/// <summary>
/// Executes QDQ graphs as integer kernels instead of dequantizing to float:
/// <list type="bullet">
/// <item>DequantizeLinear(x) and DequantizeLinear(constant w) → Conv (→ Relu) → QuantizeLinear becomes one
/// <c>com.ondevice.QLinearConv</c> (per-tensor or per-channel weights, bias turned into int32 at x_scale·w_scale);
/// the same around MatMul becomes <c>com.ondevice.QLinearMatMul</c>. A Relu between the op and the QuantizeLinear is
/// folded into the output clamp.</item>
/// <item>Weight-only DequantizeLinear(constant w [K, N]) → MatMul (per-tensor, per-column or blocked along K; 8- or
/// 4-bit) becomes <c>com.microsoft.MatMulNBits</c> over the same quantized values, re-laid out (N, blocks, bytes) at
/// load, so the float weight is never materialized.</item>
/// </list>
/// It runs before constant folding, which would otherwise turn every DequantizeLinear of a constant into a float
/// tensor. What it cannot fuse stays as written (and may then be folded to float).
/// </summary>
internal sealed class FuseQdq : IGraphPass
{
    public string Name => "fuse-qdq";

    public int Apply(Graph graph, OptimizerContext ctx)
    {
        if (!graph.Nodes.Any(n => n is { OpType: "DequantizeLinear", IsDefaultDomain: true })) return 0;
        var facts = ShapeInference.Infer(graph, ctx.Opset, new Dictionary<string, ValueFacts>());
        int changed = 0;
        foreach (var q in graph.Nodes.ToList())
        {
            if (q is not { OpType: "QuantizeLinear", IsDefaultDomain: true } || !graph.Nodes.Contains(q)) continue;
            if (TryFuseQuantized(graph, ctx, facts, q)) changed++;
        }
        foreach (var mm in graph.Nodes.ToList())
        {
            if (mm is not { OpType: "MatMul", IsDefaultDomain: true } || !graph.Nodes.Contains(mm)) continue;
            if (TryWeightOnlyMatMul(graph, ctx, facts, mm)) changed++;
        }
        return changed;
    }

    private static Node? Producer(Graph g, string name) => name.Length == 0 ? null : g.Nodes.FirstOrDefault(n => n.Outputs.Contains(name));

    private static bool SingleUse(Graph g, string name) => Rewrite.UseCount(g, name) == 1 && !Rewrite.IsGraphOutput(g, name);

    /// <summary>A DequantizeLinear node's parts: quantized input, scale, zero point (constants where known), axis, block size.</summary>
    private sealed record Dq(Node Node, string X, Tensor? XConst, Tensor Scale, Tensor? Zp, long Axis, long BlockSize);

    private static Dq? ReadDq(Graph g, OptimizerContext ctx, Node? n)
    {
        if (n is not { OpType: "DequantizeLinear", IsDefaultDomain: true } || n.Inputs.Count < 2) return null;
        if (ctx.ConstantOf(g, n.Inputs[1]) is not { DType: DType.Float32 or DType.Float16 } scale) return null;
        Tensor? zp = null;
        if (n.Inputs.Count > 2 && n.Inputs[2].Length > 0 && (zp = ctx.ConstantOf(g, n.Inputs[2])) is null) return null;
        return new Dq(n, n.Inputs[0], ctx.ConstantOf(g, n.Inputs[0]), scale, zp, n.GetInt("axis", 1), n.GetInt("block_size", 0));
    }

    private string NewName(Graph g, string hint)
    {
        var name = hint;
        for (int i = 1; g.Initializers.ContainsKey(name) || g.Nodes.Any(n => n.Outputs.Contains(name)) || g.Inputs.Any(v => v.Name == name); i++) name = $"{hint}_{i}";
        return name;
    }

    private string AddConst(Graph g, string hint, Tensor t)
    {
        var name = NewName(g, hint);
        g.Initializers.Add(name, t.Clone(name));
        return name;
    }

    private static bool Scalar(Tensor t) => t.ElementCount == 1 && t.Dims.Length <= 1;

    private bool TryFuseQuantized(Graph g, OptimizerContext ctx, ShapeInferenceResult facts, Node q)
    {
        if (q.Inputs.Count < 2 || q.Outputs.Count != 1) return false;
        if (ctx.ConstantOf(g, q.Inputs[1]) is not { } ys || !Scalar(ys) || ys.DType is not (DType.Float32 or DType.Float16)) return false;
        Tensor? yzp = q.Inputs.Count > 2 && q.Inputs[2].Length > 0 ? ctx.ConstantOf(g, q.Inputs[2]) : null;
        if (q.Inputs.Count > 2 && q.Inputs[2].Length > 0 && yzp is null) return false;
        var yType = yzp?.DType ?? (DType)q.GetInt("output_dtype", (long)DType.UInt8);
        if (yType is not (DType.UInt8 or DType.Int8) || (yzp is not null && !Scalar(yzp))) return false;
        if (!SingleUse(g, q.Inputs[0])) return false;
        var op = Producer(g, q.Inputs[0]);
        Node? relu = null;
        if (op is { OpType: "Relu", IsDefaultDomain: true })
        {
            relu = op;
            if (!SingleUse(g, relu.Inputs[0])) return false;
            op = Producer(g, relu.Inputs[0]);
        }
        if (op is not { IsDefaultDomain: true, OpType: "Conv" or "MatMul" } || op.Outputs.Count != 1) return false;
        var x = ReadDq(g, ctx, Producer(g, op.Inputs[0]));
        var w = ReadDq(g, ctx, Producer(g, op.Inputs[1]));
        if (x is null || w is null || w.XConst is null || x.BlockSize != 0 || w.BlockSize != 0) return false;
        if (!Scalar(x.Scale) || (x.Zp is not null && !Scalar(x.Zp))) return false;
        var xType = x.Zp?.DType ?? facts.Get(x.X)?.DType;
        if (xType is not (DType.UInt8 or DType.Int8)) return false;
        var wq = ToBytes(w.XConst);
        if (wq is null) return false;
        int rank = wq.Dims.Length;
        bool conv = op.OpType == "Conv";
        if (conv ? rank < 3 : rank != 2) return false;
        long channels = conv ? wq.Dims[0] : wq.Dims[1];
        long wAxis = w.Axis < 0 ? w.Axis + rank : w.Axis;
        bool perTensor = Scalar(w.Scale);
        if (!perTensor && !(w.Scale.Dims.Length == 1 && w.Scale.ElementCount == channels && wAxis == (conv ? 0 : 1))) return false;
        if (w.Zp is not null && w.Zp.ElementCount != w.Scale.ElementCount) return false;

        string label = op.Name.Length > 0 ? op.Name : op.Outputs[0];
        string zx = x.Zp is null ? AddConst(g, label + "_x_zero_point", Tensor.FromBytes(xType.Value, [], new byte[1])) : x.Node.Inputs[2];
        string zw = w.Zp is null || w.Zp.DType != wq.DType
            ? AddConst(g, label + "_w_zero_point", w.Zp is null ? Tensor.FromBytes(wq.DType, w.Scale.Dims, new byte[w.Scale.ElementCount]) : ToBytes(w.Zp)!)
            : w.Node.Inputs[2];
        string wName = ReferenceEquals(wq, w.XConst) ? w.X : AddConst(g, label + "_w_int8", wq);
        string zy = yzp is null ? AddConst(g, label + "_y_zero_point", Tensor.FromBytes(yType, [], new byte[1])) : q.Inputs[2];
        var inputs = new List<string> { x.X, x.Node.Inputs[1], zx, wName, w.Node.Inputs[1], zw, q.Inputs[1], zy };
        if (conv && op.Inputs.Count > 2 && op.Inputs[2].Length > 0)
        {
            var bias = BiasValues(g, ctx, op.Inputs[2]);
            if (bias is null || bias.Length != channels) return false;
            float sx = (float)x.Scale.GetDouble(0);
            var ints = new int[bias.Length];
            for (int i = 0; i < ints.Length; i++)
            {
                double s = sx * w.Scale.GetDouble(perTensor ? 0 : i);
                ints[i] = s == 0 ? 0 : (int)Math.Clamp(Math.Round(bias[i] / s), int.MinValue, int.MaxValue);
            }
            inputs.Add(AddConst(g, label + "_bias_int32", Tensor.FromArray<int>(ints, [ints.Length])));
        }
        else if (!conv && op.Inputs.Count > 2) return false;

        var fused = new Node(op.OpType == "Conv" ? "QLinearConv" : "QLinearMatMul", inputs, [q.Outputs[0]],
            label + "+qdq", FusedElementwiseKernels.Domain);
        if (conv) foreach (var a in op.Attributes.Values) fused.Attributes.Add(a.Name, a);
        if (relu is not null) fused.With(Core.Attribute.Of("relu", 1L));
        int at = g.Nodes.IndexOf(op);
        g.Nodes[at] = fused;
        g.Nodes.Remove(q);
        if (relu is not null) g.Nodes.Remove(relu);
        RemoveIfUnused(g, x.Node);
        RemoveIfUnused(g, w.Node);
        if (conv && op.Inputs.Count > 2 && Producer(g, op.Inputs[2]) is { OpType: "DequantizeLinear" } bdq) RemoveIfUnused(g, bdq);
        return true;
    }

    private static void RemoveIfUnused(Graph g, Node n)
    {
        if (n.Outputs.All(o => o.Length == 0 || Rewrite.UseCount(g, o) == 0)) g.Nodes.Remove(n);
    }

    /// <summary>Float bias values from a float constant or a DequantizeLinear of a constant.</summary>
    private static double[]? BiasValues(Graph g, OptimizerContext ctx, string name)
    {
        if (ctx.ConstantOf(g, name) is { } t) return t.DType.IsFloatingPoint() ? Enumerable.Range(0, (int)t.ElementCount).Select(i => t.GetDouble(i)).ToArray() : null;
        var dq = ReadDq(g, ctx, Producer(g, name));
        if (dq?.XConst is not { } xc || dq.BlockSize != 0) return null;
        int n = (int)xc.ElementCount;
        if (!Scalar(dq.Scale) && dq.Scale.ElementCount != n) return null;
        var r = new double[n];
        for (int i = 0; i < n; i++)
        {
            int si = Scalar(dq.Scale) ? 0 : i;
            double z = dq.Zp is null ? 0 : dq.Zp.GetDouble(si);
            r[i] = (xc.GetDouble(i) - z) * dq.Scale.GetDouble(si);
        }
        return r;
    }

    /// <summary>The tensor as 8-bit values: uint8/int8 as is, uint4/int4 widened; null for other types.</summary>
    private static Tensor? ToBytes(Tensor t)
    {
        if (t.DType is DType.UInt8 or DType.Int8) return t;
        if (t.DType is not (DType.UInt4 or DType.Int4)) return null;
        var b = new byte[t.ElementCount];
        for (long i = 0; i < b.Length; i++) b[i] = (byte)(int)t.GetDouble(i);
        return Tensor.FromBytes(t.DType == DType.Int4 ? DType.Int8 : DType.UInt8, t.Dims, b);
    }

    /// <summary>MatMul(A, DequantizeLinear(constant w [K, N])) → MatMulNBits over the same quantized values.</summary>
    private bool TryWeightOnlyMatMul(Graph g, OptimizerContext ctx, ShapeInferenceResult facts, Node mm)
    {
        if (mm.Inputs.Count != 2 || mm.Outputs.Count != 1) return false;
        var w = ReadDq(g, ctx, Producer(g, mm.Inputs[1]));
        if (w?.XConst is not { Dims.Length: 2 } wc || wc.DType is not (DType.Int8 or DType.UInt8 or DType.Int4 or DType.UInt4)) return false;
        if (w.Scale.DType != DType.Float32 && w.Scale.DType != DType.Float16) return false;
        if (facts.Get(mm.Inputs[0]) is not { DType: DType.Float32 }) return false;
        int k = checked((int)wc.Dims[0]), n = checked((int)wc.Dims[1]);
        long axis = w.Axis < 0 ? w.Axis + 2 : w.Axis;
        int bits = wc.DType is DType.Int8 or DType.UInt8 ? 8 : 4;
        bool signed = wc.DType is DType.Int8 or DType.Int4;
        int offset = signed ? 1 << (bits - 1) : 0;
        // Scale index for (kk, j), and the block size used for the packed layout.
        Func<int, int, int> scaleAt;
        int bs;
        if (Scalar(w.Scale) && w.BlockSize == 0)
        {
            scaleAt = (_, _) => 0;
            bs = BlockFor(k);
        }
        else if (w.BlockSize == 0 && axis == 1 && w.Scale.Dims.Length == 1 && w.Scale.ElementCount == n)
        {
            scaleAt = (_, j) => j;
            bs = BlockFor(k);
        }
        else if (w.BlockSize > 0 && axis == 0 && w.Scale.Dims.Length == 2 && w.Scale.Dims[1] == n
                 && w.BlockSize >= 16 && (w.BlockSize & (w.BlockSize - 1)) == 0 && w.Scale.Dims[0] == (k + w.BlockSize - 1) / w.BlockSize)
        {
            int b = (int)w.BlockSize;
            scaleAt = (kk, j) => kk / b * n + j;
            bs = b;
        }
        else return false;
        if (w.Zp is not null && w.Zp.ElementCount != w.Scale.ElementCount) return false;

        int blocks = (k + bs - 1) / bs, blockBytes = bs * bits / 8;
        var packed = new byte[(long)n * blocks * blockBytes];
        var scales = new float[n * blocks];
        var zps = new int[n * blocks];
        for (int j = 0; j < n; j++)
            for (int blk = 0; blk < blocks; blk++)
            {
                int si = scaleAt(blk * bs, j);
                scales[j * blocks + blk] = (float)w.Scale.GetDouble(si);
                zps[j * blocks + blk] = (w.Zp is null ? 0 : (int)w.Zp.GetDouble(si)) + offset;
            }
        for (int kk = 0; kk < k; kk++)
        {
            int blk = kk / bs, o = kk % bs;
            for (int j = 0; j < n; j++)
            {
                // Blocked layouts must keep one scale per block: the source's own block size is used, so this holds.
                int v = (int)wc.GetDouble((long)kk * n + j) + offset;
                long at = ((long)j * blocks + blk) * blockBytes;
                if (bits == 8) packed[at + o] = (byte)v;
                else packed[at + o / 2] |= (byte)((v & 0xF) << ((o & 1) * 4));
            }
        }
        int perRow = (blocks * bits + 7) / 8;
        var zpPacked = new byte[n * perRow];
        for (int j = 0; j < n; j++)
            for (int blk = 0; blk < blocks; blk++)
            {
                int z = zps[j * blocks + blk];
                if (bits == 8) zpPacked[j * perRow + blk] = (byte)z;
                else zpPacked[j * perRow + blk / 2] |= (byte)((z & 0xF) << ((blk & 1) * 4));
            }
        string label = mm.Name.Length > 0 ? mm.Name : mm.Outputs[0];
        string bName = AddConst(g, label + "_B_nbits", Tensor.FromBytes(DType.UInt8, [n, blocks, blockBytes], packed));
        string sName = AddConst(g, label + "_scales", Tensor.FromArray<float>(scales, [n, blocks]));
        string zName = AddConst(g, label + "_zero_points", Tensor.FromBytes(DType.UInt8, [zpPacked.Length], zpPacked));
        var node = new Node("MatMulNBits", [mm.Inputs[0], bName, sName, zName], [mm.Outputs[0]], label + "+dq", "com.microsoft");
        node.With(Core.Attribute.Of("K", (long)k)).With(Core.Attribute.Of("N", (long)n)).With(Core.Attribute.Of("bits", (long)bits))
            .With(Core.Attribute.Of("block_size", (long)bs)).With(Core.Attribute.Of("accuracy_level", 0L));
        g.Nodes[g.Nodes.IndexOf(mm)] = node;
        RemoveIfUnused(g, w.Node);
        return true;
    }

    /// <summary>Block size for a weight with one scale along all of K: the largest power of two ≤ K (at least 16, at most 1024).</summary>
    private static int BlockFor(int k)
    {
        int b = 16;
        while (b * 2 <= k && b < 1024) b *= 2;
        return b;
    }
}
