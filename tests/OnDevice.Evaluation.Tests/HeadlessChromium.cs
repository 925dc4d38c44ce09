using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using OnDevice.TestSupport;

namespace OnDevice.Evaluation.Tests;

/// <summary>
/// Drives Debian's headless <c>chromium</c> over the DevTools protocol (a WebSocket, System.Net.WebSockets):
/// open a page, evaluate JavaScript, take a screenshot, and record every network request the page made.
/// </summary>
internal sealed partial class HeadlessChromium : IAsyncDisposable
{
    private readonly Process _process;
    private readonly TempDir _profile;
    private readonly ClientWebSocket _socket = new();
    private readonly Dictionary<int, TaskCompletionSource<JsonElement>> _pending = [];
    private readonly Lock _gate = new();
    private readonly List<string> _requests = [];
    private TaskCompletionSource _loaded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _nextId;
    private Task? _reader;

    public static string? Executable { get; } = new[] { "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome" }.FirstOrDefault(File.Exists);

    /// <summary>Fails under CI when chromium is missing, otherwise returns false with a message.</summary>
    public static bool Require()
    {
        if (Executable is not null) return true;
        Assert.False(RepoPaths.IsCi, "chromium is required for the HTML report test (scripts/setup.sh installs it)");
        Console.WriteLine("skipped: chromium not found (scripts/setup.sh installs it)");
        return false;
    }

    private HeadlessChromium(Process process, TempDir profile)
    {
        _process = process;
        _profile = profile;
    }

    public IReadOnlyList<string> Requests { get { lock (_gate) return [.. _requests]; } }

    public static async Task<HeadlessChromium> StartAsync()
    {
        var profile = new TempDir();
        var psi = new ProcessStartInfo(Executable!) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--hide-scrollbars",
                     "--remote-debugging-port=0", "--window-size=1200,900", $"--user-data-dir={profile.Path}", "about:blank" })
            psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        var browser = new HeadlessChromium(p, profile);
        _ = p.StandardOutput.ReadToEndAsync();
        // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID"
        var deadline = DateTime.UtcNow.AddSeconds(60);
        int port = 0;
        while (port == 0)
        {
            var line = await p.StandardError.ReadLineAsync().WaitAsync(deadline - DateTime.UtcNow) ?? throw new InvalidOperationException("chromium exited before listening");
            var m = Listening().Match(line);
            if (m.Success) port = int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        }
        _ = p.StandardError.ReadToEndAsync();
        using var http = new HttpClient();
        var targets = JsonDocument.Parse(await http.GetStringAsync($"http://127.0.0.1:{port}/json/list")).RootElement;
        var page = targets.EnumerateArray().First(t => t.GetProperty("type").GetString() == "page");
        await browser._socket.ConnectAsync(new Uri(page.GetProperty("webSocketDebuggerUrl").GetString()!), CancellationToken.None);
        browser._reader = Task.Run(browser.ReadLoop);
        await browser.SendAsync("Page.enable");
        await browser.SendAsync("Network.enable");
        return browser;
    }

    [GeneratedRegex(@"DevTools listening on ws://[^:]+:(\d+)/")]
    private static partial Regex Listening();

    public async Task NavigateAsync(string url)
    {
        _loaded = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await SendAsync("Page.navigate", new { url });
        await _loaded.Task.WaitAsync(TimeSpan.FromSeconds(60));
    }

    /// <summary>Evaluates <paramref name="expression"/> and returns its JSON value.</summary>
    public async Task<JsonElement> EvaluateAsync(string expression)
    {
        var r = await SendAsync("Runtime.evaluate", new { expression, returnByValue = true });
        if (r.TryGetProperty("exceptionDetails", out var ex)) throw new InvalidOperationException($"page script failed: {ex}");
        return r.GetProperty("result").GetProperty("value");
    }

    public async Task<byte[]> ScreenshotAsync()
    {
        var r = await SendAsync("Page.captureScreenshot", new { format = "png", captureBeyondViewport = true });
        return Convert.FromBase64String(r.GetProperty("data").GetString()!);
    }

    private async Task<JsonElement> SendAsync(string method, object? parameters = null)
    {
        var tcs = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        int id;
        lock (_gate) { id = ++_nextId; _pending[id] = tcs; }
        var json = JsonSerializer.SerializeToUtf8Bytes(new { id, method, @params = parameters ?? new { } });
        await _socket.SendAsync(json, WebSocketMessageType.Text, true, CancellationToken.None);
        return await tcs.Task.WaitAsync(TimeSpan.FromSeconds(60));
    }

    private async Task ReadLoop()
    {
        var buffer = new byte[1 << 16];
        var message = new MemoryStream();
        try
        {
            while (_socket.State == WebSocketState.Open)
            {
                var r = await _socket.ReceiveAsync(buffer, CancellationToken.None);
                if (r.MessageType == WebSocketMessageType.Close) break;
                message.Write(buffer, 0, r.Count);
                if (!r.EndOfMessage) continue;
                var doc = JsonDocument.Parse(message.ToArray()).RootElement.Clone();
                message.SetLength(0);
                if (doc.TryGetProperty("id", out var idEl))
                {
                    TaskCompletionSource<JsonElement>? tcs;
                    lock (_gate) _pending.Remove(idEl.GetInt32(), out tcs);
                    if (doc.TryGetProperty("error", out var err)) tcs?.TrySetException(new InvalidOperationException($"DevTools error: {err}"));
                    else tcs?.TrySetResult(doc.GetProperty("result"));
                }
                else if (doc.GetProperty("method").GetString() is { } m)
                {
                    if (m == "Page.loadEventFired") _loaded.TrySetResult();
                    else if (m == "Network.requestWillBeSent")
                        lock (_gate) _requests.Add(doc.GetProperty("params").GetProperty("request").GetProperty("url").GetString()!);
                }
            }
        }
        catch (WebSocketException) { }
        catch (OperationCanceledException) { }
    }

    public async ValueTask DisposeAsync()
    {
        try { await _socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5)); }
        catch (Exception e) when (e is WebSocketException or TimeoutException or InvalidOperationException) { }
        try { if (!_process.HasExited) _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        if (_reader is not null) await _reader.WaitAsync(TimeSpan.FromSeconds(5)).ContinueWith(_ => { });
        _process.Dispose();
        _socket.Dispose();
        _profile.Dispose();
    }
}
