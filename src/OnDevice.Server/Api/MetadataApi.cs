using Microsoft.Net.Http.Headers;

namespace OnDevice.Server.Api;

/// <summary>TUF metadata for devices: <c>GET /v1/metadata/{path}</c> (timestamp.json is the update check).</summary>
public static class MetadataApi
{
    /// <summary>Maps the endpoints.</summary>
    public static IEndpointRouteBuilder MapMetadataApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/metadata/timestamp.json", async (HttpContext http, DeliveryRepository repo, CancellationToken ct) =>
        {
            var (bytes, etag, _) = await repo.GetTimestampAsync(ct);
            http.Response.Headers.CacheControl = "no-cache";
            http.Response.Headers.ETag = etag;
            if (http.Request.Headers.IfNoneMatch.ToString() == etag) return (IResult)TypedResults.StatusCode(StatusCodes.Status304NotModified);
            return TypedResults.Bytes(bytes, "application/json");
        });
        app.MapGet("/v1/metadata/{**path}", async Task<IResult> (string path, HttpContext http, DeliveryRepository repo, CancellationToken ct) =>
        {
            var bytes = await repo.GetMetadataAsync(path, ct);
            if (bytes is null) return TypedResults.NotFound();
            // Versioned files never change; "root.json" (the newest root) may.
            http.Response.Headers.CacheControl = path == "root.json" ? "no-cache" : "public, max-age=31536000, immutable";
            return TypedResults.Bytes(bytes, "application/json");
        });
        return app;
    }

    /// <summary>Unused header name kept for clarity of intent in logs.</summary>
    internal static readonly string ETagHeader = HeaderNames.ETag;
}
