using System.Text.Json;
using OnDevice.TestSupport;

namespace OnDevice.Cli.Tests;

/// <summary><c>ondevice delta make|apply</c> on a real model and an edited copy of it.</summary>
public class DeltaCliTests
{
    [Fact]
    public void Make_then_apply_rebuilds_the_new_file_and_a_tampered_patch_is_refused()
    {
        using var dir = new TempDir();
        var v1 = SampleModels.Path("paddleocr-cls");
        var bytes = File.ReadAllBytes(v1);
        var largest = OnDevice.Formats.TensorLayout.LocateOnnx(bytes).MaxBy(t => t.Length)!;
        for (long i = largest.Offset; i < largest.Offset + largest.Length; i += 7) bytes[i] ^= 1; // one layer's weights change slightly
        var v2 = dir.File("v2.onnx");
        File.WriteAllBytes(v2, bytes);

        var make = CliRunner.Run("delta", "make", v1, v2, "-o", dir.File("p.delta"), "--json");
        Assert.True(make.ExitCode == 0, make.Stderr + make.Stdout);
        using var doc = JsonDocument.Parse(make.Stdout);
        var root = doc.RootElement;
        Assert.True(root.GetProperty("tensorAware").GetBoolean());
        Assert.True(root.GetProperty("offered").GetBoolean());
        Assert.Equal(new FileInfo(dir.File("p.delta")).Length, root.GetProperty("patchBytes").GetInt64());
        Assert.True(root.GetProperty("ratio").GetDouble() < 0.2, make.Stdout);

        var apply = CliRunner.Run("delta", "apply", v1, dir.File("p.delta"), "-o", dir.File("out.onnx"));
        Assert.True(apply.ExitCode == 0, apply.Stderr + apply.Stdout);
        Assert.Equal(bytes, File.ReadAllBytes(dir.File("out.onnx")));

        var patch = File.ReadAllBytes(dir.File("p.delta"));
        patch[^10] ^= 0x20;
        File.WriteAllBytes(dir.File("bad.delta"), patch);
        var bad = CliRunner.Run("delta", "apply", v1, dir.File("bad.delta"), "-o", dir.File("bad.onnx"));
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("patch", bad.Stderr);
        Assert.False(File.Exists(dir.File("bad.onnx")));
    }
}
