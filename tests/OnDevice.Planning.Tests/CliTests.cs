using System.Text.Json;
using OnDevice.Runtime.Kernels;
using OnDevice.TestSupport;

namespace OnDevice.Planning.Tests;

public class CliTests
{
    private static JsonElement Json(TestFiles.Result r)
    {
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
        return JsonDocument.Parse(r.Stdout).RootElement.Clone();
    }

    [Fact]
    public void Budget_Llama2_7b_Json_HasTheExactNumbersAndEveryKey()
    {
        var j = Json(TestFiles.Cli(null, "budget", "--preset", "llama-2-7b", "--context", "4096", "--json"));
        Assert.Equal(6_738_415_616, j.GetProperty("parameters").GetInt64());
        Assert.Equal(2_147_483_648, j.GetProperty("kvCacheBytes").GetInt64());
        Assert.Equal(13_476_831_232, j.GetProperty("weightBytes").GetInt64());
        foreach (var key in new[] { "parameters", "weightBytes", "kvCacheBytes", "activationBytes", "totalBytes", "prefillFlopsPerToken", "recommendation" })
            Assert.True(j.TryGetProperty(key, out _), key);
        Assert.Equal(j.GetProperty("weightBytes").GetInt64() + j.GetProperty("kvCacheBytes").GetInt64() + j.GetProperty("activationBytes").GetInt64(), j.GetProperty("totalBytes").GetInt64());

        var kv8 = Json(TestFiles.Cli(null, "budget", "--preset", "llama-2-7b", "--kv", "int8", "--json"));
        Assert.Equal(1_073_741_824 + 67_108_864, kv8.GetProperty("kvCacheBytes").GetInt64());
        Assert.Equal("int8 block-32", kv8.GetProperty("kvCache").GetString());
    }

    [Fact]
    public void Budget_WithDevice_ReportsFitAndSpeed()
    {
        var j = Json(TestFiles.Cli(null, "budget", "--preset", "qwen2.5-0.5b", "--device", "iphone-13", "--weights", "int4", "--context", "2048", "--json"));
        Assert.True(j.GetProperty("fits").GetBoolean());
        Assert.Equal(2_147_483_648 - j.GetProperty("totalBytes").GetInt64(), j.GetProperty("headroomBytes").GetInt64());
        Assert.True(j.GetProperty("decodeTokensPerSecond").GetDouble() > 10);
        Assert.Equal(4, j.GetProperty("options").GetArrayLength());

        var big = Json(TestFiles.Cli(null, "budget", "--preset", "llama-3-8b", "--device", "apple-watch-series-9", "--json"));
        Assert.False(big.GetProperty("fits").GetBoolean());
        Assert.StartsWith("nothing fits Apple Watch Series 9", big.GetProperty("recommendation").GetString());

        var text = TestFiles.Cli(null, "budget", "--preset", "llama-2-7b", "--device", "raspberry-pi-5-8gb", "--context", "2048");
        Assert.Equal(0, text.ExitCode);
        Assert.Contains("6,738,415,616", text.Stdout);
        Assert.Contains("=> int4 block-32 fits with", text.Stdout);
        Assert.Contains("fp16 does not fit (over by", text.Stdout);
    }

    [Fact]
    public void Budget_FromConfigFile_AndFromCheckpoint()
    {
        using var dir = new TempDir();
        var cfg = dir.File("config.json");
        File.WriteAllText(cfg, """{ "model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936, "tie_word_embeddings": true }""");
        Assert.Equal(494_032_768, Json(TestFiles.Cli(null, "budget", "--config", cfg, "--json")).GetProperty("parameters").GetInt64());

        if (TestFiles.Stories260K() is { } ck)
        {
            var j = Json(TestFiles.Cli(null, "budget", "--checkpoint", ck, "--weights", "fp32", "--json"));
            Assert.Equal(260_032, j.GetProperty("parameters").GetInt64());
            Assert.Equal(260_032 * 4, j.GetProperty("weightBytes").GetInt64());
            Assert.Equal(512, j.GetProperty("context").GetInt64()); // the checkpoint's seq_len caps the default context
        }
    }

    [Fact]
    public void Budget_OnnxSample()
    {
        var j = Json(TestFiles.Cli(null, "budget", SampleModels.Path("paddleocr-rec"), "--shape", "x=1,3,48,320", "--device", "pixel-8", "--json"));
        Assert.Equal(2_690_109, j.GetProperty("parameters").GetInt64());
        Assert.Equal(0, j.GetProperty("kvCacheBytes").GetInt64());
        Assert.True(j.GetProperty("activationBytes").GetInt64() > 0);
        Assert.True(j.GetProperty("fits").GetBoolean());
        Assert.True(j.GetProperty("timeToFirstTokenSeconds").GetDouble() > 0);
        var onnx = j.GetProperty("onnx");
        Assert.Equal(320, onnx.GetProperty("inputShapes").GetProperty("x")[3].GetInt64());
        Assert.True(onnx.GetProperty("macsByOp").GetProperty("Conv").GetInt64() > 0);
        Assert.Equal(onnx.GetProperty("macs").GetInt64() * 2, j.GetProperty("prefillFlops").GetInt64());
        Assert.Equal(j.GetProperty("weightBytes").GetInt64(), onnx.GetProperty("weightBytesByDType").EnumerateObject().Sum(p => p.Value.GetInt64()));
        Assert.True(onnx.TryGetProperty("plannedPeakBytes", out _) || onnx.GetProperty("plannedPeakNote").GetString()!.Contains("unsupported operator"));
    }

    [Theory]
    [InlineData("unknown preset 'llama-9'; known presets: llama-2-7b, llama-3-8b", "budget", "--preset", "llama-9")]
    [InlineData("unknown device 'iphone-99'; known devices: iphone-13, iphone-15-pro", "budget", "--preset", "gpt2", "--device", "iphone-99")]
    [InlineData("--context must be a positive number of tokens, got -5", "budget", "--preset", "gpt2", "--context", "-5")]
    [InlineData("--batch must be at least 1, got 0", "budget", "--preset", "gpt2", "--batch", "0")]
    [InlineData("give one model: MODEL.onnx, --config config.json, --checkpoint FILE or --preset NAME", "budget")]
    [InlineData("give only one model source, not --config and --preset", "budget", "--preset", "gpt2", "--config", "x.json")]
    [InlineData("unknown weight precision 'int3'", "budget", "--preset", "gpt2", "--weights", "int3")]
    [InlineData("a prompt of 900 tokens does not fit in a context of 100 tokens", "budget", "--preset", "gpt2", "--context", "100", "--prompt", "900")]
    [InlineData("unknown device 'nope'; known devices: iphone-13", "devices", "show", "nope")]
    public void BadInput_GetsAClearError(string expected, params string[] args)
    {
        var r = TestFiles.Cli(null, args);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(expected, r.Stderr);
        Assert.DoesNotContain("internal error", r.Stderr);
    }

    [Fact]
    public void Budget_ConfigErrors_NameTheFieldOrTheFault()
    {
        using var dir = new TempDir();
        var missing = dir.File("missing.json");
        File.WriteAllText(missing, """{ "model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32, "vocab_size": 32000 }""");
        var r = TestFiles.Cli(null, "budget", "--config", missing);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("missing.json: missing field 'intermediate_size'", r.Stderr);

        var heads = dir.File("heads.json");
        File.WriteAllText(heads, """{ "model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 30, "vocab_size": 32000 }""");
        var h = TestFiles.Cli(null, "budget", "--config", heads);
        Assert.Equal(1, h.ExitCode);
        Assert.Contains("30 attention heads do not divide hidden size 4096", h.Stderr);

        var absent = TestFiles.Cli(null, "budget", "--config", dir.File("absent.json"));
        Assert.Equal(1, absent.ExitCode);
        Assert.Contains("absent.json", absent.Stderr);
    }

    [Fact]
    public void Devices_ListAndShow_WithSources()
    {
        var list = Json(TestFiles.Cli(null, "devices", "--json"));
        var names = list.GetProperty("devices").EnumerateArray().Select(d => d.GetProperty("name").GetString()).ToList();
        Assert.Equal(8, names.Count);
        Assert.Contains("jetson-orin-nano-8gb", names);
        var show = Json(TestFiles.Cli(null, "devices", "show", "raspberry-pi-5-8gb", "--json"));
        Assert.Equal(8_589_934_592, show.GetProperty("ramBytes").GetProperty("value").GetInt64());
        Assert.StartsWith("https://", show.GetProperty("ramBytes").GetProperty("source").GetString());
        Assert.Contains("4267", show.GetProperty("memoryBandwidthBytesPerSecond").GetProperty("estimate").GetString());
        var iphone = Json(TestFiles.Cli(null, "devices", "show", "iphone-15-pro", "--json"));
        Assert.StartsWith("half of RAM", iphone.GetProperty("appBudgetBytes").GetProperty("estimate").GetString());
        var npu = iphone.GetProperty("compute").GetProperty("npu").GetProperty("opsPerSecond").GetProperty("int8");
        Assert.Equal(35e12, npu.GetProperty("value").GetDouble());
        Assert.Contains("35 trillion operations per second", npu.GetProperty("source").GetString());
        var text = TestFiles.Cli(null, "devices", "show", "iphone-15-pro");
        Assert.Equal(0, text.ExitCode);
        Assert.Contains("estimate:", text.Stdout);
        Assert.Contains("source:", text.Stdout);
    }

    [Fact]
    public void Devices_Calibrate_SavesAProfileThatBudgetCanUse()
    {
        using var dir = new TempDir();
        var cal = Json(TestFiles.Cli(dir.Path, "devices", "calibrate", "--quick", "--name", "ci-box", "--json"));
        var path = cal.GetProperty("path").GetString()!;
        Assert.Equal(Path.Combine(dir.Path, "devices", "ci-box.json"), path);
        Assert.True(File.Exists(path));
        var missing = cal.GetProperty("profile").GetProperty("missing").EnumerateArray().Select(m => m.GetString()!).ToList();
        Assert.Equal(!KernelRegistry.Default.Claims("", "MatMul", 17), missing.Any(m => m.StartsWith("fp32 GEMM", StringComparison.Ordinal)));

        var list = Json(TestFiles.Cli(dir.Path, "devices", "--json"));
        Assert.Contains(list.GetProperty("devices").EnumerateArray(), d => d.GetProperty("name").GetString() == "ci-box");
        var b = Json(TestFiles.Cli(dir.Path, "budget", "--preset", "qwen2.5-0.5b", "--device", "ci-box", "--json"));
        Assert.True(b.GetProperty("decodeTokensPerSecond").GetDouble() > 0);
        Assert.Equal("ci-box", b.GetProperty("device").GetString());
    }
}
