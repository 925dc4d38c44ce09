using System.Globalization;
using OnDevice.Core;
using OnDevice.Evaluation.Data;
using OnDevice.Evaluation.Statistics;
using OnDevice.Runtime;

namespace OnDevice.Evaluation.Tasks;

/// <summary>
/// Agreement with a reference model on the same inputs: cosine similarity of the scored output, its maximum
/// absolute difference, and top-1 agreement along the last axis (per position, e.g. per CTC time step). An
/// example counts as correct when every position's arg-max agrees. Labels are not needed.
/// </summary>
public sealed class AgreementTask : ITaskAdapter
{
    /// <inheritdoc/>
    public string Name => "agreement";

    /// <inheritdoc/>
    public IReadOnlyList<string> StatNames { get; } = ["examples", "cosine", "maxAbsDiff", "top1Agree", "positions", "allAgree"];

    /// <inheritdoc/>
    public IReadOnlyList<Metric> Metrics { get; } =
    [
        Metric.Ratio("top1Agreement", true, 3, 4),
        Metric.Ratio("cosine", true, 1, 0),
        Metric.Ratio("maxAbsDiff", false, 2, 0),
        Metric.Ratio("exampleAgreement", true, 5, 0),
    ];

    /// <inheritdoc/>
    public bool HasCorrectness => true;

    /// <inheritdoc/>
    public IBoundTask Bind(string model, Dataset data, TaskOptions options)
    {
        if (options.Reference is null) throw new EvaluationException("task agreement needs --reference MODEL (the model to agree with)");
        if (!File.Exists(options.Reference)) throw new EvaluationException($"reference model '{options.Reference}' not found");
        return new Bound(model, options);
    }

    private sealed class Bound : ModelTask
    {
        private readonly InferenceSession _reference;
        private readonly Func<Image, Tensor>? _png;

        public Bound(string model, TaskOptions options) : base(model, options)
        {
            _reference = InferenceSession.Load(options.Reference!, new SessionOptions { Threads = Math.Max(1, options.Threads) });
            _png = RegressionTask.Png(options, Session);
            var mine = string.Join(", ", Session.Inputs.Select(i => i.Name).Order());
            var theirs = string.Join(", ", _reference.Inputs.Select(i => i.Name).Order());
            if (mine != theirs) throw new EvaluationException($"{Path.GetFileName(model)} has inputs ({mine}), the reference has ({theirs})");
            if (!_reference.Outputs.Any(o => o.Name == OutputName))
                throw new EvaluationException($"the reference model has no output '{OutputName}' (it has {string.Join(", ", _reference.Outputs.Select(o => o.Name))}); choose one with --output");
            var a = OutputShape;
            var b = _reference.Outputs.First(o => o.Name == OutputName).TensorType?.Shape;
            if (a is not null && b is not null && (a.Rank != b.Rank || Enumerable.Range(0, a.Rank).Any(d => a[d].IsKnown && b[d].IsKnown && a[d].Value != b[d].Value)))
                throw new EvaluationException($"output '{OutputName}' is {a} in {Path.GetFileName(model)} but {b} in the reference");
        }

        // The feeds of the example prepared last, reused for the reference run.
        private (int Index, IReadOnlyDictionary<string, Tensor> Feeds)? _last;

        public override IReadOnlyDictionary<string, Tensor> Prepare(Example example)
        {
            var feeds = InputLoader.Load(example, Session.Inputs, _png);
            _last = (example.Index, feeds);
            return feeds;
        }

        public override ExampleResult Score(Example example, IReadOnlyDictionary<string, Tensor>? outputs, double ms)
        {
            var y = Scored(outputs);
            var feeds = _last is { } l && l.Index == example.Index ? l.Feeds : Prepare(example);
            var r = _reference.Run(feeds)[OutputName];
            if (!y.Dims.SequenceEqual(r.Dims))
                throw new EvaluationException($"example '{example.Id}': output '{OutputName}' is [{string.Join(",", y.Dims)}], the reference gives [{string.Join(",", r.Dims)}]");
            var a = y.ToFloatArray();
            var b = r.ToFloatArray();
            double dot = 0, na = 0, nb = 0, maxAbs = 0;
            for (int i = 0; i < a.Length; i++)
            {
                dot += (double)a[i] * b[i]; na += (double)a[i] * a[i]; nb += (double)b[i] * b[i];
                maxAbs = Math.Max(maxAbs, Math.Abs((double)a[i] - b[i]));
            }
            double cos = na == 0 && nb == 0 ? 1 : na == 0 || nb == 0 ? 0 : dot / Math.Sqrt(na * nb);
            int last = y.Dims.Length == 0 ? 1 : (int)y.Dims[^1];
            int positions = last == 0 ? 0 : a.Length / last, agree = 0;
            for (int p = 0; p < positions; p++)
                if (ArgMax(a.AsSpan(p * last, last)) == ArgMax(b.AsSpan(p * last, last))) agree++;
            bool all = agree == positions;
            return new ExampleResult(example.Index, [1, cos, maxAbs, agree, positions, all ? 1 : 0], all,
                string.Create(CultureInfo.InvariantCulture, $"cos {cos:0.000000} maxabs {maxAbs:G4} top1 {agree}/{positions}"), ms);
        }

        private static int ArgMax(ReadOnlySpan<float> v)
        {
            int best = 0;
            for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
            return best;
        }
    }
}
