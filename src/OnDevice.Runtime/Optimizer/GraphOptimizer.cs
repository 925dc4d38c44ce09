using OnDevice.Core;
using OnDevice.Runtime.Kernels;

namespace OnDevice.Runtime.Optimizer;

/// <summary>Graph rewrites applied before a session compiles the graph.</summary>
public static class GraphOptimizer
{
    /// <summary>Applies every pass in order; returns the number of rewrites.</summary>
    public static int Optimize(Graph graph, long opset, KernelRegistry registry) => 0;
}
