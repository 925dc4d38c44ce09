// Client-side delivery figures: verification throughput of a large target (TargetVerifier over a file, against
// raw SHA256.HashData over the same bytes in memory as the ceiling), and optionally a full ModelUpdater update
// (download over loopback + verify + atomic install) from a running server.
// Usage: OnDevice.Bench.Delivery FILE [--runs N] [--server URL --root root.json --model NAME]
//        OnDevice.Bench.Delivery --peer URL BODYFILE   (bare Kestrel peer for the load bench)
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using OnDevice.Client;
using OnDevice.Delivery;

if (args.Length == 3 && args[0] == "--peer")
{
    // The peer: a bare minimal API returning fixed bytes from memory, nothing else (no store, no cache check).
    var body = await File.ReadAllBytesAsync(args[2]);
    var builder = Microsoft.AspNetCore.Builder.WebApplication.CreateSlimBuilder();
    builder.WebHost.UseUrls(args[1]);
    builder.Logging.SetMinimumLevel(LogLevel.Warning);
    var app = builder.Build();
    app.MapGet("/ts", () => Microsoft.AspNetCore.Http.TypedResults.Bytes(body, "application/json"));
    await app.RunAsync();
    return;
}

var file = args.Length > 0 ? args[0] : throw new ArgumentException("usage: OnDevice.Bench.Delivery FILE [--runs N] [--server URL --root root.json --model NAME]");
string? Get(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
int runs = int.Parse(Get("--runs") ?? "5", CultureInfo.InvariantCulture);
var length = new FileInfo(file).Length;
var bytes = File.ReadAllBytes(file);
var sha = Convert.ToHexStringLower(SHA256.HashData(bytes));
var target = new TargetFile(length, sha, null);
var inv = CultureInfo.InvariantCulture;

double Median(List<double> xs) { xs.Sort(); return xs[xs.Count / 2]; }

var raw = new List<double>();
var verifyMem = new List<double>();
var verifyFile = new List<double>();
for (int i = 0; i < runs + 1; i++)
{
    var sw = Stopwatch.StartNew();
    SHA256.HashData(bytes);
    var t0 = sw.Elapsed.TotalSeconds;
    sw.Restart();
    await TargetVerifier.VerifyAsync("bench", target, new MemoryStream(bytes, writable: false));
    var t1 = sw.Elapsed.TotalSeconds;
    sw.Restart();
    await using (var fs = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20))
        await TargetVerifier.VerifyAsync("bench", target, fs);
    var t2 = sw.Elapsed.TotalSeconds;
    if (i == 0) continue; // warm-up (tiered JIT, page cache)
    raw.Add(length / t0 / 1e9);
    verifyMem.Add(length / t1 / 1e9);
    verifyFile.Add(length / t2 / 1e9);
}
Console.WriteLine(string.Create(inv, $"bytes={length} runs={runs}"));
Console.WriteLine(string.Create(inv, $"sha256_hashdata_gbps={Median(raw):F3}"));
Console.WriteLine(string.Create(inv, $"targetverifier_memory_gbps={Median(verifyMem):F3} ratio_to_hashdata={Median(verifyMem) / Median(raw):F3}"));
Console.WriteLine(string.Create(inv, $"targetverifier_file_gbps={Median(verifyFile):F3}"));

if (Get("--server") is { } server)
{
    var root = await File.ReadAllBytesAsync(Get("--root") ?? throw new ArgumentException("--root is required with --server"));
    var model = Get("--model") ?? throw new ArgumentException("--model is required with --server");
    var times = new List<double>();
    for (int i = 0; i < runs; i++)
    {
        var cache = Path.Combine(Path.GetTempPath(), "ondevice-bench-" + Guid.NewGuid().ToString("N"));
        try
        {
            using var u = new ModelUpdater(new ModelUpdaterOptions
            {
                Server = new Uri(server), Model = model, CacheDirectory = cache, TrustedRoot = root,
                Device = new DeviceDescription { RamBytes = 8L << 30 },
            });
            var sw = Stopwatch.StartNew();
            var r = await u.UpdateAsync();
            sw.Stop();
            if (r.Status != UpdateStatus.Installed) throw new InvalidOperationException($"update failed: {r.Status} {r.Error}");
            times.Add(sw.Elapsed.TotalSeconds);
        }
        finally
        {
            Directory.Delete(cache, recursive: true);
        }
    }
    var med = Median(times);
    Console.WriteLine(string.Create(inv, $"full_update_seconds_median={med:F3} full_update_gbps={length / med / 1e9:F3} (download over loopback + verify + install, fresh cache each run)"));
}
