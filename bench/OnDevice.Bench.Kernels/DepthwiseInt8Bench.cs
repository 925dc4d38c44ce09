using System.Diagnostics;
using System.Runtime.CompilerServices;
using OnDevice.Runtime.Kernels.Quantization;
using OnDevice.Runtime.Simd;

namespace OnDevice.Bench.Kernels;

/// <summary>
/// The integer sums of int8 depthwise layers (rec's and det's shapes, one thread, all channels of a layer): the float
/// kernel on converted bytes (<see cref="DepthwiseConv.ChannelFromBytes"/>, what QLinearConv ran before) against
/// <see cref="DepthwiseInt8.Channel"/> on each instruction path; both write the same exact float sums, checked here.
/// Usage: dotnet run -c Release --project bench/OnDevice.Bench.Kernels -- --dwint8 [--runs N] [--cpu-time]
/// </summary>
public static unsafe class DepthwiseInt8Bench
{
    private static readonly (string Model, int C, int H, int W, int K, int SH, int SW)[] Layers =
    [
        ("rec", 16, 24, 160, 3, 1, 1), ("rec", 32, 24, 160, 3, 1, 1), ("rec", 64, 24, 160, 3, 1, 1), ("rec", 64, 24, 160, 3, 2, 1),
        ("rec", 128, 12, 160, 3, 1, 1), ("rec", 128, 12, 160, 3, 1, 2), ("rec", 240, 12, 80, 5, 1, 1), ("rec", 240, 12, 80, 5, 2, 1),
        ("rec", 480, 6, 80, 5, 1, 1), ("rec", 480, 6, 80, 5, 2, 1), ("rec", 480, 3, 80, 5, 1, 1),
        ("det", 16, 320, 320, 3, 1, 1), ("det", 32, 320, 320, 3, 2, 2), ("det", 48, 160, 160, 3, 1, 1), ("det", 48, 160, 160, 3, 2, 2),
        ("det", 96, 80, 80, 3, 1, 1), ("det", 96, 80, 80, 3, 2, 2), ("det", 192, 40, 40, 5, 1, 1), ("det", 192, 40, 40, 5, 2, 2),
        ("det", 384, 20, 20, 5, 1, 1),
    ];

    public static void Run(int runs, string? only)
    {
        Console.WriteLine($"depthwise int8 sums, 1 thread, ms per layer (median of {runs}); best path {DepthwiseInt8.Best}; " +
            (LowBit.CpuTime ? "process CPU time" : "wall clock"));
        var paths = Enum.GetValues<Int8GemmPath>().Where(p => p != Int8GemmPath.Scalar && Int8Gemm.IsSupported(p)).ToArray();
        bool warm = false;
        Console.WriteLine($"{"layer",-34} {"float",8} " + string.Join(" ", paths.Select(p => $"{p,9} {"x",5}")));
        // The first layer twice: its first pass (not printed) lets every method reach its final tier.
        foreach (var l in Layers.Take(1).Concat(Layers))
        {
            if (only is not null && l.Model != only) continue;
            int pad = l.K / 2, oh = (l.H + 2 * pad - l.K) / l.SH + 1, ow = (l.W + 2 * pad - l.K) / l.SW + 1;
            var s = new DepthwiseConv.Shape(l.H, l.W, l.K, l.K, l.SH, l.SW, pad, pad, 1, 1, oh, ow);
            int taps = l.K * l.K, plane = l.H * l.W, outs = oh * ow;
            var rng = new Random(l.C * 31 + l.H);
            var x = GC.AllocateUninitializedArray<byte>(l.C * plane, pinned: true);
            rng.NextBytes(x);
            var w = new byte[l.C * taps];
            rng.NextBytes(w);
            for (int i = 0; i < w.Length; i++) if (w[i] == 0x80) w[i] = 0x81; // symmetric int8 weights
            int zx = 117;
            var wf = GC.AllocateUninitializedArray<float>(w.Length, pinned: true);
            for (int i = 0; i < w.Length; i++) wf[i] = (sbyte)w[i];
            var prepared = DepthwiseInt8.Prepare(w, true, [], l.C, l.K, l.K) ?? throw new InvalidOperationException("weights do not fit");
            var yf = GC.AllocateUninitializedArray<float>(l.C * outs, pinned: true);
            var yi = GC.AllocateUninitializedArray<float>(l.C * outs, pinned: true);
            var sf = GC.AllocateUninitializedArray<float>(s.PlaneFloats + 64, pinned: true);
            var plan = new DepthwiseInt8.Plan(s);
            var si = GC.AllocateUninitializedArray<byte>(plan.ScratchBytes + 64, pinned: true);
            string name = $"{l.Model} {l.C}x{l.H}x{l.W} {l.K}x{l.K} s[{l.SH},{l.SW}]";
            fixed (byte* px = x, psi = si)
            fixed (float* pwf = wf, pyf = yf, pyi = yi, psf = sf)
            {
                float* sfa = (float*)(((nint)psf + 63) & ~(nint)63);
                nint nx = (nint)px, nwf = (nint)pwf, nyf = (nint)pyf, nyi = (nint)pyi, nsf = (nint)sfa, nsi = (nint)psi;
                double tf = Measure(runs, reps => FloatLayer(s, l.C, (byte*)nx, zx, (float*)nwf, (float*)nyf, (float*)nsf, reps));
                var line = $"{name,-34} {tf,8:F3} ";
                foreach (var path in paths)
                {
                    new Span<float>(pyi, yi.Length).Fill(float.NaN);
                    double ti = Measure(runs, reps => IntLayer(path, plan, l.C, (byte*)nx, zx, prepared, (float*)nyi, (byte*)nsi, reps));
                    bool same = new Span<float>(pyf, yf.Length).SequenceEqual(new Span<float>(pyi, yi.Length));
                    line += $"{ti,9:F3} {tf / ti,4:F2}{(same ? " " : "!")}";
                }
                if (warm) Console.WriteLine(line);
                warm = true;
            }
        }
    }

    private static double Measure(int runs, Action<int> body)
    {
        var t = Stopwatch.StartNew();
        body(1);
        int reps = Math.Max(1, (int)(0.03 / Math.Max(1e-6, t.Elapsed.TotalSeconds)));
        body(reps);
        var results = new List<double>();
        for (int r = 0; r < runs; r++)
        {
            var cpu0 = Environment.CpuUsage.TotalTime;
            var sw = Stopwatch.StartNew();
            body(reps);
            double sec = LowBit.CpuTime ? (Environment.CpuUsage.TotalTime - cpu0).TotalSeconds : sw.Elapsed.TotalSeconds;
            results.Add(sec * 1000 / reps);
        }
        results.Sort();
        return results[results.Count / 2];
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static void FloatLayer(DepthwiseConv.Shape s, int c, byte* x, int zx, float* wf, float* y, float* scratch, int reps)
    {
        int taps = s.KH * s.KW, plane = s.H * s.W, outs = s.OH * s.OW;
        for (int r = 0; r < reps; r++)
            for (int ch = 0; ch < c; ch++)
                DepthwiseConv.ChannelFromBytes(s, x + (nint)ch * plane, false, zx, wf + ch * taps, 0f, default, y + (nint)ch * outs, scratch);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static void IntLayer(Int8GemmPath path, DepthwiseInt8.Plan plan, int c, byte* x, int zx, DepthwiseInt8.Weights w, float* y, byte* scratch, int reps)
    {
        var s = plan.Shape;
        int plane = s.H * s.W, outs = s.OH * s.OW;
        for (int r = 0; r < reps; r++)
            for (int ch = 0; ch < c; ch++)
                DepthwiseInt8.Channel(path, plan, x + (nint)ch * plane, false, zx, w, ch, y + (nint)ch * outs, scratch);
    }
}
