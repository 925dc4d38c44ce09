using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;

namespace OnDevice.Server.Tests;

/// <summary>The delivery server on SQLite as a real process: end to end, authorization, conflicts, HTTP semantics.</summary>
[Trait("Category", "Delivery")]
public class SqliteServerTests
{
    [Fact]
    public async Task Release_from_the_cli_is_resolved_per_device_class_and_installed_by_the_client()
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys);
        await Scenarios.PublishResolveInstallAsync(world, server);
    }

    [Fact]
    public async Task Malformed_device_bodies_on_resolve_and_assign_are_refused_with_the_reason()
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys);
        using var http = server.Http();
        async Task<(HttpStatusCode Status, string? Type, JsonElement Body)> Post(string path, string body)
        {
            using var r = await http.PostAsync(path, new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
            return (r.StatusCode, r.Content.Headers.ContentType?.MediaType, JsonSerializer.Deserialize<JsonElement>(await r.Content.ReadAsStringAsync()));
        }

        // resolve: 400 with the reason as a JSON string, before any release lookup (the model does not even exist).
        foreach (var (body, reason) in new[] { ("[1, 2]", "the device description must be a JSON object"), ("{\"ram_bytes\": \"lots\"}", "ram_bytes"), ("{not json", "") })
        {
            var (status, type, answer) = await Post("/v1/resolve/nothing-published", body);
            Assert.Equal(HttpStatusCode.BadRequest, status);
            Assert.Equal("application/json", type);
            Assert.Equal(JsonValueKind.String, answer.ValueKind);
            Assert.Contains(reason, answer.GetString());
            Assert.NotEmpty(answer.GetString()!);
        }

        // assign: 400 problem details with the reason in "detail".
        foreach (var (body, reason) in new[] { ("\"text\"", "the body must be a JSON object"), ("{\"channel\": \"stable\"}", "install_id is required"), ("{\"install_id\": \"installation-1\", \"device\": 7}", "device"), ("{not json", "") })
        {
            var (status, type, answer) = await Post("/v1/assign/m", body);
            Assert.Equal(HttpStatusCode.BadRequest, status);
            Assert.Equal("application/problem+json", type);
            Assert.Equal(400, answer.GetProperty("status").GetInt32());
            Assert.Contains(reason, answer.GetProperty("detail").GetString());
            Assert.NotEmpty(answer.GetProperty("detail").GetString()!);
        }
    }

    [Fact]
    public async Task Tokens_roles_conflicts_and_verification_on_publish()
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys);
        var file = world.RandomFile("m.bin", 50_000, 1);
        var pkg = await world.PackAsync("m", "1.0", $"a={file}");

        // No token, unknown token, reader token: refused.
        var none = await Ondevice.RunAsync("publish", pkg, "--server", server.BaseUrl, "--token", "nope-nope-nope-nope");
        Assert.Equal(1, none.ExitCode);
        Assert.Contains("401", none.Stderr);
        var reader = await server.CreateTokenAsync("r", "reader");
        var asReader = await Ondevice.RunAsync("publish", pkg, "--server", server.BaseUrl, "--token", reader);
        Assert.Contains("403", asReader.Stderr);
        using (var anon = server.Http())
            Assert.Equal(HttpStatusCode.Unauthorized, (await anon.GetAsync("/api/v1/audit")).StatusCode);
        using (var asReaderHttp = server.Http(reader))
            Assert.Equal(HttpStatusCode.Forbidden, (await asReaderHttp.PostAsJsonAsync("/api/v1/tokens", new { name = "x", role = "operator" })).StatusCode);

        var publisher = await server.CreateTokenAsync("p", "publisher");
        await world.PublishAsync(server, pkg, publisher);
        var again = await Ondevice.RunAsync("publish", pkg, "--server", server.BaseUrl, "--token", publisher);
        Assert.Contains("409", again.Stderr);
        Assert.Contains("--revision 2", again.Stderr);

        // An unsigned release and one signed by foreign keys are refused (422).
        var unsigned = world.File("unsigned");
        await Ondevice.OkAsync("pack", "--name", "m", "--version", "2.0", "--variant", $"a={file}", "-o", unsigned);
        var u = await Ondevice.RunAsync("publish", unsigned, "--server", server.BaseUrl, "--token", publisher);
        Assert.Contains("422", u.Stderr);
        await Ondevice.OkAsync("keys", "init", world.File("foreign"));
        await Ondevice.OkAsync("sign", unsigned, "--keys", world.File("foreign"));
        var f = await Ondevice.RunAsync("publish", unsigned, "--server", server.BaseUrl, "--token", publisher);
        Assert.Contains("422", f.Stderr);

        // A blob whose bytes do not match its name is refused.
        using var ph = server.Http(publisher);
        using var put = await ph.PutAsync($"/api/v1/blobs/{new string('a', 64)}", new ByteArrayContent([1, 2, 3]));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, put.StatusCode);

        // Tokens are stored hashed: the database file does not contain them.
        var db = await File.ReadAllBytesAsync(Path.Combine(world.Store(), "delivery.db"));
        Assert.Equal(-1, db.AsSpan().IndexOf(System.Text.Encoding.UTF8.GetBytes(publisher)));
    }

    [Fact]
    public async Task Timestamp_has_an_etag_and_blobs_serve_ranges()
    {
        using var world = await DeliveryWorld.CreateAsync();
        await using var server = await ServerProcess.StartAsync(world.Store(), world.Keys);
        var file = world.RandomFile("m.bin", 100_000, 2);
        await world.PublishAsync(server, await world.PackAsync("m", "1.0", $"a={file}"));
        using var http = server.Http();

        using var first = await http.GetAsync("/v1/metadata/timestamp.json");
        var etag = first.Headers.ETag!;
        using var req = new HttpRequestMessage(HttpMethod.Get, "/v1/metadata/timestamp.json");
        req.Headers.IfNoneMatch.Add(etag);
        using var second = await http.SendAsync(req);
        Assert.Equal(HttpStatusCode.NotModified, second.StatusCode);

        var sha = DeliveryWorld.Sha256(file);
        using var range = new HttpRequestMessage(HttpMethod.Get, $"/v1/blobs/{sha}");
        range.Headers.Range = new RangeHeaderValue(1000, 1999);
        using var part = await http.SendAsync(range);
        Assert.Equal(HttpStatusCode.PartialContent, part.StatusCode);
        Assert.Equal($"\"{sha}\"", part.Headers.ETag!.Tag);
        Assert.Equal((await File.ReadAllBytesAsync(file))[1000..2000], await part.Content.ReadAsByteArrayAsync());
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync($"/v1/blobs/{new string('0', 64)}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/v1/metadata/99.root.json")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/v1/metadata/1.root.json")).StatusCode);
        var health = await http.GetFromJsonAsync<JsonElement>("/healthz");
        Assert.StartsWith("sqlite:", health.GetProperty("store").GetString());
    }
}
