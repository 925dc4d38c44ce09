using System.Text.Json;
using OnDevice.Core;
using OnDevice.Evaluation.Data;
using OnDevice.Evaluation.Statistics;

namespace OnDevice.Evaluation.Tasks;

/// <summary>
/// Text generation or summarization scored from prediction files: the "model" is a file with one prediction per
/// example in dataset order (<c>.txt</c>, one a line, or <c>.jsonl</c> with a <c>prediction</c> field); labels are the
/// references. ROUGE-L F1 (mean), corpus BLEU-4 and exact match on whitespace tokens.
/// </summary>
public sealed class GenerationTask : ITaskAdapter
{
    /// <inheritdoc/>
    public string Name => "generation";

    /// <inheritdoc/>
    public IReadOnlyList<string> StatNames { get; } = ["examples", "exact", "rougeL", "match1", "match2", "match3", "match4", "total1", "total2", "total3", "total4", "candidateLength", "referenceLength"];

    /// <inheritdoc/>
    public IReadOnlyList<Metric> Metrics { get; } =
    [
        Metric.Ratio("rougeL", true, 2, 0),
        new("bleu", true, s => TextMetrics.Bleu(s.AsSpan(3, 4), s.AsSpan(7, 4), s[11], s[12])),
        Metric.Ratio("exactMatch", true, 1, 0),
    ];

    /// <inheritdoc/>
    public bool HasCorrectness => true;

    /// <inheritdoc/>
    public IBoundTask Bind(string model, Dataset data, TaskOptions options)
    {
        foreach (var e in data.Examples)
            if (e.Label is null) throw new DatasetException($"task generation needs a reference as 'label' for every example; '{e.Id}' has none");
        var predictions = ReadPredictions(model);
        if (predictions.Count != data.Count)
            throw new EvaluationException($"prediction file '{model}' has {predictions.Count} predictions, the dataset has {data.Count} examples");
        return new Bound(model, predictions);
    }

    /// <summary>Reads a prediction file (.txt lines or .jsonl with "prediction").</summary>
    public static List<string> ReadPredictions(string path)
    {
        if (!File.Exists(path)) throw new EvaluationException($"prediction file '{path}' not found");
        var lines = File.ReadAllLines(path).ToList();
        if (lines.Count > 0 && lines[^1].Length == 0) lines.RemoveAt(lines.Count - 1);
        if (!path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase)) return lines;
        var result = new List<string>();
        for (int i = 0; i < lines.Count; i++)
        {
            try
            {
                using var doc = JsonDocument.Parse(lines[i]);
                if (!doc.RootElement.TryGetProperty("prediction", out var p) || p.ValueKind != JsonValueKind.String)
                    throw new EvaluationException($"{path}:{i + 1}: no string field 'prediction'");
                result.Add(p.GetString()!);
            }
            catch (JsonException e) { throw new EvaluationException($"{path}:{i + 1}: not valid JSON: {e.Message}"); }
        }
        return result;
    }

    private sealed class Bound(string model, List<string> predictions) : IBoundTask
    {
        public string Model => model;
        public Runtime.InferenceSession? Session => null;
        public double LoadMs => 0;
        public IReadOnlyDictionary<string, Tensor>? Prepare(Example example) => null;

        public ExampleResult Score(Example example, IReadOnlyDictionary<string, Tensor>? outputs, double ms)
        {
            string pred = predictions[example.Index], reference = example.Label!;
            var c = TextMetrics.Words(pred);
            var r = TextMetrics.Words(reference);
            var (m, t) = TextMetrics.NGramStats(c, r);
            bool exact = string.Join(' ', c) == string.Join(' ', r);
            return new ExampleResult(example.Index,
                [1, exact ? 1 : 0, TextMetrics.RougeL(c, r), m[0], m[1], m[2], m[3], t[0], t[1], t[2], t[3], c.Length, r.Length],
                exact, pred, 0);
        }

        public void Dispose() { }
    }
}
