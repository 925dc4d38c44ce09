using System.Globalization;
using System.Text.Json;
using OnDevice.Core;
using OnDevice.Evaluation.Data;
using OnDevice.Evaluation.Statistics;

namespace OnDevice.Evaluation.Tasks;

/// <summary>Regression: the model's output values against numeric labels (a number or a JSON array); MAE and RMSE over all values.</summary>
public sealed class RegressionTask : ITaskAdapter
{
    /// <inheritdoc/>
    public string Name => "regression";

    /// <inheritdoc/>
    public IReadOnlyList<string> StatNames { get; } = ["examples", "absError", "squaredError", "values"];

    /// <inheritdoc/>
    public IReadOnlyList<Metric> Metrics { get; } =
    [
        Metric.Ratio("mae", false, 1, 3),
        new("rmse", false, s => s[3] == 0 ? double.NaN : Math.Sqrt(s[2] / s[3])),
    ];

    /// <inheritdoc/>
    public bool HasCorrectness => false;

    /// <inheritdoc/>
    public IBoundTask Bind(string model, Dataset data, TaskOptions options)
    {
        var labels = data.Examples.Select(e => ParseLabel(e)).ToArray();
        int count = labels[0].Length;
        var odd = data.Examples.FirstOrDefault(e => labels[e.Index].Length != count);
        if (odd is not null) throw new DatasetException($"labels have different lengths: '{data.Examples[0].Id}' has {count} values, '{odd.Id}' has {labels[odd.Index].Length}");
        return new Bound(model, options, labels);
    }

    private static double[] ParseLabel(Example e)
    {
        if (e.Label is null) throw new DatasetException($"task regression needs a numeric 'label'; example '{e.Id}' has none");
        if (double.TryParse(e.Label, NumberStyles.Float, CultureInfo.InvariantCulture, out var v)) return [v];
        try
        {
            using var doc = JsonDocument.Parse(e.Label);
            if (doc.RootElement.ValueKind == JsonValueKind.Array) return doc.RootElement.EnumerateArray().Select(x => x.GetDouble()).ToArray();
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or FormatException) { }
        throw new DatasetException($"example '{e.Id}': label '{e.Label}' is not a number or a JSON array of numbers");
    }

    private sealed class Bound : ModelTask
    {
        private readonly double[][] _labels;
        private readonly Func<Image, Tensor>? _png;

        public Bound(string model, TaskOptions options, double[][] labels) : base(model, options)
        {
            _labels = labels;
            _png = Png(options, Session);
            var shape = OutputShape;
            if (shape?.ElementCount is long n && n != labels[0].Length)
                throw new EvaluationException($"labels have {labels[0].Length} value(s) per example, but output '{OutputName}' has {n} ({shape})");
        }

        public override IReadOnlyDictionary<string, Tensor> Prepare(Example example) => InputLoader.Load(example, Session.Inputs, _png);

        public override ExampleResult Score(Example example, IReadOnlyDictionary<string, Tensor>? outputs, double ms)
        {
            var y = Scored(outputs).ToFloatArray();
            var label = _labels[example.Index];
            if (y.Length != label.Length) throw new EvaluationException($"example '{example.Id}': the model gave {y.Length} values, the label has {label.Length}");
            double abs = 0, sq = 0;
            for (int i = 0; i < y.Length; i++) { double d = y[i] - label[i]; abs += Math.Abs(d); sq += d * d; }
            return new ExampleResult(example.Index, [1, abs, sq, y.Length], null, string.Join(" ", y.Select(v => v.ToString("G6", CultureInfo.InvariantCulture))), ms);
        }
    }

    /// <summary>The PNG preprocessor chosen by --preprocess, or null.</summary>
    internal static Func<Image, Tensor>? Png(TaskOptions o, Runtime.InferenceSession session) => o.Preprocess switch
    {
        null => null,
        "ctc" => img => CtcPreprocessing.Prepare(img, o.MinWidth, o.MaxWidth),
        "classification" => Classification(o, session),
        _ => throw new EvaluationException($"--preprocess must be ctc or classification, not '{o.Preprocess}'"),
    };

    private static Func<Image, Tensor> Classification(TaskOptions o, Runtime.InferenceSession session)
    {
        var (nhwc, h, w) = ClassificationPreprocessing.Layout(session.Inputs[0].TensorType?.Shape);
        (h, w) = o.Size ?? (h, w);
        if (h <= 0 || w <= 0) throw new EvaluationException("--preprocess classification needs a fixed input size; give --size HxW");
        return img => ClassificationPreprocessing.Prepare(img, h, w, o.Mean, o.Std, o.ChannelOrder == "bgr", nhwc);
    }
}
