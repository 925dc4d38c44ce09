using System.CommandLine;
using System.Globalization;
using OnDevice.Compression.Calibration;
using OnDevice.Compression.Pruning;
using OnDevice.Formats.Onnx;

namespace OnDevice.Cli.Verbs;

/// <summary><c>ondevice prune MODEL -o OUT --sparsity S</c>: magnitude pruning (unstructured, 2:4, output channels).</summary>
public static class PruneVerb
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var model = new Argument<string>("model") { Description = "ONNX model file, or the name of a sample" };
        var output = new Option<string>("--output", "-o") { Description = "Where to write the pruned model", Required = true };
        var sparsity = new Option<string>("--sparsity") { Description = "Fraction of weights (unstructured) or output channels (channel) to remove, e.g. 0.5 or 50%", Required = true };
        var pattern = new Option<string>("--pattern") { Description = "unstructured, 2:4 or channel", DefaultValueFactory = _ => "unstructured" };
        var exclude = new Option<string[]>("--exclude") { Description = "Leave layers matching this glob untouched (repeatable)" };
        var calibration = new Option<string?>("--calibration") { Description = "Folder of .npy samples: measure each layer's output error on them" };
        var reportFile = new Option<string?>("--report") { Description = "Write the per-layer report (JSON) to this file" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object (sizes and the per-layer table)" };
        var cmd = new Command("prune", "Magnitude pruning: unstructured, 2:4 along the reduction axis, or whole output channels (with the consumer's inputs)")
        {
            model, output, sparsity, pattern, exclude, calibration, reportFile, json,
        };
        cmd.SetAction(r =>
        {
            bool asJson = r.GetValue(json);
            var p = r.GetValue(pattern)!.ToLowerInvariant() switch
            {
                "unstructured" => PrunePattern.Unstructured,
                "2:4" => PrunePattern.TwoFour,
                "channel" => PrunePattern.Channel,
                var x => throw new CliException($"--pattern must be unstructured, 2:4 or channel, not '{x}'"),
            };
            var text = r.GetValue(sparsity)!.Trim();
            bool percent = text.EndsWith('%');
            if (!double.TryParse(percent ? text[..^1] : text, NumberStyles.Float, CultureInfo.InvariantCulture, out var s))
                throw new CliException($"--sparsity '{text}' is not a number (e.g. 0.5 or 50%)");
            if (percent) s /= 100;
            if (!(s > 0 && s < 1)) throw new CliException($"--sparsity must be between 0 and 1 (exclusive), not {text}");
            if (p == PrunePattern.TwoFour && Math.Abs(s - 0.5) > 1e-9) throw new CliException("--pattern 2:4 removes exactly half the weights: use --sparsity 0.5");
            string outPath = r.GetValue(output)!;
            string? reportPath = r.GetValue(reportFile);
            QuantizeVerb.CheckWritable(outPath, "--output");
            if (reportPath is not null) QuantizeVerb.CheckWritable(reportPath, "--report");
            var path = Cli.ResolveModel(r.GetValue(model)!, asJson);
            var m = OnnxReader.Read(path);
            CalibrationSet? cal = r.GetValue(calibration) is { } dir ? QuantizeVerb.Wrap(() => CalibrationSet.Load(dir, m.Graph)) : null;
            var result = QuantizeVerb.Wrap(() => Cli.WithStatus(asJson, "pruning", () => Pruner.Prune(m, s, p, r.GetValue(exclude), cal)));
            QuantizeVerb.Wrap(() => result.Save(outPath));
            QuantizeVerb.Finish(result, path, outPath, reportPath, asJson);
            return 0;
        });
        return cmd;
    }
}
