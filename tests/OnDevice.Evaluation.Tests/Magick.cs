using System.Diagnostics;
using OnDevice.TestSupport;

namespace OnDevice.Evaluation.Tests;

/// <summary>Runs ImageMagick's <c>convert</c> (installed by scripts/setup.sh) as an independent PNG encoder.</summary>
internal static class Magick
{
    public static bool Available { get; } = Probe();

    private static bool Probe()
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo("convert", "-version") { RedirectStandardOutput = true, UseShellExecute = false })!;
            p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return p.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception) { return false; }
    }

    /// <summary>Fails under CI, otherwise returns false so the caller can return early with a message.</summary>
    public static bool Require()
    {
        if (Available) return true;
        Assert.False(RepoPaths.IsCi, "ImageMagick 'convert' is required (scripts/setup.sh installs it)");
        Console.WriteLine("skipped: ImageMagick 'convert' not found (scripts/setup.sh installs it)");
        return false;
    }

    public static byte[] Run(params string[] args)
    {
        var psi = new ProcessStartInfo("convert") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        using var ms = new MemoryStream();
        p.StandardOutput.BaseStream.CopyTo(ms);
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"convert {string.Join(' ', args)} failed: {err.Result}");
        return ms.ToArray();
    }
}
