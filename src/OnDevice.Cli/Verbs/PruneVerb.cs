using System.CommandLine;
using System.Globalization;
using OnDevice.Compression.Pruning;

namespace OnDevice.Cli.Verbs;

/// <summary><c>ondevice prune MODEL -o OUT --sparsity S</c>: magnitude pruning (unstructured, 2:4, output channels).</summary>
public static class PruneVerb
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var sparsity = new Option<string>("--sparsity") { Description = "Fraction of weights (unstructured) or output channels (channel) to remove, e.g. 0.5 or 50%", Required = true };
        var pattern = new Option<string>("--pattern") { Description = "unstructured, 2:4 or channel", DefaultValueFactory = _ => "unstructured" };
        return new CompressionCommand("Where to write the pruned model", "Leave layers matching this glob untouched (repeatable)").Create(
            "prune", "Magnitude pruning: unstructured, 2:4 along the reduction axis, or whole output channels (with the consumer's inputs)",
            [sparsity, pattern],
            r =>
            {
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
                return (Sparsity: s, Pattern: p);
            },
            "pruning",
            (m, settings, exclude, cal) => Pruner.Prune(m, settings.Sparsity, settings.Pattern, exclude, cal));
    }
}
