using System.Diagnostics;
using System.Runtime.CompilerServices;
using OnDevice.Core;
using OnDevice.Runtime;
using OnDevice.Runtime.Simd;

namespace OnDevice.Bench.Kernels;

/// <summary>
/// Kernel throughput in GFLOP/s (2 FLOP per multiply-add), medians of several timed runs after warm-up.
/// Usage: dotnet run -c Release --project bench/OnDevice.Bench.Kernels [-- --threads N] [--runs N]
/// </summary>
public static unsafe class Program
{
    public static void Main(string[] args)
    {
        int threads = ArgInt(args, "--threads", 1), runs = ArgInt(args, "--runs", 7);
        string cpu = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':')[1].Trim() ?? "?"
            : "?";
        Console.WriteLine($"threads={threads} runs={runs} MR={Gemm.MR} NR={Gemm.NR} KC={Gemm.KC} MC={Gemm.MC} NC={Gemm.NC} " +
            $"cpus={Environment.ProcessorCount} ({cpu}) {System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription}");
        LowBit.CpuTime = args.Contains("--cpu-time");
        if (args.Contains("--dwint8"))
        {
            int i = Array.IndexOf(args, "--model");
            DepthwiseInt8Bench.Run(runs, i >= 0 && i + 1 < args.Length ? args[i + 1] : null);
            return;
        }
        if (args.Contains("--lowbit-conv"))
        {
            LowBit.Convs(runs, threads);
            return;
        }
        if (args.Contains("--lowbit"))
        {
            LowBit.Run(runs, threads);
            return;
        }
        foreach (int s in new[] { 256, 512, 1024 })
            Report($"GEMM {s}x{s}x{s}, B prepacked", GemmPrepacked(s, s, s, runs, threads));
        Report("GEMM 24x25600x864 (conv shape), B prepacked", GemmPrepacked(24, 25600, 864, runs, threads));
        Report("GEMM 24x25600x864 (conv shape), B packed at run time", GemmStrided(24, 25600, 864, runs, threads));
        foreach (int s in new[] { 256, 512, 1024 })
            Report($"GEMM {s}x{s}x{s}, B packed at run time", GemmStrided(s, s, s, runs, threads));
        Report("Conv 96->24 3x3 @160x160: im2col+GEMM", ConvDirect(96, 24, 160, 160, 3, runs, threads));
        Report("Conv 96->24 3x3 @160x160: padded rows, B in place, 1 thread", ConvImplicit(96, 24, 160, 160, 3, runs, threads));
        Report("Conv 96->24 3x3 @160x160: padded rows packed, 1 thread", ConvImplicit(96, 24, 160, 160, 3, runs, threads, packed: true));
        if (args.Contains("--dw"))
        {
            Report("Depthwise channel 3x3 s1 @80x80 (direct)", DepthwiseDirect(80, 80, 3, 1, runs));
            Report("Depthwise channel 5x5 s2 @80x80 (direct)", DepthwiseDirect(80, 80, 5, 2, runs));
            Report("Depthwise channel 3x3 s1 @160x160 (direct)", DepthwiseDirect(160, 160, 3, 1, runs));
            return;
        }
        if (args.Contains("--explore"))
        {
            Report("GEMM 24x512x864, B prepacked", GemmPrepacked(24, 512, 864, runs, threads));
            Report("GEMM 24x2048x864, B prepacked", GemmPrepacked(24, 2048, 864, runs, threads));
            Report("GEMM 96x25600x864, B prepacked", GemmPrepacked(96, 25600, 864, runs, threads));
            Report("GEMM 24x25600x864, B row-major in place", GemmRowMajor(24, 25600, 864, runs, threads));
            Report("GEMM 24x25600x96 (1x1 96->24 @160), packed", GemmStrided(24, 25600, 96, runs, threads));
            Report("GEMM 24x25600x96 (1x1 96->24 @160), in place", GemmRowMajor(24, 25600, 96, runs, threads));
            Report("GEMM 192x1600x192 (1x1 @40), packed", GemmStrided(192, 1600, 192, runs, threads));
            Report("GEMM 192x1600x192 (1x1 @40), in place", GemmRowMajor(192, 1600, 192, runs, threads));
            Report("GEMM 512^3, in place", GemmRowMajor(512, 512, 512, runs, threads));
            Report("Conv 96->24 3x3 @40x40: implicit", ConvImplicit(96, 24, 40, 40, 3, runs, threads));
            Report("Conv 96->96 3x3 @160x160: implicit", ConvImplicit(96, 96, 160, 160, 3, runs, threads));
            Report("Conv 24->24 3x3 @160x160: implicit", ConvImplicit(24, 24, 160, 160, 3, runs, threads));
            Report("Conv 96->24 3x3 @160x160: implicit", ConvImplicit(96, 24, 160, 160, 3, runs, threads));
            return;
        }
        Report("Conv 192->192 1x1 @40x40: GEMM", ConvDirect(192, 192, 40, 40, 1, runs, threads));
        Report("Conv node 96->24 3x3 pad 1 @160x160 (node time)", ConvSession(96, 24, 160, 160, 3, 1, runs, threads));
        Report("Conv node 192->192 1x1 @40x40 (node time)", ConvSession(192, 192, 40, 40, 1, 1, runs, threads));
        Report("Conv node 3->16 3x3 s2 @640x640 (node time)", ConvSession(3, 16, 640, 640, 3, 1, runs, threads, stride: 2));
        Report("Conv node 96->96 3x3 s2 @80x80 (node time)", ConvSession(96, 96, 80, 80, 3, 1, runs, threads, stride: 2));
        Report("Conv node depthwise 3x3 s1 96ch @80x80 (node time)", ConvSession(96, 96, 80, 80, 3, 96, runs, threads));
        Report("Conv node depthwise 5x5 s2 96ch @80x80 (node time)", ConvSession(96, 96, 80, 80, 5, 96, runs, threads, stride: 2));
    }

    private static int ArgInt(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1]) : fallback;
    }

    private static void Report(string what, (double Median, double Min, double Max) g) =>
        Console.WriteLine($"{what,-60} median {g.Median,7:F1} GFLOP/s  (min {g.Min:F1}, max {g.Max:F1})");

    private static float[] Random(int n, int seed)
    {
        var rng = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)rng.NextDouble() - 0.5f;
        return a;
    }

    /// <summary>Times <paramref name="body"/> (flops per call) and returns median/min/max GFLOP/s.</summary>
    private static (double, double, double) Measure(double flops, int runs, Action<int> body)
    {
        int reps = Math.Max(1, (int)(1.5e9 / flops));
        body(reps); // warm-up and tier-up
        body(reps);
        var results = new List<double>();
        for (int r = 0; r < runs; r++)
        {
            var sw = Stopwatch.StartNew();
            body(reps);
            results.Add(flops * reps / sw.Elapsed.TotalSeconds / 1e9);
        }
        results.Sort();
        return (results[results.Count / 2], results[0], results[^1]);
    }

    private static (double, double, double) GemmPrepacked(int m, int n, int k, int runs, int threads)
    {
        var a = Random(m * k, 1);
        var b = Random(k * n, 2);
        var pa = GC.AllocateUninitializedArray<float>(Gemm.PackedASize(m, k), pinned: true);
        var pb = GC.AllocateUninitializedArray<float>(Gemm.PackedBSize(k, n), pinned: true);
        var c = GC.AllocateUninitializedArray<float>(m * n, pinned: true);
        fixed (float* ap = a, bp = b, pap = pa, pbp = pb, cp = c)
        {
            Gemm.PackA(ap, m, k, k, 1, 1f, pap);
            Gemm.PackB(bp, k, n, n, 1, 1f, pbp);
            nint npa = (nint)pap, npb = (nint)pbp, ncp = (nint)cp;
            return Measure(2.0 * m * n * k, runs, reps => LoopPrepacked((float*)npa, (float*)npb, m, n, k, (float*)ncp, reps, threads));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static void LoopPrepacked(float* pa, float* pb, int m, int n, int k, float* c, int reps, int threads)
    {
        for (int i = 0; i < reps; i++)
            Gemm.Multiply(new PrepackedB(pb, k), pa, m, n, k, c, n, false, GemmEpilogue.None, null, threads, null);
    }

    private static (double, double, double) GemmStrided(int m, int n, int k, int runs, int threads)
    {
        var a = Random(m * k, 1);
        var b = GC.AllocateUninitializedArray<float>(k * n, pinned: true);
        Random(k * n, 2).CopyTo(b, 0);
        var pa = GC.AllocateUninitializedArray<float>(Gemm.PackedASize(m, k), pinned: true);
        var scratch = GC.AllocateUninitializedArray<float>(Gemm.ScratchFloats(k, n, threads), pinned: true);
        var c = GC.AllocateUninitializedArray<float>(m * n, pinned: true);
        fixed (float* ap = a, bp = b, pap = pa, sp = scratch, cp = c)
        {
            nint nap = (nint)ap, npa = (nint)pap, nbp = (nint)bp, nsp = (nint)sp, ncp = (nint)cp;
            return Measure(2.0 * m * n * k, runs, reps => LoopStrided((float*)nap, (float*)npa, (float*)nbp, m, n, k, (float*)ncp, (float*)nsp, reps, threads));
        }
    }

    /// <summary>Includes packing A at run time too, as MatMul with two activations does.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static void LoopStrided(float* a, float* pa, float* b, int m, int n, int k, float* c, float* scratch, int reps, int threads)
    {
        for (int i = 0; i < reps; i++)
        {
            Gemm.PackA(a, m, k, k, 1, 1f, pa);
            Gemm.Multiply(new StridedB(b, n, 1, n), pa, m, n, k, c, n, false, GemmEpilogue.None, null, threads, scratch);
        }
    }

    private static (double, double, double) GemmRowMajor(int m, int n, int k, int runs, int threads)
    {
        var a = Random(m * k, 1);
        var b = GC.AllocateUninitializedArray<float>(k * n, pinned: true);
        Random(k * n, 2).CopyTo(b, 0);
        var pa = GC.AllocateUninitializedArray<float>(Gemm.PackedASize(m, k), pinned: true);
        var scratch = GC.AllocateUninitializedArray<float>((int)Gemm.RowMajorScratchFloats(k, n, threads), pinned: true);
        var c = GC.AllocateUninitializedArray<float>(m * n, pinned: true);
        fixed (float* ap = a, bp = b, pap = pa, sp = scratch, cp = c)
        {
            nint nap = (nint)ap, npa = (nint)pap, nbp = (nint)bp, nsp = (nint)sp, ncp = (nint)cp;
            return Measure(2.0 * m * n * k, runs, reps => LoopRowMajor((float*)nap, (float*)npa, (float*)nbp, m, n, k, (float*)ncp, (float*)nsp, reps, threads));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static void LoopRowMajor(float* a, float* pa, float* b, int m, int n, int k, float* c, float* scratch, int reps, int threads)
    {
        for (int i = 0; i < reps; i++)
        {
            Gemm.PackA(a, m, k, k, 1, 1f, pa);
            Gemm.MultiplyRowMajorB(b, n, pa, m, n, k, c, n, false, GemmEpilogue.None, null, threads, scratch);
        }
    }

    private static (double, double, double) DepthwiseDirect(int h, int w, int ks, int stride, int runs)
    {
        int pad = ks / 2, oh = (h + 2 * pad - ks) / stride + 1, ow = (w + 2 * pad - ks) / stride + 1;
        var shape = new DepthwiseConv.Shape(h, w, ks, ks, stride, stride, pad, pad, 1, 1, oh, ow);
        var x = GC.AllocateUninitializedArray<float>(h * w, pinned: true);
        Random(x.Length, 3).CopyTo(x, 0);
        var wt = GC.AllocateUninitializedArray<float>(ks * ks, pinned: true);
        var y = GC.AllocateUninitializedArray<float>(oh * ow, pinned: true);
        var scratch = GC.AllocateUninitializedArray<float>(shape.PlaneFloats, pinned: true);
        fixed (float* xp = x, wp = wt, yp = y, sp = scratch)
        {
            nint nx = (nint)xp, nw = (nint)wp, ny = (nint)yp, ns = (nint)sp;
            return Measure(2.0 * ks * ks * oh * ow, runs, reps => LoopDepthwise(shape, (float*)nx, (float*)nw, (float*)ny, (float*)ns, reps));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static void LoopDepthwise(DepthwiseConv.Shape shape, float* x, float* w, float* y, float* scratch, int reps)
    {
        for (int i = 0; i < reps; i++) DepthwiseConv.Channel(shape, x, w, 0.5f, FusedActivation.None, y, scratch);
    }

    /// <summary>Conv as the kernel runs it (weights prepacked, bias in the epilogue), without the session around it.</summary>
    private static (double, double, double) ConvDirect(int cin, int cout, int h, int w, int ks, int runs, int threads)
    {
        int pad = ks / 2, kk = cin * ks * ks, n = h * w;
        var x = GC.AllocateUninitializedArray<float>(cin * h * w, pinned: true);
        Random(x.Length, 3).CopyTo(x, 0);
        var wt = Random(cout * kk, 4);
        var bias = GC.AllocateUninitializedArray<float>(cout, pinned: true);
        Random(cout, 5).CopyTo(bias, 0);
        var pa = GC.AllocateUninitializedArray<float>(Gemm.PackedASize(cout, kk), pinned: true);
        var scratch = GC.AllocateUninitializedArray<float>(Gemm.ScratchFloats(kk, n, threads), pinned: true);
        var y = GC.AllocateUninitializedArray<float>(cout * n, pinned: true);
        fixed (float* wp = wt, pap = pa)
            Gemm.PackA(wp, cout, kk, kk, 1, 1f, pap);
        fixed (float* xp = x, pap = pa, sp = scratch, yp = y, bp = bias)
        {
            nint nx = (nint)xp, npa = (nint)pap, ns = (nint)sp, ny = (nint)yp, nb = (nint)bias.AsSpan().GetPinnableReference();
            nb = (nint)bp;
            return Measure(2.0 * cout * kk * n, runs, reps =>
                LoopConv((float*)nx, (float*)npa, (float*)ns, (float*)ny, (float*)nb, cin, cout, h, w, ks, pad, reps, threads));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static void LoopConv(float* x, float* pa, float* scratch, float* y, float* bias, int cin, int cout, int h, int w, int ks, int pad, int reps, int threads)
    {
        int n = h * w, kk = cin * ks * ks;
        var ep = new GemmEpilogue(GemmBias.PerRow);
        for (int i = 0; i < reps; i++)
        {
            if (ks == 1)
                Gemm.Multiply(new StridedB(x, n, 1, n), pa, cout, n, kk, y, n, false, ep, bias, threads, scratch);
            else
                Gemm.Multiply(new Im2ColB(x, cin, [1, h, w], [1, ks, ks], [1, 1, 1], [0, pad, pad], [1, 1, 1], [1, h, w]),
                    pa, cout, n, kk, y, n, false, ep, bias, threads, scratch);
        }
    }

    private static (double, double, double) ConvImplicit(int cin, int cout, int h, int w, int ks, int runs, int threads, bool packed = false)
    {
        int pad = ks / 2, kk = cin * ks * ks;
        var layout = new ImplicitConv.Layout(cin, h, w, ks, ks, 1, 1, pad, pad, h, w);
        var x = GC.AllocateUninitializedArray<float>(cin * h * w, pinned: true);
        Random(x.Length, 3).CopyTo(x, 0);
        var wt = Random(cout * kk, 4);
        var bias = GC.AllocateUninitializedArray<float>(cout, pinned: true);
        var pa = GC.AllocateUninitializedArray<float>(Gemm.PackedASize(cout, kk), pinned: true);
        var padded = GC.AllocateUninitializedArray<float>((int)layout.PaddedFloats, pinned: true);
        var virt = GC.AllocateUninitializedArray<float>(cout * layout.BlockColumns, pinned: true);
        var offsets = GC.AllocateUninitializedArray<int>(kk, pinned: true);
        var y = GC.AllocateUninitializedArray<float>(cout * h * w, pinned: true);
        var scratch = GC.AllocateUninitializedArray<float>(Gemm.ScratchFloats(kk, layout.BlockColumns, 1), pinned: true);
        fixed (float* wp = wt, pap = pa)
            Gemm.PackA(wp, cout, kk, kk, 1, 1f, pap);
        fixed (int* op = offsets)
            ImplicitConv.Offsets(layout, op);
        fixed (float* xp = x, pap = pa, pp = padded, vp = virt, yp = y, bp = bias, sp = scratch)
        fixed (int* op = offsets)
        {
            nint nx = (nint)xp, npa = (nint)pap, np = (nint)pp, nv = (nint)vp, ny = (nint)yp, nb = (nint)bp, no = (nint)op, ns = (nint)sp;
            return Measure(2.0 * cout * kk * h * w, runs, reps =>
                LoopImplicit((float*)nx, (float*)npa, (float*)np, (float*)nv, (int*)no, (float*)ny, (float*)nb, cout, layout, reps,
                    packed ? (float*)ns : null));
        }
    }

    /// <summary>One thread, block after block, as each worker of the Conv kernel runs them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static void LoopImplicit(float* x, float* pa, float* padded, float* virt, int* offsets, float* y, float* bias, int cout,
        ImplicitConv.Layout layout, int reps, float* packScratch)
    {
        var ep = new GemmEpilogue(GemmBias.PerRow);
        for (int i = 0; i < reps; i++)
            for (int blk = 0; blk < layout.Blocks; blk++)
            {
                ImplicitConv.PadBlock(x, layout, blk, padded);
                int nv = ImplicitConv.RowsOf(layout, blk) * layout.Wp;
                if (packScratch == null)
                    Gemm.Multiply(new IndirectB(padded, offsets), pa, cout, nv, layout.K, virt, nv, false, ep, bias, 1, null);
                else
                    Gemm.Multiply(new PackedIndirectB(padded, offsets), pa, cout, nv, layout.K, virt, nv, false, ep, bias, 1, packScratch);
                ImplicitConv.CompactBlock(virt, cout, layout, blk, y);
            }
    }

    /// <summary>A one-node Conv model run through <see cref="InferenceSession"/> (includes binding and the output copy).</summary>
    private static (double, double, double) ConvSession(int cin, int cout, int h, int w, int ks, int group, int runs, int threads, int stride = 1)
    {
        int pad = ks / 2;
        var g = new Graph { Name = "conv" };
        g.Inputs.Add(ValueInfo.Tensor("x", DType.Float32, null));
        g.AddInitializer(Tensor.FromArray<float>(Random(cout * (cin / group) * ks * ks, 6), [cout, cin / group, ks, ks], "w"));
        g.AddInitializer(Tensor.FromArray<float>(Random(cout, 7), [cout], "b"));
        g.Nodes.Add(new Node("Conv", ["x", "w", "b"], ["y"])
            .With(OnDevice.Core.Attribute.Of("pads", new long[] { pad, pad, pad, pad }))
            .With(OnDevice.Core.Attribute.Of("strides", new long[] { stride, stride }))
            .With(OnDevice.Core.Attribute.Of("group", (long)group)));
        g.Outputs.Add(new ValueInfo("y"));
        var model = new Model(g);
        model.OpsetImports.Add(new OpsetImport("", 17));
        var input = Tensor.FromArray<float>(Random(cin * h * w, 8), [1, cin, h, w], "x");
        var feeds = new Dictionary<string, Tensor> { ["x"] = input };
        int oh = (h + 2 * pad - ks) / stride + 1, ow = (w + 2 * pad - ks) / stride + 1;
        double flops = 2.0 * cout * (cin / group) * ks * ks * oh * ow;
        int reps = Math.Max(3, (int)(1.5e9 / flops));
        var options = new SessionOptions { Threads = threads, Profiling = true };
        LoopSession(new InferenceSession(model, options), feeds, 2 * reps); // warm-up and tier-up
        var results = new List<double>();
        for (int r = 0; r < runs; r++)
        {
            // A fresh session each time (weights packed again), warmed by two runs that are then subtracted out.
            var session = new InferenceSession(model, options);
            LoopSession(session, feeds, 2);
            var before = session.GetProfile();
            double warmMs = before.Nodes.Single(x => x.OpType == "Conv").MeanMs * before.Runs;
            LoopSession(session, feeds, reps);
            var after = session.GetProfile();
            double ms = (after.Nodes.Single(x => x.OpType == "Conv").MeanMs * after.Runs - warmMs) / reps;
            results.Add(flops / (ms / 1e3) / 1e9);
        }
        results.Sort();
        return (results[results.Count / 2], results[0], results[^1]);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void LoopSession(InferenceSession s, Dictionary<string, Tensor> feeds, int reps)
    {
        for (int i = 0; i < reps; i++) s.Run(feeds);
    }
}
