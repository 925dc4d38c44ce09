using OnDevice.Core;
using OnDevice.Evaluation.Data;
using OnDevice.Evaluation.Statistics;

namespace OnDevice.Evaluation.Tasks;

/// <summary>
/// CTC text recognition (PaddleOCR recognizers): PNG text lines through <see cref="CtcPreprocessing"/>, greedy CTC
/// decoding with the character list, CER and WER against the label; a line is correct when it matches exactly.
/// </summary>
public sealed class CtcTask : ITaskAdapter
{
    /// <inheritdoc/>
    public string Name => "ctc";

    /// <inheritdoc/>
    public IReadOnlyList<string> StatNames { get; } = ["examples", "charEdits", "refChars", "wordEdits", "refWords", "exact"];

    /// <inheritdoc/>
    public IReadOnlyList<Metric> Metrics { get; } =
    [
        Metric.Ratio("cer", false, 1, 2),
        Metric.Ratio("wer", false, 3, 4),
        Metric.Ratio("lineAccuracy", true, 5, 0),
    ];

    /// <inheritdoc/>
    public bool HasCorrectness => true;

    /// <inheritdoc/>
    public IBoundTask Bind(string model, Dataset data, TaskOptions options)
    {
        if (options.Dictionary is null) throw new EvaluationException("task ctc needs --dict FILE (the character list, e.g. ppocr_keys_v1.txt)");
        var dict = CtcDecoder.LoadDictionary(options.Dictionary);
        foreach (var e in data.Examples)
        {
            if (e.Label is null) throw new DatasetException($"task ctc needs a 'label' (the text) for every example; '{e.Id}' has none");
            if (e.File is null || !e.File.EndsWith(".png", StringComparison.OrdinalIgnoreCase)) throw new DatasetException($"task ctc reads PNG text lines; example '{e.Id}' is not a .png");
        }
        return new Bound(model, options, dict);
    }

    private sealed class Bound : ModelTask
    {
        private readonly string[] _dict;
        private readonly TaskOptions _options;
        private readonly string _input;

        public Bound(string model, TaskOptions options, string[] dict) : base(model, options)
        {
            _dict = dict;
            _options = options;
            _input = SingleInput("ctc").Name;
            var shape = OutputShape;
            if (shape is not null)
            {
                if (shape.Rank != 3)
                    throw new EvaluationException($"task ctc expects an output [N, T, classes]; '{OutputName}' of {Path.GetFileName(model)} is {shape}");
                if (shape[2].IsKnown && shape[2].Value != dict.Length)
                    throw new EvaluationException($"--dict gives {dict.Length} classes (blank + {dict.Length - 2} lines + space), but output '{OutputName}' has {shape[2].Value} classes");
            }
        }

        public override IReadOnlyDictionary<string, Tensor> Prepare(Example example) =>
            new Dictionary<string, Tensor> { [_input] = CtcPreprocessing.Prepare(PngDecoder.Decode(example.File!), _options.MinWidth, _options.MaxWidth) };

        public override ExampleResult Score(Example example, IReadOnlyDictionary<string, Tensor>? outputs, double ms)
        {
            var t = Scored(outputs);
            if (t.Dims.Length != 3 || t.Dims[2] != _dict.Length)
                throw new EvaluationException($"output '{OutputName}' is [{string.Join(",", t.Dims)}], expected [1, T, {_dict.Length}] for the dictionary");
            var text = CtcDecoder.Greedy(t.AsSpan<float>(), (int)t.Dims[1], (int)t.Dims[2], _dict);
            return ScoreText(example.Index, text, example.Label!, ms);
        }
    }

    /// <summary>
    /// Per-example statistics for a recognized line against its label. Both are trimmed first: the recognizer
    /// reads the zero padding right of a short line as spaces, which are not part of the text.
    /// </summary>
    public static ExampleResult ScoreText(int index, string predicted, string label, double ms)
    {
        predicted = predicted.Trim();
        label = label.Trim();
        var pc = TextMetrics.Characters(predicted);
        var lc = TextMetrics.Characters(label);
        var pw = TextMetrics.Words(predicted);
        var lw = TextMetrics.Words(label);
        bool exact = predicted == label;
        return new ExampleResult(index,
            [1, TextMetrics.Levenshtein(pc, lc), lc.Length, TextMetrics.Levenshtein(pw, lw), lw.Length, exact ? 1 : 0],
            exact, predicted, ms);
    }
}

/// <summary>Greedy CTC decoding with a PaddleOCR character list.</summary>
public static class CtcDecoder
{
    /// <summary>Classes: index 0 the blank, 1..N the file's lines, N + 1 a space (PaddleOCR's use_space_char).</summary>
    public static string[] LoadDictionary(string path)
    {
        if (!File.Exists(path)) throw new EvaluationException($"dictionary '{path}' not found");
        var lines = File.ReadAllText(path).Split('\n');
        if (lines.Length > 0 && lines[^1].Length == 0) lines = lines[..^1];
        if (lines.Length == 0) throw new EvaluationException($"dictionary '{path}' is empty");
        return ["", .. lines.Select(l => l.TrimEnd('\r')), " "];
    }

    /// <summary>Arg-max per time step, repeats merged, blanks dropped. <paramref name="probs"/> is [steps, classes] row-major.</summary>
    public static string Greedy(ReadOnlySpan<float> probs, int steps, int classes, string[] dictionary)
    {
        var sb = new System.Text.StringBuilder();
        int prev = -1;
        for (int t = 0; t < steps; t++)
        {
            var row = probs.Slice(t * classes, classes);
            int best = 0;
            for (int c = 1; c < classes; c++) if (row[c] > row[best]) best = c;
            if (best != prev && best != 0) sb.Append(dictionary[best]);
            prev = best;
        }
        return sb.ToString();
    }
}
