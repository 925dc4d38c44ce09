namespace OnDevice.Evaluation;

/// <summary>An evaluation cannot run: bad dataset, bad options, or a model that does not fit the task.</summary>
public class EvaluationException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>A dataset folder, labels file or input file is missing or malformed.</summary>
public class DatasetException(string message, Exception? inner = null) : EvaluationException(message, inner);

/// <summary>A PNG file is corrupt, truncated, too large or uses a feature the decoder does not support.</summary>
public sealed class PngFormatException(string file, string fault) : DatasetException($"{file}: {fault}")
{
    /// <summary>The file (or a description of the buffer) that failed.</summary>
    public string File { get; } = file;

    /// <summary>What is wrong with it.</summary>
    public string Fault { get; } = fault;
}
