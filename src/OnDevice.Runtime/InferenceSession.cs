using OnDevice.Core;
using OnDevice.Formats.Onnx;
using OnDevice.Runtime.Kernels;
using OnDevice.Runtime.Optimizer;

namespace OnDevice.Runtime;

/// <summary>
/// Runs an ONNX model on the CPU. Create once, run many times; <c>Run</c> may be called from several
/// threads at once (kernels are stateless, memory plans are cached per input signature, and each run rents its
/// own arena). Every node is checked at creation: an operator no kernel supports fails here with
/// <see cref="UnsupportedOperatorException"/>, never mid-run.
/// </summary>
public sealed class InferenceSession
{
    private readonly Subgraph _main;
    private readonly Dictionary<string, int> _inputIndex;
    private readonly HashSet<string> _withDefault;
    private readonly ScratchPool _scratch = new();

    /// <summary>Loads a model file and builds a session.</summary>
    public static InferenceSession Load(string path, SessionOptions? options = null) =>
        new(OnnxReader.Read(path), options);

    /// <summary>Builds a session for <paramref name="model"/> (the model itself is not modified).</summary>
    public InferenceSession(Model model, SessionOptions? options = null)
    {
        Options = options ?? SessionOptions.Default;
        if (Options.Threads < 1) throw new ArgumentOutOfRangeException(nameof(options), "Threads must be at least 1");
        var graph = model.Graph.Clone();
        foreach (var v in graph.Inputs.Concat(graph.Outputs))
            if (v.Type is { } t and not TensorTypeInfo)
                throw new NotSupportedException($"graph {(graph.Inputs.Contains(v) ? "input" : "output")} '{v.Name}' is {t}; the runtime computes on tensors only");
        ConstantLifting.Lift(graph);
        long opset = model.OpsetVersion("") ?? 1;
        var opsets = model.OpsetImports.GroupBy(o => o.Domain is "ai.onnx" ? "" : o.Domain).ToDictionary(g => g.Key, g => g.Max(o => o.Version));
        if (Options.Optimize) GraphOptimizer.Optimize(graph, opset, KernelRegistry.Default);
        _main = new Subgraph(graph, opset, opsets, [], Options, KernelRegistry.Default, null);

        _withDefault = new HashSet<string>(graph.Initializers.Keys, StringComparer.Ordinal);
        Inputs = graph.Inputs.Where(i => !_withDefault.Contains(i.Name)).ToList();
        Outputs = graph.Outputs.ToList();
        _inputIndex = graph.Inputs.Select((v, i) => (v.Name, i)).ToDictionary(x => x.Name, x => x.i, StringComparer.Ordinal);
        Model = model;
        OptimizedGraph = graph;
    }

    /// <summary>The options in force.</summary>
    public SessionOptions Options { get; }

    /// <summary>The model as given.</summary>
    public Model Model { get; }

    /// <summary>The graph that actually runs (after constant lifting and optimizations).</summary>
    public Graph OptimizedGraph { get; }

    /// <summary>Inputs the caller must provide.</summary>
    public IReadOnlyList<ValueInfo> Inputs { get; }

    /// <summary>Outputs every run returns.</summary>
    public IReadOnlyList<ValueInfo> Outputs { get; }

    /// <summary>Runs the model. Inputs by name; returns every output by name (owned copies).</summary>
    public IReadOnlyDictionary<string, Tensor> Run(IReadOnlyDictionary<string, Tensor> inputs) => Run(inputs, null);

    /// <summary>
    /// Runs the model and calls <paramref name="observe"/> with every intermediate value as it is produced (name as in
    /// the optimized graph, see <see cref="OptimizedGraph"/>): for calibration and per-layer error measurement. The
    /// buffer is only valid during the call (it may live in the run's arena); copy what you keep. Values that
    /// optimizations fused away are not observed — build the session with <c>Optimize = false</c> to see every one.
    /// </summary>
    public IReadOnlyDictionary<string, Tensor> Run(IReadOnlyDictionary<string, Tensor> inputs, Action<string, TensorBuffer>? observe)
    {
        var buffers = Bind(inputs);
        using var run = new RunState(Options.Threads, _scratch) { Observer = observe };
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        _main.Run(run, buffers, [], outs =>
        {
            for (int i = 0; i < outs.Length; i++) result[Outputs[i].Name] = outs[i].ToTensor(Outputs[i].Name);
        });
        LastRunPeakArenaBytes = run.PeakArenaBytes;
        return result;
    }

    /// <summary>Convenience for single-input models.</summary>
    public IReadOnlyDictionary<string, Tensor> Run(string inputName, Tensor input) =>
        Run(new Dictionary<string, Tensor> { [inputName] = input });

    /// <summary>Arena bytes the most recent run held at its peak (main graph plus subgraphs). Informational; racy across threads.</summary>
    public long LastRunPeakArenaBytes { get; private set; }

    /// <summary>Planned peak activation memory (the arena) of the main graph for inputs of these shapes.</summary>
    public long PlannedPeakBytes(IReadOnlyDictionary<string, Tensor> inputs) =>
        _main.PlanFor(BindValues(inputs)).Plan.ArenaBytes;

    private TensorBuffer?[] BindValues(IReadOnlyDictionary<string, Tensor> inputs)
    {
        var values = new TensorBuffer?[_main.ValueIndex.Count];
        Array.Copy(_main.Constants, values, values.Length);
        var bound = Bind(inputs);
        for (int i = 0; i < bound.Length; i++)
            if (bound[i] is { } b) values[_main.InputValues[i]] = b;
        return values;
    }

    private TensorBuffer?[] Bind(IReadOnlyDictionary<string, Tensor> inputs)
    {
        var graph = _main.Graph;
        var buffers = new TensorBuffer?[graph.Inputs.Count];
        foreach (var (name, tensor) in inputs)
        {
            if (!_inputIndex.TryGetValue(name, out int i))
                throw new InvalidInputException($"unknown input '{name}'; the model's inputs are {ExpectedInputs()}");
            var decl = graph.Inputs[i];
            if (decl.TensorType is { } tt)
            {
                if (tt.ElementType != DType.Undefined && tt.ElementType != tensor.DType)
                    throw new InvalidInputException($"input '{name}' is {tensor.DType.Name()}{Shape.Of(tensor.Dims)} but the model expects {tt}; inputs: {ExpectedInputs()}");
                if (tt.Shape is { } s)
                {
                    if (s.Rank != tensor.Dims.Length)
                        throw new InvalidInputException($"input '{name}' has rank {tensor.Dims.Length} ({Shape.Of(tensor.Dims)}) but the model expects rank {s.Rank} ({s}); inputs: {ExpectedInputs()}");
                    for (int d = 0; d < s.Rank; d++)
                        if (s[d].IsKnown && s[d].Value != tensor.Dims[d])
                            throw new InvalidInputException($"input '{name}' dimension {d} is {tensor.Dims[d]} but the model fixes it to {s[d].Value} ({s}); inputs: {ExpectedInputs()}");
                }
            }
            buffers[i] = TensorBuffer.Wrap(tensor);
        }
        var missing = Inputs.Where(v => buffers[_inputIndex[v.Name]] is null).Select(v => v.Name).ToList();
        if (missing.Count > 0)
            throw new InvalidInputException($"missing input{(missing.Count > 1 ? "s" : "")} {string.Join(", ", missing.Select(m => $"'{m}'"))}; the model's inputs are {ExpectedInputs()}");
        return buffers;
    }

    private string ExpectedInputs() => string.Join(", ", Inputs.Select(i => $"{i.Name}: {i.Type?.ToString() ?? "?"}"));

    /// <summary>
    /// Time per node and per op type accumulated over runs (requires <see cref="SessionOptions.Profiling"/>).
    /// Nodes inside subgraphs are listed with their path (e.g. <c>If_0/then_branch/Conv_3</c>); control-flow nodes
    /// count only the time not spent in their subgraphs, so op types add up to the run time.
    /// </summary>
    public ProfileReport GetProfile()
    {
        var p = _main.Profile ?? throw new InvalidOperationException("profiling is off; create the session with SessionOptions { Profiling = true }");
        double toMs = 1000.0 / System.Diagnostics.Stopwatch.Frequency;
        long runs = Math.Max(1, p.Runs);
        var nodes = new List<NodeProfile>();
        void Collect(Subgraph g, string prefix)
        {
            var prof = g.Profile!;
            foreach (var s in g.Steps)
            {
                double ms = prof.Ticks[s.Index] * toMs / runs;
                foreach (var (owner, child) in g.Children.Where(c => ReferenceEquals(c.Owner, s.Node)))
                {
                    ms -= child.Profile!.RunTicks * toMs / runs;
                    Collect(child, $"{prefix}{s.Node.Name}/{child.Graph.Name}/");
                }
                nodes.Add(new NodeProfile(prefix + s.Node.Name, s.Node.OpType, Math.Max(0, ms)));
            }
        }
        Collect(_main, "");
        var byOp = nodes.GroupBy(n => n.OpType).Select(g => new OpProfile(g.Key, g.Count(), g.Sum(n => n.MeanMs)))
            .OrderByDescending(o => o.MeanMs).ToList();
        return new ProfileReport(p.Runs, p.RunTicks * toMs / runs, byOp, nodes);
    }
}

/// <summary>Mean time of one node per run.</summary>
public sealed record NodeProfile(string Name, string OpType, double MeanMs);

/// <summary>Mean time of all nodes of one op type per run.</summary>
public sealed record OpProfile(string OpType, int Nodes, double MeanMs);

/// <summary>Profile over <see cref="Runs"/> runs.</summary>
public sealed record ProfileReport(long Runs, double MeanRunMs, IReadOnlyList<OpProfile> ByOp, IReadOnlyList<NodeProfile> Nodes);
