using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using OnDevice.Delivery.Telemetry;
using OnDevice.Server.Rollouts;
using OnDevice.Server.Storage;

namespace OnDevice.Server.Tests;

/// <summary>Telemetry ingest, aggregation and guard scenarios shared by the SQLite and PostgreSQL tests.</summary>
public static class TelemetryScenarios
{
    /// <summary>A batch of one entry: <paramref name="inferences"/> log-normal latencies around <paramref name="medianMs"/>.</summary>
    public static TelemetryBatch Batch(string model, string version, string deviceClass, int inferences, double medianMs, int seed,
        int loads = 1, int loadFailures = 0, int inferenceCrashes = 0, string variant = "int8", string? installId = null, string? expectedVersion = null)
    {
        var rng = new Random(seed);
        var c = new TelemetryCounts { Reports = 1, Inferences = inferences, Loads = loads, LoadFailures = loadFailures, InferenceCrashes = inferenceCrashes, FallbackReports = expectedVersion is not null && expectedVersion != version ? 1 : 0 };
        for (int i = 0; i < inferences; i++)
        {
            double z = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
            c.Latency[LatencyBuckets.Of(medianMs * Math.Exp(0.3 * z))]++;
            c.Thermal[i % 50 == 0 ? 1 : 0]++;
        }
        var now = DateTimeOffset.UtcNow;
        var end = new DateTimeOffset(now.UtcTicks - now.UtcTicks % TimeSpan.TicksPerSecond, TimeSpan.Zero);
        return new TelemetryBatch(TelemetryBatch.NewId(), installId ?? TelemetryBatch.NewId(), deviceClass, end.AddMinutes(-5), end,
            [new TelemetryEntry(model, version, variant, expectedVersion, null, c)]).Validate();
    }

    public static async Task<HttpResponseMessage> PostAsync(HttpClient http, byte[] body)
    {
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new("application/json");
        return await http.PostAsync("/v1/telemetry", content);
    }

    public static async Task<JsonElement> QueryAsync(ServerProcess server, string model, string query = "")
    {
        using var http = server.Http(server.Token);
        using var r = await http.GetAsync($"/api/v1/telemetry/{model}{query}");
        Assert.True(r.IsSuccessStatusCode, $"GET telemetry: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
        return JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.Clone();
    }

    /// <summary>Valid batches are summed per version, variant and class; the read API needs a token; hostile batches get 400/413 and change nothing.</summary>
    public static async Task IngestQueryAndRejectAsync(ServerProcess server)
    {
        using var http = server.Http();
        var batches = new[]
        {
            Batch("asr", "1.0", "ram<4GB", 400, 20, 1),
            Batch("asr", "1.0", "ram<4GB", 600, 20, 2, loads: 3, loadFailures: 1),
            Batch("asr", "2.0", "ram<4GB", 300, 40, 3, inferenceCrashes: 2, expectedVersion: "2.0"),
            Batch("asr", "1.0", "ram>=8GB", 500, 10, 4, expectedVersion: "2.0"), // fell back from 2.0 to 1.0
        };
        foreach (var b in batches)
        {
            using var r = await PostAsync(http, b.ToJson());
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            var body = await r.Content.ReadFromJsonAsync<JsonElement>();
            Assert.False(body.GetProperty("duplicate").GetBoolean());
        }
        // The same batch again (a retry after a lost response) is acknowledged and not counted twice.
        using (var again = await PostAsync(http, batches[0].ToJson()))
            Assert.True((await again.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("duplicate").GetBoolean());

        using (var anon = server.Http())
            Assert.Equal(HttpStatusCode.Unauthorized, (await anon.GetAsync("/api/v1/telemetry/asr")).StatusCode);
        var q = await QueryAsync(server, "asr");
        var rows = q.GetProperty("rows").EnumerateArray().ToList();
        Assert.Equal(3, rows.Count);
        var v1Small = rows.Single(r => r.GetProperty("version").GetString() == "1.0" && r.GetProperty("device_class").GetString() == "ram<4GB");
        Assert.Equal(1000, v1Small.GetProperty("inferences").GetInt64());
        Assert.Equal(2, v1Small.GetProperty("reports").GetInt64());
        Assert.Equal(4, v1Small.GetProperty("loads").GetInt64());
        Assert.Equal(0.25, v1Small.GetProperty("load_failure_rate").GetDouble(), 9);
        var expected = new long[LatencyBuckets.Count];
        foreach (var b in batches[..2]) for (int i = 0; i < expected.Length; i++) expected[i] += b.Entries[0].Counts.Latency[i];
        foreach (var bucket in v1Small.GetProperty("latency_buckets").EnumerateArray())
            Assert.Equal(expected[bucket.GetProperty("bucket").GetInt32()], bucket.GetProperty("count").GetInt64());
        Assert.Equal(expected.Sum(), v1Small.GetProperty("latency_buckets").EnumerateArray().Sum(b => b.GetProperty("count").GetInt64()));
        Assert.InRange(v1Small.GetProperty("p50_latency_ms").GetDouble(), 18, 22);
        var v2 = rows.Single(r => r.GetProperty("version").GetString() == "2.0");
        Assert.Equal(2, v2.GetProperty("crashes").GetProperty("inference").GetInt64());
        Assert.InRange(v2.GetProperty("p50_latency_ms").GetDouble(), 36, 44);
        var fellBack = rows.Single(r => r.GetProperty("device_class").GetString() == "ram>=8GB");
        Assert.Equal(1, fellBack.GetProperty("fallback_reports").GetInt64());
        // Grouped per version: 1.0 sums both classes.
        var byVersion = (await QueryAsync(server, "asr", "?by=version")).GetProperty("rows").EnumerateArray().ToList();
        Assert.Equal(1500, byVersion.Single(r => r.GetProperty("version").GetString() == "1.0").GetProperty("inferences").GetInt64());
        Assert.Single((await QueryAsync(server, "asr", "?version=2.0")).GetProperty("rows").EnumerateArray());
        Assert.Empty((await QueryAsync(server, "asr", $"?since={DateTime.UtcNow.AddMinutes(5):yyyy-MM-ddTHH:mm:ssZ}&until={DateTime.UtcNow.AddMinutes(6):yyyy-MM-ddTHH:mm:ssZ}")).GetProperty("rows").EnumerateArray());

        // Hostile batches: each refused with a message that names the problem; nothing is stored.
        var good = JsonNode.Parse(Batch("evil", "1.0", "ram<4GB", 100, 20, 5).ToJson())!;
        (string Edit, string Message)[] hostile =
        [
            ("negative", "between 0 and"), ("huge", "between 0 and"), ("bucket", "unknown"), ("field", "unknown field"),
            ("period", "longer than"), ("future", "future"), ("entries", "more than the limit"),
        ];
        foreach (var (edit, message) in hostile)
        {
            var n = good.DeepClone();
            var e = n["entries"]![0]!;
            switch (edit)
            {
                case "negative": e["loads"] = -1; break;
                case "huge": e["inferences"] = long.MaxValue; break;
                case "bucket": e["latency_buckets"]!["9999"] = 1; break;
                case "field": e["text"] = "the user said hello"; break;
                case "period": n["period_start"] = "2000-01-01T00:00:00Z"; break;
                case "future": n["period_start"] = "2099-01-01T00:00:00Z"; n["period_end"] = "2099-01-01T00:01:00Z"; break;
                case "entries": for (int i = 0; i < 40; i++) n["entries"]!.AsArray().Add(e.DeepClone()); break;
            }
            using var r = await PostAsync(http, Encoding.UTF8.GetBytes(n.ToJsonString()));
            var text = await r.Content.ReadAsStringAsync();
            Assert.True(r.StatusCode == HttpStatusCode.BadRequest, $"{edit}: {(int)r.StatusCode} {text}");
            Assert.Contains(message, JsonDocument.Parse(text).RootElement.GetProperty("detail").GetString());
        }
        using (var notJson = await PostAsync(http, "{\"schema\": 1, "u8.ToArray()))
            Assert.Equal(HttpStatusCode.BadRequest, notJson.StatusCode);
        using (var big = await PostAsync(http, Encoding.UTF8.GetBytes("{\"pad\":\"" + new string('x', 200_000) + "\"}")))
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, big.StatusCode);
        Assert.Empty((await QueryAsync(server, "evil")).GetProperty("rows").EnumerateArray());
    }

    /// <summary>Many devices posting at once: the aggregates equal the sums of what was sent; retries do not double count.</summary>
    public static async Task ConcurrentPostsAsync(ServerProcess server, int devices = 40, ServerProcess? replica = null)
    {
        var batches = Enumerable.Range(0, devices).Select(i => Batch("kws", i % 3 == 0 ? "2.0" : "1.0", i % 2 == 0 ? "ram<4GB" : "ram4-8GB", 200 + i, 15 + i % 5, 100 + i, loads: 2)).ToList();
        using var http = server.Http();
        using var http2 = (replica ?? server).Http();
        // Every batch twice, all at once: half of the posts are retries (through the other replica when there is one).
        var posts = batches.Concat(batches).Select(async (b, i) =>
        {
            using var r = await PostAsync(i < devices ? http : http2, b.ToJson());
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            return (await r.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("duplicate").GetBoolean();
        }).ToList();
        var duplicates = await Task.WhenAll(posts);
        Assert.Equal(devices, duplicates.Count(d => d));
        var rows = (await QueryAsync(server, "kws")).GetProperty("rows").EnumerateArray().ToList();
        foreach (var g in batches.GroupBy(b => (b.Entries[0].Version, b.DeviceClass)))
        {
            var row = rows.Single(r => r.GetProperty("version").GetString() == g.Key.Version && r.GetProperty("device_class").GetString() == g.Key.DeviceClass);
            Assert.Equal(g.Sum(b => b.Entries[0].Counts.Inferences), row.GetProperty("inferences").GetInt64());
            Assert.Equal(g.Count(), row.GetProperty("reports").GetInt64());
            Assert.Equal(2L * g.Count(), row.GetProperty("loads").GetInt64());
            var hist = new long[LatencyBuckets.Count];
            foreach (var b in g) for (int i = 0; i < hist.Length; i++) hist[i] += b.Entries[0].Counts.Latency[i];
            foreach (var bucket in row.GetProperty("latency_buckets").EnumerateArray())
                Assert.Equal(hist[bucket.GetProperty("bucket").GetInt32()], bucket.GetProperty("count").GetInt64());
        }
    }

    /// <summary>Guards through the store: no data, one bad class and one fine class, rule validation.</summary>
    public static async Task HealthPerDeviceClassAsync(IDeliveryStore store)
    {
        await store.MigrateAsync();
        var health = new TelemetryHealth(store, new ServerOptions { Store = "unused", Keys = "unused" });
        Assert.Throws<ArgumentException>(() => health.ValidateRule("p99_latency_ms >> 50"));
        health.ValidateRule("p99_latency_ms > 1.2x baseline");
        string[] guards = ["p99_latency_ms > 1.2x baseline", "crash_rate > 0.001"];
        var since = DateTimeOffset.UtcNow.AddMinutes(-1);

        var none = await health.EvaluateAsync(new HealthQuery("tts", "2.0", "1.0", guards, since, DateTimeOffset.UtcNow.AddMinutes(1)));
        Assert.Equal(2, none.Count);
        Assert.All(none, o => Assert.Equal((TelemetryHealth.AnyClass, GuardVerdict.Insufficient), (o.DeviceClass, o.Verdict)));

        // A few candidate reports, however bad: insufficient.
        for (int i = 0; i < 3; i++) Assert.True(await store.AddTelemetryAsync(Batch("tts", "2.0", "ram4-8GB", 100, 200, 900 + i, inferenceCrashes: 5), DateTimeOffset.UtcNow));
        var few = await health.EvaluateAsync(new HealthQuery("tts", "2.0", "1.0", guards, since, DateTimeOffset.UtcNow.AddMinutes(1)));
        Assert.All(few, o => Assert.Equal(GuardVerdict.Insufficient, o.Verdict));

        // Baseline on both classes; the candidate is twice as slow on ram<4GB only, fine on ram>=8GB.
        var adds = new List<Task<bool>>();
        for (int i = 0; i < 20; i++)
        {
            adds.Add(store.AddTelemetryAsync(Batch("tts", "1.0", "ram<4GB", 2500, 30, 1000 + i, loads: 50), DateTimeOffset.UtcNow));
            adds.Add(store.AddTelemetryAsync(Batch("tts", "1.0", "ram>=8GB", 5000, 10, 2000 + i, loads: 50), DateTimeOffset.UtcNow));
            adds.Add(store.AddTelemetryAsync(Batch("tts", "2.0", "ram<4GB", 500, 60, 3000 + i, loads: 50), DateTimeOffset.UtcNow));
            adds.Add(store.AddTelemetryAsync(Batch("tts", "2.0", "ram>=8GB", 2000, 10, 4000 + i, loads: 50), DateTimeOffset.UtcNow));
        }
        Assert.All(await Task.WhenAll(adds), Assert.True);
        var outcomes = await health.EvaluateAsync(new HealthQuery("tts", "2.0", "1.0", guards, since, DateTimeOffset.UtcNow.AddMinutes(1)));
        Assert.Equal(6, outcomes.Count);
        Assert.All(outcomes.Where(o => o.DeviceClass == "ram4-8GB"), o => Assert.Equal(GuardVerdict.Insufficient, o.Verdict));
        var slow = outcomes.Single(o => o.DeviceClass == "ram<4GB" && o.Rule.StartsWith("p99", StringComparison.Ordinal));
        Assert.Equal(GuardVerdict.Fail, slow.Verdict);
        Assert.True(slow.PValue < 0.01);
        Assert.InRange(slow.CandidateValue / slow.BaselineValue!.Value, 1.7, 2.4);
        Assert.Equal(20 * 500, slow.CandidateSamples);
        Assert.Contains("ram<4GB", slow.Reason);
        Assert.Contains("p = ", slow.Reason);
        Assert.Equal(GuardVerdict.Pass, outcomes.Single(o => o.DeviceClass == "ram<4GB" && o.Rule.StartsWith("crash", StringComparison.Ordinal)).Verdict);
        var fine = outcomes.Single(o => o.DeviceClass == "ram>=8GB" && o.Rule.StartsWith("p99", StringComparison.Ordinal));
        Assert.Equal(GuardVerdict.Pass, fine.Verdict);
        Assert.Equal(GuardVerdict.Pass, outcomes.Single(o => o.DeviceClass == "ram>=8GB" && o.Rule.StartsWith("crash", StringComparison.Ordinal)).Verdict);
        // A window that ended before any of it: no decision.
        var before = await health.EvaluateAsync(new HealthQuery("tts", "2.0", "1.0", guards, since.AddHours(-2), since.AddHours(-1)));
        Assert.All(before, o => Assert.Equal(GuardVerdict.Insufficient, o.Verdict));
    }
}

/// <summary>Telemetry against a real server process on SQLite, and guards on a SQLite store.</summary>
[Trait("Category", "Delivery")]
public class SqliteTelemetryTests
{
    [Fact]
    public async Task Batches_are_aggregated_queried_and_hostile_ones_rejected()
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys);
        await TelemetryScenarios.IngestQueryAndRejectAsync(server);
    }

    [Fact]
    public async Task Concurrent_posts_sum_exactly_and_retries_count_once()
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys);
        await TelemetryScenarios.ConcurrentPostsAsync(server);
    }

    [Fact]
    public async Task One_install_id_is_rate_limited()
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys);
        using var http = server.Http();
        var id = TelemetryBatch.NewId();
        var statuses = new List<HttpStatusCode>();
        for (int i = 0; i < 65; i++)
        {
            using var r = await TelemetryScenarios.PostAsync(http, TelemetryScenarios.Batch("m", "1.0", "ram<4GB", 10, 5, i, installId: id).ToJson());
            statuses.Add(r.StatusCode);
            if (r.StatusCode == HttpStatusCode.TooManyRequests) Assert.True(r.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1));
        }
        Assert.InRange(statuses.Count(s => s == HttpStatusCode.OK), 60, 62);
        Assert.Contains(HttpStatusCode.TooManyRequests, statuses);
        // Another device is not affected.
        using var other = await TelemetryScenarios.PostAsync(http, TelemetryScenarios.Batch("m", "1.0", "ram<4GB", 10, 5, 99).ToJson());
        Assert.Equal(HttpStatusCode.OK, other.StatusCode);
    }

    [Fact]
    public async Task Guards_decide_per_device_class_on_sqlite()
    {
        using var dir = new OnDevice.TestSupport.TempDir();
        await using var store = new SqliteDeliveryStore(dir.File("t.db"));
        await TelemetryScenarios.HealthPerDeviceClassAsync(store);
    }
}
