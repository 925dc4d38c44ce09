using OnDevice.Core;
using OnDevice.Runtime.Kernels.Elementwise;

namespace OnDevice.Runtime.Optimizer;

/// <summary>
/// A Conv whose only reader is an element-wise chain (a <c>FusedElementwise</c> node, or one supported element-wise
/// op reading it with constant other operands) becomes one <c>com.ondevice.FusedConv</c>: the chain runs on each
/// block of convolution output while it is in cache, instead of as separate passes over memory. A
/// <c>com.ondevice.BlockQuantConv</c> (<see cref="FuseBlockQuantConv"/>) takes the chain as its own <c>body</c>.
/// </summary>
internal sealed class FuseConvEpilogue : IGraphPass
{
    public string Name => "fuse-conv-epilogue";

    public int Apply(Graph graph, OptimizerContext ctx)
    {
        int fused = 0;
        var facts = ShapeInference.Infer(graph, ctx.Opset, new Dictionary<string, ValueFacts>());
        foreach (var conv in graph.Nodes.ToList())
        {
            bool blockQuant = conv is { OpType: FuseBlockQuantConv.OpType, Domain: FusedElementwiseKernels.Domain } && !conv.Attributes.ContainsKey("body");
            if (conv is not { OpType: "Conv", IsDefaultDomain: true } && !blockQuant || conv.Outputs.Count != 1) continue;
            var y = conv.Outputs[0];
            if (Rewrite.IsGraphOutput(graph, y) || Rewrite.UseCount(graph, y) != 1) continue;
            if (facts.Get(y) is not { DType: DType.Float32, Shape: { } shape }) continue;
            var reader = graph.Nodes.FirstOrDefault(n => n.Inputs.Contains(y));
            if (reader is null) continue;
            Graph body;
            if (reader is { OpType: "FusedElementwise", Domain: FusedElementwiseKernels.Domain } && reader.Inputs[0] == y)
                body = reader.Attr("body")!.AsGraph();
            else if (reader.IsDefaultDomain && ElementwiseProgram.SupportedOps.Contains(reader.OpType) && reader.Outputs.Count == 1
                     && reader.Inputs.Count(i => i == y) >= 1 && reader.Inputs.All(i => i.Length == 0 || i == y || ctx.ConstantOf(graph, i) is not null))
            {
                body = new Graph { Name = $"epilogue_{reader.Outputs[0]}" };
                body.Inputs.Add(ValueInfo.Tensor(y, DType.Float32, null));
                foreach (var i in reader.Inputs)
                    if (i.Length > 0 && i != y && !body.Initializers.ContainsKey(i)) body.Initializers.Add(i, ctx.ConstantOf(graph, i)!);
                body.Nodes.Add(reader);
                body.Outputs.Add(ValueInfo.Tensor(reader.Outputs[0], DType.Float32, null));
            }
            else continue;
            if (ElementwiseProgram.Compile(body, shape.Rank, ctx.Opset, out _) is null) continue;

            var node = new Node(blockQuant ? conv.OpType : "FusedConv", conv.Inputs, [reader.Outputs[0]], conv.Name.Length > 0 ? conv.Name + "+epilogue" : "", FusedElementwiseKernels.Domain);
            foreach (var a in conv.Attributes.Values) node.Attributes.Add(a.Name, a);
            node.With(Core.Attribute.Of("body", body)).With(Core.Attribute.Of("rank", (long)shape.Rank)).With(Core.Attribute.Of("opset", ctx.Opset));
            int at = graph.Nodes.IndexOf(conv);
            graph.Nodes.Remove(reader);
            graph.Nodes[at] = node;
            fused++;
        }
        return fused;
    }
}
