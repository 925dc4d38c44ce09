using OnDevice.Core;
using OnDevice.Runtime.Kernels.Elementwise;
using static OnDevice.Runtime.Optimizer.Rewrite;
using static OnDevice.Runtime.Optimizer.QdqValues;

namespace OnDevice.Runtime.Optimizer;

/// <summary>
/// QDQ fusions for detection heads and FPN necks (next to <see cref="FuseQdq"/>, which handles Conv/MatMul and
/// element-wise islands):
/// <list type="bullet">
/// <item>DequantizeLinear(x) and DequantizeLinear(constant w [C, M, kh, kw], per tensor or per output channel, axis 1)
/// → ConvTranspose (2-D, one group) → QuantizeLinear becomes <c>com.ondevice.QLinearConvTranspose</c> (bias turned
/// into int32 at x_scale·w_scale as for QLinearConv); a QLinearLookup reading only its output moves into it (input 9).</item>
/// <item>QuantizeLinear moves in front of Concat (one per input) and nearest Resize: both only copy values, so
/// quantizing before is exact and the copies move bytes instead of floats.</item>
/// <item>QuantizeLinear(island(DequantizeLinear(x))), where the island is element-wise float ops whose other inputs are
/// constants or run-time values that vary only along the channel axis (a squeeze-excitation scale), becomes
/// <c>com.ondevice.QLinearTableLookup(x, table)</c>: the island's own nodes run on a probe [1, C, 1, 256] holding
/// every byte value per channel, and QuantizeLinear of that is the table (per image when a run-time input has a batch
/// axis). Same nodes on the same values: the table entries are exactly the values the island would produce.</item>
/// <item>QuantizeLinear(Add(island(DequantizeLinear(a)), island(DequantizeLinear(b)) or nearest integer upsampling of
/// DequantizeLinear(b))) becomes <c>com.ondevice.QLinearTableAdd</c>: both islands as float tables computed the same
/// way, one float add and the QuantizeLinear per element (the FPN top-down path).</item>
/// <item>A graph output computed by such an island (no QuantizeLinear after it) becomes a QLinearTableLookup with a
/// float table.</item>
/// <item>GlobalAveragePool(DequantizeLinear(x)) (the squeeze-excitation pooling once its islands are tables) becomes
/// <c>com.ondevice.DequantizeGlobalAveragePool</c>: plane by plane, same arithmetic, no float tensor.</item>
/// </list>
/// Runs before constant folding, which would otherwise turn the DequantizeLinear of the weight into a float tensor.
/// </summary>
internal sealed class FuseQdqNeck : IGraphPass
{
    public string Name => "fuse-qdq-neck";

    public int Apply(Graph graph, OptimizerContext ctx)
    {
        int changed = 0;
        if (graph.Nodes.Any(n => n is { OpType: "ConvTranspose", IsDefaultDomain: true }))
        {
            var facts = ShapeInference.Infer(graph, ctx.Opset, new Dictionary<string, ValueFacts>());
            foreach (var q in graph.Nodes.ToList())
            {
                if (q is not { OpType: "QuantizeLinear", IsDefaultDomain: true } || !graph.Nodes.Contains(q)) continue;
                if (TryFuseConvTranspose(graph, ctx, facts, q)) changed++;
            }
        }
        foreach (var lut in graph.Nodes.ToList())
        {
            if (lut is not { OpType: "QLinearLookup" } || lut.Domain != FusedElementwiseKernels.Domain || !graph.Nodes.Contains(lut)) continue;
            if (TryFoldLookup(graph, ctx, lut)) changed++;
        }
        if (!graph.Nodes.Any(n => n is { OpType: "DequantizeLinear", IsDefaultDomain: true })) return changed;
        foreach (var q in graph.Nodes.ToList())
        {
            if (q is not { OpType: "QuantizeLinear", IsDefaultDomain: true } || !graph.Nodes.Contains(q)) continue;
            if (TryPushThroughCopy(graph, ctx, q)) changed++;
        }
        var facts2 = ShapeInference.Infer(graph, ctx.Opset, new Dictionary<string, ValueFacts>());
        foreach (var q in graph.Nodes.ToList())
        {
            if (q is not { OpType: "QuantizeLinear", IsDefaultDomain: true } || !graph.Nodes.Contains(q)) continue;
            if (TryTableLookup(graph, ctx, facts2, q) || TryTableAdd(graph, ctx, facts2, q)) changed++;
        }
        foreach (var o in graph.Outputs.ToList())
            if (TryFloatTable(graph, ctx, facts2, o.Name)) changed++;
        foreach (var gap in graph.Nodes.ToList())
            if (gap is { OpType: "GlobalAveragePool", IsDefaultDomain: true } && TryDequantizedPool(graph, ctx, facts2, gap)) changed++;
        return changed;
    }

    /// <summary>A DequantizeLinear per tensor or per axis (blocked ones are not fused here).</summary>
    private static Dq? ReadDq(Graph g, OptimizerContext ctx, Node? n) => QdqValues.ReadDq(g, ctx, n) is { BlockSize: 0 } d ? d : null;

    /// <summary>The scalar output parameters of a QuantizeLinear (scale, zero point name or null, type), or null.</summary>
    private static (Tensor Scale, Tensor? Zp, DType Type)? ReadQ(Graph g, OptimizerContext ctx, Node q)
    {
        if (q.Inputs.Count < 2 || q.Outputs.Count != 1 || q.Outputs[0].Length == 0 || q.GetInt("block_size", 0) != 0) return null;
        if (ctx.ConstantOf(g, q.Inputs[1]) is not { DType: DType.Float32 or DType.Float16 } ys || !Scalar(ys)) return null;
        Tensor? yzp = q.Inputs.Count > 2 && q.Inputs[2].Length > 0 ? ctx.ConstantOf(g, q.Inputs[2]) : null;
        if (q.Inputs.Count > 2 && q.Inputs[2].Length > 0 && (yzp is null || !Scalar(yzp))) return null;
        var yType = yzp?.DType ?? (DType)q.GetInt("output_dtype", (long)DType.UInt8);
        if (yType is not (DType.UInt8 or DType.Int8)) return null;
        return (ys, yzp, yType);
    }

    /// <summary>DequantizeLinear(x), DequantizeLinear(constant w) → ConvTranspose → QuantizeLinear → QLinearConvTranspose.</summary>
    private static bool TryFuseConvTranspose(Graph g, OptimizerContext ctx, ShapeInferenceResult facts, Node q)
    {
        if (ReadQ(g, ctx, q) is not var (_, yzp, yType)) return false;
        if (!SingleUse(g, q.Inputs[0])) return false;
        var op = Producer(g, q.Inputs[0]);
        if (op is not { OpType: "ConvTranspose", IsDefaultDomain: true } || op.Outputs.Count != 1 || op.Inputs.Count < 2) return false;
        if (op.GetInt("group", 1) != 1 || op.GetInts("output_shape") is not null || op.GetInts("output_padding")?.Any(v => v != 0) == true) return false;
        if (op.GetString("auto_pad", "NOTSET") is not ("NOTSET" or "" or "VALID")) return false;
        var x = ReadDq(g, ctx, Producer(g, op.Inputs[0]));
        var w = ReadDq(g, ctx, Producer(g, op.Inputs[1]));
        if (x is null || w is null || w.XConst is not { Dims.Length: 4 } wc || x.XConst is not null) return false;
        if (!Scalar(x.Scale) || (x.Zp is not null && !Scalar(x.Zp))) return false;
        var xType = x.Zp?.DType ?? facts.Get(x.X)?.DType;
        if (xType is not (DType.UInt8 or DType.Int8) || wc.DType is not (DType.UInt8 or DType.Int8)) return false;
        long channels = wc.Dims[1];
        bool perTensor = Scalar(w.Scale);
        long wAxis = w.Axis < 0 ? w.Axis + 4 : w.Axis;
        if (!perTensor && !(w.Scale.Dims.Length == 1 && w.Scale.ElementCount == channels && wAxis == 1)) return false;
        if (w.Zp is not null && (w.Zp.ElementCount != w.Scale.ElementCount || w.Zp.DType != wc.DType)) return false;

        string label = op.Name.Length > 0 ? op.Name : op.Outputs[0];
        string zx = x.Zp is null ? AddConst(g, label + "_x_zero_point", Tensor.FromBytes(xType.Value, [], new byte[1])) : x.Node.Inputs[2];
        string zw = w.Zp is null ? AddConst(g, label + "_w_zero_point", Tensor.FromBytes(wc.DType, w.Scale.Dims, new byte[w.Scale.ElementCount])) : w.Node.Inputs[2];
        string zy = yzp is null ? AddConst(g, label + "_y_zero_point", Tensor.FromBytes(yType, [], new byte[1])) : q.Inputs[2];
        var inputs = new List<string> { x.X, x.Node.Inputs[1], zx, w.X, w.Node.Inputs[1], zw, q.Inputs[1], zy };
        Node? biasDq = null;
        if (op.Inputs.Count > 2 && op.Inputs[2].Length > 0)
        {
            var bias = BiasValues(g, ctx, op.Inputs[2], out biasDq);
            if (bias is null || bias.Length != channels) return false;
            double sx = (float)x.Scale.GetDouble(0);
            var ints = new int[bias.Length];
            for (int i = 0; i < ints.Length; i++)
            {
                double s = sx * w.Scale.GetDouble(perTensor ? 0 : i);
                ints[i] = s == 0 ? 0 : (int)Math.Clamp(Math.Round(bias[i] / s), int.MinValue, int.MaxValue);
            }
            inputs.Add(AddConst(g, label + "_bias_int32", Tensor.FromArray<int>(ints, [ints.Length])));
        }
        var fused = new Node("QLinearConvTranspose", inputs, [q.Outputs[0]], label + "+qdq", FusedElementwiseKernels.Domain);
        foreach (var a in op.Attributes.Values) fused.Attributes.Add(a.Name, a);
        g.Nodes[g.Nodes.IndexOf(op)] = fused;
        g.Nodes.Remove(q);
        RemoveIfUnused(g, x.Node);
        RemoveIfUnused(g, w.Node);
        if (biasDq is not null) RemoveIfUnused(g, biasDq);
        return true;
    }

    /// <summary>QLinearConvTranspose (single reader) → QLinearLookup: the table becomes its input 9.</summary>
    private static bool TryFoldLookup(Graph g, OptimizerContext ctx, Node lut)
    {
        if (lut.Inputs.Count != 2 || ctx.ConstantOf(g, lut.Inputs[1]) is not { } table) return false;
        var op = Producer(g, lut.Inputs[0]);
        if (op is not { OpType: "QLinearConvTranspose" } || op.Domain != FusedElementwiseKernels.Domain || op.Inputs.Count is < 8 or > 9) return false;
        if (op.GetInt("float_epilogue", 0) != 0) return false; // its float epilogue ends in bytes without a lookup stage
        if (!SingleUse(g, lut.Inputs[0]) || ctx.ConstantOf(g, op.Inputs[7]) is not { } yzp || yzp.DType != table.DType) return false;
        if (ctx.ConstantOf(g, op.Inputs[3]) is not { Dims.Length: 4 } w) return false;
        long rows = table.ElementCount / 256;
        if (table.ElementCount % 256 != 0 || (rows != 1 && rows != w.Dims[1])) return false;
        if (op.Inputs.Count == 8) op.Inputs.Add("");
        op.Inputs.Add(lut.Inputs[1]);
        op.Outputs[0] = lut.Outputs[0];
        g.Nodes.Remove(lut);
        return true;
    }

    private static Node CopyOf(Node n, List<string> inputs, List<string> outputs, string name)
    {
        var c = new Node(n.OpType, inputs, outputs, name, n.Domain);
        foreach (var a in n.Attributes.Values) c.Attributes.Add(a.Name, a);
        return c;
    }

    /// <summary>Resize that only copies input values (mode nearest; not tf_crop_and_resize, whose outside points are a constant).</summary>
    private static bool CopyingResize(Node n) =>
        n is { OpType: "Resize", IsDefaultDomain: true } && n.GetString("mode", "nearest") == "nearest"
        && n.GetString("coordinate_transformation_mode", "half_pixel") != "tf_crop_and_resize" && n.Outputs.Count == 1;

    /// <summary>
    /// QuantizeLinear(Concat(v…)) → Concat(QuantizeLinear(v)…) and QuantizeLinear(nearest Resize(v)) → Resize(QuantizeLinear(v)):
    /// the same quantization of the same values, moved to where there are fewer of them or before a copy.
    /// </summary>
    private static bool TryPushThroughCopy(Graph g, OptimizerContext ctx, Node q)
    {
        if (ReadQ(g, ctx, q) is null || !SingleUse(g, q.Inputs[0])) return false;
        var op = Producer(g, q.Inputs[0]);
        bool concat = op is { OpType: "Concat", IsDefaultDomain: true, Outputs.Count: 1 };
        if (!concat && !(op is not null && CopyingResize(op))) return false;
        var targets = concat ? op!.Inputs.Where(i => i.Length > 0).Distinct().ToList() : [op!.Inputs[0]];
        if (targets.Any(t => ctx.ConstantOf(g, t) is not null && concat)) return false; // leave constants to folding as they are
        int at = g.Nodes.IndexOf(op);
        var renamed = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var t in targets)
        {
            string qn = NewName(g, t + "_QuantizeLinear_pushed");
            var nq = CopyOf(q, [t, .. q.Inputs.Skip(1)], [qn], NewName(g, (q.Name.Length > 0 ? q.Name : qn) + "_pushed"));
            g.Nodes.Insert(at++, nq);
            renamed[t] = qn;
        }
        if (concat) { for (int i = 0; i < op.Inputs.Count; i++) if (renamed.TryGetValue(op.Inputs[i], out var r)) op.Inputs[i] = r; }
        else op.Inputs[0] = renamed[op.Inputs[0]];
        op.Outputs[0] = q.Outputs[0];
        g.Nodes.Remove(q);
        return true;
    }

    /// <summary>Element-wise ops whose result at each position depends only on the inputs there.</summary>
    private static readonly HashSet<string> PointwiseOps = new(StringComparer.Ordinal)
    {
        "Add", "Sub", "Mul", "Div", "Clip", "Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "BatchNormalization",
        "Neg", "Abs", "Max", "Min", "Pow", "Exp", "Erf", "Softplus", "Softsign", "Elu", "Selu", "Celu", "Sqrt", "Reciprocal", "Gelu",
        "Mish", "PRelu", "ThresholdedRelu",
    };

    /// <summary>
    /// An island: pointwise nodes computing <c>Value</c> from one per-tensor DequantizeLinear (<c>Root</c>) of a
    /// run-time 8-bit tensor with C channels, constants, and run-time <c>Sides</c> that vary only along the channel
    /// (and batch) axis. Region nodes in graph order; empty when the value is the DequantizeLinear itself.
    /// </summary>
    private sealed record Island(string Value, Dq Root, DType XType, int Rank, long Channels, List<Node> Region, List<string> Sides);

    /// <summary>True when <paramref name="dims"/> (right-aligned to <paramref name="rank"/>) vary only along axis 1 (C or 1) and axis 0.</summary>
    private static bool ChannelOnly(IReadOnlyList<Dim> dims, int rank, long channels, bool batchAllowed)
    {
        if (dims.Count > rank) return false;
        for (int k = 0; k < dims.Count; k++)
        {
            int axis = rank - dims.Count + k;
            var d = dims[k];
            if (axis == 0 && batchAllowed) continue;
            if (!d.IsKnown) return false;
            if (d.Value != 1 && !(axis == 1 && d.Value == channels)) return false;
        }
        return true;
    }

    private static Island? FindIsland(Graph g, OptimizerContext ctx, ShapeInferenceResult facts, string value)
    {
        if (facts.Get(value) is not { DType: DType.Float32, Shape: { } outShape } || outShape.Rank < 2 || !outShape[1].IsKnown) return null;
        int rank = outShape.Rank;
        long channels = outShape[1].Value;
        var region = new HashSet<Node>();
        var sides = new List<string>();
        Dq? root = null;
        var pending = new Stack<string>();
        pending.Push(value);
        while (pending.Count > 0)
        {
            var v = pending.Pop();
            var p = Producer(g, v);
            if (p is null) return null;
            // The root: a DequantizeLinear of a run-time tensor shaped like the value (same rank and channels; the other
            // inputs vary only along batch and channel, so the spatial axes are the root's own).
            if (ReadDq(g, ctx, p) is { XConst: null } d && facts.Get(d.X)?.Shape is { } xs && xs.Rank == rank && xs[1].Equals(outShape[1])
                && !ChannelOnly(xs.Dims, rank, channels, batchAllowed: true))
            {
                if (root is not null && !ReferenceEquals(root.Node, d.Node)) return null;
                root = d;
                continue;
            }
            if (facts.Get(v)?.Shape is { } vs && ChannelOnly(vs.Dims, rank, channels, batchAllowed: true) && v != value)
            {
                if (!sides.Contains(v)) sides.Add(v);
                continue;
            }
            if (!p.IsDefaultDomain || !PointwiseOps.Contains(p.OpType) || p.Outputs.Count != 1 || p.Subgraphs.Any()) return null;
            if (!region.Add(p)) continue;
            if (region.Count > 16) return null;
            foreach (var i in p.Inputs)
            {
                if (i.Length == 0) continue;
                if (ctx.ConstantOf(g, i) is { } t)
                {
                    if (!ChannelOnly(t.Dims.Select(Dim.Of).ToList(), rank, channels, batchAllowed: false)) return null;
                    continue;
                }
                pending.Push(i);
            }
        }
        if (root is null || !Scalar(root.Scale) || (root.Zp is not null && !Scalar(root.Zp))) return null;
        // A side with a batch axis may broadcast the root's batch: only when the shapes say the batch is the same.
        if (!facts.Get(root.X)!.Shape![0].Equals(outShape[0])
            && sides.Any(v => facts.Get(v)!.Shape!.Dims is var sd && sd.Count == rank && !(sd[0].IsKnown && sd[0].Value == 1))) return null;
        var xType = root.Zp?.DType ?? facts.Get(root.X)?.DType;
        if (xType is not (DType.UInt8 or DType.Int8)) return null;
        // Region values are read only inside the region (the island's value by its one reader).
        foreach (var n in region)
        {
            var o = n.Outputs[0];
            if (o == value) continue;
            if (Rewrite.IsGraphOutput(g, o)) return null;
            if (g.Nodes.Any(r => !region.Contains(r) && (r.Inputs.Contains(o) || GraphAlgorithms.ImplicitInputs(r).Contains(o)))) return null;
        }
        return new Island(value, root, xType.Value, rank, channels, g.Nodes.Where(region.Contains).ToList(), sides);
    }

    /// <summary>
    /// Adds the island's nodes again, reading a probe [1, C, 1…, 256] of every byte value per channel through a copy of
    /// its DequantizeLinear, in front of <paramref name="at"/>; returns the copy of the island's value (float [Nt, C, 1…, 256]).
    /// </summary>
    private static string AddProbe(Graph g, Island island, Node at, string label)
    {
        var dims = Enumerable.Repeat(1L, island.Rank).ToArray();
        dims[1] = island.Channels;
        dims[^1] = 256;
        var bytes = new byte[island.Channels * 256];
        for (int i = 0; i < bytes.Length; i++) bytes[i] = (byte)i;
        string probe = AddConst(g, label + "_probe", Tensor.FromBytes(island.XType, dims, bytes));
        int index = g.Nodes.IndexOf(at);
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        string dqOut = NewName(g, label + "_probe_dq");
        g.Nodes.Insert(index++, CopyOf(island.Root.Node, [probe, .. island.Root.Node.Inputs.Skip(1)], [dqOut], dqOut));
        map[island.Root.Node.Outputs[0]] = dqOut;
        foreach (var n in island.Region)
        {
            string o = NewName(g, n.Outputs[0] + "_probe");
            g.Nodes.Insert(index++, CopyOf(n, n.Inputs.Select(i => map.GetValueOrDefault(i, i)).ToList(), [o], o));
            map[n.Outputs[0]] = o;
        }
        return map[island.Value];
    }

    private static void RemoveIsland(Graph g, Island island)
    {
        for (int i = island.Region.Count - 1; i >= 0; i--) g.Nodes.Remove(island.Region[i]);
        RemoveIfUnused(g, island.Root.Node);
    }

    /// <summary>QuantizeLinear(island(DequantizeLinear(x)) with run-time channel inputs) → QLinearTableLookup(x, table computed each run).</summary>
    private static bool TryTableLookup(Graph g, OptimizerContext ctx, ShapeInferenceResult facts, Node q)
    {
        if (ReadQ(g, ctx, q) is null || !SingleUse(g, q.Inputs[0])) return false;
        if (FindIsland(g, ctx, facts, q.Inputs[0]) is not { } island || island.Sides.Count == 0 || island.Region.Count == 0) return false;
        string label = q.Name.Length > 0 ? q.Name : q.Outputs[0];
        string probeValue = AddProbe(g, island, q, label);
        string table = NewName(g, label + "_table");
        g.Nodes.Insert(g.Nodes.IndexOf(q), CopyOf(q, [probeValue, .. q.Inputs.Skip(1)], [table], table));
        g.Nodes[g.Nodes.IndexOf(q)] = new Node("QLinearTableLookup", [island.Root.X, table], [q.Outputs[0]], label + "+table", FusedElementwiseKernels.Domain);
        RemoveIsland(g, island);
        return true;
    }

    /// <summary>
    /// A graph output computed by an island from DequantizeLinear(x) (det's DQ → Add(bias) → Sigmoid probability map)
    /// → QLinearTableLookup(x, float table): one pass reading bytes instead of a float pass per node.
    /// </summary>
    private static bool TryFloatTable(Graph g, OptimizerContext ctx, ShapeInferenceResult facts, string value)
    {
        if (Rewrite.UseCount(g, value) != 1 || g.Inputs.Any(i => i.Name == value)) return false;
        if (FindIsland(g, ctx, facts, value) is not { } island || island.Region.Count == 0) return false;
        var last = Producer(g, value)!;
        string table = AddProbe(g, island, last, value);
        g.Nodes[g.Nodes.IndexOf(last)] = new Node("QLinearTableLookup", [island.Root.X, table], [value], value + "+table", FusedElementwiseKernels.Domain);
        island.Region.Remove(last);
        RemoveIsland(g, island);
        return true;
    }

    /// <summary>GlobalAveragePool(DequantizeLinear(x) per tensor, read by nothing else) → DequantizeGlobalAveragePool(x): no float tensor.</summary>
    private static bool TryDequantizedPool(Graph g, OptimizerContext ctx, ShapeInferenceResult facts, Node gap)
    {
        if (gap.Inputs.Count != 1 || gap.Outputs.Count != 1 || !SingleUse(g, gap.Inputs[0])) return false;
        if (ReadDq(g, ctx, Producer(g, gap.Inputs[0])) is not { XConst: null, Scale.DType: DType.Float32 } dq || !Scalar(dq.Scale) || (dq.Zp is not null && !Scalar(dq.Zp))) return false;
        if ((dq.Zp?.DType ?? facts.Get(dq.X)?.DType) is not (DType.UInt8 or DType.Int8)) return false;
        var inputs = new List<string> { dq.X, dq.Node.Inputs[1] };
        if (dq.Zp is not null) inputs.Add(dq.Node.Inputs[2]);
        g.Nodes[g.Nodes.IndexOf(gap)] = new Node("DequantizeGlobalAveragePool", inputs, [gap.Outputs[0]], (gap.Name.Length > 0 ? gap.Name : gap.Outputs[0]) + "+dq", FusedElementwiseKernels.Domain);
        RemoveIfUnused(g, dq.Node);
        return true;
    }

    /// <summary>Integer [fy, fx] of a nearest, asymmetric/floor Resize by constant scales [1, 1, fy, fx] (no sizes), or null.</summary>
    private static long[]? IntegerUpsample(Graph g, OptimizerContext ctx, Node r)
    {
        if (!CopyingResize(r) || r.GetString("coordinate_transformation_mode", "half_pixel") != "asymmetric" || r.GetString("nearest_mode", "round_prefer_floor") != "floor") return null;
        if (r.Inputs.Count < 3 || r.Inputs.Count > 4 || (r.Inputs.Count == 4 && r.Inputs[3].Length > 0) || r.Attributes.ContainsKey("axes")) return null;
        if (ctx.ConstantOf(g, r.Inputs[2]) is not { DType: DType.Float32, ElementCount: 4 } scales) return null;
        var f = Enumerable.Range(0, 4).Select(i => scales.GetDouble(i)).ToArray();
        if (f[0] != 1 || f[1] != 1 || f[2] < 1 || f[3] < 1 || f[2] != Math.Floor(f[2]) || f[3] != Math.Floor(f[3])) return null;
        return [(long)f[2], (long)f[3]];
    }

    /// <summary>QuantizeLinear(Add(island(DQ(a)), island(DQ(b)) or nearest integer upsampling of DQ(b))) → QLinearTableAdd.</summary>
    private static bool TryTableAdd(Graph g, OptimizerContext ctx, ShapeInferenceResult facts, Node q)
    {
        if (ReadQ(g, ctx, q) is not var (_, yzp, yType) || !SingleUse(g, q.Inputs[0])) return false;
        var add = Producer(g, q.Inputs[0]);
        if (add is not { OpType: "Add", IsDefaultDomain: true, Inputs.Count: 2, Outputs.Count: 1 } || add.Inputs[0] == add.Inputs[1]) return false;
        if (facts.Get(add.Outputs[0])?.Shape is not { } outShape) return false;
        for (int first = 0; first < 2; first++)
        {
            string av = add.Inputs[first], bv = add.Inputs[1 - first];
            if (!SingleUse(g, av) && Producer(g, av) is not { OpType: "DequantizeLinear" }) continue;
            var a = FindIsland(g, ctx, facts, av);
            if (a is null || !facts.Get(a.Root.X)!.Shape!.Equals(outShape)) continue;
            long[]? up = null;
            Island? b;
            var bp = Producer(g, bv);
            if (bp is not null && SingleUse(g, bv) && IntegerUpsample(g, ctx, bp) is { } f && ReadDq(g, ctx, Producer(g, bp.Inputs[0])) is { XConst: null } bdq
                && facts.Get(bdq.X)?.Shape is { Rank: 4 } bs && a.Rank == 4 && bs[1].Equals(outShape[1]))
            {
                b = FindIsland(g, ctx, facts, bp.Inputs[0]);
                if (b is null || b.Region.Count != 0) continue;
                up = f;
            }
            else
            {
                b = FindIsland(g, ctx, facts, bv);
                if (b is null || !facts.Get(b.Root.X)!.Shape!.Equals(outShape) || (!SingleUse(g, bv) && b.Region.Count != 0)) continue;
            }
            if (a.Channels != b.Channels || (a.Region.Count > 0 && !SingleUse(g, av))) continue;
            string label = q.Name.Length > 0 ? q.Name : q.Outputs[0];
            string ta = AddProbe(g, a, q, label + "_a");
            string tb = AddProbe(g, b, q, label + "_b");
            string zy = yzp is null ? AddConst(g, label + "_y_zero_point", Tensor.FromBytes(yType, [], new byte[1])) : q.Inputs[2];
            var fused = new Node("QLinearTableAdd", [a.Root.X, ta, b.Root.X, tb, q.Inputs[1], zy], [q.Outputs[0]], label + "+tableadd", FusedElementwiseKernels.Domain);
            if (up is not null) fused.With(Core.Attribute.Of("upsample", up));
            g.Nodes[g.Nodes.IndexOf(q)] = fused;
            g.Nodes.Remove(add);
            if (up is not null) g.Nodes.Remove(bp!);
            RemoveIsland(g, a);
            RemoveIsland(g, b);
            return true;
        }
        return false;
    }
}
