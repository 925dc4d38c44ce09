namespace OnDevice.Runtime.Planning;

/// <summary>A value that needs memory during a run: its size and the steps between its definition and last use.</summary>
public readonly record struct BufferRequest(int Value, long Bytes, int FirstStep, int LastStep);

/// <summary>Where each planned value lives in the arena, and the arena's size.</summary>
public sealed class MemoryPlan
{
    internal MemoryPlan(long[] offsets, long[] sizes, long arenaBytes)
    {
        Offsets = offsets;
        Sizes = sizes;
        ArenaBytes = arenaBytes;
    }

    /// <summary>Arena offset per value index, or -1 for values allocated dynamically.</summary>
    public long[] Offsets { get; }

    /// <summary>Planned bytes per value index.</summary>
    public long[] Sizes { get; }

    /// <summary>The arena size: the planned peak activation memory of one run.</summary>
    public long ArenaBytes { get; }

    /// <summary>Sum of all planned value sizes (what a planner without reuse would need).</summary>
    public long TotalBytes => Sizes.Sum();
}

/// <summary>
/// Assigns arena offsets so that values whose lifetimes overlap never share bytes. Greedy by size: the largest
/// values are placed first, each at the lowest 64-byte-aligned offset that does not collide with an already
/// placed value alive at the same time (the strategy TFLite's arena planner uses).
/// </summary>
public static class MemoryPlanner
{
    /// <summary>Alignment of every planned buffer, in bytes (a cache line and a Vector512).</summary>
    public const int AlignmentBytes = 64;

    /// <summary>Plans <paramref name="requests"/> over <paramref name="valueCount"/> values.</summary>
    public static MemoryPlan Plan(int valueCount, IReadOnlyList<BufferRequest> requests)
    {
        var offsets = Enumerable.Repeat(-1L, valueCount).ToArray();
        var sizes = new long[valueCount];
        var placed = new List<(long Offset, long End, int First, int Last)>();
        long arena = 0;
        foreach (var r in requests.OrderByDescending(r => r.Bytes).ThenBy(r => r.FirstStep))
        {
            long size = Align(Math.Max(r.Bytes, 1));
            var conflicts = placed.Where(p => p.First <= r.LastStep && r.FirstStep <= p.Last).OrderBy(p => p.Offset).ToList();
            long offset = 0;
            foreach (var c in conflicts)
            {
                if (offset + size <= c.Offset) break;
                offset = Math.Max(offset, c.End);
            }
            placed.Add((offset, offset + size, r.FirstStep, r.LastStep));
            offsets[r.Value] = offset;
            sizes[r.Value] = r.Bytes;
            arena = Math.Max(arena, offset + size);
        }
        return new MemoryPlan(offsets, sizes, arena);
    }

    /// <summary>Rounds up to <see cref="AlignmentBytes"/>.</summary>
    public static long Align(long bytes) => (bytes + AlignmentBytes - 1) / AlignmentBytes * AlignmentBytes;
}
