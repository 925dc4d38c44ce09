using OnDevice.Delivery;
using OnDevice.Server.Storage;

namespace OnDevice.Server.Dashboard;

public static partial class DashboardEndpoints
{
    private static readonly (string Href, string Text)[] Nav =
    [
        ("/dashboard", "Models"),
        ("/dashboard/releases", "Releases"),
        ("/dashboard/rollouts", "Rollouts"),
        ("/dashboard/audit", "Audit log"),
    ];

    private static string ModelHref(string model) => "/dashboard/models/" + Uri.EscapeDataString(model);

    private static void MapPages(RouteGroupBuilder pages)
    {
        pages.MapGet("", async (HttpContext http, IDeliveryStore store, CancellationToken ct) =>
        {
            var releases = await LoadReleasesAsync(store, null, ct);
            var body = new Html().Element("h1", "Models");
            body.Table("models", ["model", "latest version", "releases", "variants of latest", "last published"],
                releases.GroupBy(r => r.Row.Model).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g =>
                {
                    var latest = g.OrderByDescending(r => r.Row.Version, ModelVersion.Comparer).First();
                    return (IReadOnlyList<object?>)[Html.LinkTo(ModelHref(g.Key), g.Key), latest.Row.Version, g.Count(), latest.Variants.Count, Html.Time(g.Max(r => r.Row.PublishedAt))];
                }), "No model has been published yet.");
            return Page(http, "Models", body);
        });

        pages.MapGet("/models/{model}", async (string model, HttpContext http, IDeliveryStore store, CancellationToken ct) =>
        {
            var releases = await LoadReleasesAsync(store, model, ct);
            var body = new Html().Element("h1", "Model " + model);
            if (releases.Count == 0) return Page(http, model, body.Element("p", $"No release of {model} is published.", "empty"), StatusCodes.Status404NotFound);
            body.Element("h2", "Releases");
            ReleasesTable(body, releases.OrderByDescending(r => r.Row.Version, ModelVersion.Comparer).ToList());
            body.Element("h2", "Variants");
            VariantsTable(body, releases.OrderByDescending(r => r.Row.Version, ModelVersion.Comparer).ToList());
            return Page(http, model, body);
        });

        pages.MapGet("/releases", async (HttpContext http, IDeliveryStore store, CancellationToken ct) =>
        {
            var releases = await LoadReleasesAsync(store, null, ct);
            var ordered = releases.OrderBy(r => r.Row.Model, StringComparer.Ordinal).ThenByDescending(r => r.Row.Version, ModelVersion.Comparer).ToList();
            var body = new Html().Element("h1", "Releases");
            ReleasesTable(body, ordered);
            body.Element("h2", "Variants");
            VariantsTable(body, ordered);
            return Page(http, "Releases", body);
        });

        pages.MapGet("/audit", async Task<IResult> (HttpContext http, IDeliveryStore store, long? before, CancellationToken ct) =>
        {
            const int pageSize = 100;
            var rows = await store.ListAuditAsync(pageSize, before, ct);
            var body = new Html().Element("h1", "Audit log");
            body.Table("audit", ["#", "at", "actor", "action", "subject", "details"],
                rows.Select(a => (IReadOnlyList<object?>)[a.Id, Html.Time(a.At), a.Actor, a.Action, a.Subject, new Html().Raw("<code>").Text(a.Details).Raw("</code>")]),
                "The audit log is empty.");
            if (rows.Count == pageSize) body.Raw("<p>").Link($"/dashboard/audit?before={rows[^1].Id}", "Older entries").Raw("</p>");
            return Page(http, "Audit log", body);
        });

        MapRolloutPages(pages);

    }

    private sealed record LoadedRelease(ReleaseRow Row, DateTimeOffset Expires, IReadOnlyList<(string Path, TargetFile File, ModelTarget Target)> Variants);

    private static async Task<IReadOnlyList<LoadedRelease>> LoadReleasesAsync(IDeliveryStore store, string? model, CancellationToken ct)
    {
        var rows = await store.ListReleasesAsync(model, ct);
        return rows.Select(r =>
        {
            var t = MetadataReader.Read<TargetsMetadata>(r.Bytes).Signed;
            var variants = t.Targets.Where(x => x.Value.Model is not null).Select(x => (x.Key, x.Value, x.Value.Model!))
                .OrderBy(x => x.Item3.Variant, StringComparer.Ordinal).ToList();
            return new LoadedRelease(r, t.Expires, variants);
        }).ToList();
    }

    private static void ReleasesTable(Html body, IReadOnlyList<LoadedRelease> releases) =>
        body.Table("releases", ["model", "version", "revision", "variants", "published by", "published at", "expires"],
            releases.Select(r => (IReadOnlyList<object?>)[Html.LinkTo(ModelHref(r.Row.Model), r.Row.Model), r.Row.Version, r.Row.Revision, r.Variants.Count,
                r.Row.PublishedBy, Html.Time(r.Row.PublishedAt), Html.Time(r.Expires)]),
            "No release has been published yet.");

    private static void VariantsTable(Html body, IReadOnlyList<LoadedRelease> releases) =>
        body.Table("variants", ["model", "version", "variant", "precision", "bytes", "min RAM", "priority", "sha256", "path"],
            releases.SelectMany(r => r.Variants.Select(v => (IReadOnlyList<object?>)[r.Row.Model, r.Row.Version, v.Target.Variant, v.Target.Precision, v.File.Length,
                v.Target.Requirements.MinRamBytes is { } ram ? FormatBytes(ram) : "any", v.Target.Priority, new Html().Raw("<code>").Text(v.File.Sha256[..16] + "…").Raw("</code>"), v.Path])),
            "No variants.");

    private static string FormatBytes(long b) => b >= 1L << 30 && b % (1L << 30) == 0 ? $"{b >> 30} GiB" : b >= 1L << 20 && b % (1L << 20) == 0 ? $"{b >> 20} MiB" : $"{b} B";
}
