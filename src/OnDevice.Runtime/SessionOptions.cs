namespace OnDevice.Runtime;

/// <summary>How an <see cref="InferenceSession"/> runs.</summary>
public sealed record SessionOptions
{
    /// <summary>Threads one run may use (default: all processors).</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;

    /// <summary>Largest planned activation memory (arena) allowed per run, in bytes; 0 = no limit.</summary>
    public long MemoryLimitBytes { get; init; }

    /// <summary>Record time per node and per op type.</summary>
    public bool Profiling { get; init; }

    /// <summary>Apply graph optimizations (constant folding, fusions). Default true.</summary>
    public bool Optimize { get; init; } = true;

    /// <summary>Default options.</summary>
    public static SessionOptions Default { get; } = new();
}

/// <summary>The planned activation memory of a run would exceed <see cref="SessionOptions.MemoryLimitBytes"/>.</summary>
public sealed class MemoryLimitExceededException(long plannedPeakBytes, long limitBytes, string signature)
    : Exception($"planned peak activation memory {plannedPeakBytes:N0} bytes for inputs {signature} exceeds the session limit of {limitBytes:N0} bytes")
{
    /// <summary>The planned peak.</summary>
    public long PlannedPeakBytes { get; } = plannedPeakBytes;
    /// <summary>The limit.</summary>
    public long LimitBytes { get; } = limitBytes;
}

/// <summary>Inputs given to <c>InferenceSession.Run</c> do not match the model.</summary>
public sealed class InvalidInputException(string message) : ArgumentException(message);
