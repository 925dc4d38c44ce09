using System.Diagnostics;
using OnDevice.TestSupport;

namespace OnDevice.Planning.Tests;

/// <summary>Files beside the repository and a runner for the real <c>ondevice</c> executable.</summary>
internal static class TestFiles
{
    /// <summary>
    /// The real llama2.c checkpoint ../shared/models/llama2c/stories260K.bin, or null (with a message) when it is
    /// absent outside CI; under CI (CI=true) a missing file fails the test.
    /// </summary>
    public static string? Stories260K()
    {
        var path = Path.GetFullPath(Path.Combine(RepoPaths.Root, "..", "shared", "models", "llama2c", "stories260K.bin"));
        if (File.Exists(path)) return path;
        if (RepoPaths.IsCi) Assert.Fail($"required test file missing: {path}");
        Console.WriteLine($"SKIPPED (file missing): {path}");
        return null;
    }

    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    /// <summary>Runs <c>ondevice</c> with <paramref name="args"/>; user device profiles are read from <paramref name="configDir"/>.</summary>
    public static Result Cli(string? configDir, params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "ondevice.dll");
        Assert.True(File.Exists(dll), $"ondevice.dll not found next to the tests ({dll})");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["ONDEVICE_CONFIG"] = configDir ?? Path.Combine(Path.GetTempPath(), "ondevice-test-no-config-" + Guid.NewGuid().ToString("N"));
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(TimeSpan.FromMinutes(5))) { p.Kill(true); Assert.Fail($"ondevice {string.Join(' ', args)} timed out"); }
        return new Result(p.ExitCode, output, err.Result);
    }
}
