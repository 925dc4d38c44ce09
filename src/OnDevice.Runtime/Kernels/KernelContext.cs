using OnDevice.Core;

namespace OnDevice.Runtime.Kernels;

/// <summary>What a kernel sees while it runs: its inputs, a way to get its outputs, scratch memory and threads.</summary>
public sealed class KernelContext
{
    private readonly RunState _run;
    private readonly RunState.Frame _frame;
    private readonly ExecutionStep _step;

    internal KernelContext(RunState run, ExecutionStep step)
    {
        _run = run;
        _frame = run.Top;
        _step = step;
    }

    /// <summary>The node being executed.</summary>
    public Node Node => _step.Node;

    /// <summary>Number of input slots (including omitted optional ones).</summary>
    public int InputCount => _step.Inputs.Length;

    /// <summary>Number of output slots.</summary>
    public int OutputCount => _step.Outputs.Length;

    /// <summary>Input <paramref name="i"/>, or null when omitted.</summary>
    public TensorBuffer? Input(int i) => i < _step.Inputs.Length && _step.Inputs[i] >= 0 ? _frame.Values[_step.Inputs[i]] : null;

    /// <summary>Input <paramref name="i"/>; throws when omitted.</summary>
    public TensorBuffer Required(int i) =>
        Input(i) ?? throw new InvalidOperationException($"node {Node.Label}: required input {i} is missing");

    /// <summary>True when output <paramref name="i"/> exists and is consumed or returned.</summary>
    public bool IsOutputUsed(int i) => i < _step.Outputs.Length && _step.Outputs[i] >= 0;

    /// <summary>Buffers passed from enclosing graphs (for control-flow kernels), by name.</summary>
    internal RunState Run => _run;

    /// <summary>Allocates output <paramref name="i"/> with the given type and shape (arena memory when planned).</summary>
    public TensorBuffer Output(int i, DType dtype, params int[] shape)
    {
        if (!IsOutputUsed(i))
            return TensorBuffer.Allocate(dtype, shape); // result discarded, but kernels may still write it
        var b = RunState.AllocateValue(_frame, _step.Outputs[i], dtype, shape);
        _frame.Values[_step.Outputs[i]] = b;
        return b;
    }

    /// <summary>Sets output <paramref name="i"/> to an existing buffer (e.g. a subgraph result or an input passed through).</summary>
    public void SetOutput(int i, TensorBuffer buffer)
    {
        if (IsOutputUsed(i)) _frame.Values[_step.Outputs[i]] = buffer;
    }

    /// <summary>Per-run scratch memory of at least <paramref name="bytes"/> bytes, valid until the kernel returns.</summary>
    public Memory<byte> Scratch(int bytes) => _run.Scratch(bytes);

    /// <summary>Threads this run may use.</summary>
    public int Threads => _run.Threads;

    /// <summary>Runs <paramref name="body"/>(begin, end) over [0, count) split into contiguous chunks, in parallel when threads allow.</summary>
    public void ParallelFor(int count, Action<int, int> body, int minChunk = 1) => Parallel2.For(count, Threads, body, minChunk);
}

/// <summary>A tiny parallel-for that splits a range into one contiguous chunk per thread (no work stealing).</summary>
public static class Parallel2
{
    /// <summary>Runs body(begin, end) over [0, count) in at most <paramref name="threads"/> chunks of at least <paramref name="minChunk"/>.</summary>
    public static void For(int count, int threads, Action<int, int> body, int minChunk = 1)
    {
        if (count <= 0) return;
        int chunks = Math.Min(threads, Math.Max(1, count / Math.Max(1, minChunk)));
        if (chunks <= 1)
        {
            body(0, count);
            return;
        }
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = chunks }, c =>
        {
            int begin = (int)((long)count * c / chunks);
            int end = (int)((long)count * (c + 1) / chunks);
            if (end > begin) body(begin, end);
        });
    }
}
