// Telemetry figures: ingest throughput into the aggregate tables (store level, SQLite or PostgreSQL, W concurrent
// writers) and over HTTP against a running server (C concurrent devices); the cost of a guard evaluation over a day of
// per-minute aggregates (query + statistics), and of the statistics alone on large histograms.
// Usage: OnDevice.Bench.Telemetry store DB [--batches N] [--writers W] [--runs R]
//        OnDevice.Bench.Telemetry http URL [--batches N] [--clients C] [--runs R]
//        OnDevice.Bench.Telemetry guards DB [--runs R]
// DB is sqlite:PATH or postgres:CONNECTION-STRING (a fresh database: the bench adds rows).
using System.Diagnostics;
using System.Globalization;
using OnDevice.Delivery.Guards;
using OnDevice.Delivery.Telemetry;
using OnDevice.Server;
using OnDevice.Server.Rollouts;

var inv = CultureInfo.InvariantCulture;
string? Get(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
int runs = int.Parse(Get("--runs") ?? "3", inv);
double Median(List<double> xs) { xs.Sort(); return xs[xs.Count / 2]; }

// A realistic batch: one entry, an hour of inferences spread over ~25 buckets, a few loads and thermal samples.
TelemetryBatch Batch(int seed, string version, string cls, DateTimeOffset end, double medianMs = 20)
{
    var rng = new Random(seed);
    var c = new TelemetryCounts { Reports = 1, Loads = 3 };
    for (int i = 0; i < 2000; i++)
    {
        double z = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
        c.Latency[LatencyBuckets.Of(medianMs * Math.Exp(0.35 * z))]++;
        c.Thermal[i % 40 == 0 ? 1 : 0]++;
    }
    c.Inferences = 2000;
    return new TelemetryBatch(TelemetryBatch.NewId(), TelemetryBatch.NewId(), cls, end.AddHours(-1), end, [new TelemetryEntry("asr", version, "int8", version, "int8", c)]);
}

string[] classes = ["ram<4GB", "ram4-8GB", "ram>=8GB"];
var now = DateTimeOffset.UtcNow;
now = new DateTimeOffset(now.UtcTicks - now.UtcTicks % TimeSpan.TicksPerSecond, TimeSpan.Zero);

switch (args.FirstOrDefault())
{
    case "store":
    {
        int n = int.Parse(Get("--batches") ?? "2000", inv), writers = int.Parse(Get("--writers") ?? "8", inv);
        await using var store = ServerApp.OpenStore(new ServerOptions { Store = Path.GetTempPath(), Keys = "", Db = args[1] });
        await store.MigrateAsync();
        var rates = new List<double>();
        for (int run = 0; run < runs + 1; run++)
        {
            var batches = Enumerable.Range(0, n).Select(i => Batch(run * 100_000 + i, i % 2 == 0 ? "1.0" : "2.0", classes[i % 3], now)).ToList();
            int next = -1;
            var sw = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, writers).Select(async _ =>
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < n) await store.AddTelemetryAsync(batches[i], now);
            }));
            sw.Stop();
            if (run > 0) rates.Add(n / sw.Elapsed.TotalSeconds); // run 0 warms up
        }
        Console.WriteLine(string.Create(inv, $"store {store.Description.Split(':')[0]} batches={n} writers={writers} runs={runs} batches_per_s_median={Median(rates):F0} min={rates.Min():F0} max={rates.Max():F0}"));
        break;
    }
    case "http":
    {
        int n = int.Parse(Get("--batches") ?? "2000", inv), clients = int.Parse(Get("--clients") ?? "16", inv);
        using var http = new HttpClient { BaseAddress = new Uri(args[1]) };
        var rates = new List<double>();
        var p50s = new List<double>();
        var p99s = new List<double>();
        for (int run = 0; run < runs + 1; run++)
        {
            var bodies = Enumerable.Range(0, n).Select(i => Batch(run * 100_000 + i, i % 2 == 0 ? "1.0" : "2.0", classes[i % 3], now).ToJson()).ToList();
            var lat = new double[n];
            int next = -1, failures = 0;
            var sw = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, clients).Select(async _ =>
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < n)
                {
                    var t = Stopwatch.GetTimestamp();
                    using var content = new ByteArrayContent(bodies[i]);
                    content.Headers.ContentType = new("application/json");
                    using var r = await http.PostAsync("/v1/telemetry", content);
                    if (!r.IsSuccessStatusCode) Interlocked.Increment(ref failures);
                    lat[i] = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
                }
            }));
            sw.Stop();
            if (failures > 0) throw new InvalidOperationException($"{failures} posts failed");
            if (run == 0) continue;
            rates.Add(n / sw.Elapsed.TotalSeconds);
            Array.Sort(lat);
            p50s.Add(lat[n / 2]);
            p99s.Add(lat[(int)(n * 0.99)]);
        }
        Console.WriteLine(string.Create(inv, $"http {args[1]} batches={n} clients={clients} runs={runs} batches_per_s_median={Median(rates):F0} p50_ms={Median(p50s):F2} p99_ms={Median(p99s):F2} body_bytes~{Batch(1, "1.0", classes[0], now).ToJson().Length}"));
        break;
    }
    case "guards":
    {
        await using var store = ServerApp.OpenStore(new ServerOptions { Store = Path.GetTempPath(), Keys = "", Db = args[1] });
        await store.MigrateAsync();
        // A day of traffic: one batch per minute per version and class (1440 × 2 × 3 aggregate rows, ~25 buckets each).
        var dayStart = now.AddDays(-1);
        int seed = 0;
        var fill = Stopwatch.StartNew();
        for (int m = 0; m < 1440; m++)
            foreach (var cls in classes)
                foreach (var v in new[] { "1.0", "2.0" })
                    await store.AddTelemetryAsync(Batch(seed++, v, cls, now, v == "2.0" && cls == "ram<4GB" ? 30 : 20), dayStart.AddMinutes(m));
        fill.Stop();
        var health = new TelemetryHealth(store, new ServerOptions { Store = "", Keys = "" });
        string[] guards = ["p99_latency_ms > 1.2x baseline", "p50_latency_ms > 50", "crash_rate > 0.0001", "thermal_serious_rate > 0.05"];
        var q = new HealthQuery("asr", "2.0", "1.0", guards, dayStart, now);
        var times = new List<double>();
        IReadOnlyList<GuardOutcome> outcomes = [];
        for (int i = 0; i < runs + 1; i++)
        {
            var sw = Stopwatch.StartNew();
            outcomes = await health.EvaluateAsync(q);
            if (i > 0) times.Add(sw.Elapsed.TotalMilliseconds);
        }
        var verdicts = string.Join(" ", outcomes.Select(o => $"[{o.DeviceClass} {o.Rule.Split(' ')[0]} {o.Verdict}]"));
        Console.WriteLine(string.Create(inv, $"guards {store.Description.Split(':')[0]} rows={1440 * 6} fill_s={fill.Elapsed.TotalSeconds:F1} evaluate_ms_median={Median(times):F1} outcomes={outcomes.Count} {verdicts}"));
        // The statistics alone on a 10^6-sample histogram pair.
        var big = new TelemetryCounts { Reports = 100 };
        var bigBase = new TelemetryCounts { Reports = 100 };
        var rng = new Random(1);
        for (int i = 0; i < 1_000_000; i++)
        {
            double z = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
            big.Latency[LatencyBuckets.Of(21 * Math.Exp(0.35 * z))]++;
            bigBase.Latency[LatencyBuckets.Of(20 * Math.Exp(0.35 * z))]++;
        }
        big.Inferences = bigBase.Inferences = 1_000_000;
        var rule = GuardRule.Parse("p99_latency_ms > 1.2x baseline");
        var st = new List<double>();
        for (int i = 0; i < 21; i++)
        {
            var sw = Stopwatch.StartNew();
            GuardEvaluator.Evaluate(rule, big, bigBase);
            if (i > 0) st.Add(sw.Elapsed.TotalMilliseconds * 1000);
        }
        Console.WriteLine(string.Create(inv, $"statistics p99 relative rule on 1e6+1e6 samples: evaluate_us_median={Median(st):F0} decision={GuardEvaluator.Evaluate(rule, big, bigBase).Decision}"));
        break;
    }
    default:
        Console.Error.WriteLine("usage: OnDevice.Bench.Telemetry store|http|guards ...");
        Environment.Exit(2);
        break;
}
