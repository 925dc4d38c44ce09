using System.CommandLine;
using System.Globalization;
using OnDevice.Core;
using OnDevice.Formats.Onnx;
using Spectre.Console;

namespace OnDevice.Cli.Verbs;

/// <summary><c>ondevice inspect MODEL</c>: what is in a model — inputs, outputs, ops, parameters, bytes, MACs.</summary>
public static class InspectVerb
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var model = new Argument<string>("model") { Description = "ONNX model file, or the name of a sample (see 'ondevice samples list')" };
        var nodes = new Option<bool>("--nodes") { Description = "Also list every node with its inputs, outputs, parameters and MACs" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of tables" };
        var shapes = new Option<string[]>("--shape")
        {
            Description = "Fix an input's shape for MAC counting, e.g. --shape x=1,3,48,320 (repeatable)",
            AllowMultipleArgumentsPerToken = false,
        };
        var cmd = new Command("inspect", "Show what is in a model: inputs, outputs, opsets, ops, parameters, weight bytes, MACs")
        {
            model, nodes, json, shapes,
        };
        cmd.SetAction(r =>
        {
            bool asJson = r.GetValue(json);
            var path = Cli.ResolveModel(r.GetValue(model)!, asJson);
            var report = Build(path, ParseShapes(r.GetValue(shapes) ?? []), r.GetValue(nodes));
            if (asJson) Cli.WriteJson(report);
            else Print(report);
            return 0;
        });
        return cmd;
    }

    /// <summary>Parses <c>name=d0,d1,...</c> specifications.</summary>
    public static Dictionary<string, long[]> ParseShapes(IEnumerable<string> specs)
    {
        var r = new Dictionary<string, long[]>(StringComparer.Ordinal);
        foreach (var s in specs)
        {
            int eq = s.LastIndexOf('=');
            if (eq <= 0) throw new CliException($"--shape '{s}' is not of the form NAME=D0,D1,...");
            var dims = s[(eq + 1)..].Split(',', StringSplitOptions.TrimEntries);
            var parsed = new long[dims.Length];
            for (int i = 0; i < dims.Length; i++)
                if (!long.TryParse(dims[i], NumberStyles.None, CultureInfo.InvariantCulture, out parsed[i]))
                    throw new CliException($"--shape '{s}': dimension '{dims[i]}' is not a non-negative integer");
            r[s[..eq]] = parsed;
        }
        return r;
    }

    /// <summary>Reads the model and computes the report.</summary>
    public static InspectReport Build(string path, IReadOnlyDictionary<string, long[]> inputShapes, bool withNodes)
    {
        var m = OnnxReader.Read(path);
        var summary = ModelSummary.Of(m);
        foreach (var name in inputShapes.Keys)
            if (!m.Graph.Inputs.Any(i => i.Name == name))
                throw new CliException($"--shape names '{name}', but the model's inputs are: {string.Join(", ", m.Graph.Inputs.Select(i => i.Name))}");
        var shapes = ShapeInference.Infer(m, inputShapes);
        var macs = MacCounter.CountAll(m.Graph, shapes.ShapeOf);
        long? totalMacs = macs.All(x => x.Macs.HasValue) ? macs.Sum(x => x.Macs!.Value) : null;
        var macsByOp = macs.Where(x => x.Macs.HasValue).GroupBy(x => x.Node.OpType)
            .ToDictionary(g => g.Key, g => g.Sum(x => x.Macs!.Value), StringComparer.Ordinal);

        List<NodeRow>? rows = null;
        if (withNodes)
        {
            var macOf = new Dictionary<Node, long?>(ReferenceEqualityComparer.Instance);
            foreach (var x in macs) macOf[x.Node] = x.Macs;
            rows = [];
            foreach (var g in m.Graph.SelfAndSubgraphs())
                foreach (var n in g.Nodes)
                {
                    long p = n is { OpType: "Constant", IsDefaultDomain: true } && ConstantLifting.ConstantValue(n) is { } t && t.DType.IsFloatingPoint() && t.ElementCount > 1 ? t.ElementCount : 0;
                    p += n.Inputs.Where(g.Initializers.ContainsKey).Select(i => g.Initializers[i]).Where(t => t.DType.IsFloatingPoint() && t.ElementCount > 1).Sum(t => t.ElementCount);
                    rows.Add(new NodeRow(n.Name, n.IsDefaultDomain ? n.OpType : $"{n.Domain}.{n.OpType}", g == m.Graph ? "" : g.Name,
                        n.Inputs, n.Outputs, p, macOf.TryGetValue(n, out var mc) ? mc : null,
                        n.Outputs.Select(o => o.Length > 0 && shapes.ShapeOf(o) is { } s ? ShapeJson(s) : null).ToList()));
                }
        }

        return new InspectReport(
            Model: Path.GetFullPath(path),
            FileBytes: new FileInfo(path).Length,
            Producer: new ProducerInfo(m.ProducerName, m.ProducerVersion),
            IrVersion: m.IrVersion,
            Opsets: m.OpsetImports.GroupBy(o => o.Domain is "ai.onnx" ? "" : o.Domain).ToDictionary(g => g.Key, g => g.Max(o => o.Version), StringComparer.Ordinal),
            Inputs: m.Graph.Inputs.Where(i => !m.Graph.Initializers.ContainsKey(i.Name)).Select(Io).ToList(),
            Outputs: m.Graph.Outputs.Select(Io).ToList(),
            Parameters: summary.Parameters,
            ParametersByDType: summary.ParametersByDType.ToDictionary(k => k.Key.Name(), k => k.Value),
            WeightBytes: summary.WeightBytes,
            WeightBytesByDType: summary.WeightBytesByDType.ToDictionary(k => k.Key.Name(), k => k.Value),
            ConstantTensors: summary.ConstantTensors,
            NodeCount: summary.NodeCount,
            Subgraphs: summary.SubgraphCount,
            Ops: summary.Ops.ToDictionary(k => k.Key, k => k.Value, StringComparer.Ordinal),
            Macs: totalMacs,
            MacsByOp: macsByOp,
            MacsUnknownNodes: macs.Count(x => !x.Macs.HasValue),
            InputShapes: inputShapes.Count > 0 ? inputShapes.ToDictionary() : null,
            Nodes: rows);
    }

    private static IoInfo Io(ValueInfo v) => v.Type switch
    {
        TensorTypeInfo t => new IoInfo(v.Name, t.ElementType.Name(), t.Shape is null ? null : ShapeJson(t.Shape)),
        null => new IoInfo(v.Name, "unknown", null),
        var other => new IoInfo(v.Name, other.ToString(), null),
    };

    /// <summary>A shape as JSON values: numbers for known sizes, strings for symbols, null for unknown.</summary>
    public static List<object?> ShapeJson(Shape s) =>
        s.Dims.Select(d => d.IsKnown ? (object?)d.Value : d.Symbol).ToList();

    private static void Print(InspectReport r)
    {
        var head = new Grid().AddColumn().AddColumn();
        head.AddRow("[bold]Model[/]", Markup.Escape($"{r.Model} ({Cli.Bytes(r.FileBytes)})"));
        head.AddRow("[bold]Producer[/]", Markup.Escape($"{r.Producer.Name} {r.Producer.Version}".Trim() is { Length: > 0 } p ? p : "(none)"));
        head.AddRow("[bold]Format[/]", Markup.Escape($"ONNX IR {r.IrVersion}; opsets {string.Join(", ", r.Opsets.Select(o => $"{(o.Key.Length == 0 ? "ai.onnx" : o.Key)} {o.Value}"))}"));
        head.AddRow("[bold]Parameters[/]", Markup.Escape($"{r.Parameters:N0} ({string.Join(", ", r.ParametersByDType.Select(k => $"{k.Key} {k.Value:N0}"))})"));
        head.AddRow("[bold]Weights[/]", Markup.Escape($"{Cli.Bytes(r.WeightBytes)} in {r.ConstantTensors} constant tensors ({string.Join(", ", r.WeightBytesByDType.Select(k => $"{k.Key} {Cli.Bytes(k.Value)}"))})"));
        head.AddRow("[bold]Nodes[/]", Markup.Escape($"{r.NodeCount:N0} in {r.Subgraphs + 1} graph(s), {r.Ops.Count} op types"));
        string macs = r.Macs is { } total
            ? $"{total:N0} ({Cli.Count(total)}MACs: {string.Join(", ", r.MacsByOp.OrderByDescending(k => k.Value).Select(k => $"{k.Key} {Cli.Count(k.Value)}"))})"
            : r.MacsUnknownNodes > 0
                ? $"unknown for {r.MacsUnknownNodes} node(s) with dynamic shapes; fix inputs with --shape NAME=D0,D1,..."
                : "0";
        head.AddRow("[bold]MACs[/]", Markup.Escape(macs));
        AnsiConsole.Write(head);

        var io = new Table().AddColumns("", "name", "dtype", "shape").Border(TableBorder.Simple);
        foreach (var i in r.Inputs) io.AddRow("input", Markup.Escape(i.Name), i.Dtype, Markup.Escape(FormatShape(i.Shape)));
        foreach (var o in r.Outputs) io.AddRow("output", Markup.Escape(o.Name), o.Dtype, Markup.Escape(FormatShape(o.Shape)));
        AnsiConsole.Write(io);

        var ops = new Table().AddColumns("op", "count", "MACs").Border(TableBorder.Simple);
        foreach (var (op, n) in r.Ops.OrderByDescending(k => k.Value).ThenBy(k => k.Key, StringComparer.Ordinal))
            ops.AddRow(Markup.Escape(op), n.ToString(CultureInfo.InvariantCulture), r.MacsByOp.TryGetValue(op, out var mc) ? Cli.Count(mc) : "");
        AnsiConsole.Write(ops);

        if (r.Nodes is { } rows)
        {
            var t = new Table().AddColumns("graph", "node", "op", "inputs", "outputs", "out shape", "params", "MACs").Border(TableBorder.Simple);
            foreach (var n in rows)
                t.AddRow(Markup.Escape(n.Graph), Markup.Escape(n.Name), Markup.Escape(n.Op), Markup.Escape(string.Join(", ", n.Inputs)),
                    Markup.Escape(string.Join(", ", n.Outputs)), Markup.Escape(string.Join("; ", n.OutputShapes.Select(FormatShape))),
                    n.Parameters > 0 ? n.Parameters.ToString("N0", CultureInfo.InvariantCulture) : "", n.Macs is { } v ? Cli.Count(v) : "");
            AnsiConsole.Write(t);
        }
    }

    private static string FormatShape(List<object?>? s) => s is null ? "?" : $"[{string.Join(",", s.Select(d => d?.ToString() ?? "?"))}]";
}

/// <summary>Producer of a model.</summary>
public sealed record ProducerInfo(string Name, string Version);

/// <summary>A graph input or output.</summary>
public sealed record IoInfo(string Name, string Dtype, List<object?>? Shape);

/// <summary>One row of <c>inspect --nodes</c>.</summary>
public sealed record NodeRow(string Name, string Op, string Graph, IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs,
    long Parameters, long? Macs, List<List<object?>?> OutputShapes);

/// <summary>What <c>ondevice inspect --json</c> prints.</summary>
public sealed record InspectReport(
    string Model, long FileBytes, ProducerInfo Producer, long IrVersion, Dictionary<string, long> Opsets,
    List<IoInfo> Inputs, List<IoInfo> Outputs, long Parameters, Dictionary<string, long> ParametersByDType,
    long WeightBytes, Dictionary<string, long> WeightBytesByDType, int ConstantTensors, int NodeCount, int Subgraphs,
    Dictionary<string, int> Ops, long? Macs, Dictionary<string, long> MacsByOp, int MacsUnknownNodes,
    Dictionary<string, long[]>? InputShapes, List<NodeRow>? Nodes);
