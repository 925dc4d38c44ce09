namespace OnDevice.TestSupport;

/// <summary>Locations in the repository and beside it.</summary>
public static class RepoPaths
{
    /// <summary>The repository root (the folder holding OnDevice.sln), found by walking up from the test binaries.</summary>
    public static string Root { get; } = FindRoot();

    private static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "OnDevice.sln"))) return d.FullName;
        throw new InvalidOperationException($"OnDevice.sln not found above {AppContext.BaseDirectory}");
    }

    /// <summary>True when running under CI (CI=true), where missing prerequisites must fail loudly.</summary>
    public static bool IsCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);
}
