using System.CommandLine;
using System.Globalization;
using OnDevice.Formats.Llm;
using OnDevice.Runtime.Llm;

namespace OnDevice.Cli.Verbs;

/// <summary><c>ondevice llm</c>: tools for LLaMA checkpoints (<c>quality</c>).</summary>
public static class LlmVerb
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var cmd = new Command("llm", "LLaMA decoder tools");
        cmd.Subcommands.Add(Quality());
        cmd.Subcommands.Add(Convert());
        return cmd;
    }

    private static Command Convert()
    {
        var checkpoint = new Argument<string>("checkpoint") { Description = "Checkpoint to convert (llama2.c, GGUF or Hugging Face folder)" };
        var output = new Option<string>("--output", "-o") { Description = "GGUF file to write", Required = true };
        var type = new Option<string>("--type") { Description = "Matrix type: f32, f16, q8_0, q4_0 (norms stay f32)", DefaultValueFactory = _ => "q8_0" };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "llama2.c tokenizer to embed as tokenizer.ggml.* metadata" };
        var cmd = new Command("convert", "Write a LLaMA checkpoint as GGUF (F32, F16, Q8_0 or Q4_0 matrices), with its tokenizer")
        {
            checkpoint, output, type, tokenizer,
        };
        cmd.SetAction(r =>
        {
            uint ggml = r.GetValue(type) switch
            {
                "f32" => OnDevice.Formats.Gguf.GgufFile.F32, "f16" => OnDevice.Formats.Gguf.GgufFile.F16,
                "q8_0" => OnDevice.Formats.Gguf.GgufFile.Q8_0, "q4_0" => OnDevice.Formats.Gguf.GgufFile.Q4_0,
                var o => throw new CliException($"--type must be f32, f16, q8_0 or q4_0, got '{o}'"),
            };
            var ck = LlamaCheckpoint.Open(r.GetValue(checkpoint)!);
            var vocab = r.GetValue(tokenizer) is { } tp ? OnDevice.Formats.Llama2c.Llama2cReader.ReadTokenizer(tp, ck.Config.VocabSize) : ck.Vocabulary;
            var layout = SyntheticLlama.Layout(ck.Config).ToList();
            if (ggml is OnDevice.Formats.Gguf.GgufFile.Q8_0 or OnDevice.Formats.Gguf.GgufFile.Q4_0)
                foreach (var (name, rows, cols) in layout)
                    if (rows > 1 && cols % 32 != 0)
                        throw new CliException($"tensor '{name}' has rows of {cols}, not whole blocks of 32; {r.GetValue(type)} cannot hold it (use f32 or f16)");
            if (ck.Config.Rope != RopeStyle.Interleaved)
                throw new CliException("this checkpoint rotates RoPE pairs (i, i + head/2) (Hugging Face); GGUF LLaMA expects adjacent pairs and conversion does not permute q/k yet");
            OnDevice.Formats.Gguf.GgufWriter.WriteLlama(r.GetValue(output)!, ck.Config, vocab, layout,
                (n, rows, cols) => WeightMatrix.ToFloats(ck.Get(n, rows, cols)), ggml);
            Console.WriteLine($"wrote {r.GetValue(output)} ({new FileInfo(r.GetValue(output)!).Length:N0} bytes)");
            return 0;
        });
        return cmd;
    }

    private static Command Quality()
    {
        var checkpoint = new Argument<string>("checkpoint") { Description = "Candidate checkpoint (llama2.c, GGUF or Hugging Face folder)" };
        var against = new Option<string?>("--against") { Description = "Reference checkpoint (default: the candidate itself, compared at --against-weights)" };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "llama2.c tokenizer file (default: the checkpoint's vocabulary)" };
        var weights = new Option<string>("--weights") { Description = "Candidate precision: fp32, int8, int4", DefaultValueFactory = _ => "fp32" };
        var againstWeights = new Option<string>("--against-weights") { Description = "Reference precision", DefaultValueFactory = _ => "fp32" };
        var prompts = new Option<string?>("--prompts") { Description = "Text file with one prompt per line (default: built-in story openings)" };
        var steps = new Option<int>("--steps") { Description = "Positions per sequence (prompt + the reference's greedy continuation)", DefaultValueFactory = _ => 128 };
        var threads = new Option<int>("--threads") { Description = "Threads", DefaultValueFactory = _ => 1 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object" };
        var cmd = new Command("quality", "Mean KL divergence and top-1 agreement of next-token distributions against a reference model")
        {
            checkpoint, against, tokenizer, weights, againstWeights, prompts, steps, threads, json,
        };
        cmd.SetAction(r =>
        {
            var w = GenerateVerb.ParseWeights(r.GetValue(weights)!, "--weights");
            var aw = GenerateVerb.ParseWeights(r.GetValue(againstWeights)!, "--against-weights");
            int nSteps = r.GetValue(steps), nThreads = Math.Max(1, r.GetValue(threads));
            var ck = LlamaCheckpoint.Open(r.GetValue(checkpoint)!);
            var refCk = r.GetValue(against) is { } a ? LlamaCheckpoint.Open(a) : ck;
            if (refCk.Config.VocabSize != ck.Config.VocabSize)
                throw new CliException($"the reference's vocabulary ({refCk.Config.VocabSize}) differs from the candidate's ({ck.Config.VocabSize})");
            if (ReferenceEquals(refCk, ck) && w == aw) throw new CliException("comparing a checkpoint with itself at the same precision; give --against or different --weights/--against-weights");
            int limit = Math.Min(ck.Config.SeqLen, refCk.Config.SeqLen);
            if (nSteps < 2 || nSteps > limit) throw new CliException($"--steps must be in 2..{limit}, got {nSteps}");
            var list = r.GetValue(prompts) is { } pf
                ? File.ReadAllLines(pf).Where(l => l.Trim().Length > 0).ToArray()
                : LlmQuality.DefaultPrompts;
            if (list.Length == 0) throw new CliException($"{r.GetValue(prompts)}: no prompts");
            var tok = GenerateVerb.LoadTokenizer(refCk, r.GetValue(tokenizer));
            var refEngine = new LlamaEngine(LlamaModel.Load(refCk, aw), new KvCacheOptions(MaxPositions: limit), nThreads);
            var candEngine = new LlamaEngine(LlamaModel.Load(ck, w), new KvCacheOptions(MaxPositions: limit), nThreads);
            var seqs = LlmQuality.Continuations(new LlamaGenerator(refEngine, tok), list, nSteps);
            var q = LlmQuality.Compare(refEngine, candEngine, seqs);
            var report = new QualityReport(Path.GetFullPath(ck.Path), r.GetValue(weights)!, Path.GetFullPath(refCk.Path), r.GetValue(againstWeights)!,
                q.Sequences, q.Positions, q.MeanKl, q.MaxKl, q.Top1Agreement, q.ReferencePerplexity, q.CandidatePerplexity);
            if (r.GetValue(json)) Cli.WriteJson(report);
            else
            {
                var inv = CultureInfo.InvariantCulture;
                Console.WriteLine($"{Path.GetFileName(ck.Path)} at {report.Weights} vs {Path.GetFileName(refCk.Path)} at {report.AgainstWeights}: {q.Sequences} sequences, {q.Positions} positions");
                Console.WriteLine(string.Format(inv, "mean KL {0:0.000000} nats (max {1:0.0000}); top-1 agreement {2:P2}; perplexity {3:0.000} vs reference {4:0.000}",
                    q.MeanKl, q.MaxKl, q.Top1Agreement, q.CandidatePerplexity, q.ReferencePerplexity));
            }
            return 0;
        });
        return cmd;
    }

    private sealed record QualityReport(string Checkpoint, string Weights, string Against, string AgainstWeights, int Sequences, int Positions,
        double MeanKl, double MaxKl, double Top1Agreement, double ReferencePerplexity, double CandidatePerplexity);
}
