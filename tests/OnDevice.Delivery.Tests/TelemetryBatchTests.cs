using System.Text;
using System.Text.Json.Nodes;
using OnDevice.Delivery.Telemetry;

namespace OnDevice.Delivery.Tests;

/// <summary>Latency buckets and the strict batch format.</summary>
public class TelemetryBatchTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 21, 12, 0, 0, TimeSpan.Zero);

    internal static TelemetryBatch Sample()
    {
        var c = new TelemetryCounts { Reports = 1, Inferences = 100, Loads = 2, LoadFailures = 1, InferenceCrashes = 1, LoadOomKills = 1 };
        c.Latency[LatencyBuckets.Of(12.5)] = 90;
        c.Latency[LatencyBuckets.Of(80)] = 10;
        c.Thermal[(int)ThermalState.Nominal] = 95;
        c.Thermal[(int)ThermalState.Serious] = 5;
        var fb = new TelemetryCounts { Reports = 1, FallbackReports = 1, Inferences = 3, Loads = 1 };
        fb.Latency[0] = 3;
        return new TelemetryBatch(TelemetryBatch.NewId(), TelemetryBatch.NewId(), "ram4-8GB", T0, T0.AddMinutes(5),
            [new TelemetryEntry("asr", "2.0", "int8", "2.0", "int8", c), new TelemetryEntry("asr", "1.0", "fp32", "2.0", "int8", fb)]);
    }

    [Fact]
    public void Buckets_are_log_spaced_and_cover_0_1_ms_to_60_s()
    {
        Assert.Equal(280, LatencyBuckets.Count);
        Assert.Equal(0, LatencyBuckets.Of(0));
        Assert.Equal(0, LatencyBuckets.Of(0.0999));
        Assert.Equal(1, LatencyBuckets.Of(0.1));
        Assert.Equal(49, LatencyBuckets.Of(1.0));
        Assert.Equal(279, LatencyBuckets.Of(62_000));
        Assert.True(LatencyBuckets.LowerMs(279) > 60_000);
        for (int b = 2; b < 279; b++)
        {
            Assert.InRange(LatencyBuckets.UpperMs(b) / LatencyBuckets.LowerMs(b), 1.0490, 1.0492);
            Assert.Equal(b, LatencyBuckets.Of(LatencyBuckets.LowerMs(b)));
            Assert.Equal(b, LatencyBuckets.Of(Math.BitDecrement(LatencyBuckets.UpperMs(b))));
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => LatencyBuckets.Of(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => LatencyBuckets.Of(double.NaN));
        Assert.True(double.IsNaN(LatencyBuckets.Quantile(new long[280], 0.5)));
    }

    [Fact]
    public void Quantiles_are_within_one_bucket_width_of_the_exact_value()
    {
        var rng = new Random(3);
        var xs = Enumerable.Range(0, 20000).Select(_ => 0.5 + 300 * rng.NextDouble() * rng.NextDouble()).ToArray();
        var counts = new long[280];
        foreach (var x in xs) counts[LatencyBuckets.Of(x)]++;
        Array.Sort(xs);
        foreach (var q in new[] { 0.1, 0.5, 0.9, 0.99, 0.999 })
        {
            double exact = xs[(int)Math.Ceiling(q * xs.Length) - 1];
            Assert.InRange(LatencyBuckets.Quantile(counts, q) / exact, 1 / 1.0491, 1.0491);
        }
    }

    [Fact]
    public void A_batch_round_trips_through_json()
    {
        var b = Sample().Validate();
        var json = b.ToJson();
        var back = TelemetryBatch.Parse(json);
        Assert.Equal(json, back.ToJson());
        Assert.Equal(2, back.Entries.Count);
        Assert.False(back.Entries[0].IsFallback);
        Assert.True(back.Entries[1].IsFallback);
        Assert.Equal(1, back.Entries[1].Counts.FallbackReports);
        Assert.Equal(5, back.Entries[0].Counts.Thermal[(int)ThermalState.Serious]);
        Assert.DoesNotContain("user", Encoding.UTF8.GetString(json));
    }

    public static TheoryData<string, string, string> Hostile() => new()
    {
        { "negative count", "$.entries[0].inferences=-5", "between 0 and" },
        { "huge count", "$.entries[0].loads=99999999999999", "between 0 and" },
        { "fractional count", "$.entries[0].loads=1.5", "whole number" },
        { "unknown bucket", "$.entries[0].latency_buckets.280=1", "unknown" },
        { "padded bucket", "$.entries[0].latency_buckets.007=1", "unknown" },
        { "bucket sum", "$.entries[0].latency_buckets.30=7", "sum to" },
        { "unknown field", "$.entries[0].transcript=\"hello\"", "unknown field 'transcript'" },
        { "unknown top field", "$.user_id=\"bob\"", "unknown field 'user_id'" },
        { "missing field", "$.entries[0].-loads", "lacks the field 'loads'" },
        { "reversed period", "$.period_end=\"2026-11-21T11:00:00Z\"", "before period_start" },
        { "absurd period", "$.period_start=\"2020-01-01T00:00:00Z\"", "longer than" },
        { "bad time", "$.period_end=\"yesterday\"", "UTC time" },
        { "bad install id", "$.install_id=\"alice@example.com\"", "32 lowercase hex" },
        { "bad device class", "$.device_class=\"a b\"", "device_class" },
        { "bad model name", "$.entries[0].model=\"../etc\"", "model" },
        { "too many failures", "$.entries[0].load_failures=5", "exceeds loads" },
        { "thermal beyond inferences", "$.entries[0].thermal.fair=50", "thermal" },
        { "schema", "$.schema=2", "schema 2" },
        { "scheme", "$.bucket_scheme=\"pow2\"", "bucket_scheme" },
        { "no entries", "$.entries=[]", "at least one" },
        { "not an object", "$=[1,2]", "JSON object" },
    };

    [Theory]
    [MemberData(nameof(Hostile))]
    public void Hostile_batches_are_rejected_with_a_clear_message(string what, string edit, string message)
    {
        var node = JsonNode.Parse(Sample().ToJson())!;
        node = Apply(node, edit);
        var e = Assert.Throws<InvalidTelemetryException>(() => TelemetryBatch.Parse(Encoding.UTF8.GetBytes(node.ToJsonString())));
        Assert.True(e.Message.Contains(message, StringComparison.Ordinal), $"{what}: {e.Message}");
        Assert.False(e.TooLarge);
    }

    [Fact]
    public void Oversized_duplicate_and_malformed_input_is_rejected()
    {
        var big = Encoding.UTF8.GetBytes("{\"x\":\"" + new string('a', 70_000) + "\"}");
        Assert.True(Assert.Throws<InvalidTelemetryException>(() => TelemetryBatch.Parse(big)).TooLarge);
        var json = Encoding.UTF8.GetString(Sample().ToJson());
        var dup = json.Replace("\"loads\":2,", "\"loads\":2,\"loads\":0,");
        Assert.Contains("twice", Assert.Throws<InvalidTelemetryException>(() => TelemetryBatch.Parse(Encoding.UTF8.GetBytes(dup))).Message);
        Assert.Contains("not valid JSON", Assert.Throws<InvalidTelemetryException>(() => TelemetryBatch.Parse("{\"schema\":"u8)).Message);
        var many = JsonNode.Parse(json)!;
        var arr = many["entries"]!.AsArray();
        for (int i = 0; i < 40; i++) arr.Add(arr[0]!.DeepClone());
        Assert.Contains("more than the limit", Assert.Throws<InvalidTelemetryException>(() => TelemetryBatch.Parse(Encoding.UTF8.GetBytes(many.ToJsonString()))).Message);
        var deep = new string('[', 100) + new string(']', 100);
        Assert.Throws<InvalidTelemetryException>(() => TelemetryBatch.Parse(Encoding.UTF8.GetBytes(deep)));
    }

    [Fact]
    public void The_period_is_checked_against_the_server_clock()
    {
        var b = Sample();
        b.CheckTime(T0.AddMinutes(6));
        Assert.Contains("future", Assert.Throws<InvalidTelemetryException>(() => b.CheckTime(T0.AddMinutes(-30))).Message);
        Assert.Contains("older than", Assert.Throws<InvalidTelemetryException>(() => b.CheckTime(T0.AddDays(9))).Message);
    }

    /// <summary>Applies "$.a.b[0].c=JSON" (set), "$.a.-c" (remove) or "$=JSON" (replace).</summary>
    private static JsonNode Apply(JsonNode root, string edit)
    {
        if (edit.StartsWith("$=", StringComparison.Ordinal)) return JsonNode.Parse(edit[2..])!;
        var eq = edit.IndexOf('=');
        var path = eq < 0 ? edit : edit[..eq];
        var parts = path[2..].Split('.');
        JsonNode cur = root;
        foreach (var p in parts[..^1])
        {
            var br = p.IndexOf('[');
            cur = br < 0 ? cur[p]! : cur[p[..br]]![int.Parse(p[(br + 1)..^1])]!;
        }
        var last = parts[^1];
        if (last.StartsWith('-')) cur.AsObject().Remove(last[1..]);
        else cur[last] = JsonNode.Parse(edit[(eq + 1)..]);
        return root;
    }
}
