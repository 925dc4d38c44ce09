using System.Globalization;
using OnDevice.Compression.Calibration;
using OnDevice.Compression.Gptq;
using OnDevice.Compression.Quantization;
using OnDevice.Core;
using OnDevice.Formats.Onnx;
using OnDevice.Samples;

// Calibration and GPTQ figures on the sample models, printed as Markdown.
// Usage: dotnet run -c Release --project bench/OnDevice.Bench.Calib -- [--ocr-samples N] [--oww-samples N] [--threads T] [--layers]
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
int ocrSamples = Arg("--ocr-samples", 16), owwSamples = Arg("--oww-samples", 64), threads = Arg("--threads", 1);
bool layers = args.Contains("--layers");
string[] models = ["paddleocr-rec", "paddleocr-cls", "openwakeword-hello-deepa", "openwakeword-hello-deepa-old", "openwakeword-namaste-deepa"];
var store = SampleStore.Default();

Console.WriteLine($"Machine: {Environment.ProcessorCount} cores, threads {threads}, load average {LoadAverage()}; OCR samples {ocrSamples}, openWakeWord samples {owwSamples}.");
Console.WriteLine();
Console.WriteLine("## Activation calibration (layer values: inputs and outputs of Conv/Gemm/MatMul)");
Console.WriteLine();
Console.WriteLine("| model | samples | method | values | seconds | histogram KiB | peak RSS MiB | warnings |");
Console.WriteLine("|---|---|---|---|---|---|---|---|");
foreach (var name in models.Take(3))
{
    var model = OnnxReader.Read(store.Ensure(SampleCatalog.Get(name)));
    int full = name.StartsWith("paddleocr", StringComparison.Ordinal) ? ocrSamples : owwSamples;
    foreach (int n in new[] { Math.Max(2, full / 4), full })
    {
        var set = CalibrationSet.FromFeeds(model.Graph, Inputs.For(name, model.Graph, n));
        foreach (var method in Enum.GetValues<CalibrationMethod>())
        {
            GC.Collect();
            bool reset = Mem.TryResetPeak();
            var r = ActivationCalibrator.Calibrate(model, set, new ActivationCalibrationOptions { Method = method, Values = ActivationCalibrator.LayerValues(model.Graph), Threads = threads });
            string peak = reset ? $"{Mem.PeakRss() / 1048576.0:F0}" : "n/a";
            Console.WriteLine($"| {name} | {n} | {method} | {r.Ranges.Count} | {r.Seconds:F2} | {r.HistogramBytes / 1024} | {peak} | {r.Warnings.Count} ({r.Unsettled.Count} unsettled) |");
        }
    }
}

Console.WriteLine();
Console.WriteLine("## GPTQ vs RTN, relative layer output error on the calibration inputs");
Console.WriteLine();
Console.WriteLine("Ratio = GPTQ error / RTN error per layer. \"pure\" = GPTQ without the per-row RTN guard; \"guarded\" = default (`NeverWorseThanRtn`).");
Console.WriteLine();
Console.WriteLine("| model | scheme | act-order | layers | statistics s / MB | GPTQ s | mean RTN err | mean GPTQ err (guarded) | median ratio (guarded) | worst ratio pure | layers pure worse | worst ratio guarded | rows kept RTN | held-out: mean RTN / GPTQ err, layers GPTQ worse |");
Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
var int4b32 = new QuantScheme(4, true, true, Granularity.Blocked, Axis: 1, BlockSize: 32);
var int8ch = new QuantScheme(8, true, true, Granularity.PerChannel, Axis: 0);
var perLayer = new List<string>();
foreach (var name in models)
{
    var model = OnnxReader.Read(store.Ensure(SampleCatalog.Get(name)));
    int n = name.StartsWith("paddleocr", StringComparison.Ordinal) ? ocrSamples : owwSamples;
    var set = CalibrationSet.FromFeeds(model.Graph, Inputs.For(name, model.Graph, n));
    var hs = HessianCollector.Collect(model, set, new HessianOptions { Threads = threads });
    // Held-out inputs (other seeds) measure how the weights GPTQ fitted on the calibration set generalize.
    var heldOut = HessianCollector.Collect(model, CalibrationSet.FromFeeds(model.Graph, Inputs.For(name, model.Graph, n, seedOffset: 500)), new HessianOptions { Threads = threads });
    foreach (var (scheme, label) in new[] { (int4b32, "int4 block 32"), (int8ch, "int8 per-channel") })
        foreach (bool act in new[] { false, true })
        {
            var guarded = LayerErrors.CompareRtnGptq(model, hs, scheme, new GptqOptions { ActOrder = act, Threads = threads });
            var pure = LayerErrors.CompareRtnGptq(model, hs, scheme, new GptqOptions { ActOrder = act, Threads = threads, NeverWorseThanRtn = false });
            var held = LayerErrors.CompareRtnGptq(model, hs, scheme, new GptqOptions { ActOrder = act, Threads = threads }, evaluateOn: heldOut);
            var ratios = guarded.Layers.Select(l => l.Ratio).Order().ToList();
            Console.WriteLine($"| {name} | {label} | {(act ? "yes" : "no")} | {guarded.Layers.Count} | {hs.Seconds:F1} / {hs.Bytes / 1e6:F0} | {guarded.GptqSeconds:F1} | "
                + $"{guarded.Layers.Average(l => l.RtnError):E2} | {guarded.Layers.Average(l => l.GptqError):E2} | {ratios[ratios.Count / 2]:F3} | "
                + $"{pure.Layers.Max(l => l.Ratio):F3} | {pure.GptqWorse.Count()} | {guarded.Layers.Max(l => l.Ratio):F3} | {guarded.Layers.Sum(l => l.RowsKeptRtn)} of {guarded.Layers.Sum(l => l.Rows)} | "
                + $"{held.Layers.Average(l => l.RtnError):E2} / {held.Layers.Average(l => l.GptqError):E2}, {held.GptqWorse.Count()} |");
            if (layers && scheme == int4b32 && !act)
                foreach (var ((g, p), h) in guarded.Layers.Zip(pure.Layers).Zip(held.Layers))
                    perLayer.Add($"| {name} | {g.Layer} | {g.OpType} | {g.Rows}x{g.Columns}{(g.Groups > 1 ? $" g{g.Groups}" : "")} | {g.RtnError:E2} | {p.GptqError:E2} | {g.GptqError:E2} | {g.Ratio:F3} | {g.RowsKeptRtn} | {h.Ratio:F3} |");
        }
}
if (layers)
{
    Console.WriteLine();
    Console.WriteLine("## Per layer, int4 block 32, no act-order");
    Console.WriteLine();
    Console.WriteLine("| model | layer | op | shape | RTN err | GPTQ pure err | GPTQ guarded err | ratio guarded | rows kept RTN | held-out ratio |");
    Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|");
    foreach (var l in perLayer) Console.WriteLine(l);
}
return 0;

int Arg(string flag, int fallback)
{
    int i = Array.IndexOf(args, flag);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
}

static string LoadAverage() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "n/a";

/// <summary>Peak resident memory of this process (Linux).</summary>
internal static class Mem
{
    public static bool TryResetPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }

    public static long PeakRss()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return long.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
        return -1;
    }
}

/// <summary>Calibration inputs that look like each sample's real inputs (the same generator as the tests).</summary>
internal static class Inputs
{
    public static Tensor TextLine(int width, int seed)
    {
        var rng = new Random(seed);
        const int h = 48;
        var px = new float[h * width];
        float bg = 200 + rng.Next(50);
        for (int i = 0; i < px.Length; i++) px[i] = bg + (float)(rng.NextDouble() * 16 - 8);
        int x = 4 + rng.Next(8);
        while (x < width - 12)
        {
            int gw = 6 + rng.Next(14), top = 8 + rng.Next(8), bottom = 36 + rng.Next(6);
            for (int s = 0; s < 2 + rng.Next(4); s++)
            {
                int kind = rng.Next(3), thick = 2 + rng.Next(2);
                int x0 = x + rng.Next(gw), y0 = top + rng.Next(bottom - top);
                for (int t = 0; t < 24; t++)
                {
                    int cx = kind == 1 ? x0 : Math.Min(x + gw, x0 + t * gw / 24);
                    int cy = kind == 0 ? y0 : Math.Min(bottom, top + t * (bottom - top) / 24);
                    for (int dy = 0; dy < thick; dy++)
                        for (int dx = 0; dx < thick; dx++)
                        {
                            int yy = cy + dy, xx = cx + dx;
                            if (yy < h && xx < width) px[yy * width + xx] = 30 + rng.Next(40);
                        }
                }
            }
            x += gw + 2 + rng.Next(6);
        }
        var data = new float[3 * h * width];
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < px.Length; i++) data[c * px.Length + i] = ((px[i] + c * 3) / 255f - 0.5f) / 0.5f;
        return Tensor.FromArray<float>(data, [1, 3, h, width]);
    }

    private static float[] Gaussian(int n, int seed)
    {
        var rng = new Random(seed);
        var r = new float[n];
        for (int i = 0; i < n; i++)
        {
            double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
            r[i] = (float)(Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        return r;
    }

    /// <summary>Embedding-like openWakeWord head input: low-rank (16 fixed factors), AR(1) in time, plus noise.</summary>
    public static float[] EmbeddingLike(int frames, int width, int seed)
    {
        const int factors = 16;
        var basis = Gaussian(factors * width, 77);
        var noise = Gaussian(frames * width + frames * factors, seed);
        var a = new double[factors];
        for (int r = 0; r < factors; r++) a[r] = noise[frames * width + r];
        var x = new float[frames * width];
        for (int t = 0; t < frames; t++)
        {
            for (int r = 0; r < factors; r++) a[r] = 0.8 * a[r] + 0.6 * noise[frames * width + t * factors + r];
            for (int f = 0; f < width; f++)
            {
                double v = 0.1 * noise[t * width + f];
                for (int r = 0; r < factors; r++) v += a[r] * basis[r * width + f] / 4;
                x[t * width + f] = (float)v;
            }
        }
        return x;
    }

    public static List<IReadOnlyDictionary<string, Tensor>> For(string sample, Graph graph, int count, int seedOffset = 0)
    {
        var input = graph.Inputs.First(i => !graph.Initializers.ContainsKey(i.Name));
        var feeds = new List<IReadOnlyDictionary<string, Tensor>>();
        for (int s = 0; s < count; s++)
        {
            Tensor t;
            if (sample.StartsWith("paddleocr", StringComparison.Ordinal))
                t = TextLine(sample == "paddleocr-cls" ? 192 : 160 + 40 * (s % 5), 1000 + seedOffset + s);
            else
            {
                var shape = ((TensorTypeInfo)input.Type!).Shape!;
                var dims = Enumerable.Range(0, shape.Rank).Select(d => shape[d].IsKnown ? shape[d].Value : 1L).ToArray();
                t = Tensor.FromArray<float>(EmbeddingLike((int)dims[^2], (int)dims[^1], 2000 + seedOffset + s), dims);
            }
            feeds.Add(new Dictionary<string, Tensor> { [input.Name] = t });
        }
        return feeds;
    }
}
