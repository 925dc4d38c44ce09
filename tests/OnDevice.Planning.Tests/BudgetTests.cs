namespace OnDevice.Planning.Tests;

public class BudgetTests
{
    private static DeviceProfile Device(double budgetBytes, double bandwidth, double? fp16 = null, double? int8 = null) => new DeviceProfile
    {
        Name = "test-device",
        DisplayName = "Test device",
        RamBytes = new Figure { Value = 64e9, Estimate = "test" },
        AppBudgetBytes = new Figure { Value = budgetBytes, Estimate = "test" },
        MemoryBandwidthBytesPerSecond = new Figure { Value = bandwidth, Estimate = "test" },
        Compute = new()
        {
            ["cpu"] = new ComputeUnit
            {
                OpsPerSecond = new Dictionary<string, Figure?> { ["fp16"] = fp16 is { } a ? new Figure { Value = a, Estimate = "t" } : null, ["int8"] = int8 is { } b ? new Figure { Value = b, Estimate = "t" } : null }
                    .Where(k => k.Value is not null).ToDictionary(k => k.Key, k => k.Value!),
            },
        },
    }.Validate();

    [Fact]
    public void Total_IsWeightsPlusKvPlusActivations_AndHeadroomIsBudgetMinusTotal()
    {
        var cost = new TransformerCost(Presets.Get("llama-2-7b").Config);
        var r = Budget.Estimate(cost, new BudgetOptions { Context = 4096, Device = Device(20e9, 50e9, 1e12, 2e12) });
        Assert.Equal(13_476_831_232, r.WeightBytes);
        Assert.Equal(2_147_483_648, r.KvCacheBytes);
        Assert.Equal(r.WeightBytes + r.KvCacheBytes + r.ActivationBytes, r.TotalBytes);
        Assert.Equal(cost.ActivationBytes(512, 4096, 1), r.ActivationBytes);
        Assert.True(r.Fits);
        Assert.Equal(20_000_000_000 - r.TotalBytes, r.HeadroomBytes);
        Assert.Equal(6_738_415_616, r.Parameters);
    }

    [Fact]
    public void Decode_IsBandwidthBound_BytesPerTokenOverBandwidth()
    {
        var cost = new TransformerCost(Presets.Get("tinyllama-1.1b").Config);
        // REFERENCES: at 16 GB/s the bandwidth roofline for Q8_0 is ≈ 14.5 tokens/s (llama.cpp measured 12.6).
        var r = Budget.Estimate(cost, new BudgetOptions { Weights = new WeightFormat(WeightPrecision.Int8), Context = 128, Prompt = 128, Device = Device(8e9, 16e9, 1e12, 2e12) });
        long bytes = cost.DecodeWeightBytesRead(new WeightFormat(WeightPrecision.Int8)) + cost.KvBytesPerToken(new KvCacheFormat()) * 128;
        Assert.Equal(bytes, r.DecodeBytesPerToken);
        Assert.Equal(16e9 / bytes, r.DecodeTokensPerSecond!.Value, 9);
        Assert.InRange(r.DecodeTokensPerSecond.Value, 14.0, 15.0);
        Assert.Equal("bandwidth", r.DecodeBound);
        Assert.Equal("int8", r.ComputePrecision);
        // Prefill: compute-bound roofline.
        Assert.Equal(Math.Max(cost.PrefillFlops(128) / 2e12, r.WeightBytes / 16e9), r.TimeToFirstTokenSeconds!.Value, 12);
        Assert.Equal("compute", r.PrefillBound);
        // Batch 4 reads the weights once per step for four tokens.
        var b4 = Budget.Estimate(cost, new BudgetOptions { Weights = new WeightFormat(WeightPrecision.Int8), Context = 128, Prompt = 128, Batch = 4, Device = Device(8e9, 16e9, 1e12, 2e12) });
        Assert.True(b4.DecodeTokensPerSecond > 3.5 * r.DecodeTokensPerSecond);
    }

    [Fact]
    public void MissingPrecision_FallsBackAndSaysSo()
    {
        var cost = new TransformerCost(Presets.Get("qwen2.5-0.5b").Config);
        var r = Budget.Estimate(cost, new BudgetOptions { Weights = new WeightFormat(WeightPrecision.Int4), Device = Device(8e9, 16e9, fp16: 1e12) });
        Assert.Equal("fp16", r.ComputePrecision);
        Assert.Contains(r.Notes, n => n.Contains("has no cpu int8 figure; time estimates use its fp16 throughput"));
        var none = Budget.Estimate(cost, new BudgetOptions { Unit = "npu", Device = Device(8e9, 16e9, fp16: 1e12) });
        Assert.Null(none.TimeToFirstTokenSeconds);
        Assert.NotNull(none.DecodeTokensPerSecond); // bandwidth alone gives decode
        Assert.Contains(none.Notes, n => n.Contains("no npu throughput figure"));
        Assert.Contains("unknown compute unit 'tpu'", Assert.Throws<PlanningException>(() => Budget.Estimate(cost, new BudgetOptions { Unit = "tpu" })).Message);
    }

    [Fact]
    public void Recommendation_PicksTheMostPreciseThatFits_AndSaysWhatDoesNot()
    {
        var cost = new TransformerCost(Presets.Get("llama-2-7b").Config);
        var options = new BudgetOptions { Context = 1024, Prompt = 128 };
        long int8 = Budget.Estimate(cost, options with { Weights = new WeightFormat(WeightPrecision.Int8) }).TotalBytes;
        long int4 = Budget.Estimate(cost, options with { Weights = new WeightFormat(WeightPrecision.Int4) }).TotalBytes;
        // A budget between the int4 and int8 totals: int4 is recommended, int8 and fp16 are over.
        var r = Budget.Estimate(cost, options with { Device = Device((int4 + int8) / 2, 50e9, 1e12, 2e12) });
        Assert.StartsWith($"int4 block-32 fits with {Units.Bytes((int4 + int8) / 2 - int4)} headroom at ~", r.Recommendation);
        Assert.Contains("fp16 does not fit (over by", r.Recommendation);
        Assert.Contains("int8 block-32 does not fit (over by", r.Recommendation);
        Assert.Equal([false, false, false, true], r.Options.Select(o => o.Fits!.Value).ToList());
        // Nothing fits: say by how much, and what to try.
        var tiny = Budget.Estimate(cost, options with { Device = Device(1e9, 50e9) });
        Assert.StartsWith("nothing fits Test device's 1.00 GB app budget: even int4 block-32 needs", tiny.Recommendation);
        Assert.False(tiny.Fits);
        Assert.True(tiny.HeadroomBytes < 0);
    }

    [Fact]
    public void Notes_FlagLongContextsSlidingWindowsAndEncoders()
    {
        var mistral = Budget.Estimate(new TransformerCost(Presets.Get("mistral-7b").Config), new BudgetOptions { Context = 8192 });
        Assert.Contains(mistral.Notes, n => n.Contains("sliding attention window of 4,096 tokens"));
        var gpt2 = Budget.Estimate(new TransformerCost(Presets.Get("gpt2").Config), new BudgetOptions { Context = 2048 });
        Assert.Contains(gpt2.Notes, n => n.Contains("longer than the 1,024 tokens the model was trained for"));
        var bert = Budget.Estimate(new TransformerCost(Presets.Get("bert-base-uncased").Config), new BudgetOptions());
        Assert.Equal(0, bert.KvCacheBytes);
        Assert.Null(bert.DecodeTokensPerSecond);
        Assert.Equal(512, bert.Context); // the model's maximum
        Assert.Contains(bert.Notes, n => n.StartsWith("encoder model"));
    }
}
