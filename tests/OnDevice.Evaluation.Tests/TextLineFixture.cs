using System.Diagnostics;
using OnDevice.Core;
using OnDevice.Formats.Onnx;
using OnDevice.TestSupport;

namespace OnDevice.Evaluation.Tests;

/// <summary>Renders a small clean/degraded text-line set once (scripts/render-textlines.sh) into a temp folder.</summary>
public sealed class TextLineFixture : IDisposable
{
    private readonly TempDir _dir = new();

    public TextLineFixture()
    {
        Dictionary = SampleModels.Companion("paddleocr-rec", "ppocr_keys_v1.txt");
        Recognizer = SampleModels.Path("paddleocr-rec");
        Available = Magick.Available;
        if (!Available) return;
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { Path.Combine(RepoPaths.Root, "scripts", "render-textlines.sh"), "--dict", Dictionary, "--out", _dir.Path, "--count", Count.ToString(System.Globalization.CultureInfo.InvariantCulture), "--seed", "5" })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"render-textlines.sh failed: {err.Result}");
    }

    public const int Count = 16;

    public bool Available { get; }

    public string Dictionary { get; }

    public string Recognizer { get; }

    public string Clean => Path.Combine(_dir.Path, "clean");

    public string Degraded => Path.Combine(_dir.Path, "degraded");

    public string Scratch(string name) => _dir.File(name);

    /// <summary>A copy of the recognizer with every weight rounded to <paramref name="bits"/>-bit per-channel levels.</summary>
    public string Perturbed(int bits)
    {
        var path = _dir.File($"rec-fq{bits}.onnx");
        if (File.Exists(path)) return path;
        var model = OnnxReader.Read(Recognizer);
        ConstantLifting.Lift(model.Graph);
        int qmax = (1 << (bits - 1)) - 1;
        foreach (var name in model.Graph.Initializers.Keys.ToList())
        {
            var t = model.Graph.Initializers[name];
            if (t.DType != DType.Float32 || t.Dims.Length < 2) continue;
            var w = t.ToFloatArray();
            int rows = (int)t.Dims[0], cols = w.Length / rows;
            for (int r = 0; r < rows; r++)
            {
                float max = 0;
                for (int i = 0; i < cols; i++) max = Math.Max(max, Math.Abs(w[r * cols + i]));
                if (max == 0) continue;
                float scale = max / qmax;
                for (int i = 0; i < cols; i++) w[r * cols + i] = Math.Clamp(MathF.Round(w[r * cols + i] / scale), -qmax, qmax) * scale;
            }
            model.Graph.Initializers[name] = Tensor.FromArray<float>(w, t.Dims, name);
        }
        OnnxWriter.Write(model, path);
        return path;
    }

    public void Dispose() => _dir.Dispose();
}

[CollectionDefinition("textlines")]
public sealed class TextLineCollection : ICollectionFixture<TextLineFixture>;
