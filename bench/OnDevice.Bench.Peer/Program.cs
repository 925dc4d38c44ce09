// Peer benchmark: OnDevice's runtime against ONNX Runtime (onnxruntime-node 1.30.0) on the same machine, same
// input bytes (the reference cases), same thread counts, alternating batches so machine drift hits both.
//
//   dotnet run -c Release --project bench/OnDevice.Bench.Peer -- [--rounds 7] [--batch 5] [--threads 1,2] [--models det,rec,cls,vad] [--markdown]
//   [--model-file FILE.onnx]   (a variant of the one selected model, e.g. a quantized recognizer, on the same inputs)
//   [--variants A.onnx,B.onnx]  (several variants of the one selected model, e.g. fp32 and int8: every engine × variant
//                                alternates within each round, so OnDevice fp32, OnDevice int8 and ORT int8 share the drift)
//   [--memory FILE.onnx]        (resident memory of one OnDevice session of FILE, a variant of the one selected model, in
//                                this fresh process: RssAnon / RssFile / managed heap before loading, after loading, and
//                                after a run; one line of JSON. Run it once per file and repetition.)
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using OnDevice.Core;
using OnDevice.Formats.Npy;
using OnDevice.Runtime;
using OnDevice.TestSupport;

var opts = ParseArgs(args);
int rounds = int.Parse(opts.GetValueOrDefault("rounds", "7"), CultureInfo.InvariantCulture);
int batch = int.Parse(opts.GetValueOrDefault("batch", "5"), CultureInfo.InvariantCulture);
var threadCounts = opts.GetValueOrDefault("threads", "1,2").Split(',').Select(int.Parse).ToArray();
var wanted = opts.GetValueOrDefault("models", "det,rec,cls,vad").Split(',');

var cases = new (string Key, string Sample, string Case, string Label)[]
{
    ("det", "paddleocr-det", "page640", "PP-OCRv4 det 1×3×640×640"),
    ("rec", "paddleocr-rec", "line0", "PP-OCRv4 rec 1×3×48×320"),
    ("cls", "paddleocr-cls", "line0", "mobile cls 1×3×48×192"),
    ("vad", "silero-vad", "chunk512", "Silero VAD 512 samples"),
};
var all = ReferenceOutputs.All();
var rows = new List<string>();
if (opts.TryGetValue("memory", out var memoryFile))
{
    var (_, mSample, mCase, _) = cases.First(c => wanted.Contains(c.Key));
    var mrc = all.Single(c => c.Sample == mSample && c.Name == mCase);
    var mfeeds = mrc.Inputs.ToDictionary(n => n, n => NpyFile.Read(mrc.InputFile(n)));
    MeasureMemory(memoryFile, mfeeds);
    return;
}
Console.WriteLine($"rounds {rounds} × batch {batch}, alternating; medians of per-run times");
foreach (var (key, sample, caseName, baseLabel) in cases.Where(c => wanted.Contains(c.Key)))
{
    string label = baseLabel;
    var rc = all.Single(c => c.Sample == sample && c.Name == caseName);
    if (opts.TryGetValue("variants", out var variantList))
    {
        var feedsV = rc.Inputs.ToDictionary(n => n, n => NpyFile.Read(rc.InputFile(n)));
        foreach (int threads in threadCounts)
            rows.AddRange(CompareVariants(baseLabel, variantList.Split(','), feedsV, rc.Inputs.Select(n => $"{n}={rc.InputFile(n)}").ToArray(), threads, rounds, batch));
        continue;
    }
    var modelPath = opts.TryGetValue("model-file", out var variant) ? variant : SampleModels.Path(sample);
    if (variant is not null) label += $" ({Path.GetFileName(variant)})";
    var feeds = rc.Inputs.ToDictionary(n => n, n => NpyFile.Read(rc.InputFile(n)));
    foreach (int threads in threadCounts)
    {
        var session = InferenceSession.Load(modelPath, new SessionOptions { Threads = threads });
        using var ort = new OrtServer(modelPath, threads, rc.Inputs.Select(n => $"{n}={rc.InputFile(n)}"));
        // Warm-up: at least 20 runs and 2 s per engine, so .NET's tiered JIT has promoted the hot code (steady state is
        // what a streaming app sees; cold start is measured separately by `ondevice bench`).
        var warm = Stopwatch.StartNew();
        for (int i = 0; i < 20 || warm.ElapsedMilliseconds < 2000; i++) session.Run(feeds);
        warm.Restart();
        while (warm.ElapsedMilliseconds < 1000) ort.Time(5);
        var ours = new List<double>();
        var theirs = new List<double>();
        for (int r = 0; r < rounds; r++)
        {
            theirs.AddRange(ort.Time(batch));
            ours.AddRange(TimeOurs(session, feeds, batch));
        }
        double a = Median(ours), b = Median(theirs);
        double macs = MacsOf(session, feeds);
        string gflops = macs > 0 ? $"{2 * macs / (a * 1e6):0.0}" : "";
        var line = string.Format(CultureInfo.InvariantCulture, "| {0} | {1} | {2:0.000} | {3:0.000} | {4:0.00} | {5} |", label, threads, a, b, a / b, gflops);
        rows.Add(line);
        Console.WriteLine(line);
    }
}
Console.WriteLine();
if (opts.ContainsKey("variants"))
{
    Console.WriteLine("| model (file) | threads | OnDevice ms (median) | ORT ms (median) | ratio OnDevice/ORT | speed-up vs first file | OnDevice CPU ms | ORT CPU ms | ratio (CPU) | speed-up (CPU) |");
    Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
}
else
{
    Console.WriteLine("| model | threads | OnDevice ms (median) | ORT ms (median) | ratio OnDevice/ORT | OnDevice GFLOP/s |");
    Console.WriteLine("|---|---:|---:|---:|---:|---:|");
}
foreach (var r in rows) Console.WriteLine(r);

static void MeasureMemory(string file, Dictionary<string, Tensor> feeds)
{
    static long Field(string name)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(name + ":", StringComparison.Ordinal))
                return long.Parse(line[(name.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
        return -1;
    }
    static (long Anon, long File, long Heap) Snap()
    {
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        return (Field("RssAnon"), Field("RssFile"), GC.GetTotalMemory(false));
    }
    var baseline = Snap();
    var session = InferenceSession.Load(file, new SessionOptions { Threads = 1 });
    var loaded = Snap();
    session.Run(feeds);
    var ran = Snap();
    long weightBytes = session.OptimizedGraph.Initializers.Values.Sum(t => t.DType == DType.String ? 0 : (long)t.Bytes.Length);
    Console.WriteLine(JsonSerializer.Serialize(new
    {
        file = Path.GetFileName(file),
        fileBytes = new FileInfo(file).Length,
        optimizedInitializerBytes = weightBytes,
        initializerBytesByType = session.OptimizedGraph.Initializers.Values.Where(t => t.DType != DType.String)
            .GroupBy(t => t.DType.Name()).ToDictionary(g => g.Key, g => g.Sum(t => (long)t.Bytes.Length)),
        blockQuantConvs = session.OptimizedGraph.Nodes.Count(n => n.OpType == "BlockQuantConv"),
        matMulNBits = session.OptimizedGraph.Nodes.Count(n => n.OpType == "MatMulNBits"),
        floatConvs = session.OptimizedGraph.Nodes.Count(n => n.OpType is "Conv" or "FusedConv"),
        rssAnonLoad = loaded.Anon - baseline.Anon,
        rssAnonRun = ran.Anon - baseline.Anon,
        rssFileLoad = loaded.File - baseline.File,
        heapLoad = loaded.Heap - baseline.Heap,
        heapRun = ran.Heap - baseline.Heap,
    }));
    GC.KeepAlive(session);
}

static List<string> CompareVariants(string label, string[] files, Dictionary<string, Tensor> feeds, string[] inputs, int threads, int rounds, int batch)
{
    var sessions = files.Select(f => InferenceSession.Load(f, new SessionOptions { Threads = threads })).ToArray();
    var servers = files.Select(f => new OrtServer(f, threads, inputs)).ToArray();
    try
    {
        foreach (var s in sessions)
        {
            var warm = Stopwatch.StartNew();
            for (int i = 0; i < 20 || warm.ElapsedMilliseconds < 2000; i++) s.Run(feeds);
        }
        foreach (var o in servers)
        {
            var warm = Stopwatch.StartNew();
            while (warm.ElapsedMilliseconds < 1000) o.Time(5);
        }
        var ours = files.Select(_ => new List<double>()).ToArray();
        var theirs = files.Select(_ => new List<double>()).ToArray();
        var oursCpu = files.Select(_ => new List<double>()).ToArray();
        var theirsCpu = files.Select(_ => new List<double>()).ToArray();
        for (int r = 0; r < rounds; r++)
            for (int v = 0; v < files.Length; v++)
            {
                var (ms, cpu) = servers[v].TimeWithCpu(batch);
                theirs[v].AddRange(ms);
                theirsCpu[v].AddRange(cpu);
                for (int i = 0; i < batch; i++)
                {
                    var c0 = Environment.CpuUsage.TotalTime;
                    long t0 = Stopwatch.GetTimestamp();
                    sessions[v].Run(feeds);
                    ours[v].Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                    oursCpu[v].Add((Environment.CpuUsage.TotalTime - c0).TotalMilliseconds);
                }
            }
        // Wall-clock medians, then process CPU-time medians (the steadier figure on a shared machine: time spent
        // waiting for a core does not count; one intra-op thread on both sides).
        var lines = new List<string>();
        double baseOurs = Median(ours[0]), baseOursCpu = Median(oursCpu[0]);
        for (int v = 0; v < files.Length; v++)
        {
            double a = Median(ours[v]), b = Median(theirs[v]), ac = Median(oursCpu[v]), bc = Median(theirsCpu[v]);
            var line = string.Format(CultureInfo.InvariantCulture, "| {0} ({1}) | {2} | {3:0.000} | {4:0.000} | {5:0.00} | {6:0.00}× | {7:0.000} | {8:0.000} | {9:0.00} | {10:0.00}× |",
                label, Path.GetFileName(files[v]), threads, a, b, a / b, baseOurs / a, ac, bc, ac / bc, baseOursCpu / ac);
            lines.Add(line);
            Console.WriteLine(line);
        }
        Console.WriteLine($"columns: model (file) | threads | OnDevice wall ms | ORT wall ms | OnDevice/ORT | speed-up vs OnDevice {Path.GetFileName(files[0])} | the same four on process CPU ms");
        return lines;
    }
    finally
    {
        foreach (var o in servers) o.Dispose();
    }
}

static IEnumerable<double> TimeOurs(InferenceSession s, Dictionary<string, Tensor> feeds, int n)
{
    var ms = new double[n];
    for (int i = 0; i < n; i++)
    {
        long t0 = Stopwatch.GetTimestamp();
        s.Run(feeds);
        ms[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
    }
    return ms;
}

static double MacsOf(InferenceSession s, Dictionary<string, Tensor> feeds)
{
    var shapes = feeds.ToDictionary(k => k.Key, k => k.Value.Dims);
    var m = new Model(s.Model.Graph);
    m.OpsetImports.AddRange(s.Model.OpsetImports);
    var facts = ShapeInference.Infer(m, shapes);
    var counts = MacCounter.CountAll(m.Graph, facts.ShapeOf);
    return counts.All(c => c.Macs.HasValue) ? counts.Sum(c => (double)c.Macs!.Value) : 0;
}

static double Median(List<double> v)
{
    var s = v.Order().ToArray();
    return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
}

static Dictionary<string, string> ParseArgs(string[] a)
{
    var d = new Dictionary<string, string>();
    for (int i = 0; i + 1 < a.Length; i++)
        if (a[i].StartsWith("--", StringComparison.Ordinal)) d[a[i][2..]] = a[++i];
    return d;
}

/// <summary>The ONNX Runtime side: a node process holding one session, timing batches on request.</summary>
sealed class OrtServer : IDisposable
{
    private readonly Process _p;

    public OrtServer(string model, int threads, IEnumerable<string> inputs)
    {
        var dir = Path.Combine(RepoPaths.Root, "scripts", "ort-reference");
        if (!Directory.Exists(Path.Combine(dir, "node_modules", "onnxruntime-node")))
            throw new InvalidOperationException($"run 'ONNXRUNTIME_NODE_INSTALL=skip npm install' in {dir} first (scripts/setup.sh does)");
        var psi = new ProcessStartInfo("node") { WorkingDirectory = dir, RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { "bench-server.mjs", "--model", model, "--threads", threads.ToString(CultureInfo.InvariantCulture) }) psi.ArgumentList.Add(a);
        foreach (var i in inputs) { psi.ArgumentList.Add("--input"); psi.ArgumentList.Add(i); }
        _p = Process.Start(psi)!;
        var ready = _p.StandardOutput.ReadLine();
        if (ready is null || !ready.Contains("ready")) throw new InvalidOperationException($"ORT bench server did not start: {ready}");
    }

    public double[] Time(int n)
    {
        _p.StandardInput.WriteLine(n.ToString(CultureInfo.InvariantCulture));
        _p.StandardInput.Flush();
        var line = _p.StandardOutput.ReadLine() ?? throw new InvalidOperationException("ORT bench server exited");
        using var doc = JsonDocument.Parse(line);
        return doc.RootElement.GetProperty("ms").EnumerateArray().Select(e => e.GetDouble()).ToArray();
    }

    public (double[] Ms, double[] Cpu) TimeWithCpu(int n)
    {
        _p.StandardInput.WriteLine(n.ToString(CultureInfo.InvariantCulture));
        _p.StandardInput.Flush();
        var line = _p.StandardOutput.ReadLine() ?? throw new InvalidOperationException("ORT bench server exited");
        using var doc = JsonDocument.Parse(line);
        return (doc.RootElement.GetProperty("ms").EnumerateArray().Select(e => e.GetDouble()).ToArray(),
            doc.RootElement.GetProperty("cpu").EnumerateArray().Select(e => e.GetDouble()).ToArray());
    }

    public void Dispose()
    {
        _p.StandardInput.Close();
        if (!_p.WaitForExit(5000)) _p.Kill();
        _p.Dispose();
    }
}
