using System.Diagnostics;
using System.Text.Json;
using OnDevice.Samples;

namespace OnDevice.TestSupport;

/// <summary>One reference case: a sample model, fixed inputs and ONNX Runtime's outputs, as .npy files.</summary>
public sealed record ReferenceCase(string Sample, string Name, string Directory, string? Text, IReadOnlyList<string> Inputs, IReadOnlyList<(string Name, string File)> Outputs)
{
    /// <summary>Path of the .npy holding input <paramref name="name"/>.</summary>
    public string InputFile(string name) => Path.Combine(Directory, $"input.{name}.npy");

    /// <inheritdoc/>
    public override string ToString() => $"{Sample}/{Name}";
}

/// <summary>
/// ONNX Runtime reference outputs for every sample model, generated once into the cache by
/// <c>scripts/ort-reference/make-references.mjs</c> (onnxruntime-node 1.30.0, installed with
/// <c>ONNXRUNTIME_NODE_INSTALL=skip npm install</c>).
/// </summary>
public static class ReferenceOutputs
{
    private static readonly Lock Gate = new();

    /// <summary>Where the references live.</summary>
    public static string Directory => Path.Combine(SampleStore.DefaultCacheDirectory(), "reference", "ort-1.30.0");

    /// <summary>Every case, generating them first when needed.</summary>
    public static IReadOnlyList<ReferenceCase> All()
    {
        Ensure();
        var cases = new List<ReferenceCase>();
        foreach (var file in System.IO.Directory.GetFiles(Directory, "case.json", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(file));
            var r = doc.RootElement;
            cases.Add(new ReferenceCase(
                r.GetProperty("sample").GetString()!,
                r.GetProperty("case").GetString()!,
                Path.GetDirectoryName(file)!,
                r.GetProperty("text").ValueKind == JsonValueKind.String ? r.GetProperty("text").GetString() : null,
                r.GetProperty("inputs").EnumerateArray().Select(e => e.GetString()!).ToList(),
                r.GetProperty("outputs").EnumerateArray().Select(e => (e.GetProperty("name").GetString()!, Path.Combine(Path.GetDirectoryName(file)!, e.GetProperty("file").GetString()!))).ToList()));
        }
        return cases;
    }

    /// <summary>Generates the references unless they are complete.</summary>
    public static void Ensure()
    {
        lock (Gate)
        {
            if (File.Exists(Path.Combine(Directory, "COMPLETE"))) return;
            var script = Path.Combine(RepoPaths.Root, "scripts", "ort-reference");
            if (!System.IO.Directory.Exists(Path.Combine(script, "node_modules", "onnxruntime-node")))
                Exec("npm", script, new() { ["ONNXRUNTIME_NODE_INSTALL"] = "skip" }, "install", "--no-audit", "--no-fund", "--silent");

            var store = SampleStore.Default();
            var samples = SampleCatalog.All.Select(s => new { name = s.Name, path = store.Ensure(s) }).ToList();
            var tmp = Directory + $".tmp-{Environment.ProcessId}";
            if (System.IO.Directory.Exists(tmp)) System.IO.Directory.Delete(tmp, true);
            System.IO.Directory.CreateDirectory(tmp);
            var list = Path.Combine(tmp, "samples.json");
            File.WriteAllText(list, JsonSerializer.Serialize(new { samples }));
            Exec("node", script, [], "make-references.mjs", "--samples", list, "--out", tmp);
            if (System.IO.Directory.Exists(Directory)) System.IO.Directory.Delete(Directory, true);
            System.IO.Directory.Move(tmp, Directory);
        }
    }

    private static void Exec(string file, string workDir, Dictionary<string, string> env, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { WorkingDirectory = workDir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        var err = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed (exit {p.ExitCode}): {err.Result}{stdout}");
    }
}
