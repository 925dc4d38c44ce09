using System.Net;
using System.Text.Json;
using OnDevice.Client;
using OnDevice.Delivery.Telemetry;
using OnDevice.TestSupport;
using Xunit.Abstractions;

namespace OnDevice.Server.Tests;

/// <summary>A clock the test moves by hand (timers still run on real time).</summary>
public sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = start;
    public override DateTimeOffset GetUtcNow() => Now;
}

/// <summary>
/// An HTTP proxy in front of a real server that can answer 503 itself, or forward a request and then drop the
/// answer 502 in place of the server's answer (a response lost at a gateway).
/// </summary>
public sealed class FlakyProxy : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly HttpClient _upstream = new();
    private readonly string _target;
    private readonly Task _loop;

    public FlakyProxy(string target)
    {
        _target = target.TrimEnd('/');
        var port = Ports.Free();
        Url = $"http://127.0.0.1:{port}/";
        _listener.Prefixes.Add(Url);
        _listener.Start();
        _loop = Task.Run(LoopAsync);
    }

    public string Url { get; }
    /// <summary>Requests to answer with 503 before forwarding again.</summary>
    public int Fail503 { get; set; }
    /// <summary>Requests to forward and then answer 502 (the server's answer is lost).</summary>
    public int DropAfterForward { get; set; }
    public int Requests;
    public int Forwarded;

    private async Task LoopAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext ctx;
            try { ctx = await _listener.GetContextAsync(); }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException) { return; }
            _ = Task.Run(() => HandleAsync(ctx));
        }
    }

    private async Task HandleAsync(HttpListenerContext ctx)
    {
        Interlocked.Increment(ref Requests);
        using var ms = new MemoryStream();
        await ctx.Request.InputStream.CopyToAsync(ms);
        if (Fail503 > 0)
        {
            Fail503--;
            ctx.Response.StatusCode = 503;
            ctx.Response.Close();
            return;
        }
        using var req = new HttpRequestMessage(new HttpMethod(ctx.Request.HttpMethod), _target + ctx.Request.Url!.PathAndQuery) { Content = new ByteArrayContent(ms.ToArray()) };
        req.Content.Headers.ContentType = new("application/json");
        using var resp = await _upstream.SendAsync(req);
        var body = await resp.Content.ReadAsByteArrayAsync();
        Interlocked.Increment(ref Forwarded);
        if (DropAfterForward > 0)
        {
            DropAfterForward--;
            ctx.Response.StatusCode = 502; // the upstream's answer is lost at the gateway
            ctx.Response.Close();
            return;
        }
        ctx.Response.StatusCode = (int)resp.StatusCode;
        ctx.Response.ContentType = "application/json";
        await ctx.Response.OutputStream.WriteAsync(body);
        ctx.Response.Close();
    }

    public void Dispose()
    {
        _listener.Stop();
        _listener.Close();
        _upstream.Dispose();
        try { _loop.Wait(2000); } catch (AggregateException) { }
    }
}

/// <summary>The client telemetry reporter against a real server: batching, retries with backoff, persistence, caps, id rotation.</summary>
[Trait("Category", "Delivery")]
public class TelemetryReporterTests(ITestOutputHelper output)
{
    private static readonly ModelInUse V1 = new("asr", "1.0", "int8", "1.0", "int8");

    private static TelemetryReporterOptions Options(string server, string state, TimeProvider? time = null) => new()
    {
        Server = new Uri(server),
        StateDirectory = state,
        DeviceClass = "ram4-8GB",
        MaxAttempts = 4,
        InitialBackoff = TimeSpan.FromMilliseconds(50),
        MaxBackoff = TimeSpan.FromMilliseconds(400),
        Time = time ?? TimeProvider.System,
    };

    private static void Record(TelemetryReporter r, ModelInUse m, int inferences, double ms)
    {
        r.RecordLoad(m, succeeded: true);
        for (int i = 0; i < inferences; i++) r.RecordInference(m, TimeSpan.FromMilliseconds(ms * (1 + 0.2 * Math.Sin(i))), i % 10 == 0 ? ThermalState.Fair : ThermalState.Nominal);
    }

    private static async Task<JsonElement> Row(ServerProcess server, string version)
    {
        var rows = (await TelemetryScenarios.QueryAsync(server, "asr")).GetProperty("rows").EnumerateArray().ToList();
        return rows.Single(r => r.GetProperty("version").GetString() == version);
    }

    [Fact]
    public async Task Batches_survive_a_killed_server_and_an_app_restart()
    {
        using var world = await DeliveryWorld.CreateAsync();
        var port = Ports.Free();
        var state = world.File("telemetry");
        var server = await ServerProcess.StartAsync(world.Store(), world.Keys, port: port);
        string installId;
        await using (var r = new TelemetryReporter(Options(server.BaseUrl, state)))
        {
            installId = r.InstallId;
            Record(r, V1, 1000, 12);
            var first = await r.FlushAsync();
            Assert.Equal((1, 0, 0), (first.Sent, first.Pending, first.Rejected));
            Assert.Equal(1000, (await Row(server, "1.0")).GetProperty("inferences").GetInt64());

            // The server dies (connection refused): the batch stays pending after the retries, and is saved.
            await server.DisposeAsync();
            Record(r, V1, 500, 12);
            r.RecordCrash(V1, CrashPhase.Inference);
            var failed = await r.FlushAsync();
            Assert.Equal((0, 1, 4), (failed.Sent, failed.Pending, failed.Attempts));
            Assert.IsType<HttpRequestException>(failed.Error);
            Record(r, V1, 200, 12); // still being counted (not yet sealed) when the app stops
        }
        Assert.Contains("pending", await File.ReadAllTextAsync(Path.Combine(state, "telemetry-state.json")));

        // The app and the server restart: the saved batch and the unsealed counts are delivered, once.
        await using var restarted = await ServerProcess.StartAsync(world.Store(), world.Keys, port: port);
        await using (var r = new TelemetryReporter(Options(restarted.BaseUrl, state)))
        {
            Assert.Equal(installId, r.InstallId);
            Assert.Equal(2, r.PendingBatches);
            var second = await r.FlushAsync();
            Assert.Equal((2, 0), (second.Sent, second.Pending));
        }
        var row = await Row(restarted, "1.0");
        Assert.Equal(1700, row.GetProperty("inferences").GetInt64());
        Assert.Equal(3, row.GetProperty("reports").GetInt64());
        Assert.Equal(1, row.GetProperty("crashes").GetProperty("inference").GetInt64());
        Assert.Equal(170, row.GetProperty("thermal").GetProperty("fair").GetInt64());
        Assert.InRange(row.GetProperty("p50_latency_ms").GetDouble(), 10.5, 14);
    }

    [Fact]
    public async Task Service_unavailable_and_lost_responses_are_retried_without_double_counting()
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys);
        using var proxy = new FlakyProxy(server.BaseUrl);
        await using var r = new TelemetryReporter(Options(proxy.Url, world.File("telemetry")));

        // Two 503s, then through.
        proxy.Fail503 = 2;
        Record(r, V1, 300, 8);
        var started = DateTime.UtcNow;
        var a = await r.FlushAsync();
        Assert.Equal((1, 0, 3), (a.Sent, a.Pending, a.Attempts));
        Assert.True(DateTime.UtcNow - started >= TimeSpan.FromMilliseconds(25 + 50), "backed off between attempts");

        // The server stores the batch but the answer is lost: the retry of the same batch id is not counted again.
        proxy.DropAfterForward = 1;
        var fallback = new ModelInUse("asr", "0.9", "fp32", "1.0", "int8");
        Record(r, fallback, 40, 30);
        var b = await r.FlushAsync();
        Assert.Equal((1, 0, 2), (b.Sent, b.Pending, b.Attempts));
        Assert.Equal(3, proxy.Forwarded);

        // 503 on every attempt: stays pending; then the server recovers.
        proxy.Fail503 = 100;
        Record(r, V1, 100, 8);
        var c = await r.FlushAsync();
        Assert.Equal((0, 1), (c.Sent, c.Pending));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, Assert.IsType<HttpRequestException>(c.Error).StatusCode);
        proxy.Fail503 = 0;
        Assert.Equal(1, (await r.FlushAsync()).Sent);

        var v1 = await Row(server, "1.0");
        Assert.Equal(400, v1.GetProperty("inferences").GetInt64());
        Assert.Equal(2, v1.GetProperty("reports").GetInt64());
        var v09 = await Row(server, "0.9");
        Assert.Equal(40, v09.GetProperty("inferences").GetInt64());
        Assert.Equal(1, v09.GetProperty("fallback_reports").GetInt64());
        output.WriteLine($"proxy saw {proxy.Requests} requests, forwarded {proxy.Forwarded}");
    }

    [Fact]
    public async Task Unsent_batches_are_capped_and_the_install_id_rotates()
    {
        using var dir = new TempDir();
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        var dead = $"http://127.0.0.1:{Ports.Free()}/";
        var options = Options(dead, dir.File("t"), clock) with { MaxPendingBatches = 3, MaxAttempts = 1, InstallIdRotation = TimeSpan.FromDays(2) };
        string firstId;
        await using (var r = new TelemetryReporter(options))
        {
            firstId = r.InstallId;
            for (int i = 0; i < 5; i++)
            {
                Record(r, V1, 10, 5);
                clock.Now += TimeSpan.FromMinutes(1);
                await r.FlushAsync();
            }
            Assert.Equal(3, r.PendingBatches);
            Assert.Equal(2, r.DroppedBatches);
            Assert.Equal(firstId, r.InstallId);
        }
        var stateBytes = new FileInfo(Path.Combine(dir.File("t"), "telemetry-state.json")).Length;
        Assert.InRange(stateBytes, 100, 20_000);

        // After the rotation period a fresh, unrelated id is used for new batches (also after a restart).
        clock.Now += TimeSpan.FromDays(3);
        await using (var r = new TelemetryReporter(options))
        {
            Assert.Equal(3, r.PendingBatches);
            Assert.NotEqual(firstId, r.InstallId);
            Assert.Matches("^[0-9a-f]{32}$", r.InstallId);
            var second = r.InstallId;
            clock.Now += TimeSpan.FromDays(3);
            Record(r, V1, 10, 5);
            await r.FlushAsync();
            Assert.NotEqual(second, r.InstallId);
            Assert.Equal(3, r.PendingBatches);
        }
        // Batches older than the server accepts (7 days) are dropped rather than kept forever.
        clock.Now += TimeSpan.FromDays(8);
        await using (var r = new TelemetryReporter(options))
            Assert.Equal(0, r.PendingBatches);
        // Bad names are refused before anything is counted.
        await using (var r = new TelemetryReporter(options))
            Assert.Throws<ArgumentException>(() => r.RecordInference(new ModelInUse("../x", "1", "a"), TimeSpan.FromMilliseconds(1)));
        Assert.Throws<ArgumentException>(() => new TelemetryReporter(options with { DeviceClass = "has space" }));
    }

    [Fact]
    public async Task Batches_larger_than_the_server_limit_are_split()
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys);
        await using var r = new TelemetryReporter(Options(server.BaseUrl, world.File("telemetry")));
        // 32 model versions, each with an inference in every one of the 280 buckets: over 64 KiB in all.
        for (int v = 0; v < 32; v++)
            for (int b = 0; b < LatencyBuckets.Count; b++)
                r.RecordInference(new ModelInUse("asr", $"1.{v}", "int8"), TimeSpan.FromMilliseconds(
                    b == 0 ? 0.05 : b == LatencyBuckets.Count - 1 ? 70_000 : Math.Sqrt(LatencyBuckets.LowerMs(b) * LatencyBuckets.UpperMs(b))));
        var f = await r.FlushAsync();
        Assert.Equal(0, f.Rejected);
        Assert.InRange(f.Sent, 2, 32);
        var rows = (await TelemetryScenarios.QueryAsync(server, "asr")).GetProperty("rows").EnumerateArray().ToList();
        Assert.Equal(32, rows.Count);
        Assert.All(rows, row => Assert.Equal(LatencyBuckets.Count, row.GetProperty("latency_buckets").GetArrayLength()));
        output.WriteLine($"32 full entries went out in {f.Sent} batches");
    }

    [Fact]
    public async Task Run_loop_flushes_when_enough_events_were_recorded()
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys);
        await using var r = new TelemetryReporter(Options(server.BaseUrl, world.File("telemetry")) with { FlushAfterEvents = 100, FlushInterval = TimeSpan.FromHours(1) });
        using var cts = new CancellationTokenSource();
        var loop = r.RunAsync(cts.Token);
        Record(r, V1, 150, 9);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        long seen = 0;
        while (DateTime.UtcNow < deadline)
        {
            var rows = (await TelemetryScenarios.QueryAsync(server, "asr")).GetProperty("rows").EnumerateArray().ToList();
            seen = rows.Sum(x => x.GetProperty("inferences").GetInt64());
            if (seen >= 100) break;
            await Task.Delay(200);
        }
        // Flushed without waiting for the hour: at least the first 100 events (the rest may still be counting).
        Assert.InRange(seen, 100, 150);
        cts.Cancel();
        await loop;
    }
}
