using OnDevice.Core;
using OnDevice.Runtime.Planning;

namespace OnDevice.Runtime;

/// <summary>The mutable state of one run: the value table and arena of the graph executing now (a stack, for
/// subgraphs), scratch memory and the thread budget.</summary>
internal sealed unsafe class RunState(int threads, ScratchPool? pool = null) : IDisposable
{
    private readonly Stack<Frame> _frames = new();
    private byte[] _scratch = [];
    private Frame? _top;

    public int Threads { get; } = threads;

    /// <summary>Called with every value a node produces (main graph and subgraphs), while the buffer is valid.</summary>
    public Action<string, TensorBuffer>? Observer { get; init; }

    /// <summary>The frame of the graph executing now.</summary>
    public Frame Top => _top ?? throw new InvalidOperationException("no graph is running");

    /// <summary>Largest arena in use by this run (the planned peak of the main graph plus nested ones).</summary>
    public long PeakArenaBytes { get; private set; }

    private long _liveArenaBytes;

    public Frame Push(TensorBuffer?[] values, Subgraph.PlanEntry plan)
    {
        var arena = plan.Plan.ArenaBytes > 0 ? plan.RentArena() : [];
        long baseOffset = 0;
        if (arena.Length > 0)
        {
            fixed (byte* p = arena) // pinned (POH) array: the address is stable
            {
                long addr = (long)p;
                baseOffset = (MemoryPlanner.AlignmentBytes - addr % MemoryPlanner.AlignmentBytes) % MemoryPlanner.AlignmentBytes;
            }
        }
        var f = new Frame(values, plan, arena, (int)baseOffset, _top);
        _frames.Push(f);
        _top = f;
        _liveArenaBytes += plan.Plan.ArenaBytes;
        PeakArenaBytes = Math.Max(PeakArenaBytes, _liveArenaBytes);
        return f;
    }

    public void Pop(Frame f)
    {
        var top = _frames.Pop();
        if (!ReferenceEquals(top, f)) throw new InvalidOperationException("run frames popped out of order");
        _liveArenaBytes -= f.Plan.Plan.ArenaBytes;
        if (f.Arena.Length > 0) f.Plan.Return(f.Arena);
        _top = f.Parent;
    }

    /// <summary>A buffer for value <paramref name="value"/>: its arena slot when planned and big enough, else fresh memory.</summary>
    public static TensorBuffer AllocateValue(Frame f, int value, DType dtype, int[] shape)
    {
        long need = dtype.ByteCount(TensorBuffer.CheckedLength(shape));
        var plan = f.Plan.Plan;
        long offset = plan.Offsets[value];
        if (offset >= 0 && need <= plan.Sizes[value])
            return new TensorBuffer(dtype, shape, f.Arena.AsMemory(f.BaseOffset + (int)offset, (int)need));
        return TensorBuffer.Allocate(dtype, shape);
    }

    /// <summary>Scratch memory valid until the current kernel returns (one kernel runs at a time per run).</summary>
    public Memory<byte> Scratch(int bytes)
    {
        if (_scratch.Length < bytes)
        {
            if (_scratch.Length == 0 && pool?.Rent(bytes) is { } pooled) _scratch = pooled;
            else
            {
                pool?.Return(_scratch);
                _scratch = GC.AllocateUninitializedArray<byte>(Math.Max(bytes, _scratch.Length * 2), pinned: true);
            }
        }
        return _scratch.AsMemory(0, bytes);
    }

    /// <summary>Hands the scratch buffer back to the session's pool for the next run.</summary>
    public void Dispose()
    {
        pool?.Return(_scratch);
        _scratch = [];
    }

    internal sealed class Frame(TensorBuffer?[] values, Subgraph.PlanEntry plan, byte[] arena, int baseOffset, Frame? parent)
    {
        public TensorBuffer?[] Values { get; } = values;
        public Subgraph.PlanEntry Plan { get; } = plan;
        public byte[] Arena { get; } = arena;
        public int BaseOffset { get; } = baseOffset;
        public Frame? Parent { get; } = parent;
    }
}

/// <summary>Scratch buffers kept between runs of one session, so kernels with large scratch (im2col) do not fault
/// fresh pages on every run.</summary>
internal sealed class ScratchPool
{
    private readonly System.Collections.Concurrent.ConcurrentBag<byte[]> _free = [];

    /// <summary>A pooled buffer of at least <paramref name="bytes"/>, or null.</summary>
    public byte[]? Rent(int bytes)
    {
        if (_free.TryTake(out var b))
        {
            if (b.Length >= bytes) return b;
            return null; // too small: drop it, the caller allocates a bigger one that will be pooled instead
        }
        return null;
    }

    /// <summary>Keeps <paramref name="buffer"/> for a later run.</summary>
    public void Return(byte[] buffer)
    {
        if (buffer.Length > 0) _free.Add(buffer);
    }
}
