namespace OnDevice.TestSupport;

/// <summary>Files under ../shared beside the repository (never copied into it).</summary>
public static class SharedFiles
{
    /// <summary>The folder ../shared relative to the repository root.</summary>
    public static string Root => Path.GetFullPath(Path.Combine(RepoPaths.Root, "..", "shared"));

    /// <summary>
    /// The path of ../shared/<paramref name="parts"/>, or null (with a "SKIPPED" message naming the file) when it is
    /// missing; under CI (CI=true) a missing file fails the test.
    /// </summary>
    public static string? Find(params string[] parts)
    {
        var path = Path.Combine([Root, .. parts]);
        if (File.Exists(path)) return path;
        if (RepoPaths.IsCi) Xunit.Assert.Fail($"required test file missing: {path}");
        Console.WriteLine($"SKIPPED (file missing): {path}");
        return null;
    }
}
