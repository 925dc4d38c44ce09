using OnDevice.Core;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Kernels.LinearAlgebra;

/// <summary>Helpers shared by GEMM-based kernels: pinned weight buffers packed once at session creation, aligned scratch.</summary>
internal static unsafe class PackedWeights
{
    /// <summary>A pinned, uninitialized float array (its address never changes, so kernels may use it without fixing).</summary>
    public static float[] Pinned(int floats) => GC.AllocateUninitializedArray<float>(Math.Max(1, floats), pinned: true);

    /// <summary>Address of a pinned array from <see cref="Pinned"/> (valid for the array's lifetime).</summary>
    public static float* Address(float[] pinned) =>
        (float*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(pinned));

    /// <summary>Packs B[K, N] given as a float32 IR tensor region (row-major, or transposed) into GEMM panels.</summary>
    public static float[] PackB(ReadOnlySpan<float> b, int k, int n, bool transposed, float scale)
    {
        var packed = Pinned(Gemm.PackedBSize(k, n));
        fixed (float* src = b)
        fixed (float* dst = packed)
            Gemm.PackB(src, k, n, transposed ? 1 : n, transposed ? k : 1, scale, dst);
        return packed;
    }

    /// <summary>Packs A[M, K] (row-major, or transposed) into GEMM panels.</summary>
    public static float[] PackA(ReadOnlySpan<float> a, int m, int k, bool transposed, float scale)
    {
        var packed = Pinned(Gemm.PackedASize(m, k));
        fixed (float* src = a)
        fixed (float* dst = packed)
            Gemm.PackA(src, m, k, transposed ? 1 : k, transposed ? m : 1, scale, dst);
        return packed;
    }

    /// <summary>The constant float32 values of input <paramref name="i"/>, or null when it is not a constant.</summary>
    public static Tensor? FloatConstant(KernelBuildContext ctx, int i) =>
        ctx.Constant(i) is { DType: DType.Float32 } t ? t : null;

    /// <summary>Int dimensions of an IR tensor.</summary>
    public static int[] Dims(Tensor t) => t.Dims.Select(d => checked((int)d)).ToArray();

    /// <summary>First 64-byte aligned float in a scratch block obtained with <see cref="ScratchBytes"/>.</summary>
    public static float* Align(byte* p) => (float*)(((nint)p + 63) & ~(nint)63);

    /// <summary>Bytes to request from <see cref="KernelContext.Scratch"/> for <paramref name="floats"/> aligned floats.</summary>
    public static int ScratchBytes(long floats) => checked((int)(floats * sizeof(float) + 64));

    /// <summary>Rounds a float count up to a whole number of 64-byte lines (so carved regions stay aligned).</summary>
    public static long Lines(long floats) => (floats + 15) / 16 * 16;

    /// <summary>
    /// Runs <paramref name="body"/>(worker, begin, end) over [0, count) split into at most <see cref="KernelContext.Threads"/>
    /// contiguous ranges; the worker index (0-based, below the number of ranges) selects per-worker scratch.
    /// </summary>
    public static void ForWorkers(KernelContext ctx, int count, int minChunk, Action<int, int, int> body)
    {
        if (count <= 0) return;
        int workers = Math.Max(1, Math.Min(ctx.Threads, count / Math.Max(1, minChunk)));
        if (workers == 1)
        {
            body(0, 0, count);
            return;
        }
        ctx.ParallelFor(workers, (w0, w1) =>
        {
            for (int w = w0; w < w1; w++)
                body(w, (int)((long)count * w / workers), (int)((long)count * (w + 1) / workers));
        });
    }

    /// <summary>Smallest share of work (multiply-adds or element operations) worth a thread of its own. Tests lower it
    /// so small shapes exercise the threaded paths.</summary>
    internal static long MinWorkPerWorker = 1 << 18;

    /// <summary>minChunk for <see cref="ForWorkers"/> when each item costs <paramref name="workPerItem"/> operations.</summary>
    public static int ChunkFor(long workPerItem) => (int)Math.Clamp(MinWorkPerWorker / Math.Max(1, workPerItem), 1, int.MaxValue);

    /// <summary>Workers <see cref="ForWorkers"/> will use.</summary>
    public static int Workers(KernelContext ctx, int count, int minChunk) =>
        count <= 0 ? 1 : Math.Max(1, Math.Min(ctx.Threads, count / Math.Max(1, minChunk)));
}
