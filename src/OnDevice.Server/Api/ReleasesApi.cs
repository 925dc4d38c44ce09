using OnDevice.Delivery;

namespace OnDevice.Server.Api;

/// <summary>Publishing signed releases and listing them.</summary>
public static class ReleasesApi
{
    /// <summary>Maps the endpoints.</summary>
    public static IEndpointRouteBuilder MapReleasesApi(this IEndpointRouteBuilder app)
    {
        app.MapPost("/api/v1/releases", async Task<IResult> (HttpContext http, DeliveryRepository repo, CancellationToken ct) =>
        {
            var limit = SizeLimits.Default.MaxTargetsBytes;
            using var ms = new MemoryStream();
            var buffer = new byte[1 << 16];
            int n;
            while ((n = await http.Request.Body.ReadAsync(buffer, ct)) > 0)
            {
                if (ms.Length + n > limit) return TypedResults.Problem($"release metadata is larger than {limit} bytes", statusCode: StatusCodes.Status413PayloadTooLarge);
                ms.Write(buffer, 0, n);
            }
            var result = await repo.PublishReleaseAsync(ms.ToArray(), http.Actor(), ct);
            return TypedResults.Created($"/v1/metadata/{TrustUpdater.ConsistentPath(result.Name, result.Revision)}", result);
        }).RequireRole(ApiRole.Publisher);

        app.MapGet("/api/v1/releases", async (string? model, DeliveryRepository repo, CancellationToken ct) =>
        {
            var rows = await repo.Store.ListReleasesAsync(model, ct);
            return TypedResults.Ok(rows.Select(r =>
            {
                var t = MetadataReader.Read<TargetsMetadata>(r.Bytes).Signed;
                return new ReleaseInfo(r.Model, r.Version, r.Revision, r.PublishedBy, r.PublishedAt, t.Expires,
                    t.Targets.Select(x => new VariantInfo(x.Value.Model!.Variant, x.Value.Model.Precision, x.Key, x.Value.Length, x.Value.Sha256, x.Value.Model.Requirements.MinRamBytes)).ToList());
            }).ToList());
        }).RequireRole(ApiRole.Reader);
        return app;
    }

    /// <summary>A listed release.</summary>
    public sealed record ReleaseInfo(string Model, string Version, long Revision, string PublishedBy, DateTimeOffset PublishedAt, DateTimeOffset Expires, IReadOnlyList<VariantInfo> Variants);

    /// <summary>A listed variant.</summary>
    public sealed record VariantInfo(string Variant, string Precision, string Path, long Length, string Sha256, long? MinRamBytes);
}
