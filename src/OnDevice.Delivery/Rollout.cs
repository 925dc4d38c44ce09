using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace OnDevice.Delivery;

/// <summary>One stage of a staged rollout: from <see cref="After"/> the start, <see cref="BasisPoints"/>/10000 of devices.</summary>
public sealed record RolloutStage(TimeSpan After, int BasisPoints)
{
    /// <inheritdoc/>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{BasisPoints / 100.0:0.##}%@{FormatAfter(After)}");

    /// <summary>Hours when whole-ish hours (the historical form), else minutes, else seconds: 24h, 30m, 20s.</summary>
    private static string FormatAfter(TimeSpan t) =>
        t == TimeSpan.Zero || t.TotalHours * 100 == Math.Floor(t.TotalHours * 100) ? string.Create(CultureInfo.InvariantCulture, $"{t.TotalHours:0.##}h")
        : t.TotalMinutes == Math.Floor(t.TotalMinutes) ? string.Create(CultureInfo.InvariantCulture, $"{t.TotalMinutes:0}m")
        : string.Create(CultureInfo.InvariantCulture, $"{t.TotalSeconds:0.###}s");
}

/// <summary>
/// A rollout schedule such as <c>1%@0h, 10%@24h, 50%@72h, 100%@168h</c>: stage fractions never decrease and stage
/// times strictly increase, starting at 0. Times take s, m, h or d (<c>1%@0s, 10%@20s, 100%@40s</c> for simulations).
/// </summary>
public sealed class RolloutSchedule
{
    private RolloutSchedule(IReadOnlyList<RolloutStage> stages) => Stages = stages;

    /// <summary>The stages in time order.</summary>
    public IReadOnlyList<RolloutStage> Stages { get; }

    /// <summary>Apple-style phased release: 1, 2, 5, 10, 20, 50, 100 % on days 0–6.</summary>
    public static RolloutSchedule ApplePhased { get; } = Parse("1%@0d, 2%@1d, 5%@2d, 10%@3d, 20%@4d, 50%@5d, 100%@6d");

    /// <summary>Parses <c>P%@T</c> items separated by commas; T in s, m, h or d (e.g. 20s, 15m, 24h, 7d).</summary>
    /// <exception cref="FormatException">Malformed, decreasing fractions, or times not strictly increasing from 0.</exception>
    public static RolloutSchedule Parse(string text)
    {
        var stages = new List<RolloutStage>();
        foreach (var raw in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var at = raw.Split('@');
            if (at.Length != 2 || !at[0].EndsWith('%')) throw new FormatException($"rollout stage '{raw}' must look like 10%@24h");
            if (!decimal.TryParse(at[0][..^1], NumberStyles.Number, CultureInfo.InvariantCulture, out var pct) || pct <= 0 || pct > 100)
                throw new FormatException($"rollout stage '{raw}': the fraction must be above 0% and at most 100%");
            var bp = pct * 100;
            if (bp != decimal.Truncate(bp)) throw new FormatException($"rollout stage '{raw}': at most two decimals in the percentage");
            var t = at[1];
            if (t.Length < 2 || !double.TryParse(t[..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out var n) || n < 0)
                throw new FormatException($"rollout stage '{raw}': the time must be seconds, minutes, hours or days, e.g. 20s, 15m, 24h or 7d");
            if (!double.IsFinite(n) || n > 100_000) throw new FormatException($"rollout stage '{raw}': the time {t} is out of range");
            var after = t[^1] switch
            {
                's' => TimeSpan.FromSeconds(n),
                'm' => TimeSpan.FromMinutes(n),
                'h' => TimeSpan.FromHours(n),
                'd' => TimeSpan.FromDays(n),
                _ => throw new FormatException($"rollout stage '{raw}': the time must end in s, m, h or d"),
            };
            stages.Add(new RolloutStage(after, (int)bp));
        }
        if (stages.Count == 0) throw new FormatException("a rollout schedule needs at least one stage");
        if (stages[0].After != TimeSpan.Zero) throw new FormatException($"the first rollout stage must start at 0 (e.g. 1%@0h), not {stages[0]}");
        for (int i = 1; i < stages.Count; i++)
        {
            if (stages[i].After <= stages[i - 1].After) throw new FormatException($"rollout stage {stages[i]} must come after {stages[i - 1]}");
            if (stages[i].BasisPoints < stages[i - 1].BasisPoints) throw new FormatException($"rollout stage {stages[i]} must not shrink the rollout after {stages[i - 1]}");
        }
        return new RolloutSchedule(stages);
    }

    /// <summary>The stage in force <paramref name="sinceStart"/> after the rollout started (null before it starts).</summary>
    public RolloutStage? StageAt(TimeSpan sinceStart) => Stages.LastOrDefault(s => s.After <= sinceStart);

    /// <inheritdoc/>
    public override string ToString() => string.Join(", ", Stages);
}

/// <summary>
/// Sticky cohorts: a device's bucket in [0, 10000) is a hash of the model name and its install id, so a device never
/// flips in and out, and widening a rollout from p to q basis points only adds devices.
/// </summary>
public static class Cohort
{
    /// <summary>Buckets per 100%.</summary>
    public const int Buckets = 10_000;

    /// <summary>The device's bucket for <paramref name="model"/>.</summary>
    public static int Bucket(string installId, string model)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(model + "\0" + installId), hash);
        return (int)(BitConverter.ToUInt64(hash[..8]) % Buckets);
    }

    /// <summary>True when the device is inside a rollout at <paramref name="basisPoints"/>/10000.</summary>
    public static bool Includes(string installId, string model, int basisPoints) => Bucket(installId, model) < basisPoints;
}
