using System.CommandLine;
using OnDevice.Core;
using OnDevice.Formats.Npy;
using OnDevice.Runtime;

namespace OnDevice.Cli.Verbs;

/// <summary><c>ondevice run MODEL --input NAME=FILE.npy ...</c>: run a model once and write each output as .npy.</summary>
public static class RunVerb
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var model = new Argument<string>("model") { Description = "ONNX model file or sample name" };
        var inputs = new Option<string[]>("--input") { Description = "NAME=FILE.npy, or NAME=NUMBER for a scalar (repeatable)" };
        var shapes = new Option<string[]>("--shape") { Description = "NAME=1x3x48x320: random input of this shape (repeatable)" };
        var outDir = new Option<string>("--output-dir") { Description = "Folder for <output name>.npy files (default: current folder)" };
        var threads = new Option<int>("--threads") { Description = "Threads (default: all cores)", DefaultValueFactory = _ => Environment.ProcessorCount };
        var json = new Option<bool>("--json") { Description = "Print JSON" };
        var cmd = new Command("run", "Run a model once on given inputs and write every output as DIR/<output name>.npy")
        {
            model, inputs, shapes, outDir, threads, json,
        };
        cmd.SetAction(r =>
        {
            bool asJson = r.GetValue(json);
            var path = Cli.ResolveModel(r.GetValue(model)!, asJson);
            var session = InferenceSession.Load(path, new SessionOptions { Threads = Math.Max(1, r.GetValue(threads)) });
            var feeds = ModelInputs.Build(session, r.GetValue(inputs) ?? [], r.GetValue(shapes) ?? [], requireAll: false);
            var sw = System.Diagnostics.Stopwatch.StartNew();
            var outputs = session.Run(feeds);
            double ms = sw.Elapsed.TotalMilliseconds;
            var dir = r.GetValue(outDir) ?? ".";
            Directory.CreateDirectory(dir);
            var written = new List<object>();
            foreach (var (name, tensor) in outputs)
            {
                var file = Path.Combine(dir, SafeFileName(name) + ".npy");
                NpyFile.Write(file, tensor);
                written.Add(new { name, dtype = tensor.DType.Name(), shape = tensor.Dims, file = Path.GetFullPath(file) });
                if (!asJson) Console.WriteLine($"{name,-24} {tensor.DType.Name()}{Shape.Of(tensor.Dims)} -> {file}");
            }
            if (asJson) Cli.WriteJson(new { model = Path.GetFullPath(path), runMs = ms, outputs = written });
            else Console.WriteLine($"ran in {ms:0.00} ms (first run, includes planning)");
            return 0;
        });
        return cmd;
    }

    /// <summary>An output name as a file name (path separators and other unsafe characters replaced).</summary>
    public static string SafeFileName(string name)
    {
        var invalid = Path.GetInvalidFileNameChars();
        var s = new string(name.Select(c => invalid.Contains(c) || c is '/' or '\\' or ':' ? '_' : c).ToArray());
        return s is "" or "." or ".." ? "_" + s : s;
    }
}
