using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Net.Http.Headers;
using OnDevice.Server.Deltas;

namespace OnDevice.Server.Api;

/// <summary>
/// Patches between model versions for devices: <c>GET /v1/deltas/{fromSha256}/{toSha256}</c> answers the patch
/// (with ETag and HTTP ranges, so a device resumes) or 404 when none is worth sending. No signature is needed: the
/// device checks the rebuilt file against the length and SHA-256 of the TUF-signed target before installing it.
/// </summary>
public static class DeltasApi
{
    /// <summary>Maps the endpoint.</summary>
    public static IEndpointRouteBuilder MapDeltasApi(this IEndpointRouteBuilder app)
    {
        app.MapMethods("/v1/deltas/{from}/{to}", ["GET", "HEAD"], async Task<Results<PhysicalFileHttpResult, NotFound, BadRequest<string>>> (string from, string to, DeltaCache deltas, CancellationToken ct) =>
        {
            if (!BlobStore.IsHash(from) || !BlobStore.IsHash(to)) return TypedResults.BadRequest("a delta is named by two lowercase SHA-256 hashes: /v1/deltas/{from}/{to}");
            var path = await deltas.GetAsync(from, to, ct);
            if (path is null) return TypedResults.NotFound();
            return TypedResults.PhysicalFile(path, "application/vnd.ondevice.delta", enableRangeProcessing: true, entityTag: new EntityTagHeaderValue($"\"{from[..16]}-{to[..16]}\""));
        });
        return app;
    }
}
