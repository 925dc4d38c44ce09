using OnDevice.Core;
using OnDevice.Formats.Onnx;
using OnDevice.TestSupport;

namespace OnDevice.Runtime.Tests.Quantization;

/// <summary>Runs a generated model in ONNX Runtime 1.30.0 (through <see cref="OrtRunner"/>) on float32 inputs.</summary>
public static class OrtPeer
{
    /// <summary>ONNX Runtime's outputs by name, or null with the reason when node or onnxruntime-node is unavailable (fails under
    /// CI=true). <paramref name="optimization"/> is ONNX Runtime's graph optimization level (all, extended, basic, disabled).</summary>
    public static IReadOnlyDictionary<string, Tensor>? Run(Model model, IReadOnlyDictionary<string, Tensor> inputs, out string? why, string optimization = "all")
    {
        why = null;
        try
        {
            using var tmp = new TempDir();
            var modelPath = Path.Combine(tmp.Path, "model.onnx");
            OnnxWriter.Write(model, modelPath);
            var r = OrtRunner.Run([(modelPath, inputs, optimization)])[0];
            if (r.Error is not null) throw new InvalidOperationException($"ONNX Runtime failed on the model: {r.Error}");
            return r.Names!.Zip(r.Outputs).ToDictionary(p => p.First, p => p.Second);
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception && !RepoPaths.IsCi)
        {
            why = $"ONNX Runtime is not available ({e.Message})";
            return null;
        }
    }
}
