using OnDevice.Core;
using OnDevice.Evaluation.Data;
using OnDevice.Evaluation.Statistics;

namespace OnDevice.Evaluation.Tasks;

/// <summary>What one model produced on one example, scored.</summary>
/// <param name="Index">Example index.</param>
/// <param name="Stats">Per-example statistics (the columns <see cref="ITaskAdapter.StatNames"/>), summed by the metrics.</param>
/// <param name="Correct">Whether the example counts as correct (tasks with a correctness notion), else null.</param>
/// <param name="Output">The prediction as text, for reports.</param>
/// <param name="Ms">Model run time in milliseconds (0 for prediction files).</param>
public sealed record ExampleResult(int Index, double[] Stats, bool? Correct, string Output, double Ms);

/// <summary>A task: how examples become model inputs and how outputs are scored. Adding a task is one class.</summary>
public interface ITaskAdapter
{
    /// <summary>The task name on the command line.</summary>
    string Name { get; }

    /// <summary>Per-example statistic columns.</summary>
    IReadOnlyList<string> StatNames { get; }

    /// <summary>The metrics; the first is the primary one (verdicts and slices use it).</summary>
    IReadOnlyList<Metric> Metrics { get; }

    /// <summary>True when each example is correct or not (McNemar applies).</summary>
    bool HasCorrectness { get; }

    /// <summary>
    /// Binds a model (an ONNX file, or a predictions file for tasks that score predictions) to the dataset,
    /// checking every option, label and shape before any work.
    /// </summary>
    IBoundTask Bind(string model, Dataset data, TaskOptions options);
}

/// <summary>A task bound to one model and dataset.</summary>
public interface IBoundTask : IDisposable
{
    /// <summary>The model path.</summary>
    string Model { get; }

    /// <summary>The session running the model, or null for prediction files.</summary>
    Runtime.InferenceSession? Session { get; }

    /// <summary>Milliseconds spent loading the model.</summary>
    double LoadMs { get; }

    /// <summary>Model inputs for an example (null for prediction files).</summary>
    IReadOnlyDictionary<string, Tensor>? Prepare(Example example);

    /// <summary>Scores the model outputs (null for prediction files) for an example.</summary>
    ExampleResult Score(Example example, IReadOnlyDictionary<string, Tensor>? outputs, double ms);
}
