namespace OnDevice.Federated.Server.Api;

/// <summary>Device side of a round: poll the task, check in, send secure-aggregation messages.</summary>
public static class RoundsApi
{
    /// <summary>Largest accepted message (checked before reading the body; the protocol then checks the exact size).</summary>
    public const int MaxMessageBytes = 48 * 1024 * 1024;

    /// <summary>Maps the device endpoints.</summary>
    public static void MapRoundsApi(this WebApplication app)
    {
        app.MapGet("/v1/runs/{id}/devices/{device}/task", (string id, uint device, RunCoordinator runs) =>
            runs.GetTask(id, device) is { } t ? Results.Ok(t) : Results.NotFound(new { error = "unknown run or device (join first)" }));
        app.MapPost("/v1/runs/{id}/devices/{device}/checkin/{round:int}", (string id, uint device, int round, RunCoordinator runs) =>
            runs.CheckIn(id, device, round) ? Results.Ok() : Results.Conflict(new { error = $"round {round} is not checking in" }));
        app.MapPost("/v1/runs/{id}/devices/{device}/rounds/{round:int}/messages", async (string id, uint device, int round, HttpRequest req, RunCoordinator runs) =>
        {
            if (req.ContentLength is null or > MaxMessageBytes) return Results.Problem($"a message needs a Content-Length of at most {MaxMessageBytes} bytes", statusCode: 413);
            var body = new byte[req.ContentLength.Value];
            await req.Body.ReadExactlyAsync(body);
            try
            {
                runs.Submit(id, device, round, body);
                return Results.Ok();
            }
            catch (ProtocolException e) { return Results.BadRequest(new { error = e.Message }); }
        });
    }
}
