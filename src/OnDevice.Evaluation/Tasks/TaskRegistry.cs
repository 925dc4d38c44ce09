namespace OnDevice.Evaluation.Tasks;

/// <summary>Every task by name.</summary>
public static class TaskRegistry
{
    /// <summary>The tasks, in the order they are listed in help.</summary>
    public static IReadOnlyList<ITaskAdapter> All { get; } =
        [new ClassificationTask(), new CtcTask(), new GenerationTask(), new RegressionTask(), new AgreementTask()];

    /// <summary>The task called <paramref name="name"/>.</summary>
    public static ITaskAdapter Get(string name) =>
        All.FirstOrDefault(t => string.Equals(t.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new EvaluationException($"unknown task '{name}'; tasks: {string.Join(", ", All.Select(t => t.Name))}");
}
