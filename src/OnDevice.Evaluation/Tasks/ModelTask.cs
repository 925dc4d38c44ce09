using System.Diagnostics;
using OnDevice.Core;
using OnDevice.Evaluation.Data;
using OnDevice.Runtime;

namespace OnDevice.Evaluation.Tasks;

/// <summary>Common plumbing for tasks that run an ONNX model: loading, output selection, shape checks.</summary>
public abstract class ModelTask : IBoundTask
{
    /// <summary>Loads the model with the options' thread count.</summary>
    protected ModelTask(string model, TaskOptions options)
    {
        Model = model;
        if (!File.Exists(model)) throw new EvaluationException($"model file '{model}' not found");
        var sw = Stopwatch.StartNew();
        Session = InferenceSession.Load(model, new SessionOptions { Threads = Math.Max(1, options.Threads) });
        LoadMs = sw.Elapsed.TotalMilliseconds;
        OutputName = options.Output ?? Session.Outputs[0].Name;
        if (!Session.Outputs.Any(o => o.Name == OutputName))
            throw new EvaluationException($"--output '{OutputName}' is not an output of {Path.GetFileName(model)}; outputs: {string.Join(", ", Session.Outputs.Select(o => o.Name))}");
    }

    /// <inheritdoc/>
    public string Model { get; }

    /// <inheritdoc/>
    public InferenceSession Session { get; }

    InferenceSession? IBoundTask.Session => Session;

    /// <inheritdoc/>
    public double LoadMs { get; }

    /// <summary>The output that is scored.</summary>
    public string OutputName { get; }

    /// <summary>The declared shape of the scored output (null when undeclared).</summary>
    protected Shape? OutputShape => Session.Outputs.First(o => o.Name == OutputName).TensorType?.Shape;

    /// <summary>The model's single input (most tasks feed one tensor).</summary>
    protected ValueInfo SingleInput(string task)
    {
        var inputs = Session.Inputs;
        if (inputs.Count != 1)
            throw new EvaluationException($"task {task} feeds one image tensor, but {Path.GetFileName(Model)} has {inputs.Count} inputs ({string.Join(", ", inputs.Select(i => i.Name))}); use .npy folders with the agreement or regression task");
        return inputs[0];
    }

    /// <inheritdoc/>
    public abstract IReadOnlyDictionary<string, Tensor>? Prepare(Example example);

    /// <inheritdoc/>
    public abstract ExampleResult Score(Example example, IReadOnlyDictionary<string, Tensor>? outputs, double ms);

    /// <summary>The scored output of a run.</summary>
    protected Tensor Scored(IReadOnlyDictionary<string, Tensor>? outputs) =>
        outputs?.GetValueOrDefault(OutputName) ?? throw new EvaluationException($"the model produced no output '{OutputName}'");

    /// <inheritdoc/>
    public void Dispose() => GC.SuppressFinalize(this);
}
