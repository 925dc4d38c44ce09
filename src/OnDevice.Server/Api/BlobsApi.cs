using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Net.Http.Headers;

namespace OnDevice.Server.Api;

/// <summary>Content-addressed blobs: download with ETag and HTTP ranges; upload by publishers.</summary>
public static class BlobsApi
{
    /// <summary>Maps the endpoints.</summary>
    public static IEndpointRouteBuilder MapBlobsApi(this IEndpointRouteBuilder app)
    {
        app.MapMethods("/v1/blobs/{sha256}", ["GET", "HEAD"], Results<PhysicalFileHttpResult, NotFound, BadRequest<string>> (string sha256, BlobStore blobs) =>
        {
            if (!BlobStore.IsHash(sha256)) return TypedResults.BadRequest("a blob is named by its lowercase SHA-256");
            var path = blobs.PathOf(sha256);
            if (!File.Exists(path)) return TypedResults.NotFound();
            return TypedResults.PhysicalFile(path, "application/octet-stream", enableRangeProcessing: true, entityTag: new EntityTagHeaderValue($"\"{sha256}\""));
        });

        app.MapPut("/api/v1/blobs/{sha256}", async Task<IResult> (string sha256, HttpContext http, BlobStore blobs, ServerOptions options, CancellationToken ct) =>
        {
            if (!BlobStore.IsHash(sha256)) return TypedResults.BadRequest("a blob is named by its lowercase SHA-256");
            if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size) size.MaxRequestBodySize = options.MaxBlobBytes;
            if (blobs.LengthOf(sha256) is { } existing) return TypedResults.Ok(new BlobResult(sha256, existing, Existed: true));
            try
            {
                var length = await blobs.PutAsync(sha256, http.Request.Body, ct);
                return TypedResults.Created($"/v1/blobs/{sha256}", new BlobResult(sha256, length, Existed: false));
            }
            catch (BlobHashMismatchException e)
            {
                return TypedResults.Problem(e.Message, statusCode: StatusCodes.Status422UnprocessableEntity);
            }
        }).RequireRole(ApiRole.Publisher);
        return app;
    }

    /// <summary>Upload result.</summary>
    public sealed record BlobResult(string Sha256, long Length, bool Existed);
}
