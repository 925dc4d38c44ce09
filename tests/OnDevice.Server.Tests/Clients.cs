using System.Net;
using OnDevice.Client;
using OnDevice.Delivery;

namespace OnDevice.Server.Tests;

/// <summary>Device classes and client construction for the tests.</summary>
public static class Clients
{
    public const long GiB = 1L << 30;

    public static DeviceDescription Device(long ram, string model = "Pixel 8") => new()
    {
        RamBytes = ram, Os = "android", OsVersion = "14", RuntimeVersion = "1.0", RuntimeApiVersion = "1", CpuFeatures = ["neon"], DeviceModel = model,
    };

    public static ModelUpdater Updater(DeliveryWorld world, string baseUrl, string model, DeviceDescription device, string cacheName,
        BundledModel? bundled = null, HttpMessageHandler? handler = null, TimeProvider? time = null, string? cacheDir = null, int maxAttempts = 3) =>
        new(new ModelUpdaterOptions
        {
            Server = new Uri(baseUrl),
            Model = model,
            CacheDirectory = cacheDir ?? world.File("cache-" + cacheName),
            TrustedRoot = File.ReadAllBytes(world.RootJson),
            Device = device,
            Bundled = bundled,
            Http = handler is null ? null : new HttpClient(handler),
            Time = time ?? TimeProvider.System,
            MaxAttempts = maxAttempts,
            InitialBackoff = TimeSpan.FromMilliseconds(50),
        });

    /// <summary>
    /// The safety invariant: a reported model path always hashes to a published (or bundled) hash, and every
    /// recorded installed version is still there and intact.
    /// </summary>
    public static void AssertInvariant(ModelUpdater u, IReadOnlyCollection<string> allowedShas)
    {
        var path = u.GetInstalledModelPath();
        if (path is not null) Assert.Contains(DeliveryWorld.Sha256(path), allowedShas);
        foreach (var m in u.ListInstalled())
        {
            Assert.True(File.Exists(m.Path), $"installed version {m.Version} lost: {m.Path}");
            Assert.Equal(m.Sha256, DeliveryWorld.Sha256(m.Path));
        }
    }
}

/// <summary>A man-in-the-middle on the client's connection: can replace responses by path.</summary>
public sealed class InterceptingHandler() : DelegatingHandler(new SocketsHttpHandler())
{
    public Func<HttpRequestMessage, HttpResponseMessage?>? Intercept { get; set; }
    public List<(string Path, byte[] Body)> Seen { get; } = [];
    public bool Record { get; set; }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (Intercept?.Invoke(request) is { } replaced) return replaced;
        var response = await base.SendAsync(request, cancellationToken);
        if (Record && request.RequestUri!.AbsolutePath.Contains("/v1/metadata/"))
        {
            var body = await response.Content.ReadAsByteArrayAsync(cancellationToken);
            lock (Seen) Seen.Add((request.RequestUri.AbsolutePath, body));
            var copy = new HttpResponseMessage(response.StatusCode) { Content = new ByteArrayContent(body), RequestMessage = request };
            response.Dispose();
            return copy;
        }
        return response;
    }

    public static HttpResponseMessage Json(byte[] body) => new(HttpStatusCode.OK) { Content = new ByteArrayContent(body) };
}
