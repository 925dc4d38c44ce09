using OnDevice.Core;
using OnDevice.Formats.Onnx;
using OnDevice.Runtime;
using OnDevice.TestSupport;

namespace OnDevice.Planning.Tests;

public class OnnxCostTests
{
    /// <summary>x [batch, width] → (Add W_i → Relu) × layers, with W_i float32 [1, width] initializers.</summary>
    private static Model Chain(int layers, int width)
    {
        var g = new Graph { Name = "chain" };
        g.Inputs.Add(ValueInfo.Tensor("x", DType.Float32, new Shape([Dim.Sym("batch"), Dim.Of(width)])));
        string prev = "x";
        var rng = new Random(3);
        for (int i = 0; i < layers; i++)
        {
            g.AddInitializer(Tensor.FromArray<float>(Enumerable.Range(0, width).Select(_ => (float)rng.NextDouble()).ToArray(), [1, width], $"w{i}"));
            g.Nodes.Add(new Node("Add", [prev, $"w{i}"], [$"a{i}"], $"add{i}"));
            g.Nodes.Add(new Node("Relu", [$"a{i}"], [$"r{i}"], $"relu{i}"));
            prev = $"r{i}";
        }
        g.Outputs.Add(ValueInfo.Tensor(prev, DType.Float32, null));
        var m = new Model(g);
        m.OpsetImports.Add(new OpsetImport("", 17));
        return m;
    }

    [Fact]
    public void ModelTheRuntimeRuns_EstimateMatchesLoadedModel_AndPlannedPeakMatchesMeasured()
    {
        const int layers = 12, width = 1024, batch = 64;
        var model = Chain(layers, width);
        var shapes = new Dictionary<string, long[]> { ["x"] = [batch, width] };
        var cost = OnnxCost.Analyze(model, "chain", shapes);

        // Parameters and weight bytes: exact against what the session loaded.
        var session = new InferenceSession(model, new SessionOptions { Threads = 1 });
        var loaded = ModelSummary.Of(session.Model);
        Assert.Equal(layers * width, cost.Parameters);
        Assert.Equal(loaded.Parameters, cost.Parameters);
        Assert.Equal(loaded.WeightBytes, cost.WeightBytes);
        Assert.Equal(layers * width * 4L, cost.WeightBytes);

        // Liveness: each node reads one value and writes one, so two values of batch×width floats are alive at once.
        long value = batch * width * 4L;
        Assert.Equal(2 * value, cost.LivenessPeakBytes);
        Assert.NotNull(cost.PlannedPeakBytes);
        Assert.Null(cost.PlannedPeakNote);
        long planned = cost.PlannedPeakBytes!.Value;
        // The runtime's plan (greedy by size, 64-byte aligned) stays within one value of the liveness bound.
        Assert.InRange(planned, value, 2 * value + 64 * 2);

        // Measured: bytes this thread allocates during a first run = the arena the plan asked for, the output copy
        // and bookkeeping. Tolerance: the plan must cover every intermediate (nothing spills to fresh buffers, which
        // would add ≥ one 256 KiB value), bookkeeping under 64 KiB.
        // Warm-up at another batch size JIT-compiles the kernels; asking for the plan caches it, so the timed run
        // allocates only its arena (a new one: the signature is new), the output and per-run bookkeeping.
        session.Run(new Dictionary<string, Tensor> { ["x"] = Tensor.Zeros(DType.Float32, [1, width]) });
        var feeds = new Dictionary<string, Tensor> { ["x"] = Tensor.Zeros(DType.Float32, [batch, width]) };
        Assert.Equal(planned, session.PlannedPeakBytes(feeds));
        GC.Collect();
        long before = GC.GetAllocatedBytesForCurrentThread();
        var outputs = session.Run(feeds);
        long measured = GC.GetAllocatedBytesForCurrentThread() - before;
        long outputBytes = outputs.Values.Sum(t => t.ByteLength);
        Assert.Equal(planned, session.LastRunPeakArenaBytes);
        Assert.InRange(measured, planned + outputBytes, planned + outputBytes + 64 * 1024);
    }

    [Fact]
    public void PaddleOcrRec_ExactParameters_AndMacsForTheFixedShape()
    {
        var path = SampleModels.Path("paddleocr-rec");
        var cost = OnnxCost.Analyze(path, new Dictionary<string, long[]> { ["x"] = [1, 3, 48, 320] });
        var summary = ModelSummary.Of(OnnxReader.Read(path));
        Assert.Equal(2_690_109, cost.Parameters);
        Assert.Equal(summary.WeightBytes, cost.WeightBytes);
        Assert.Equal(summary.WeightBytesByDType.ToDictionary(k => k.Key.Name(), k => k.Value), cost.WeightBytesByDType);
        Assert.NotNull(cost.Macs);
        Assert.Equal(cost.Macs, cost.MacsByOp.Values.Sum());
        Assert.True(cost.MacsByOp["Conv"] > 100_000_000);
        Assert.NotNull(cost.LivenessPeakBytes);
        Assert.True(cost.LivenessPeakBytes > 1_000_000);
        // Today the runtime has no Conv kernel, so the runtime plan is absent and the reason names the operator.
        if (!OnnxCost.RuntimeClaimsAll(OnnxReader.Read(path))) Assert.Contains("unsupported operator", cost.PlannedPeakNote);
        Assert.True(cost.PlannedPeakBytes is not null || cost.PlannedPeakNote!.Contains("unsupported operator"), cost.PlannedPeakNote);
        // Re-quantized on paper: every float matrix at int8 block-32 is 8.5 bits per weight.
        Assert.True(cost.WeightBytesAs(new WeightFormat(WeightPrecision.Int8)) < cost.WeightBytes / 3);
    }

    [Fact]
    public void PaddleOcrDet_Macs_AtTheReferenceShape()
    {
        var cost = OnnxCost.Analyze(SampleModels.Path("paddleocr-det"), new Dictionary<string, long[]> { ["x"] = [1, 3, 640, 640] }, withRuntime: false);
        Assert.InRange(cost.Macs!.Value, 2_295_000_000, 2_305_000_000);
    }

    [Fact]
    public void BadShapes_AreExplained()
    {
        var model = Chain(2, 8);
        Assert.Contains("no input named 'y'; inputs: x", Assert.Throws<PlanningException>(() => OnnxCost.Analyze(model, "m", new Dictionary<string, long[]> { ["y"] = [1, 8] })).Message);
        Assert.Contains("dimension 1 is fixed to 8", Assert.Throws<PlanningException>(() => OnnxCost.Analyze(model, "m", new Dictionary<string, long[]> { ["x"] = [1, 9] })).Message);
        Assert.Contains("has rank 2", Assert.Throws<PlanningException>(() => OnnxCost.Analyze(model, "m", new Dictionary<string, long[]> { ["x"] = [8] })).Message);
    }

    [Fact]
    public void Budget_ForAnOnnxModel_UsesTheRuntimePlanAndNoKvCache()
    {
        var model = Chain(4, 256);
        var cost = OnnxCost.Analyze(model, "chain", new Dictionary<string, long[]> { ["x"] = [8, 256] });
        var device = DeviceCatalog.BuiltIn.Single(d => d.Name == "raspberry-pi-5-8gb");
        var r = Budget.Estimate(cost, new BudgetOptions { Device = device });
        Assert.Equal(0, r.KvCacheBytes);
        Assert.Equal(cost.PlannedPeakBytes, r.ActivationBytes);
        Assert.Equal(cost.WeightBytes + cost.PlannedPeakBytes, r.TotalBytes);
        Assert.True(r.Fits);
        Assert.Null(r.DecodeTokensPerSecond);
        Assert.Contains("runtime's memory plan", r.ActivationSource);
    }
}
