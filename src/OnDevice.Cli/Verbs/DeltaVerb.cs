using System.CommandLine;
using System.Diagnostics;
using OnDevice.Core;
using OnDevice.Delivery.Deltas;
using OnDevice.Server.Deltas;

namespace OnDevice.Cli.Verbs;

/// <summary><c>ondevice delta make|apply</c>: build a patch between two model files (as the server does), or apply one.</summary>
public static class DeltaVerb
{
    /// <summary>Builds the command.</summary>
    public static Command Create() => new("delta", "Tensor-aware patches between model versions (ONNX, safetensors; any file generically)") { Make(), Apply() };

    private static Command Make()
    {
        var oldArg = new Argument<string>("old") { Description = "The installed version" };
        var newArg = new Argument<string>("new") { Description = "The new version" };
        var output = new Option<string?>("--output", "-o") { Description = "Write the patch here (default: only report)" };
        var quality = new Option<int>("--quality") { Description = "Brotli quality of payloads (0-11)", DefaultValueFactory = _ => DeltaBuildOptions.Default.Quality };
        var json = new Option<bool>("--json") { Description = "Print one JSON object" };
        var cmd = new Command("make", "Build the patch from OLD to NEW and report its size per kind of piece, and whether the server would offer it") { oldArg, newArg, output, quality, json };
        cmd.SetAction(r =>
        {
            if (r.GetValue(quality) is < 0 or > 11) throw new CliException("--quality must be 0 to 11");
            var old = ReadFile(r.GetValue(oldArg)!);
            var target = ReadFile(r.GetValue(newArg)!);
            var built = Cli.WithStatus(r.GetValue(json), "building the patch", () => DeltaFactory.Build(old, target, new DeltaBuildOptions { Quality = r.GetValue(quality) }));
            if (r.GetValue(output) is { } o) AtomicFile.WriteAllBytes(o, built.Patch);
            var kinds = built.Pieces.GroupBy(p => p.Kind).OrderBy(g => g.Key)
                .Select(g => new { kind = g.Key.ToString(), pieces = g.Count(), targetBytes = g.Sum(p => p.TargetLength), payloadBytes = g.Sum(p => p.PayloadLength) }).ToList();
            if (r.GetValue(json))
                Cli.WriteJson(new
                {
                    oldBytes = old.Length, newBytes = target.Length, patchBytes = built.Patch.Length, ratio = built.Ratio,
                    compressedNewBytes = built.CompressedTargetBytes, tensorAware = built.TensorAware, offered = built.WorthOffering(),
                    buildSeconds = built.Elapsed.TotalSeconds, pieces = kinds,
                });
            else
            {
                Console.WriteLine($"patch {Cli.Bytes(built.Patch.Length)} for a {Cli.Bytes(target.Length)} file ({built.Ratio:P1}; the new file compressed alone: {Cli.Bytes(built.CompressedTargetBytes)}), " +
                                  $"{(built.TensorAware ? "tensor-aware" : "generic diff")}, built in {built.Elapsed.TotalSeconds:0.0} s");
                foreach (var k in kinds) Console.WriteLine($"  {k.kind,-14} {k.pieces,5} pieces  {Cli.Bytes(k.targetBytes),10} of the file  {Cli.Bytes(k.payloadBytes),10} sent");
                Console.WriteLine(built.WorthOffering() ? "  a server would offer this patch" : "  not worth a patch: a server answers 404 and the device downloads the full file");
            }
            return 0;
        });
        return cmd;
    }

    private static Command Apply()
    {
        var oldArg = new Argument<string>("old") { Description = "The installed version" };
        var patchArg = new Argument<string>("patch") { Description = "The patch" };
        var output = new Option<string>("--output", "-o") { Description = "Where to write the rebuilt file", Required = true };
        var json = new Option<bool>("--json") { Description = "Print one JSON object" };
        var cmd = new Command("apply", "Rebuild the new version from OLD and PATCH, verifying every piece and the whole file's SHA-256 (written only if all verify)") { oldArg, patchArg, output, json };
        cmd.SetAction(r =>
        {
            var old = ReadFile(r.GetValue(oldArg)!);
            var patch = ReadFile(r.GetValue(patchArg)!);
            var sw = Stopwatch.StartNew();
            byte[] rebuilt;
            try { rebuilt = DeltaApplier.Apply(old, patch); }
            catch (DeltaPatchException e) { throw new CliException($"{r.GetValue(patchArg)}: {e.Message}"); }
            AtomicFile.WriteAllBytes(r.GetValue(output)!, rebuilt);
            var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(rebuilt));
            if (r.GetValue(json)) Cli.WriteJson(new { bytes = rebuilt.Length, sha256 = sha, applySeconds = sw.Elapsed.TotalSeconds });
            else Console.WriteLine($"rebuilt {Cli.Bytes(rebuilt.Length)}, SHA-256 {sha} (every piece verified) in {sw.Elapsed.TotalSeconds:0.00} s");
            return 0;
        });
        return cmd;
    }

    private static byte[] ReadFile(string path)
    {
        if (!File.Exists(path)) throw new CliException($"file not found: {path}");
        var length = new FileInfo(path).Length;
        if (length > int.MaxValue) throw new CliException($"{path} is {length} bytes; patches are built in memory for files up to 2 GiB");
        return File.ReadAllBytes(path);
    }
}
