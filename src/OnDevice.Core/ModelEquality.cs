namespace OnDevice.Core;

/// <summary>Structural comparison of models: every field of the IR, tensors byte for byte.</summary>
public static class ModelEquality
{
    /// <summary>Human-readable differences between <paramref name="a"/> and <paramref name="b"/> (empty when equal); stops after <paramref name="max"/>.</summary>
    public static IReadOnlyList<string> Differences(Model a, Model b, int max = 20)
    {
        var d = new List<string>();
        void Check(bool equal, string what) { if (!equal && d.Count < max) d.Add(what); }
        Check(a.IrVersion == b.IrVersion, $"ir_version {a.IrVersion} vs {b.IrVersion}");
        Check(a.OpsetImports.SequenceEqual(b.OpsetImports), "opset imports differ");
        Check(a.ProducerName == b.ProducerName && a.ProducerVersion == b.ProducerVersion, "producer differs");
        Check(a.Domain == b.Domain && a.ModelVersion == b.ModelVersion && a.DocString == b.DocString, "domain, model_version or doc_string differs");
        Check(a.Metadata.SequenceEqual(b.Metadata), "metadata differs");
        Check(a.Functions.Count == b.Functions.Count, $"{a.Functions.Count} vs {b.Functions.Count} functions");
        for (int i = 0; i < Math.Min(a.Functions.Count, b.Functions.Count); i++)
        {
            var fa = a.Functions[i];
            var fb = b.Functions[i];
            Check(fa.Name == fb.Name && fa.Domain == fb.Domain && fa.Inputs.SequenceEqual(fb.Inputs) && fa.Outputs.SequenceEqual(fb.Outputs)
                && fa.AttributeNames.SequenceEqual(fb.AttributeNames) && fa.OpsetImports.SequenceEqual(fb.OpsetImports), $"function {i} '{fa.Name}' differs");
            CompareNodes(fa.Nodes, fb.Nodes, $"function '{fa.Name}'", d, max);
        }
        CompareGraph(a.Graph, b.Graph, "main", d, max);
        return d;
    }

    /// <summary>True when the models are structurally identical.</summary>
    public static bool AreEqual(Model a, Model b) => Differences(a, b, 1).Count == 0;

    private static void CompareGraph(Graph a, Graph b, string path, List<string> d, int max)
    {
        void Check(bool equal, string what) { if (!equal && d.Count < max) d.Add($"{path}: {what}"); }
        Check(a.Name == b.Name, $"name '{a.Name}' vs '{b.Name}'");
        Check(a.DocString == b.DocString, "doc_string differs");
        CompareValues(a.Inputs, b.Inputs, "inputs", Check);
        CompareValues(a.Outputs, b.Outputs, "outputs", Check);
        CompareValues(a.ValueInfos, b.ValueInfos, "value_info", Check);
        Check(a.Initializers.Keys.SequenceEqual(b.Initializers.Keys), "initializer names or order differ");
        foreach (var (name, t) in a.Initializers)
            if (b.Initializers.TryGetValue(name, out var u))
                Check(t.ContentEquals(u) && t.DocString == u.DocString, $"initializer '{name}' differs ({t} vs {u})");
        Check(a.Metadata.SequenceEqual(b.Metadata), "metadata differs");
        Check(a.QuantizationAnnotations.Count == b.QuantizationAnnotations.Count
            && a.QuantizationAnnotations.Zip(b.QuantizationAnnotations).All(p => p.First.Key == p.Second.Key && p.First.Value.SequenceEqual(p.Second.Value)),
            "quantization annotations differ");
        CompareNodes(a.Nodes, b.Nodes, path, d, max);
    }

    private static void CompareNodes(List<Node> a, List<Node> b, string path, List<string> d, int max)
    {
        void Check(bool equal, string what) { if (!equal && d.Count < max) d.Add($"{path}: {what}"); }
        Check(a.Count == b.Count, $"{a.Count} vs {b.Count} nodes");
        for (int i = 0; i < Math.Min(a.Count, b.Count); i++)
        {
            var (x, y) = (a[i], b[i]);
            Check(x.Name == y.Name && x.OpType == y.OpType && x.Domain == y.Domain && x.Overload == y.Overload && x.DocString == y.DocString,
                $"node {i}: {x.Label} vs {y.Label}");
            Check(x.Inputs.SequenceEqual(y.Inputs) && x.Outputs.SequenceEqual(y.Outputs), $"node {i} {x.Label}: inputs or outputs differ");
            Check(x.Metadata.SequenceEqual(y.Metadata), $"node {i} {x.Label}: metadata differs");
            Check(x.Attributes.Keys.SequenceEqual(y.Attributes.Keys), $"node {i} {x.Label}: attribute names differ");
            foreach (var (name, attr) in x.Attributes)
            {
                if (!y.Attributes.TryGetValue(name, out var other)) continue;
                var where = $"{path}/node {i} {x.Label}.{name}";
                if (attr.Kind == AttributeKind.Graph && other.Kind == AttributeKind.Graph)
                    CompareGraph(attr.AsGraph(), other.AsGraph(), where, d, max);
                else if (attr.Kind == AttributeKind.Graphs && other.Kind == AttributeKind.Graphs && attr.AsGraphs().Length == other.AsGraphs().Length)
                    for (int k = 0; k < attr.AsGraphs().Length; k++) CompareGraph(attr.AsGraphs()[k], other.AsGraphs()[k], $"{where}[{k}]", d, max);
                else
                    Check(AttributeEquals(attr, other), $"node {i} {x.Label}: attribute {attr} vs {other}");
            }
        }
    }

    private static void CompareValues(List<ValueInfo> a, List<ValueInfo> b, string what, Action<bool, string> check)
    {
        check(a.Count == b.Count, $"{a.Count} vs {b.Count} {what}");
        for (int i = 0; i < Math.Min(a.Count, b.Count); i++)
            check(a[i].Name == b[i].Name && Equals(a[i].Type, b[i].Type) && a[i].DocString == b[i].DocString && a[i].Metadata.SequenceEqual(b[i].Metadata),
                $"{what}[{i}]: {a[i]} vs {b[i]}");
    }

    /// <summary>Value equality of two attributes (subgraphs are compared by reference here).</summary>
    public static bool AttributeEquals(Attribute a, Attribute b)
    {
        if (a.Name != b.Name || a.Kind != b.Kind || a.RefAttributeName != b.RefAttributeName || a.DocString != b.DocString) return false;
        return a.Kind switch
        {
            AttributeKind.Float => BitConverter.SingleToInt32Bits(a.AsFloat()) == BitConverter.SingleToInt32Bits(b.AsFloat()),
            AttributeKind.Int => a.AsInt() == b.AsInt(),
            AttributeKind.String or AttributeKind.SparseTensor => ((byte[])a.Value).AsSpan().SequenceEqual((byte[])b.Value),
            AttributeKind.Tensor => a.AsTensor().ContentEquals(b.AsTensor()) && a.AsTensor().Name == b.AsTensor().Name,
            AttributeKind.Floats => a.AsFloats().Select(BitConverter.SingleToInt32Bits).SequenceEqual(b.AsFloats().Select(BitConverter.SingleToInt32Bits)),
            AttributeKind.Ints => a.AsInts().SequenceEqual(b.AsInts()),
            AttributeKind.Strings or AttributeKind.SparseTensors => ((byte[][])a.Value).Length == ((byte[][])b.Value).Length
                && ((byte[][])a.Value).Zip((byte[][])b.Value).All(p => p.First.AsSpan().SequenceEqual(p.Second)),
            AttributeKind.Tensors => a.AsTensors().Length == b.AsTensors().Length && a.AsTensors().Zip(b.AsTensors()).All(p => p.First.ContentEquals(p.Second)),
            AttributeKind.Type => Equals(a.Value, b.Value),
            AttributeKind.Types => ((TypeInfo[])a.Value).SequenceEqual((TypeInfo[])b.Value),
            _ => ReferenceEquals(a.Value, b.Value),
        };
    }
}
