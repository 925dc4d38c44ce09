using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace OnDevice.Planning;

/// <summary>
/// One number of a device profile with where it comes from: exactly one of <see cref="Source"/> (a URL or document
/// name that states the number) or <see cref="Estimate"/> (how the number was derived, when no source states it).
/// </summary>
public sealed record Figure
{
    /// <summary>The value, in the unit the field's name says.</summary>
    public double Value { get; init; }

    /// <summary>URL or document that states this number.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Source { get; init; }

    /// <summary>How the number was estimated, when no source states it.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Estimate { get; init; }

    /// <summary>Anything else worth knowing (precision of a vendor's TOPS figure, a faster mode, ...).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Note { get; init; }

    /// <summary>True when the number is an estimate rather than a sourced figure.</summary>
    [JsonIgnore]
    public bool IsEstimate => Estimate is not null;

    /// <summary>"source: ..." or "estimate: ...".</summary>
    public string Provenance() => Source is not null ? $"source: {Source}" : $"estimate: {Estimate}";
}

/// <summary>A compute unit (CPU, GPU, NPU) of a device: peak operations per second by precision (fp32, fp16, int8).</summary>
public sealed record ComputeUnit
{
    /// <summary>What the unit is (cores, clocks).</summary>
    public string Description { get; init; } = "";

    /// <summary>Peak operations per second (a multiply-add counts as two) by precision: fp32, fp16, int8.</summary>
    public Dictionary<string, Figure> OpsPerSecond { get; init; } = [];
}

/// <summary>A statement about what a device's NPU can and cannot run, with its source or marked as an estimate.</summary>
public sealed record Constraint
{
    /// <summary>The constraint.</summary>
    public string Text { get; init; } = "";

    /// <summary>URL or document stating it.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Source { get; init; }

    /// <summary>Why we believe it, when no source states it.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Estimate { get; init; }
}

/// <summary>A device's memory, bandwidth and compute, each number with its source or marked as an estimate.</summary>
public sealed record DeviceProfile
{
    /// <summary>Short name used on the command line (<c>iphone-15-pro</c>).</summary>
    public string Name { get; init; } = "";

    /// <summary>Human name (<c>iPhone 15 Pro</c>).</summary>
    public string DisplayName { get; init; } = "";

    /// <summary>phone, watch, board, host.</summary>
    public string Kind { get; init; } = "";

    /// <summary>System on chip or processor.</summary>
    public string Soc { get; init; } = "";

    /// <summary>Installed RAM, bytes.</summary>
    public Figure? RamBytes { get; init; }

    /// <summary>Memory one app can realistically use before the OS kills it or the device thrashes, bytes.</summary>
    public Figure? AppBudgetBytes { get; init; }

    /// <summary>Memory bandwidth, bytes per second.</summary>
    public Figure? MemoryBandwidthBytesPerSecond { get; init; }

    /// <summary>Compute units by name: cpu, gpu, npu.</summary>
    public Dictionary<string, ComputeUnit> Compute { get; init; } = [];

    /// <summary>What the NPU can and cannot run, where known.</summary>
    public List<Constraint> NpuConstraints { get; init; } = [];

    /// <summary>What is not known or not measured (e.g. a GEMM the runtime does not have yet).</summary>
    public List<string> Missing { get; init; } = [];

    /// <summary>Free text.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Notes { get; init; }

    /// <summary>Where the profile was read from ("built-in" or a file path); not stored.</summary>
    [JsonIgnore]
    public string Origin { get; init; } = "built-in";

    /// <summary>Compute units known by this profile.</summary>
    public static readonly IReadOnlyList<string> UnitNames = ["cpu", "gpu", "npu"];

    /// <summary>Precisions a throughput may be given for.</summary>
    public static readonly IReadOnlyList<string> PrecisionNames = ["fp32", "fp16", "int8"];

    /// <summary>The throughput of <paramref name="unit"/> at <paramref name="precision"/>, or null.</summary>
    public Figure? Throughput(string unit, string precision) =>
        Compute.TryGetValue(unit, out var u) && u.OpsPerSecond.TryGetValue(precision, out var f) ? f : null;

    /// <summary>Checks that every required number is present and positive and that each carries a source or an estimate.</summary>
    public DeviceProfile Validate()
    {
        string where = $"device profile '{(Name.Length > 0 ? Name : "?")}' ({Origin})";
        if (string.IsNullOrWhiteSpace(Name)) throw new PlanningException($"{where}: missing field 'name'");
        if (Name.Any(ch => !(char.IsAsciiLetterOrDigit(ch) || ch is '-' or '.' or '_')))
            throw new PlanningException($"{where}: name may use letters, digits, '-', '.', '_' only");
        void Check(string field, Figure? f, bool required)
        {
            if (f is null)
            {
                if (required) throw new PlanningException($"{where}: missing field '{field}'");
                return;
            }
            if (!(f.Value > 0) || double.IsInfinity(f.Value)) throw new PlanningException($"{where}: {field} must be a positive number, got {f.Value}");
            bool hasSource = !string.IsNullOrWhiteSpace(f.Source), hasEstimate = !string.IsNullOrWhiteSpace(f.Estimate);
            if (hasSource == hasEstimate)
                throw new PlanningException($"{where}: {field} must carry exactly one of 'source' (where the number is stated) or 'estimate' (how it was derived)");
        }
        Check("ramBytes", RamBytes, true);
        Check("appBudgetBytes", AppBudgetBytes, true);
        Check("memoryBandwidthBytesPerSecond", MemoryBandwidthBytesPerSecond, true);
        if (AppBudgetBytes!.Value > RamBytes!.Value)
            throw new PlanningException($"{where}: appBudgetBytes ({AppBudgetBytes.Value:N0}) is larger than ramBytes ({RamBytes.Value:N0})");
        foreach (var (unit, cu) in Compute)
        {
            if (!UnitNames.Contains(unit)) throw new PlanningException($"{where}: unknown compute unit '{unit}'; known: {string.Join(", ", UnitNames)}");
            foreach (var (precision, f) in cu.OpsPerSecond)
            {
                if (!PrecisionNames.Contains(precision)) throw new PlanningException($"{where}: compute.{unit}: unknown precision '{precision}'; known: {string.Join(", ", PrecisionNames)}");
                Check($"compute.{unit}.opsPerSecond.{precision}", f, true);
            }
        }
        foreach (var c in NpuConstraints)
            if (string.IsNullOrWhiteSpace(c.Source) == string.IsNullOrWhiteSpace(c.Estimate))
                throw new PlanningException($"{where}: NPU constraint '{c.Text}' must carry exactly one of 'source' or 'estimate'");
        return this;
    }

    /// <summary>Every figure of the profile with its path (for listing and for tests).</summary>
    public IEnumerable<(string Path, Figure Figure)> Figures()
    {
        if (RamBytes is { } r) yield return ("ramBytes", r);
        if (AppBudgetBytes is { } a) yield return ("appBudgetBytes", a);
        if (MemoryBandwidthBytesPerSecond is { } b) yield return ("memoryBandwidthBytesPerSecond", b);
        foreach (var (unit, cu) in Compute)
            foreach (var (p, f) in cu.OpsPerSecond) yield return ($"compute.{unit}.opsPerSecond.{p}", f);
    }

    /// <summary>JSON settings of profile files: camelCase, indented.</summary>
    public static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };
}
