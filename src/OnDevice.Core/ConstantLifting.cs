namespace OnDevice.Core;

/// <summary>Turns <c>Constant</c> nodes into initializers (PaddleOCR and others store every weight as a Constant node).</summary>
public static class ConstantLifting
{
    /// <summary>
    /// Replaces each default-domain <c>Constant</c> node in <paramref name="graph"/> and its subgraphs by an
    /// initializer named after the node's output. Returns how many nodes were lifted.
    /// </summary>
    public static int Lift(Graph graph)
    {
        int lifted = 0;
        foreach (var g in graph.SelfAndSubgraphs().ToList())
        {
            var keep = new List<Node>(g.Nodes.Count);
            foreach (var n in g.Nodes)
            {
                if (n is { OpType: "Constant", IsDefaultDomain: true, Outputs.Count: 1 } && n.Outputs[0].Length > 0
                    && !g.Initializers.ContainsKey(n.Outputs[0]) && ConstantValue(n) is { } t)
                {
                    var init = t.Name == n.Outputs[0] ? t : RenameShallow(t, n.Outputs[0]);
                    g.Initializers.Add(init.Name, init);
                    lifted++;
                }
                else keep.Add(n);
            }
            g.Nodes.Clear();
            g.Nodes.AddRange(keep);
        }
        return lifted;
    }

    /// <summary>The tensor a <c>Constant</c> node produces (from <c>value</c> or the <c>value_*</c> attributes), or null for sparse values.</summary>
    public static Tensor? ConstantValue(Node n)
    {
        if (n.Attributes.Count != 1) return null;
        var a = n.Attributes.Values.First();
        return a.Name switch
        {
            "value" when a.Kind == AttributeKind.Tensor => a.AsTensor(),
            "value_float" when a.Kind == AttributeKind.Float => Tensor.Scalar(a.AsFloat()),
            "value_floats" when a.Kind == AttributeKind.Floats => Tensor.FromArray<float>(a.AsFloats(), [a.AsFloats().Length]),
            "value_int" when a.Kind == AttributeKind.Int => Tensor.Scalar(a.AsInt()),
            "value_ints" when a.Kind == AttributeKind.Ints => Tensor.FromArray<long>(a.AsInts(), [a.AsInts().Length]),
            "value_string" when a.Kind == AttributeKind.String => Tensor.FromByteStrings([(byte[])a.Value], []),
            "value_strings" when a.Kind == AttributeKind.Strings => Tensor.FromByteStrings((byte[][])a.Value, [((byte[][])a.Value).Length]),
            _ => null,
        };
    }

    private static Tensor RenameShallow(Tensor t, string name)
    {
        var r = t.DType == DType.String
            ? Tensor.FromByteStrings([.. t.Strings], t.Dims, name)
            : Tensor.FromBytes(t.DType, t.Dims, System.Runtime.InteropServices.MemoryMarshal.AsMemory(t.Memory), name);
        r.DocString = t.DocString;
        return r;
    }
}
