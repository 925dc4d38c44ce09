using System.Globalization;

namespace OnDevice.Planning;

/// <summary>Formatting of byte counts, rates and counts for people (decimal SI units, as device makers quote them).</summary>
public static class Units
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Bytes in decimal units: 600 MB, 3.50 GB.</summary>
    public static string Bytes(double n)
    {
        double a = Math.Abs(n);
        return a switch
        {
            < 1e3 => string.Format(Inv, "{0:0} B", n),
            < 1e6 => string.Format(Inv, "{0:0.#} kB", n / 1e3),
            < 1e9 => string.Format(Inv, "{0:0} MB", n / 1e6),
            _ => string.Format(Inv, "{0:0.00} GB", n / 1e9),
        };
    }

    /// <summary>Operations per second: 1.2 TOPS, 250 GOPS.</summary>
    public static string Ops(double n) => n >= 1e12 ? string.Format(Inv, "{0:0.##} T", n / 1e12) : string.Format(Inv, "{0:0.#} G", n / 1e9);

    /// <summary>Counts with SI suffix: 6.74 B, 494 M.</summary>
    public static string Count(double n) => n switch
    {
        >= 1e9 => string.Format(Inv, "{0:0.00} B", n / 1e9),
        >= 1e6 => string.Format(Inv, "{0:0.#} M", n / 1e6),
        >= 1e3 => string.Format(Inv, "{0:0.#} k", n / 1e3),
        _ => n.ToString("0", Inv),
    };

    /// <summary>Seconds as ms or s.</summary>
    public static string Seconds(double s) => s < 1 ? string.Format(Inv, "{0:0.#} ms", s * 1e3) : string.Format(Inv, "{0:0.##} s", s);

    /// <summary>Tokens per second, two significant digits below 10.</summary>
    public static string Rate(double r) => r < 10 ? string.Format(Inv, "{0:0.#}", r) : string.Format(Inv, "{0:0}", r);
}
