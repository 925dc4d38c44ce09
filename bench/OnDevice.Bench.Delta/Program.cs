using System.Diagnostics;
using System.Globalization;
using OnDevice.DeltaSamples;
using OnDevice.Delivery.Deltas;
using OnDevice.Server.Deltas;
using OnDevice.TestSupport;

// Delta size / full size for model version pairs, with build and apply times (medians of --runs).
//   dotnet OnDevice.Bench.Delta.dll [--work DIR] [--runs N] [--calib DIR-of-npy-samples] [--quality Q] [--threads T]
var argv = args.ToList();
string Arg(string name, string fallback) { int i = argv.IndexOf(name); return i >= 0 && i + 1 < argv.Count ? argv[i + 1] : fallback; }
var work = Arg("--work", Path.Combine(Path.GetTempPath(), "ondevice-delta-bench"));
int runs = int.Parse(Arg("--runs", "3"), CultureInfo.InvariantCulture);
string? calib = Arg("--calib", "") is { Length: > 0 } c ? c : null;
int quality = int.Parse(Arg("--quality", "9"), CultureInfo.InvariantCulture);
int threads = int.Parse(Arg("--threads", Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);
Directory.CreateDirectory(work);
int chunkKb = int.Parse(Arg("--chunk-kb", (DeltaBuildOptions.Default.ChunkBytes >> 10).ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);
bool only = argv.Contains("--quick"); // the two fine-tuned-head cases and the unrelated one (no quantization)
var options = new DeltaBuildOptions { Quality = quality, MaxParallelism = threads, ChunkBytes = chunkKb << 10 };

var rec = SampleModels.Path("paddleocr-rec");
var det = SampleModels.Path("paddleocr-det");
var cases = new List<(string Name, Func<(string, string)> Make)>();
if (!only)
{
    cases.Add(("re-quantized int8 recognizer: int8 per-channel everywhere → same with the head left float", () => DeltaVariants.RequantizedHeadExcluded(rec, work)));
    cases.Add(("re-quantized int8 recognizer: int8 per-channel asymmetric → symmetric (every weight re-rounded)", () => DeltaVariants.RequantizedSymmetric(rec, work)));
}
if (calib is not null && !only)
    cases.Add(("re-calibrated static int8 recognizer: min-max → percentile activation ranges", () => DeltaVariants.RecalibratedStatic(rec, calib, work)));
cases.Add(("fine-tuned head only (fp32 recognizer, last MatMul weight changed)", () => DeltaVariants.FineTunedHead(rec, work)));
cases.Add(("fine-tuned head only, safetensors (every fp32 weight of the recognizer)", () => DeltaVariants.SafetensorsHead(rec, work)));
cases.Add(("unrelated model (PP-OCRv4 detector fp32 → recognizer fp32)", () => (det, rec)));

Console.WriteLine($"== {DateTime.UtcNow:yyyy-MM-ddTHH:mm}Z, {Environment.ProcessorCount} cores, load {File.ReadAllText("/proc/loadavg").Split(' ')[0]}, Brotli quality {quality}, pieces up to {chunkKb} KiB, {threads} threads, {runs} runs");
bool zstd = File.Exists("/usr/bin/zstd");
Console.WriteLine("| case | full bytes | patch bytes | patch / full | target compressed alone / full | offered | tensor-aware | pieces (copy/xor/add/diff/literal) | build ms | apply ms | peer: zstd -19 --patch-from / full | peer build ms |");
Console.WriteLine("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
foreach (var (name, make) in cases)
{
    var (p1, p2) = make();
    var old = File.ReadAllBytes(p1);
    var target = File.ReadAllBytes(p2);
    DeltaBuildResult? built = null;
    var buildMs = new List<double>();
    var applyMs = new List<double>();
    for (int r = 0; r < runs; r++)
    {
        var sw = Stopwatch.StartNew();
        built = DeltaFactory.Build(old, target, options);
        buildMs.Add(sw.Elapsed.TotalMilliseconds);
        sw.Restart();
        var rebuilt = DeltaApplier.Apply(old, built.Patch);
        applyMs.Add(sw.Elapsed.TotalMilliseconds);
        if (!rebuilt.AsSpan().SequenceEqual(target)) throw new InvalidOperationException($"{name}: the patch did not rebuild the target");
    }
    var b = built!;
    string peer = "n/a (no zstd)", peerMs = "";
    if (zstd)
    {
        var zms = new List<double>();
        long zbytes = 0;
        var outFile = Path.Combine(work, "peer.zst");
        for (int r = 0; r < runs; r++)
        {
            var sw = Stopwatch.StartNew();
            Run("/usr/bin/zstd", "-q", "-f", "-19", "--long=27", $"--patch-from={p1}", p2, "-o", outFile);
            zms.Add(sw.Elapsed.TotalMilliseconds);
            zbytes = new FileInfo(outFile).Length;
        }
        peer = string.Create(CultureInfo.InvariantCulture, $"{(double)zbytes / target.Length:0.0000} ({zbytes:N0})");
        peerMs = Median(zms).ToString("0", CultureInfo.InvariantCulture);
    }
    int Count(params DeltaPieceKind[] k) => b.Pieces.Count(p => k.Contains(p.Kind));
    var kinds = $"{Count(DeltaPieceKind.Copy)}/{Count(DeltaPieceKind.XorBrotli)}/{Count(DeltaPieceKind.AddBrotli)}/{Count(DeltaPieceKind.DiffBrotli)}/{Count(DeltaPieceKind.Literal, DeltaPieceKind.LiteralBrotli)}";
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"| {name} | {target.Length:N0} | {b.Patch.Length:N0} | {b.Ratio:0.0000} | {(double)b.CompressedTargetBytes / target.Length:0.000} | {(b.WorthOffering() ? "yes" : "no (full download)")} | {(b.TensorAware ? "yes" : "no")} | {kinds} | {Median(buildMs):0} | {Median(applyMs):0} | {peer} | {peerMs} |"));
}

static void Run(string exe, params string[] a)
{
    var psi = new ProcessStartInfo(exe) { RedirectStandardError = true, UseShellExecute = false };
    foreach (var x in a) psi.ArgumentList.Add(x);
    using var p = Process.Start(psi)!;
    var err = p.StandardError.ReadToEnd();
    p.WaitForExit();
    if (p.ExitCode != 0) throw new InvalidOperationException($"{exe} {string.Join(' ', a)}: exit {p.ExitCode}: {err}");
}

static double Median(List<double> xs) { var s = xs.Order().ToList(); return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2; }
