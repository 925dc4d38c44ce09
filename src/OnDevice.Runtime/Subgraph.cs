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
                (g, cap) =>
                {
                    var child = new Subgraph(g, opset, opsets, cap, options, registry, declared.All);
                    Children.Add((node, child));
                    return child;
                });
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

    /// <summary>Subgraphs compiled for this graph's control-flow nodes, with the node that runs each.</summary>
    internal List<(Node Owner, Subgraph Graph)> Children { get; } = [];

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
            var precomputed = plan.Precomputed;
            bool skipping = precomputed is not null;
            TensorBuffer?[]? recording = skipping || !plan.HasPlanConstants ? null : new TensorBuffer?[values.Length];
            foreach (var step in Steps)
            {
                if (skipping && plan.Skip[step.Index])
                {
                    if (plan.GuardShape[step.Index] is not { } expected || values[step.Inputs[0]] is { } guarded && guarded.Shape.AsSpan().SequenceEqual(expected))
                    {
                        foreach (var o in step.Outputs) if (o >= 0) values[o] = precomputed![o];
                        continue;
                    }
                    skipping = false; // a shape differs from the one these results were computed for: compute the rest
                }
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
                if (recording is not null && plan.Skip[step.Index])
                    foreach (var o in step.Outputs) if (o >= 0) recording[o] = values[o];
                if (run.Observer is { } observe)
                    foreach (var o in step.Outputs) if (o >= 0 && values[o] is { } produced) observe(ValueNames[o], produced);
            }
            if (Profile is not null) Profile.AddRun(Stopwatch.GetTimestamp() - t0);
            var outs = new TensorBuffer[OutputValues.Length];
            for (int i = 0; i < outs.Length; i++)
                outs[i] = values[OutputValues[i]] ?? throw new InvalidOperationException($"graph output '{Graph.Outputs[i].Name}' was not produced");
            consume(outs);
            // Plan constants are never placed in the arena, so the buffers of this first run can be kept as they are.
            if (recording is not null) plan.Publish(recording);
        }
        finally
        {
            run.Pop(frame);
        }
    }

    /// <summary>The plan for the given input shapes (computing and caching it on first use).</summary>
    internal PlanEntry PlanFor(TensorBuffer?[] values)
    {
        var last = _lastPlan;
        if (last is not null && last.Matches(values, InputValues, CapturedValues)) return last;
        var key = Signature(values);
        if (!_plans.TryGetValue(key, out var entry))
        {
            entry = BuildPlan(values, key);
            if (_options.MemoryLimitBytes > 0 && entry.Plan.ArenaBytes > _options.MemoryLimitBytes)
                throw new MemoryLimitExceededException(entry.Plan.ArenaBytes, _options.MemoryLimitBytes, key);
            entry = _plans.GetOrAdd(key, entry);
        }
        _lastPlan = entry;
        return entry;
    }

    private PlanEntry? _lastPlan;

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

    // Operators whose results depend on more than their inputs, or that run subgraphs: never precomputed.
    private static readonly HashSet<string> NotPlanConstant = new(StringComparer.Ordinal)
    {
        "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli", "If", "Loop", "Scan",
    };

    private PlanEntry BuildPlan(TensorBuffer?[] values, string key)
    {
        // Shapes only: the plan must hold for every run with these shapes, whatever the input values.
        var seeds = new Dictionary<string, ValueFacts>(StringComparer.Ordinal);
        foreach (var v in InputValues.Concat(CapturedValues))
            if (values[v] is { } b)
                seeds[ValueNames[v]] = new ValueFacts { DType = b.DType, Shape = Shape.Of(b.Shape.Select(d => (long)d).ToArray()) };
        var facts = ShapeInference.Infer(Graph, _opset, seeds);

        // Plan constants: initializers; Shape/Size of values whose shape follows from the input shapes (guarded at
        // run time); and deterministic nodes reading only plan constants. They are computed by the first run and
        // reused, so per-shape bookkeeping (Shape → Gather → Concat → Reshape targets) costs nothing afterwards.
        var planConst = new bool[ValueIndex.Count];
        for (int v = 0; v < planConst.Length; v++) planConst[v] = Constants[v] is not null;
        var skip = new bool[Steps.Length];
        var guard = new int[]?[Steps.Length];
        foreach (var s in Steps)
        {
            var n = s.Node;
            if (!n.IsDefaultDomain || NotPlanConstant.Contains(n.OpType) || s.Outputs.Length == 0) continue;
            bool ok;
            if (n.OpType is "Shape" or "Size")
            {
                ok = facts.ShapeOf(n.Inputs[0])?.ToArrayOrNull() is { } dims && dims.All(d => d <= int.MaxValue);
                if (ok && !planConst[s.Inputs[0]]) guard[s.Index] = facts.ShapeOf(n.Inputs[0])!.ToArray().Select(d => (int)d).ToArray();
            }
            else
                ok = s.Inputs.Length > 0 && s.Inputs.All(i => i < 0 || planConst[i]) && s.Inputs.Any(i => i >= 0);
            if (!ok) continue;
            skip[s.Index] = true;
            foreach (var o in s.Outputs) if (o >= 0) planConst[o] = true;
        }

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
            if (first[v] < 0 || Constants[v] is not null || planConst[v]) continue;
            var f = facts.Get(ValueNames[v]);
            if (f is null || f.DType is DType.Undefined or DType.String || f.Shape?.ElementCount is not { } count) continue;
            requests.Add(new BufferRequest(v, f.DType.ByteCount(count), first[v], Math.Max(last[v], first[v])));
        }
        var shapes = InputValues.Concat(CapturedValues).Select(v => values[v] is { } b ? (b.DType, (int[])b.Shape.Clone()) : ((DType, int[])?)null).ToArray();
        return new PlanEntry(MemoryPlanner.Plan(ValueIndex.Count, requests), key, skip, guard, shapes);
    }

    /// <summary>A cached memory plan, its arena pool and the plan constants computed by its first run.</summary>
    internal sealed class PlanEntry(MemoryPlan plan, string signature, bool[] skip, int[]?[] guardShape, (DType, int[])?[] inputShapes)
    {
        private readonly ConcurrentBag<byte[]> _arenas = [];
        private TensorBuffer?[]? _precomputed;

        public MemoryPlan Plan { get; } = plan;
        public string Signature { get; } = signature;

        /// <summary>Steps whose outputs are plan constants.</summary>
        public bool[] Skip { get; } = skip;

        /// <summary>For skipped Shape/Size steps on computed values: the input shape the recorded result assumes.</summary>
        public int[]?[] GuardShape { get; } = guardShape;

        public bool HasPlanConstants { get; } = skip.Any(s => s);

        /// <summary>Plan-constant buffers by value index once a run has recorded them, else null.</summary>
        public TensorBuffer?[]? Precomputed => Volatile.Read(ref _precomputed);

        public void Publish(TensorBuffer?[] recorded) => Interlocked.CompareExchange(ref _precomputed, recorded, null);

        /// <summary>True when the current inputs have exactly the shapes and types this plan was built for.</summary>
        public bool Matches(TensorBuffer?[] values, int[] inputs, int[] captured)
        {
            int k = 0;
            foreach (var list in new[] { inputs, captured })
                foreach (var v in list)
                {
                    var b = values[v];
                    var s = inputShapes[k++];
                    if (b is null != s is null) return false;
                    if (b is not null && (b.DType != s!.Value.Item1 || !b.Shape.AsSpan().SequenceEqual(s.Value.Item2))) return false;
                }
            return true;
        }

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
