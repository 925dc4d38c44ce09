using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using OnDevice.Formats.Gguf;
using OnDevice.Formats.Llama2c;
using OnDevice.Formats.Llm;
using OnDevice.Runtime.Llm;
using OnDevice.Runtime.Llm.Kernels;

namespace OnDevice.Bench.Llm;

/// <summary>
/// LLM decode benchmark. Writes a synthetic TinyLlama-shaped checkpoint (dim 2048, 22 layers, 32 heads, 4 KV heads,
/// hidden 5632, vocab 32000, random weights) as GGUF F32 / Q8_0 / Q4_0 into the cache ($ONDEVICE_CACHE or
/// ~/.cache/ondevice, never the repo), measures decode tokens/s at fp32/int8/int4 on 1 and 2 threads against the
/// memory-bandwidth roofline measured in the same run, then quality (KL, top-1) and speculative decoding on stories260K.
/// Usage: dotnet run -c Release --project bench/OnDevice.Bench.Llm [-- --tokens N] [--formats fp32,int8,int4] [--threads 1,2] [--skip-tiny] [--skip-stories] [--breakdown] [--no-hugepages]
/// </summary>
public static class Program
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static void Main(string[] args)
    {
        int tokens = ArgInt(args, "--tokens", 24);
        var formats = Arg(args, "--formats", "fp32,int8,int4").Split(',');
        var threads = Arg(args, "--threads", "1,2").Split(',').Select(int.Parse).ToArray();
        if (args.Contains("--no-hugepages")) WeightBuffer.UseHugePages = false;
        Console.WriteLine($"cpus={Environment.ProcessorCount} kernels={QuantDot.Path} {System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription} hugepages={WeightBuffer.UseHugePages}");
        if (args.Contains("--breakdown")) { Breakdown(formats, tokens); return; }
        if (args.Contains("--kernel")) { KernelAb(formats, ArgInt(args, "--rounds", 15), Layouts(args)); return; }
        if (args.Contains("--probes")) { Probes(ArgInt(args, "--rounds", 15)); return; }
        if (args.Contains("--ab-layout")) { AbLayout(formats, threads, ArgInt(args, "--rounds", 30), Layouts(args)); return; }
        if (args.Contains("--ab")) { AbHugePages(formats, threads, ArgInt(args, "--rounds", 30)); return; }
        if (!args.Contains("--skip-tiny")) TinyLlama(tokens, formats, threads);
        if (!args.Contains("--skip-stories")) Stories();
    }

    private static string Arg(string[] a, string name, string fallback) { int i = Array.IndexOf(a, name); return i >= 0 && i + 1 < a.Length ? a[i + 1] : fallback; }
    private static int ArgInt(string[] a, string name, int fallback) => int.Parse(Arg(a, name, fallback.ToString(Inv)), Inv);

    private static string CacheDir()
    {
        var root = Environment.GetEnvironmentVariable("ONDEVICE_CACHE") is { Length: > 0 } c ? c
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "ondevice");
        var dir = Path.Combine(root, "llm-bench");
        Directory.CreateDirectory(dir);
        return dir;
    }

    public static readonly LlamaConfig TinyLlamaShape = new(2048, 5632, 22, 32, 4, 32000, 2048, SharedClassifier: false);

    private static string EnsureGguf(string format)
    {
        var (type, suffix) = format switch { "fp32" => (GgufFile.F32, "f32"), "int8" => (GgufFile.Q8_0, "q8_0"), _ => (GgufFile.Q4_0, "q4_0") };
        var path = Path.Combine(CacheDir(), $"tinyllama-shape-random-{suffix}.gguf");
        if (File.Exists(path)) return path;
        Console.WriteLine($"writing {path} ...");
        var sw = Stopwatch.StartNew();
        GgufWriter.WriteLlama(path, TinyLlamaShape, null, SyntheticLlama.Layout(TinyLlamaShape), (n, r, c) => SyntheticLlama.Values(n, r, c, 2024), type);
        Console.WriteLine($"  {new FileInfo(path).Length / 1e9:0.00} GB in {sw.Elapsed.TotalSeconds:0} s");
        return path;
    }

    /// <summary>
    /// Read bandwidth over a 512 MiB buffer, GB/s, median of 5. The buffer is allocated like the weights
    /// (<see cref="WeightBuffer"/>, huge pages when <paramref name="hugePages"/>), so the roofline compares like with like.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe double Bandwidth(int threads, bool hugePages)
    {
        long n = 1L << 29;
        using var buf = new WeightBuffer(n, hugePages);
        for (long i = 0; i < n; i += 4096) buf.Pointer[i] = 1;
        var times = new List<double>();
        {
            byte* basePtr = buf.Pointer;
            for (int run = 0; run < 6; run++)
            {
                var sw = Stopwatch.StartNew();
                Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
                {
                    long chunk = n / threads;
                    Sum(basePtr + t * chunk, chunk);
                });
                if (run > 0) times.Add(sw.Elapsed.TotalSeconds);
            }
        }
        times.Sort();
        return n / times[times.Count / 2] / 1e9;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe long Sum(byte* p, long n)
    {
        var a0 = Vector256<long>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
        for (long i = 0; i < n; i += 128)
        {
            a0 += Vector256.Load((long*)(p + i)); a1 += Vector256.Load((long*)(p + i + 32));
            a2 += Vector256.Load((long*)(p + i + 64)); a3 += Vector256.Load((long*)(p + i + 96));
        }
        return Vector256.Sum(a0 + a1 + a2 + a3);
    }

    private static void TinyLlama(int tokens, string[] formats, int[] threads)
    {
        Console.WriteLine("Roofline: bytes/token ÷ read bandwidth, both the bandwidth measured just before each row (this run, shared machine) and the machine's nominal 16 GB/s (1 thread) / 30 GB/s (2 threads).");
        Console.WriteLine("Bandwidth now: probed with the weights' page size (huge pages unless --no-hugepages); the last two columns use the other page size.");
        string other = WeightBuffer.UseHugePages ? "4 KiB pages" : "huge pages";
        Console.WriteLine($"| weights | threads | decode tokens/s | bytes/token (weights+KV) | bandwidth now | fraction of roofline now | fraction of nominal roofline | prefill 32 tokens/s | load avg | bandwidth, {other} | fraction, {other} |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var f in formats)
        {
            var path = EnsureGguf(f);
            var ck = GgufFile.ReadLlama(path);
            var weights = f switch { "fp32" => LlmWeights.Fp32, "int8" => LlmWeights.Int8, _ => LlmWeights.Int4 };
            var model = LlamaModel.Load(ck, weights);
            using var owned = model;
            Console.WriteLine($"<!-- {f}: {model.WeightBytesPerToken / 1e9:0.000} GB weights; process AnonHugePages {AnonHugeTotal()} -->");
            foreach (var t in threads)
            {
                var engine = new LlamaEngine(model, new KvCacheOptions(MaxPositions: 512), t);
                var rng = new Random(1);
                var prompt = Enumerable.Range(0, 32).Select(_ => rng.Next(3, 32000)).ToArray();
                engine.Prefill(prompt.AsSpan(0, 4).ToArray());
                var sw = Stopwatch.StartNew();
                var logits = engine.Prefill(prompt, 0);
                double prefillTps = prompt.Length / sw.Elapsed.TotalSeconds;
                var times = new List<double>();
                int tok = Sampler.ArgMax(logits);
                for (int i = 0; i < tokens; i++)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    logits = engine.Step(tok, prompt.Length + i);
                    times.Add(Stopwatch.GetElapsedTime(t0).TotalSeconds);
                    tok = Sampler.ArgMax(logits);
                }
                times.Sort();
                double median = times[times.Count / 2];
                long bytes = model.WeightBytesPerToken + engine.Cache.BytesRead(prompt.Length + tokens / 2);
                double bw = Bandwidth(t, WeightBuffer.UseHugePages), nominal = t == 1 ? 16 : 30;
                double bwOther = Bandwidth(t, !WeightBuffer.UseHugePages);
                string load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";
                Console.WriteLine(string.Format(Inv, "| {0} | {1} | {2:0.00} | {3:0.000} GB | {4:0.0} GB/s | {5:P0} | {6:P0} | {7:0.0} | {8} | {9:0.0} GB/s | {10:P0} |",
                    f, t, 1 / median, bytes / 1e9, bw, (1 / median) / (bw * 1e9 / bytes), (1 / median) / (nominal * 1e9 / bytes), prefillTps, load,
                    bwOther, (1 / median) / (bwOther * 1e9 / bytes)));
            }
            if (f == "fp32" && formats.Contains("int4"))
            {
                // Self-speculative: the int4 copy drafts for the fp32 target (random weights: acceptance reflects int4 fidelity).
                var draft = LlamaModel.Load(GgufFile.ReadLlama(EnsureGguf("int4")), LlmWeights.Int4);
                Speculate("TinyLlama-shape fp32 target, int4 draft", model, draft, null, threads[^1], 24, 4);
            }
        }
    }

    /// <summary>
    /// Per-token time split: decode steps on 1 and 2 threads with the engine's <see cref="LlmProfile"/> (time per part of
    /// the forward pass), then on one thread each weight matrix's product alone in engine order over all layers (fastest
    /// of 7 passes per product, with its GB/s), and the compute speed of the kernel on a cache-resident slice.
    /// </summary>
    private static unsafe void Breakdown(string[] formats, int tokens)
    {
        foreach (var f in formats)
        {
            var ck = GgufFile.ReadLlama(EnsureGguf(f));
            var weights = f switch { "fp32" => LlmWeights.Fp32, "int8" => LlmWeights.Int8, _ => LlmWeights.Int4 };
            var model = LlamaModel.Load(ck, weights);
            var rng = new Random(1);
            var prompt = Enumerable.Range(0, 32).Select(_ => rng.Next(3, 32000)).ToArray();
            double step = 0;
            foreach (int threads in new[] { 1, 2 })
            {
                var engine = new LlamaEngine(model, new KvCacheOptions(MaxPositions: 512), threads);
                var logits = engine.Prefill(prompt);
                var steps = new List<double>();
                int tok = Sampler.ArgMax(logits);
                var profile = new LlmProfile();
                for (int i = 0; i < tokens; i++)
                {
                    if (i == 1) engine.Profile = profile;
                    long t0 = Stopwatch.GetTimestamp();
                    logits = engine.Step(tok, prompt.Length + i);
                    steps.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                    tok = Sampler.ArgMax(logits);
                }
                double med = Median(steps);
                if (threads == 1) step = med;
                Console.WriteLine($"load average {(File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?")}, kernels {GroupDot.Path}");
                Console.WriteLine($"## {f}, {threads} thread(s): decode step median {med:0.00} ms ({1000 / med:0.0} tokens/s; fastest {steps.Min():0.00} ms), {model.WeightBytesPerToken / 1e9:0.000} GB weights/token");
                Console.WriteLine("| part of a decode step | ms/token | share |");
                Console.WriteLine("|---|---|---|");
                double total = Enum.GetValues<LlmOp>().Sum(profile.MillisecondsPerPass);
                foreach (var op in Enum.GetValues<LlmOp>())
                    Console.WriteLine(string.Format(Inv, "| {0} | {1:0.000} | {2:P1} |", op, profile.MillisecondsPerPass(op), profile.MillisecondsPerPass(op) / total));
                Console.WriteLine(string.Format(Inv, "| sum of the parts (mean step) | {0:0.000} | |", total));
            }
            var c = model.Config;
            var x = GC.AllocateArray<float>(c.HiddenDim, pinned: true);
            for (int i = 0; i < x.Length; i++) x[i] = rng.NextSingle() * 2 - 1;
            var y = GC.AllocateArray<float>(c.VocabSize, pinned: true);
            var acts = new LlmActivations();
            var kinds = new (string Name, Func<LlamaLayer, WeightMatrix> Get)[]
                { ("wq", l => l.Wq), ("wk", l => l.Wk), ("wv", l => l.Wv), ("wo", l => l.Wo), ("w1 gate", l => l.W1), ("w3 up", l => l.W3), ("w2 down", l => l.W2) };
            Console.WriteLine($"### {f}: each product alone, 1 thread (share of the 1-thread median step {step:0.00} ms)");
            Console.WriteLine("| part | ms/token | share | GB/s |");
            Console.WriteLine("|---|---|---|---|");
            double sum = 0;
            fixed (float* px0 = x, py0 = y)
            {
                float* px = px0, py = py0;
                double Once(WeightMatrix m)
                {
                    acts.Set(px, 1, m.Cols, m.Cols);
                    long t0 = Stopwatch.GetTimestamp();
                    if (m.Format != LlmWeights.Fp32) acts.EnsureInterleaved();
                    m.Multiply(acts, py, m.Rows, 0, m.Rows);
                    return Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                }
                // Every product of a token in engine order (the weights stream from memory as in a decode step), 7 passes;
                // each product's fastest pass is kept (robust to time slices lost on a shared machine), then summed per kind.
                int passes = 7;
                var best = new double[model.Layers.Count, kinds.Length + 1];
                for (int i = 0; i < best.GetLength(0); i++) for (int k = 0; k <= kinds.Length; k++) best[i, k] = double.MaxValue;
                for (int rep = 0; rep < passes; rep++)
                {
                    for (int i = 0; i < model.Layers.Count; i++)
                        for (int k = 0; k < kinds.Length; k++) best[i, k] = Math.Min(best[i, k], Once(kinds[k].Get(model.Layers[i])));
                    best[0, kinds.Length] = Math.Min(best[0, kinds.Length], Once(model.Classifier));
                }
                var perKind = new List<double>[kinds.Length + 1];
                for (int k = 0; k <= kinds.Length; k++) perKind[k] = [Enumerable.Range(0, model.Layers.Count).Sum(i => best[i, k])];
                perKind[kinds.Length] = [best[0, kinds.Length]];
                for (int k = 0; k < kinds.Length; k++)
                {
                    double ms = Median(perKind[k]);
                    long bytes = model.Layers.Sum(l => kinds[k].Get(l).Bytes);
                    sum += ms;
                    Console.WriteLine(string.Format(Inv, "| {0} ×{1} | {2:0.00} | {3:P1} | {4:0.0} |", kinds[k].Name, c.Layers, ms, ms / step, bytes / ms / 1e6));
                }
                double cls = Median(perKind[kinds.Length]);
                sum += cls;
                Console.WriteLine(string.Format(Inv, "| classifier | {0:0.00} | {1:P1} | {2:0.0} |", cls, cls / step, model.Classifier.Bytes / cls / 1e6));
                Console.WriteLine(string.Format(Inv, "| all products (incl. their activation quantization) | {0:0.00} | {1:P1} | {2:0.0} |", sum, sum / step, model.WeightBytesPerToken / sum / 1e6));
                {
                    // Compute speed: a ~256 KB slice of one matrix (L2-resident), activations already quantized, fastest of 100 × 10.
                    var m = model.Layers[0].W1;
                    int rows = (int)Math.Min(m.Rows, (1L << 18) * m.Rows / m.Bytes);
                    acts.Set(px, 1, m.Cols, m.Cols);
                    if (m.Format != LlmWeights.Fp32) acts.EnsureInterleaved();
                    m.Multiply(acts, py, m.Rows, 0, rows);
                    double hot = double.MaxValue;
                    for (int rep = 0; rep < 100; rep++)
                    {
                        long t0 = Stopwatch.GetTimestamp();
                        for (int i = 0; i < 10; i++) m.Multiply(acts, py, m.Rows, 0, rows);
                        hot = Math.Min(hot, Stopwatch.GetElapsedTime(t0).TotalMilliseconds / 10);
                    }
                    double sliceBytes = (double)m.Bytes * rows / m.Rows;
                    Console.WriteLine(string.Format(Inv, "| cache-resident {0}×{1} product (fastest of 100 × 10, compute speed) | {2:0.000} | | {3:0.0} |", rows, m.Cols, hot, sliceBytes / hot / 1e6));
                }
            }
        }
    }

    /// <summary>
    /// In-process A/B of decode steps: the same checkpoint loaded four times (4 KiB or huge pages × row or four-row
    /// layout), one decode step of each in turn for <paramref name="rounds"/> rounds (so both see the same moments of a shared
    /// machine); per variant the fastest and the median step, as tokens/s and weight GB/s.
    /// </summary>
    private static void AbHugePages(string[] formats, int[] threads, int rounds)
    {
        foreach (var f in formats)
        {
            var ck = GgufFile.ReadLlama(EnsureGguf(f));
            var weights = f switch { "fp32" => LlmWeights.Fp32, "int8" => LlmWeights.Int8, _ => LlmWeights.Int4 };
            var variants = new List<(string Name, LlamaModel Model)>();
            // 4 KiB pages + row layout is the code before this work (pinned GC arrays, rows); then each change alone, then both.
            foreach (var (huge, layout) in new[] { (false, QuantLayout.Rows), (true, QuantLayout.Rows), (false, QuantLayout.FourRows), (true, QuantLayout.FourRows) })
            {
                WeightBuffer.UseHugePages = huge;
                QuantRows.Force = layout;
                variants.Add(($"{(huge ? "huge pages" : "4 KiB pages")}, {layout} layout", LlamaModel.Load(ck, weights)));
            }
            WeightBuffer.UseHugePages = true;
            QuantRows.Force = null;
            Console.WriteLine($"<!-- {f}: process AnonHugePages {AnonHugeTotal()} -->");
            foreach (int t in threads)
                Ab($"{f}, {t} thread(s)", variants, t, rounds);
            foreach (var v in variants) v.Model.Dispose();
        }
    }

    /// <summary>
    /// Layouts alternated on one thread: every product of a token in engine order streamed from memory (per pass, best and
    /// median GB/s), and the compute speed on an L2-resident slice of the first gate matrix.
    /// </summary>
    private static unsafe void KernelAb(string[] formats, int rounds, QuantLayout[] layouts)
    {
        foreach (var f in formats)
        {
            var variants = LoadLayouts(f, layouts);
            var model0 = variants[0].Model;
            var rng = new Random(1);
            var x = GC.AllocateArray<float>(model0.Config.HiddenDim, pinned: true);
            for (int i = 0; i < x.Length; i++) x[i] = rng.NextSingle() * 2 - 1;
            var y = GC.AllocateArray<float>(model0.Config.VocabSize, pinned: true);
            var acts = new[] { new LlmActivations(), new LlmActivations() };
            var stream = variants.Select(_ => new List<double>()).ToArray();
            var hot = variants.Select(_ => new List<double>()).ToArray();
            long bytes = 0;
            fixed (float* px = x, py = y)
            {
                acts[0].Set(px, 1, model0.Config.Dim, model0.Config.Dim);
                acts[1].Set(px, 1, model0.Config.HiddenDim, model0.Config.HiddenDim);
                foreach (var a in acts) a.EnsureInterleaved();
                for (int r = 0; r < rounds; r++)
                    for (int v = 0; v < variants.Count; v++)
                    {
                        var model = variants[v].Model;
                        var mats = model.Layers.SelectMany(l => new[] { l.Wq, l.Wk, l.Wv, l.Wo, l.W1, l.W3, l.W2 }).Append(model.Classifier).ToArray();
                        bytes = mats.Sum(m => m.Bytes);
                        long t0 = Stopwatch.GetTimestamp();
                        foreach (var m in mats) m.Multiply(m.Cols == model.Config.Dim ? acts[0] : acts[1], py, m.Rows, 0, m.Rows);
                        stream[v].Add(bytes / Stopwatch.GetElapsedTime(t0).TotalSeconds / 1e9);
                        var slice = model.Layers[0].W1;
                        int rows = (int)Math.Min(slice.Rows, (1L << 18) * slice.Rows / slice.Bytes) & ~15;
                        slice.Multiply(acts[0], py, slice.Rows, 0, rows);
                        double best = double.MaxValue;
                        for (int k = 0; k < 20; k++)
                        {
                            t0 = Stopwatch.GetTimestamp();
                            for (int i = 0; i < 5; i++) slice.Multiply(acts[0], py, slice.Rows, 0, rows);
                            best = Math.Min(best, Stopwatch.GetElapsedTime(t0).TotalSeconds / 5);
                        }
                        hot[v].Add((double)slice.Bytes * rows / slice.Rows / best / 1e9);
                    }
            }
            string load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";
            Console.WriteLine($"### {f}: layouts, 1 thread, {rounds} alternating passes over every product of a token ({bytes / 1e9:0.000} GB), load average {load}");
            Console.WriteLine("| layout | stream GB/s best | median | L2-resident GB/s best | median |");
            Console.WriteLine("|---|---|---|---|---|");
            for (int v = 0; v < variants.Count; v++)
                Console.WriteLine(string.Format(Inv, "| {0} | {1:0.0} | {2:0.0} | {3:0.0} | {4:0.0} |", variants[v].Name, stream[v].Max(), Median(stream[v]), hot[v].Max(), Median(hot[v])));
            foreach (var v in variants) v.Model.Dispose();
        }
    }

    /// <summary>One-thread read probes alternated: one sequential stream vs two streams read 4:1 (int4 quants and scales).</summary>
    private static unsafe void Probes(int rounds)
    {
        long n = 1L << 29;
        using var buf = new WeightBuffer(n, true);
        byte* p = buf.Pointer;
        for (long i = 0; i < n; i += 4096) p[i] = 1;
        var one = new List<double>();
        var two = new List<double>();
        long qn = n / 5 * 4 & ~127L, sn = qn / 4;
        for (int r = 0; r < rounds; r++)
        {
            long t0 = Stopwatch.GetTimestamp();
            Sum(p, n);
            one.Add(n / Stopwatch.GetElapsedTime(t0).TotalSeconds / 1e9);
            t0 = Stopwatch.GetTimestamp();
            Sum2(p, qn, p + qn, sn);
            two.Add((qn + sn) / Stopwatch.GetElapsedTime(t0).TotalSeconds / 1e9);
        }
        Console.WriteLine(string.Format(Inv, "one stream: best {0:0.0} median {1:0.0} GB/s; two streams 4:1: best {2:0.0} median {3:0.0} GB/s",
            one.Max(), Median(one), two.Max(), Median(two)));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe long Sum2(byte* q, long qn, byte* s, long sn)
    {
        var a0 = Vector256<long>.Zero; var a1 = a0; var a2 = a0; var a3 = a0; var a4 = a0;
        for (long i = 0, j = 0; i < qn; i += 128, j += 32)
        {
            a0 += Vector256.Load((long*)(q + i)); a1 += Vector256.Load((long*)(q + i + 32));
            a2 += Vector256.Load((long*)(q + i + 64)); a3 += Vector256.Load((long*)(q + i + 96));
            a4 += Vector256.Load((long*)(s + j));
        }
        return Vector256.Sum(a0 + a1 + a2 + a3 + a4);
    }

    private static QuantLayout[] Layouts(string[] args) =>
        Arg(args, "--layouts", "Rows,FourRows").Split(',').Select(Enum.Parse<QuantLayout>).ToArray();

    private static List<(string Name, LlamaModel Model)> LoadLayouts(string f, QuantLayout[] layouts)
    {
        var ck = GgufFile.ReadLlama(EnsureGguf(f));
        var weights = f switch { "int8" => LlmWeights.Int8, _ => LlmWeights.Int4 };
        var variants = new List<(string Name, LlamaModel Model)>();
        foreach (var layout in layouts)
        {
            QuantRows.Force = layout;
            variants.Add(($"layout {layout}", LlamaModel.Load(ck, weights)));
        }
        QuantRows.Force = null;
        Console.WriteLine($"<!-- {f}: loaded {string.Join(", ", layouts)}; process AnonHugePages {AnonHugeTotal()} -->");
        return variants;
    }

    /// <summary>In-process A/B of the low-bit storage layouts (<see cref="QuantLayout"/>), alternating decode steps.</summary>
    private static void AbLayout(string[] formats, int[] threads, int rounds, QuantLayout[] layouts)
    {
        foreach (var f in formats)
        {
            var variants = LoadLayouts(f, layouts);
            foreach (int t in threads) Ab($"{f}, {t} thread(s)", variants, t, rounds);
            foreach (var v in variants) v.Model.Dispose();
        }
    }

    private static void Ab(string label, List<(string Name, LlamaModel Model)> variants, int threads, int rounds, Action<int>? before = null)
    {
        var engines = variants.Select(v => new LlamaEngine(v.Model, new KvCacheOptions(MaxPositions: 512), threads)).ToArray();
        var rng = new Random(1);
        var prompt = Enumerable.Range(0, 32).Select(_ => rng.Next(3, 32000)).ToArray();
        var toks = engines.Select(e => Sampler.ArgMax(e.Prefill(prompt))).ToArray();
        var times = variants.Select(_ => new List<double>()).ToArray();
        for (int r = 0; r < rounds; r++)
            for (int i = 0; i < engines.Length; i++)
            {
                int pos = prompt.Length + r % (480 - prompt.Length);
                before?.Invoke(i);
                long t0 = Stopwatch.GetTimestamp();
                var logits = engines[i].Step(toks[i], pos);
                times[i].Add(Stopwatch.GetElapsedTime(t0).TotalSeconds);
                toks[i] = Sampler.ArgMax(logits);
            }
        string load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";
        Console.WriteLine($"### A/B {label}, {rounds} alternating decode steps per variant, load average {load}");
        Console.WriteLine("| variant | fastest step tokens/s | median tokens/s | weight GB/s at the fastest step | at the median |");
        Console.WriteLine("|---|---|---|---|---|");
        for (int i = 0; i < engines.Length; i++)
        {
            double best = times[i].Min(), med = Median(times[i]);
            long bytes = variants[i].Model.WeightBytesPerToken;
            Console.WriteLine(string.Format(Inv, "| {0} | {1:0.00} | {2:0.00} | {3:0.0} | {4:0.0} |", variants[i].Name, 1 / best, 1 / med, bytes / best / 1e9, bytes / med / 1e9));
        }
    }

    /// <summary>The process's AnonHugePages from /proc/self/smaps_rollup (how much memory transparent huge pages back).</summary>
    private static string AnonHugeTotal()
    {
        const string path = "/proc/self/smaps_rollup";
        if (!File.Exists(path)) return "?";
        var line = File.ReadLines(path).FirstOrDefault(l => l.StartsWith("AnonHugePages:", StringComparison.Ordinal));
        return line is null ? "?" : string.Format(Inv, "{0:0.000} GB", long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], Inv) * 1024 / 1e9);
    }

    private static double Median(List<double> v) { var s = v.OrderBy(a => a).ToList(); return s[s.Count / 2]; }

    private static void Speculate(string label, LlamaModel target, LlamaModel draft, LlamaTokenizer? tok, int threads, int steps, int k)
    {
        var prompt = tok?.Encode("Once upon a time") ?? [1, 450, 4996, 17354, 1701];
        var te = new LlamaEngine(target, new KvCacheOptions(MaxPositions: Math.Min(512, target.Config.SeqLen)), threads);
        var de = new LlamaEngine(draft, new KvCacheOptions(MaxPositions: Math.Min(512, target.Config.SeqLen)), threads);
        double Plain()
        {
            te.Cache.Truncate(0, 0);
            var l = te.Prefill(prompt);
            var sw = Stopwatch.StartNew();
            int tkn = Sampler.ArgMax(l);
            for (int p = prompt.Length; p < steps; p++) { l = te.Step(tkn, p); tkn = Sampler.ArgMax(l); }
            return (steps - prompt.Length) / sw.Elapsed.TotalSeconds;
        }
        var spec = new SpeculativeDecoder(te, de);
        SpeculativeDecoder.Run Spec() => spec.Generate(prompt, steps, new Sampler(new SamplingOptions()), k);
        Plain(); Spec();
        var plain = Enumerable.Range(0, 3).Select(_ => Plain()).OrderBy(x => x).ToArray()[1];
        var runs = Enumerable.Range(0, 3).Select(_ => Spec()).OrderBy(r => r.DecodeSeconds).ToArray();
        var mid = runs[1];
        double specTps = mid.Tokens.Length / (mid.DecodeSeconds + mid.PrefillSeconds * 0);
        Console.WriteLine(string.Format(Inv, "speculative ({0}, greedy, {1} draft tokens, {2} threads): acceptance {3:P1}, {4:0.0} vs {5:0.0} tokens/s plain = {6:0.00}x",
            label, k, threads, mid.AcceptanceRate, specTps, plain, specTps / plain));
    }

    private static void Stories()
    {
        var folder = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "..", "..", "shared", "models", "llama2c"));
        var modelPath = Path.Combine(folder, "stories260K.bin");
        if (!File.Exists(modelPath)) { Console.WriteLine($"SKIPPED stories260K (missing {modelPath})"); return; }
        var ck = Llama2cReader.Read(modelPath);
        var tok = new LlamaTokenizer(Llama2cReader.ReadTokenizer(Path.Combine(folder, "tok512.bin"), ck.Config.VocabSize));
        var fp32 = LlamaModel.Load(ck, LlmWeights.Fp32);
        var refEngine = new LlamaEngine(fp32);
        var seqs = LlmQuality.Continuations(new LlamaGenerator(refEngine, tok), LlmQuality.DefaultPrompts, 200);
        Console.WriteLine("| stories260K weights | mean KL vs fp32 (nats) | max KL | top-1 agreement | perplexity (fp32 → quantized) |");
        Console.WriteLine("|---|---|---|---|---|");
        foreach (var w in new[] { LlmWeights.Int8, LlmWeights.Int4 })
        {
            var q = LlmQuality.Compare(refEngine, new LlamaEngine(LlamaModel.Load(ck, w)), seqs);
            Console.WriteLine(string.Format(Inv, "| {0} | {1:0.000000} | {2:0.0000} | {3:P2} | {4:0.000} → {5:0.000} |", w, q.MeanKl, q.MaxKl, q.Top1Agreement, q.ReferencePerplexity, q.CandidatePerplexity));
        }
        Speculate("stories260K fp32, int8 copy drafts", fp32, LlamaModel.Load(ck, LlmWeights.Int8), tok, 1, 256, 4);
        Speculate("stories260K fp32, int4 copy drafts", fp32, LlamaModel.Load(ck, LlmWeights.Int4), tok, 1, 256, 4);
        Speculate("stories260K fp32, first 3 of 5 layers draft", fp32, fp32.FirstLayers(3), tok, 1, 256, 2);
    }
}
