using System.Diagnostics;
using System.Runtime.CompilerServices;
using OnDevice.Core;
using OnDevice.Runtime;
using OnDevice.Runtime.Simd;

namespace OnDevice.Bench.Kernels;

/// <summary>
/// Low-bit kernels against float32 in the same run: the int8 GEMM on each instruction path (GOPS, 2 ops per
/// multiply-add) next to the float GEMM (GFLOP/s) at the same shape, QLinearConv and MatMulNBits nodes next to the
/// float Conv/MatMul nodes. Usage: dotnet run -c Release --project bench/OnDevice.Bench.Kernels -- --lowbit [--threads N] [--runs N]
/// </summary>
public static unsafe class LowBit
{
    public static void Run(int runs, int threads)
    {
        Console.WriteLine($"int8 GEMM best path: {Int8Gemm.Best}; MatMulNBits float path {Int4Gemv.BestFloat}, int8 path {Int4Gemv.BestInt8}");
        foreach (var (m, n, k) in new[] { (256, 256, 256), (512, 512, 512), (1024, 1024, 1024), (25600, 24, 864) })
        {
            Report($"fp32 GEMM {m}x{n}x{k}, B prepacked", FloatGemm(m, n, k, runs, threads), "GFLOP/s");
            foreach (var path in Enum.GetValues<Int8GemmPath>())
                if (Int8Gemm.IsSupported(path) && (path != Int8GemmPath.Scalar || m * (long)n * k <= 1 << 27))
                    Report($"int8 GEMM {m}x{n}x{k}, {path}", Int8(path, m, n, k, runs, threads), "GOPS");
        }
        Report("Conv node 96->24 3x3 @160x160, fp32", Node(ConvModel(false), ConvInputs(false), 2.0 * 24 * 96 * 9 * 160 * 160, runs, threads), "GFLOP/s");
        Report("QLinearConv node 96->24 3x3 @160x160, u8 x s8", Node(ConvModel(true), ConvInputs(true), 2.0 * 24 * 96 * 9 * 160 * 160, runs, threads), "GOPS");
        foreach (var (m, k, n) in new[] { (1, 4096, 4096), (1, 2048, 5632), (16, 2048, 2048) })
        {
            double ops = 2.0 * m * k * n;
            Report($"MatMul {m}x{k}x{n} fp32 weights ({4L * k * n >> 20} MiB)", Node(MatMulModel(m, k, n), MatMulInputs(m, k), ops, runs, threads), "GFLOP/s");
            foreach (var (bits, acc) in new[] { (4, 0), (4, 4), (8, 0) })
                Report($"MatMulNBits {m}x{k}x{n} {bits}-bit block 32 acc {acc} ({(long)k * n * bits / 8 >> 20} MiB)", Node(NBitsModel(m, k, n, bits, acc), MatMulInputs(m, k), ops, runs, threads), "GFLOP/s");
        }
    }

    private static void Report(string what, (double Median, double Min, double Max) g, string unit) =>
        Console.WriteLine($"{what,-66} median {g.Median,7:F1} {unit}  (min {g.Min:F1}, max {g.Max:F1})");

    /// <summary>Rate from the process CPU time instead of the wall clock (<c>--cpu-time</c>): steadier on a shared machine
    /// for one thread, since time spent waiting for a core does not count.</summary>
    public static bool CpuTime { get; set; }

    private static (double, double, double) Measure(double ops, int runs, Action<int> body)
    {
        int reps = Math.Max(1, (int)(1.5e9 / ops));
        body(reps);
        body(reps);
        var results = new List<double>();
        for (int r = 0; r < runs; r++)
        {
            var c0 = Environment.CpuUsage.TotalTime;
            var sw = Stopwatch.StartNew();
            body(reps);
            double seconds = CpuTime ? (Environment.CpuUsage.TotalTime - c0).TotalSeconds : sw.Elapsed.TotalSeconds;
            results.Add(ops * reps / seconds / 1e9);
        }
        results.Sort();
        return (results[results.Count / 2], results[0], results[^1]);
    }

    private static (double, double, double) FloatGemm(int m, int n, int k, int runs, int threads)
    {
        var rng = new Random(1);
        var a = Enumerable.Range(0, m * k).Select(_ => (float)rng.NextDouble()).ToArray();
        var b = Enumerable.Range(0, k * n).Select(_ => (float)rng.NextDouble()).ToArray();
        var pa = GC.AllocateUninitializedArray<float>(Gemm.PackedASize(m, k), pinned: true);
        var pb = GC.AllocateUninitializedArray<float>(Gemm.PackedBSize(k, n), pinned: true);
        var c = GC.AllocateUninitializedArray<float>(m * n, pinned: true);
        fixed (float* ap = a, bp = b, pap = pa, pbp = pb, cp = c)
        {
            Gemm.PackA(ap, m, k, k, 1, 1f, pap);
            Gemm.PackB(bp, k, n, n, 1, 1f, pbp);
            nint npa = (nint)pap, npb = (nint)pbp, ncp = (nint)cp;
            return Measure(2.0 * m * n * k, runs, reps => LoopFloat((float*)npa, (float*)npb, m, n, k, (float*)ncp, reps, threads));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static void LoopFloat(float* pa, float* pb, int m, int n, int k, float* c, int reps, int threads)
    {
        for (int i = 0; i < reps; i++)
            Gemm.Multiply(new PrepackedB(pb, k), pa, m, n, k, c, n, false, GemmEpilogue.None, null, threads, null);
    }

    private static (double, double, double) Int8(Int8GemmPath path, int m, int n, int k, int runs, int threads)
    {
        var rng = new Random(2);
        var a = new byte[m * k];
        var b = new byte[k * n];
        rng.NextBytes(a);
        rng.NextBytes(b);
        var packed = new Int8PackedB(b, true, k, n, n, 1, [0]);
        var prepared = GC.AllocateUninitializedArray<byte>(m * packed.KPadded, pinned: true);
        var sums = GC.AllocateUninitializedArray<int>(m, pinned: true);
        var c = GC.AllocateUninitializedArray<int>(m * n, pinned: true);
        fixed (byte* ap = a, pp = prepared)
        fixed (int* sp = sums, cp = c)
        {
            Int8Gemm.PrepareA(ap, m, k, k, false, pp, packed.KPadded, sp);
            nint npp = (nint)pp, nsp = (nint)sp, ncp = (nint)cp;
            return Measure(2.0 * m * n * k, runs, reps => LoopInt8(path, (byte*)npp, m, (int*)nsp, packed, (int*)ncp, n, reps, threads));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static void LoopInt8(Int8GemmPath path, byte* a, int m, int* sums, Int8PackedB b, int* c, int n, int reps, int threads)
    {
        for (int i = 0; i < reps; i++) Int8Gemm.Multiply(path, a, m, sums, null, b, c, n, threads);
    }

    private static (double, double, double) Node(Model model, Dictionary<string, Tensor> inputs, double ops, int runs, int threads)
    {
        var s = new InferenceSession(model, new SessionOptions { Threads = threads });
        return Measure(ops, runs, reps => { for (int i = 0; i < reps; i++) s.Run(inputs); });
    }

    private static Model Wrap(Graph g)
    {
        var m = new Model(g);
        m.OpsetImports.Add(new OpsetImport("", 17));
        m.OpsetImports.Add(new OpsetImport("com.microsoft", 1));
        return m;
    }

    private static byte[] Bytes(int n, int seed)
    {
        var b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }

    private static float[] Floats(int n, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
    }

    private static Model ConvModel(bool quantized, int cin = 96, int cout = 24, int k = 3, int group = 1, int stride = 1)
    {
        var g = new Graph { Name = "conv" };
        var attrs = new[]
        {
            OnDevice.Core.Attribute.Of("pads", new long[] { k / 2, k / 2, k / 2, k / 2 }), OnDevice.Core.Attribute.Of("group", (long)group),
            OnDevice.Core.Attribute.Of("strides", new long[] { stride, stride }),
        };
        int wn = cout * (cin / group) * k * k;
        long[] wd = [cout, cin / group, k, k];
        Node node;
        if (!quantized)
        {
            g.Inputs.Add(ValueInfo.Tensor("x", DType.Float32, null));
            g.AddInitializer(Tensor.FromArray<float>(Floats(wn, 3), wd, "w"));
            node = new Node("Conv", ["x", "w"], ["y"]);
        }
        else
        {
            g.Inputs.Add(ValueInfo.Tensor("x", DType.UInt8, null));
            g.AddInitializer(Tensor.FromBytes(DType.Int8, wd, Bytes(wn, 3), "w"));
            AddQuantParams(g, cout);
            node = new Node("QLinearConv", ["x", "sx", "zx", "w", "sw", "zw", "sy", "zy"], ["y"]);
        }
        foreach (var a in attrs) node.With(a);
        g.Nodes.Add(node);
        g.Outputs.Add(new ValueInfo("y"));
        return Wrap(g);
    }

    private static Dictionary<string, Tensor> ConvInputs(bool quantized, int c = 96, int h = 160, int w = 160) => new()
    {
        ["x"] = quantized ? Tensor.FromBytes(DType.UInt8, [1, c, h, w], Bytes(c * h * w, 4), "x") : Tensor.FromArray<float>(Floats(c * h * w, 4), [1, c, h, w], "x"),
    };

    /// <summary>Convolution shapes of a mobile detector, float32 node against QLinearConv node in the same run.</summary>
    public static void Convs(int runs, int threads)
    {
        foreach (var (cin, cout, hw, k, group, stride) in new[]
                 {
                     (96, 24, 160, 3, 1, 1), (3, 16, 640, 3, 1, 2), (64, 64, 80, 1, 1, 1), (128, 128, 40, 3, 1, 1),
                     (96, 96, 80, 3, 96, 1), (96, 96, 80, 5, 96, 2),
                     // PP-OCRv4 rec's late stage (≈ 960 positions): pointwise 240→240 and depthwise 5×5.
                     (240, 240, 31, 1, 1, 1), (240, 240, 31, 5, 240, 1),
                 })
        {
            double ops = 2.0 * cout * (cin / group) * k * k * ((double)hw / stride) * ((double)hw / stride);
            string what = $"{cin}->{cout} {k}x{k} s{stride}{(group > 1 ? " depthwise" : "")} @{hw}";
            var f = Node(ConvModel(false, cin, cout, k, group, stride), ConvInputs(false, cin, hw, hw), ops, runs, threads);
            var q = Node(ConvModel(true, cin, cout, k, group, stride), ConvInputs(true, cin, hw, hw), ops, runs, threads);
            Console.WriteLine($"Conv {what,-36} fp32 {f.Item1,7:F1} GFLOP/s   QLinearConv {q.Item1,7:F1} GOPS   int8/fp32 {q.Item1 / f.Item1,5:F2}x");
        }
        // PP-OCRv4 det's head: 2×2 stride-2 transposed convolutions (float node vs the fused QDQ kernel).
        foreach (var (cin, cout, hw) in new[] { (24, 24, 160), (24, 1, 320) })
        {
            double ops = 2.0 * cin * cout * 4 * hw * hw;
            var f = Node(ConvTransposeModel(false, cin, cout), ConvInputs(false, cin, hw, hw), ops, runs, threads);
            var q = Node(ConvTransposeModel(true, cin, cout), ConvInputs(true, cin, hw, hw), ops, runs, threads);
            Console.WriteLine($"ConvTranspose {$"{cin}->{cout} 2x2 s2 @{hw}",-27} fp32 {f.Item1,7:F1} GFLOP/s   QLinearConvTranspose {q.Item1,7:F1} GOPS   int8/fp32 {q.Item1 / f.Item1,5:F2}x");
        }
    }

    private static Model ConvTransposeModel(bool quantized, int cin, int cout)
    {
        var g = new Graph { Name = "convtranspose" };
        long[] wd = [cin, cout, 2, 2];
        Node node;
        if (!quantized)
        {
            g.Inputs.Add(ValueInfo.Tensor("x", DType.Float32, null));
            g.AddInitializer(Tensor.FromArray<float>(Floats(cin * cout * 4, 3), wd, "w"));
            node = new Node("ConvTranspose", ["x", "w"], ["y"]);
        }
        else
        {
            g.Inputs.Add(ValueInfo.Tensor("x", DType.UInt8, null));
            g.AddInitializer(Tensor.FromBytes(DType.Int8, wd, Bytes(cin * cout * 4, 3), "w"));
            AddQuantParams(g, cout);
            node = new Node("QLinearConvTranspose", ["x", "sx", "zx", "w", "sw", "zw", "sy", "zy"], ["y"], "ct", "com.ondevice");
        }
        node.With(OnDevice.Core.Attribute.Of("kernel_shape", new long[] { 2, 2 })).With(OnDevice.Core.Attribute.Of("strides", new long[] { 2, 2 }));
        g.Nodes.Add(node);
        g.Outputs.Add(new ValueInfo("y"));
        var m = Wrap(g);
        m.OpsetImports.Add(new OpsetImport("com.ondevice", 1));
        return m;
    }

    private static Model MatMulModel(int m, int k, int n)
    {
        var g = new Graph { Name = "mm" };
        g.Inputs.Add(ValueInfo.Tensor("a", DType.Float32, Shape.Of(m, k)));
        g.AddInitializer(Tensor.FromArray<float>(Floats(k * n, 5), [k, n], "b"));
        g.Nodes.Add(new Node("MatMul", ["a", "b"], ["y"]));
        g.Outputs.Add(new ValueInfo("y"));
        return Wrap(g);
    }

    private static Model NBitsModel(int m, int k, int n, int bits, int accuracy)
    {
        int bs = 32, blocks = (k + bs - 1) / bs;
        var g = new Graph { Name = "nbits" };
        g.Inputs.Add(ValueInfo.Tensor("a", DType.Float32, Shape.Of(m, k)));
        g.AddInitializer(Tensor.FromBytes(DType.UInt8, [n, blocks, bs * bits / 8], Bytes(n * blocks * bs * bits / 8, 6), "b"));
        g.AddInitializer(Tensor.FromArray<float>(Enumerable.Repeat(0.01f, n * blocks).ToArray(), [n, blocks], "s"));
        g.Nodes.Add(new Node("MatMulNBits", ["a", "b", "s"], ["y"], "mm", "com.microsoft")
            .With(OnDevice.Core.Attribute.Of("K", (long)k)).With(OnDevice.Core.Attribute.Of("N", (long)n))
            .With(OnDevice.Core.Attribute.Of("bits", (long)bits)).With(OnDevice.Core.Attribute.Of("block_size", (long)bs))
            .With(OnDevice.Core.Attribute.Of("accuracy_level", (long)accuracy)));
        g.Outputs.Add(new ValueInfo("y"));
        return Wrap(g);
    }

    private static Dictionary<string, Tensor> MatMulInputs(int m, int k) => new() { ["a"] = Tensor.FromArray<float>(Floats(m * k, 7), [m, k], "a") };

    /// <summary>The QLinear* scales and zero points "sx", "zx", "sw", "zw", "sy", "zy" shared by the int8 conv benches.</summary>
    private static void AddQuantParams(Graph g, int cout)
    {
        g.AddInitializer(Tensor.Scalar(0.02f, "sx"));
        g.AddInitializer(Tensor.FromBytes(DType.UInt8, [], new byte[] { 128 }, "zx"));
        g.AddInitializer(Tensor.FromArray<float>(Enumerable.Repeat(0.001f, cout).ToArray(), [cout], "sw"));
        g.AddInitializer(Tensor.FromBytes(DType.Int8, [cout], new byte[cout], "zw"));
        g.AddInitializer(Tensor.Scalar(0.5f, "sy"));
        g.AddInitializer(Tensor.FromBytes(DType.UInt8, [], new byte[] { 128 }, "zy"));
    }
}
