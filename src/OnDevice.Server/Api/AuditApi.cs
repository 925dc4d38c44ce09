namespace OnDevice.Server.Api;

/// <summary><c>GET /api/v1/audit</c>: every change (who, what, when), newest first.</summary>
public static class AuditApi
{
    /// <summary>Maps the endpoint.</summary>
    public static IEndpointRouteBuilder MapAuditApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/v1/audit", async Task<IResult> (int? limit, long? before, DeliveryRepository repo, CancellationToken ct) =>
        {
            int l = limit ?? 100;
            if (l is < 1 or > 1000) return TypedResults.BadRequest("limit must be between 1 and 1000");
            return TypedResults.Ok(await repo.Store.ListAuditAsync(l, before, ct));
        }).RequireRole(ApiRole.Reader);
        return app;
    }
}
