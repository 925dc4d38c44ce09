using System.Text.Json;

namespace OnDevice.Evaluation.Data;

/// <summary>One example of a dataset: an input (file or text), an optional label and extra fields used as slices.</summary>
/// <param name="Index">Position in the dataset (0-based).</param>
/// <param name="Id">A stable name: the input's path relative to the dataset folder, or the row number.</param>
/// <param name="File">Full path of the input file (PNG, .npy, or a folder of NAME.npy), or null for text inputs.</param>
/// <param name="Text">Text input (JSONL <c>text</c> field), or null.</param>
/// <param name="Label">The label as written in the labels file, or null when the dataset has none.</param>
/// <param name="Fields">Every other column or JSON field, as text (slice keys).</param>
public sealed record Example(int Index, string Id, string? File, string? Text, string? Label, IReadOnlyDictionary<string, string> Fields);

/// <summary>
/// A dataset folder. The labels file is <c>labels.tsv</c> (a header row, then one row per example, tab-separated)
/// or <c>labels.jsonl</c> (one JSON object per line). The column/field <c>file</c> names the input relative to the
/// folder (a PNG, a <c>.npy</c> tensor, or a sub-folder holding <c>NAME.npy</c> per model input), <c>text</c> holds
/// a text input, <c>label</c> the expected output; every other column is a slice field. Without a labels file, every
/// PNG, <c>.npy</c> and sub-folder is an unlabelled example (for agreement against a reference model).
/// </summary>
public sealed class Dataset
{
    private Dataset(string directory, string? labelsFile, IReadOnlyList<Example> examples)
    {
        Directory = directory;
        LabelsFile = labelsFile;
        Examples = examples;
    }

    /// <summary>The dataset folder.</summary>
    public string Directory { get; }

    /// <summary>The labels file used, or null.</summary>
    public string? LabelsFile { get; }

    /// <summary>The examples in file order.</summary>
    public IReadOnlyList<Example> Examples { get; }

    /// <summary>Number of examples.</summary>
    public int Count => Examples.Count;

    /// <summary>Names of the slice fields (columns other than file, text and label).</summary>
    public IReadOnlyList<string> FieldNames => Examples.SelectMany(e => e.Fields.Keys).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();

    /// <summary>The first <paramref name="n"/> examples (all when n ≤ 0).</summary>
    public Dataset Take(int n) => n <= 0 || n >= Count ? this : new Dataset(Directory, LabelsFile, Examples.Take(n).ToList());

    /// <summary>
    /// Opens <paramref name="directory"/>; <paramref name="labelsFile"/> overrides the default labels file.
    /// Every input file named is checked to exist before returning.
    /// </summary>
    public static Dataset Load(string directory, string? labelsFile = null)
    {
        if (!System.IO.Directory.Exists(directory)) throw new DatasetException($"dataset folder '{directory}' does not exist");
        var dir = Path.GetFullPath(directory);
        string? labels = labelsFile is not null ? Path.GetFullPath(labelsFile)
            : new[] { "labels.tsv", "labels.jsonl" }.Select(f => Path.Combine(dir, f)).FirstOrDefault(System.IO.File.Exists);
        if (labelsFile is not null && !System.IO.File.Exists(labels)) throw new DatasetException($"labels file '{labelsFile}' does not exist");
        List<Example> examples = labels is null ? Unlabelled(dir)
            : labels.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) || labels.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? ReadJsonl(dir, labels)
            : ReadTsv(dir, labels);
        if (examples.Count == 0)
            throw new DatasetException(labels is null ? $"dataset folder '{dir}' is empty: no labels.tsv/labels.jsonl and no .png/.npy inputs" : $"labels file '{labels}' has no examples");
        var missing = examples.Where(e => e.File is not null && !System.IO.File.Exists(e.File) && !System.IO.Directory.Exists(e.File)).ToList();
        if (missing.Count > 0)
            throw new DatasetException($"labels file '{labels}' names {missing.Count} missing input file(s), e.g. '{missing[0].Id}' (line for example {missing[0].Index + 1})");
        return new Dataset(dir, labels, examples);
    }

    private static List<Example> Unlabelled(string dir)
    {
        var inputs = System.IO.Directory.GetFiles(dir).Where(f => f.EndsWith(".png", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".npy", StringComparison.OrdinalIgnoreCase))
            .Concat(System.IO.Directory.GetDirectories(dir)).Order(StringComparer.Ordinal).ToList();
        return inputs.Select((f, i) => new Example(i, Path.GetRelativePath(dir, f), f, null, null, new Dictionary<string, string>())).ToList();
    }

    private static readonly string[] Reserved = ["file", "text", "label", "id"];

    private static List<Example> ReadTsv(string dir, string path)
    {
        var lines = System.IO.File.ReadAllLines(path);
        if (lines.Length == 0) return [];
        var header = lines[0].Split('\t').Select(h => h.Trim()).ToArray();
        int fileCol = Array.IndexOf(header, "file"), textCol = Array.IndexOf(header, "text"), labelCol = Array.IndexOf(header, "label"), idCol = Array.IndexOf(header, "id");
        if (fileCol < 0 && textCol < 0) throw new DatasetException($"{path}: the header row must have a 'file' or 'text' column (it has: {string.Join(", ", header)})");
        var examples = new List<Example>();
        for (int ln = 1; ln < lines.Length; ln++)
        {
            if (lines[ln].Length == 0) continue;
            var cells = lines[ln].TrimEnd('\r').Split('\t');
            if (cells.Length != header.Length) throw new DatasetException($"{path}:{ln + 1}: {cells.Length} columns, the header has {header.Length}");
            var fields = new Dictionary<string, string>(StringComparer.Ordinal);
            for (int c = 0; c < header.Length; c++) if (!Reserved.Contains(header[c])) fields[header[c]] = cells[c];
            examples.Add(Make(dir, examples.Count, fileCol >= 0 ? cells[fileCol] : null, textCol >= 0 ? cells[textCol] : null,
                labelCol >= 0 ? cells[labelCol] : null, idCol >= 0 ? cells[idCol] : null, fields, $"{path}:{ln + 1}"));
        }
        return examples;
    }

    private static List<Example> ReadJsonl(string dir, string path)
    {
        var examples = new List<Example>();
        int ln = 0;
        foreach (var line in System.IO.File.ReadLines(path))
        {
            ln++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonElement obj;
            try { obj = JsonDocument.Parse(line).RootElement; }
            catch (JsonException e) { throw new DatasetException($"{path}:{ln}: not valid JSON: {e.Message}"); }
            if (obj.ValueKind != JsonValueKind.Object) throw new DatasetException($"{path}:{ln}: expected a JSON object");
            string? file = null, text = null, label = null, id = null;
            var fields = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var p in obj.EnumerateObject())
            {
                string value = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : p.Value.GetRawText();
                switch (p.Name)
                {
                    case "file": file = value; break;
                    case "text": text = value; break;
                    case "label": label = value; break;
                    case "id": id = value; break;
                    default: fields[p.Name] = value; break;
                }
            }
            examples.Add(Make(dir, examples.Count, file, text, label, id, fields, $"{path}:{ln}"));
        }
        return examples;
    }

    private static Example Make(string dir, int index, string? file, string? text, string? label, string? id, Dictionary<string, string> fields, string where)
    {
        if (file is null && text is null) throw new DatasetException($"{where}: neither 'file' nor 'text' is given");
        string? full = null;
        if (file is not null)
        {
            if (file.Length == 0) throw new DatasetException($"{where}: empty 'file'");
            full = Path.GetFullPath(Path.Combine(dir, file));
        }
        return new Example(index, id ?? file ?? $"#{index + 1}", full, text, label, fields);
    }
}
