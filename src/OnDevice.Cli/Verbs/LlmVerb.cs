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
