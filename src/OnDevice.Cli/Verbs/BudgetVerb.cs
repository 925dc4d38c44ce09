using System.CommandLine;
using System.Globalization;
using OnDevice.Planning;
using Spectre.Console;

namespace OnDevice.Cli.Verbs;

/// <summary><c>ondevice budget</c>: will this model fit this device, and how fast will it be.</summary>
public static class BudgetVerb
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var model = new Argument<string?>("model") { Description = "ONNX model file or sample name (or use --config, --checkpoint, --preset)", Arity = ArgumentArity.ZeroOrOne };
        var config = new Option<string?>("--config") { Description = "Hugging Face config.json of a transformer (llama, mistral, qwen2, gemma, phi3, gpt2, bert)" };
        var checkpoint = new Option<string?>("--checkpoint") { Description = "llama2.c checkpoint (.bin); its header gives the shape" };
        var preset = new Option<string?>("--preset") { Description = $"A known model: {string.Join(", ", Presets.All.Select(p => p.Name))}" };
        var device = new Option<string?>("--device") { Description = "Device profile (see 'ondevice devices')" };
        var weights = new Option<string?>("--weights") { Description = "Weight precision: fp32, fp16, bf16, int8, int4 (default fp16; ONNX: as stored)" };
        var embeddings = new Option<string?>("--embeddings") { Description = "Precision of the token embedding and output head, if different from --weights" };
        var block = new Option<int>("--block") { Description = "Block size of int8/int4 weights (one fp16 scale per block)", DefaultValueFactory = _ => 32 };
        var kv = new Option<string>("--kv") { Description = "KV-cache precision: fp16, int8, int4", DefaultValueFactory = _ => "fp16" };
        var kvBlock = new Option<int>("--kv-block") { Description = "Block size of an int8/int4 KV cache (one fp16 scale per block)", DefaultValueFactory = _ => 32 };
        var context = new Option<long?>("--context") { Description = "Context length in tokens (default 4096, or the model's maximum if smaller)" };
        var prompt = new Option<long?>("--prompt") { Description = "Prompt tokens for time to first token (default min(512, context))" };
        var batch = new Option<long>("--batch") { Description = "Sequences decoded together", DefaultValueFactory = _ => 1 };
        var pageSize = new Option<int>("--page-size") { Description = "Paged attention: tokens per KV page (each sequence rounds up to whole pages); 0 = not paged", DefaultValueFactory = _ => 0 };
        var unit = new Option<string>("--unit") { Description = "Compute unit for time estimates: cpu, gpu, npu", DefaultValueFactory = _ => "cpu" };
        var shapes = new Option<string[]>("--shape") { Description = "ONNX: fix an input shape, e.g. --shape x=1,3,48,320 (repeatable)" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object" };
        var cmd = new Command("budget", "Will a model fit a device? Weights, KV cache, activations and total against the app budget; time to first token and decode speed")
        {
            model, config, checkpoint, preset, device, weights, embeddings, block, kv, kvBlock, context, prompt, batch, pageSize, unit, shapes, json,
        };
        cmd.SetAction(r =>
        {
            bool asJson = r.GetValue(json);
            try
            {
                var sources = new[] { r.GetValue(model) is null ? null : "MODEL", r.GetValue(config) is null ? null : "--config", r.GetValue(checkpoint) is null ? null : "--checkpoint", r.GetValue(preset) is null ? null : "--preset" }
                    .Where(s => s is not null).ToList();
                if (sources.Count != 1)
                    throw new CliException(sources.Count == 0
                        ? "give one model: MODEL.onnx, --config config.json, --checkpoint FILE or --preset NAME"
                        : $"give only one model source, not {string.Join(" and ", sources)}");
                if (r.GetValue(context) is < 1) throw new CliException($"--context must be a positive number of tokens, got {r.GetValue(context)}");
                if (r.GetValue(prompt) is < 1) throw new CliException($"--prompt must be a positive number of tokens, got {r.GetValue(prompt)}");
                if (r.GetValue(batch) < 1) throw new CliException($"--batch must be at least 1, got {r.GetValue(batch)}");
                if (r.GetValue(block) < 1) throw new CliException($"--block must be at least 1, got {r.GetValue(block)}");
                if (r.GetValue(kvBlock) < 1) throw new CliException($"--kv-block must be at least 1, got {r.GetValue(kvBlock)}");
                if (r.GetValue(pageSize) < 0) throw new CliException($"--page-size must be 0 (not paged) or a positive number of tokens, got {r.GetValue(pageSize)}");

                WeightFormat? wf = null;
                if (r.GetValue(weights) is { } w)
                    wf = new WeightFormat(Precisions.ParseWeights(w), r.GetValue(block), r.GetValue(embeddings) is { } e ? Precisions.ParseWeights(e) : null);
                else if (r.GetValue(embeddings) is { } e2)
                    wf = new WeightFormat(WeightPrecision.Fp16, r.GetValue(block), Precisions.ParseWeights(e2));
                var options = new BudgetOptions
                {
                    Weights = wf,
                    BlockSize = r.GetValue(block),
                    Kv = new KvCacheFormat(Precisions.ParseKv(r.GetValue(kv)!), r.GetValue(kvBlock), r.GetValue(pageSize)),
                    Context = r.GetValue(context),
                    Prompt = r.GetValue(prompt),
                    Batch = r.GetValue(batch),
                    Unit = r.GetValue(unit)!,
                    Device = r.GetValue(device) is { } d ? DeviceCatalog.Load().Get(d) : null,
                };

                BudgetReport report;
                if (r.GetValue(model) is { } m)
                {
                    if (r.GetResult(context) is not null || r.GetResult(prompt) is not null || r.GetResult(kv) is { Implicit: false } || r.GetResult(pageSize) is { Implicit: false })
                        throw new CliException("--context, --prompt, --kv and --page-size apply to transformers (--config, --checkpoint, --preset); an ONNX model has no KV cache here");
                    if (r.GetValue(embeddings) is not null) throw new CliException("--embeddings applies to transformers; for an ONNX model --weights re-quantizes every matrix");
                    var path = Cli.ResolveModel(m, asJson);
                    var cost = OnnxCost.Analyze(path, InspectVerb.ParseShapes(r.GetValue(shapes) ?? []));
                    report = Budget.Estimate(cost, options);
                }
                else
                {
                    if (r.GetValue(shapes) is { Length: > 0 }) throw new CliException("--shape applies to ONNX models");
                    TransformerConfig tc;
                    if (r.GetValue(config) is { } cfg) tc = TransformerConfig.FromHuggingFaceFile(cfg);
                    else if (r.GetValue(checkpoint) is { } ck) tc = Llama2cCheckpoint.Read(ck).ToConfig(Path.GetFileName(ck));
                    else tc = Presets.Get(r.GetValue(preset)!).Config;
                    report = Budget.Estimate(new TransformerCost(tc), options);
                }
                if (asJson) Cli.WriteJson(report);
                else Print(report);
                return 0;
            }
            catch (PlanningException e)
            {
                throw new CliException(e.Message);
            }
        });
        return cmd;
    }

    private static string Exact(long n) => n.ToString("N0", CultureInfo.InvariantCulture);

    private static void Print(BudgetReport r)
    {
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine(r.Shape ?? r.Model);
        var t = new Table().AddColumns("", "bytes", "", "note").Border(TableBorder.Simple);
        t.AddRow("parameters", Exact(r.Parameters), Units.Count(r.Parameters),
            Markup.Escape(string.Join(", ", r.ParametersByComponent.Select(k => $"{k.Key} {Units.Count(k.Value)}"))));
        t.AddRow("weights", Exact(r.WeightBytes), Units.Bytes(r.WeightBytes), Markup.Escape(r.Weights));
        if (r.KvCache is not null)
            t.AddRow("KV cache", Exact(r.KvCacheBytes), Units.Bytes(r.KvCacheBytes),
                Markup.Escape($"{r.KvCache}, {r.Context:N0} tokens × batch {r.Batch} ({r.KvCacheBytesPerToken:N0} B/token)"));
        t.AddRow("activations", Exact(r.ActivationBytes), Units.Bytes(r.ActivationBytes), Markup.Escape(r.ActivationSource));
        t.AddRow("[bold]total[/]", Exact(r.TotalBytes), Units.Bytes(r.TotalBytes), "");
        if (r.Device is not null)
        {
            t.AddRow("app budget", Exact(r.AppBudgetBytes!.Value), Units.Bytes(r.AppBudgetBytes.Value), Markup.Escape(r.Device));
            t.AddRow(r.Fits == true ? "[green]fits[/]" : "[red]does not fit[/]", Exact(Math.Abs(r.HeadroomBytes!.Value)), Units.Bytes(Math.Abs(r.HeadroomBytes.Value)),
                r.Fits == true ? "headroom" : "over by");
        }
        AnsiConsole.Write(t);
        if (r.Onnx is { } onnx)
        {
            Console.WriteLine($"inputs   {string.Join(", ", onnx.InputShapes.Select(i => $"{i.Key}[{string.Join("x", i.Value)}]"))}; weights by dtype: {string.Join(", ", onnx.WeightBytesByDType.Select(k => $"{k.Key} {Units.Bytes(k.Value)}"))}");
            if (onnx.MacsByOp.Count > 0)
                Console.WriteLine($"MACs     {(onnx.Macs is { } mc ? Units.Count(mc) : "unknown")}: {string.Join(", ", onnx.MacsByOp.OrderByDescending(k => k.Value).Select(k => $"{k.Key} {Units.Count(k.Value)}"))}");
            Console.WriteLine(onnx.PlannedPeakBytes is { } pp
                ? $"memory   runtime plan {Units.Bytes(pp)}; live-value peak {(onnx.LivenessPeakBytes is { } lp ? Units.Bytes(lp) : "unknown")}"
                : $"memory   live-value peak {(onnx.LivenessPeakBytes is { } lp2 ? Units.Bytes(lp2) : "unknown")}; no runtime plan: {onnx.PlannedPeakNote}");
        }
        if (r.PrefillFlops is { } pf)
            Console.WriteLine(r.Kind == "onnx"
                ? string.Format(inv, "compute  {0} FLOPs per inference", Units.Count(pf))
                : string.Format(inv, "compute  prefill {0} FLOPs/token (prompt {1:N0}){2}", Units.Count(r.PrefillFlopsPerToken!.Value), r.Prompt,
                    r.DecodeFlopsPerToken is { } df ? string.Format(inv, ", decode {0} FLOPs/token at {1:N0} tokens of context", Units.Count(df), r.Context) : ""));
        if (r.Device is not null)
        {
            if (r.TimeToFirstTokenSeconds is { } ttft)
                Console.WriteLine(string.Format(inv, "time     {0} {1} ({2}-bound; {3} {4} {5}OPS, {6}/s)", r.Kind == "onnx" ? "per inference" : "to first token",
                    Units.Seconds(ttft), r.PrefillBound, r.ComputeUnit, r.ComputePrecision, Units.Ops(r.ThroughputOpsPerSecond!.Value), Units.Bytes(r.BandwidthBytesPerSecond!.Value)));
            if (r.DecodeTokensPerSecond is { } tps)
                Console.WriteLine(string.Format(inv, "decode   ~{0} tokens/s ({1}-bound: {2} read per step at {3}/s)", Units.Rate(tps), r.DecodeBound,
                    Units.Bytes(r.DecodeBytesPerToken!.Value), Units.Bytes(r.BandwidthBytesPerSecond!.Value)));
            var o = new Table().AddColumns("precision", "weights", "total", "fits", "headroom", "tokens/s").Border(TableBorder.Simple);
            foreach (var x in r.Options)
                o.AddRow(Markup.Escape(x.Weights), Units.Bytes(x.WeightBytes), Units.Bytes(x.TotalBytes), x.Fits == true ? "yes" : "no",
                    x.HeadroomBytes is { } h ? (h >= 0 ? Units.Bytes(h) : "-" + Units.Bytes(-h)) : "", x.DecodeTokensPerSecond is { } d ? Units.Rate(d) : "");
            AnsiConsole.Write(o);
        }
        Console.WriteLine($"=> {r.Recommendation}");
        foreach (var n in r.Notes) Console.WriteLine($"   note: {n}");
    }
}
