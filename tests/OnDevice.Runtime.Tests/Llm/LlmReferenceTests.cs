using OnDevice.Runtime.Llm;

namespace OnDevice.Runtime.Tests.Llm;

public class LlmReferenceTests
{
    [Fact]
    public void Fp32GreedyReproducesEveryReferenceContinuation()
    {
        var s = LlmFiles.Stories();
        var cases = LlmFiles.Reference();
        if (s is null || cases is null) return;
        Assert.NotEmpty(cases);
        var (ck, tok) = s.Value;
        var gen = new LlamaGenerator(new LlamaEngine(LlamaModel.Load(ck, LlmWeights.Fp32)), tok);
        foreach (var c in cases)
        {
            Assert.Equal(0f, c.Temperature);
            var r = gen.Generate(c.Prompt, new GenerationOptions(c.Steps, new SamplingOptions()));
            Assert.Equal(c.ExpectedText, r.Text);
        }
    }

    [Fact]
    public void TokenizerRoundTripsPromptsAndMergesToFewTokens()
    {
        var s = LlmFiles.Stories();
        if (s is null) return;
        var tok = s.Value.Tokenizer;
        var ids = tok.Encode("Once upon a time");
        Assert.Equal(tok.Bos, ids[0]);
        Assert.True(ids.Length < 10, $"{ids.Length} tokens: merges did not happen");
        Assert.Equal("Once upon a time", tok.Decode(ids));
        // A character outside the vocabulary falls back to its UTF-8 bytes and decodes back.
        var odd = tok.Encode("café ☃");
        Assert.Equal("café ☃", tok.Decode(odd));
    }
}
