using System.CommandLine;
using System.Globalization;
using OnDevice.Federated;
using OnDevice.Federated.Privacy;

namespace OnDevice.Cli.Verbs;

/// <summary><c>ondevice privacy</c>: ε of DP-SGD / DP-FedAvg (RDP accountant) and the noise for a target ε.</summary>
public static class PrivacyVerb
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var cmd = new Command("privacy", "Differential-privacy accounting for the Poisson-subsampled Gaussian mechanism (DP-SGD, DP-FedAvg)");
        cmd.Subcommands.Add(EpsilonCommand());
        cmd.Subcommands.Add(NoiseCommand());
        return cmd;
    }

    private static RdpConversion ParseConversion(string s) => s.ToLowerInvariant() switch
    {
        "classic" => RdpConversion.Classic,
        "improved" => RdpConversion.Improved,
        _ => throw new CliException($"--conversion must be classic or improved, got '{s}'"),
    };

    private static Command EpsilonCommand()
    {
        var noise = new Option<double>("--noise") { Description = "Noise multiplier σ (noise std / clipping norm)", Required = true };
        var rate = new Option<double>("--rate") { Description = "Poisson sampling rate q per step (batch / dataset, or clients per round / population)", Required = true };
        var steps = new Option<long>("--steps") { Description = "Number of steps (or rounds)", Required = true };
        var delta = new Option<double>("--delta") { Description = "Target δ", Required = true };
        var conversion = new Option<string>("--conversion") { Description = "RDP→(ε,δ) conversion: classic (Mironov 2017) or improved (Balle et al. 2020)", DefaultValueFactory = _ => "improved" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object" };
        var cmd = new Command("epsilon", "ε spent by T steps of the subsampled Gaussian mechanism at rate q and noise σ") { noise, rate, steps, delta, conversion, json };
        cmd.SetAction(r =>
        {
            var conv = ParseConversion(r.GetValue(conversion)!);
            PrivacyGuarantee g;
            try
            {
                g = RdpAccountant.Epsilon(r.GetValue(noise), r.GetValue(rate), r.GetValue(steps), r.GetValue(delta), conv);
            }
            catch (FederatedException e) { throw new CliException(e.Message); }
            if (r.GetValue(json))
                Cli.WriteJson(new { epsilon = g.Epsilon, delta = g.Delta, order = g.Order, noise = r.GetValue(noise), rate = r.GetValue(rate), steps = r.GetValue(steps), conversion = conv.ToString().ToLowerInvariant() });
            else
                Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "ε = {0:0.####} at δ = {1:g} (best Rényi order {2:0.##}, {3} conversion)", g.Epsilon, g.Delta, g.Order, conv.ToString().ToLowerInvariant()));
            return 0;
        });
        return cmd;
    }

    private static Command NoiseCommand()
    {
        var epsilon = new Option<double>("--epsilon") { Description = "Target ε", Required = true };
        var rate = new Option<double>("--rate") { Description = "Poisson sampling rate q per step", Required = true };
        var steps = new Option<long>("--steps") { Description = "Number of steps (or rounds)", Required = true };
        var delta = new Option<double>("--delta") { Description = "Target δ", Required = true };
        var conversion = new Option<string>("--conversion") { Description = "RDP→(ε,δ) conversion: classic or improved", DefaultValueFactory = _ => "improved" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object" };
        var cmd = new Command("noise", "The smallest noise multiplier σ that keeps T steps at rate q within (ε, δ)") { epsilon, rate, steps, delta, conversion, json };
        cmd.SetAction(r =>
        {
            var conv = ParseConversion(r.GetValue(conversion)!);
            double sigma;
            PrivacyGuarantee g;
            try
            {
                sigma = RdpAccountant.CalibrateNoise(r.GetValue(epsilon), r.GetValue(rate), r.GetValue(steps), r.GetValue(delta), conv);
                g = RdpAccountant.Epsilon(sigma, r.GetValue(rate), r.GetValue(steps), r.GetValue(delta), conv);
            }
            catch (FederatedException e) { throw new CliException(e.Message); }
            if (r.GetValue(json))
                Cli.WriteJson(new { noise = sigma, epsilon = g.Epsilon, targetEpsilon = r.GetValue(epsilon), delta = g.Delta, order = g.Order, conversion = conv.ToString().ToLowerInvariant() });
            else
                Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "σ = {0:0.######} (gives ε = {1:0.####} ≤ {2:g} at δ = {3:g}, order {4:0.##})", sigma, g.Epsilon, r.GetValue(epsilon), g.Delta, g.Order));
            return 0;
        });
        return cmd;
    }
}
