using OnDevice.Core;
using OnDevice.Runtime.Kernels;

namespace OnDevice.Runtime.Tests;

public class InferenceSessionTests
{
    /// <summary>x → Relu → Add(·, x) → Relu → Add(·, x) ... (n layers), input x float32 [batch, 64].</summary>
    internal static Model Chain(int layers, Shape? inputShape = null)
    {
        var g = new Graph { Name = "chain" };
        g.Inputs.Add(ValueInfo.Tensor("x", DType.Float32, inputShape ?? new Shape([Dim.Sym("batch"), Dim.Of(64)])));
        string prev = "x";
        for (int i = 0; i < layers; i++)
        {
            g.Nodes.Add(new Node("Relu", [prev], [$"r{i}"], $"relu{i}"));
            g.Nodes.Add(new Node("Add", [$"r{i}", "x"], [$"a{i}"], $"add{i}"));
            prev = $"a{i}";
        }
        g.Outputs.Add(ValueInfo.Tensor(prev, DType.Float32, null));
        var m = new Model(g);
        m.OpsetImports.Add(new OpsetImport("", 17));
        return m;
    }

    private static float[] Expected(float[] x, int layers)
    {
        var v = (float[])x.Clone();
        for (int l = 0; l < layers; l++)
            for (int i = 0; i < v.Length; i++) v[i] = Math.Max(v[i], 0) + x[i];
        return v;
    }

    [Fact]
    public void Run_ComputesTheGraph_AndReusesMemoryAcrossLayers()
    {
        var s = new InferenceSession(Chain(10), new SessionOptions { Threads = 1, Optimize = false });
        var x = NodeRunner.Random(4 * 64, 1);
        var y = s.Run("x", Tensor.FromArray<float>(x, [4, 64]))["a9"];
        NodeRunner.Close(Expected(x, 10), y.ToFloatArray());
        // 20 intermediate values of 1 KiB each, but at most three are alive at once.
        long planned = s.PlannedPeakBytes(new Dictionary<string, Tensor> { ["x"] = Tensor.FromArray<float>(x, [4, 64]) });
        Assert.InRange(planned, 2 * 1024, 3 * 1024);
    }

    [Fact]
    public void DynamicBatch_IsPlannedPerShape()
    {
        var s = new InferenceSession(Chain(3));
        foreach (int batch in new[] { 1, 7, 2, 7 })
        {
            var x = NodeRunner.Random(batch * 64, batch);
            var y = s.Run("x", Tensor.FromArray<float>(x, [batch, 64]))["a2"];
            Assert.Equal(new long[] { batch, 64 }, y.Dims);
            NodeRunner.Close(Expected(x, 3), y.ToFloatArray());
        }
    }

    [Fact]
    public void ConcurrentRuns_OnOneSession_AreSafe()
    {
        var s = new InferenceSession(Chain(6), new SessionOptions { Threads = 1, Optimize = false });
        var inputs = Enumerable.Range(0, 8).Select(i => NodeRunner.Random((1 + i % 3) * 64, 100 + i)).ToArray();
        Parallel.For(0, 64, new ParallelOptions { MaxDegreeOfParallelism = 8 }, k =>
        {
            var x = inputs[k % inputs.Length];
            var y = s.Run("x", Tensor.FromArray<float>(x, [x.Length / 64, 64]))["a5"];
            NodeRunner.Close(Expected(x, 6), y.ToFloatArray());
        });
    }

    [Fact]
    public void MemoryLimit_FailsBeforeAllocating_WithThePlannedPeak()
    {
        var s = new InferenceSession(Chain(4), new SessionOptions { MemoryLimitBytes = 100_000 });
        s.Run("x", Tensor.Zeros(DType.Float32, [10, 64])); // 2.5 KiB per value: fine
        var e = Assert.Throws<MemoryLimitExceededException>(() => s.Run("x", Tensor.Zeros(DType.Float32, [1000, 64])));
        Assert.Contains("planned peak activation memory", e.Message);
        Assert.Contains("100,000", e.Message);
        Assert.True(e.PlannedPeakBytes > 100_000);
    }

    [Fact]
    public void BadInputs_AreReportedWithTheExpectedInputs()
    {
        var s = new InferenceSession(Chain(1));
        var unknown = Assert.Throws<InvalidInputException>(() => s.Run("image", Tensor.Zeros(DType.Float32, [1, 64])));
        Assert.Contains("unknown input 'image'", unknown.Message);
        Assert.Contains("x: float32[batch,64]", unknown.Message);
        Assert.Contains("is int64", Assert.Throws<InvalidInputException>(() => s.Run("x", Tensor.Zeros(DType.Int64, [1, 64]))).Message);
        Assert.Contains("rank 3", Assert.Throws<InvalidInputException>(() => s.Run("x", Tensor.Zeros(DType.Float32, [1, 1, 64]))).Message);
        Assert.Contains("dimension 1 is 65", Assert.Throws<InvalidInputException>(() => s.Run("x", Tensor.Zeros(DType.Float32, [1, 65]))).Message);
        Assert.Contains("missing input 'x'", Assert.Throws<InvalidInputException>(() => s.Run(new Dictionary<string, Tensor>())).Message);
    }

    [Fact]
    public void NaNAndInfinity_Propagate()
    {
        var s = new InferenceSession(Chain(1, Shape.Of(1, 4)));
        var y = s.Run("x", Tensor.FromArray<float>([float.NaN, float.PositiveInfinity, float.NegativeInfinity, 1], [1, 4]))["a0"].ToFloatArray();
        Assert.True(float.IsNaN(y[0]));
        Assert.Equal(float.PositiveInfinity, y[1]);
        Assert.Equal(float.NegativeInfinity, y[2]); // relu(-inf) + -inf
        Assert.Equal(2f, y[3]);
    }

    [Fact]
    public void UnsupportedOperator_FailsAtCreation_NamingOpDomainOpsetAndNode()
    {
        var m = Chain(1);
        m.Graph.Nodes.Add(new Node("FancyOp", ["a0"], ["z"], "fancy_1") { Domain = "com.example" });
        m.OpsetImports.Add(new OpsetImport("com.example", 3));
        var e = Assert.Throws<UnsupportedOperatorException>(() => new InferenceSession(m));
        Assert.IsAssignableFrom<NotSupportedException>(e);
        Assert.Contains("com.example.FancyOp", e.Message);
        Assert.Contains("opset 3", e.Message);
        Assert.Contains("'fancy_1'", e.Message);
    }

    [Fact]
    public void UnsupportedType_IsRejectedAtCreation()
    {
        var g = new Graph();
        g.Inputs.Add(ValueInfo.Tensor("x", DType.Int64, Shape.Of(4)));
        g.Nodes.Add(new Node("Sigmoid", ["x"], ["y"], "s"));
        g.Outputs.Add(new ValueInfo("y"));
        var m = new Model(g);
        m.OpsetImports.Add(new OpsetImport("", 17));
        var e = Assert.Throws<UnsupportedOperatorException>(() => new InferenceSession(m));
        Assert.Contains("int64", e.Message);
    }

    [Fact]
    public void Profiling_ReportsEveryNode()
    {
        var s = new InferenceSession(Chain(2), new SessionOptions { Profiling = true, Optimize = false });
        for (int i = 0; i < 3; i++) s.Run("x", Tensor.Zeros(DType.Float32, [2, 64]));
        var p = s.GetProfile();
        Assert.Equal(3, p.Runs);
        Assert.Equal(4, p.Nodes.Count);
        Assert.Equal(["Add", "Relu"], p.ByOp.Select(o => o.OpType).Order());
        Assert.Throws<InvalidOperationException>(() => new InferenceSession(Chain(1)).GetProfile());
    }

    [Fact]
    public void TheCallersModel_IsNotModified()
    {
        var m = Chain(2);
        m.Graph.Nodes.Insert(0, new Node("Identity", ["x"], ["x_id"], "id"));
        m.Graph.Nodes[1].Inputs[0] = "x_id";
        int before = m.Graph.Nodes.Count;
        var s = new InferenceSession(m);
        Assert.Equal(before, m.Graph.Nodes.Count);
        Assert.True(s.OptimizedGraph.Nodes.Count < before || !KernelRegistry.Default.Claims("", "Identity", 17));
    }
}

public class OptimizerTests
{
    [Fact]
    public void DropoutInTrainingMode_IsKept_WhileInferenceDropoutIsRemoved()
    {
        var g = new Graph();
        g.Inputs.Add(ValueInfo.Tensor("x", DType.Float32, Shape.Of(4)));
        g.Inputs.Add(ValueInfo.Tensor("training", DType.Bool, Shape.Scalar));
        g.Nodes.Add(new Node("Dropout", ["x", "", "training"], ["a"], "train_dropout"));
        g.Nodes.Add(new Node("Dropout", ["a"], ["b"], "inference_dropout"));
        g.Outputs.Add(new ValueInfo("b"));
        Optimizer.GraphOptimizer.Optimize(g, 17, Kernels.KernelRegistry.Default);
        Assert.Equal(["train_dropout"], g.Nodes.Select(n => n.Name));
        Assert.Equal("b", g.Nodes[0].Outputs[0]);
    }
}

public class ObserverTests
{
    [Fact]
    public void Observe_SeesEveryIntermediateValue_InSubgraphsToo()
    {
        var m = InferenceSessionTests.Chain(3);
        var s = new InferenceSession(m, new SessionOptions { Optimize = false });
        var seen = new Dictionary<string, float[]>();
        var x = NodeRunner.Random(2 * 64, 5);
        s.Run(new Dictionary<string, Tensor> { ["x"] = Tensor.FromArray<float>(x, [2, 64]) }, (name, b) => seen[name] = b.Span<float>().ToArray());
        Assert.Equal(["a0", "a1", "a2", "r0", "r1", "r2"], seen.Keys.Order());
        NodeRunner.Close(x.Select(v => Math.Max(v, 0)).ToArray(), seen["r0"]);
    }
}
