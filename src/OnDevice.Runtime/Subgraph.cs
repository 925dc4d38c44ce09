using System.Collections.Concurrent;
using System.Diagnostics;
using OnDevice.Core;
using OnDevice.Runtime.Kernels;
using OnDevice.Runtime.Planning;

namespace OnDevice.Runtime;

/// <summary>One node ready to execute: its kernel and the value indices it reads (explicit inputs, then captured
/// outer values) and writes.</summary>
internal sealed class ExecutionStep(Node node, IKernel kernel, int[] inputs, int[] outputs, int index)
{
    public Node Node { get; } = node;
    public IKernel Kernel { get; } = kernel;
    public int[] Inputs { get; } = inputs;
    public int[] Outputs { get; } = outputs;
    public int Index { get; } = index;
}

/// <summary>
/// A compiled graph (the main graph or an If/Loop body): kernels bound to nodes in execution order, values
/// numbered, and one memory plan per distinct input signature, computed on first use and cached.
/// Thread-safe: runs share nothing mutable but the plan cache and the arena pool.
/// </summary>
public sealed class Subgraph
{
    private readonly ConcurrentDictionary<string, PlanEntry> _plans = new(StringComparer.Ordinal);
    private readonly SessionOptions _options;
    private readonly long _opset;
    internal readonly ExecutionStep[] Steps;
    internal readonly Dictionary<string, int> ValueIndex;
    internal readonly TensorBuffer?[] Constants;
    internal readonly int[] InputValues;
    internal readonly int[] OutputValues;
    internal readonly int[] CapturedValues;
    internal readonly ProfileCounters? Profile;

    internal Subgraph(Graph graph, long opset, IReadOnlyDictionary<string, long> opsets, IReadOnlyList<string> captured,
        SessionOptions options, KernelRegistry registry, IReadOnlyDictionary<string, ValueFacts>? outerFacts)
    {
        Graph = graph;
        _options = options;
        _opset = opset;
        ValueIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        int Index(string name)
        {
            if (!ValueIndex.TryGetValue(name, out int i)) ValueIndex[name] = i = ValueIndex.Count;
            return i;
        }

        foreach (var i in graph.Inputs) Index(i.Name);
        foreach (var c in captured) Index(c);
        foreach (var k in graph.Initializers.Keys) Index(k);
        InputValues = graph.Inputs.Select(i => ValueIndex[i.Name]).ToArray();
        CapturedValues = captured.Select(c => ValueIndex[c]).ToArray();

        // Declared facts (no input shapes fixed) let kernels see dtypes and constant inputs at build time.
        var declared = ShapeInference.Infer(graph, opset, outerFacts ?? new Dictionary<string, ValueFacts>());
        var order = GraphAlgorithms.TopologicalOrder(graph);
        var steps = new List<ExecutionStep>(order.Count);
        foreach (var node in order)
        {
            long nodeOpset = node.IsDefaultDomain ? opset : opsets.GetValueOrDefault(node.Domain, 1);
            var implicitInputs = GraphAlgorithms.ImplicitInputs(node);
            var ctx = new KernelBuildContext(node, nodeOpset,
                name => graph.Initializers.GetValueOrDefault(name),
                declared.Get,
                options,
                (g, cap) => new Subgraph(g, opset, opsets, cap, options, registry, declared.All));
            var reg = registry.Resolve(ctx, out var reason)
                ?? throw new UnsupportedOperatorException(node, node.Domain, nodeOpset, reason);
            IKernel kernel;
            try { kernel = reg.Create(ctx); }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or NotSupportedException)
            {
                throw new UnsupportedOperatorException(node, node.Domain, nodeOpset, e.Message);
            }
            var inputs = node.Inputs.Select(n => n.Length == 0 ? -1 : Index(n)).Concat(implicitInputs.Select(Index)).ToArray();
            var outputs = node.Outputs.Select(n => n.Length == 0 ? -1 : Index(n)).ToArray();
            steps.Add(new ExecutionStep(node, kernel, inputs, outputs, steps.Count));
        }
        Steps = [.. steps];
        OutputValues = graph.Outputs.Select(o => Index(o.Name)).ToArray();
        Constants = new TensorBuffer?[ValueIndex.Count];
        foreach (var (k, t) in graph.Initializers) Constants[ValueIndex[k]] = TensorBuffer.Wrap(t);
        ValueNames = new string[ValueIndex.Count];
        foreach (var (k, v) in ValueIndex) ValueNames[v] = k;
        if (options.Profiling) Profile = new ProfileCounters(Steps.Length);
    }

    /// <summary>The graph this was compiled from (after optimization).</summary>
    public Graph Graph { get; }

    internal string[] ValueNames { get; }

    /// <summary>Number of nodes that execute.</summary>
    public int NodeCount => Steps.Length;

    /// <summary>
    /// Runs the graph. <paramref name="inputs"/> are in graph-input order (null = use the initializer default);
    /// <paramref name="captured"/> in the order given at compilation. <paramref name="consume"/> receives the
    /// outputs in graph-output order while the run's arena is still held: it must copy what it keeps.
    /// </summary>
    internal void Run(RunState run, IReadOnlyList<TensorBuffer?> inputs, IReadOnlyList<TensorBuffer> captured, Action<TensorBuffer[]> consume)
    {
        var values = new TensorBuffer?[ValueIndex.Count];
        Array.Copy(Constants, values, values.Length);
        for (int i = 0; i < InputValues.Length; i++)
            if (i < inputs.Count && inputs[i] is { } b) values[InputValues[i]] = b;
        for (int i = 0; i < CapturedValues.Length; i++) values[CapturedValues[i]] = captured[i];

        var plan = PlanFor(values);
        var frame = run.Push(values, plan);
        try
        {
            long t0 = Profile is null ? 0 : Stopwatch.GetTimestamp();
            foreach (var step in Steps)
            {
                for (int i = 0; i < step.Inputs.Length; i++)
                    if (step.Inputs[i] >= 0 && values[step.Inputs[i]] is null && i < step.Node.Inputs.Count)
                        throw new InvalidOperationException($"node {step.Node.Label}: input '{step.Node.Inputs[i]}' has no value");
                var ctx = new KernelContext(run, step);
                if (Profile is null) step.Kernel.Execute(ctx);
                else
                {
                    long s = Stopwatch.GetTimestamp();
                    step.Kernel.Execute(ctx);
                    Profile.Add(step.Index, Stopwatch.GetTimestamp() - s);
                }
            }
            if (Profile is not null) Profile.AddRun(Stopwatch.GetTimestamp() - t0);
            var outs = new TensorBuffer[OutputValues.Length];
            for (int i = 0; i < outs.Length; i++)
                outs[i] = values[OutputValues[i]] ?? throw new InvalidOperationException($"graph output '{Graph.Outputs[i].Name}' was not produced");
            consume(outs);
        }
        finally
        {
            run.Pop(frame);
        }
    }

    /// <summary>The planned arena bytes for the given input shapes (computing and caching the plan).</summary>
    internal PlanEntry PlanFor(TensorBuffer?[] values)
    {
        var key = Signature(values);
        if (_plans.TryGetValue(key, out var entry)) return entry;
        entry = BuildPlan(values, key);
        if (_options.MemoryLimitBytes > 0 && entry.Plan.ArenaBytes > _options.MemoryLimitBytes)
            throw new MemoryLimitExceededException(entry.Plan.ArenaBytes, _options.MemoryLimitBytes, key);
        return _plans.GetOrAdd(key, entry);
    }

    private string Signature(TensorBuffer?[] values)
    {
        var sb = new System.Text.StringBuilder();
        foreach (var v in InputValues.Concat(CapturedValues))
        {
            var b = values[v];
            sb.Append(b is null ? "-" : $"{(int)b.DType}{TensorBuffer.Format(b.Shape)}").Append(';');
        }
        return sb.ToString();
    }

    private PlanEntry BuildPlan(TensorBuffer?[] values, string key)
    {
        var seeds = new Dictionary<string, ValueFacts>(StringComparer.Ordinal);
        foreach (var v in InputValues.Concat(CapturedValues))
            if (values[v] is { } b)
                seeds[ValueNames[v]] = b.Length <= ShapeInference.MaxTrackedElements && b.DType is DType.Int64 or DType.Int32
                    ? new ValueFacts { DType = b.DType, Shape = Shape.Of(b.Shape.Select(d => (long)d).ToArray()), Ints = ReadInts(b) }
                    : new ValueFacts { DType = b.DType, Shape = Shape.Of(b.Shape.Select(d => (long)d).ToArray()) };
        var facts = ShapeInference.Infer(Graph, _opset, seeds);

        var first = new int[ValueIndex.Count];
        var last = new int[ValueIndex.Count];
        Array.Fill(first, -1);
        Array.Fill(last, -1);
        foreach (var s in Steps)
        {
            foreach (var o in s.Outputs) if (o >= 0 && first[o] < 0) first[o] = s.Index;
            foreach (var i in s.Inputs) if (i >= 0) last[i] = Math.Max(last[i], s.Index);
        }
        foreach (var o in OutputValues) last[o] = Steps.Length;
        var requests = new List<BufferRequest>();
        for (int v = 0; v < ValueIndex.Count; v++)
        {
            if (first[v] < 0 || Constants[v] is not null) continue;
            var f = facts.Get(ValueNames[v]);
            if (f is null || f.DType is DType.Undefined or DType.String || f.Shape?.ElementCount is not { } count) continue;
            requests.Add(new BufferRequest(v, f.DType.ByteCount(count), first[v], Math.Max(last[v], first[v])));
        }
        return new PlanEntry(MemoryPlanner.Plan(ValueIndex.Count, requests), key);
    }

    private static Dim[] ReadInts(TensorBuffer b) => b.DType == DType.Int64
        ? b.Span<long>().ToArray().Select(v => v >= 0 ? Dim.Of(v) : Dim.Sym($"#neg{v}")).ToArray()
        : b.Span<int>().ToArray().Select(v => v >= 0 ? Dim.Of(v) : Dim.Sym($"#neg{v}")).ToArray();

    /// <summary>A cached memory plan and its arena pool.</summary>
    internal sealed class PlanEntry(MemoryPlan plan, string signature)
    {
        private readonly ConcurrentBag<byte[]> _arenas = [];
        public MemoryPlan Plan { get; } = plan;
        public string Signature { get; } = signature;

        public byte[] RentArena() => _arenas.TryTake(out var a) ? a : GC.AllocateUninitializedArray<byte>((int)Plan.ArenaBytes + MemoryPlanner.AlignmentBytes, pinned: true);

        public void Return(byte[] arena) => _arenas.Add(arena);
    }
}

/// <summary>Per-node and per-run elapsed time, accumulated across runs.</summary>
internal sealed class ProfileCounters(int steps)
{
    public readonly long[] Ticks = new long[steps];
    public readonly long[] Calls = new long[steps];
    public long RunTicks;
    public long Runs;

    public void Add(int step, long ticks)
    {
        Interlocked.Add(ref Ticks[step], ticks);
        Interlocked.Increment(ref Calls[step]);
    }

    public void AddRun(long ticks)
    {
        Interlocked.Add(ref RunTicks, ticks);
        Interlocked.Increment(ref Runs);
    }
}
