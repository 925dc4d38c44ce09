using System.Runtime.CompilerServices;
using OnDevice.Runtime.Kernels.LinearAlgebra;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Tests;

/// <summary>Kernels keep small work on one thread; the tests use small shapes, so they drop those thresholds to make every
/// test that runs with two threads actually take the threaded paths (work splitting, per-worker scratch).</summary>
internal static class ThreadingThresholds
{
    [ModuleInitializer]
    internal static void SplitEverything()
    {
        Gemm.ParallelThresholdMacs = 1;
        PackedWeights.MinWorkPerWorker = 1;
    }
}
