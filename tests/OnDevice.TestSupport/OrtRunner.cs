using System.Diagnostics;
using System.Text.Json;
using OnDevice.Core;
using OnDevice.Formats.Npy;

namespace OnDevice.TestSupport;

/// <summary>Runs models in ONNX Runtime 1.30.0 (onnxruntime-node through scripts/ort-reference/run-jobs.mjs): the peer
/// for agreement tests on models OnDevice writes or generates.</summary>
public static class OrtRunner
{
    private static readonly Lock Gate = new();

    /// <summary>One model run: outputs (and their names) in the session's output order, or ONNX Runtime's error.</summary>
    public sealed record Result(IReadOnlyList<Tensor> Outputs, string? Error, IReadOnlyList<string>? Names = null);

    /// <summary>Runs every (model, feeds) job in one node process.</summary>
    public static IReadOnlyList<Result> Run(IReadOnlyList<(string Model, IReadOnlyDictionary<string, Tensor> Feeds)> jobs) =>
        Run(jobs.Select(j => (j.Model, j.Feeds, "all")).ToList());

    /// <summary>Runs every (model, feeds, graph optimization level) job in one node process.</summary>
    public static IReadOnlyList<Result> Run(IReadOnlyList<(string Model, IReadOnlyDictionary<string, Tensor> Feeds, string Optimization)> jobs)
    {
        var script = Path.Combine(RepoPaths.Root, "scripts", "ort-reference");
        lock (Gate)
        {
            if (!Directory.Exists(Path.Combine(script, "node_modules", "onnxruntime-node")))
                Exec("npm", script, new() { ["ONNXRUNTIME_NODE_INSTALL"] = "skip" }, "install", "--no-audit", "--no-fund", "--silent");
        }
        using var dir = new TempDir();
        var list = new List<object>();
        for (int i = 0; i < jobs.Count; i++)
        {
            var inputs = new Dictionary<string, string>();
            foreach (var (name, t) in jobs[i].Feeds)
            {
                var f = dir.File($"in{i}.{inputs.Count}.npy");
                NpyFile.Write(f, t);
                inputs[name] = f;
            }
            list.Add(new { model = jobs[i].Model, inputs, @out = dir.File($"out{i}"), optimization = jobs[i].Optimization });
        }
        var jobsFile = dir.File("jobs.json");
        File.WriteAllText(jobsFile, JsonSerializer.Serialize(list));
        Exec("node", script, [], "run-jobs.mjs", "--jobs", jobsFile);
        var results = new List<Result>();
        for (int i = 0; i < jobs.Count; i++)
        {
            var o = dir.File($"out{i}");
            if (File.Exists(Path.Combine(o, "error.txt"))) { results.Add(new([], File.ReadAllText(Path.Combine(o, "error.txt")))); continue; }
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(o, "outputs.json")));
            var entries = doc.RootElement.EnumerateArray().ToList();
            results.Add(new(entries.Select(e => NpyFile.Read(Path.Combine(o, e.GetProperty("file").GetString()!))).ToList(), null,
                entries.Select(e => e.GetProperty("name").GetString()!).ToList()));
        }
        return results;
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
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed (exit {p.ExitCode}): {err.Result}{stdout}");
    }
}
