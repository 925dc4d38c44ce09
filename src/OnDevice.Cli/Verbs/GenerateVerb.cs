using System.CommandLine;
using System.Globalization;
using OnDevice.Formats.Llama2c;
using OnDevice.Formats.Llm;
using OnDevice.Runtime.Llm;

namespace OnDevice.Cli.Verbs;

/// <summary><c>ondevice generate CHECKPOINT</c>: text generation with the LLaMA decoder engine.</summary>
public static class GenerateVerb
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var checkpoint = new Argument<string>("checkpoint") { Description = "llama2.c .bin, GGUF file, or Hugging Face folder (config.json + *.safetensors)" };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "llama2.c tokenizer file (default: the checkpoint's own vocabulary, e.g. GGUF)" };
        var prompt = new Option<string>("--prompt") { Description = "Prompt text (BOS is prepended)", DefaultValueFactory = _ => "" };
        var steps = new Option<int?>("--steps") { Description = "Positions of the whole sequence, prompt (with BOS) included (default min(256, context limit))" };
        var temperature = new Option<float>("--temperature") { Description = "0 = greedy (default); otherwise sample from softmax(logits/T)", DefaultValueFactory = _ => 0f };
        var topK = new Option<int>("--top-k") { Description = "Sample among the K most likely tokens (0 = all)", DefaultValueFactory = _ => 0 };
        var topP = new Option<float>("--top-p") { Description = "Nucleus sampling threshold (1 = off)", DefaultValueFactory = _ => 1f };
        var penalty = new Option<float>("--repetition-penalty") { Description = "Penalty on tokens already in the sequence (1 = off)", DefaultValueFactory = _ => 1f };
        var seed = new Option<ulong>("--seed") { Description = "Random seed (same seed, same text)", DefaultValueFactory = _ => 42UL };
        var stops = new Option<string[]>("--stop") { Description = "Stop when the generated text contains this string (repeatable)" };
        var weights = new Option<string>("--weights") { Description = "Weight precision at run time: fp32, int8, int4 (converted on load)", DefaultValueFactory = _ => "fp32" };
        var kv = new Option<string>("--kv") { Description = "KV cache elements: fp32, fp16, int8", DefaultValueFactory = _ => "fp32" };
        var pageSize = new Option<int>("--page-size") { Description = "Paged KV cache with blocks of this many positions (0 = contiguous)", DefaultValueFactory = _ => 0 };
        var context = new Option<int?>("--context") { Description = "Context limit in positions (default: the model's seq_len)" };
        var draft = new Option<string?>("--draft") { Description = "Speculative decoding with this draft checkpoint (same tokenizer)" };
        var selfDraft = new Option<int?>("--self-draft-layers") { Description = "Self-speculative decoding: the first K layers of the model draft" };
        var draftWeights = new Option<string?>("--draft-weights") { Description = "Precision of the draft; alone, the model itself at this precision drafts (e.g. int4)" };
        var draftTokens = new Option<int>("--draft-tokens") { Description = "Tokens the draft proposes per target pass", DefaultValueFactory = _ => 4 };
        var beam = new Option<int>("--beam") { Description = "Beam search width (0 = off)", DefaultValueFactory = _ => 0 };
        var lengthPenalty = new Option<float>("--length-penalty") { Description = "Beam search: score / length^alpha", DefaultValueFactory = _ => 1f };
        var threads = new Option<int>("--threads") { Description = "Threads for matrix products", DefaultValueFactory = _ => 1 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object" };
        var cmd = new Command("generate", "Generate text with a LLaMA-architecture checkpoint (greedy, sampling, beam search, speculative decoding)")
        {
            checkpoint, tokenizer, prompt, steps, temperature, topK, topP, penalty, seed, stops, weights, kv, pageSize, context,
            draft, selfDraft, draftWeights, draftTokens, beam, lengthPenalty, threads, json,
        };
        cmd.SetAction(r =>
        {
            bool asJson = r.GetValue(json);
            var w = ParseWeights(r.GetValue(weights)!, "--weights");
            var kvElement = r.GetValue(kv) switch
            {
                "fp32" => KvElement.Fp32, "fp16" => KvElement.Fp16, "int8" => KvElement.Int8,
                var other => throw new CliException($"--kv must be fp32, fp16 or int8, got '{other}'"),
            };
            int beamWidth = r.GetValue(beam), nThreads = r.GetValue(threads), dTokens = r.GetValue(draftTokens);
            if (beamWidth < 0) throw new CliException($"--beam must be ≥ 0, got {beamWidth}");
            if (nThreads < 1) throw new CliException($"--threads must be ≥ 1, got {nThreads}");
            if (r.GetValue(pageSize) < 0) throw new CliException($"--page-size must be ≥ 0, got {r.GetValue(pageSize)}");
            if (dTokens < 1) throw new CliException($"--draft-tokens must be ≥ 1, got {dTokens}");
            bool speculative = r.GetValue(draft) is not null || r.GetValue(selfDraft) is not null || r.GetValue(draftWeights) is not null;
            if (r.GetValue(draft) is not null && r.GetValue(selfDraft) is not null) throw new CliException("give --draft FILE or --self-draft-layers K, not both");
            if (speculative && beamWidth > 0) throw new CliException("beam search and speculative decoding cannot be combined");
            SamplingOptions sampling;
            try
            {
                sampling = new SamplingOptions(r.GetValue(temperature), r.GetValue(topK), r.GetValue(topP), r.GetValue(penalty), r.GetValue(seed)).Validate();
            }
            catch (ArgumentOutOfRangeException e) { throw new CliException(e.Message.Split(" (Parameter")[0]); }

            var ck = LlamaCheckpoint.Open(r.GetValue(checkpoint)!);
            var tok = LoadTokenizer(ck, r.GetValue(tokenizer));
            int limit = r.GetValue(context) ?? ck.Config.SeqLen;
            if (limit < 1 || limit > ck.Config.SeqLen) throw new CliException($"--context must be in 1..{ck.Config.SeqLen} (the model's seq_len), got {limit}");
            int nSteps = r.GetValue(steps) ?? Math.Min(256, limit);
            if (nSteps < 1) throw new CliException($"--steps must be positive, got {nSteps}");
            if (nSteps > limit) throw new CliException($"--steps {nSteps} exceeds the context limit of {limit} positions");
            var model = Cli.WithStatus(asJson, $"loading {Path.GetFileName(ck.Path)} at {w.ToString().ToLowerInvariant()}", () => LlamaModel.Load(ck, w));
            int slots = beamWidth > 0 ? 2 * beamWidth : 1;
            var kvOptions = new KvCacheOptions(kvElement, slots, limit, r.GetValue(pageSize));
            var engine = new LlamaEngine(model, kvOptions, nThreads);
            var options = new GenerationOptions(nSteps, sampling, r.GetValue(stops));
            GenerationResult result;
            try
            {
                if (speculative)
                {
                    LlamaModel draftModel;
                    var dw = r.GetValue(draftWeights) is { } dws ? ParseWeights(dws, "--draft-weights") : w;
                    if (r.GetValue(selfDraft) is { } k)
                    {
                        if (k < 1 || k >= ck.Config.Layers) throw new CliException($"--self-draft-layers must be in 1..{ck.Config.Layers - 1}, got {k}");
                        draftModel = (dw == w ? model : LlamaModel.Load(ck, dw)).FirstLayers(k);
                    }
                    else if (r.GetValue(draft) is { } dpath)
                    {
                        var dck = LlamaCheckpoint.Open(dpath);
                        if (dck.Config.VocabSize != ck.Config.VocabSize)
                            throw new CliException($"the draft's vocabulary ({dck.Config.VocabSize}) differs from the model's ({ck.Config.VocabSize}); it must share the tokenizer");
                        draftModel = LlamaModel.Load(dck, dw);
                    }
                    else
                    {
                        if (dw == w) throw new CliException("--draft-weights alone makes the model draft for itself at another precision; give int8 or int4 different from --weights");
                        draftModel = LlamaModel.Load(ck, dw);
                    }
                    var draftEngine = new LlamaEngine(draftModel, kvOptions with { MaxPositions = Math.Min(limit, draftModel.Config.SeqLen) }, nThreads);
                    result = new SpeculativeDecoder(engine, draftEngine).Generate(tok, r.GetValue(prompt)!, options, dTokens);
                }
                else if (beamWidth > 0)
                {
                    result = new LlamaGenerator(engine, tok).BeamSearch(r.GetValue(prompt)!, nSteps, beamWidth, r.GetValue(lengthPenalty));
                }
                else result = new LlamaGenerator(engine, tok).Generate(r.GetValue(prompt)!, options);
            }
            catch (LlmCapacityException e) { throw new CliException(e.Message); }

            if (asJson)
                Cli.WriteJson(new GenerateReport(result.Text, result.Tokens, result.PromptTokens.Length, result.PrefillTokensPerSecond, result.DecodeTokensPerSecond,
                    result.AcceptanceRate, w.ToString().ToLowerInvariant(), r.GetValue(kv)!, nThreads, model.WeightBytesPerToken, result.Score));
            else
            {
                Console.WriteLine(result.Text);
                var inv = CultureInfo.InvariantCulture;
                Console.Error.WriteLine(string.Format(inv, "prefill {0} tokens at {1:0.0} tokens/s; decode {2} tokens at {3:0.0} tokens/s{4}",
                    result.PromptTokens.Length, result.PrefillTokensPerSecond, result.Tokens.Length, result.DecodeTokensPerSecond,
                    result.AcceptanceRate is { } a ? string.Format(inv, "; draft acceptance {0:P1}", a) : ""));
            }
            return 0;
        });
        return cmd;
    }

    /// <summary>Parses fp32 / int8 / int4.</summary>
    internal static LlmWeights ParseWeights(string s, string option) => s switch
    {
        "fp32" => LlmWeights.Fp32, "int8" => LlmWeights.Int8, "int4" => LlmWeights.Int4,
        _ => throw new CliException($"{option} must be fp32, int8 or int4, got '{s}'"),
    };

    /// <summary>The tokenizer from <paramref name="path"/> (llama2.c format) or the checkpoint's vocabulary.</summary>
    internal static LlamaTokenizer LoadTokenizer(LlamaCheckpoint ck, string? path)
    {
        if (path is not null) return new LlamaTokenizer(Llama2cReader.ReadTokenizer(path, ck.Config.VocabSize));
        if (ck.Vocabulary is not null)
        {
            if (ck.Vocabulary.Count != ck.Config.VocabSize)
                throw new CliException($"{ck.Path}: the vocabulary has {ck.Vocabulary.Count} tokens but the model {ck.Config.VocabSize}");
            return new LlamaTokenizer(ck.Vocabulary);
        }
        throw new CliException($"{ck.Path} carries no tokenizer; give --tokenizer FILE");
    }

    private sealed record GenerateReport(string Text, int[] Tokens, int PromptTokens, double PrefillTokensPerSecond, double DecodeTokensPerSecond,
        double? AcceptanceRate, string Weights, string Kv, int Threads, long WeightBytesPerToken, double? BeamScore);
}
