using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using OnDevice.TestSupport;

namespace OnDevice.Server.Tests;

/// <summary>Runs the real <c>ondevice</c> executable built next to the tests.</summary>
public static class Ondevice
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    public static ProcessStartInfo StartInfo(params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "ondevice.dll");
        Assert.True(File.Exists(dll), $"ondevice.dll not found next to the tests ({dll})");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        return psi;
    }

    public static async Task<Result> RunAsync(params string[] args)
    {
        using var p = Process.Start(StartInfo(args))!;
        var err = p.StandardError.ReadToEndAsync();
        var output = await p.StandardOutput.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await p.WaitForExitAsync(cts.Token);
        return new Result(p.ExitCode, output, await err);
    }

    public static async Task OkAsync(params string[] args)
    {
        var r = await RunAsync(args);
        Assert.True(r.ExitCode == 0, $"ondevice {string.Join(' ', args)} exited {r.ExitCode}: {r.Stderr}{r.Stdout}");
    }
}

/// <summary>A free TCP port on loopback.</summary>
public static class Ports
{
    public static int Free()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }
}

/// <summary>An <c>ondevice serve</c> process on 127.0.0.1 and a random port.</summary>
public sealed class ServerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _log = new();

    private ServerProcess(Process process, string baseUrl, string token)
    {
        _process = process;
        BaseUrl = baseUrl;
        Token = token;
        process.OutputDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public string BaseUrl { get; }
    public string Token { get; private set; }
    public int Pid => _process.Id;
    public string Log { get { lock (_log) return _log.ToString(); } }

    public static async Task<ServerProcess> StartAsync(string store, string keys, string? db = null, int? port = null, params string[] extra)
    {
        var tokenFile = Path.Combine(store, "..", Path.GetFileName(store) + ".admin-token");
        Exception? last = null;
        for (int attempt = 0; attempt < 3; attempt++)
        {
            var url = $"http://127.0.0.1:{port ?? Ports.Free()}";
            var args = new List<string> { "serve", "--store", store, "--keys", keys, "--urls", url, "--admin-token-file", tokenFile };
            if (db is not null) { args.Add("--db"); args.Add(db); }
            args.AddRange(extra);
            var p = Process.Start(Ondevice.StartInfo(args.ToArray()))!;
            var server = new ServerProcess(p, url, "");
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (DateTime.UtcNow < deadline && !p.HasExited)
            {
                try
                {
                    using var r = await http.GetAsync(url + "/healthz");
                    if (r.IsSuccessStatusCode)
                    {
                        server.Token = (await File.ReadAllTextAsync(tokenFile)).Trim();
                        return server;
                    }
                }
                catch (HttpRequestException) { }
                catch (TaskCanceledException) { }
                await Task.Delay(100);
            }
            last = new InvalidOperationException($"server did not start (exit {(p.HasExited ? p.ExitCode : -1)}): {server.Log}");
            if (!p.HasExited) p.Kill(true);
        }
        throw last!;
    }

    public HttpClient Http(string? token = null)
    {
        var h = new HttpClient { BaseAddress = new Uri(BaseUrl) };
        if (token is not null) h.DefaultRequestHeaders.Authorization = new("Bearer", token);
        return h;
    }

    public async Task<string> CreateTokenAsync(string name, string role)
    {
        using var h = Http(Token);
        using var r = await h.PostAsJsonAsync("/api/v1/tokens", new { name, role });
        r.EnsureSuccessStatusCode();
        return (await r.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>()).GetProperty("token").GetString()!;
    }

    /// <summary>Kills the process immediately (SIGKILL), as a crash would.</summary>
    public void Kill()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.WaitForExit(10_000);
    }

    public async ValueTask DisposeAsync()
    {
        Kill();
        _process.Dispose();
        await Task.CompletedTask;
    }
}

/// <summary>Keys, packaged releases and a store directory for one test.</summary>
public sealed class DeliveryWorld : IDisposable
{
    private readonly TempDir _dir = new();

    public string Dir => _dir.Path;
    public string Keys => _dir.File("keys");
    public string RootJson => Path.Combine(Keys, "root.json");
    public string Store(string name = "store") => _dir.File(name);
    public string File(string name) => _dir.File(name);

    public static async Task<DeliveryWorld> CreateAsync()
    {
        var w = new DeliveryWorld();
        await Ondevice.OkAsync("keys", "init", w.Keys);
        return w;
    }

    /// <summary>Packs and signs a release; variants are NAME=FILE[:k=v...] specs.</summary>
    public async Task<string> PackAsync(string model, string version, params string[] variants)
    {
        var pkg = _dir.File($"pkg-{model}-{version}-{Guid.NewGuid():N}");
        var args = new List<string> { "pack", "--name", model, "--version", version, "-o", pkg };
        foreach (var v in variants) { args.Add("--variant"); args.Add(v); }
        await Ondevice.OkAsync(args.ToArray());
        await Ondevice.OkAsync("sign", pkg, "--keys", Keys);
        return pkg;
    }

    public Task PublishAsync(ServerProcess server, string pkg, string? token = null) =>
        Ondevice.OkAsync("publish", pkg, "--server", server.BaseUrl, "--token", token ?? server.Token);

    public void Dispose() => _dir.Dispose();

    public static string Sha256(string path)
    {
        using var s = System.IO.File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(s));
    }

    /// <summary>A random file (for tests about bytes rather than models).</summary>
    public string RandomFile(string name, int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        System.IO.File.WriteAllBytes(_dir.File(name), b);
        return _dir.File(name);
    }
}
