using System.CommandLine;
using OnDevice.Compression.Quantization;

namespace OnDevice.Cli.Verbs;

/// <summary><c>ondevice palettize MODEL -o OUT --bits N</c>: k-means weight clustering to 2^N centroids.</summary>
public static class PalettizeVerb
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var bits = new Option<int>("--bits") { Description = "Index bits: 2^N centroids (1-8; 1-4 are stored as uint4, 5-8 as uint8)", Required = true };
        var groupSize = new Option<int>("--group-size") { Description = "Output channels per codebook (0 = one codebook per tensor)", DefaultValueFactory = _ => 0 };
        return new CompressionCommand("Where to write the palettized model", "Leave layers matching this glob in float (repeatable)").Create(
            "palettize", "Cluster weights to 2^N k-means centroids (per tensor or per group of output channels); written as indices + codebook → Gather",
            [bits, groupSize],
            r =>
            {
                int b = r.GetValue(bits), g = r.GetValue(groupSize);
                if (b is < 1 or > 8) throw new CliException($"--bits must be 1 to 8, not {b}");
                if (g < 0) throw new CliException($"--group-size must be 0 (per tensor) or positive, not {g}");
                return new PalettePlan(b, g);
            },
            "clustering",
            (m, plan, exclude, cal) => Quantizer.Quantize(m, new QuantizeOptions { Plan = plan, Exclude = exclude, Calibration = cal }));
    }
}
