using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace OnDevice.Delivery;

/// <summary>Version strings compared part by part: dot-separated numbers numerically, other parts ordinally.</summary>
public static class ModelVersion
{
    /// <summary>Compares two versions (1.10 &gt; 1.9; 2.0 == 2.0.0).</summary>
    public static int Compare(string a, string b)
    {
        var pa = a.Split('.', '-', '+');
        var pb = b.Split('.', '-', '+');
        for (int i = 0; i < Math.Max(pa.Length, pb.Length); i++)
        {
            var x = i < pa.Length ? pa[i] : "0";
            var y = i < pb.Length ? pb[i] : "0";
            bool nx = long.TryParse(x, NumberStyles.None, CultureInfo.InvariantCulture, out var lx);
            bool ny = long.TryParse(y, NumberStyles.None, CultureInfo.InvariantCulture, out var ly);
            int c = nx && ny ? lx.CompareTo(ly) : nx ? 1 : ny ? -1 : string.CompareOrdinal(x, y);
            if (c != 0) return c;
        }
        return 0;
    }

    /// <summary>An ordering of version strings.</summary>
    public static readonly IComparer<string> Comparer = Comparer<string>.Create(Compare);
}

/// <summary>An inclusive version range; a missing bound is open.</summary>
public sealed record VersionRange(string? Min, string? Max)
{
    /// <summary>True when <paramref name="version"/> lies within the range.</summary>
    public bool Contains(string version) =>
        (Min is null || ModelVersion.Compare(version, Min) >= 0) && (Max is null || ModelVersion.Compare(version, Max) <= 0);

    /// <inheritdoc/>
    public override string ToString() => $"[{Min ?? "*"}, {Max ?? "*"}]";

    internal JsonObject ToJson()
    {
        var o = new JsonObject();
        if (Min is not null) o["min"] = Min;
        if (Max is not null) o["max"] = Max;
        return o;
    }

    internal static VersionRange? FromJson(JsonObject parent, string name)
    {
        if (parent[name] is null) return null;
        var o = Json.Obj(parent, name);
        return new VersionRange(Json.OptStr(o, "min"), Json.OptStr(o, "max"));
    }
}

/// <summary>What a device must have to run a variant.</summary>
public sealed record DeviceRequirements
{
    /// <summary>Minimum device RAM in bytes.</summary>
    public long? MinRamBytes { get; init; }
    /// <summary>Required operating system (e.g. android, ios, linux), or null for any.</summary>
    public string? Os { get; init; }
    /// <summary>OS version range.</summary>
    public VersionRange? OsVersion { get; init; }
    /// <summary>OnDevice runtime version range.</summary>
    public VersionRange? RuntimeVersion { get; init; }
    /// <summary>CPU features that must all be present (e.g. neon, avx2, dotprod).</summary>
    public IReadOnlyList<string> CpuFeatures { get; init; } = [];
    /// <summary>Accelerators that must all be present (e.g. nnapi, coreml, gpu).</summary>
    public IReadOnlyList<string> Accelerators { get; init; } = [];
    /// <summary>Device model patterns (<c>*</c> wildcard) of which one must match, when non-empty.</summary>
    public IReadOnlyList<string> DeviceModelsAllow { get; init; } = [];
    /// <summary>Device model patterns that exclude a device.</summary>
    public IReadOnlyList<string> DeviceModelsDeny { get; init; } = [];

    internal JsonObject ToJson()
    {
        var o = new JsonObject();
        if (MinRamBytes is { } r) o["min_ram_bytes"] = r;
        if (Os is not null) o["os"] = Os;
        if (OsVersion is not null) o["os_version"] = OsVersion.ToJson();
        if (RuntimeVersion is not null) o["runtime_version"] = RuntimeVersion.ToJson();
        if (CpuFeatures.Count > 0) o["cpu_features"] = Json.ToArray(CpuFeatures);
        if (Accelerators.Count > 0) o["accelerators"] = Json.ToArray(Accelerators);
        if (DeviceModelsAllow.Count > 0) o["device_models_allow"] = Json.ToArray(DeviceModelsAllow);
        if (DeviceModelsDeny.Count > 0) o["device_models_deny"] = Json.ToArray(DeviceModelsDeny);
        return o;
    }

    internal static DeviceRequirements FromJson(JsonObject? o) => o is null ? new() : new()
    {
        MinRamBytes = Json.OptLong(o, "min_ram_bytes"),
        Os = Json.OptStr(o, "os"),
        OsVersion = VersionRange.FromJson(o, "os_version"),
        RuntimeVersion = VersionRange.FromJson(o, "runtime_version"),
        CpuFeatures = Json.StrList(o, "cpu_features"),
        Accelerators = Json.StrList(o, "accelerators"),
        DeviceModelsAllow = Json.StrList(o, "device_models_allow"),
        DeviceModelsDeny = Json.StrList(o, "device_models_deny"),
    };

    /// <summary>Why <paramref name="d"/> cannot run this (empty when it can).</summary>
    public IReadOnlyList<string> Unmet(DeviceDescription d)
    {
        var why = new List<string>();
        if (MinRamBytes is { } r && d.RamBytes < r) why.Add($"needs {r} bytes of RAM, device has {d.RamBytes}");
        if (Os is not null && !string.Equals(Os, d.Os, StringComparison.OrdinalIgnoreCase)) why.Add($"needs OS {Os}, device runs {d.Os ?? "unknown"}");
        if (OsVersion is not null && (d.OsVersion is null || !OsVersion.Contains(d.OsVersion))) why.Add($"needs OS version in {OsVersion}, device has {d.OsVersion ?? "unknown"}");
        if (RuntimeVersion is not null && (d.RuntimeVersion is null || !RuntimeVersion.Contains(d.RuntimeVersion))) why.Add($"needs runtime version in {RuntimeVersion}, device has {d.RuntimeVersion ?? "unknown"}");
        foreach (var f in CpuFeatures)
            if (!d.CpuFeatures.Contains(f, StringComparer.OrdinalIgnoreCase)) why.Add($"needs CPU feature {f}");
        foreach (var a in Accelerators)
            if (!d.Accelerators.Contains(a, StringComparer.OrdinalIgnoreCase)) why.Add($"needs accelerator {a}");
        if (DeviceModelsAllow.Count > 0 && (d.DeviceModel is null || !DeviceModelsAllow.Any(p => Glob(p, d.DeviceModel)))) why.Add($"device model {d.DeviceModel ?? "unknown"} is not on the allow list");
        if (d.DeviceModel is not null && DeviceModelsDeny.FirstOrDefault(p => Glob(p, d.DeviceModel)) is { } deny) why.Add($"device model {d.DeviceModel} is denied ({deny})");
        return why;
    }

    /// <summary>Case-insensitive match with <c>*</c> standing for any run of characters.</summary>
    public static bool Glob(string pattern, string text)
    {
        int p = 0, t = 0, star = -1, mark = 0;
        while (t < text.Length)
        {
            if (p < pattern.Length && pattern[p] != '*' && char.ToLowerInvariant(pattern[p]) == char.ToLowerInvariant(text[t])) { p++; t++; }
            else if (p < pattern.Length && pattern[p] == '*') { star = p++; mark = t; }
            else if (star >= 0) { p = star + 1; t = ++mark; }
            else return false;
        }
        while (p < pattern.Length && pattern[p] == '*') p++;
        return p == pattern.Length;
    }
}

/// <summary>A device as it describes itself when asking for a model.</summary>
public sealed record DeviceDescription
{
    /// <summary>Total RAM in bytes.</summary>
    public long RamBytes { get; init; }
    /// <summary>Operating system name.</summary>
    public string? Os { get; init; }
    /// <summary>Operating system version.</summary>
    public string? OsVersion { get; init; }
    /// <summary>OnDevice runtime version.</summary>
    public string? RuntimeVersion { get; init; }
    /// <summary>Runtime API version (what model format generation it can load).</summary>
    public string? RuntimeApiVersion { get; init; }
    /// <summary>CPU features present.</summary>
    public IReadOnlyList<string> CpuFeatures { get; init; } = [];
    /// <summary>Accelerators present.</summary>
    public IReadOnlyList<string> Accelerators { get; init; } = [];
    /// <summary>Device model identifier (e.g. Pixel 8).</summary>
    public string? DeviceModel { get; init; }
    /// <summary>
    /// Device class for rollouts and telemetry (e.g. <c>ram&gt;=8GB</c>, <c>old-phones</c>); when null the server
    /// derives one from RAM with <see cref="DeviceClasses.Of"/>.
    /// </summary>
    public string? DeviceClass { get; init; }

    /// <summary>JSON form (snake_case), as sent to the resolve endpoint.</summary>
    public JsonObject ToJson()
    {
        var o = new JsonObject { ["ram_bytes"] = RamBytes };
        if (Os is not null) o["os"] = Os;
        if (OsVersion is not null) o["os_version"] = OsVersion;
        if (RuntimeVersion is not null) o["runtime_version"] = RuntimeVersion;
        if (RuntimeApiVersion is not null) o["runtime_api_version"] = RuntimeApiVersion;
        o["cpu_features"] = Json.ToArray(CpuFeatures);
        o["accelerators"] = Json.ToArray(Accelerators);
        if (DeviceModel is not null) o["device_model"] = DeviceModel;
        if (DeviceClass is not null) o["device_class"] = DeviceClass;
        return o;
    }

    /// <summary>Reads the JSON form.</summary>
    /// <exception cref="MalformedMetadataException">A field has the wrong type.</exception>
    public static DeviceDescription FromJson(JsonObject o) => new()
    {
        RamBytes = Json.OptLong(o, "ram_bytes") ?? 0,
        Os = Json.OptStr(o, "os"),
        OsVersion = Json.OptStr(o, "os_version"),
        RuntimeVersion = Json.OptStr(o, "runtime_version"),
        RuntimeApiVersion = Json.OptStr(o, "runtime_api_version"),
        CpuFeatures = Json.StrList(o, "cpu_features"),
        Accelerators = Json.StrList(o, "accelerators"),
        DeviceModel = Json.OptStr(o, "device_model"),
        DeviceClass = DeviceClasses.Validate(Json.OptStr(o, "device_class")),
    };
}

/// <summary>The model fields of a target's <c>custom</c> object: one variant file of one release.</summary>
public sealed record ModelTarget
{
    /// <summary>Model name.</summary>
    public required string Model { get; init; }
    /// <summary>Release version.</summary>
    public required string Version { get; init; }
    /// <summary>Variant name (e.g. int8-small).</summary>
    public required string Variant { get; init; }
    /// <summary>Weight precision (fp32, fp16, int8, int4, …).</summary>
    public string Precision { get; init; } = "fp32";
    /// <summary>Device-class requirements.</summary>
    public DeviceRequirements Requirements { get; init; } = new();
    /// <summary>Runtime API versions that can load this file.</summary>
    public VersionRange? RuntimeApi { get; init; }
    /// <summary>Selection priority among variants a device can run (higher first).</summary>
    public long Priority { get; init; }
    /// <summary>Budget numbers (integers: bytes, microseconds …) measured for this variant.</summary>
    public IReadOnlyDictionary<string, long> Budget { get; init; } = new Dictionary<string, long>();
    /// <summary>Evidence JSON text (e.g. the output of <c>ondevice compare --json</c>), kept verbatim.</summary>
    public string? Evidence { get; init; }

    /// <summary>The custom object.</summary>
    public JsonObject ToJson()
    {
        var o = new JsonObject
        {
            ["model"] = Model,
            ["version"] = Version,
            ["variant"] = Variant,
            ["precision"] = Precision,
            ["requirements"] = Requirements.ToJson(),
            ["priority"] = Priority,
        };
        if (RuntimeApi is not null) o["runtime_api"] = RuntimeApi.ToJson();
        if (Budget.Count > 0)
        {
            var b = new JsonObject();
            foreach (var (k, v) in Budget) b[k] = v;
            o["budget"] = b;
        }
        if (Evidence is not null) o["evidence"] = Evidence;
        return o;
    }

    /// <summary>Reads a custom object.</summary>
    /// <exception cref="MalformedMetadataException">Missing or mistyped fields.</exception>
    public static ModelTarget FromJson(JsonObject o)
    {
        var budget = new Dictionary<string, long>();
        if (o["budget"] is not null)
            foreach (var (k, _) in Json.Obj(o, "budget")) budget[k] = Json.Long(Json.Obj(o, "budget"), k);
        var evidence = Json.OptStr(o, "evidence");
        if (evidence is not null)
        {
            try { using var _ = JsonDocument.Parse(evidence); }
            catch (JsonException e) { throw new MalformedMetadataException($"evidence is not JSON text: {e.Message}"); }
        }
        var t = new ModelTarget
        {
            Model = Json.Str(o, "model"),
            Version = Json.Str(o, "version"),
            Variant = Json.Str(o, "variant"),
            Precision = Json.OptStr(o, "precision") ?? "fp32",
            Requirements = DeviceRequirements.FromJson(o["requirements"] as JsonObject),
            RuntimeApi = VersionRange.FromJson(o, "runtime_api"),
            Priority = Json.OptLong(o, "priority") ?? 0,
            Budget = budget,
            Evidence = evidence,
        };
        TargetsNames.ValidateSegment("model name", t.Model);
        TargetsNames.ValidateSegment("version", t.Version);
        TargetsNames.ValidateSegment("variant name", t.Variant);
        return t;
    }

    /// <summary>Why <paramref name="d"/> cannot use this variant (empty when it can).</summary>
    public IReadOnlyList<string> Unmet(DeviceDescription d)
    {
        var why = Requirements.Unmet(d).ToList();
        if (RuntimeApi is not null && (d.RuntimeApiVersion is null || !RuntimeApi.Contains(d.RuntimeApiVersion)))
            why.Add($"loadable by runtime API {RuntimeApi}, device has {d.RuntimeApiVersion ?? "unknown"}");
        return why;
    }

    /// <summary>Bits per weight of <see cref="Precision"/> (0 when unknown), used to prefer more precise variants.</summary>
    public int PrecisionBits => Precision.ToLowerInvariant() switch
    {
        "fp32" or "float32" => 32,
        "fp16" or "float16" or "bf16" => 16,
        "int8" or "uint8" or "q8" => 8,
        "int4" or "uint4" or "q4" => 4,
        _ => 0,
    };
}

/// <summary>One candidate variant: its target path and file.</summary>
public sealed record VariantChoice(string Path, TargetFile File, ModelTarget Target);

/// <summary>Chooses the best variant of a model a device can run.</summary>
public static class VariantSelector
{
    /// <summary>
    /// Among the targets of <paramref name="releases"/> for <paramref name="model"/>, the newest version that has a
    /// variant the device can run, and within it the best such variant: highest priority, then the largest RAM
    /// requirement met (the bigger model for the bigger device), then more bits per weight, then the larger file.
    /// Null when nothing fits.
    /// </summary>
    public static VariantChoice? Select(IEnumerable<TargetsMetadata> releases, string model, DeviceDescription device)
    {
        var candidates = new List<VariantChoice>();
        foreach (var rel in releases)
            foreach (var (path, f) in rel.Targets)
                if (f.Model is { } m && m.Model == model && m.Unmet(device).Count == 0)
                    candidates.Add(new VariantChoice(path, f, m));
        return candidates
            .OrderByDescending(c => c.Target.Version, ModelVersion.Comparer)
            .ThenByDescending(c => c.Target.Priority)
            .ThenByDescending(c => c.Target.Requirements.MinRamBytes ?? 0)
            .ThenByDescending(c => c.Target.PrecisionBits)
            .ThenByDescending(c => c.File.Length)
            .ThenBy(c => c.Path, StringComparer.Ordinal)
            .FirstOrDefault();
    }
}
