using System.Buffers.Binary;
using System.Runtime.InteropServices;
using OnDevice.Formats;
using OnDevice.Formats.Gguf;
using OnDevice.Formats.Llama2c;
using OnDevice.Formats.Llm;
using OnDevice.TestSupport;

namespace OnDevice.Formats.Tests;

public class LlmCheckpointTests
{
    private static string? Shared(string name) => SharedFiles.Find("models", "llama2c", name);

    [Fact]
    public void Llama2cCheckpointIsMappedWithEveryTensor()
    {
        if (Shared("stories260K.bin") is not { } path) return;
        var ck = Llama2cReader.Read(path);
        Assert.Equal(new LlamaConfig(64, 172, 5, 8, 4, 512, 512, true), ck.Config);
        Assert.Equal(2 + 9 * 5, ck.Tensors.Count);
        Assert.All(ck.Tensors.Values, t => Assert.True(OnDevice.Core.MappedFile.IsMapped(t.Data), $"{t.Name} was copied"));
        var emb = ck.Get("token_embd.weight", 512, 64);
        var raw = File.ReadAllBytes(path);
        Assert.Equal(raw.AsSpan(28, 16).ToArray(), emb.Data.Span[..16].ToArray());
        var vocab = Llama2cReader.ReadTokenizer(Shared("tok512.bin")!, 512);
        Assert.Equal(512, vocab.Count);
        Assert.Equal("<0x0A>"u8.ToArray(), vocab.Pieces[13]);
    }

    [Fact]
    public void TruncatedOrMalformedLlama2cFilesGetTypedErrors()
    {
        if (Shared("stories260K.bin") is not { } path) return;
        using var dir = new TempDir();
        var raw = File.ReadAllBytes(path);
        string Write(string name, byte[] b) { var p = Path.Combine(dir.Path, name); File.WriteAllBytes(p, b); return p; }
        var e = Assert.Throws<ModelFormatException>(() => Llama2cReader.Read(Write("cut.bin", raw[..(raw.Length - 100)])));
        Assert.Contains("truncated", e.Message);
        Assert.Throws<ModelFormatException>(() => Llama2cReader.Read(Write("tiny.bin", raw[..10])));
        var bad = (byte[])raw.Clone();
        BinaryPrimitives.WriteInt32LittleEndian(bad.AsSpan(12), 7); // n_heads 7 does not divide dim 64
        Assert.Contains("n_heads", Assert.Throws<ModelFormatException>(() => Llama2cReader.Read(Write("heads.bin", bad))).Message);
        Assert.Throws<ModelFormatException>(() => Llama2cReader.Read(Path.Combine(dir.Path, "missing.bin")));
        var tok = File.ReadAllBytes(Shared("tok512.bin")!);
        Assert.Contains("truncated", Assert.Throws<ModelFormatException>(() => Llama2cReader.ReadTokenizer(Write("tok.bin", tok[..(tok.Length / 2)]), 512)).Message);
        Assert.Contains("remain", Assert.Throws<ModelFormatException>(() => Llama2cReader.ReadTokenizer(Write("tok2.bin", tok), 500)).Message);
    }

    private static float[] Values(string name, int rows, int cols)
    {
        var rng = new Random(name.Length * 31 + rows);
        return Enumerable.Range(0, rows * cols).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
    }

    [Theory]
    [InlineData(GgufFile.F32, 0.0)]
    [InlineData(GgufFile.F16, 1e-3)]
    [InlineData(GgufFile.Q8_0, 1e-2)]
    [InlineData(GgufFile.Q4_0, 0.15)]
    public void GgufLlamaRoundTripsThroughOurWriter(uint type, double tolerance)
    {
        using var dir = new TempDir();
        var cfg = new LlamaConfig(64, 96, 2, 4, 2, 40, 128, false);
        var vocab = new LlamaVocabulary(Enumerable.Range(0, 40).Select(i => System.Text.Encoding.UTF8.GetBytes(i == 3 ? " the" : $"t{i}")).ToArray(),
            Enumerable.Range(0, 40).Select(i => (float)-i).ToArray());
        var layout = new List<(string, int, int)> { ("token_embd.weight", 40, 64) };
        for (int l = 0; l < 2; l++)
            foreach (var (n, r, c) in new[] { ("attn_norm", 1, 64), ("attn_q", 64, 64), ("attn_k", 32, 64), ("attn_v", 32, 64), ("attn_output", 64, 64), ("ffn_norm", 1, 64), ("ffn_gate", 96, 64), ("ffn_down", 64, 96), ("ffn_up", 96, 64) })
                layout.Add(($"blk.{l}.{n}.weight", r, c));
        layout.Add(("output_norm.weight", 1, 64));
        layout.Add(("output.weight", 40, 64));
        var path = Path.Combine(dir.Path, "m.gguf");
        GgufWriter.WriteLlama(path, cfg, vocab, layout, Values, type);
        var ck = LlamaCheckpoint.Open(path);
        Assert.Equal("gguf", ck.Format);
        Assert.Equal(cfg, ck.Config);
        Assert.Equal(" the"u8.ToArray(), ck.Vocabulary!.Pieces[3]);
        Assert.Equal(-5f, ck.Vocabulary.Scores[5]);
        var t = ck.Get("blk.1.ffn_down.weight", 64, 96);
        Assert.True(OnDevice.Core.MappedFile.IsMapped(t.Data));
        var expect = Values("blk.1.ffn_down.weight", 64, 96);
        var got = Decode(t);
        double err = 0, norm = 0;
        for (int i = 0; i < got.Length; i++) { err += (got[i] - expect[i]) * (got[i] - expect[i]); norm += expect[i] * expect[i]; }
        Assert.True(Math.Sqrt(err / norm) <= tolerance + 1e-9, $"relative error {Math.Sqrt(err / norm)}");
        Assert.Equal(LlamaTensorType.F32, ck.Get("blk.0.attn_norm.weight", 1, 64).Type);

        // Truncation anywhere is a typed error.
        var raw = File.ReadAllBytes(path);
        foreach (var cut in new[] { 3, 30, raw.Length / 3, raw.Length - 7 })
        {
            var p2 = Path.Combine(dir.Path, $"cut{cut}.gguf");
            File.WriteAllBytes(p2, raw[..cut]);
            Assert.Throws<ModelFormatException>(() => GgufFile.ReadLlama(p2));
        }
    }

    private static float[] Decode(LlamaTensor t)
    {
        var s = t.Data.Span;
        int n = t.Rows * t.Cols;
        var f = new float[n];
        switch (t.Type)
        {
            case LlamaTensorType.F32: MemoryMarshal.Cast<byte, float>(s).CopyTo(f); break;
            case LlamaTensorType.F16: for (int i = 0; i < n; i++) f[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(s[(2 * i)..]); break;
            case LlamaTensorType.Q8_0:
                for (int b = 0; b < n / 32; b++)
                {
                    float d = (float)BinaryPrimitives.ReadHalfLittleEndian(s[(b * 34)..]);
                    for (int j = 0; j < 32; j++) f[b * 32 + j] = (sbyte)s[b * 34 + 2 + j] * d;
                }
                break;
            default:
                for (int b = 0; b < n / 32; b++)
                {
                    float d = (float)BinaryPrimitives.ReadHalfLittleEndian(s[(b * 18)..]);
                    for (int j = 0; j < 16; j++) { f[b * 32 + j] = ((s[b * 18 + 2 + j] & 15) - 8) * d; f[b * 32 + 16 + j] = ((s[b * 18 + 2 + j] >> 4) - 8) * d; }
                }
                break;
        }
        return f;
    }

    [Fact]
    public void GgufOfAnotherArchitectureOrUnknownTypeIsRejected()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "x.gguf");
        GgufWriter.Write(path, [new("general.architecture", "gpt2")], [new GgufTensorSource("w", GgufFile.F32, [32], s => s.Write(new byte[128]))]);
        Assert.Contains("gpt2", Assert.Throws<ModelFormatException>(() => GgufFile.ReadLlama(path)).Message);
        Assert.Equal(3u, GgufFile.Read(path).Version);
        var raw = File.ReadAllBytes(path);
        raw[4] = 9; // version 9
        File.WriteAllBytes(path, raw);
        Assert.Contains("version", Assert.Throws<ModelFormatException>(() => GgufFile.Read(path)).Message);
    }

    [Fact]
    public void DamagedGgufAndLlama2cFilesOnlyEverRaiseModelFormatException()
    {
        using var dir = new TempDir();
        var cfg = new LlamaConfig(32, 64, 1, 2, 1, 16, 32, true);
        var vocab = new LlamaVocabulary(Enumerable.Range(0, 16).Select(i => System.Text.Encoding.UTF8.GetBytes($"t{i}")).ToArray(), new float[16]);
        var layout = new List<(string, int, int)> { ("token_embd.weight", 16, 32) };
        foreach (var (n, r, c) in new[] { ("attn_norm", 1, 32), ("attn_q", 32, 32), ("attn_k", 16, 32), ("attn_v", 16, 32), ("attn_output", 32, 32), ("ffn_norm", 1, 32), ("ffn_gate", 64, 32), ("ffn_down", 32, 64), ("ffn_up", 64, 32) })
            layout.Add(($"blk.0.{n}.weight", r, c));
        layout.Add(("output_norm.weight", 1, 32));
        var path = Path.Combine(dir.Path, "f.gguf");
        GgufWriter.WriteLlama(path, cfg, vocab, layout, Values, GgufFile.Q8_0);
        var valid = File.ReadAllBytes(path);
        var damaged = Path.Combine(dir.Path, "d.gguf");
        var outcome = ByteFuzzer.Run(valid, 1200, cases: 600, seed: 99, read: b => { File.WriteAllBytes(damaged, b); GgufFile.ReadLlama(damaged); });
        Assert.True(outcome.Failures.Count == 0, string.Join("\n", outcome.Failures.Take(5)));
        Assert.True(outcome.Rejected > 100, $"only {outcome.Rejected} rejected");

        if (Shared("stories260K.bin") is not { } real) return;
        var raw = File.ReadAllBytes(real);
        var out2 = ByteFuzzer.Run(raw, 28, cases: 200, seed: 7, read: b => { File.WriteAllBytes(damaged, b); Llama2cReader.Read(damaged); });
        Assert.True(out2.Failures.Count == 0, string.Join("\n", out2.Failures.Take(5)));
    }
}
