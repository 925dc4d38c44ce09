using OnDevice.Core;

namespace OnDevice.Compression;

/// <summary>
/// Raises a model's default-domain opset (quantized forms need 10, 13, 19 or 21), rewriting the nodes whose
/// signature changed on the way: Slice (10), Clip and Pad (11), Squeeze, Unsqueeze, Split, ReduceSum and
/// Softmax-family coercion (13), the other Reduce ops (18) and Split's <c>num_outputs</c> (18). Ops whose semantics
/// changed in ways that cannot be rewritten here (Upsample, Resize before 11, Scatter) fail clearly.
/// </summary>
public static class OpsetUpgrade
{
    /// <summary>The ONNX IR version a default-domain opset needs.</summary>
    public static long IrVersionFor(long opset) => opset switch
    {
        >= 23 => 11,
        >= 21 => 10,
        >= 19 => 9,
        >= 15 => 8,
        >= 13 => 7,
        >= 11 => 6,
        _ => 5,
    };

    /// <summary>Raises <paramref name="model"/> to at least <paramref name="target"/> (no-op when already there).</summary>
    public static void Raise(Model model, long target)
    {
        long from = model.OpsetVersion("") ?? 1;
        if (from >= target)
        {
            model.IrVersion = Math.Max(model.IrVersion, IrVersionFor(from));
            return;
        }
        foreach (var g in model.Graph.SelfAndSubgraphs().ToList()) RewriteGraph(g, from, target);
        model.OpsetImports.RemoveAll(o => o.Domain is "" or "ai.onnx");
        model.OpsetImports.Insert(0, new OpsetImport("", target));
        model.IrVersion = Math.Max(model.IrVersion, IrVersionFor(target));
    }

    private static void RewriteGraph(Graph g, long from, long to)
    {
        var result = new List<Node>(g.Nodes.Count);
        int counter = 0;
        string Fresh(string hint) { string n; do n = $"{hint}__up{counter++}"; while (g.Initializers.ContainsKey(n)); return n; }
        string Ints(string hint, long[] v) { var t = Tensor.FromArray<long>(v, [v.Length], Fresh(hint)); g.AddInitializer(t); return t.Name; }
        string Scalar(string hint, float v) { var t = Tensor.Scalar(v, Fresh(hint)); g.AddInitializer(t); return t.Name; }

        foreach (var n in g.Nodes)
        {
            if (!n.IsDefaultDomain) { result.Add(n); continue; }
            switch (n.OpType)
            {
                case "Upsample" when to >= 10:
                    throw new CompressionException($"{n.Label}: Upsample was removed in opset 10; the model cannot be raised from opset {from} to {to}");
                case "Resize" when from < 11 && to >= 11:
                    throw new CompressionException($"{n.Label}: Resize changed its coordinate rule in opset 11; the model cannot be raised from opset {from} to {to}");
                case "Scatter" when to >= 11:
                    throw new CompressionException($"{n.Label}: Scatter was removed in opset 11; the model cannot be raised from opset {from} to {to}");
                case "Slice" when from < 10 && to >= 10:
                {
                    var starts = n.GetInts("starts") ?? [];
                    var ends = n.GetInts("ends") ?? [];
                    var axes = n.GetInts("axes");
                    var m = new Node("Slice", [n.Inputs[0], Ints("starts", starts), Ints("ends", ends), .. axes is null ? Array.Empty<string>() : [Ints("axes", axes)]], n.Outputs, n.Name);
                    result.Add(m);
                    break;
                }
                case "Clip" when from < 11 && to >= 11:
                {
                    var min = n.Attr("min") is { } a ? Scalar("min", a.AsFloat()) : "";
                    var max = n.Attr("max") is { } b ? Scalar("max", b.AsFloat()) : "";
                    var inputs = max.Length > 0 ? new[] { n.Inputs[0], min, max } : min.Length > 0 ? [n.Inputs[0], min] : [n.Inputs[0]];
                    result.Add(new Node("Clip", inputs, n.Outputs, n.Name));
                    break;
                }
                case "Pad" when from < 11 && to >= 11:
                {
                    var pads = n.GetInts("pads") ?? n.GetInts("paddings") ?? [];
                    var m = new Node("Pad", [n.Inputs[0], Ints("pads", pads), Scalar("value", n.GetFloat("value", 0))], n.Outputs, n.Name);
                    m.With(Core.Attribute.Of("mode", n.GetString("mode", "constant")));
                    result.Add(m);
                    break;
                }
                case "Squeeze" or "Unsqueeze" when from < 13 && to >= 13:
                {
                    var axes = n.GetInts("axes");
                    result.Add(new Node(n.OpType, axes is null ? [n.Inputs[0]] : [n.Inputs[0], Ints("axes", axes)], n.Outputs, n.Name));
                    break;
                }
                case "Split" when from < 18 && to >= 13:
                {
                    var split = n.GetInts("split");
                    var inputs = new List<string> { n.Inputs[0] };
                    if (from >= 13 && n.Inputs.Count > 1) inputs.Add(n.Inputs[1]);
                    else if (split is not null) inputs.Add(Ints("split", split));
                    var m = new Node("Split", inputs, n.Outputs, n.Name).With(Core.Attribute.Of("axis", n.GetInt("axis", 0)));
                    if (to >= 18 && inputs.Count == 1) m.With(Core.Attribute.Of("num_outputs", (long)n.Outputs.Count));
                    result.Add(m);
                    break;
                }
                case "ReduceSum" when from < 13 && to >= 13:
                case "ReduceMean" or "ReduceMax" or "ReduceMin" or "ReduceProd" or "ReduceL1" or "ReduceL2" or "ReduceLogSum"
                    or "ReduceLogSumExp" or "ReduceSumSquare" when from < 18 && to >= 18:
                {
                    var axes = n.GetInts("axes");
                    var m = new Node(n.OpType, axes is null ? [n.Inputs[0]] : [n.Inputs[0], Ints("axes", axes)], n.Outputs, n.Name);
                    if (n.Attr("keepdims") is { } k) m.With(k);
                    result.Add(m);
                    break;
                }
                case "Softmax" or "LogSoftmax" or "Hardmax" when from < 13 && to >= 13:
                {
                    long axis = n.GetInt("axis", 1);
                    if (axis == -1) { result.Add(new Node(n.OpType, n.Inputs, n.Outputs, n.Name).With(Core.Attribute.Of("axis", -1L))); break; }
                    // Opsets before 13 flatten to 2-D at axis and normalize the second dimension: do exactly that.
                    string flat = Fresh(n.Outputs[0] + "_flat"), sm = Fresh(n.Outputs[0] + "_sm"), shape = Fresh(n.Outputs[0] + "_shape");
                    result.Add(new Node("Flatten", [n.Inputs[0]], [flat], Fresh(n.Name + "_flatten")).With(Core.Attribute.Of("axis", axis)));
                    result.Add(new Node(n.OpType, [flat], [sm], n.Name).With(Core.Attribute.Of("axis", -1L)));
                    result.Add(new Node("Shape", [n.Inputs[0]], [shape], Fresh(n.Name + "_shape")));
                    result.Add(new Node("Reshape", [sm, shape], n.Outputs, Fresh(n.Name + "_reshape")));
                    break;
                }
                default:
                    result.Add(n);
                    break;
            }
            // Attributes other than the rewritten ones carry over.
            var added = result[^1];
            if (!ReferenceEquals(added, n) && added.OpType == n.OpType)
                foreach (var a in n.Attributes.Values)
                    if (a.Name is not ("starts" or "ends" or "axes" or "min" or "max" or "pads" or "paddings" or "value" or "split") && !added.Attributes.ContainsKey(a.Name))
                        added.With(a);
        }
        g.Nodes.Clear();
        g.Nodes.AddRange(result);
    }
}
