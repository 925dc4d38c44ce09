using OnDevice.Federated.Remote;
using OnDevice.Federated.Server.Storage;

namespace OnDevice.Federated.Server.Api;

/// <summary>Runs: create, status (from storage), population membership, current model.</summary>
public static class RunsApi
{
    /// <summary>Maps /v1/runs endpoints.</summary>
    public static void MapRunsApi(this WebApplication app)
    {
        app.MapPost("/v1/runs", async (RunConfig config, RunCoordinator runs) =>
        {
            try { return Results.Ok(new { id = await runs.CreateAsync(config) }); }
            catch (FederatedException e) { return Results.BadRequest(new { error = e.Message }); }
        });
        app.MapGet("/v1/runs/{id}", async (string id, RunStore store) =>
            await store.GetRunAsync(id) is { } s ? Results.Ok(s) : Results.NotFound(new { error = $"no run {id}" }));
        app.MapGet("/v1/runs/{id}/model", async (string id, RunCoordinator runs, RunStore store, HttpContext http) =>
        {
            if (runs.Model(id) is { } live)
            {
                http.Response.Headers["X-Round"] = live.Round.ToString(System.Globalization.CultureInfo.InvariantCulture);
                return Results.Bytes(live.Bytes, "application/octet-stream");
            }
            return await store.GetModelAsync(id) is { } stored ? Results.Bytes(stored, "application/octet-stream") : Results.NotFound(new { error = $"no run {id}" });
        });
        app.MapPost("/v1/runs/{id}/devices/{device}", (string id, uint device, RunCoordinator runs) =>
            runs.Join(id, device) ? Results.Ok() : Results.NotFound(new { error = $"no live run {id} (or device id 0)" }));
    }
}
