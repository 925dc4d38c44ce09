using OnDevice.Core;

namespace OnDevice.Runtime.Kernels.Elementwise;

/// <summary><c>com.ondevice.FusedElementwise</c>: a chain of element-wise operators (its <c>body</c> attribute) in one pass.</summary>
internal static class FusedElementwiseKernels
{
    /// <summary>The domain of OnDevice's own fused operators.</summary>
    public const string Domain = "com.ondevice";

    public static void Register(KernelRegistry r)
    {
        r.Add("FusedElementwise", 1, TypeSets.Float, ctx => new FusedElementwiseKernel(Compile(ctx)), domain: Domain,
            supports: ctx => Compile(ctx, out var why) is null ? why : null);
    }

    private static ElementwiseProgram Compile(KernelBuildContext ctx) =>
        Compile(ctx, out var why) ?? throw new NotSupportedException(why);

    private static ElementwiseProgram? Compile(KernelBuildContext ctx, out string why)
    {
        var body = ctx.Node.Attr("body")?.AsGraph();
        int rank = (int)ctx.Node.GetInt("rank", -1);
        if (body is null || rank < 0) { why = "FusedElementwise needs a body graph and the input rank"; return null; }
        return ElementwiseProgram.Compile(body, rank, ctx.Node.GetInt("opset", 17), out why);
    }

    /// <summary>Runs the program row by row (per-channel constants as scalars) or along channels, in parallel blocks.</summary>
    private sealed class FusedElementwiseKernel(ElementwiseProgram program) : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var x = ctx.Required(0);
            var y = ctx.Output(0, DType.Float32, x.Shape);
            Run(ctx, program, x, y);
        }
    }

    /// <summary>Applies <paramref name="program"/> to x (NC… layout when it has per-channel constants) writing y.</summary>
    internal static void Run(KernelContext ctx, ElementwiseProgram program, TensorBuffer x, TensorBuffer y)
    {
        int n = x.Length;
        if (n == 0) return;
        int rows, inner, channels;
        bool alongChannels = false;
        if (!program.HasPerChannelConstants)
        {
            rows = 1; inner = n; channels = 1;
        }
        else
        {
            if (x.Rank < 2) throw new InvalidOperationException($"node {ctx.Node.Label}: per-channel constants need an input of rank 2 or more, got {TensorBuffer.Format(x.Shape)}");
            channels = x.Shape[1];
            if (program.CheckChannels(channels) is { } why) throw new InvalidOperationException($"node {ctx.Node.Label}: {why}");
            inner = 1;
            for (int d = 2; d < x.Rank; d++) inner *= x.Shape[d];
            rows = n / inner;
            if (inner == 1) { alongChannels = true; inner = channels; rows = n / channels; }
        }
        // Work items: (row, block) pairs of at most BlockElements, spread over threads.
        int blocksPerRow = (inner + ElementwiseProgram.BlockElements - 1) / ElementwiseProgram.BlockElements;
        int items = rows * blocksPerRow;
        int minItems = Math.Max(1, 16384 / ElementwiseProgram.BlockElements);
        ctx.ParallelFor(items, (begin, end) => RunItems(program, x, y, begin, end, blocksPerRow, inner, channels, alongChannels), minItems);
    }

    [System.Runtime.CompilerServices.SkipLocalsInit]
    private static void RunItems(ElementwiseProgram program, TensorBuffer x, TensorBuffer y, int begin, int end, int blocksPerRow, int inner, int channels, bool alongChannels)
    {
        Span<float> scratch = stackalloc float[ElementwiseProgram.MaxSlots * ElementwiseProgram.BlockElements];
        var xs = x.Span<float>();
        var ys = y.Span<float>();
        for (int item = begin; item < end; item++)
        {
            int row = item / blocksPerRow, blk = item % blocksPerRow;
            int off = blk * ElementwiseProgram.BlockElements;
            int len = Math.Min(ElementwiseProgram.BlockElements, inner - off);
            int start = row * inner + off;
            program.Run(xs.Slice(start, len), ys.Slice(start, len), alongChannels ? 0 : row % channels, alongChannels ? off : -1, scratch);
        }
    }
}
