namespace OnDevice.Planning;

/// <summary>What <see cref="Budget"/> should assume.</summary>
public sealed record BudgetOptions
{
    /// <summary>Weight storage; null: fp16 for transformers, as stored for ONNX models.</summary>
    public WeightFormat? Weights { get; init; }

    /// <summary>Block size of int8/int4 weights when <see cref="Weights"/> is not given (used for the default and the compared precisions).</summary>
    public int BlockSize { get; init; } = 32;

    /// <summary>KV-cache storage.</summary>
    public KvCacheFormat Kv { get; init; } = new();

    /// <summary>Tokens in the context (KV cache length and the position decode speed is quoted at); null: 4096, or the model's maximum if smaller.</summary>
    public long? Context { get; init; }

    /// <summary>Prompt tokens for time to first token; null: min(512, context).</summary>
    public long? Prompt { get; init; }

    /// <summary>Sequences decoded together.</summary>
    public long Batch { get; init; } = 1;

    /// <summary>Compute unit the time estimates use: cpu, gpu or npu.</summary>
    public string Unit { get; init; } = "cpu";

    /// <summary>Device to check against; null: no fit or time estimates.</summary>
    public DeviceProfile? Device { get; init; }
}

/// <summary>Size and speed of one weight precision (a row of the recommendation table).</summary>
public sealed record PrecisionOption(string Weights, long WeightBytes, long TotalBytes, bool? Fits, long? HeadroomBytes, double? DecodeTokensPerSecond);

/// <summary>The answer of <c>ondevice budget</c>; byte counts are exact integers, times are roofline estimates.</summary>
public sealed record BudgetReport
{
    /// <summary>Model name or path.</summary>
    public required string Model { get; init; }
    /// <summary>transformer or onnx.</summary>
    public required string Kind { get; init; }
    /// <summary>The model's shape (transformers).</summary>
    public string? Shape { get; init; }
    /// <summary>Total parameters.</summary>
    public required long Parameters { get; init; }
    /// <summary>Parameters by component (transformers) or by dtype (ONNX).</summary>
    public required IReadOnlyDictionary<string, long> ParametersByComponent { get; init; }
    /// <summary>Weight format assumed.</summary>
    public required string Weights { get; init; }
    /// <summary>Weight bytes in that format.</summary>
    public required long WeightBytes { get; init; }
    /// <summary>Weight bytes by component (transformers).</summary>
    public IReadOnlyDictionary<string, long>? WeightBytesByComponent { get; init; }
    /// <summary>KV-cache format (decoders).</summary>
    public string? KvCache { get; init; }
    /// <summary>KV-cache bytes at the context and batch.</summary>
    public required long KvCacheBytes { get; init; }
    /// <summary>KV-cache bytes per token of one sequence.</summary>
    public long? KvCacheBytesPerToken { get; init; }
    /// <summary>Activation/working memory estimate.</summary>
    public required long ActivationBytes { get; init; }
    /// <summary>How <see cref="ActivationBytes"/> was obtained.</summary>
    public required string ActivationSource { get; init; }
    /// <summary>Weights + KV cache + activations.</summary>
    public required long TotalBytes { get; init; }
    /// <summary>Context tokens (transformers).</summary>
    public long? Context { get; init; }
    /// <summary>Prompt tokens (transformers).</summary>
    public long? Prompt { get; init; }
    /// <summary>Batch.</summary>
    public required long Batch { get; init; }
    /// <summary>FLOPs of the whole prompt's forward pass (per sequence); for ONNX, one inference (2 × MACs).</summary>
    public long? PrefillFlops { get; init; }
    /// <summary>Mean FLOPs per prompt token.</summary>
    public double? PrefillFlopsPerToken { get; init; }
    /// <summary>FLOPs to generate one token at the context.</summary>
    public long? DecodeFlopsPerToken { get; init; }
    /// <summary>Device name.</summary>
    public string? Device { get; init; }
    /// <summary>The device's app memory budget.</summary>
    public long? AppBudgetBytes { get; init; }
    /// <summary>Total ≤ app budget.</summary>
    public bool? Fits { get; init; }
    /// <summary>App budget − total (negative: over by that much).</summary>
    public long? HeadroomBytes { get; init; }
    /// <summary>Compute unit used for time estimates.</summary>
    public string? ComputeUnit { get; init; }
    /// <summary>Precision whose throughput was used.</summary>
    public string? ComputePrecision { get; init; }
    /// <summary>Peak operations per second used.</summary>
    public double? ThroughputOpsPerSecond { get; init; }
    /// <summary>Memory bandwidth used.</summary>
    public double? BandwidthBytesPerSecond { get; init; }
    /// <summary>Time to first token for the prompt (transformers) or one inference (ONNX): max(FLOPs ÷ throughput, weight bytes ÷ bandwidth).</summary>
    public double? TimeToFirstTokenSeconds { get; init; }
    /// <summary>compute or memory: which side of the roofline bound the prefill.</summary>
    public string? PrefillBound { get; init; }
    /// <summary>Bytes read per decode step (weights read per token + the whole KV cache).</summary>
    public long? DecodeBytesPerToken { get; init; }
    /// <summary>Decode tokens per second (all sequences of the batch together).</summary>
    public double? DecodeTokensPerSecond { get; init; }
    /// <summary>bandwidth or compute.</summary>
    public string? DecodeBound { get; init; }
    /// <summary>The same estimate at each weight precision.</summary>
    public required IReadOnlyList<PrecisionOption> Options { get; init; }
    /// <summary>One sentence: what fits, with how much headroom, at what speed.</summary>
    public required string Recommendation { get; init; }
    /// <summary>Assumptions and caveats that apply to this report.</summary>
    public required IReadOnlyList<string> Notes { get; init; }
    /// <summary>The ONNX cost model's details (ONNX models only).</summary>
    public OnnxDetails? Onnx { get; init; }
}

/// <summary>What the ONNX cost model adds to a budget: input shapes, bytes by dtype, MACs by op, the runtime's plan and the liveness estimate.</summary>
public sealed record OnnxDetails(
    IReadOnlyDictionary<string, long[]> InputShapes, IReadOnlyDictionary<string, long> WeightBytesByDType,
    long? Macs, IReadOnlyDictionary<string, long> MacsByOp, int MacsUnknownNodes,
    long? PlannedPeakBytes, string? PlannedPeakNote, long? LivenessPeakBytes, string? LivenessNote);

/// <summary>Weights + KV cache + activations against a device's memory and speed (formulas in <c>docs/numeracy.md</c>).</summary>
public static class Budget
{
    /// <summary>Weight precisions compared in the recommendation, most precise first.</summary>
    public static readonly IReadOnlyList<WeightPrecision> Compared = [WeightPrecision.Fp32, WeightPrecision.Fp16, WeightPrecision.Int8, WeightPrecision.Int4];

    /// <summary>Estimates a transformer.</summary>
    public static BudgetReport Estimate(TransformerCost cost, BudgetOptions options)
    {
        var c = cost.Config;
        var weights = (options.Weights ?? new WeightFormat(WeightPrecision.Fp16, options.BlockSize)).Validate();
        var kv = options.Kv.Validate();
        if (options.Batch < 1) throw new PlanningException($"batch must be at least 1, got {options.Batch}");
        long context = options.Context ?? Math.Min(4096, c.MaxContext ?? 4096);
        if (context < 1) throw new PlanningException($"context must be at least 1 token, got {context}");
        long prompt = options.Prompt ?? Math.Min(512, context);
        if (prompt < 1) throw new PlanningException($"prompt must be at least 1 token, got {prompt}");
        if (prompt > context) throw new PlanningException($"a prompt of {prompt} tokens does not fit in a context of {context} tokens");
        var notes = new List<string>();
        if (c.MaxContext is { } max && context > max)
            notes.Add($"context {context:N0} is longer than the {max:N0} tokens the model was trained for");
        if (c.SlidingWindow is { } w && w < context)
            notes.Add($"the config declares a sliding attention window of {w:N0} tokens; a rolling-buffer cache would keep at most {w:N0} tokens per sequence, this estimate keeps all {context:N0}");
        if (!c.IsDecoder) notes.Add("encoder model: no KV cache and no token-by-token decoding; time to first token is one forward pass over the prompt");

        long activation = cost.ActivationBytes(prompt, context, options.Batch);
        var device = options.Device;
        var unit = (options.Unit ?? "cpu").ToLowerInvariant();
        if (!DeviceProfile.UnitNames.Contains(unit)) throw new PlanningException($"unknown compute unit '{options.Unit}'; known: {string.Join(", ", DeviceProfile.UnitNames)}");

        Evaluation Evaluate(WeightFormat wf)
        {
            long wb = cost.WeightBytes(wf);
            long kvb = c.IsDecoder ? cost.KvCacheBytes(kv, context, options.Batch) : 0;
            long total = checked(wb + kvb + activation);
            var e = new Evaluation { Format = wf, WeightBytes = wb, KvBytes = kvb, TotalBytes = total };
            if (device is null) return e;
            long budget = (long)device.AppBudgetBytes!.Value;
            e = e with { Fits = total <= budget, Headroom = budget - total };
            var (precision, throughput) = PickThroughput(device, unit, ComputePrecision(wf.Precision));
            double bandwidth = device.MemoryBandwidthBytesPerSecond!.Value;
            e = e with { Precision = precision, Throughput = throughput?.Value, Bandwidth = bandwidth };
            long prefillFlops = cost.PrefillFlops(prompt);
            double memoryTime = wb / bandwidth;
            if (throughput is { } tp)
            {
                double computeTime = (double)prefillFlops * options.Batch / tp.Value;
                e = e with { Ttft = Math.Max(computeTime, memoryTime), PrefillBound = computeTime >= memoryTime ? "compute" : "memory" };
            }
            if (c.IsDecoder)
            {
                long bytes = checked(cost.DecodeWeightBytesRead(wf) + cost.KvBytesPerToken(kv) * kv.StoredTokens(context) * options.Batch);
                double memTime = bytes / bandwidth;
                double computeTime = throughput is { } t2 ? (double)cost.DecodeFlopsPerToken(context) * options.Batch / t2.Value : 0;
                e = e with
                {
                    DecodeBytes = bytes,
                    DecodeRate = options.Batch / Math.Max(memTime, computeTime),
                    DecodeBound = computeTime > memTime ? "compute" : "bandwidth",
                };
            }
            return e;
        }

        var main = Evaluate(weights);
        var compared = Compared.Select(p => Evaluate(weights with { Precision = p })).ToList();
        if (device is not null)
        {
            AddDeviceNotes(notes, device, unit, ComputePrecision(weights.Precision), main.Precision);
        }
        if (weights.Precision == WeightPrecision.Bf16) notes.Add("bf16 weights: time estimates use the unit's fp16 throughput");

        return new BudgetReport
        {
            Model = c.Name,
            Kind = "transformer",
            Shape = c.ToString(),
            Parameters = cost.Parameters,
            ParametersByComponent = cost.ParametersByComponent,
            Weights = weights.Describe(),
            WeightBytes = main.WeightBytes,
            WeightBytesByComponent = cost.WeightBytesByComponent(weights),
            KvCache = c.IsDecoder ? kv.Describe() : null,
            KvCacheBytes = main.KvBytes,
            KvCacheBytesPerToken = c.IsDecoder ? cost.KvBytesPerToken(kv) : null,
            ActivationBytes = activation,
            ActivationSource = c.IsDecoder
                ? $"estimate: fp32 activations of one {Math.Min(prompt, TransformerCost.PrefillChunkTokens)}-token prefill chunk attending to {context} positions, scores for all heads, last-position logits"
                : $"estimate: fp32 activations of one {prompt}-token forward pass, scores for all heads",
            TotalBytes = main.TotalBytes,
            Context = context,
            Prompt = prompt,
            Batch = options.Batch,
            PrefillFlops = cost.PrefillFlops(prompt),
            PrefillFlopsPerToken = cost.PrefillFlopsPerToken(prompt),
            DecodeFlopsPerToken = c.IsDecoder ? cost.DecodeFlopsPerToken(context) : null,
            Device = device?.Name,
            AppBudgetBytes = device is null ? null : (long)device.AppBudgetBytes!.Value,
            Fits = main.Fits,
            HeadroomBytes = main.Headroom,
            ComputeUnit = device is null ? null : unit,
            ComputePrecision = main.Precision,
            ThroughputOpsPerSecond = main.Throughput,
            BandwidthBytesPerSecond = main.Bandwidth,
            TimeToFirstTokenSeconds = main.Ttft,
            PrefillBound = main.PrefillBound,
            DecodeBytesPerToken = main.DecodeBytes,
            DecodeTokensPerSecond = main.DecodeRate,
            DecodeBound = main.DecodeBound,
            Options = compared.Select(e => e.ToOption()).ToList(),
            Recommendation = Recommend(device, compared, weights, c.IsDecoder, context),
            Notes = notes,
        };
    }

    /// <summary>Estimates an ONNX model (one inference; no KV cache).</summary>
    public static BudgetReport Estimate(OnnxCost cost, BudgetOptions options)
    {
        if (options.Batch != 1) throw new PlanningException("--batch applies to transformers; for an ONNX model fix the batch dimension with --shape");
        var unit = (options.Unit ?? "cpu").ToLowerInvariant();
        if (!DeviceProfile.UnitNames.Contains(unit)) throw new PlanningException($"unknown compute unit '{options.Unit}'; known: {string.Join(", ", DeviceProfile.UnitNames)}");
        var notes = new List<string>();
        long activation;
        string activationSource;
        if (cost.PlannedPeakBytes is { } planned)
        {
            activation = planned;
            activationSource = "the runtime's memory plan for these input shapes (InferenceSession.PlannedPeakBytes)";
        }
        else if (cost.LivenessPeakBytes is { } live)
        {
            activation = live;
            activationSource = $"estimate: peak of simultaneously live intermediate values from static shapes ({cost.PlannedPeakNote})";
        }
        else
        {
            activation = 0;
            activationSource = $"unknown: {cost.LivenessNote}; fix input shapes with --shape";
            notes.Add("activation memory unknown (dynamic shapes); the total counts weights only");
        }
        string storedPrecision = cost.ParametersByDType.Count == 0 ? "fp32"
            : cost.ParametersByDType.MaxBy(k => k.Value).Key switch { "float16" or "bfloat16" => "fp16", _ => "fp32" };
        var device = options.Device;
        long? flops = cost.Macs is { } m ? 2 * m : null;
        if (flops is null) notes.Add($"MACs unknown for {cost.MacsUnknownNodes} node(s) with dynamic shapes; fix input shapes with --shape");

        Evaluation Evaluate(WeightFormat? wf)
        {
            long wb = wf is null ? cost.WeightBytes : cost.WeightBytesAs(wf);
            long total = wb + activation;
            var e = new Evaluation { Format = wf, WeightBytes = wb, TotalBytes = total };
            if (device is null) return e;
            long budget = (long)device.AppBudgetBytes!.Value;
            var (precision, throughput) = PickThroughput(device, unit, wf is null ? storedPrecision : ComputePrecision(wf.Precision));
            double bandwidth = device.MemoryBandwidthBytesPerSecond!.Value;
            e = e with { Fits = total <= budget, Headroom = budget - total, Precision = precision, Throughput = throughput?.Value, Bandwidth = bandwidth };
            if (throughput is { } tp && flops is { } f)
            {
                double computeTime = f / tp.Value, memoryTime = wb / bandwidth;
                e = e with { Ttft = Math.Max(computeTime, memoryTime), PrefillBound = computeTime >= memoryTime ? "compute" : "memory" };
            }
            return e;
        }

        var main = Evaluate(options.Weights?.Validate());
        var compared = Compared.Select(p => Evaluate(new WeightFormat(p, options.Weights?.BlockSize ?? options.BlockSize).Validate())).ToList();
        if (device is not null) AddDeviceNotes(notes, device, unit, options.Weights is null ? storedPrecision : ComputePrecision(options.Weights.Precision), main.Precision);
        if (options.Weights is not null) notes.Add("weights re-quantized on paper: every floating-point constant of rank ≥ 2 stored in the chosen format (rows = first dimension)");
        return new BudgetReport
        {
            Model = cost.Model,
            Kind = "onnx",
            Parameters = cost.Parameters,
            ParametersByComponent = cost.ParametersByDType,
            Weights = options.Weights?.Describe() ?? "as stored (" + string.Join(", ", cost.WeightBytesByDType.Select(k => k.Key)) + ")",
            WeightBytes = main.WeightBytes,
            KvCacheBytes = 0,
            ActivationBytes = activation,
            ActivationSource = activationSource,
            TotalBytes = main.TotalBytes,
            Batch = 1,
            PrefillFlops = flops,
            Device = device?.Name,
            AppBudgetBytes = device is null ? null : (long)device.AppBudgetBytes!.Value,
            Fits = main.Fits,
            HeadroomBytes = main.Headroom,
            ComputeUnit = device is null ? null : unit,
            ComputePrecision = main.Precision,
            ThroughputOpsPerSecond = main.Throughput,
            BandwidthBytesPerSecond = main.Bandwidth,
            TimeToFirstTokenSeconds = main.Ttft,
            PrefillBound = main.PrefillBound,
            Options = compared.Select(e => e.ToOption()).ToList(),
            Recommendation = Recommend(device, compared, options.Weights, decoder: false, context: 0),
            Notes = notes,
            Onnx = new OnnxDetails(cost.InputShapes, cost.WeightBytesByDType, cost.Macs, cost.MacsByOp, cost.MacsUnknownNodes,
                cost.PlannedPeakBytes, cost.PlannedPeakNote, cost.LivenessPeakBytes, cost.LivenessNote),
        };
    }

    /// <summary>The precision whose throughput applies: fp32 weights compute in fp32, fp16/bf16 in fp16, int8/int4 in int8 (weights and activations quantized, as llama.cpp does on CPUs).</summary>
    public static string ComputePrecision(WeightPrecision p) => p switch
    {
        WeightPrecision.Fp32 => "fp32",
        WeightPrecision.Fp16 or WeightPrecision.Bf16 => "fp16",
        _ => "int8",
    };

    private static (string? Precision, Figure? Figure) PickThroughput(DeviceProfile d, string unit, string wanted)
    {
        string[] chain = wanted switch { "int8" => ["int8", "fp16", "fp32"], "fp16" => ["fp16", "fp32"], _ => ["fp32"] };
        foreach (var p in chain)
            if (d.Throughput(unit, p) is { } f) return (p, f);
        return (null, null);
    }

    private static void AddDeviceNotes(List<string> notes, DeviceProfile d, string unit, string wanted, string? used)
    {
        if (used is null)
            notes.Add(d.Compute.Count == 0
                ? $"{d.Name} has no compute throughput figures; time to first token is not estimated"
                : $"{d.Name} has no {unit} throughput figure; time to first token is not estimated (try --unit {string.Join(" or --unit ", d.Compute.Keys)})");
        else if (used != wanted)
            notes.Add($"{d.Name} has no {unit} {wanted} figure; time estimates use its {used} throughput");
        var estimated = d.Figures().Where(f => f.Figure.IsEstimate).Select(f => f.Path).ToList();
        if (estimated.Count > 0) notes.Add($"{d.Name}: estimated (not published) figures: {string.Join(", ", estimated)} — see 'ondevice devices show {d.Name}'");
        notes.Add("times are rooflines from peak figures: real kernels reach a fraction of peak compute and bandwidth");
    }

    private static string Recommend(DeviceProfile? device, List<Evaluation> compared, WeightFormat? chosen, bool decoder, long context)
    {
        if (device is null)
            return "no device given: pass --device NAME to check the fit ('ondevice devices' lists them)";
        string Speed(Evaluation e) => e.DecodeRate is { } r ? $" at ~{Units.Rate(r)} tokens/s" : e.Ttft is { } t ? $" at ~{Units.Seconds(t)} per inference" : "";
        // fp32 is listed but never recommended: fp16 holds the same model at half the bytes.
        var candidates = compared.Where(e => e.Format!.Precision != WeightPrecision.Fp32).ToList();
        var best = candidates.FirstOrDefault(e => e.Fits == true);
        if (best is null)
        {
            var smallest = compared[^1];
            return $"nothing fits {device.DisplayName}'s {Units.Bytes(device.AppBudgetBytes!.Value)} app budget: even {smallest.Format!.Describe()} needs {Units.Bytes(smallest.TotalBytes)} (over by {Units.Bytes(-smallest.Headroom!.Value)})"
                + (decoder ? $"; KV cache at {context:N0} tokens is {Units.Bytes(smallest.KvBytes)} — try a shorter --context, --kv int8 or int4, or a smaller model" : "; try a smaller model");
        }
        var parts = new List<string> { $"{best.Format!.Describe()} fits with {Units.Bytes(best.Headroom!.Value)} headroom{Speed(best)}" };
        foreach (var e in candidates.TakeWhile(e => e != best).Reverse())
            parts.Add($"{e.Format!.Describe()} does not fit (over by {Units.Bytes(-e.Headroom!.Value)})");
        foreach (var e in candidates.SkipWhile(e => e != best).Skip(1))
            parts.Add($"{e.Format!.Describe()} also fits ({Units.Bytes(e.Headroom!.Value)} headroom{Speed(e)})");
        return string.Join("; ", parts);
    }

    private sealed record Evaluation
    {
        public WeightFormat? Format { get; init; }
        public long WeightBytes { get; init; }
        public long KvBytes { get; init; }
        public long TotalBytes { get; init; }
        public bool? Fits { get; init; }
        public long? Headroom { get; init; }
        public string? Precision { get; init; }
        public double? Throughput { get; init; }
        public double? Bandwidth { get; init; }
        public double? Ttft { get; init; }
        public string? PrefillBound { get; init; }
        public long? DecodeBytes { get; init; }
        public double? DecodeRate { get; init; }
        public string? DecodeBound { get; init; }

        public PrecisionOption ToOption() => new(Format?.Describe() ?? "as stored", WeightBytes, TotalBytes, Fits, Headroom, DecodeRate);
    }
}
