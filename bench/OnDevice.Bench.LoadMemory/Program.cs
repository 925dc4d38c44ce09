using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using OnDevice.Formats.Onnx;

namespace OnDevice.Bench.LoadMemory;

/// <summary>
/// Measures how much memory loading an ONNX model costs. The parent writes a model of the requested size
/// once, then starts this program again per measurement (<c>--measure</c>) so each load happens in a fresh
/// process with a clean heap, and reports medians. Linux only (reads <c>/proc/self/status</c>).
/// </summary>
/// <remarks>
/// Usage: <c>dotnet run -c Release --project bench/OnDevice.Bench.LoadMemory -- [--size-mb 1024] [--external] [--runs 3]</c>
/// </remarks>
internal static class Program
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Load modes compared in one run: the default memory-mapped read and the read-into-one-array fallback.</summary>
    private static readonly (string Mode, string Label)[] Modes =
    [
        ("mmap", "MemoryMap = true (default)"),
        ("array", "MemoryMap = false (one array)"),
    ];

    private static readonly string[] Stages = ["baseline", "afterLoad", "afterTouch"];

    private static int Main(string[] args)
    {
        try
        {
            if (args.Length > 0 && args[0] == "--measure") return Measure(args);
            return Parent(args);
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            Console.Error.WriteLine("usage: OnDevice.Bench.LoadMemory [--size-mb N] [--external] [--runs N]");
            return 2;
        }
    }

    private sealed class UsageException(string message) : Exception(message);

    // ---------------------------------------------------------------- parent

    private static int Parent(string[] args)
    {
        int sizeMb = 1024, runs = 3;
        bool external = false;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--size-mb": sizeMb = IntArg(args, ref i, 1); break;
                case "--runs": runs = IntArg(args, ref i, 1); break;
                case "--external": external = true; break;
                default: throw new UsageException($"unknown argument '{args[i]}'");
            }
        }
        if (!ProcStatus.Available) throw new UsageException("/proc/self/status is missing; this benchmark needs Linux");

        var dir = Path.Combine(Path.GetTempPath(), "ondevice-bench-loadmem-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var path = Path.Combine(dir, "model.onnx");
            var sw = Stopwatch.StartNew();
            var (weights, side, expectedSum) = BenchModel.Write(path, sizeMb, external);
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            long modelBytes = ModelFiles(path).Sum(f => new FileInfo(f).Length);
            Console.WriteLine($"model: {weights} x MatMul weight float32[{side},{side}] ({Mib(modelBytes)} MiB on disk, {(external ? "weights in external data file" : "weights inline as raw_data")}), written in {sw.ElapsedMilliseconds} ms to {dir}");
            Console.WriteLine($"runtime: .NET {Environment.Version}, {Environment.ProcessorCount} cores, {Environment.OSVersion}");
            Console.WriteLine($"each measurement runs in a fresh child process; {runs} runs per mode, medians reported");
            Console.WriteLine();

            var results = Modes.ToDictionary(m => m.Mode, _ => new List<JsonElement>());
            for (int run = 1; run <= runs; run++)
            {
                foreach (var (mode, label) in Modes)
                {
                    var r = RunChild(path, mode);
                    results[mode].Add(r);
                    ulong sum = ulong.Parse(r.GetProperty("byteSum").GetString()!, Inv);
                    if (sum != expectedSum) throw new InvalidOperationException($"{mode} run {run}: weight byte sum {sum} != {expectedSum} written");
                    if (mode == "mmap" && !r.GetProperty("allMapped").GetBoolean()) throw new InvalidOperationException("mmap run: some initializer was not memory-mapped");
                    Console.WriteLine($"run {run} {mode,-5}: load {r.GetProperty("loadMs").GetDouble():F0} ms, "
                        + $"peak RssAnon +{Mib(Growth(r, "RssAnon", peak: true))} MiB, VmHWM +{Mib(Growth(r, "VmHWM", peak: true))} MiB, "
                        + $"RssFile after touch +{Mib(Growth(r, "RssFile", peak: false))} MiB");
                }
            }

            Console.WriteLine();
            PrintTables(results, modelBytes);
            return 0;
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); }
            catch (IOException e) { Console.Error.WriteLine($"warning: could not delete {dir}: {e.Message}"); }
        }
    }

    private static IEnumerable<string> ModelFiles(string path) =>
        Directory.EnumerateFiles(Path.GetDirectoryName(path)!).Where(f => Path.GetFileName(f).StartsWith(Path.GetFileName(path), StringComparison.Ordinal));

    private static int IntArg(string[] args, ref int i, int min)
    {
        if (i + 1 >= args.Length || !int.TryParse(args[i + 1], NumberStyles.None, Inv, out int v) || v < min)
            throw new UsageException($"{args[i]} needs an integer of at least {min}");
        i++;
        return v;
    }

    private static JsonElement RunChild(string modelPath, string mode)
    {
        var psi = new ProcessStartInfo { RedirectStandardOutput = true, UseShellExecute = false };
        var self = Environment.ProcessPath ?? throw new InvalidOperationException("cannot find this program's executable");
        if (string.Equals(Path.GetFileNameWithoutExtension(self), "dotnet", StringComparison.OrdinalIgnoreCase))
        {
            // Started as `dotnet OnDevice.Bench.LoadMemory.dll`: start the child the same way.
            psi.FileName = self;
            psi.ArgumentList.Add(typeof(Program).Assembly.Location);
        }
        else psi.FileName = self;
        psi.ArgumentList.Add("--measure");
        psi.ArgumentList.Add(modelPath);
        psi.ArgumentList.Add("--mode");
        psi.ArgumentList.Add(mode);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {psi.FileName}");
        var stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"measurement child ({mode}) exited with {p.ExitCode}:\n{stdout}");
        var line = stdout.Split('\n').LastOrDefault(l => l.StartsWith('{'))
            ?? throw new InvalidOperationException($"measurement child ({mode}) printed no JSON:\n{stdout}");
        return JsonDocument.Parse(line).RootElement.Clone();
    }

    private static long Stage(JsonElement r, string stage, string field) => r.GetProperty("stages").GetProperty(stage).GetProperty(field).GetInt64();

    /// <summary>Growth over the baseline: of the peak (VmHWM, sampled RssAnon/RssFile peak) or of the after-touch value.</summary>
    private static long Growth(JsonElement r, string field, bool peak)
    {
        long baseline = Stage(r, "baseline", field == "VmHWM" ? "VmRSS" : field);
        if (!peak) return Stage(r, "afterTouch", field) - baseline;
        long top = field switch
        {
            "VmHWM" => Stage(r, "afterTouch", "VmHWM"),
            "RssAnon" => Math.Max(r.GetProperty("peakRssAnon").GetInt64(), Stages.Max(s => Stage(r, s, "RssAnon"))),
            "RssFile" => Math.Max(r.GetProperty("peakRssFile").GetInt64(), Stages.Max(s => Stage(r, s, "RssFile"))),
            _ => Stages.Max(s => Stage(r, s, field)),
        };
        return top - baseline;
    }

    private static double Median(IEnumerable<double> values)
    {
        var v = values.Order().ToArray();
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }

    private static void PrintTables(Dictionary<string, List<JsonElement>> results, long modelBytes)
    {
        Console.WriteLine($"Medians (model {modelBytes} bytes = {Mib(modelBytes)} MiB; memory in MiB)");
        Console.WriteLine();
        Console.WriteLine($"{"mode",-30} {"stage",-11} {"VmHWM",8} {"VmRSS",8} {"RssAnon",8} {"RssFile",8}");
        foreach (var (mode, label) in Modes)
        {
            foreach (var stage in Stages)
            {
                var cells = MemSnapshot.Fields.Select(f => Median(results[mode].Select(r => (double)Stage(r, stage, f))));
                Console.WriteLine($"{(stage == "baseline" ? label : ""),-30} {stage,-11} {string.Join(" ", cells.Select(c => Mib(c).PadLeft(8)))}");
            }
        }
        Console.WriteLine();
        Console.WriteLine($"{"mode",-30} {"load ms",8} {"touch ms",9} {"+peak anon",11} {"+peak HWM",10} {"+file",8} {"anon/model",11} {"HWM/model",10}");
        foreach (var (mode, label) in Modes)
        {
            var rs = results[mode];
            double load = Median(rs.Select(r => r.GetProperty("loadMs").GetDouble()));
            double touch = Median(rs.Select(r => r.GetProperty("touchMs").GetDouble()));
            double anon = Median(rs.Select(r => (double)Growth(r, "RssAnon", peak: true)));
            double hwm = Median(rs.Select(r => (double)Growth(r, "VmHWM", peak: true)));
            double file = Median(rs.Select(r => (double)Growth(r, "RssFile", peak: false)));
            Console.WriteLine($"{label,-30} {load,8:F0} {touch,9:F0} {Mib(anon),11} {Mib(hwm),10} {Mib(file),8} {anon / modelBytes,11:F3} {hwm / modelBytes,10:F3}");
        }
        Console.WriteLine();
        Console.WriteLine("+peak anon: largest RssAnon seen (stages and a 2 ms sampler) minus baseline RssAnon.");
        Console.WriteLine("+peak HWM:  VmHWM after touching every weight byte minus baseline VmRSS (VmHWM is reset at baseline).");
        Console.WriteLine("+file:      RssFile after touching minus baseline RssFile (file-backed pages: the page cache, shared, not a copy).");
        Console.WriteLine("HWM/model near 2 would mean two copies of every weight were resident at once; near 1 means one copy.");
        Console.WriteLine("With mmap that one copy is file-backed (page cache: shared, reclaimable), so anon/model stays near 0.");
    }

    private static string Mib(double bytes) => (bytes / (1 << 20)).ToString("F1", Inv);

    // ---------------------------------------------------------------- child

    private static int Measure(string[] args)
    {
        if (args.Length != 4 || args[2] != "--mode" || !Modes.Any(m => m.Mode == args[3]))
            throw new UsageException("--measure PATH --mode mmap|array");
        string path = args[1], mode = args[3];
        var status = new ProcStatus();

        // Warm up the measuring code itself so its JIT work lands before the baseline.
        ByteSum.Of(new byte[4096]);
        using var sampler = new PeakSampler();
        sampler.Sample();
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        bool hwmReset = ProcStatus.TryResetPeak();
        var baseline = status.Read();
        sampler.Start();

        var sw = Stopwatch.StartNew();
        var model = OnnxReader.Read(path, new OnnxReadOptions { MemoryMap = mode == "mmap" });
        double loadMs = sw.Elapsed.TotalMilliseconds;
        sampler.Sample();
        var afterLoad = status.Read();

        sw.Restart();
        ulong sum = 0;
        bool allMapped = true;
        int count = 0;
        long weightBytes = 0;
        foreach (var t in model.Graph.Initializers.Values)
        {
            sum += ByteSum.Of(t.Bytes);
            allMapped &= t.IsMemoryMapped;
            weightBytes += t.ByteLength;
            count++;
        }
        double touchMs = sw.Elapsed.TotalMilliseconds;
        sampler.Sample();
        var afterTouch = status.Read();
        sampler.Dispose();
        GC.KeepAlive(model);

        long modelBytes = ModelFiles(path).Sum(f => new FileInfo(f).Length);
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteString("mode", mode);
            w.WriteNumber("modelBytes", modelBytes);
            w.WriteNumber("weightBytes", weightBytes);
            w.WriteNumber("initializers", count);
            w.WriteBoolean("allMapped", allMapped);
            w.WriteString("byteSum", sum.ToString(Inv));
            w.WriteNumber("loadMs", Math.Round(loadMs, 2));
            w.WriteNumber("touchMs", Math.Round(touchMs, 2));
            w.WriteBoolean("hwmReset", hwmReset);
            w.WriteNumber("peakRssAnon", sampler.PeakRssAnon);
            w.WriteNumber("peakRssFile", sampler.PeakRssFile);
            w.WriteStartObject("stages");
            foreach (var (name, s) in new[] { ("baseline", baseline), ("afterLoad", afterLoad), ("afterTouch", afterTouch) })
            {
                w.WriteStartObject(name);
                foreach (var f in MemSnapshot.Fields) w.WriteNumber(f, s[f]);
                w.WriteEndObject();
            }
            w.WriteEndObject();
            w.WriteEndObject();
        }
        Console.WriteLine(Encoding.UTF8.GetString(ms.ToArray()));
        return 0;
    }
}
