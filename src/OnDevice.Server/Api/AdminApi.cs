namespace OnDevice.Server.Api;

/// <summary>Operator endpoints: tokens and root rotation; and the health check.</summary>
public static class AdminApi
{
    /// <summary>Maps the endpoints.</summary>
    public static IEndpointRouteBuilder MapAdminApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", async (DeliveryRepository repo, CancellationToken ct) =>
        {
            var (_, etag, snapshot) = await repo.GetTimestampAsync(ct);
            return TypedResults.Ok(new { status = "ok", store = repo.Store.Description, snapshot, timestamp = etag });
        });

        app.MapPost("/api/v1/tokens", async Task<IResult> (TokenRequest request, HttpContext http, DeliveryRepository repo, CancellationToken ct) =>
        {
            if (string.IsNullOrWhiteSpace(request.Name) || request.Name.Length > 100) return TypedResults.BadRequest("name must be 1-100 characters");
            if (TokenAuth.ParseRole(request.Role) is null) return TypedResults.BadRequest("role must be reader, publisher or operator");
            var token = TokenAuth.NewToken();
            await repo.CreateTokenAsync(token, request.Name, request.Role!.ToLowerInvariant(), http.Actor(), ct);
            return TypedResults.Ok(new TokenResponse(request.Name, request.Role.ToLowerInvariant(), token));
        }).RequireRole(ApiRole.Operator);

        app.MapPost("/api/v1/roots", async Task<IResult> (HttpContext http, DeliveryRepository repo, CancellationToken ct) =>
        {
            using var ms = new MemoryStream();
            await http.Request.Body.CopyToAsync(ms, ct);
            if (ms.Length > Delivery.SizeLimits.Default.MaxRootBytes) return TypedResults.Problem("root metadata too large", statusCode: StatusCodes.Status413PayloadTooLarge);
            var version = await repo.PublishRootAsync(ms.ToArray(), http.Actor(), ct);
            return TypedResults.Created($"/v1/metadata/{version}.root.json", new { version });
        }).RequireRole(ApiRole.Operator);
        return app;
    }

    /// <summary>Token creation request.</summary>
    public sealed record TokenRequest(string? Name, string? Role);

    /// <summary>The new token (shown once; only its hash is stored).</summary>
    public sealed record TokenResponse(string Name, string Role, string Token);
}
