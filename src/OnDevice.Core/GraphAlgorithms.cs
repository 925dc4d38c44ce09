namespace OnDevice.Core;

/// <summary>Where a value is consumed: the node and the input slot.</summary>
public readonly record struct Use(Node Node, int InputIndex);

/// <summary>Producer and consumer look-ups for one graph, built once. Rebuild after editing the graph.</summary>
public sealed class GraphIndex
{
    private readonly Dictionary<string, Node> _producers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<Use>> _consumers = new(StringComparer.Ordinal);
    private readonly Dictionary<Node, IReadOnlyList<string>> _implicit = new(ReferenceEqualityComparer.Instance);

    /// <summary>Indexes <paramref name="graph"/>.</summary>
    public GraphIndex(Graph graph)
    {
        Graph = graph;
        foreach (var n in graph.Nodes)
        {
            foreach (var o in n.Outputs)
                if (o.Length > 0) _producers.TryAdd(o, n);
            for (int i = 0; i < n.Inputs.Count; i++)
                if (n.Inputs[i].Length > 0) ConsumersOf(n.Inputs[i]).Add(new Use(n, i));
            var captured = GraphAlgorithms.ImplicitInputs(n);
            _implicit[n] = captured;
            foreach (var c in captured) ConsumersOf(c).Add(new Use(n, -1));
        }
    }

    /// <summary>The indexed graph.</summary>
    public Graph Graph { get; }

    /// <summary>The node that produces <paramref name="value"/>, or null (graph input, initializer or outer scope).</summary>
    public Node? Producer(string value) => _producers.GetValueOrDefault(value);

    /// <summary>Every use of <paramref name="value"/>; input index -1 marks a use inside a node's subgraph.</summary>
    public IReadOnlyList<Use> Consumers(string value) =>
        _consumers.TryGetValue(value, out var l) ? l : [];

    /// <summary>Outer-scope values that a node's subgraphs read.</summary>
    public IReadOnlyList<string> ImplicitInputs(Node node) => _implicit[node];

    private List<Use> ConsumersOf(string name)
    {
        if (!_consumers.TryGetValue(name, out var l)) _consumers[name] = l = [];
        return l;
    }
}

/// <summary>Graph utilities: topological order, implicit (captured) inputs of subgraphs.</summary>
public static class GraphAlgorithms
{
    /// <summary>Names read by a node's subgraphs that none of those subgraphs define (captured from outer scopes).</summary>
    public static IReadOnlyList<string> ImplicitInputs(Node node)
    {
        var result = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var g in node.Subgraphs)
            foreach (var name in FreeValues(g))
                if (seen.Add(name)) result.Add(name);
        return result;
    }

    /// <summary>Values a graph reads (including through its own subgraphs) that it does not define.</summary>
    public static IReadOnlyList<string> FreeValues(Graph graph)
    {
        var defined = new HashSet<string>(StringComparer.Ordinal);
        foreach (var i in graph.Inputs) defined.Add(i.Name);
        foreach (var k in graph.Initializers.Keys) defined.Add(k);
        foreach (var n in graph.Nodes)
            foreach (var o in n.Outputs)
                if (o.Length > 0) defined.Add(o);
        var free = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        void Use(string name)
        {
            if (name.Length > 0 && !defined.Contains(name) && seen.Add(name)) free.Add(name);
        }
        foreach (var n in graph.Nodes)
        {
            foreach (var i in n.Inputs) Use(i);
            foreach (var i in ImplicitInputs(n)) Use(i);
        }
        foreach (var o in graph.Outputs) Use(o.Name);
        return free;
    }

    /// <summary>
    /// Nodes in an order where every node comes after the producers of its inputs (including values its
    /// subgraphs capture). Stable: keeps file order where dependencies allow. Throws
    /// <see cref="GraphCycleException"/> naming the nodes on a cycle.
    /// </summary>
    public static IReadOnlyList<Node> TopologicalOrder(Graph graph)
    {
        var nodes = graph.Nodes;
        var producer = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < nodes.Count; i++)
            foreach (var o in nodes[i].Outputs)
                if (o.Length > 0) producer.TryAdd(o, i);

        var indegree = new int[nodes.Count];
        var dependents = new List<int>[nodes.Count];
        for (int i = 0; i < nodes.Count; i++) dependents[i] = [];
        for (int i = 0; i < nodes.Count; i++)
        {
            var deps = new HashSet<int>();
            foreach (var name in nodes[i].Inputs.Concat(ImplicitInputs(nodes[i])))
                if (name.Length > 0 && producer.TryGetValue(name, out int p)) deps.Add(p);
            foreach (int p in deps)
            {
                dependents[p].Add(i);
                indegree[i]++;
            }
        }

        // A min-heap on the original position keeps file order when several nodes are ready.
        var ready = new PriorityQueue<int, int>();
        for (int i = 0; i < nodes.Count; i++)
            if (indegree[i] == 0) ready.Enqueue(i, i);
        var order = new List<Node>(nodes.Count);
        while (ready.TryDequeue(out int i, out _))
        {
            order.Add(nodes[i]);
            foreach (int d in dependents[i])
                if (--indegree[d] == 0) ready.Enqueue(d, d);
        }
        if (order.Count != nodes.Count)
        {
            var stuck = Enumerable.Range(0, nodes.Count).Where(i => indegree[i] > 0).Select(i => nodes[i]).ToList();
            throw new GraphCycleException(graph, stuck);
        }
        return order;
    }
}

/// <summary>Thrown when a graph's nodes depend on each other in a cycle.</summary>
public sealed class GraphCycleException(Graph graph, IReadOnlyList<Node> nodes)
    : Exception($"graph '{graph.Name}' has a cycle through {nodes.Count} node(s): {string.Join(", ", nodes.Take(5).Select(n => n.Label))}{(nodes.Count > 5 ? ", ..." : "")}")
{
    /// <summary>Nodes that are on, or wait on, the cycle.</summary>
    public IReadOnlyList<Node> Nodes { get; } = nodes;
}
