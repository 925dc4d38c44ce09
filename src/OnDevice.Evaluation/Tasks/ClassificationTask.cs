using System.Globalization;
using OnDevice.Core;
using OnDevice.Evaluation.Data;
using OnDevice.Evaluation.Statistics;

namespace OnDevice.Evaluation.Tasks;

/// <summary>Image classification: PNG → resize, normalize, channel order → class scores; top-1 and top-5 accuracy. Labels are class indices.</summary>
public sealed class ClassificationTask : ITaskAdapter
{
    /// <inheritdoc/>
    public string Name => "classification";

    /// <inheritdoc/>
    public IReadOnlyList<string> StatNames { get; } = ["examples", "top1", "top5"];

    /// <inheritdoc/>
    public IReadOnlyList<Metric> Metrics { get; } = [Metric.Ratio("top1", true, 1, 0), Metric.Ratio("top5", true, 2, 0)];

    /// <inheritdoc/>
    public bool HasCorrectness => true;

    /// <inheritdoc/>
    public IBoundTask Bind(string model, Dataset data, TaskOptions options)
    {
        if (options.ChannelOrder is not ("rgb" or "bgr")) throw new EvaluationException($"--channel-order must be rgb or bgr, not '{options.ChannelOrder}'");
        var labels = data.Examples.Select(e =>
            e.Label is not null && int.TryParse(e.Label, NumberStyles.Integer, CultureInfo.InvariantCulture, out int c) && c >= 0 ? c
            : throw new DatasetException($"task classification needs a class index as 'label'; example '{e.Id}' has '{e.Label}'")).ToArray();
        return new Bound(model, options, labels.Max());
    }

    private sealed class Bound : ModelTask
    {
        private readonly TaskOptions _o;
        private readonly ValueInfo _input;
        private readonly bool _nhwc;
        private readonly int _h, _w;

        public Bound(string model, TaskOptions options, int maxLabel) : base(model, options)
        {
            _o = options;
            _input = SingleInput("classification");
            var (nhwc, h, w) = ClassificationPreprocessing.Layout(_input.TensorType?.Shape);
            _nhwc = nhwc;
            (_h, _w) = options.Size ?? (h, w);
            if (_h <= 0 || _w <= 0) throw new EvaluationException($"input '{_input.Name}' has no fixed height and width ({_input.TensorType?.Shape}); give --size HxW");
            var shape = OutputShape;
            if (shape is not null)
            {
                if (shape.Rank is not (1 or 2)) throw new EvaluationException($"task classification expects scores [N, classes]; '{OutputName}' is {shape}");
                var classes = shape[shape.Rank - 1];
                if (classes.IsKnown && maxLabel >= classes.Value)
                    throw new EvaluationException($"labels go up to class {maxLabel}, but output '{OutputName}' has {classes.Value} classes");
            }
        }

        public override IReadOnlyDictionary<string, Tensor> Prepare(Example example)
        {
            if (example.File is null || !example.File.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
                return InputLoader.Load(example, Session.Inputs, null);
            return new Dictionary<string, Tensor> { [_input.Name] = ClassificationPreprocessing.Prepare(PngDecoder.Decode(example.File), _h, _w, _o.Mean, _o.Std, _o.ChannelOrder == "bgr", _nhwc) };
        }

        public override ExampleResult Score(Example example, IReadOnlyDictionary<string, Tensor>? outputs, double ms)
        {
            var scores = Scored(outputs).ToFloatArray();
            int label = int.Parse(example.Label!, CultureInfo.InvariantCulture);
            if (label >= scores.Length) throw new EvaluationException($"example '{example.Id}': label {label} but the model gives {scores.Length} scores");
            var top = Enumerable.Range(0, scores.Length).OrderByDescending(i => scores[i]).ThenBy(i => i).Take(5).ToArray();
            bool top1 = top[0] == label;
            return new ExampleResult(example.Index, [1, top1 ? 1 : 0, top.Contains(label) ? 1 : 0], top1, top[0].ToString(CultureInfo.InvariantCulture), ms);
        }
    }
}
