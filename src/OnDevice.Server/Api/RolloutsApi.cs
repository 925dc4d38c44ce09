using System.Text.Json;
using OnDevice.Server.Rollouts;

namespace OnDevice.Server.Api;

/// <summary>
/// Operator endpoints for staged rollouts: <c>POST /api/v1/rollouts</c> (start), <c>GET /api/v1/rollouts</c>,
/// <c>GET /api/v1/rollouts/{id}</c> and <c>POST /api/v1/rollouts/{id}/{pause|resume|advance|abort|rollback}</c>.
/// </summary>
public static class RolloutsApi
{
    /// <summary>Maps the endpoints.</summary>
    public static IEndpointRouteBuilder MapRolloutsApi(this IEndpointRouteBuilder app)
    {
        app.MapPost("/api/v1/rollouts", async Task<IResult> (HttpContext http, RolloutService rollouts, CancellationToken ct) =>
        {
            var request = await ReadAsync<StartRolloutRequest>(http, ct) ?? throw new RepositoryException(400, "the body must be a JSON object with model and version");
            var view = await rollouts.StartAsync(request, http.Actor(), ct);
            return TypedResults.Created($"/api/v1/rollouts/{view.Id}", view);
        }).RequireRole(ApiRole.Operator);

        app.MapGet("/api/v1/rollouts", async Task<IResult> (string? model, string? channel, int? limit, RolloutService rollouts, CancellationToken ct) =>
        {
            int l = limit ?? 100;
            if (l is < 1 or > 1000) return TypedResults.BadRequest("limit must be between 1 and 1000");
            return TypedResults.Ok(await rollouts.ListAsync(model, channel, l, ct));
        }).RequireRole(ApiRole.Reader);

        app.MapGet("/api/v1/rollouts/{id:long}", async Task<IResult> (long id, int? decisions, RolloutService rollouts, CancellationToken ct) =>
        {
            int d = decisions ?? 50;
            if (d is < 0 or > 1000) return TypedResults.BadRequest("decisions must be between 0 and 1000");
            return await rollouts.GetAsync(id, ct, d) is { } v ? TypedResults.Ok(v) : TypedResults.Problem($"no rollout {id}", statusCode: StatusCodes.Status404NotFound);
        }).RequireRole(ApiRole.Reader);

        app.MapPost("/api/v1/rollouts/{id:long}/{action}", async Task<IResult> (long id, string action, HttpContext http, RolloutService rollouts, CancellationToken ct) =>
        {
            var request = await ReadAsync<RolloutActionRequest>(http, ct) ?? new RolloutActionRequest();
            return TypedResults.Ok(await rollouts.ActAsync(id, action, request, http.Actor(), ct));
        }).RequireRole(ApiRole.Operator);
        return app;
    }

    private static readonly JsonSerializerOptions Options = new(JsonSerializerOptions.Web) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, PropertyNameCaseInsensitive = true,
        UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow };

    /// <summary>Reads an optional JSON body (snake_case names, e.g. <c>on_failure</c>, <c>device_class</c>); null when empty; 400 when malformed.</summary>
    private static async Task<T?> ReadAsync<T>(HttpContext http, CancellationToken ct) where T : class
    {
        using var ms = new MemoryStream();
        await http.Request.Body.CopyToAsync(ms, ct);
        if (ms.Length == 0) return null;
        if (ms.Length > 1 << 20) throw new RepositoryException(413, "the body is larger than 1 MiB");
        try { return JsonSerializer.Deserialize<T>(ms.ToArray(), Options); }
        catch (JsonException e) { throw new RepositoryException(400, $"malformed JSON body: {e.Message}"); }
    }
}
