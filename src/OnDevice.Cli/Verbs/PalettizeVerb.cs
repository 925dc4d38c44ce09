using System.CommandLine;
using OnDevice.Compression.Calibration;
using OnDevice.Compression.Quantization;
using OnDevice.Formats.Onnx;

namespace OnDevice.Cli.Verbs;

/// <summary><c>ondevice palettize MODEL -o OUT --bits N</c>: k-means weight clustering to 2^N centroids.</summary>
public static class PalettizeVerb
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var model = new Argument<string>("model") { Description = "ONNX model file, or the name of a sample" };
        var output = new Option<string>("--output", "-o") { Description = "Where to write the palettized model", Required = true };
        var bits = new Option<int>("--bits") { Description = "Index bits: 2^N centroids (1-8; 1-4 are stored as uint4, 5-8 as uint8)", Required = true };
        var groupSize = new Option<int>("--group-size") { Description = "Output channels per codebook (0 = one codebook per tensor)", DefaultValueFactory = _ => 0 };
        var exclude = new Option<string[]>("--exclude") { Description = "Leave layers matching this glob in float (repeatable)" };
        var calibration = new Option<string?>("--calibration") { Description = "Folder of .npy samples: measure each layer's output error on them" };
        var reportFile = new Option<string?>("--report") { Description = "Write the per-layer report (JSON) to this file" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object (sizes and the per-layer table)" };
        var cmd = new Command("palettize", "Cluster weights to 2^N k-means centroids (per tensor or per group of output channels); written as indices + codebook → Gather")
        {
            model, output, bits, groupSize, exclude, calibration, reportFile, json,
        };
        cmd.SetAction(r =>
        {
            bool asJson = r.GetValue(json);
            int b = r.GetValue(bits), g = r.GetValue(groupSize);
            if (b is < 1 or > 8) throw new CliException($"--bits must be 1 to 8, not {b}");
            if (g < 0) throw new CliException($"--group-size must be 0 (per tensor) or positive, not {g}");
            string outPath = r.GetValue(output)!;
            string? reportPath = r.GetValue(reportFile);
            QuantizeVerb.CheckWritable(outPath, "--output");
            if (reportPath is not null) QuantizeVerb.CheckWritable(reportPath, "--report");
            var path = Cli.ResolveModel(r.GetValue(model)!, asJson);
            var m = OnnxReader.Read(path);
            CalibrationSet? cal = r.GetValue(calibration) is { } dir ? QuantizeVerb.Wrap(() => CalibrationSet.Load(dir, m.Graph)) : null;
            var options = new QuantizeOptions { Plan = new PalettePlan(b, g), Exclude = r.GetValue(exclude) ?? [], Calibration = cal };
            var result = QuantizeVerb.Wrap(() => Cli.WithStatus(asJson, "clustering", () => Quantizer.Quantize(m, options)));
            QuantizeVerb.Wrap(() => result.Save(outPath));
            QuantizeVerb.Finish(result, path, outPath, reportPath, asJson);
            return 0;
        });
        return cmd;
    }
}
