using OnDevice.Delivery;
using OnDevice.Server.Rollouts;

namespace OnDevice.Server.Api;

/// <summary>
/// <c>POST /v1/assign/{model}</c> (device-facing, no token): which version this install should run under the rollout
/// of its channel. Body: <c>{"install_id": "...", "channel": "stable", "installed_version": "1.0", "device": {...}}</c>.
/// The client still verifies whatever it downloads through TUF; the server only chooses among signed targets.
/// </summary>
public static class AssignApi
{
    /// <summary>Maps the endpoint.</summary>
    public static IEndpointRouteBuilder MapAssignApi(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/assign/{model}", async Task<IResult> (string model, HttpContext http, RolloutService rollouts, CancellationToken ct) =>
        {
            var (request, error) = await JsonBody.ReadObjectAsync(http.Request, "the body must be a JSON object", AssignmentRequest.FromJson, ct);
            if (request is null) return TypedResults.Problem(error, statusCode: StatusCodes.Status400BadRequest);
            return TypedResults.Ok(await rollouts.AssignAsync(model, request.Channel, request.InstallId, request.Device, request.InstalledVersion, ct));
        });
        return app;
    }
}
