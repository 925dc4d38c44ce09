using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace OnDevice.Runtime.Llm;

/// <summary>
/// Splits the rows of one weight-matrix product over a fixed set of threads. Decoding issues about 7 products per layer
/// per token (155 for a 22-layer model), so the cost of starting each one matters: the workers here spin for a short
/// while after each product and only then block, and chunks of rows are claimed with one atomic operation, so a product
/// starts in well under a microsecond instead of the ~10 µs of a Parallel.For. The calling thread works too. One set of
/// workers per thread count is shared by every engine of the process; concurrent callers take turns.
/// </summary>
internal sealed unsafe class RowWorkers
{
    private static readonly Dictionary<int, RowWorkers> Pools = [];

    /// <summary>The shared workers for <paramref name="threads"/> threads (the caller counts as one).</summary>
    public static RowWorkers For(int threads)
    {
        lock (Pools)
        {
            if (!Pools.TryGetValue(threads, out var w)) Pools[threads] = w = new RowWorkers(threads);
            return w;
        }
    }

    // Spin this long for the next product before blocking (a decode step issues one every few tens of microseconds).
    private static readonly long SpinTicks = Stopwatch.Frequency / 2000;

    private readonly object _turn = new(), _sleep = new();
    private long _state; // generation << 32 | next chunk to claim
    private int _done, _sleepers;
    private WeightMatrix? _w;
    private LlmActivations? _x;
    private float* _y;
    private int _ldy, _rows, _chunks;
    private ExceptionDispatchInfo? _error;

    /// <summary>Threads working on each product, the caller included.</summary>
    public int Threads { get; }

    private RowWorkers(int threads)
    {
        Threads = threads;
        for (int i = 1; i < threads; i++) new Thread(Loop) { IsBackground = true, Name = $"ondevice-llm-{i}" }.Start();
    }

    /// <summary>y = W·x for rows [0, <paramref name="rows"/>) in <paramref name="chunks"/> pieces of whole 16-row groups.</summary>
    public void Run(WeightMatrix w, LlmActivations x, float* y, int ldy, int rows, int chunks)
    {
        lock (_turn)
        {
            _w = w; _x = x; _y = y; _ldy = ldy; _rows = rows; _chunks = chunks; _error = null;
            Volatile.Write(ref _done, 0);
            long gen = (Volatile.Read(ref _state) >> 32) + 1;
            Interlocked.Exchange(ref _state, gen << 32);
            if (Volatile.Read(ref _sleepers) > 0) lock (_sleep) Monitor.PulseAll(_sleep);
            Work(gen);
            var spin = new SpinWait();
            while (Volatile.Read(ref _done) < chunks) spin.SpinOnce(-1);
            _w = null; _x = null;
            _error?.Throw();
        }
    }

    private int Bound(int chunk) => (int)Math.Min(_rows, ((long)_rows * chunk / _chunks + 15) & ~15L);

    private void Work(long gen)
    {
        while (true)
        {
            long s = Volatile.Read(ref _state);
            if (s >> 32 != gen) return;
            int c = (int)(s & 0xFFFFFFFF);
            if (c >= _chunks) return;
            if (Interlocked.CompareExchange(ref _state, s + 1, s) != s) continue;
            try
            {
                int r0 = Bound(c), r1 = Bound(c + 1);
                if (r1 > r0) _w!.Multiply(_x!, _y, _ldy, r0, r1);
            }
            catch (Exception e) { _error = ExceptionDispatchInfo.Capture(e); }
            Interlocked.Increment(ref _done);
        }
    }

    private void Loop()
    {
        long seen = 0;
        while (true)
        {
            long start = Stopwatch.GetTimestamp();
            long gen;
            var spin = new SpinWait();
            while ((gen = Volatile.Read(ref _state) >> 32) == seen)
            {
                // SpinWait yields the core now and then, so a loaded machine's other threads (ours included) still run.
                if (Stopwatch.GetTimestamp() - start < SpinTicks) { spin.SpinOnce(-1); continue; }
                lock (_sleep)
                {
                    Interlocked.Increment(ref _sleepers);
                    while (Volatile.Read(ref _state) >> 32 == seen) Monitor.Wait(_sleep);
                    Interlocked.Decrement(ref _sleepers);
                }
            }
            seen = gen;
            Work(gen);
        }
    }
}
