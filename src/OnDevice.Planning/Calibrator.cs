using System.Diagnostics;
using System.Globalization;
using System.Numerics;
using System.Runtime.InteropServices;
using OnDevice.Core;
using OnDevice.Runtime;

namespace OnDevice.Planning;

/// <summary>Options of <see cref="Calibrator.Run"/>.</summary>
public sealed record CalibrationOptions
{
    /// <summary>Profile name.</summary>
    public string Name { get; init; } = "this-machine";

    /// <summary>Smaller buffers and shorter timings (for tests and a first look).</summary>
    public bool Quick { get; init; }

    /// <summary>Threads for the bandwidth and GEMM measurements (default: all processors).</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;
}

/// <summary>
/// Measures this machine into a <see cref="DeviceProfile"/>: RAM and available memory, read bandwidth, and fp32/int8
/// GEMM throughput through the runtime's own kernels (a generated single-node <c>MatMul</c> / <c>MatMulInteger</c>
/// model run by <see cref="InferenceSession"/>). A GEMM the runtime has no kernel for is recorded under
/// <see cref="DeviceProfile.Missing"/> instead of a number.
/// </summary>
public static class Calibrator
{
    /// <summary>Runs the measurements.</summary>
    public static DeviceProfile Run(CalibrationOptions options, IProgress<string>? progress = null)
    {
        if (options.Threads < 1) throw new PlanningException($"threads must be at least 1, got {options.Threads}");
        string when = DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm'Z'", CultureInfo.InvariantCulture);
        string cpu = CpuName();
        var missing = new List<string>();
        var notes = new List<string>();

        progress?.Report("memory");
        var (ram, ramHow) = TotalMemory();
        var (available, availableHow) = AvailableMemory(ram);

        progress?.Report("memory bandwidth");
        long bufferBytes = options.Quick ? 64L << 20 : 512L << 20;
        int reps = options.Quick ? 3 : 7;
        double bwAll = ReadBandwidth(bufferBytes, options.Threads, reps);
        double bwOne = ReadBandwidth(bufferBytes, 1, reps);
        notes.Add(string.Create(CultureInfo.InvariantCulture, $"read bandwidth with 1 thread: {bwOne / 1e9:0.0} GB/s; with {options.Threads}: {bwAll / 1e9:0.0} GB/s"));

        var ops = new Dictionary<string, Figure>();
        progress?.Report("fp32 GEMM");
        int n = options.Quick ? 128 : 512;
        double seconds = options.Quick ? 0.2 : 1.0;
        switch (MeasureGemm(DType.Float32, n, options.Threads, seconds))
        {
            case (double v, null):
                ops["fp32"] = new Figure { Value = v, Source = $"measured by 'ondevice devices calibrate' {when}: runtime MatMul {n}×{n}×{n}, {options.Threads} thread(s)" };
                break;
            case (_, string why):
                missing.Add($"fp32 GEMM throughput: not measured — {why}");
                break;
        }
        progress?.Report("int8 GEMM");
        switch (MeasureGemm(DType.Int8, n, options.Threads, seconds))
        {
            case (double v, null):
                ops["int8"] = new Figure { Value = v, Source = $"measured by 'ondevice devices calibrate' {when}: runtime MatMulInteger {n}×{n}×{n}, {options.Threads} thread(s)" };
                break;
            case (_, string why):
                missing.Add($"int8 GEMM throughput: not measured — {why}");
                break;
        }

        return new DeviceProfile
        {
            Name = options.Name,
            DisplayName = $"This machine ({cpu}, {Environment.ProcessorCount} logical processors)",
            Kind = "host",
            Soc = cpu,
            RamBytes = new Figure { Value = ram, Source = $"measured by 'ondevice devices calibrate' {when}: {ramHow}" },
            AppBudgetBytes = new Figure { Value = Math.Min(available, ram), Source = $"measured by 'ondevice devices calibrate' {when}: {availableHow}" },
            MemoryBandwidthBytesPerSecond = new Figure
            {
                Value = bwAll,
                Source = string.Create(CultureInfo.InvariantCulture, $"measured by 'ondevice devices calibrate' {when}: sequential reads of a {bufferBytes >> 20} MiB buffer, {options.Threads} thread(s), best of {reps}"),
            },
            Compute = ops.Count > 0
                ? new Dictionary<string, ComputeUnit> { ["cpu"] = new() { Description = $"{cpu}, {options.Threads} thread(s), OnDevice runtime kernels", OpsPerSecond = ops } }
                : [],
            Missing = missing,
            Notes = string.Join("; ", notes),
            Origin = "calibration",
        }.Validate();
    }

    /// <summary>Best-of-<paramref name="reps"/> read bandwidth over a buffer of <paramref name="bytes"/>, bytes per second.</summary>
    public static double ReadBandwidth(long bytes, int threads, int reps)
    {
        int vectorBytes = Vector<long>.Count * sizeof(long);
        long chunk = bytes / threads / vectorBytes * vectorBytes;
        if (chunk <= 0) throw new PlanningException("buffer too small for the thread count");
        var buffers = new long[threads][];
        for (int t = 0; t < threads; t++)
        {
            buffers[t] = GC.AllocateUninitializedArray<long>((int)(chunk / sizeof(long)));
            buffers[t].AsSpan().Fill(t + 1); // touch every page so reads hit memory, not the zero page
        }
        double best = 0;
        long sink = 0;
        for (int r = 0; r < reps; r++)
        {
            var sums = new long[threads];
            long t0 = Stopwatch.GetTimestamp();
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t => sums[t] = Sum(buffers[t]));
            double s = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            sink += sums.Sum();
            best = Math.Max(best, chunk * threads / s);
        }
        GC.KeepAlive(sink);
        return best;
    }

    private static long Sum(long[] data)
    {
        var v = MemoryMarshal.Cast<long, Vector<long>>(data);
        Vector<long> a0 = default, a1 = default, a2 = default, a3 = default;
        int i = 0;
        for (; i + 4 <= v.Length; i += 4)
        {
            a0 += v[i]; a1 += v[i + 1]; a2 += v[i + 2]; a3 += v[i + 3];
        }
        for (; i < v.Length; i++) a0 += v[i];
        return Vector.Sum(a0 + a1 + a2 + a3);
    }

    /// <summary>
    /// Operations per second of an n×n×n GEMM through the runtime (2·n³ per run), or the reason it cannot be
    /// measured. The result is checked against a scalar dot product so a wrong kernel is not timed.
    /// </summary>
    public static (double? OpsPerSecond, string? Missing) MeasureGemm(DType type, int n, int threads, double seconds)
    {
        var model = GemmModel(type, n, out var a, out var b);
        InferenceSession session;
        try { session = new InferenceSession(model, new SessionOptions { Threads = threads }); }
        catch (Runtime.Kernels.UnsupportedOperatorException e) { return (null, $"the runtime has no kernel for it yet ({e.Message})"); }
        var feeds = new Dictionary<string, Tensor> { ["A"] = a };
        var y = session.Run(feeds)["C"];
        if (!Agrees(type, a, b, y, n)) return (null, "the runtime's result disagrees with a scalar reference; not timed");
        int runs = 0;
        long t0 = Stopwatch.GetTimestamp();
        double elapsed;
        do
        {
            session.Run(feeds);
            runs++;
            elapsed = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        } while (elapsed < seconds || runs < 3);
        return (2.0 * n * n * (double)n * runs / elapsed, null);
    }

    private static Model GemmModel(DType type, int n, out Tensor a, out Tensor b)
    {
        var rng = new Random(42);
        var g = new Graph { Name = "calibration_gemm" };
        if (type == DType.Float32)
        {
            a = Tensor.FromArray<float>(Enumerable.Range(0, n * n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray(), [n, n]);
            b = Tensor.FromArray<float>(Enumerable.Range(0, n * n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray(), [n, n], "B");
            g.Inputs.Add(ValueInfo.Tensor("A", DType.Float32, Shape.Of(n, n)));
            g.AddInitializer(b);
            g.Nodes.Add(new Node("MatMul", ["A", "B"], ["C"], "gemm"));
            g.Outputs.Add(ValueInfo.Tensor("C", DType.Float32, Shape.Of(n, n)));
        }
        else
        {
            a = Tensor.FromArray<byte>(Enumerable.Range(0, n * n).Select(_ => (byte)rng.Next(256)).ToArray(), [n, n]);
            b = Tensor.FromArray<sbyte>(Enumerable.Range(0, n * n).Select(_ => (sbyte)rng.Next(-128, 128)).ToArray(), [n, n], "B");
            g.Inputs.Add(ValueInfo.Tensor("A", DType.UInt8, Shape.Of(n, n)));
            g.AddInitializer(b);
            g.Nodes.Add(new Node("MatMulInteger", ["A", "B"], ["C"], "gemm"));
            g.Outputs.Add(ValueInfo.Tensor("C", DType.Int32, Shape.Of(n, n)));
        }
        var m = new Model(g);
        m.OpsetImports.Add(new OpsetImport("", 17));
        return m;
    }

    private static bool Agrees(DType type, Tensor a, Tensor b, Tensor y, int n)
    {
        foreach (var (i, j) in new[] { (0, 0), (n - 1, n - 1), (n / 2, n / 3) })
        {
            if (type == DType.Float32)
            {
                var av = a.AsSpan<float>(); var bv = b.AsSpan<float>(); var yv = y.AsSpan<float>();
                double dot = 0, mag = 0;
                for (int k = 0; k < n; k++) { dot += (double)av[i * n + k] * bv[k * n + j]; mag += Math.Abs((double)av[i * n + k] * bv[k * n + j]); }
                if (Math.Abs(yv[i * n + j] - dot) > 1e-4 * mag + 1e-5) return false;
            }
            else
            {
                var av = a.AsSpan<byte>(); var bv = b.AsSpan<sbyte>(); var yv = y.AsSpan<int>();
                long dot = 0;
                for (int k = 0; k < n; k++) dot += av[i * n + k] * bv[k * n + j];
                if (yv[i * n + j] != dot) return false;
            }
        }
        return true;
    }

    private static string CpuName()
    {
        try
        {
            if (File.Exists("/proc/cpuinfo"))
                foreach (var line in File.ReadLines("/proc/cpuinfo"))
                    if (line.StartsWith("model name", StringComparison.Ordinal) && line.IndexOf(':') is int c and > 0)
                        return line[(c + 1)..].Trim();
        }
        catch (IOException) { }
        return RuntimeInformation.ProcessArchitecture.ToString();
    }

    private static long? MemInfo(string key)
    {
        try
        {
            if (!File.Exists("/proc/meminfo")) return null;
            foreach (var line in File.ReadLines("/proc/meminfo"))
                if (line.StartsWith(key + ":", StringComparison.Ordinal))
                {
                    var parts = line[(key.Length + 1)..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    return long.Parse(parts[0], CultureInfo.InvariantCulture) * 1024;
                }
        }
        catch (IOException) { }
        return null;
    }

    private static (long Bytes, string How) TotalMemory() =>
        MemInfo("MemTotal") is { } t ? (t, "/proc/meminfo MemTotal") : (GC.GetGCMemoryInfo().TotalAvailableMemoryBytes, ".NET GC total available memory");

    private static (long Bytes, string How) AvailableMemory(long ram)
    {
        long gcLimit = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes; // honours container limits
        if (MemInfo("MemAvailable") is { } avail)
            return avail <= gcLimit ? (avail, "/proc/meminfo MemAvailable at calibration time") : (gcLimit, ".NET GC memory limit (container), below MemAvailable");
        return (Math.Min(gcLimit, ram), ".NET GC total available memory");
    }
}
