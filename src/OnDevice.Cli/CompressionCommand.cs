using System.CommandLine;
using OnDevice.Compression.Calibration;
using OnDevice.Compression.Quantization;
using OnDevice.Core;
using OnDevice.Formats.Onnx;
using OnDevice.Cli.Verbs;

namespace OnDevice.Cli;

/// <summary>
/// What the weight-compression verbs that rewrite one model share (<c>palettize</c>, <c>prune</c>): the MODEL argument,
/// <c>--output</c>, <c>--exclude</c>, <c>--calibration</c>, <c>--report</c> and <c>--json</c>, and the run around the
/// compression itself (check the output paths, read the model, load calibration samples, save, report).
/// </summary>
internal sealed class CompressionCommand
{
    private readonly Argument<string> _model = new("model") { Description = "ONNX model file, or the name of a sample" };
    private readonly Option<string> _output;
    private readonly Option<string[]> _exclude;
    private readonly Option<string?> _calibration = new("--calibration") { Description = "Folder of .npy samples: measure each layer's output error on them" };
    private readonly Option<string?> _report = new("--report") { Description = "Write the per-layer report (JSON) to this file" };
    private readonly Option<bool> _json = new("--json") { Description = "Print one JSON object (sizes and the per-layer table)" };

    /// <param name="outputDescription">Help of <c>--output</c>.</param>
    /// <param name="excludeDescription">Help of <c>--exclude</c>.</param>
    public CompressionCommand(string outputDescription, string excludeDescription)
    {
        _output = new Option<string>("--output", "-o") { Description = outputDescription, Required = true };
        _exclude = new Option<string[]>("--exclude") { Description = excludeDescription };
    }

    /// <summary>
    /// The command: MODEL, <c>--output</c>, then <paramref name="options"/>, then the shared options. Its action
    /// checks the verb's own options (<paramref name="check"/>, before any work), then runs
    /// <paramref name="compress"/> under the status <paramref name="status"/>.
    /// </summary>
    public Command Create<TSettings>(string name, string description, Option[] options, Func<ParseResult, TSettings> check, string status,
        Func<Model, TSettings, IReadOnlyList<string>, CalibrationSet?, CompressionResult> compress)
    {
        var cmd = new Command(name, description) { _model, _output };
        foreach (var o in options) cmd.Options.Add(o);
        cmd.Options.Add(_exclude);
        cmd.Options.Add(_calibration);
        cmd.Options.Add(_report);
        cmd.Options.Add(_json);
        cmd.SetAction(r =>
        {
            bool asJson = r.GetValue(_json);
            var settings = check(r);
            string outPath = r.GetValue(_output)!;
            string? reportPath = r.GetValue(_report);
            QuantizeVerb.CheckWritable(outPath, "--output");
            if (reportPath is not null) QuantizeVerb.CheckWritable(reportPath, "--report");
            var path = Cli.ResolveModel(r.GetValue(_model)!, asJson);
            var m = OnnxReader.Read(path);
            CalibrationSet? cal = r.GetValue(_calibration) is { } dir ? QuantizeVerb.Wrap(() => CalibrationSet.Load(dir, m.Graph)) : null;
            var exclude = r.GetValue(_exclude) ?? [];
            var result = QuantizeVerb.Wrap(() => Cli.WithStatus(asJson, status, () => compress(m, settings, exclude, cal)));
            QuantizeVerb.Wrap(() => result.Save(outPath));
            QuantizeVerb.Finish(result, path, outPath, reportPath, asJson);
            return 0;
        });
        return cmd;
    }
}
