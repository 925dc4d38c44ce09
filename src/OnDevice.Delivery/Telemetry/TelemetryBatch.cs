using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace OnDevice.Delivery.Telemetry;

/// <summary>A telemetry batch that is malformed, hostile or out of limits; the message names the field and the limit.</summary>
public sealed class InvalidTelemetryException(string message, bool tooLarge = false) : Exception(message)
{
    /// <summary>True when the batch is rejected for its size alone (HTTP 413 rather than 400).</summary>
    public bool TooLarge { get; } = tooLarge;
}

/// <summary>Limits on a telemetry batch; anything beyond them is rejected before any work.</summary>
public sealed record TelemetryLimits
{
    /// <summary>Default limits.</summary>
    public static readonly TelemetryLimits Default = new();

    /// <summary>Largest batch in bytes (64 KiB: typical entries use 20–60 buckets, under 1.5 KiB; an entry with every bucket filled is 2–6 KiB, and the reporter splits batches that would be larger).</summary>
    public int MaxBatchBytes { get; init; } = 65_536;
    /// <summary>Most entries (model versions) in one batch.</summary>
    public int MaxEntries { get; init; } = 32;
    /// <summary>Largest single counter in one batch (10^9).</summary>
    public long MaxCount { get; init; } = 1_000_000_000;
    /// <summary>Longest period one batch may cover.</summary>
    public TimeSpan MaxPeriod { get; init; } = TimeSpan.FromDays(2);
    /// <summary>How far a batch's period may end in the server's future (clock skew).</summary>
    public TimeSpan MaxClockSkew { get; init; } = TimeSpan.FromMinutes(10);
    /// <summary>Oldest period end accepted; the server keeps batch ids at least this long so retries are never counted twice.</summary>
    public TimeSpan MaxAge { get; init; } = TimeSpan.FromDays(7);
}

/// <summary>Counters of one model version in use on the device during the batch's period.</summary>
/// <param name="Model">Model name.</param>
/// <param name="Version">Version actually in use (the metrics belong to it).</param>
/// <param name="Variant">Variant actually in use.</param>
/// <param name="ExpectedVersion">Version the device was meant to run (from its update or rollout assignment), when known.</param>
/// <param name="ExpectedVariant">Variant the device was meant to run, when known.</param>
/// <param name="Counts">The counters (<see cref="TelemetryCounts.Reports"/> is 1, <see cref="TelemetryCounts.FallbackReports"/> 1 when in use ≠ expected).</param>
public sealed record TelemetryEntry(string Model, string Version, string Variant, string? ExpectedVersion, string? ExpectedVariant, TelemetryCounts Counts)
{
    /// <summary>True when the device ran something other than what it expected (it fell back).</summary>
    public bool IsFallback => (ExpectedVersion is not null && ExpectedVersion != Version) || (ExpectedVariant is not null && ExpectedVariant != Variant);
}

/// <summary>
/// One telemetry batch: the aggregate counters a device collected over a period, per model version in use. It carries
/// no user content: only model/version/variant names, the device class, counters and histogram buckets, the period,
/// a random batch id (for idempotent retries) and a random install id that the device rotates (see docs/telemetry.md).
/// The JSON form is strict: unknown fields, duplicate fields, negative or oversized counts, unknown buckets and absurd
/// periods are rejected with <see cref="InvalidTelemetryException"/>.
/// </summary>
public sealed record TelemetryBatch(string BatchId, string InstallId, string DeviceClass, DateTimeOffset PeriodStart, DateTimeOffset PeriodEnd, IReadOnlyList<TelemetryEntry> Entries)
{
    /// <summary>The schema version written and accepted.</summary>
    public const int SchemaVersion = 1;

    /// <summary>Longest device class name.</summary>
    public const int MaxDeviceClassLength = 64;

    /// <summary>A fresh random 128-bit id as 32 lowercase hex digits (batch ids and install ids).</summary>
    public static string NewId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));

    /// <summary>Checks the batch's own consistency and limits (everything but the server clock).</summary>
    /// <exception cref="InvalidTelemetryException">The first problem found.</exception>
    public TelemetryBatch Validate(TelemetryLimits? limits = null)
    {
        var l = limits ?? TelemetryLimits.Default;
        CheckId("batch_id", BatchId);
        CheckId("install_id", InstallId);
        CheckDeviceClass(DeviceClass);
        if (PeriodEnd < PeriodStart) throw new InvalidTelemetryException($"period_end {Json.FormatTime(PeriodEnd)} is before period_start {Json.FormatTime(PeriodStart)}");
        if (PeriodEnd - PeriodStart > l.MaxPeriod) throw new InvalidTelemetryException($"the period {Json.FormatTime(PeriodStart)} to {Json.FormatTime(PeriodEnd)} is longer than {l.MaxPeriod.TotalHours:0.#} hours");
        if (Entries.Count == 0) throw new InvalidTelemetryException("entries must hold at least one entry");
        if (Entries.Count > l.MaxEntries) throw new InvalidTelemetryException($"entries holds {Entries.Count} entries, more than the limit of {l.MaxEntries}");
        var seen = new HashSet<(string, string, string)>();
        foreach (var e in Entries)
        {
            var where = $"entry {e.Model}/{e.Version}/{e.Variant}";
            CheckName("model", e.Model);
            CheckName("version", e.Version);
            CheckName("variant", e.Variant);
            if (e.ExpectedVersion is not null) CheckName("expected_version", e.ExpectedVersion);
            if (e.ExpectedVariant is not null) CheckName("expected_variant", e.ExpectedVariant);
            if (!seen.Add((e.Model, e.Version, e.Variant))) throw new InvalidTelemetryException($"{where} appears twice");
            var c = e.Counts;
            CheckCount(where, "inferences", c.Inferences, l);
            CheckCount(where, "loads", c.Loads, l);
            CheckCount(where, "load_failures", c.LoadFailures, l);
            CheckCount(where, "crashes.load", c.LoadCrashes, l);
            CheckCount(where, "crashes.inference", c.InferenceCrashes, l);
            CheckCount(where, "oom_kills.load", c.LoadOomKills, l);
            CheckCount(where, "oom_kills.inference", c.InferenceOomKills, l);
            for (int i = 0; i < 4; i++) CheckCount(where, "thermal." + ThermalName((ThermalState)i), c.Thermal[i], l);
            long latencySum = 0;
            for (int b = 0; b < LatencyBuckets.Count; b++)
            {
                CheckCount(where, $"latency_buckets.{b}", c.Latency[b], l);
                latencySum += c.Latency[b];
            }
            if (latencySum != c.Inferences) throw new InvalidTelemetryException($"{where}: latency_buckets sum to {latencySum} but inferences is {c.Inferences} (every completed inference has one latency)");
            if (c.FailedLoads > c.Loads) throw new InvalidTelemetryException($"{where}: load_failures + crashes.load + oom_kills.load = {c.FailedLoads} exceeds loads = {c.Loads}");
            if (c.ThermalSamples > c.Inferences) throw new InvalidTelemetryException($"{where}: thermal counts sum to {c.ThermalSamples}, more than the {c.Inferences} inferences they were sampled at");
            if (c.IsEmpty) throw new InvalidTelemetryException($"{where} counts nothing");
            if (c.Reports != 1 || c.FallbackReports != (e.IsFallback ? 1 : 0)) throw new InvalidTelemetryException($"{where}: an entry is one report");
        }
        return this;
    }

    /// <summary>Checks the period against the server's clock: not in the future beyond the allowed skew, not too old.</summary>
    /// <exception cref="InvalidTelemetryException">The period is implausible.</exception>
    public void CheckTime(DateTimeOffset now, TelemetryLimits? limits = null)
    {
        var l = limits ?? TelemetryLimits.Default;
        if (PeriodEnd > now + l.MaxClockSkew) throw new InvalidTelemetryException($"period_end {Json.FormatTime(PeriodEnd)} lies in the future (server time {Json.FormatTime(now)})");
        if (PeriodEnd < now - l.MaxAge) throw new InvalidTelemetryException($"period_end {Json.FormatTime(PeriodEnd)} is older than {l.MaxAge.TotalDays:0.#} days");
    }

    /// <summary>The JSON form (UTF-8).</summary>
    public byte[] ToJson()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteNumber("schema", SchemaVersion);
            w.WriteString("bucket_scheme", LatencyBuckets.Scheme);
            w.WriteString("batch_id", BatchId);
            w.WriteString("install_id", InstallId);
            w.WriteString("device_class", DeviceClass);
            w.WriteString("period_start", Json.FormatTime(PeriodStart));
            w.WriteString("period_end", Json.FormatTime(PeriodEnd));
            w.WriteStartArray("entries");
            foreach (var e in Entries)
            {
                var c = e.Counts;
                w.WriteStartObject();
                w.WriteString("model", e.Model);
                w.WriteString("version", e.Version);
                w.WriteString("variant", e.Variant);
                if (e.ExpectedVersion is not null) w.WriteString("expected_version", e.ExpectedVersion);
                if (e.ExpectedVariant is not null) w.WriteString("expected_variant", e.ExpectedVariant);
                w.WriteNumber("inferences", c.Inferences);
                w.WriteStartObject("latency_buckets");
                for (int b = 0; b < LatencyBuckets.Count; b++)
                    if (c.Latency[b] != 0) w.WriteNumber(b.ToString(CultureInfo.InvariantCulture), c.Latency[b]);
                w.WriteEndObject();
                w.WriteNumber("loads", c.Loads);
                w.WriteNumber("load_failures", c.LoadFailures);
                w.WriteStartObject("crashes");
                w.WriteNumber("load", c.LoadCrashes);
                w.WriteNumber("inference", c.InferenceCrashes);
                w.WriteEndObject();
                w.WriteStartObject("oom_kills");
                w.WriteNumber("load", c.LoadOomKills);
                w.WriteNumber("inference", c.InferenceOomKills);
                w.WriteEndObject();
                w.WriteStartObject("thermal");
                for (int i = 0; i < 4; i++) w.WriteNumber(ThermalName((ThermalState)i), c.Thermal[i]);
                w.WriteEndObject();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return ms.ToArray();
    }

    /// <summary>Parses and validates a batch (strict: see the type's remarks).</summary>
    /// <exception cref="InvalidTelemetryException">Malformed, hostile or over a limit; the message says which field.</exception>
    public static TelemetryBatch Parse(ReadOnlySpan<byte> utf8, TelemetryLimits? limits = null)
    {
        var l = limits ?? TelemetryLimits.Default;
        if (utf8.Length > l.MaxBatchBytes) throw new InvalidTelemetryException($"the batch is {utf8.Length} bytes, more than the limit of {l.MaxBatchBytes}", tooLarge: true);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(utf8.ToArray(), new JsonDocumentOptions { MaxDepth = 6 }); }
        catch (JsonException e) { throw new InvalidTelemetryException($"the batch is not valid JSON: {e.Message}"); }
        using (doc)
        {
            var root = Fields(doc.RootElement, "the batch", ["schema", "bucket_scheme", "batch_id", "install_id", "device_class", "period_start", "period_end", "entries"], []);
            var schema = Integer(root, "schema", long.MaxValue);
            if (schema != SchemaVersion) throw new InvalidTelemetryException($"schema {schema} is not supported (expected {SchemaVersion})");
            var scheme = String(root, "bucket_scheme");
            if (scheme != LatencyBuckets.Scheme) throw new InvalidTelemetryException($"bucket_scheme '{Truncate(scheme)}' is not supported (expected '{LatencyBuckets.Scheme}')");
            if (root["entries"].ValueKind != JsonValueKind.Array) throw new InvalidTelemetryException("field 'entries' must be an array");
            var entriesElement = root["entries"];
            int n = entriesElement.GetArrayLength();
            if (n > l.MaxEntries) throw new InvalidTelemetryException($"entries holds {n} entries, more than the limit of {l.MaxEntries}");
            var entries = new List<TelemetryEntry>(n);
            foreach (var el in entriesElement.EnumerateArray()) entries.Add(ParseEntry(el, l));
            return new TelemetryBatch(String(root, "batch_id"), String(root, "install_id"), String(root, "device_class"),
                Time(root, "period_start"), Time(root, "period_end"), entries).Validate(l);
        }
    }

    private static TelemetryEntry ParseEntry(JsonElement el, TelemetryLimits l)
    {
        var f = Fields(el, "an entry", ["model", "version", "variant", "inferences", "latency_buckets", "loads", "load_failures", "crashes", "oom_kills", "thermal"], ["expected_version", "expected_variant"]);
        var c = new TelemetryCounts
        {
            Reports = 1,
            Inferences = Integer(f, "inferences", l.MaxCount),
            Loads = Integer(f, "loads", l.MaxCount),
            LoadFailures = Integer(f, "load_failures", l.MaxCount),
        };
        var crashes = Fields(f["crashes"], "field 'crashes'", ["load", "inference"], []);
        c.LoadCrashes = Integer(crashes, "load", l.MaxCount, "crashes.");
        c.InferenceCrashes = Integer(crashes, "inference", l.MaxCount, "crashes.");
        var oom = Fields(f["oom_kills"], "field 'oom_kills'", ["load", "inference"], []);
        c.LoadOomKills = Integer(oom, "load", l.MaxCount, "oom_kills.");
        c.InferenceOomKills = Integer(oom, "inference", l.MaxCount, "oom_kills.");
        var thermal = Fields(f["thermal"], "field 'thermal'", ["nominal", "fair", "serious", "critical"], []);
        for (int i = 0; i < 4; i++) c.Thermal[i] = Integer(thermal, ThermalName((ThermalState)i), l.MaxCount, "thermal.");
        var buckets = f["latency_buckets"];
        if (buckets.ValueKind != JsonValueKind.Object) throw new InvalidTelemetryException("field 'latency_buckets' must be an object of bucket number → count");
        var seen = new HashSet<int>();
        foreach (var p in buckets.EnumerateObject())
        {
            if (!int.TryParse(p.Name, NumberStyles.None, CultureInfo.InvariantCulture, out var b) || b >= LatencyBuckets.Count || b.ToString(CultureInfo.InvariantCulture) != p.Name)
                throw new InvalidTelemetryException($"latency bucket '{Truncate(p.Name)}' is unknown (buckets are 0-{LatencyBuckets.Count - 1} of scheme {LatencyBuckets.Scheme})");
            if (!seen.Add(b)) throw new InvalidTelemetryException($"latency bucket {b} appears twice");
            c.Latency[b] = Count(p.Value, $"latency_buckets.{b}", l.MaxCount);
        }
        string? expVersion = f.TryGetValue("expected_version", out var ev) ? StringOf(ev, "expected_version") : null;
        string? expVariant = f.TryGetValue("expected_variant", out var ea) ? StringOf(ea, "expected_variant") : null;
        var entry = new TelemetryEntry(String(f, "model"), String(f, "version"), String(f, "variant"), expVersion, expVariant, c);
        c.FallbackReports = entry.IsFallback ? 1 : 0;
        return entry;
    }

    /// <summary>The JSON name of a thermal state.</summary>
    public static string ThermalName(ThermalState s) => s switch
    {
        ThermalState.Nominal => "nominal",
        ThermalState.Fair => "fair",
        ThermalState.Serious => "serious",
        ThermalState.Critical => "critical",
        _ => throw new ArgumentOutOfRangeException(nameof(s)),
    };

    private static Dictionary<string, JsonElement> Fields(JsonElement el, string what, string[] required, string[] optional)
    {
        if (el.ValueKind != JsonValueKind.Object) throw new InvalidTelemetryException($"{what} must be a JSON object");
        var d = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var p in el.EnumerateObject())
        {
            if (Array.IndexOf(required, p.Name) < 0 && Array.IndexOf(optional, p.Name) < 0)
                throw new InvalidTelemetryException($"{what} has an unknown field '{Truncate(p.Name)}' (telemetry carries only the documented counters)");
            if (!d.TryAdd(p.Name, p.Value)) throw new InvalidTelemetryException($"{what} has the field '{p.Name}' twice");
        }
        foreach (var r in required)
            if (!d.ContainsKey(r)) throw new InvalidTelemetryException($"{what} lacks the field '{r}'");
        return d;
    }

    private static long Integer(Dictionary<string, JsonElement> f, string name, long max, string prefix = "") => Count(f[name], prefix + name, max);

    private static long Count(JsonElement v, string name, long max)
    {
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out var x))
            throw new InvalidTelemetryException($"field '{name}' must be a whole number");
        if (x < 0 || x > max) throw new InvalidTelemetryException($"field '{name}' is {x}; it must lie between 0 and {max}");
        return x;
    }

    private static string String(Dictionary<string, JsonElement> f, string name) => StringOf(f[name], name);

    private static string StringOf(JsonElement v, string name) =>
        v.ValueKind == JsonValueKind.String ? v.GetString()! : throw new InvalidTelemetryException($"field '{name}' must be a string");

    private static DateTimeOffset Time(Dictionary<string, JsonElement> f, string name)
    {
        var s = String(f, name);
        if (!DateTimeOffset.TryParseExact(s, Json.TimeFormat, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t))
            throw new InvalidTelemetryException($"field '{name}' must be a UTC time like 2030-01-01T00:00:00Z, got '{Truncate(s)}'");
        return t;
    }

    private static void CheckId(string name, string id)
    {
        if (id.Length != 32 || !id.All(ch => ch is >= '0' and <= '9' or >= 'a' and <= 'f'))
            throw new InvalidTelemetryException($"field '{name}' must be 32 lowercase hex digits (a random 128-bit id)");
    }

    /// <summary>Checks a device class name: 1–64 printable ASCII characters without spaces or commas.</summary>
    /// <exception cref="InvalidTelemetryException">The name is not acceptable.</exception>
    public static void CheckDeviceClass(string name)
    {
        if (name.Length is 0 or > MaxDeviceClassLength || name.Any(ch => ch <= ' ' || ch > '~' || ch == ','))
            throw new InvalidTelemetryException($"device_class '{Truncate(name)}' must be 1-{MaxDeviceClassLength} printable ASCII characters without spaces or commas");
    }

    private static void CheckName(string what, string s)
    {
        try { TargetsNames.ValidateSegment(what, s); }
        catch (MalformedMetadataException) { throw new InvalidTelemetryException($"{what} '{Truncate(s)}' must be 1-100 letters, digits or ._-+"); }
    }

    private static void CheckCount(string where, string name, long v, TelemetryLimits l)
    {
        if (v < 0 || v > l.MaxCount) throw new InvalidTelemetryException($"{where}: {name} is {v}; it must lie between 0 and {l.MaxCount}");
    }

    private static string Truncate(string s)
    {
        var sb = new StringBuilder();
        foreach (var ch in s.Take(40)) sb.Append(ch is >= ' ' and <= '~' ? ch : '?');
        return s.Length > 40 ? sb + "…" : sb.ToString();
    }
}
