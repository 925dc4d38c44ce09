using OnDevice.Core;

namespace OnDevice.Runtime.Kernels.ControlFlow;

/// <summary>Control flow: <c>If</c>.</summary>
internal static class ControlFlowKernels
{
    public static void Register(KernelRegistry r)
    {
        r.Add("If", 1, TypeSets.Bool, ctx => new IfKernel(ctx));
    }

    /// <summary>Runs the then- or else-branch, feeding each the outer values it reads, and copies its outputs out.</summary>
    private sealed class IfKernel : IKernel
    {
        private readonly Branch _then;
        private readonly Branch _else;

        public IfKernel(KernelBuildContext ctx)
        {
            var node = ctx.Node;
            var implicitInputs = GraphAlgorithms.ImplicitInputs(node).ToList();
            Branch Compile(string attr)
            {
                var g = node.Attr(attr)?.AsGraph() ?? throw new ArgumentException($"If node has no {attr}");
                var captured = GraphAlgorithms.FreeValues(g);
                var sub = ctx.CompileSubgraph(g, captured);
                if (g.Outputs.Count != node.Outputs.Count)
                    throw new ArgumentException($"{attr} has {g.Outputs.Count} outputs but the If node has {node.Outputs.Count}");
                return new Branch(sub, captured.Select(c => node.Inputs.Count + implicitInputs.IndexOf(c)).ToArray());
            }
            _then = Compile("then_branch");
            _else = Compile("else_branch");
        }

        public void Execute(KernelContext ctx)
        {
            var cond = ctx.Required(0);
            if (cond.Length != 1) throw new InvalidOperationException($"If condition must have one element, has {cond.Length}");
            var b = cond.Span<byte>()[0] != 0 ? _then : _else;
            var captured = b.CapturedSlots.Select(ctx.Required).ToArray();
            b.Graph.Run(ctx.Run, [], captured, outs =>
            {
                for (int i = 0; i < outs.Length; i++)
                {
                    var o = ctx.Output(i, outs[i].DType, (int[])outs[i].Shape.Clone());
                    outs[i].Memory.Span.CopyTo(o.Memory.Span);
                }
            });
        }

        private sealed record Branch(Subgraph Graph, int[] CapturedSlots);
    }
}
