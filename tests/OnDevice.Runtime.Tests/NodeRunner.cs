using OnDevice.Core;

namespace OnDevice.Runtime.Tests;

/// <summary>Builds a one-node model around a node and runs it through a real <see cref="InferenceSession"/>.</summary>
public static class NodeRunner
{
    /// <summary>Runs <paramref name="node"/> (inputs named as in the node) and returns its outputs in order.</summary>
    public static Tensor[] Run(Node node, IReadOnlyList<Tensor?> inputs, long opset = 17, int threads = 1, IReadOnlyDictionary<string, Tensor>? initializers = null)
    {
        var g = new Graph { Name = "test" };
        var feeds = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        for (int i = 0; i < node.Inputs.Count; i++)
        {
            var name = node.Inputs[i];
            if (name.Length == 0 || i >= inputs.Count || inputs[i] is not { } t) continue;
            if (initializers?.ContainsKey(name) == true) continue;
            g.Inputs.Add(ValueInfo.Tensor(name, t.DType, null));
            feeds[name] = t;
        }
        if (initializers is not null) foreach (var (k, t) in initializers) g.AddInitializer(t.Clone(k));
        g.Nodes.Add(node);
        foreach (var o in node.Outputs.Where(o => o.Length > 0)) g.Outputs.Add(new ValueInfo(o));
        var m = new Model(g);
        m.OpsetImports.Add(new OpsetImport("", opset));
        var s = new InferenceSession(m, new SessionOptions { Threads = threads });
        var r = s.Run(feeds);
        return node.Outputs.Where(o => o.Length > 0).Select(o => r[o]).ToArray();
    }

    /// <summary>Deterministic random floats in [lo, hi).</summary>
    public static float[] Random(int n, int seed, float lo = -1, float hi = 1)
    {
        var rng = new Random(seed);
        var r = new float[n];
        for (int i = 0; i < n; i++) r[i] = lo + (float)rng.NextDouble() * (hi - lo);
        return r;
    }

    /// <summary>Asserts two float arrays agree within |a−e| ≤ atol + rtol·|e| (NaN equals NaN).</summary>
    public static void Close(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, float rtol = 1e-5f, float atol = 1e-6f)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            float e = expected[i], a = actual[i];
            if (float.IsNaN(e) && float.IsNaN(a)) continue;
            if (e == a) continue;
            Assert.True(Math.Abs(a - e) <= atol + rtol * Math.Abs(e), $"element {i}: {a} vs expected {e}");
        }
    }
}
