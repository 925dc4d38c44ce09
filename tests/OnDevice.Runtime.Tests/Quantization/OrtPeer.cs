using System.Diagnostics;
using OnDevice.Core;
using OnDevice.Formats.Npy;
using OnDevice.Formats.Onnx;
using OnDevice.TestSupport;

namespace OnDevice.Runtime.Tests.Quantization;

/// <summary>Runs a generated model in ONNX Runtime 1.30.0 (onnxruntime-node, scripts/ort-reference/run-model.mjs) on float32 inputs.</summary>
public static class OrtPeer
{
    private static readonly Lock Gate = new();

    /// <summary>ONNX Runtime's outputs by name, or null with the reason when node or onnxruntime-node is unavailable (fails under
    /// CI=true). <paramref name="optimization"/> is ONNX Runtime's graph optimization level (all, extended, basic, disabled).</summary>
    public static IReadOnlyDictionary<string, Tensor>? Run(Model model, IReadOnlyDictionary<string, Tensor> inputs, out string? why, string optimization = "all")
    {
        var script = Path.Combine(RepoPaths.Root, "scripts", "ort-reference");
        why = null;
        try
        {
            lock (Gate)
                if (!Directory.Exists(Path.Combine(script, "node_modules", "onnxruntime-node")))
                    Exec("npm", script, true, "install", "--no-audit", "--no-fund", "--silent");
            using var tmp = new TempDir();
            var modelPath = Path.Combine(tmp.Path, "model.onnx");
            OnnxWriter.Write(model, modelPath);
            foreach (var (name, t) in inputs) NpyFile.Write(Path.Combine(tmp.Path, $"input.{name}.npy"), t);
            Exec("node", script, false, "run-model.mjs", "--model", modelPath, "--dir", tmp.Path, "--opt", optimization);
            return model.Graph.Outputs.ToDictionary(o => o.Name, o => NpyFile.Read(Path.Combine(tmp.Path, $"output.{o.Name}.npy")));
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception && Environment.GetEnvironmentVariable("CI") != "true")
        {
            why = $"ONNX Runtime is not available ({e.Message})";
            return null;
        }
    }

    private static void Exec(string file, string dir, bool skipDownload, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (skipDownload) psi.Environment["ONNXRUNTIME_NODE_INSTALL"] = "skip";
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        var err = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed (exit {p.ExitCode}): {err.Result}{stdout}");
    }
}
