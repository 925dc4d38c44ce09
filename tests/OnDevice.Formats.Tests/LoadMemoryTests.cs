using OnDevice.Core;
using OnDevice.Formats.Onnx;
using OnDevice.TestSupport;
using Xunit.Abstractions;

namespace OnDevice.Formats.Tests;

/// <summary>Memory measurements read process-wide counters, so these tests must not share the process with others running.</summary>
[CollectionDefinition("LoadMemory", DisableParallelization = true)]
public sealed class LoadMemoryCollection;

/// <summary>
/// Loading a model must not hold a second copy of its weights: with the default memory-mapped read, weight bytes are
/// file-backed pages of the mapping (RssFile), not anonymous memory (RssAnon). The 1 GiB figures are in bench/RESULTS.md.
/// </summary>
[Collection("LoadMemory")]
public sealed class LoadMemoryTests(ITestOutputHelper output)
{
    private const int Side = 4096;        // float32[4096, 4096] = 64 MiB per weight
    private const int WeightCount = 4;    // 256 MiB of weights

    [Fact]
    public void MappedLoad_TouchingEveryWeight_GrowsFileBackedNotAnonymousMemory()
    {
        using var dir = new TempDir();
        var path = dir.File("big.onnx");
        // The originals stay alive (and so inside the baseline) to check the loaded bytes against.
        var originals = WriteChain(path, WeightCount, Side, external: false);
        long modelBytes = new FileInfo(path).Length;
        Assert.True(modelBytes >= WeightCount * (long)Side * Side * 4);

        // Let earlier tests' mappings and garbage go before the baseline, so nothing shrinks during the measurement.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        var before = ReadStatus();

        var model = OnnxReader.Read(path);
        var loaded = model.Graph.Initializers.Values.ToList();
        Assert.Equal(WeightCount, loaded.Count);
        Assert.All(loaded, t => Assert.True(t.IsMemoryMapped, $"{t} was copied instead of mapped"));
        // Comparing reads every byte of every weight, which faults each page of the mapping in.
        for (int i = 0; i < loaded.Count; i++)
            Assert.True(loaded[i].ContentEquals(originals[i]), $"{loaded[i]} differs from what was written");

        var after = ReadStatus();
        GC.KeepAlive(model);
        GC.KeepAlive(originals);

        if (before is null || after is null || !before.ContainsKey("RssAnon") || !after.ContainsKey("RssAnon"))
        {
            output.WriteLine("SKIPPED memory assertion: /proc/self/status has no RssAnon line (Linux 4.5+ needed); only mapping and content were checked");
            return;
        }
        long anonGrowth = after["RssAnon"] - before["RssAnon"];
        long fileGrowth = after["RssFile"] - before["RssFile"];
        output.WriteLine($"model {Mib(modelBytes)} MiB: RssAnon {Mib(before["RssAnon"])} -> {Mib(after["RssAnon"])} MiB (+{Mib(anonGrowth)}), "
            + $"RssFile {Mib(before["RssFile"])} -> {Mib(after["RssFile"])} MiB (+{Mib(fileGrowth)})");
        Assert.True(anonGrowth < modelBytes / 4,
            $"anonymous memory grew by {Mib(anonGrowth)} MiB loading a {Mib(modelBytes)} MiB model: the weights were copied");
        Assert.True(fileGrowth >= modelBytes * 9 / 10,
            $"file-backed memory grew by only {Mib(fileGrowth)} MiB after touching a {Mib(modelBytes)} MiB model: the bytes did not come from the mapping");
    }

    [Fact]
    public void ExternalData_TensorsInASideFile_AreMappedAndEqualAfterReading()
    {
        using var dir = new TempDir();
        var path = dir.File("ext.onnx");
        var originals = WriteChain(path, count: 3, side: 512, external: true);
        var dataFile = path + ".data";
        Assert.True(File.Exists(dataFile), "the writer made no external data file");
        long weightBytes = originals.Sum(t => t.ByteLength);
        Assert.True(new FileInfo(dataFile).Length >= weightBytes);
        Assert.True(new FileInfo(path).Length < weightBytes / 100, "weights were written inline, not to the side file");

        var model = OnnxReader.Read(path);
        var loaded = model.Graph.Initializers.Values.ToList();
        Assert.Equal(originals.Count, loaded.Count);
        for (int i = 0; i < loaded.Count; i++)
        {
            Assert.Equal(originals[i].Name, loaded[i].Name);
            Assert.True(loaded[i].IsMemoryMapped, $"{loaded[i]} was copied instead of mapped from the side file");
            Assert.True(loaded[i].ContentEquals(originals[i]), $"{loaded[i]} differs from what was written");
        }
        GC.KeepAlive(model);
    }

    /// <summary>Writes x -> MatMul(w0) -> ... -> MatMul(w{count-1}) -> y with pseudo-random float32 weights; returns the weights.</summary>
    private static List<Tensor> WriteChain(string path, int count, int side, bool external)
    {
        var g = new Graph { Name = "load_memory" };
        g.Inputs.Add(new ValueInfo("h0", new TensorTypeInfo(DType.Float32, Shape.Of(1, side))));
        var weights = new List<Tensor>();
        for (int i = 0; i < count; i++)
        {
            var w = Tensor.Zeros(DType.Float32, [side, side], $"w{i}");
            Fill(w.MutableBytes, (ulong)i + 1);
            weights.Add(g.AddInitializer(w));
            g.AddNode(new Node("MatMul", [$"h{i}", $"w{i}"], [$"h{i + 1}"], $"matmul{i}"));
        }
        g.Outputs.Add(new ValueInfo($"h{count}", new TensorTypeInfo(DType.Float32, Shape.Of(1, side))));
        var model = new Model(g);
        model.OpsetImports.Add(new OpsetImport("", 17));
        OnnxWriter.Write(model, path, new OnnxWriteOptions { ExternalData = external ? ExternalDataMode.Always : ExternalDataMode.Never });
        return weights;
    }

    /// <summary>Deterministic pseudo-random bytes (xorshift64), eight at a time; distinct per seed.</summary>
    private static void Fill(Span<byte> bytes, ulong seed)
    {
        var words = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(bytes);
        ulong x = 0x9E3779B97F4A7C15UL * seed | 1;
        for (int i = 0; i < words.Length; i++)
        {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            words[i] = x;
        }
    }

    /// <summary>The kB fields of /proc/self/status in bytes, or null when the file does not exist (not Linux).</summary>
    private static Dictionary<string, long>? ReadStatus()
    {
        const string status = "/proc/self/status";
        if (!File.Exists(status)) return null;
        var fields = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var line in File.ReadLines(status))
        {
            int colon = line.IndexOf(':');
            if (colon <= 0 || !line.EndsWith(" kB", StringComparison.Ordinal)) continue;
            if (long.TryParse(line.AsSpan(colon + 1, line.Length - colon - 4).Trim(), out long kb)) fields[line[..colon]] = kb * 1024;
        }
        return fields;
    }

    private static string Mib(long bytes) => (bytes / (1024.0 * 1024)).ToString("F1", System.Globalization.CultureInfo.InvariantCulture);
}
