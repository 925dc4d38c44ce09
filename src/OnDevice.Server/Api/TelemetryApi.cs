using System.Globalization;
using System.Text.Json.Nodes;
using OnDevice.Delivery.Telemetry;
using OnDevice.Server.Storage;
using OnDevice.Server.Telemetry;

namespace OnDevice.Server.Api;

/// <summary>
/// <c>POST /v1/telemetry</c>: devices send aggregate batches (no token; size- and rate-limited; strict validation).
/// <c>GET /api/v1/telemetry/{model}</c>: the aggregates for operators, the dashboard and the CLI.
/// </summary>
public static class TelemetryApi
{
    /// <summary>Maps the endpoints.</summary>
    public static IEndpointRouteBuilder MapTelemetryApi(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/telemetry", async Task<IResult> (HttpContext http, IDeliveryStore store, TelemetryRateLimiter limiter, CancellationToken ct) =>
        {
            var limits = TelemetryLimits.Default;
            if (!limiter.TryAcquireGlobal(out var wait)) return TooMany(http, wait, "the server is receiving too much telemetry");
            if (http.Request.ContentLength > limits.MaxBatchBytes) return TooLarge(limits);
            var body = new byte[limits.MaxBatchBytes + 1];
            int length = 0, n;
            while (length < body.Length && (n = await http.Request.Body.ReadAsync(body.AsMemory(length), ct)) > 0) length += n;
            if (length > limits.MaxBatchBytes) return TooLarge(limits);
            TelemetryBatch batch;
            var now = (http.RequestServices.GetService<TimeProvider>() ?? TimeProvider.System).GetUtcNow();
            try
            {
                batch = TelemetryBatch.Parse(body.AsSpan(0, length), limits);
                batch.CheckTime(now, limits);
            }
            catch (InvalidTelemetryException e)
            {
                return TypedResults.Problem(e.Message, statusCode: e.TooLarge ? StatusCodes.Status413PayloadTooLarge : StatusCodes.Status400BadRequest);
            }
            if (!limiter.TryAcquire(batch.InstallId, out wait)) return TooMany(http, wait, "too many batches from this install id");
            bool added = await store.AddTelemetryAsync(batch, now, ct);
            if (added && limiter.CountAccepted()) await store.PruneTelemetryBatchIdsAsync(now - limits.MaxAge - TimeSpan.FromDays(1), ct);
            return TypedResults.Ok(new JsonObject { ["accepted"] = true, ["duplicate"] = !added, ["entries"] = batch.Entries.Count });
        });

        app.MapGet("/api/v1/telemetry/{model}", async Task<IResult> (string model, string? version, string? device_class, string? since, string? until, string? by,
            IDeliveryStore store, CancellationToken ct, HttpContext http) =>
        {
            var now = (http.RequestServices.GetService<TimeProvider>() ?? TimeProvider.System).GetUtcNow();
            DateTimeOffset from, to;
            try
            {
                to = until is null ? now : ParseTime(until, "until");
                from = since is null ? to - TimeSpan.FromDays(1) : ParseTime(since, "since");
            }
            catch (FormatException e) { return TypedResults.Problem(e.Message, statusCode: StatusCodes.Status400BadRequest); }
            if (from > to) return TypedResults.Problem("since must not be after until", statusCode: StatusCodes.Status400BadRequest);
            var group = by ?? "variant";
            if (group is not ("variant" or "class" or "version")) return TypedResults.Problem("by must be variant, class or version", statusCode: StatusCodes.Status400BadRequest);
            var rows = await store.QueryTelemetryAsync(model, version, device_class, from, to, ct);
            var grouped = rows.GroupBy(r => (r.Version, group == "variant" ? r.Variant : null, group == "version" ? null : r.DeviceClass))
                .Select(g => (g.Key, Counts: g.Aggregate(new TelemetryCounts(), (acc, r) => acc.Add(r.Counts))));
            var result = new JsonObject
            {
                ["model"] = model,
                ["since"] = from.UtcDateTime.ToString("o", CultureInfo.InvariantCulture),
                ["until"] = to.UtcDateTime.ToString("o", CultureInfo.InvariantCulture),
                ["bucket_scheme"] = LatencyBuckets.Scheme,
                ["by"] = group,
                ["rows"] = new JsonArray(grouped.Select(g => (JsonNode)Row(g.Key.Version, g.Key.Item2, g.Key.Item3, g.Counts)).ToArray()),
            };
            return TypedResults.Text(result.ToJsonString(), "application/json");
        }).RequireRole(ApiRole.Reader);
        return app;
    }

    private static IResult TooLarge(TelemetryLimits limits) =>
        TypedResults.Problem($"a telemetry batch is at most {limits.MaxBatchBytes} bytes", statusCode: StatusCodes.Status413PayloadTooLarge);

    private static IResult TooMany(HttpContext http, TimeSpan wait, string why)
    {
        http.Response.Headers.RetryAfter = ((int)Math.Max(1, Math.Ceiling(wait.TotalSeconds))).ToString(CultureInfo.InvariantCulture);
        return TypedResults.Problem(why, statusCode: StatusCodes.Status429TooManyRequests);
    }

    private static DateTimeOffset ParseTime(string s, string name) =>
        DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t)
            ? t : throw new FormatException($"{name} must be a time like 2030-01-01T00:00:00Z, got '{s}'");

    private static JsonNode? Num(double v) => double.IsFinite(v) ? JsonValue.Create(Math.Round(v, 9)) : null;

    private static JsonObject Row(string version, string? variant, string? deviceClass, TelemetryCounts c)
    {
        var buckets = new JsonArray();
        for (int b = 0; b < LatencyBuckets.Count; b++)
        {
            if (c.Latency[b] == 0) continue;
            buckets.Add(new JsonObject { ["bucket"] = b, ["lower_ms"] = LatencyBuckets.LowerMs(b), ["upper_ms"] = Num(LatencyBuckets.UpperMs(b)), ["count"] = c.Latency[b] });
        }
        double Rate(long k, long n) => n == 0 ? double.NaN : (double)k / n;
        return new JsonObject
        {
            ["version"] = version,
            ["variant"] = variant,
            ["device_class"] = deviceClass,
            ["reports"] = c.Reports,
            ["fallback_reports"] = c.FallbackReports,
            ["inferences"] = c.Inferences,
            ["loads"] = c.Loads,
            ["load_failures"] = c.LoadFailures,
            ["crashes"] = new JsonObject { ["load"] = c.LoadCrashes, ["inference"] = c.InferenceCrashes },
            ["oom_kills"] = new JsonObject { ["load"] = c.LoadOomKills, ["inference"] = c.InferenceOomKills },
            ["thermal"] = new JsonObject { ["nominal"] = c.Thermal[0], ["fair"] = c.Thermal[1], ["serious"] = c.Thermal[2], ["critical"] = c.Thermal[3] },
            ["p50_latency_ms"] = Num(c.LatencyQuantileMs(0.5)),
            ["p90_latency_ms"] = Num(c.LatencyQuantileMs(0.9)),
            ["p99_latency_ms"] = Num(c.LatencyQuantileMs(0.99)),
            ["crash_rate"] = Num(Rate(c.Crashes, c.Operations)),
            ["oom_rate"] = Num(Rate(c.OomKills, c.Operations)),
            ["load_failure_rate"] = Num(Rate(c.FailedLoads, c.Loads)),
            ["thermal_serious_rate"] = Num(Rate(c.ThermalSeriousOrWorse, c.ThermalSamples)),
            ["latency_buckets"] = buckets,
        };
    }
}
