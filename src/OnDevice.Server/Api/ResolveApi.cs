using OnDevice.Delivery;

namespace OnDevice.Server.Api;

/// <summary><c>POST /v1/resolve/{model}</c>: which variant a device should download (the client still verifies it).</summary>
public static class ResolveApi
{
    /// <summary>Maps the endpoint.</summary>
    public static IEndpointRouteBuilder MapResolveApi(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/resolve/{model}", async Task<IResult> (string model, HttpContext http, DeliveryRepository repo, CancellationToken ct) =>
        {
            var (device, error) = await JsonBody.ReadObjectAsync(http.Request, "the device description must be a JSON object", DeviceDescription.FromJson, ct);
            if (device is null) return TypedResults.BadRequest(error);
            var releases = await repo.ReleasesOfAsync(model, ct);
            if (releases.Count == 0) return TypedResults.NotFound($"no releases of {model}");
            var choice = VariantSelector.Select(releases, model, device);
            var rejected = releases.SelectMany(r => r.Targets).Where(t => t.Value.Model is { } m && m.Unmet(device).Count > 0)
                .Select(t => new Rejected(t.Value.Model!.Version, t.Value.Model.Variant, t.Value.Model.Unmet(device))).ToList();
            if (choice is null) return TypedResults.UnprocessableEntity(new Resolution(null, rejected));
            var m = choice.Target;
            return TypedResults.Ok(new Resolution(new Chosen(m.Model, m.Version, m.Variant, m.Precision, choice.Path, choice.File.Length, choice.File.Sha256, $"/v1/blobs/{choice.File.Sha256}"), rejected));
        });
        return app;
    }

    /// <summary>The chosen variant.</summary>
    public sealed record Chosen(string Model, string Version, string Variant, string Precision, string Path, long Length, string Sha256, string Blob);

    /// <summary>A variant the device cannot run, and why.</summary>
    public sealed record Rejected(string Version, string Variant, IReadOnlyList<string> Unmet);

    /// <summary>Response.</summary>
    public sealed record Resolution(Chosen? Chosen, IReadOnlyList<Rejected> Rejected);
}
