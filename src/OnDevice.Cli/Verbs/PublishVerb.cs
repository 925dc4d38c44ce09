using System.CommandLine;
using System.Diagnostics;
using System.Net.Http.Headers;

namespace OnDevice.Cli.Verbs;

/// <summary><c>ondevice publish PKG --server URL --token T</c>: upload a signed package's blobs and release metadata.</summary>
public static class PublishVerb
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var pkg = new Argument<string>("package") { Description = "Signed package directory" };
        var server = new Option<string>("--server") { Description = "Server base URL, e.g. http://127.0.0.1:5080", Required = true };
        var token = new Option<string?>("--token") { Description = "Publisher token (or ONDEVICE_TOKEN)" };
        var tokenFile = new Option<string?>("--token-file") { Description = "File holding the publisher token" };
        var json = new Option<bool>("--json") { Description = "Print a JSON summary" };
        var cmd = new Command("publish", "Publish a signed release package to a delivery server (blobs first, then the release metadata)") { pkg, server, token, tokenFile, json };
        cmd.SetAction(r =>
        {
            var p = ReleasePackage.Open(r.GetValue(pkg)!);
            var t = r.GetValue(token) ?? (r.GetValue(tokenFile) is { } tf ? File.ReadAllText(tf).Trim() : Environment.GetEnvironmentVariable("ONDEVICE_TOKEN"))
                ?? throw new CliException("give --token, --token-file or ONDEVICE_TOKEN");
            if (!Uri.TryCreate(r.GetValue(server), UriKind.Absolute, out var baseUri)) throw new CliException($"--server '{r.GetValue(server)}' is not an absolute URL");
            using var http = new HttpClient { BaseAddress = baseUri, Timeout = TimeSpan.FromMinutes(30) };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", t);
            var sw = Stopwatch.StartNew();
            long uploaded = 0;
            int skipped = 0;
            try
            {
                foreach (var f in p.Targets.Targets.Values.DistinctBy(f => f.Sha256))
                {
                    var blob = p.BlobPath(f);
                    if (!File.Exists(blob)) throw new CliException($"package blob missing: {blob}");
                    using var content = new StreamContent(File.OpenRead(blob));
                    content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
                    using var put = http.PutAsync($"/api/v1/blobs/{f.Sha256}", content).GetAwaiter().GetResult();
                    Check(put, $"upload of {f.Sha256}");
                    if (put.StatusCode == System.Net.HttpStatusCode.OK) skipped++;
                    else uploaded += f.Length;
                }
                using var body = new ByteArrayContent(p.Bytes);
                body.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                using var post = http.PostAsync("/api/v1/releases", body).GetAwaiter().GetResult();
                Check(post, "publish");
            }
            catch (HttpRequestException e) { throw new CliException($"cannot reach {baseUri}: {e.Message}"); }
            if (r.GetValue(json))
                Cli.WriteJson(new { model = p.Release.Model, version = p.Release.Version, revision = p.Targets.Version, uploadedBytes = uploaded, blobsAlreadyThere = skipped, seconds = sw.Elapsed.TotalSeconds });
            else Console.WriteLine($"published {p.Release.Model} {p.Release.Version} (revision {p.Targets.Version}): {Cli.Bytes(uploaded)} uploaded, {skipped} blob(s) already on the server");
            return 0;
        });
        return cmd;
    }

    private static void Check(HttpResponseMessage response, string what)
    {
        if (response.IsSuccessStatusCode) return;
        var text = response.Content.ReadAsStringAsync().GetAwaiter().GetResult();
        string detail = text;
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(text);
            if (doc.RootElement.TryGetProperty("detail", out var d)) detail = d.GetString() ?? text;
        }
        catch (System.Text.Json.JsonException) { }
        throw new CliException($"{what} failed: {(int)response.StatusCode} {response.ReasonPhrase}: {detail}");
    }
}
