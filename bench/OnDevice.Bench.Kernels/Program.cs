using System.Diagnostics;
using System.Runtime.CompilerServices;
using OnDevice.Runtime.Simd;

namespace OnDevice.Bench.Kernels;

/// <summary>Single-thread GEMM throughput (GFLOP/s, medians of several runs).</summary>
public static unsafe class Program
{
    public static void Main(string[] args)
    {
        int runs = 7;
        Console.WriteLine($"MR={Gemm.MR} NR={Gemm.NR} KC={Gemm.KC} MC={Gemm.MC} NC={Gemm.NC}");
        foreach (int s in new[] { 256, 512, 1024 })
            Report($"GEMM {s}x{s}x{s} prepacked B", GemmPrepacked(s, s, s, runs, 1));
        foreach (int s in new[] { 256, 512, 1024 })
            Report($"GEMM {s}x{s}x{s} prepacked B, 2 threads", GemmPrepacked(s, s, s, runs, 2));
    }

    private static void Report(string what, (double Median, double Min, double Max) g) =>
        Console.WriteLine($"{what,-50} median {g.Median,7:F1} GFLOP/s  (min {g.Min:F1}, max {g.Max:F1})");

    private static (double, double, double) GemmPrepacked(int m, int n, int k, int runs, int threads)
    {
        var rng = new Random(1);
        var a = new float[m * k];
        var b = new float[k * n];
        for (int i = 0; i < a.Length; i++) a[i] = (float)rng.NextDouble() - 0.5f;
        for (int i = 0; i < b.Length; i++) b[i] = (float)rng.NextDouble() - 0.5f;
        var pa = GC.AllocateUninitializedArray<float>(Gemm.PackedASize(m, k), pinned: true);
        var pb = GC.AllocateUninitializedArray<float>(Gemm.PackedBSize(k, n), pinned: true);
        var c = GC.AllocateUninitializedArray<float>(m * n, pinned: true);
        fixed (float* ap = a, bp = b, pap = pa, pbp = pb, cp = c)
        {
            Gemm.PackA(ap, m, k, k, 1, 1f, pap);
            Gemm.PackB(bp, k, n, n, 1, 1f, pbp);
            double flops = 2.0 * m * n * k;
            int reps = Math.Max(1, (int)(2e9 / flops));
            var results = new List<double>();
            Time(pap, pbp, m, n, k, cp, reps, threads); // warm-up (tier-up)
            Time(pap, pbp, m, n, k, cp, reps, threads);
            for (int r = 0; r < runs; r++)
            {
                double sec = Time(pap, pbp, m, n, k, cp, reps, threads);
                results.Add(flops * reps / sec / 1e9);
            }
            results.Sort();
            return (results[results.Count / 2], results[0], results[^1]);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static double Time(float* pa, float* pb, int m, int n, int k, float* c, int reps, int threads)
    {
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < reps; i++)
            Gemm.Multiply(new PrepackedB(pb, k), pa, m, n, k, c, n, false, GemmEpilogue.None, null, threads, null);
        return sw.Elapsed.TotalSeconds;
    }
}
