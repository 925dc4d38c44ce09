using OnDevice.Core;
using OnDevice.Formats.Npy;

namespace OnDevice.Compression.Calibration;

/// <summary>A calibration set could not be used: missing, empty, or not matching the model's inputs.</summary>
public sealed class CalibrationSetException(string message) : Exception(message);

/// <summary>
/// Model inputs for calibration, one feed per sample. On disk a folder holds either one sub-folder per sample with
/// a <c>NAME.npy</c> per model input, or (single-input models) one <c>.npy</c> file per sample. Samples are loaded
/// lazily, one at a time, so a large set does not have to fit in memory.
/// </summary>
public sealed class CalibrationSet
{
    private readonly List<Func<IReadOnlyDictionary<string, Tensor>>> _samples;

    private CalibrationSet(string source, List<Func<IReadOnlyDictionary<string, Tensor>>> samples)
    {
        Source = source;
        _samples = samples;
    }

    /// <summary>Where the samples came from (a folder, or "memory").</summary>
    public string Source { get; }

    /// <summary>Number of samples.</summary>
    public int Count => _samples.Count;

    /// <summary>Reads sample <paramref name="index"/>: input name → tensor.</summary>
    public IReadOnlyDictionary<string, Tensor> this[int index] => _samples[index]();

    /// <summary>All samples in order, read lazily.</summary>
    public IEnumerable<IReadOnlyDictionary<string, Tensor>> Samples() => _samples.Select(s => s());

    /// <summary>A set from feeds already in memory (tests, programmatic use); checked against <paramref name="graph"/>.</summary>
    public static CalibrationSet FromFeeds(Graph graph, IReadOnlyList<IReadOnlyDictionary<string, Tensor>> feeds)
    {
        if (feeds.Count == 0) throw new CalibrationSetException("the calibration set is empty: give at least one sample");
        for (int i = 0; i < feeds.Count; i++) Check(graph, feeds[i], $"sample {i}");
        return new CalibrationSet("memory", feeds.Select(f => (Func<IReadOnlyDictionary<string, Tensor>>)(() => f)).ToList());
    }

    /// <summary>
    /// Opens the calibration folder <paramref name="dir"/> for <paramref name="graph"/>. Every sample's header is
    /// checked (names, dtype, rank and known dimensions) before returning, so a bad set fails before any work.
    /// </summary>
    public static CalibrationSet Load(string dir, Graph graph)
    {
        if (!Directory.Exists(dir)) throw new CalibrationSetException($"calibration folder '{dir}' does not exist");
        var inputs = ModelInputs(graph);
        var samples = new List<Func<IReadOnlyDictionary<string, Tensor>>>();
        var subdirs = Directory.GetDirectories(dir).Order(StringComparer.Ordinal).ToArray();
        var files = Directory.GetFiles(dir, "*.npy").Order(StringComparer.Ordinal).ToArray();
        if (subdirs.Length > 0)
        {
            foreach (var sd in subdirs)
            {
                var paths = inputs.ToDictionary(v => v.Name, v => Path.Combine(sd, v.Name + ".npy"));
                foreach (var (name, p) in paths)
                    if (!File.Exists(p)) throw new CalibrationSetException($"calibration sample '{sd}' has no '{name}.npy' for model input '{name}'");
                Check(graph, paths.ToDictionary(kv => kv.Key, kv => NpyFile.Read(kv.Value)), $"sample '{sd}'");
                samples.Add(() => paths.ToDictionary(kv => kv.Key, kv => NpyFile.Read(kv.Value)));
            }
        }
        else if (files.Length > 0)
        {
            if (inputs.Count != 1)
                throw new CalibrationSetException($"calibration folder '{dir}' holds loose .npy files, but the model has {inputs.Count} inputs ({string.Join(", ", inputs.Select(i => i.Name))}); use one sub-folder per sample with NAME.npy per input");
            string name = inputs[0].Name;
            foreach (var f in files)
            {
                Check(graph, new Dictionary<string, Tensor> { [name] = NpyFile.Read(f) }, $"sample '{f}'");
                samples.Add(() => new Dictionary<string, Tensor> { [name] = NpyFile.Read(f) });
            }
        }
        if (samples.Count == 0) throw new CalibrationSetException($"calibration folder '{dir}' is empty: no sample folders and no .npy files");
        return new CalibrationSet(dir, samples);
    }

    private static List<ValueInfo> ModelInputs(Graph graph) =>
        graph.Inputs.Where(i => !graph.Initializers.ContainsKey(i.Name)).ToList();

    private static void Check(Graph graph, IReadOnlyDictionary<string, Tensor> feed, string what)
    {
        foreach (var input in ModelInputs(graph))
        {
            if (!feed.TryGetValue(input.Name, out var t)) throw new CalibrationSetException($"{what}: missing model input '{input.Name}'");
            if (input.Type is not TensorTypeInfo tt) continue;
            if (tt.ElementType != t.DType)
                throw new CalibrationSetException($"{what}: input '{input.Name}' is {t.DType.Name()}, the model expects {tt.ElementType.Name()}");
            if (tt.Shape is { } s)
            {
                if (s.Rank != t.Dims.Length)
                    throw new CalibrationSetException($"{what}: input '{input.Name}' has shape [{string.Join(",", t.Dims)}], the model expects rank {s.Rank} ({s})");
                for (int d = 0; d < s.Rank; d++)
                    if (s[d].IsKnown && s[d].Value != t.Dims[d])
                        throw new CalibrationSetException($"{what}: input '{input.Name}' has shape [{string.Join(",", t.Dims)}], the model expects {s}");
            }
        }
        foreach (var name in feed.Keys)
            if (!ModelInputs(graph).Any(i => i.Name == name)) throw new CalibrationSetException($"{what}: '{name}' is not an input of the model");
    }
}
