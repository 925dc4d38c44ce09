namespace OnDevice.Formats;

/// <summary>A model or tensor file is malformed, truncated, hostile or unsupported. Names the file and the fault.</summary>
public class ModelFormatException : Exception
{
    /// <summary>Creates the exception for <paramref name="path"/> (may be null for in-memory input).</summary>
    public ModelFormatException(string? path, string fault, Exception? inner = null)
        : base(path is null ? fault : $"{path}: {fault}", inner)
    {
        FilePath = path;
        Fault = fault;
    }

    /// <summary>The file at fault, when the input came from a file.</summary>
    public string? FilePath { get; }

    /// <summary>What is wrong, without the file name.</summary>
    public string Fault { get; }
}
