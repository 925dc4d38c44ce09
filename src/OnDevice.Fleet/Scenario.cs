using System.Globalization;
using OnDevice.Delivery;

namespace OnDevice.Fleet;

/// <summary>
/// A log-normal latency distribution given by its median and 99th percentile (milliseconds):
/// ln X ~ N(μ, σ²) with μ = ln p50 and σ = (ln p99 − ln p50) / z₀.₉₉.
/// </summary>
public sealed record LatencyProfile
{
    /// <summary>z of the standard normal's 99th percentile.</summary>
    public const double Z99 = 2.3263478740408408;

    /// <summary>Creates a profile.</summary>
    /// <exception cref="ArgumentException">p50 not positive or p99 below p50.</exception>
    public LatencyProfile(double p50Ms, double p99Ms)
    {
        if (!(p50Ms > 0) || !double.IsFinite(p50Ms)) throw new ArgumentException($"p50 must be a positive number of milliseconds, got {p50Ms}");
        if (!(p99Ms >= p50Ms) || !double.IsFinite(p99Ms)) throw new ArgumentException($"p99 ({p99Ms} ms) must be at least p50 ({p50Ms} ms)");
        P50Ms = p50Ms;
        P99Ms = p99Ms;
    }

    /// <summary>Median latency.</summary>
    public double P50Ms { get; }
    /// <summary>99th percentile latency.</summary>
    public double P99Ms { get; }
    /// <summary>μ of ln X.</summary>
    public double Mu => Math.Log(P50Ms);
    /// <summary>σ of ln X.</summary>
    public double Sigma => (Math.Log(P99Ms) - Math.Log(P50Ms)) / Z99;

    /// <summary>The q-quantile (0 &lt; q &lt; 1).</summary>
    public double Quantile(double q) => Math.Exp(Mu + Sigma * Probit(q));

    /// <summary>One latency draw (Box–Muller).</summary>
    public double Sample(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        double z = Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
        return Math.Exp(Mu + Sigma * z);
    }

    /// <summary>The same distribution with its median scaled by <paramref name="p50Factor"/> and its p99 by <paramref name="p99Factor"/>.</summary>
    public LatencyProfile Scale(double p50Factor, double p99Factor) => new(P50Ms * p50Factor, Math.Max(P50Ms * p50Factor, P99Ms * p99Factor));

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"p50 {P50Ms:0.##} ms, p99 {P99Ms:0.##} ms");

    /// <summary>Inverse of the standard normal CDF (Acklam's rational approximation, relative error &lt; 1.2e-9).</summary>
    public static double Probit(double p)
    {
        if (!(p > 0 && p < 1)) throw new ArgumentOutOfRangeException(nameof(p), "p must lie strictly between 0 and 1");
        double[] a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00];
        double[] b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01];
        double[] c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00];
        double[] d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00];
        const double low = 0.02425;
        double x;
        if (p < low)
        {
            double q = Math.Sqrt(-2 * Math.Log(p));
            x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
        }
        else if (p <= 1 - low)
        {
            double q = p - 0.5, r = q * q;
            x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
        }
        else
        {
            double q = Math.Sqrt(-2 * Math.Log(1 - p));
            x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
        }
        return x;
    }
}

/// <summary>How one model version behaves on one device class.</summary>
/// <param name="Latency">Inference latency distribution.</param>
/// <param name="CrashRate">Probability that one inference crashes the app.</param>
/// <param name="LoadFailureRate">Probability that loading the model fails.</param>
public sealed record VersionBehavior(LatencyProfile Latency, double CrashRate = 0, double LoadFailureRate = 0)
{
    /// <summary>Checks the rates.</summary>
    /// <exception cref="ArgumentException">A rate outside [0, 1].</exception>
    public VersionBehavior Validate()
    {
        if (!(CrashRate is >= 0 and <= 1)) throw new ArgumentException($"crash rate must lie in [0, 1], got {CrashRate}");
        if (!(LoadFailureRate is >= 0 and <= 1)) throw new ArgumentException($"load failure rate must lie in [0, 1], got {LoadFailureRate}");
        return this;
    }
}

/// <summary>A kind of simulated device: its RAM (which gives its device class), its share of the fleet, and how the baseline version runs on it.</summary>
/// <param name="RamBytes">Device RAM.</param>
/// <param name="Share">Fraction of the fleet (normalized over all classes).</param>
/// <param name="DeviceModel">Device model string sent to the server.</param>
/// <param name="Baseline">Behaviour of the baseline (and any non-candidate) version.</param>
public sealed record DeviceClassSpec(long RamBytes, double Share, string DeviceModel, VersionBehavior Baseline)
{
    /// <summary>The device class the server derives (from RAM, <see cref="DeviceClasses.Of"/>).</summary>
    public string Name => DeviceClasses.Of(new DeviceDescription { RamBytes = RamBytes });
}

/// <summary>
/// A fleet scenario: device classes with their baseline behaviour and how the candidate version behaves on each class
/// (any version other than the candidate behaves as the baseline).
/// </summary>
public sealed record FleetScenario(string Name, string Description, IReadOnlyList<DeviceClassSpec> Classes, Func<DeviceClassSpec, VersionBehavior> Candidate)
{
    private const long GiB = 1L << 30;

    /// <summary>Names of the built-in scenarios.</summary>
    public static IReadOnlyList<string> BuiltIn { get; } = ["healthy", "slow-release", "slow-on-old"];

    /// <summary>
    /// The default fleet: old phones (3 GiB, 40%: p50 20 ms, p99 45 ms), mid-range (6 GiB, 35%: 10/24 ms) and new
    /// phones (12 GiB, 25%: 6/14 ms), each crashing once in 10⁵ inferences.
    /// </summary>
    public static IReadOnlyList<DeviceClassSpec> DefaultClasses { get; } =
    [
        new(3 * GiB, 0.40, "OldPhone 3", new VersionBehavior(new LatencyProfile(20, 45), CrashRate: 1e-5)),
        new(6 * GiB, 0.35, "MidPhone 6", new VersionBehavior(new LatencyProfile(10, 24), CrashRate: 1e-5)),
        new(12 * GiB, 0.25, "NewPhone 12", new VersionBehavior(new LatencyProfile(6, 14), CrashRate: 1e-5)),
    ];

    /// <summary>The behaviour of <paramref name="version"/> on <paramref name="cls"/>.</summary>
    public VersionBehavior Behavior(DeviceClassSpec cls, string version, string candidate) => version == candidate ? Candidate(cls) : cls.Baseline;

    /// <summary>A built-in scenario by name.</summary>
    /// <exception cref="ArgumentException">Unknown name.</exception>
    public static FleetScenario Named(string name, IReadOnlyList<DeviceClassSpec>? classes = null)
    {
        var c = classes ?? DefaultClasses;
        long oldest = c.Min(x => x.RamBytes);
        return name switch
        {
            "healthy" => new(name, "the candidate runs as fast as the baseline on every class", c, cls => cls.Baseline),
            "slow-release" => new(name, "the candidate's p99 latency is 2x the baseline's on every class (median 1.1x)", c,
                cls => cls.Baseline with { Latency = cls.Baseline.Latency.Scale(1.1, 2.0) }),
            "slow-on-old" => new(name, "the candidate is as fast as the baseline except on the class with the least RAM, where its p99 is 2.5x (median 1.2x)", c,
                cls => cls.RamBytes == oldest ? cls.Baseline with { Latency = cls.Baseline.Latency.Scale(1.2, 2.5) } : cls.Baseline),
            _ => throw new ArgumentException($"unknown scenario '{name}' (choose {string.Join(", ", BuiltIn)})"),
        };
    }

    /// <summary>Parses a device class spec <c>RAM:SHARE:P50/P99[:CRASH]</c>, e.g. <c>3G:0.4:20/45:1e-5</c>.</summary>
    /// <exception cref="FormatException">Malformed spec.</exception>
    public static DeviceClassSpec ParseClass(string spec)
    {
        var parts = spec.Split(':');
        if (parts.Length is < 3 or > 4) throw new FormatException($"device class '{spec}' must look like RAM:SHARE:P50/P99[:CRASH_RATE], e.g. 3G:0.4:20/45:1e-5");
        var ram = ParseBytes(parts[0]);
        if (!double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var share) || !(share > 0) || !double.IsFinite(share))
            throw new FormatException($"device class '{spec}': SHARE must be a positive number");
        var lat = parts[2].Split('/');
        if (lat.Length != 2 || !double.TryParse(lat[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var p50) || !double.TryParse(lat[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var p99))
            throw new FormatException($"device class '{spec}': latency must be P50/P99 in milliseconds, e.g. 20/45");
        double crash = 0;
        if (parts.Length == 4 && (!double.TryParse(parts[3], NumberStyles.Float, CultureInfo.InvariantCulture, out crash) || crash is < 0 or > 1))
            throw new FormatException($"device class '{spec}': CRASH_RATE must lie in [0, 1]");
        try { return new DeviceClassSpec(ram, share, $"Sim {parts[0]}", new VersionBehavior(new LatencyProfile(p50, p99), crash).Validate()); }
        catch (ArgumentException e) { throw new FormatException($"device class '{spec}': {e.Message}"); }
    }

    private static long ParseBytes(string s)
    {
        long mult = char.ToUpperInvariant(s.Length > 0 ? s[^1] : ' ') switch { 'G' => GiB, 'M' => 1L << 20, _ => 1 };
        var num = mult == 1 ? s : s[..^1];
        if (!double.TryParse(num, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !(v > 0) || v * mult > 1e15)
            throw new FormatException($"RAM '{s}' must be a size like 3G or 512M");
        return (long)(v * mult);
    }
}
