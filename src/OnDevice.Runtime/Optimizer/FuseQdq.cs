using OnDevice.Core;
using OnDevice.Runtime.Kernels.Elementwise;
using static OnDevice.Runtime.Optimizer.Rewrite;
using static OnDevice.Runtime.Optimizer.QdqValues;

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
/// <item>DequantizeLinear (per tensor) → element-wise float ops whose other inputs are constants (BatchNormalization,
/// HardSwish, Sigmoid, affine Mul/Add, Clip, …) → QuantizeLinear becomes <c>com.ondevice.QLinearLookup</c>: the chain
/// evaluated once on all 256 input values per channel gives a [C, 256] (or [256]) byte table. A lookup right after a
/// fused QLinearConv moves into the convolution's epilogue (its input 9).</item>
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
        foreach (var q in graph.Nodes.ToList())
        {
            if (q is not { OpType: "QuantizeLinear", IsDefaultDomain: true } || !graph.Nodes.Contains(q)) continue;
            if (TryFuseLookup(graph, ctx, facts, q)) changed++;
        }
        foreach (var mm in graph.Nodes.ToList())
        {
            if (mm is not { OpType: "QLinearMatMul" } || mm.Domain != FusedElementwiseKernels.Domain || !graph.Nodes.Contains(mm)) continue;
            if (TryFoldDequantizeIntoMatMul(graph, ctx, mm)) changed++;
        }
        foreach (var lut in graph.Nodes.ToList())
        {
            if (lut is not { OpType: "QLinearLookup" } || lut.Domain != FusedElementwiseKernels.Domain || !graph.Nodes.Contains(lut)) continue;
            if (TryFoldLookupIntoConv(graph, ctx, lut)) changed++;
        }
        return changed;
    }

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
        if (TryIntegerFloatMatMul(g, ctx, facts, mm)) return true;
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

    /// <summary>
    /// MatMul(DequantizeLinear(x), DequantizeLinear(constant 8-bit w [K, N])) whose result stays float (a graph quantized
    /// after the element-wise chain that follows the MatMul): <c>com.ondevice.QLinearMatMul</c> with <c>dequantize</c> =
    /// <c>float_output</c> = 1, the int8 GEMM with y = S·x_scale·w_scale[j] (+ bias[j] of a following constant Add), no
    /// requantization. x per tensor 8-bit; w per tensor or per column (axis 1).
    /// </summary>
    private static bool TryIntegerFloatMatMul(Graph g, OptimizerContext ctx, ShapeInferenceResult facts, Node mm)
    {
        var x = ReadDq(g, ctx, Producer(g, mm.Inputs[0]));
        var w = ReadDq(g, ctx, Producer(g, mm.Inputs[1]));
        if (x is null || w is null || x.XConst is not null || x.BlockSize != 0 || w.BlockSize != 0) return false;
        if (x.Scale.DType != DType.Float32 || !Scalar(x.Scale) || (x.Zp is not null && !Scalar(x.Zp))) return false;
        var xType = x.Zp?.DType ?? facts.Get(x.X)?.DType;
        if (xType is not (DType.UInt8 or DType.Int8)) return false;
        if (w.XConst is not { DType: DType.Int8 or DType.UInt8, Dims.Length: 2 } wc || w.Scale.DType != DType.Float32) return false;
        long n = wc.Dims[1];
        long axis = w.Axis < 0 ? w.Axis + 2 : w.Axis;
        if (!Scalar(w.Scale) && !(w.Scale.Dims.Length == 1 && w.Scale.ElementCount == n && axis == 1)) return false;
        if (w.Zp is not null && (w.Zp.ElementCount != w.Scale.ElementCount || w.Zp.DType != wc.DType)) return false;
        string label = mm.Name.Length > 0 ? mm.Name : mm.Outputs[0];
        string zx = x.Zp is null ? AddConst(g, label + "_x_zero_point", Tensor.FromBytes(xType.Value, [], new byte[1])) : x.Node.Inputs[2];
        string zw = w.Zp is null ? AddConst(g, label + "_w_zero_point", Tensor.FromBytes(wc.DType, w.Scale.Dims, new byte[w.Scale.ElementCount])) : w.Node.Inputs[2];
        var inputs = new List<string> { x.X, x.Node.Inputs[1], zx, w.X, w.Node.Inputs[1], zw, "", "" };
        // A constant [N] bias added right after (the single reader) joins the epilogue.
        string output = mm.Outputs[0];
        Node? add = null;
        if (SingleUse(g, output) && g.Nodes.FirstOrDefault(r => r.Inputs.Contains(output)) is { OpType: "Add", IsDefaultDomain: true, Inputs.Count: 2 } a
            && a.Inputs.IndexOf(output) is int at && at >= 0 && ctx.ConstantOf(g, a.Inputs[1 - at]) is { DType: DType.Float32 } bt
            && bt.ElementCount == n && bt.Dims.Length == 1)
        {
            add = a;
            inputs.Add(a.Inputs[1 - at]);
        }
        var fused = new Node("QLinearMatMul", inputs, [add is null ? output : add.Outputs[0]], label + "+qdq-float", FusedElementwiseKernels.Domain)
            .With(Core.Attribute.Of("dequantize", 1L)).With(Core.Attribute.Of("float_output", 1L));
        g.Nodes[g.Nodes.IndexOf(mm)] = fused;
        if (add is not null) g.Nodes.Remove(add);
        RemoveIfUnused(g, x.Node);
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

    /// <summary>Element-wise ops whose result at each position depends only on the input there (and constants).</summary>
    private static readonly HashSet<string> PointwiseOps = new(StringComparer.Ordinal)
    {
        "Add", "Sub", "Mul", "Div", "Clip", "Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "BatchNormalization",
        "Neg", "Abs", "Max", "Min", "Pow", "Exp", "Erf", "Softplus", "Softsign", "Elu", "Selu", "Celu", "Identity", "Sqrt",
        "Reciprocal", "Gelu", "Mish", "PRelu", "ThresholdedRelu",
    };

    /// <summary>Largest lookup table built (channels × 256 bytes).</summary>
    private const int MaxLookupChannels = 8192;

    /// <summary>
    /// DequantizeLinear(x) → pointwise chain → QuantizeLinear: the whole path is a function of x's byte (and channel),
    /// so it becomes a table. The table is computed by running exactly these nodes (unoptimized) on an input holding
    /// every byte value in every channel; the input's last axis has 257 entries, so a constant that broadcasts along
    /// anything but the channel axis changes the result's shape and the fusion is refused.
    /// </summary>
    private bool TryFuseLookup(Graph g, OptimizerContext ctx, ShapeInferenceResult facts, Node q)
    {
        if (q.Inputs.Count < 2 || q.Outputs.Count != 1 || q.Outputs[0].Length == 0) return false;
        if (ctx.ConstantOf(g, q.Inputs[1]) is not { } ys || !Scalar(ys)) return false;
        Tensor? yzp = q.Inputs.Count > 2 && q.Inputs[2].Length > 0 ? ctx.ConstantOf(g, q.Inputs[2]) : null;
        if (q.Inputs.Count > 2 && q.Inputs[2].Length > 0 && (yzp is null || !Scalar(yzp))) return false;
        var yType = yzp?.DType ?? (DType)q.GetInt("output_dtype", (long)DType.UInt8);
        if (yType is not (DType.UInt8 or DType.Int8) || q.Attributes.ContainsKey("block_size") && q.GetInt("block_size", 0) != 0) return false;

        // The region between the DequantizeLinear and the QuantizeLinear: pointwise nodes whose non-constant inputs
        // come from the region or from that one DequantizeLinear (a DAG: HardSwish written as x·clip(x+3)/6 reads x twice).
        var region = new HashSet<Node>();
        Dq? dq = null;
        var pending = new Stack<string>();
        pending.Push(q.Inputs[0]);
        while (pending.Count > 0)
        {
            var v = pending.Pop();
            var p = Producer(g, v);
            if (ReadDq(g, ctx, p) is { } d)
            {
                if (dq is not null && !ReferenceEquals(dq.Node, d.Node)) return false;
                dq = d;
                continue;
            }
            if (p is null) return false;
            if (!region.Add(p)) continue;
            bool pointwise = p.IsDefaultDomain ? PointwiseOps.Contains(p.OpType)
                : p.Domain == FusedElementwiseKernels.Domain && p.OpType == "FusedElementwise";
            if (!pointwise || p.Outputs.Count != 1 || p.Subgraphs.Any() || region.Count > 32) return false;
            foreach (var i in p.Inputs)
                if (i.Length > 0 && ctx.ConstantOf(g, i) is null) pending.Push(i);
        }
        if (dq is null) return false;
        foreach (var n in region)
        {
            var o = n.Outputs[0];
            if (Rewrite.IsGraphOutput(g, o)) return false;
            foreach (var reader in g.Nodes)
                if (reader.Inputs.Contains(o) && !region.Contains(reader) && !(ReferenceEquals(reader, q) && SingleUse(g, o))) return false;
        }
        var chain = g.Nodes.Where(region.Contains).ToList();
        if (dq.XConst is not null || dq.BlockSize != 0 || !Scalar(dq.Scale) || (dq.Zp is not null && !Scalar(dq.Zp))) return false;
        var xType = dq.Zp?.DType ?? facts.Get(dq.X)?.DType;
        if (xType is not (DType.UInt8 or DType.Int8)) return false;
        if (facts.Get(dq.X)?.Shape is not { } shape || shape.Rank == 0) return false;
        int rank = shape.Rank;
        long channels = rank >= 3 && shape[1].IsKnown ? shape[1].Value : 1;
        if (channels < 1 || channels > MaxLookupChannels) return false;

        var table = EvaluateLookup(g, ctx, dq, chain, q, xType.Value, rank, (int)channels);
        if (table is null) return false;
        string label = q.Name.Length > 0 ? q.Name : q.Outputs[0];
        string tName = AddConst(g, label + "_lookup", table);
        var lut = new Node("QLinearLookup", [dq.X, tName], [q.Outputs[0]], label + "+lut", FusedElementwiseKernels.Domain);
        g.Nodes[g.Nodes.IndexOf(q)] = lut;
        foreach (var n in chain) g.Nodes.Remove(n);
        if (!Rewrite.IsGraphOutput(g, dq.Node.Outputs[0])) RemoveIfUnused(g, dq.Node);
        return true;
    }

    /// <summary>Runs DQ → chain → Q on every byte value per channel; the [C, 256] table (or [256] when all rows agree), or null.</summary>
    private static Tensor? EvaluateLookup(Graph g, OptimizerContext ctx, Dq dq, List<Node> chain, Node q, DType xType, int rank, int channels)
    {
        const int Width = 257;
        var dims = new long[rank];
        Array.Fill(dims, 1L);
        dims[^1] = Width;
        if (rank >= 3) dims[1] = channels;
        var bytes = new byte[channels * Width];
        for (int c = 0; c < channels; c++)
            for (int v = 0; v < 256; v++) bytes[c * Width + v] = (byte)v;
        var eval = new Graph { Name = "lookup" };
        const string input = "lookup_input";
        eval.Initializers.Add(input, Tensor.FromBytes(xType, dims, bytes, input));
        var nodes = new List<Node> { dq.Node };
        nodes.AddRange(chain);
        nodes.Add(q);
        foreach (var n in nodes)
        {
            var inputs = n.Inputs.Select(i => ReferenceEquals(n, dq.Node) && i == dq.X ? input : i).ToList();
            var copy = new Node(n.OpType, inputs, n.Outputs, n.Name, n.Domain);
            foreach (var a in n.Attributes.Values) copy.Attributes.Add(a.Name, a);
            eval.Nodes.Add(copy);
            foreach (var i in n.Inputs)
            {
                if (i.Length == 0 || i == dq.X || eval.Initializers.ContainsKey(i) || nodes.Any(m => m.Outputs.Contains(i))) continue;
                if (ctx.ConstantOf(g, i) is not { } t) return null;
                eval.Initializers.Add(i, t);
            }
        }
        eval.Outputs.Add(new ValueInfo(q.Outputs[0]));
        var model = new Model(eval);
        model.OpsetImports.Add(new OpsetImport("", ctx.Opset));
        model.OpsetImports.Add(new OpsetImport(FusedElementwiseKernels.Domain, 1));
        Tensor result;
        try
        {
            var session = new InferenceSession(model, new SessionOptions { Threads = 1, Optimize = false });
            result = session.Run(new Dictionary<string, Tensor>())[q.Outputs[0]];
        }
        catch (Exception e) when (e is NotSupportedException or InvalidOperationException or ArgumentException)
        {
            return null;
        }
        if (result.DType is not (DType.UInt8 or DType.Int8) || !result.Dims.AsSpan().SequenceEqual(dims)) return null;
        var r = result.Bytes;
        bool shared = true;
        for (int c = 1; c < channels && shared; c++) shared = r.Slice(c * Width, 256).SequenceEqual(r[..256]);
        int rows = shared ? 1 : channels;
        var table = new byte[rows * 256];
        for (int c = 0; c < rows; c++) r.Slice(c * Width, 256).CopyTo(table.AsSpan(c * 256));
        return Tensor.FromBytes(result.DType, shared ? [256] : [channels, 256], table);
    }

    /// <summary>QLinearConv (fused, single reader) → QLinearLookup: the table becomes the convolution's input 9.</summary>
    private static bool TryFoldLookupIntoConv(Graph g, OptimizerContext ctx, Node lut)
    {
        if (lut.Inputs.Count != 2 || ctx.ConstantOf(g, lut.Inputs[1]) is not { } table) return false;
        var conv = Producer(g, lut.Inputs[0]);
        if (conv is not { OpType: "QLinearConv" } || conv.Domain != FusedElementwiseKernels.Domain || conv.Inputs.Count is < 8 or > 9) return false;
        if (conv.GetInt("float_epilogue", 0) != 0) return false; // its float epilogue ends in bytes without a lookup stage
        if (!SingleUse(g, lut.Inputs[0]) || ctx.ConstantOf(g, conv.Inputs[7]) is not { } yzp || yzp.DType != table.DType) return false;
        if (ctx.ConstantOf(g, conv.Inputs[3]) is not { Dims.Length: >= 3 } w) return false;
        long rows = table.ElementCount / 256;
        if (rows != 1 && rows != w.Dims[0]) return false;
        if (conv.Inputs.Count == 8) conv.Inputs.Add("");
        conv.Inputs.Add(lut.Inputs[1]);
        conv.Outputs[0] = lut.Outputs[0];
        g.Nodes.Remove(lut);
        return true;
    }

    /// <summary>
    /// QLinearMatMul (fused) → DequantizeLinear with the same scale and zero point (→ Add of a constant [N] bias): the
    /// matmul writes the dequantized floats itself (attribute <c>dequantize</c>, bias as input 8): the same values
    /// without the byte tensor and the two float passes.
    /// </summary>
    private static bool TryFoldDequantizeIntoMatMul(Graph g, OptimizerContext ctx, Node mm)
    {
        if (mm.GetInt("dequantize", 0) != 0 || mm.Inputs.Count != 8 || !SingleUse(g, mm.Outputs[0])) return false;
        var dq = g.Nodes.FirstOrDefault(n => n.Inputs.Contains(mm.Outputs[0]));
        if (dq is not { OpType: "DequantizeLinear", IsDefaultDomain: true } || dq.Inputs[0] != mm.Outputs[0] || dq.Inputs.Count < 3) return false;
        if (ctx.ConstantOf(g, dq.Inputs[1]) is not { } s1 || ctx.ConstantOf(g, mm.Inputs[6]) is not { } s0 || !Scalar(s1) || !Scalar(s0)) return false;
        if (ctx.ConstantOf(g, dq.Inputs[2]) is not { } z1 || ctx.ConstantOf(g, mm.Inputs[7]) is not { } z0 || !Scalar(z1) || !Scalar(z0)) return false;
        if (s1.DType != DType.Float32 || s0.DType != DType.Float32 || s1.GetDouble(0) != s0.GetDouble(0) || z1.DType != z0.DType || z1.GetDouble(0) != z0.GetDouble(0)) return false;
        if (ctx.ConstantOf(g, mm.Inputs[3]) is not { Dims.Length: 2 } w) return false;
        long n = w.Dims[1];
        string output = dq.Outputs[0];
        Node? add = null;
        if (SingleUse(g, output) && g.Nodes.FirstOrDefault(x => x.Inputs.Contains(output)) is { OpType: "Add", IsDefaultDomain: true } a && a.Inputs.Count == 2
            && a.Inputs.IndexOf(output) is var at && at >= 0 && ctx.ConstantOf(g, a.Inputs[1 - at]) is { DType: DType.Float32 } b
            && b.ElementCount == n && b.Dims.Length >= 1 && b.Dims[^1] == n)
            add = a;
        mm.With(Core.Attribute.Of("dequantize", 1L));
        if (add is not null)
        {
            mm.Inputs.Add(add.Inputs[1 - add.Inputs.IndexOf(output)]);
            mm.Outputs[0] = add.Outputs[0];
            g.Nodes.Remove(add);
        }
        else mm.Outputs[0] = output;
        g.Nodes.Remove(dq);
        return true;
    }
}
